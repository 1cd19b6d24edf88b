"""One admitted scoring call: its time budget, and who answers it.

The front door (``serving/guard.py``) admits a call with a deadline (``SHOPGUARD_REQUEST_BUDGET_SECONDS``)
and makes the ``Admission`` the current one for the work it starts (a context variable: it
reaches the API's thread). Two parties race for the answer, and exactly one wins:

- the work, which calls ``claim_answer()`` right before it stores its decisions: from then
  on its answer will be sent, so its decisions may be stored;
- the front door, which at the deadline calls ``abandon()``: if the work has not claimed the
  answer, the caller gets ``503`` with ``fallback_decision: review`` and the work, seeing
  ``cancelled()`` at its next checkpoint, stops without storing anything.

So a decision is never logged for an answer that was not sent, and the call's slot is held
until its work has stopped (the front door releases it when the work ends, not when it
answers).
"""

from __future__ import annotations

import contextvars
import threading
import time

from kinds.runtime import WorkCancelled

WORKING, ANSWERING, ABANDONED = "working", "answering", "abandoned"


class BudgetExceeded(WorkCancelled):
    """The call's time budget ran out (or its caller left) before its answer was claimed."""


class Admission:
    """The state of one admitted call (thread-safe)."""

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds
        self.deadline = time.monotonic() + budget_seconds
        self.reason = ""
        self._state = WORKING
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left of the budget (0 once it ran out)."""
        return max(0.0, self.deadline - time.monotonic())

    def cancelled(self) -> bool:
        """Whether the work should stop: abandoned, or out of time before claiming its answer."""
        return self._state == ABANDONED or (self._state == WORKING and time.monotonic() >= self.deadline)

    def claim_answer(self) -> None:
        """Called by the work before it stores decisions: its answer will be sent. Raises
        ``BudgetExceeded`` (store nothing) if the call was abandoned or ran out of time."""
        with self._lock:
            if self._state == WORKING and time.monotonic() >= self.deadline:
                self._state, self.reason = ABANDONED, f"its time budget of {self.budget_seconds:g} s ran out"
            if self._state == ABANDONED:
                raise BudgetExceeded(self.reason)
            self._state = ANSWERING

    def abandon(self, reason: str) -> bool:
        """Give up on the work's answer (the front door answers instead); False if the work
        already claimed it."""
        with self._lock:
            if self._state == ANSWERING:
                return False
            if self._state == WORKING:
                self._state, self.reason = ABANDONED, reason
            return True


CURRENT: contextvars.ContextVar[Admission | None] = contextvars.ContextVar("shopguard_admission", default=None)


def current_admission() -> Admission | None:
    """The admission of the call being worked on (None outside a guarded call)."""
    return CURRENT.get()


def claim_answer() -> None:
    """``claim_answer()`` of the current call, if any."""
    admission = CURRENT.get()
    if admission is not None:
        admission.claim_answer()
