"""Condition heads: P(c | y) for a discriminator that reads the sequence y alone (condition_join=classifier).

An AC-GAN D (Odena et al., 2017) scores a pair as D(y, c) = P(real | y) * P(c | y), its realness
from its own output layer and P(c | y) from a head trained on real pairs only:
- `ConditionClassifier` (label fields): class logits from D's features, one softmax per field;
- `ConditionMatcher` (feature vectors): a bilinear score of D's features against e(c), c
  competing with reference vectors of the training data;
- `seqgan.models.judge.GenerativeJudge`: a conditional LM used as a Bayes classifier.
Each is a `ConditionHead`; `real_and_fitting_logits` joins a realness and a log P(c | y) into
the logits of "real and of condition c".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.models.condition import (
    FeatureEncoder,
    LabelEncoder,
    condition_classifier_loss,
    condition_matching_loss,
    label_log_prob,
)


class ConditionHead(nn.Module):
    """P(c | y) for a D that reads y alone (condition_join=classifier, AC-GAN): what every head offers.

    `forward` maps what D hands it (its features h (B, P), or for an LM judge the tokens themselves)
    to what `log_prob` and `loss` read; `log_prob` gives log P(c | y) (B,) and `loss` the head's
    training loss on real pairs. `reference` holds the conditions every c competes with (feature
    vectors: fixed when the run starts and saved with D), or is None when c' ranges over classes."""

    reference: torch.Tensor | None  # (R, F), or None; set by each head's __init__

    def log_prob(self, read: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, read: torch.Tensor, cond: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The head's loss on the real pairs among read (B, ...) and cond (B, ...): rows (B,) bool marks them."""
        raise NotImplementedError

    def set_reference(self, rows: torch.Tensor) -> None:
        """The R conditions every c competes with: rows (R, F), e.g. drawn from the training data's."""
        if self.reference is None:
            raise ValueError("this head compares every class; it has no reference vectors")
        if rows.shape != self.reference.shape:
            raise ValueError(f"reference conditions must be {tuple(self.reference.shape)}, got {tuple(rows.shape)}")
        self.reference.copy_(rows)


class ConditionClassifier(ConditionHead):
    """The auxiliary classifier of an AC-GAN D (Odena et al., 2017): D's features h (B, P) -> class
    logits (B, sum_f K_f), one softmax per label field. It is trained on real sequences only (a
    classifier of the data's p(c | y) that G cannot teach its own mistakes), and D scores a pair as
    D(y, c) = P(real | y) * prod_f P(c_f | y): a sequence of the wrong class earns nothing, one
    that fits every class equally earns 1/K of its realness."""

    def __init__(self, in_dim: int, num_classes: list[int]) -> None:
        super().__init__()
        self.num_classes = list(num_classes)
        self.linear = nn.Linear(in_dim, sum(num_classes))
        self.reference = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)

    def log_prob(self, class_logits: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """log prod_f P(c_f | y): class logits (B, sum K), labels (B, F) -> (B,)."""
        return label_log_prob(class_logits, cond, self.num_classes)

    def loss(self, class_logits: torch.Tensor, cond: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the real rows (rows (B,) bool): class logits (B, sum K), labels (B, F) -> ()."""
        return condition_classifier_loss(class_logits, cond, self.num_classes, rows)


class ConditionMatcher(ConditionHead):
    """The feature-vector counterpart of `ConditionClassifier` (condition_join=classifier with
    condition.kind=features): a vector has no classes to predict, so the head scores how well y
    fits a vector c by a bilinear form s(y, c) = (W h) . e(c), h D's features (B, P), e D's own
    `FeatureEncoder`, and P(c | y) is a softmax over c and `reference` (R, F), R other conditions
    of the training data fixed when the run starts (saved with D):
        P(c | y) = exp s(y, c) / (exp s(y, c) + sum_r exp s(y, r)), a reference row equal to c left out.
    Like the class head it is trained on real pairs only, here contrastively (InfoNCE over the
    batch: each real y against the other rows' conditions, `condition_matching_loss`), and D scores
    D(y, c) = P(real | y) * P(c | y): a sequence that fits another vector better earns little."""

    def __init__(self, in_dim: int, encoder: FeatureEncoder, num_reference: int = 63) -> None:
        super().__init__()
        if num_reference < 1:
            raise ValueError(f"num_reference must be >= 1, got {num_reference}")
        self.encoder = encoder
        self.query = nn.Linear(in_dim, encoder.dim, bias=False)
        self.register_buffer("reference", torch.zeros(num_reference, encoder.feature_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """D's features h (B, P) -> the query W h (B, E) that meets each e(c)."""
        return self.query(h)

    def log_prob(self, query: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """log P(c | y) against the reference conditions: query (B, E), c (B, F) -> (B,)."""
        own = (query * self.encoder(cond)).sum(dim=1)  # (B,)
        return log_posterior_against_references(own, query @ self.encoder(self.reference).T, cond, self.reference)

    def loss(self, query: torch.Tensor, cond: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """InfoNCE among the real rows (rows (B,) bool): query (B, E), conditions (B, F) -> ()."""
        return condition_matching_loss(query, self.encoder(cond), rows)


def log_posterior_against_references(
    own: torch.Tensor, ref: torch.Tensor, cond: torch.Tensor, reference: torch.Tensor
) -> torch.Tensor:
    """log P(c | y) = own - logsumexp(own, ref) from the score of c (B,) and of each reference
    vector (B, R), a reference equal to c (B, F) left out: reference (R, F) -> (B,)."""
    same = (cond.unsqueeze(1) == reference.unsqueeze(0)).all(dim=2)  # (B, R): c itself among the references
    scores = torch.cat([own.unsqueeze(1), ref.masked_fill(same, float("-inf"))], dim=1)  # (B, 1 + R)
    return own - torch.logsumexp(scores, dim=1)


def real_and_fitting_logits(logits: torch.Tensor, log_p_cond: torch.Tensor) -> torch.Tensor:
    """Real/fake logits (B, 2) and log P(c | y) (B,) -> logits (B, 2) whose softmax is (1 - P, P),
    P = P(real | y) * P(c | y): the event "real and of condition c"."""
    log_p = F.logsigmoid(logits[:, 1] - logits[:, 0]) + log_p_cond  # (B,)
    log_not = torch.log((-torch.expm1(log_p)).clamp_min(1e-30))  # log(1 - P)
    return torch.stack([log_not, log_p], dim=1)


def make_head(condition: nn.Module | None, condition_join: str, in_dim: int) -> ConditionHead | None:
    """The auxiliary head of condition_join='classifier': a class head sized by the label encoder's
    fields, or for feature vectors a matcher that owns D's feature encoder."""
    if condition is None or condition_join != "classifier":
        return None
    if isinstance(condition, LabelEncoder):
        return ConditionClassifier(in_dim, condition.num_classes)
    if isinstance(condition, FeatureEncoder):
        return ConditionMatcher(in_dim, condition)
    raise ValueError("condition_join='classifier' needs label or feature-vector conditions (a LabelEncoder or FeatureEncoder)")
