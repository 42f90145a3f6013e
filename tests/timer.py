"""A wall-clock bound for a block of test code, kept by the operating system (SIGALRM), not by
the checker under test: a loop that never ends is reported, not waited for."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Overran(BaseException):
    """A block ran past its bound. A BaseException, so that no `except Exception` in the code
    under test can swallow it."""


@contextmanager
def time_limit(seconds: float, what: str = "the check") -> Iterator[None]:
    """Raise `Overran` in this thread after `seconds` of wall-clock time."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Overran(f"{what}: no verdict within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
