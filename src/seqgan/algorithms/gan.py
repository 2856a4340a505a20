"""What every GAN variant with a discriminator shares: G and D, D's pre-training on G's samples,
the adversarial epoch's schedule (g-steps generator updates, then d-steps rounds of D on fresh
negatives, either side frozen by `adversarial.train_g` / `train_d`) and D's held-out metrics.

A variant says how G is updated (`generator_step`: one step on a fresh batch, returning the values
to log) and what else it keeps (`models`); `seqgan.algorithms.seqgan` (rollout rewards) and
`seqgan.algorithms.reinforce` (whole-sequence rewards) are two.
"""

from __future__ import annotations

import torch

from seqgan.algorithms.base import Algorithm, Context, Logs, phase_lengths
from seqgan.algorithms.build import make_discriminator
from seqgan.algorithms.common import DRound, discriminator_metrics, discriminator_round


class GAN(Algorithm):
    uses = ("data", "generator", "discriminator", "pretrain", "d_pretrain", "adversarial", "eval", "checkpoint", "condition")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.discriminator = make_discriminator(ctx.cfg, ctx.data).to(ctx.device)

    def add_gan_optimizers(self, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        """G's adversarial optimizer, then D's (in this order: checkpoints list them so), both Adam with `betas`."""
        cfg = self.cfg
        self.add_optimizer("adversarial", self.generator.parameters(), cfg.adversarial.g_lr, "adversarial.g_lr", betas)
        self.add_optimizer("discriminator", self.discriminator.parameters(), cfg.discriminator.lr, "discriminator.lr", betas)

    def trained_models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def epochs(self, phase: str) -> int:
        return phase_lengths(self.cfg)[phase]

    def unit_steps(self, phase: str) -> int:
        d, a, p = self.cfg.discriminator, self.cfg.adversarial, self.cfg.d_pretrain
        real = len(self.data.train)
        if phase == "d_pretrain":
            return p.epochs * (DRound(p.num_negatives, p.epochs, d.batch_size).pairs(real) // d.batch_size)
        if phase == "adversarial":
            d_round = a.d_epochs * (DRound(a.num_negatives, a.d_epochs, d.batch_size).pairs(real) // d.batch_size)
            return a.g_steps * a.train_g + a.d_steps * d_round * a.train_d
        return super().unit_steps(phase)

    def begin_phase(self, phase: str) -> None:
        if phase == "d_pretrain":
            self.discriminator.begin_training(self.generator)

    def generator_step(self) -> dict[str, float]:
        """One adversarial update of G on a fresh batch: the values to log (a loss, a mean reward)."""
        raise NotImplementedError

    def d_round(self, num_negatives: int, epochs: int) -> float:
        """A round of D training on `num_negatives` fresh samples of G (and as many real sequences)."""
        d, data = self.cfg.discriminator, self.data
        mismatched = round(d.mismatched * num_negatives) if data.cond_train is not None else 0
        prefixes = self.cfg.adversarial.reward == "prefix_d"  # D learns the prefixes it will score
        settings = DRound(
            num_negatives,
            epochs,
            d.batch_size,
            label_smoothing=d.label_smoothing,
            l2_reg=d.l2_reg,
            mismatched=mismatched,
            prefixes=prefixes,
        )
        self.steps["d"] += epochs * (settings.pairs(len(data.train)) // d.batch_size)
        return discriminator_round(
            self.discriminator,
            self.optimizers["discriminator"].optimizer,
            self.generator,
            data.train,
            settings,
            self.streams,
            dist=self.dist,
            model=self.wrappers["discriminator"],
            cond=data.cond_train,
            graphs=self.step_graphs("discriminator", self.discriminator.weights_changed),
        )

    def d_pretrain_step(self) -> Logs:
        p = self.cfg.d_pretrain
        return {"d_loss": [self.d_round(p.num_negatives, p.epochs)]}

    def adversarial_epoch(self) -> Logs:
        a = self.cfg.adversarial
        logs: Logs = {}
        for _ in range(a.g_steps if a.train_g else 0):
            for key, value in self.generator_step().items():
                logs.setdefault(key, []).append(value)
            self.steps["g"] += 1
        for _ in range(a.d_steps if a.train_d else 0):
            logs.setdefault("d_loss", []).append(self.discriminator_update())
        return logs

    def discriminator_update(self) -> float:
        """One of an adversarial epoch's `d_steps` D updates (SeqGAN's: a round on fresh negatives); its loss."""
        a = self.cfg.adversarial
        return self.d_round(a.num_negatives, a.d_epochs)

    def discriminator_metrics(self, rng: torch.Generator) -> dict[str, float]:
        """D's accuracy on held-out real sequences and fresh samples; conditional runs add
        d_cond_acc, how often D prefers a real sequence's own condition to another one."""
        data = self.data
        return discriminator_metrics(
            self.discriminator, data.test, self.generator, self.cfg.eval.d_samples, rng, dist=self.dist, cond=data.cond_test
        )
