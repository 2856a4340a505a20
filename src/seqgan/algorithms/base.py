"""What a GAN variant is, to the trainer (`seqgan.training.run`).

Every run has three phases, in order, each of which an algorithm may leave empty (0 epochs):
`mle` (G pre-trained by maximum likelihood), `d_pretrain` (D pre-trained on G's samples) and
`adversarial`. The trainer runs them: epochs, progress bars, evaluation, checkpoints, stop
signals, resume. An algorithm supplies what makes it that algorithm:
- its models (`models`: everything a checkpoint saves) and its optimizers;
- one unit of each phase (`mle_epoch`, `d_pretrain_step`, `adversarial_epoch`), which returns the
  values to log, each a list of per-step values (the trainer logs the last epoch's, or for the
  adversarial phase their mean since the last evaluation);
- `begin_phase`, run once when a phase starts (not again on a resume in the middle of it);
- `discriminator_metrics`, what evaluation adds about D.
It registers under its name (`@register`), with its own config section, if any, beside it.
`Algorithm` itself is the MLE baseline's skeleton: G and its MLE optimizer, the shared MLE epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from seqgan.algorithms.build import make_generator
from seqgan.algorithms.common import Streams, mle_epoch, read_logged
from seqgan.config import AlgorithmSpec, ExperimentConfig, register_algorithm
from seqgan.cuda_graphs import StepGraphs, d_step_precision, step_graphs_apply
from seqgan.data.dataset import Data
from seqgan.distributed import Dist, replicate
from seqgan.models.generator import Generator

PHASES = ("mle", "d_pretrain", "adversarial")
Logs = dict[str, list[float | torch.Tensor]]
"""Values to log after a unit of training: each name's per-step values (a loss, a mean reward),
as floats or as 0-d tensors of this rank still on the device, which `train_unit` reads back in one
go (`read_logged`): a step need not wait for the device to log its loss."""


@dataclass
class Context:
    """What an algorithm is built from."""

    cfg: ExperimentConfig
    data: Data
    device: torch.device
    dist: Dist
    streams: Streams
    prepare_generator: Callable[[Generator], None] | None = None
    """Run on G right after it is built, before any copy of it is made (pretrain.init_from loads
    another run's G here)."""


@dataclass
class Optimizer:
    """An optimizer, its learning rate and the setting it comes from (a resume refuses a changed one)."""

    optimizer: torch.optim.Optimizer
    lr: float
    lr_setting: str


def phase_lengths(cfg: ExperimentConfig) -> dict[str, int]:
    """Units of each phase of an algorithm that runs all three: MLE epochs, D pre-training steps, adversarial epochs."""
    return {"mle": cfg.pretrain.epochs, "d_pretrain": cfg.d_pretrain.steps, "adversarial": cfg.adversarial.epochs}


def adam(params: list[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam with its fused kernel (one pass over all tensors: 5x faster than the per-tensor loop on
    one CPU thread for the paper's D) where every parameter is a float on a CPU or CUDA device."""
    fused = all(p.dtype in (torch.float32, torch.float64) and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)


GLOBAL_BATCHES = {
    "pretrain": ("batch_size",),
    "discriminator": ("batch_size",),
    "d_pretrain": ("num_negatives",),
    "adversarial": ("batch_size", "num_negatives"),
}
"""Settings of the shared sections that are global batch sizes under torchrun."""


class Algorithm:
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    """One line: what it is (shown by `--help` and errors)."""
    Section: ClassVar[type | None] = None
    """Its own config section (a dataclass; YAML key: the name), or None."""
    uses: ClassVar[tuple[str, ...]] = ("data", "generator", "pretrain", "eval", "checkpoint", "condition")
    """The shared config sections it reads."""

    def __init__(self, ctx: Context) -> None:
        self.cfg, self.data, self.dist, self.streams, self.device = ctx.cfg, ctx.data, ctx.dist, ctx.streams, ctx.device
        self.steps = {"g": 0, "d": 0}  # optimizer steps so far (kept in checkpoints)
        self.optimizers: dict[str, Optimizer] = {}
        self._graphs: dict[str, StepGraphs | None] = {}
        self.generator = make_generator(ctx.cfg, ctx.data).to(ctx.device)
        if ctx.prepare_generator is not None:
            ctx.prepare_generator(self.generator)
        self.add_optimizer("mle", self.generator.parameters(), ctx.cfg.pretrain.lr, "pretrain.lr")  # G's pre-training

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        """Checks across config sections that only this algorithm needs (raise ConfigError with the fix)."""

    @classmethod
    def global_batch_sizes(cls, cfg: ExperimentConfig) -> dict[str, int]:
        """The batch sizes it reads that are global (split evenly over torchrun's processes), by setting name:
        those of the shared sections it uses; an algorithm with batches of its own adds them."""
        return {
            f"{section}.{key}": getattr(getattr(cfg, section), key)
            for section, keys in GLOBAL_BATCHES.items()
            if section in cls.uses
            for key in keys
        }

    @functools.cached_property
    def wrappers(self) -> dict[str, nn.Module]:
        """Each trained model's wrapper (DDP under torchrun), built on first use: the training steps
        call the model's methods through it (`seqgan.distributed.call`)."""
        return {name: replicate(model, self.dist) for name, model in self.trained_models().items()}

    def trained_models(self) -> dict[str, nn.Module]:
        """The models that take optimizer steps (one DDP wrapper each under torchrun)."""
        return {"generator": self.generator}

    def add_optimizer(
        self, name: str, params, lr: float, lr_setting: str, betas: tuple[float, float] = (0.9, 0.999)
    ) -> torch.optim.Optimizer:
        opt = adam(list(params), lr, betas)
        self.optimizers[name] = Optimizer(opt, lr, lr_setting)
        return opt

    def step_graphs(self, name: str, after_step: Callable[[], None] | None = None) -> StepGraphs | None:
        """CUDA graphs for the fixed-shape steps of optimizer `name` (`seqgan.cuda_graphs`), made on
        first use; None where they do not apply (CPU, torchrun, bf16, also D's with
        discriminator.precision=bf16, cuda_graphs=false): eager steps."""
        if name not in self._graphs:
            opt = self.optimizers[name].optimizer
            precision = d_step_precision(
                self.cfg.precision, self.cfg.discriminator.precision if name == "discriminator" else None
            )
            graphed = step_graphs_apply(opt, self.dist.parallel, precision, self.cfg.cuda_graphs)
            self._graphs[name] = StepGraphs(opt, after_step) if graphed else None
        return self._graphs[name]

    def models(self) -> dict[str, nn.Module]:
        """Every model a checkpoint saves, by the file name it is saved under."""
        return {"generator": self.generator}

    # ---------------------------------------------------------------- phases

    def epochs(self, phase: str) -> int:
        """How many units the phase has (MLE epochs, D pre-training steps, adversarial epochs)."""
        return self.cfg.pretrain.epochs if phase == "mle" else 0

    def unit_steps(self, phase: str) -> int:
        """Optimizer steps one unit of `phase` takes (what a progress bar inside a long unit counts)."""
        return len(self.data.train) // self.cfg.pretrain.batch_size if phase == "mle" else 0

    def begin_phase(self, phase: str) -> None:
        """Run once when `phase` starts, before its first unit."""

    def mle_epoch(self) -> Logs:
        """One epoch of teacher-forced MLE of G over the training data (`common.mle_epoch`)."""
        p, data = self.cfg.pretrain, self.data
        loss = mle_epoch(
            self.generator,
            self.optimizers["mle"].optimizer,
            data.train,
            p.batch_size,
            p.grad_clip,
            self.streams.shuffle,
            dist=self.dist,
            model=self.wrappers["generator"],
            cond=data.cond_train,
            graphs=self.step_graphs("mle"),
        )
        self.steps["g"] += len(data.train) // p.batch_size
        return {"mle_loss": [loss]}

    def d_pretrain_step(self) -> Logs:
        raise NotImplementedError(f"algorithm {self.name} has no D pre-training")

    def adversarial_epoch(self) -> Logs:
        raise NotImplementedError(f"algorithm {self.name} has no adversarial phase")

    def discriminator_metrics(self, rng: torch.Generator) -> dict[str, float]:
        """What evaluation adds about D (accuracy on held-out data); nothing without a D."""
        return {}

    def train_unit(self, phase: str) -> dict[str, list[float]]:
        """One unit of `phase`; its logged values, read back to the host."""
        logs = {"mle": self.mle_epoch, "d_pretrain": self.d_pretrain_step, "adversarial": self.adversarial_epoch}[phase]()
        return read_logged(logs, self.dist, self.device)


ALGORITHMS: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator: make `algorithm: NAME` choose `cls`, and tell the config its section."""
    ALGORITHMS[cls.name] = cls
    register_algorithm(cls.name, AlgorithmSpec(cls.Section, cls.uses, cls.check_config, cls.summary))
    return cls
