"""A time limit for each contract: a module that does not return is a failure, not a hang.

In the main thread on POSIX the limit is a ``SIGALRM`` timer (``signal.setitimer``) whose handler
raises :class:`ContractTimeout` inside the module's Python code: the probe unwinds, verify_rnn's
no-trace restore runs, and the next contract starts. The handler is installed once for a whole run
of contracts (:func:`time_limits`) and each contract only arms the timer: installing a handler
through ``signal.signal`` cost ~17 us a contract, 7 % of a verify_rnn run on a small module.

A previous handler and timer (pytest-timeout uses the same signal) keep their deadline: the timer
is armed for whichever deadline comes first, and the previous handler runs when its deadline comes
(a handler that re-arms the timer keeps its new deadline; the default action, a watchdog's, ends
the process as it would have); both are put back afterwards, the timer with what was left of it.
A module stuck in one long native call is interrupted when that call returns. Elsewhere (another
thread, Windows) each probe runs in a daemon thread that is abandoned when the limit passes; the
module is then still in use by that thread, so verify_rnn runs no further contract on it.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: The shortest delay a timer is re-armed with: 0 would disarm it.
MIN_DELAY = 1e-3


class ContractTimeout(BaseException):
    """A contract did not finish within its time limit; ``abandoned``: its thread still runs.

    A BaseException, as KeyboardInterrupt: an ``except Exception`` in a module or a probe must not
    swallow it."""

    def __init__(self, seconds: float, *, abandoned: bool = False) -> None:
        self.seconds, self.abandoned = seconds, abandoned
        super().__init__(f"did not finish within {seconds:g} s")


class Limited(Protocol):
    """Runs ``fn()`` under the limit: its value, or ContractTimeout."""

    def __call__(self, fn: Callable[[], T]) -> T: ...


def _signal_timer_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limits(seconds: float | None) -> Iterator[Limited]:
    """A runner for a series of functions, each under ``seconds`` (None: no limit)."""
    if seconds is None:
        yield _unlimited
    elif _signal_timer_usable():
        alarm = _Alarm(seconds)
        alarm.install()
        try:
            yield alarm.run
        finally:
            alarm.remove()
    else:
        yield lambda fn: _in_thread(fn, seconds)


def run_with_limit(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, or ContractTimeout when it takes longer than ``seconds`` (None: no limit)."""
    with time_limits(seconds) as limited:
        return limited(fn)


def _unlimited(fn: Callable[[], T]) -> T:
    return fn()


class _Alarm:
    """Our SIGALRM handler and the deadlines it serves: the running function's (``deadline``)
    and the previous timer's (``outer``, every ``interval`` seconds when it repeats), as
    ``time.monotonic()`` values; None: none."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline: float | None = None
        self.outer: float | None = None
        self.interval = 0.0
        self.previous: Any = None

    def install(self) -> None:
        delay, self.interval = signal.setitimer(signal.ITIMER_REAL, 0)  # read, and stop it meanwhile
        self.previous = signal.signal(signal.SIGALRM, self._expire)
        self.outer = time.monotonic() + delay if delay > 0 else None
        self._arm()

    def remove(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        if self.outer is not None:  # what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(self.outer - time.monotonic(), MIN_DELAY), self.interval)

    def run(self, fn: Callable[[], T]) -> T:
        enclosing = self.deadline  # run from inside another function's run (a prerequisite's probe)
        own = time.monotonic() + self.seconds
        self.deadline = own if enclosing is None else min(own, enclosing)
        self._arm()
        try:
            return fn()
        finally:
            self.deadline = enclosing
            self._arm()

    def _arm(self) -> None:
        """The timer for the first deadline to come, or none."""
        due = [t for t in (self.deadline, self.outer) if t is not None]
        signal.setitimer(signal.ITIMER_REAL, max(min(due) - time.monotonic(), MIN_DELAY) if due else 0)

    def _expire(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if self.outer is not None and now >= self.outer:  # the previous timer's deadline: its handler
            self.outer = now + self.interval if self.interval > 0 else None
            self._arm()  # ours stays armed whatever that handler does (it may raise)
            self._run_previous(signum, frame)
        if self.deadline is not None and now >= self.deadline:
            raise ContractTimeout(self.seconds)
        self._arm()  # what is left

    def _run_previous(self, signum: int, frame: object) -> None:
        """What SIGALRM would have done without us. The default action ends the process (a
        watchdog armed with ``signal.alarm``): so it does. A Python handler runs; when it arms
        the timer itself (a heartbeat), that is its next deadline. SIG_IGN, or a handler not
        installed from Python (None), does nothing."""
        if self.previous == signal.SIG_DFL:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGALRM)
            return  # only when SIGALRM is blocked
        if not callable(self.previous):
            return
        armed_at, (armed, _) = time.monotonic(), signal.getitimer(signal.ITIMER_REAL)
        self.previous(signum, frame)
        now = time.monotonic()
        left, interval = signal.getitimer(signal.ITIMER_REAL)
        if abs(left - (armed - (now - armed_at))) > MIN_DELAY:  # not the timer we armed
            self.outer, self.interval = (now + left if left > 0 else None), interval


def _in_thread(fn: Callable[[], T], seconds: float) -> T:
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="rnn-contracts probe", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ContractTimeout(seconds, abandoned=True)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
