// ShopGuard console: keyboard use of the queue (no inline scripts: the page's policy forbids them).
// Queue: j / k move between items, Enter opens one. Item: v (violation) or o (ok) selects the
// verdict button, Enter gives it: two keystrokes.
"use strict";
(function () {
  function typing(event) {
    const target = event.target;
    return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const items = Array.from(document.querySelectorAll("#queue a.item"));
    if (items.length && (event.key === "j" || event.key === "k")) {
      const at = items.indexOf(document.activeElement);
      const next = event.key === "j" ? Math.min(at + 1, items.length - 1) : Math.max(at - 1, 0);
      items[at < 0 ? 0 : next].focus();
      event.preventDefault();
      return;
    }
    const buttons = { v: "verdict-violation", o: "verdict-ok" };
    const button = buttons[event.key] && document.getElementById(buttons[event.key]);
    if (button) {
      button.focus();
      event.preventDefault();
    }
  });
})();
