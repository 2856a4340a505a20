"""Stop training cleanly on SIGINT / SIGTERM: finish the current epoch, checkpoint, exit.

A second signal of either kind stops at once (the last checkpoint is still intact: checkpoints
are written atomically).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class TrainingStopped(Exception):
    """Training stopped on a signal after writing a checkpoint; `signum` says which."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopOnSignal:
    """Context manager: record the first SIGINT / SIGTERM in `signum` instead of dying."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
