"""TensorBoard mirror of metrics.jsonl (optional: `pip install 'seqgan[tensorboard]'`).

metrics.jsonl stays the record; the TensorBoard folder is a view of it. Whenever a process opens
the mirror it deletes the folder and replays every record of metrics.jsonl, so after a resume
(which drops the records written after the checkpoint) the TensorBoard curves equal those of an
uninterrupted run, with no duplicated or orphaned points.

Tags: G's metrics (MLE and adversarial phases) are logged as `<metric>` against `g_epoch`, the
paper's x-axis, so that one curve runs from MLE pre-training into adversarial training; the
discriminator pre-training records as `d_pretrain/<metric>` against its own step. The experiment
config is recorded once per folder, as TensorBoard hyperparameters and as YAML text.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from seqgan.errors import ConfigError
from seqgan.metrics.logger import CLOCK

NOT_METRICS = ("phase", "epoch", "g_epoch", *CLOCK)  # TensorBoard keeps its own wall time per event


def require_tensorboard() -> None:
    """Fail early, with the fix, when the optional dependency is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(
            "eval.tensorboard=true needs the tensorboard package: pip install 'seqgan[tensorboard]' "
            "(or pip install tensorboard), or set eval.tensorboard=false"
        ) from None


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"section": {"key": v}} -> {"section.key": v}, with values TensorBoard accepts (lists and None as text)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flat_hparams(value, f"{name}.")
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def scalars(record: dict[str, Any]) -> list[tuple[str, float, int]]:
    """(tag, value, step) of every numeric metric in one metrics.jsonl record."""
    if record["phase"] == "d_pretrain":
        prefix, step = "d_pretrain/", record["epoch"]
    else:
        prefix, step = "", record["g_epoch"]
    return [
        (prefix + key, float(value), int(step))
        for key, value in record.items()
        if key not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
    ]


class TensorBoardLog:
    """Writes records to `log_dir`; opened lazily, rebuilt from `history` when opened."""

    def __init__(self, log_dir: str | Path, config: Callable[[], dict[str, Any]]) -> None:
        require_tensorboard()
        self.dir = Path(log_dir)
        self.config = config  # read when opened: the run directory's config, paths resolved
        self._writer = None

    def open(self, history: list[dict[str, Any]]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        self._writer = SummaryWriter(log_dir=str(self.dir))
        config = self.config()
        self._writer.add_text("config", "```yaml\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)
        self._writer.add_hparams(flat_hparams(config), {}, run_name=".")
        for record in history:
            self._add(record)
        self._writer.flush()

    def write(self, record: dict[str, Any], history: Callable[[], list[dict[str, Any]]]) -> None:
        """Add one record; `history()` (the records before it) rebuilds the folder on first use only."""
        if self._writer is None:
            self.open(history())
        self._add(record)
        self._writer.flush()

    def _add(self, record: dict[str, Any]) -> None:
        for tag, value, step in scalars(record):
            self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a TensorBoard folder: tag -> [(step, value), ...] in writing order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
