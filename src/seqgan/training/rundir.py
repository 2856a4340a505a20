"""A run's folder: what `seqgan train` writes besides checkpoints, and when.

At the start (rank 0): the resolved `config.yaml`, `command.txt`, the data the run must read back
exactly (`seqgan.training.experiment.save_run_data`), `oracle.json` (the oracle's own held-out NLL:
the floor) or `data_report.json` (what happened to each line of a corpus). During the run:
`metrics.jsonl` (`seqgan.metrics.logger`), mirrored to TensorBoard with eval.tensorboard. At the
end: `timings.json` (seconds per phase, peak memory) and `samples.txt`.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

from seqgan.config import ExperimentConfig, save_config
from seqgan.data.dataset import Data
from seqgan.metrics.logger import MetricsLog
from seqgan.metrics.tensorboard import TensorBoardLog
from seqgan.training.experiment import save_run_data


class RunFolder:
    def __init__(self, path: Path, cfg: ExperimentConfig, main: bool) -> None:
        self.path = path
        tensorboard = TensorBoardLog(path / "tensorboard", cfg.to_dict) if cfg.eval.tensorboard and main else None
        self.log = MetricsLog(path / "metrics.jsonl", tensorboard)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def write_start(self, cfg: ExperimentConfig, argv: list[str], data: Data, oracle_floor: dict[str, Any] | None) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        save_config(cfg, self.path / "config.yaml")
        (self.path / "command.txt").write_text(" ".join(argv) + "\n", encoding="utf-8")
        save_run_data(data, self.path)
        if oracle_floor is not None:
            (self.path / "oracle.json").write_text(json.dumps(oracle_floor) + "\n", encoding="utf-8")
        if data.text is not None:
            (self.path / "data_report.json").write_text(json.dumps(data.text.report, indent=1) + "\n", encoding="utf-8")

    def record_resume(self, cfg: ExperimentConfig, argv: list[str]) -> None:
        """A resume that changed settings: the run's record follows the settings it now runs with."""
        save_config(cfg, self.path / "config.yaml")
        with open(self.path / "command.txt", "a", encoding="utf-8") as f:
            f.write(" ".join(argv) + "\n")

    def write_end(self, timings: dict[str, float], threads: int, processes: int, samples: list[str]) -> None:
        record = timings | {
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": threads,
            "processes": processes,
        }
        (self.path / "timings.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        (self.path / "samples.txt").write_text("".join(line + "\n" for line in samples), encoding="utf-8")
