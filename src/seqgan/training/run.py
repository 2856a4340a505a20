"""The trainer: a run's phases, top to bottom, for any algorithm (`seqgan.algorithms`).

1. `mle`: pre-train G by maximum likelihood (with `pretrain.patience`, until the validation NLL
   stops improving; G then goes back to its best epoch: `seqgan.training.early_stopping`).
2. `d_pretrain`: pre-train D on real data against G's samples.
3. `adversarial`: the algorithm's adversarial training.
What one unit of a phase does is the algorithm's; the trainer runs the units, shows progress,
writes a metrics row every `eval.every` units and at every phase end (`Evaluator` for G, the
algorithm for D; each row with its `wall_s` and `time`), checkpoints every `checkpoint.every` units and
at every phase end, and stops cleanly on SIGINT / SIGTERM within seconds: the unit in progress is
dropped and the state kept at the boundary before it is checkpointed (`seqgan.training.signals`;
under torchrun, after the unit). An "MLE only" baseline is `algorithm: mle`.

Under torchrun (`seqgan.distributed`) every rank runs this same loop on its shard of each global
batch; metrics are computed on shards and summed; only rank 0 writes files; checkpoints hold
every rank's RNG states, so a resume must use the same number of processes.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from seqgan import distributed
from seqgan.algorithms import ALGORITHMS, Algorithm, Context
from seqgan.algorithms.base import PHASES, Logs
from seqgan.algorithms.common import Streams
from seqgan.config import ConfigError, ExperimentConfig
from seqgan.data.text import resolve_paths
from seqgan.errors import NonFiniteLossError
from seqgan.generation import format_samples, sample_for_data
from seqgan.runtime import autocast, check_deterministic, check_precision, configure, set_numerics
from seqgan.seeding import set_seed
from seqgan.training import progress
from seqgan.training.checkpoint import load_weights
from seqgan.training.early_stopping import EarlyStopping
from seqgan.training.evaluator import Evaluator, eval_generator
from seqgan.training.experiment import init_source, load_run_data, resolve_device, split_run_spec
from seqgan.training.rundir import RunFolder
from seqgan.training.signals import StopOnSignal, StopRequested, TrainingStopped
from seqgan.training.state import Boundary, Checkpoints, Position

SHOWN = ("nll_oracle", "nll_test", "bleu4_test", "exact_match_greedy")  # metrics on the progress bar


@dataclass(frozen=True)
class PhaseView:
    """How the trainer shows and logs a phase."""

    title: str
    generator_metrics: bool  # its rows carry G's metrics (D pre-training's only D's)
    discriminator_metrics: bool
    mean: bool  # a row logs the mean of the values since the last row, else the last unit's


VIEWS = {
    "mle": PhaseView("MLE pre-training", True, False, False),
    "d_pretrain": PhaseView("D pre-training", False, True, False),
    "adversarial": PhaseView("Adversarial", True, True, True),
}


class Trainer:
    def __init__(
        self, cfg: ExperimentConfig, run_dir: str | Path, quiet: bool = False, dist: distributed.Dist = distributed.SINGLE
    ) -> None:
        check_divisible(cfg, dist.world)
        self.cfg, self.dist = cfg, dist
        self.quiet = quiet or not dist.is_main()
        configure(cfg.threads)
        set_numerics(cfg.precision, cfg.deterministic)
        set_seed(cfg.seed)  # the same data and initial models on every rank
        self.device = resolve_device(cfg.device)
        check_deterministic(self.device, cfg.deterministic)
        if self.device.type == "cuda" and dist.parallel:
            self.device = torch.device("cuda", dist.local_rank)
        self.folder = RunFolder(Path(run_dir), cfg, dist.is_main())
        # A resumed run keeps its own data (oracle samples, vocabulary); a new one builds it, or
        # with pretrain.init_from takes that run's data and starts G from its checkpoint.
        source = None
        if cfg.pretrain.init_from and not (self.dir / "config.yaml").is_file():
            source = init_source(cfg, Path.cwd())
        self.data = load_run_data(cfg, self.dir if source is None else source[0], self.device)
        self.streams = Streams(
            sample=torch.Generator(self.device).manual_seed(dist.seed(cfg.seed)),  # each rank its own samples
            shuffle=torch.Generator().manual_seed(cfg.seed + 1),  # the same batch order on every rank
        )
        init = None if source is None else lambda g: load_weights(source[1], "generator", g)
        context = Context(cfg, self.data, self.device, dist, self.streams, init)
        self.algorithm: Algorithm = ALGORITHMS[cfg.algorithm](context)
        check_precision(self.device, cfg.precision, self.algorithm.models())  # before the folder is written
        self.early = EarlyStopping(self.generator, cfg.pretrain.patience) if cfg.pretrain.patience > 0 else None
        if not dist.is_main():  # dropout differs per rank; rank 0 goes on as the single-process run
            set_seed(dist.seed(cfg.seed))
        self.evaluator = Evaluator(cfg, self.data, dist, self.device)
        rngs = {"sample": self.streams.sample, "shuffle": self.streams.shuffle}
        self.checkpoints = Checkpoints(
            self.folder.checkpoints, cfg.checkpoint.keep, self.algorithm, rngs, self.early, dist, device=self.device
        )
        self.phase, self.epoch = PHASES[0], 0  # the next unit to run is `epoch` of `phase`
        self.timings: dict[str, float] = {}  # seconds per finished phase (and the running one's, in checkpoints)
        self._phase_began: float | None = None
        self.pending: dict[str, list[float]] = {}  # values logged since the last row (kept in checkpoints)
        self._stop = StopOnSignal()
        self._begun = False  # the current phase's begin_phase (and starting row) done
        self._boundary: Boundary | None = None  # the state at the last unit boundary (single process)

    @property
    def dir(self) -> Path:
        return self.folder.path

    @property
    def generator(self) -> torch.nn.Module:
        return self.algorithm.generator

    # ------------------------------------------------------------------ run folder and checkpoints

    def start(self, argv: list[str]) -> None:
        """Create the run folder with the resolved config and command line (rank 0)."""
        if self.dist.is_main():
            resolve_paths(self.cfg.data, Path.cwd(), self.cfg.condition)
            if self.cfg.pretrain.init_from:  # recorded absolute, like the data paths
                folder, name = split_run_spec(self.cfg.pretrain.init_from)
                self.cfg.pretrain.init_from = str(folder.resolve()) + (f"@{name}" if name else "")
            floor = self.evaluator.oracle_floor() if self.data.oracle is not None else None
            self.folder.write_start(self.cfg, argv, self.data, floor)
        distributed.barrier(self.dist)

    def models(self) -> dict[str, torch.nn.Module]:
        """Every model a checkpoint holds."""
        return self.checkpoints.models()

    def resume(self) -> None:
        """Continue from the newest intact checkpoint; the metrics written after it are dropped, so the
        log reads as if the run had never been interrupted."""
        position = self.checkpoints.restore()
        self.phase, self.epoch, self._begun = position.phase, position.epoch, position.begun
        self.pending, self.timings = position.pending, position.timings
        if self.dist.is_main():
            here = (PHASES.index(self.phase), self.epoch)
            self.folder.log.rewrite([r for r in self.folder.log.read() if (PHASES.index(r["phase"]), r["epoch"]) <= here])

    def capture(self) -> Boundary:
        """Everything a checkpoint holds, copied now (so that training on does not change it)."""
        return self.checkpoints.capture(Position(self.phase, self.epoch, self._begun, self.pending, self._timings_so_far()))

    def checkpoint(self, boundary: Boundary | None = None) -> None:
        """Write `boundary` (default: the state now) as a checkpoint, unless this process just wrote it."""
        self.checkpoints.write(boundary or self.capture())

    def _at_boundary(self, write: bool) -> None:
        """Between two units: keep the state (a single-process run, for a stop inside the next unit)
        and write it as a checkpoint if `write`."""
        if self.dist.parallel:  # ranks stop together at unit boundaries: nothing kept in memory
            if write:
                self.checkpoint()
            return
        self._boundary = self.capture()
        if write:
            self.checkpoint(self._boundary)

    def last_checkpoint(self) -> str:
        return self.checkpoints.last()

    # ------------------------------------------------------------------ metrics rows

    def g_epoch(self) -> int:
        """Epochs of G training so far: MLE epochs (those run, when stopped early) then adversarial
        ones (the x-axis of the paper's Fig. 2)."""
        mle_epochs = (self.early.stopped_at if self.early is not None else 0) or self.algorithm.epochs("mle")
        if self.phase == "adversarial":
            return mle_epochs + self.epoch
        return self.epoch if self.phase == "mle" else mle_epochs

    def record(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Write a metrics row of the current phase and epoch: `extra`, then what the phase measures."""
        view = VIEWS[self.phase]
        row = {"phase": self.phase, "epoch": self.epoch, "g_epoch": self.g_epoch(), **extra}
        rng = self.evaluator.rng()
        if view.generator_metrics:
            row |= self.evaluator.generator_metrics(self.generator, rng)
        else:
            self.generator.eval()
        if view.discriminator_metrics:
            row |= self.algorithm.discriminator_metrics(rng)
        row |= self._clock()
        if self.dist.is_main():
            self.folder.log.write(row)
        return row

    def _logged(self, logs: Logs) -> dict[str, float]:
        """What a row logs of the units since the last one: their mean, or the last unit's values."""
        if VIEWS[self.phase].mean:
            for key, values in logs.items():
                self.pending.setdefault(key, []).extend(values)
            out = {k: sum(v) / len(v) for k, v in self.pending.items() if v}
            return out
        return {k: v[-1] for k, v in logs.items() if v}

    # ------------------------------------------------------------------ phases

    def run(self) -> None:
        """Run the phases from where the run stands. A trainer stopped by a signal (`TrainingStopped`)
        is done: continue with a new one and `resume`."""
        with StopOnSignal() as stop:
            self._stop = stop
            try:
                for phase in PHASES[PHASES.index(self.phase) :]:
                    if phase != self.phase:
                        self.phase, self.epoch, self._begun = phase, 0, False
                    self._phase_began = time.perf_counter()
                    self._run_phase()
                    self.timings = self._timings_so_far()
                    self._phase_began = None
            except StopRequested as request:
                self._stop_inside_unit(request.signum)
            except NonFiniteLossError as err:
                steps = self.algorithm.steps
                raise NonFiniteLossError(
                    f"{err} in {self.phase} epoch {self.epoch + 1} (G steps so far {steps['g']}, D steps {steps['d']}); "
                    f"training stopped; the last good checkpoint is {self.last_checkpoint()}: lower the learning rate or "
                    "the gradient clip and continue with --resume, or start again"
                ) from None
        self.checkpoint()  # the final state, whatever the phases' lengths
        if self.dist.is_main():
            self._write_end()

    def _run_phase(self) -> None:
        total = self.algorithm.epochs(self.phase)
        if not self._begun:
            self.algorithm.begin_phase(self.phase)
            if self.phase == "mle" and (total > 0 or self.cfg.pretrain.init_from):  # where G starts
                self.record({})
            self._begun = True
        if total == 0:
            return
        self._at_boundary(write=False)
        with progress.phase_bar(VIEWS[self.phase].title, total, self.epoch, self.quiet) as bar:
            while self.epoch < total and not (self.early is not None and self.early.stopped_at):
                # A stop signal in here ends the unit at once; the run goes back to the boundary kept above.
                with self._stop.interruptible(enabled=not self.dist.parallel):
                    with self._steps_bar(), autocast(self.device, self.cfg.precision):
                        logs = self.algorithm.train_unit(self.phase)
                    self.epoch += 1
                    bar.update()
                    stopped = self.phase == "mle" and self._early_stop()
                    if self.epoch % self.cfg.eval.every == 0 or self.epoch == total or stopped:
                        extra = self._logged(logs) | ({"best_epoch": self.early.state["best_epoch"]} if stopped else {})
                        row = self.record(extra)
                        self.pending.clear()
                        bar.set_postfix({k: f"{row[k]:.3f}" for k in (*SHOWN, "d_loss", "d_acc") if k in row})
                    elif VIEWS[self.phase].mean:
                        self._logged(logs)
                self._checkpoint_or_stop(total, phase_over=stopped)

    def _stop_inside_unit(self, signum: int) -> None:
        """A stop signal came inside a unit: its work is dropped; the state of the boundary before it
        becomes the checkpoint a resume starts from (bitwise the same run as one never stopped)."""
        unit = f"{VIEWS[self.phase].title} {'step' if self.phase == 'd_pretrain' else 'epoch'} {self.epoch + 1}"
        self.checkpoint(self._boundary)
        raise TrainingStopped(
            f"stopped by {signal.Signals(signum).name} during {unit} (its work so far is dropped); checkpoint "
            f"{self.last_checkpoint()}; continue with: seqgan train --resume {self.dir}",
            signum,
        )

    def _early_stop(self) -> bool:
        """After an MLE epoch, with pretrain.patience: True when the phase ends here."""
        if self.early is None:
            return False
        data = self.data  # the same validation NLL on every rank: they stop together
        return self.early.update(self.epoch, self.evaluator.nll(self.generator, data.valid, data.cond_valid))

    def _checkpoint_or_stop(self, total: int, phase_over: bool = False) -> None:
        """After a unit: checkpoint when due, at the phase's end or when a stop signal came, then stop if asked."""
        if self.dist.parallel:  # all ranks stop together when any of them got a signal
            flag = torch.tensor([self._stop.signum], device=self.device)
            self._stop.signum = int(distributed.all_reduce_(flag, self.dist, op="max"))
        due = self.epoch % self.cfg.checkpoint.every == 0 or self.epoch == total or phase_over or self._stop.signum
        self._at_boundary(write=bool(due))
        if self._stop.signum:
            raise TrainingStopped(
                f"stopped by {signal.Signals(self._stop.signum).name} after {self.phase} epoch {self.epoch}; "
                f"checkpoint {self.last_checkpoint()}; continue with: seqgan train --resume {self.dir}",
                self._stop.signum,
            )

    def _steps_bar(self) -> contextlib.AbstractContextManager[None]:
        unit = "D pre-training step" if self.phase == "d_pretrain" else "epoch"
        optimizers = [opt.optimizer for opt in self.algorithm.optimizers.values()]
        return progress.steps_bar(f"{unit} {self.epoch + 1}", self.algorithm.unit_steps(self.phase), optimizers, self.quiet)

    def _timings_so_far(self) -> dict[str, float]:
        """Seconds per phase, the running phase's time so far included: a checkpoint keeps it, so a
        resumed run's totals count the time before the interruption too."""
        out = dict(self.timings)
        if self._phase_began is not None:
            out[self.phase] = out.get(self.phase, 0.0) + time.perf_counter() - self._phase_began
        return out

    def _clock(self) -> dict[str, Any]:
        """When a row is written: `wall_s`, the seconds the run's phases have taken so far (a resumed run
        goes on from its checkpoint's total; time after the last checkpoint of an interrupted run is
        lost with its rows), and `time`, the UTC date and time."""
        wall = sum(self._timings_so_far().values())
        return {"wall_s": round(wall, 3), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def _write_end(self) -> None:
        n = self.cfg.eval.final_samples
        samples = sample_for_data(self.generator, self.data, n, eval_generator(self.cfg, self.device))
        self.folder.write_end(self.timings, self.cfg.threads, self.dist.world, format_samples(samples, self.data))


def check_divisible(cfg: ExperimentConfig, world: int) -> None:
    """Batch sizes are global: each of `world` processes takes an equal share of every batch (those the
    run's algorithm reads, and the oracle's evaluation samples)."""
    if world == 1:
        return
    sizes = ALGORITHMS[cfg.algorithm].global_batch_sizes(cfg)
    if cfg.data.source == "oracle":
        sizes["eval.num_samples"] = cfg.eval.num_samples
    bad = [f"{k}={v}" for k, v in sizes.items() if v % world]
    if bad:
        raise ConfigError(
            f"{', '.join(bad)}: batch sizes are global and must split evenly over the {world} processes of this "
            f"torchrun job; use multiples of {world} or another --nproc_per_node"
        )
