"""RankGAN (Lin, Li, He, Zhang, Sun, NIPS 2017: "Adversarial Ranking for Language Generation").

What changes relative to SeqGAN (`seqgan.algorithms.seqgan`): the discriminator. A ranker
(`seqgan.models.ranker`, the CNN of SeqGAN's D without its real/fake output) embeds sentences, and
a sentence's score is its rank among a comparison set: the softmax, over the set and the sentence,
of gamma times the cosine similarity of the features to a reference sentence, averaged over
references (`seqgan.rl.ranking`, Eq. 2-3).

1. `mle`: G pre-trained by maximum likelihood (SeqGAN's).
2. `d_pretrain`: ranker rounds (`ranker_round`): fresh samples of G and as many real sentences;
   each batch ranks its real rows among generated ones (C-) and its generated rows among real
   ones (C+), against real references U, and descends Eq. 1's loss.
3. `adversarial`: per epoch, g-steps SeqGAN policy-gradient steps (`policy_gradient_step`: the
   same Monte Carlo rollouts, rollout policy, baselines, discount and KL options) whose rollouts
   are scored by the ranker: R(y | U, C+), one U and C+ of real sentences drawn per G step; then
   d-steps ranker rounds.

Sizes: |U| = rankgan.references and |C| = rankgan.comparison for every ranking, in training
and in the rewards; both draw real (or, for C-, generated) rows with replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from seqgan.algorithms.base import Algorithm, Context, Logs, phase_lengths, register
from seqgan.algorithms.common import DRound, Streams, clipped_step, finite_mean, round_examples
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, ConfigError, ExperimentConfig, on_off
from seqgan.data.dataset import Data
from seqgan.distributed import SINGLE, Dist, all_reduce_sum, call, replicate
from seqgan.models.condition import pick_rows
from seqgan.models.generator import Generator, frozen_copy
from seqgan.models.ranker import Ranker
from seqgan.rl.ranking import log_rank_scores, rank_scores, ranker_loss
from seqgan.rl.rollout import Scorer
from seqgan.runtime import to_device


@dataclass
class RankGANConfig:
    """RankGAN's own settings (YAML section `rankgan:`): the ranker and its rankings. The adversarial
    loop and G's policy gradient are the adversarial.* settings, its pre-training d_pretrain.*."""

    gamma: float = 1.0
    """gamma, the scale of the cosine similarities inside the rank softmax of Eq. 2 (the authors' code: 1)."""
    references: int = 16
    """|U|: real reference sentences every ranking averages over (the authors' code: ref_size 16)."""
    comparison: int = 63
    """|C|: sentences each scored one is ranked against (the authors' code ranks within batches of 64)."""
    embed_dim: int = 64
    """The ranker's token embedding size (SeqGAN's D: 64)."""
    filter_sizes: list[int] = field(default_factory=lambda: list(PAPER_FILTER_SIZES))
    """Convolution widths of the ranker's CNN (SeqGAN's D)."""
    num_filters: list[int] = field(default_factory=lambda: list(PAPER_NUM_FILTERS))
    """Filters per width; the features e(y) have sum(num_filters) entries."""
    dropout: float = 0.25
    """On the features in training (the authors' code: keep 0.75); none when scoring rewards."""
    lr: float = 1e-4
    """Adam's learning rate for the ranker (the authors' code: 1e-4)."""
    batch_size: int = 64
    """Sentences (real and generated, shuffled together) per ranker step."""
    fused_conv: str | bool = "auto"
    """As discriminator.fused_conv: one padded convolution for all widths ('on'), per width ('off'), or on CUDA only."""

    def __post_init__(self) -> None:
        for name in ("references", "comparison", "embed_dim", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"rankgan.{name} must be >= 1")
        if self.gamma <= 0 or self.lr <= 0:
            raise ConfigError("rankgan.gamma and rankgan.lr must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("rankgan.dropout must be in [0, 1)")
        if not self.filter_sizes or len(self.filter_sizes) != len(self.num_filters):
            raise ConfigError("rankgan.filter_sizes and rankgan.num_filters must be non-empty lists of equal length")
        if min(self.filter_sizes) < 1 or min(self.num_filters) < 1:
            raise ConfigError("rankgan.filter_sizes and rankgan.num_filters must be >= 1")
        self.fused_conv = on_off(self.fused_conv)
        if self.fused_conv not in ("auto", "on", "off"):
            raise ConfigError(f"rankgan.fused_conv={self.fused_conv!r}: use 'auto', 'on' or 'off'")


def make_ranker(s: RankGANConfig, vocab_size: int) -> Ranker:
    return Ranker(vocab_size, s.embed_dim, s.filter_sizes, s.num_filters, s.dropout, s.fused_conv)


@register
class RankGAN(Algorithm):
    name = "rankgan"
    summary = "Lin et al. 2017: SeqGAN's policy gradient with rewards from a ranker (cosine-similarity rank among real sentences)"
    Section = RankGANConfig
    uses = ("data", "generator", "pretrain", "d_pretrain", "adversarial", "eval", "checkpoint")

    @classmethod
    def global_batch_sizes(cls, cfg: ExperimentConfig) -> dict[str, int]:
        return super().global_batch_sizes(cfg) | {"rankgan.batch_size": cfg.algo.batch_size}  # the ranker's rounds

    @staticmethod
    def check_config(cfg: ExperimentConfig) -> None:
        too_wide = [w for w in cfg.algo.filter_sizes if w > cfg.data.length]
        if too_wide:
            raise ConfigError(
                f"rankgan.filter_sizes {too_wide} are wider than the sequences ({cfg.data.length} tokens); "
                "drop those widths (and their num_filters entries)"
            )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        cfg = ctx.cfg
        self.rollout = frozen_copy(self.generator)
        self.reference = frozen_copy(self.generator) if cfg.adversarial.kl_weight > 0 else None
        self.ranker = make_ranker(cfg.algo, ctx.data.vocab_size).to(ctx.device)
        self.add_optimizer("adversarial", self.generator.parameters(), cfg.adversarial.g_lr, "adversarial.g_lr")
        self.add_optimizer("ranker", self.ranker.parameters(), cfg.algo.lr, "rankgan.lr")

    def trained_models(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator, "ranker": self.ranker}

    def models(self) -> dict[str, torch.nn.Module]:
        models = {"generator": self.generator, "rollout": self.rollout, "ranker": self.ranker}
        return models | ({"reference": self.reference} if self.reference is not None else {})

    def epochs(self, phase: str) -> int:
        return phase_lengths(self.cfg)[phase]

    def begin_phase(self, phase: str) -> None:
        if phase == "adversarial" and self.cfg.adversarial.epochs > 0:
            self.rollout.load_state_dict(self.generator.state_dict())
            if self.reference is not None:
                self.reference.load_state_dict(self.generator.state_dict())

    # ---------------------------------------------------------------- ALGO LOGIC

    def r_round(self, num_negatives: int, epochs: int) -> float:
        """A round of ranker training on `num_negatives` fresh samples of G and as many real sentences."""
        s = self.cfg.algo
        settings = DRound(num_negatives, epochs, s.batch_size)
        self.steps["d"] += epochs * (settings.pairs(len(self.data.train)) // s.batch_size)
        return ranker_round(
            self.ranker,
            self.optimizers["ranker"].optimizer,
            self.generator,
            self.data.train,
            settings,
            s=s,
            streams=self.streams,
            dist=self.dist,
            model=self.wrappers["ranker"],
        )

    def d_pretrain_step(self) -> Logs:
        p = self.cfg.d_pretrain
        return {"d_loss": [self.r_round(p.num_negatives, p.epochs)]}

    def adversarial_epoch(self) -> Logs:
        a = self.cfg.adversarial
        logs: Logs = {}
        for _ in range(a.g_steps if a.train_g else 0):
            score = rank_scorer(
                self.ranker, self.data.train, self.cfg.algo, self.streams.sample, a.rollout_rows(self.device.type)
            )
            players = Players(self.generator, self.rollout, None, self.reference, score=score)
            loss, reward, kl = policy_gradient_step(
                players,
                self.optimizers["adversarial"].optimizer,
                a,
                self.data.length,
                self.streams,
                dist=self.dist,
                model=self.wrappers["generator"],
            )
            self.steps["g"] += 1
            logs.setdefault("g_loss", []).append(loss)
            logs.setdefault("mean_reward", []).append(reward)
            if kl is not None:
                logs.setdefault("kl_mle", []).append(kl)
        for _ in range(a.d_steps if a.train_d else 0):
            logs.setdefault("d_loss", []).append(self.r_round(a.num_negatives, a.d_epochs))
        return logs

    def discriminator_metrics(self, rng: torch.Generator) -> dict[str, float]:
        """rank_real: the mean rank score of held-out real sentences among fresh samples of G;
        rank_fake: of fresh samples among real sentences (eval.d_samples of each). A ranker that
        cannot tell them apart gives both 1 / (|C| + 1)."""
        return ranker_metrics(self.ranker, self.data, self.generator, self.cfg.algo, self.cfg.eval.d_samples, rng, dist=self.dist)


def rank_scorer(ranker: Ranker, real: torch.Tensor, s: RankGANConfig, rng: torch.Generator, chunk: int) -> Scorer:
    """G's reward for this step: y -> R(y | U, C+), with U (|U| rows) and C+ (|C| rows) drawn now from
    the real sentences `real` (R, T) and embedded once; the ranker scores in eval mode (no dropout)."""
    ranker.eval()
    references = ranker.embed(pick_rows(real, s.references, rng))  # (U, F)
    comparison = ranker.embed(pick_rows(real, s.comparison, rng))  # (C, F)

    def score(tokens: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return rank_scores(ranker.embed(tokens, chunk), comparison, references, s.gamma)

    return score


def batch_loss(
    ranker: Ranker,
    rows: torch.Tensor,
    is_real: torch.Tensor,
    *,
    real_comparison: torch.Tensor,
    fake_comparison: torch.Tensor,
    references: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Eq. 1's loss on one batch (`ranker_loss`) of rows (B, T), is_real (B,) bool: the real ones
    ranked among fake_comparison (C, T), the generated ones among real_comparison (C, T), against
    references (U, T); one forward pass. Every row is scored both ways and its kind's score kept,
    so the step's shapes do not depend on how many rows are real (no host read, CUDA-graph ready)."""
    e, e_plus, e_minus, e_ref = ranker.features(rows, real_comparison, fake_comparison, references)
    return ranker_loss(log_rank_scores(e, e_minus, e_ref, gamma), rank_scores(e, e_plus, e_ref, gamma), is_real)


def ranker_round(
    ranker: Ranker,
    optimizer: torch.optim.Optimizer,
    generator: Generator,
    real: torch.Tensor,
    settings: DRound,
    *,
    s: RankGANConfig,
    streams: Streams,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
) -> float:
    """Draw settings.num_negatives fresh sequences from G and as many real ones (`round_examples`,
    as D's rounds), then settings.epochs shuffled passes: each batch's real rows are ranked among
    |C| of the round's generated rows, its generated rows among |C| of its real rows, against |U|
    real references, all drawn per batch from the shuffle stream (the same on every rank). Returns
    the mean batch loss. Under torchrun each rank takes its rows of every batch."""
    model = model or replicate(ranker, dist)
    x, _, is_real = round_examples(generator, real, None, settings, streams, dist)
    pool_real, pool_fake = x[is_real], x[~is_real]
    ranker.train()
    total, steps, b = torch.zeros((), dtype=torch.float64, device=x.device), 0, settings.batch_size
    for _ in range(settings.epochs):
        perm = to_device(torch.randperm(len(x), generator=streams.shuffle), x.device)
        for i in range(0, len(x) - b + 1, b):
            idx = perm[i : i + b][dist.rows(b)]
            plus, minus, refs = (
                _draw(pool, n, streams.shuffle)
                for pool, n in ((pool_real, s.comparison), (pool_fake, s.comparison), (pool_real, s.references))
            )
            loss = call(
                model,
                batch_loss,
                x[idx],
                is_real[idx],
                real_comparison=plus,
                fake_comparison=minus,
                references=refs,
                gamma=s.gamma,
            )
            clipped_step(ranker.parameters(), optimizer, loss, None)
            total += loss.detach()
            steps += 1
    return finite_mean(total, steps, dist, "ranker")


def _draw(pool: torch.Tensor, n: int, rng: torch.Generator) -> torch.Tensor:
    """n rows of pool (R, T), uniformly with replacement, from a CPU stream."""
    return pool[to_device(torch.randint(len(pool), (n,), generator=rng), pool.device)]


@torch.no_grad()
def ranker_metrics(
    ranker: Ranker,
    data: Data,
    generator: Generator,
    s: RankGANConfig,
    num: int,
    rng: torch.Generator,
    *,
    dist: Dist = SINGLE,
) -> dict[str, float]:
    """rank_real and rank_fake (see `RankGAN.discriminator_metrics`); U, C+ from the training data,
    C- from fresh samples; each rank scores its share of the held-out rows."""
    ranker.eval()
    generator.eval()
    part = dist.part(min(num, len(data.test)))
    real = data.test[:num][part]
    fake = generator.sample(len(real), data.length, rng)
    refs = ranker.embed(pick_rows(data.train, s.references, rng))
    plus = ranker.embed(pick_rows(data.train, s.comparison, rng))
    minus = ranker.embed(generator.sample(s.comparison, data.length, rng))
    r_real = rank_scores(ranker.embed(real), minus, refs, s.gamma).sum()
    r_fake = rank_scores(ranker.embed(fake), plus, refs, s.gamma).sum()
    real_sum, fake_sum, count = all_reduce_sum([float(r_real), float(r_fake), float(len(real))], dist, real.device)
    return {"rank_real": real_sum / max(count, 1.0), "rank_fake": fake_sum / max(count, 1.0)}
