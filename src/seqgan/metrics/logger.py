"""metrics.jsonl: one JSON object a line, each with the phase and epoch it was measured at, and
when (`CLOCK`: `wall_s`, seconds of training so far, and `time`, an ISO 8601 UTC timestamp).

With a `TensorBoardLog` attached every record is also written there (see `seqgan.metrics.tensorboard`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqgan.files import write_atomic_text

if TYPE_CHECKING:
    from seqgan.metrics.tensorboard import TensorBoardLog


CLOCK = ("wall_s", "time")
"""The keys of a row that say when it was written: the only ones that differ between identical runs."""


def without_clock(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without their `CLOCK` keys, to compare runs that should have measured the same."""
    return [{k: v for k, v in r.items() if k not in CLOCK} for r in rows]


class MetricsLog:
    def __init__(self, path: str | Path, tensorboard: TensorBoardLog | None = None) -> None:
        self.path = Path(path)
        self.tensorboard = tensorboard

    def write(self, record: dict[str, Any]) -> None:
        if self.tensorboard is not None:
            self.tensorboard.write(record, self.read)  # the log is read only when the mirror is (re)built
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the log by `records` (a resume drops what came after its checkpoint)."""
        write_atomic_text(self.path, "".join(json.dumps(r) + "\n" for r in records))
        if self.tensorboard is not None:
            self.tensorboard.close()  # the next write rebuilds it from the log

    def read(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records; a last line cut short by a crash is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise ValueError(f"{path}, line {i + 1}: not JSON; the metrics log is damaged") from None
    return rows
