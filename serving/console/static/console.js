// ShopGuard console: keyboard use of the queue (no inline scripts: the page's policy forbids them).
// Queue: j / k move between items, Enter opens one. Item: v (violation), o (ok) or s (skip)
// selects that button, Enter gives it: two keystrokes. Enter in the note (a text area) or on a
// box gives no verdict (here; and without script, the form's default button asks for none).
"use strict";
(function () {
  function typing(event) {
    const target = event.target;
    return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }
  document.addEventListener("keydown", function (event) {
    const field = event.target;
    if (event.key === "Enter" && field && field.tagName === "INPUT" && field.closest("form.verdict")) {
      event.preventDefault(); // Enter on a checkbox of the verdict form gives no verdict
      return;
    }
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
    const buttons = { v: "verdict-violation", o: "verdict-ok", s: "skip" };
    const button = buttons[event.key] && document.getElementById(buttons[event.key]);
    if (button) {
      button.focus();
      event.preventDefault();
    }
  });
  // The keys listen from here on (a deferred script runs after the page is shown): say so.
  document.documentElement.dataset.keys = "on";
})();
