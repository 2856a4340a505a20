"""Checkpoint state: what a run's checkpoint holds, taken between two units, written, and read back.

A `Position` is where the run stands (phase, unit, what the next row averages, time per phase);
`Checkpoints` turns it and the live models, optimizers, step counts and RNG streams into a
`Boundary` (copied, so that training on does not change it), writes it as a checkpoint folder
(`seqgan.training.checkpoint`) and restores all of it from the newest intact folder. The trainer
keeps the boundary before each unit, so that a stop signal inside the unit can write it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seqgan import distributed
from seqgan.algorithms import Algorithm
from seqgan.algorithms.base import PHASES
from seqgan.seeding import rng_state, set_rng_state
from seqgan.training.checkpoint import (
    CheckpointError,
    DamagedCheckpointError,
    latest_checkpoint,
    load_state,
    load_weights,
    resume_candidates,
    save_checkpoint,
)
from seqgan.training.early_stopping import EarlyStopping


@dataclass
class Position:
    """Where a run stands: the next unit to run is `epoch` of `phase`."""

    phase: str = PHASES[0]
    epoch: int = 0
    begun: bool = False  # the phase's begin_phase (and starting row) done
    pending: dict[str, list[float]] = field(default_factory=dict)  # values logged since the last row
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase so far

    def state(self) -> dict[str, Any]:
        """The position as a checkpoint's state.pt holds it."""
        return {
            "phase": self.phase,
            "epoch": self.epoch,
            "begun": self.begun,
            "pending": {k: list(v) for k, v in self.pending.items()},
            "timings": dict(self.timings),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Position:
        # Older checkpoints were written only after a phase began, and before pending averages and
        # timings were recorded.
        pending = {k: list(v) for k, v in state.get("pending", {}).items()}
        return cls(state["phase"], state["epoch"], state.get("begun", True), pending, dict(state.get("timings", {})))

    def name(self) -> str:
        """The checkpoint folder's name: `<phase index>-<phase>-<epoch>`."""
        return f"{PHASES.index(self.phase)}-{self.phase}-{self.epoch:06d}"


@dataclass
class Boundary:
    """A copy of what a checkpoint holds, taken between two units: its folder name, every model's
    weights (by file name) and the state (optimizers, RNG streams, position in the run)."""

    name: str
    weights: dict[str, dict[str, torch.Tensor]]
    state: dict[str, Any]


class Checkpoints:
    """A run's checkpoint state: captures it, writes it (rank 0) and restores it."""

    def __init__(
        self,
        folder: Path,
        keep: int,
        algorithm: Algorithm,
        rngs: dict[str, torch.Generator],
        early: EarlyStopping | None,
        dist: distributed.Dist,
        *,
        device: torch.device,
    ) -> None:
        self.folder, self.keep, self.algorithm, self.rngs, self.early, self.dist = folder, keep, algorithm, rngs, early, dist
        self.device = device
        self.saved = ""  # name of the last checkpoint written by this process

    def models(self) -> dict[str, torch.nn.Module]:
        """Every model a checkpoint holds: the algorithm's, and G's best MLE epoch with early stopping."""
        extra = {"mle_best": self.early.best_model} if self.early is not None else {}
        return self.algorithm.models() | extra

    def capture(self, position: Position) -> Boundary:
        """Everything a checkpoint holds, copied now."""
        state: dict[str, Any] = position.state() | {
            "optimizers": {name: _copied(opt.optimizer.state_dict()) for name, opt in self.algorithm.optimizers.items()},
            "rng": rng_state(self.rngs, self.device),
            "steps": dict(self.algorithm.steps),
        }
        if self.early is not None:
            state["early_stop"] = dict(self.early.state)
        if self.dist.parallel:  # every rank's streams, so that each resumes exactly
            state["rng_ranks"] = distributed.all_gather_object(state["rng"], self.dist)
        weights = {key: _copied(model.state_dict()) for key, model in self.models().items()}
        return Boundary(position.name(), weights, state)

    def write(self, boundary: Boundary) -> None:
        """Write `boundary` as a checkpoint, unless this process just wrote it."""
        if boundary.name == self.saved:
            return
        self.saved = boundary.name
        if self.dist.is_main():
            save_checkpoint(self.folder, boundary.name, boundary.weights, boundary.state, self.keep)
        distributed.barrier(self.dist)  # no rank reports or resumes from a checkpoint still being written

    def restore(self) -> Position:
        """Load the newest intact checkpoint into the models, optimizers, step counts, RNG streams and
        early stopping; returns its position."""
        path, state = self._load_newest_good()
        for name, opt in self.algorithm.optimizers.items():
            opt.optimizer.load_state_dict(state["optimizers"][name])
            # An optimizer's state carries its learning rate: a config edited since would be silently ignored.
            saved = opt.optimizer.param_groups[0]["lr"]
            if saved != opt.lr:
                raise CheckpointError(
                    f"{path}: its optimizer ran with {opt.lr_setting}={saved}, the config says {opt.lr}; "
                    "a resumed run keeps its settings: put the value back, or start a new run"
                )
        ranks = state.get("rng_ranks", [state["rng"]])
        if len(ranks) != self.dist.world:
            raise CheckpointError(
                f"{path}: written by {len(ranks)} process(es), resumed with {self.dist.world}; resume with the same "
                f"number of processes (torchrun --nproc_per_node x --nnodes = {len(ranks)}, or no torchrun for 1)"
            )
        set_rng_state(ranks[self.dist.rank], self.rngs, self.device)
        self.saved = path.name
        self.algorithm.steps = dict(state.get("steps", {"g": 0, "d": 0}))  # absent in the oldest checkpoints
        if self.early is not None:
            self.early.state = dict(state["early_stop"])
        return Position.from_state(state)

    def _load_newest_good(self) -> tuple[Path, dict[str, Any]]:
        """Load every model from the newest checkpoint whose files are all intact (a damaged one is
        named in a warning and the one before it tried); returns its folder and state."""
        damaged: list[str] = []
        for path in resume_candidates(self.folder):
            try:
                for key, model in self.models().items():
                    load_weights(path, key, model)
                state = load_state(path)
            except DamagedCheckpointError as err:
                damaged.append(str(err))
                continue
            if damaged and self.dist.is_main():
                print(f"seqgan train: warning: {damaged[0]}; resuming from the older checkpoint {path}", file=sys.stderr)
            return path, state
        raise CheckpointError(f"no intact checkpoint in {self.folder} ({'; '.join(damaged)}); start the run again")

    def last(self) -> str:
        """The newest checkpoint on disk, for messages."""
        try:
            return str(latest_checkpoint(self.folder))
        except CheckpointError:
            return "none (no checkpoint was written yet)"


def _copied(value: Any) -> Any:
    """`value` with every tensor in it (in dicts, lists, tuples) cloned: state dicts share the live tensors."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(v) for v in value)
    return value
