"""A time limit for one contract: a module that does not return is a failure, not a hang.

In the main thread on POSIX the limit is a ``SIGALRM`` timer (``signal.setitimer``) whose handler
raises :class:`ContractTimeout` inside the module's Python code: the probe unwinds, verify_rnn's
no-trace restore runs, and the next contract starts. A previous handler and timer (pytest-timeout
uses the same signal) are put back afterwards, the timer with what was left of it. A module stuck
in one long native call is interrupted when that call returns. Elsewhere (another thread,
Windows) the probe runs in a daemon thread that is abandoned when the limit passes; the module
is then still in use by that thread, so verify_rnn runs no further contract on it.
"""
from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ContractTimeout(BaseException):
    """A contract did not finish within its time limit; ``abandoned``: its thread still runs.

    A BaseException, as KeyboardInterrupt: an ``except Exception`` in a module or a probe must not
    swallow it."""

    def __init__(self, seconds: float, *, abandoned: bool = False) -> None:
        self.seconds, self.abandoned = seconds, abandoned
        super().__init__(f"did not finish within {seconds:g} s")


def _signal_timer_usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def run_with_limit(fn: Callable[[], T], seconds: float | None) -> T:
    """``fn()``, or ContractTimeout when it takes longer than ``seconds`` (None: no limit)."""
    if seconds is None:
        return fn()
    if _signal_timer_usable():
        return _with_alarm(fn, seconds)
    return _in_thread(fn, seconds)


def _with_alarm(fn: Callable[[], T], seconds: float) -> T:
    started = time.monotonic()

    def expire(signum: int, frame: object) -> None:
        elapsed = time.monotonic() - started
        if elapsed < seconds:  # the outer timer came first: its handler decides, then ours goes on
            if callable(previous):
                previous(signum, frame)
            signal.setitimer(signal.ITIMER_REAL, max(seconds - elapsed, 1e-3))
            return
        raise ContractTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    outer_delay, outer_interval = 0.0, 0.0
    try:
        outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
        if 0 < outer_delay < seconds:  # someone else's earlier deadline (pytest-timeout) first
            signal.setitimer(signal.ITIMER_REAL, outer_delay)
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0 and time.monotonic() - started < outer_delay:  # re-armed, what is left
            left = max(outer_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


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
