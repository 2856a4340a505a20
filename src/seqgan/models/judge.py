"""A condition judge that is a conditional language model (discriminator.condition_judge=generator).

The AC-GAN D of `seqgan.models.discriminator` (condition_join=classifier) scores a pair as
D(y, c) = P(real | y) * P(c | y), its P(c | y) a head on D's own features of y. On the
feature-vector oracle such heads learn the condition far more slowly than G does: on 100,000
sequences a GRU matcher picks a held-out sequence's own vector among 4 0.60-0.66 of the time, the
MLE G used as a Bayes classifier 0.91 (`experiments/cond_oracle_judges.py`). `GenerativeJudge` is that
Bayes classifier made a part of D: a conditional LM of G's shape, started from the pre-trained G,
whose posterior over conditions with a uniform prior is

    P(c | y) = p(y | c) / sum_c' p(y | c'),

c' ranging over every class (one label field) or over c and R reference vectors of the training
data (a reference equal to c left out), each c' one pass of the LM over y. It is trained on real
pairs only, as a classifier rather than a language model (`loss`): -log P(c | y) with c' over the
classes, or for vectors over c and R other conditions of the same batch. `JudgedDiscriminator`
joins it to an unconditional D that scores P(real | y).
"""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.discriminator import Discriminator
from seqgan.models.generator import Generator
from seqgan.models.heads import ConditionHead, log_posterior_against_references


class GenerativeJudge(ConditionHead):
    """P(c | y) from a conditional LM `lm` (a `Generator` without noise input).

    Labels (`num_classes`, one label field): c' over all classes. Feature vectors (`feature_dim`):
    c' over c and `num_reference` reference rows (`set_reference`, saved with D)."""

    def __init__(
        self, lm: Generator, num_classes: int | None = None, feature_dim: int | None = None, num_reference: int = 7
    ) -> None:
        super().__init__()
        if (num_classes is None) == (feature_dim is None):
            raise ValueError("give num_classes (one label field) or feature_dim (feature vectors)")
        if lm.noise_dim:
            raise ValueError("a judge needs p(y | c) exactly: its LM must have no noise input (generator.noise_dim=0)")
        if num_reference < 1:
            raise ValueError(f"num_reference must be >= 1, got {num_reference}")
        self.lm = lm
        self.num_classes = num_classes
        self.num_reference = num_reference
        if feature_dim is not None:
            self.register_buffer("reference", torch.zeros(num_reference, feature_dim))
        else:
            self.reference = None

    def log_likelihoods(self, tokens: torch.Tensor, options: torch.Tensor) -> torch.Tensor:
        """log p(y | c') of each sequence under each of its options: tokens (B, T), options (B, M, ...)
        -> (B, M), in one batched pass over the B M pairs (padding after an end token left out)."""
        B, M = options.shape[:2]
        rows = tokens.repeat_interleave(M, dim=0)  # (B M, T), row b M + m = tokens[b]
        logp = self.lm.log_probs(rows, 1.0, cond=options.flatten(0, 1))  # (B M, T)
        mask = self.lm.mask(rows)
        return (logp if mask is None else logp * mask).sum(dim=1).view(B, M)

    def log_prob(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """log P(c | y): tokens (B, T), cond (B, 1) int64 labels or (B, F) vectors -> (B,)."""
        B = len(tokens)
        if self.reference is None:  # every class: the target is c itself
            options = torch.arange(self.num_classes, device=cond.device).view(1, -1, 1).expand(B, -1, 1)  # (B, K, 1)
            scores = self.log_likelihoods(tokens, options)  # (B, K)
            return scores.gather(1, cond[:, :1]).squeeze(1) - torch.logsumexp(scores, dim=1)
        refs = self.reference.unsqueeze(0).expand(B, -1, -1)  # (B, R, F)
        scores = self.log_likelihoods(tokens, torch.cat([cond.unsqueeze(1), refs], dim=1))  # (B, 1 + R), own first
        return log_posterior_against_references(scores[:, 0], scores[:, 1:], cond, self.reference)

    def loss(self, tokens: torch.Tensor, cond: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """-mean log P(c | y) on the real pairs (rows (B,) bool): tokens (B, T), cond (B, ...) -> ().
        Labels: c' over the classes. Vectors: c' over c and the conditions of the next min(R, B - 1)
        real rows of the batch (cyclically), other conditions of the data rather than the fixed
        references. It selects the real rows (a host read: a D step with a judge is no CUDA graph,
        and the judge's passes of its LM over every option outweigh a launch per kernel)."""
        tokens, cond = tokens[rows], cond[rows]
        if self.reference is None:
            return -self.log_prob(tokens, cond).mean()
        B = len(tokens)
        shifts = range(1, min(self.num_reference, B - 1) + 1)
        options = torch.stack([cond, *(cond.roll(-s, dims=0) for s in shifts)], dim=1)  # (B, 1 + S, F), own first
        scores = self.log_likelihoods(tokens, options)  # (B, 1 + S)
        return (torch.logsumexp(scores, dim=1) - scores[:, 0]).mean()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """What `log_prob` and `loss` read: the sequences themselves (the judge reads y, not D's features)."""
        return tokens


class JudgedDiscriminator(Discriminator):
    """D(y, c) = P(real | y) * P_judge(c | y): an unconditional D `realness` (CNN or RNN, logits
    (B, 2)) and a `GenerativeJudge` as its condition head (`classifier`), so D's training step
    trains real/fake on every row and the judge on the real rows."""

    def __init__(self, realness: Discriminator, judge: GenerativeJudge) -> None:
        super().__init__()
        self.realness = realness
        self.classifier = judge

    @property
    def out(self) -> nn.Linear:
        """The real/fake output layer (its L2 penalty is D's)."""
        return self.realness.out

    def realness_and_head(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> real/fake logits (B, 2), and what the judge reads (the tokens)."""
        return self.realness(tokens), self.classifier(tokens)

    def begin_training(self, generator: nn.Module) -> None:
        """The judge starts as the pre-trained G."""
        self.classifier.lm.load_state_dict(generator.state_dict())
