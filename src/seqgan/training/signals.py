"""Stop training cleanly on SIGINT / SIGTERM, within seconds, whatever a unit of training costs.

Outside the units of training (evaluation rows aside) a signal is only recorded, and the trainer
stops at its next check. Inside an `interruptible()` block (one epoch, one D pre-training step)
it raises `StopRequested` at once, between two Python operations: the unit's half-done work is
thrown away and the trainer writes the state it kept at the last unit boundary (a single-process
run keeps one in memory), so a resume is bitwise equal to a run never stopped. A second signal of
either kind stops at once (the last checkpoint is still intact: checkpoints are written atomically).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class TrainingStopped(Exception):
    """Training stopped on a signal after writing a checkpoint; `signum` says which."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopRequested(BaseException):
    """A stop signal inside an interruptible unit. A BaseException, like KeyboardInterrupt, so that
    no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StopOnSignal:
    """Context manager: record the first SIGINT / SIGTERM in `signum` instead of dying."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum = 0
        self._armed = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum
        if self._armed:
            self._armed = False
            raise StopRequested(signum)

    @contextlib.contextmanager
    def interruptible(self, enabled: bool = True) -> Iterator[None]:
        """A block that a stop signal ends at once with `StopRequested` (also on entry, if one came
        before). `enabled=False`: the signal is only recorded (torchrun ranks must stop together,
        at a unit boundary)."""
        if enabled and self.signum:
            raise StopRequested(self.signum)
        self._armed = enabled
        try:
            yield
        finally:
            self._armed = False

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._armed = False
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
