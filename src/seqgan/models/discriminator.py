"""Discriminators D: score whole sequences as real (from the data) or generated.

`CNNDiscriminator` is the paper's (Yu et al., 2017, Sec. 4; Kim, 2014): token embedding, one
1-d convolution per window width with ReLU and max-over-time pooling, one highway layer, dropout,
and a 2-way output layer (class 1 = real). `RNNDiscriminator` reads the sequence with a
(bidirectional) GRU or LSTM and classifies either its final states or, with attention pooling,
a multi-head attention read-out of all its time steps by a learned query.

Both return logits (B, 2); `prob_real` is the reward signal D(Y) = P(real | Y).

A conditional D (`condition`, an encoder of `seqgan.models.condition`, D's own) judges (y, c)
pairs: the encoded condition e(c) is joined to the pooled sequence features before the layers that
classify them (the CNN's highway and output layers, the RNN's output layer), so its score can
depend on whether y fits c. `forward(tokens, cond)` then needs each row's condition.
With `condition_join="classifier"` (AC-GAN, Odena et al. 2017) D reads y alone and an auxiliary
head trained on real sequences scores c from the same features: for labels `ConditionClassifier`
predicts each label field, for feature vectors `ConditionMatcher` scores c against reference
vectors; the logits D returns are those of the event "real and of condition c",
P(real | y) * P(c | y).
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


class Highway(nn.Module):
    """One highway layer (Srivastava et al., 2015), as in the paper's code with gate bias 0:
    t = sigmoid(W_t x + b_t);  y = t * relu(W_h x + b_h) + (1 - t) * x."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1.0 - t) * x


# Above this many table entries (V x sum(width x filters)) scoring keeps the plain convolutions.
MAX_TABLE_ENTRIES = 100_000_000


class CNNDiscriminator(nn.Module):
    """The paper's CNN discriminator.

    Scoring without gradients (eval mode under `torch.no_grad`) takes a faster, equivalent route:
    a width-w convolution over embeddings at window p is sum_j Emb[y_{p+j}] . W_w[:, :, j], so with
    tables P_w[j * V + v] = Emb[v] @ W_w[:, :, j]^T every window is a sum of w table rows, one
    fused `embedding_bag` call per width. The paper's sizes need ~120k additions a sequence instead
    of 15 MFLOP of convolution; the tables (V x sum(w n_w) floats, 250 MB for the paper's D) are
    rebuilt whenever a weight has changed since the last call.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        filter_sizes: list[int],
        num_filters: list[int],
        dropout: float = 0.25,
        condition: nn.Module | None = None,
        condition_join: str = "concat",
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, n, w) for w, n in zip(filter_sizes, num_filters, strict=False))
        project = _projects(condition, condition_join)
        self.classifier = _classifier(condition, condition_join, sum(num_filters))
        self.condition = None if self.classifier is not None else condition  # a classifier D reads y alone
        total = sum(num_filters) + (self.condition.dim if self.condition is not None and not project else 0)
        self.highway = Highway(total)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(total, 2)
        self.projection = nn.Linear(condition.dim, total, bias=False) if project else None
        self._tables: list[torch.Tensor] | None = None
        self._tables_key: tuple | None = None

    def _lookup_tables(self) -> list[torch.Tensor]:
        """Per width: (V * w, n_w) with row v * w + j = embedding[v] @ conv.weight[:, :, j]^T."""
        params = [self.embedding.weight] + [conv.weight for conv in self.convs]
        key = tuple((id(p), p._version, p.data_ptr()) for p in params)
        if key != self._tables_key:
            emb = self.embedding.weight  # (V, E)
            if self._tables is None or self._tables[0].device != emb.device or self._tables[0].dtype != emb.dtype:
                self._tables = [emb.new_empty(emb.shape[0] * c.weight.shape[2], c.weight.shape[0]) for c in self.convs]
            for conv, table in zip(self.convs, self._tables, strict=True):
                n, e, w = conv.weight.shape
                # (V, E) @ (E, w * n) -> (V, w, n) viewed as (V * w, n), written into the old buffer
                torch.mm(emb, conv.weight.permute(1, 2, 0).reshape(e, w * n), out=table.view(-1, w * n))
            self._tables_key = key
        return self._tables

    def _use_tables(self) -> bool:
        entries = self.embedding.num_embeddings * sum(c.weight.shape[0] * c.weight.shape[2] for c in self.convs)
        return not self.training and not torch.is_grad_enabled() and entries <= MAX_TABLE_ENTRIES

    def _pooled_by_tables(self, tokens: torch.Tensor) -> torch.Tensor:
        """Max-over-time convolution outputs from the lookup tables: tokens (B, T) -> (B, sum n_w)."""
        pooled = []
        for conv, table in zip(self.convs, self._lookup_tables(), strict=True):
            w = conv.weight.shape[2]
            windows = tokens.unfold(1, w, 1)  # (B, L, w): token ids of each window
            idx = windows * w + torch.arange(w, device=tokens.device)  # row token * w + j of the table
            sums = F.embedding_bag(idx.reshape(-1, w), table, mode="sum")  # (B * L, n_w)
            pooled.append(sums.view(tokens.shape[0], -1, table.shape[1]).amax(dim=1) + conv.bias)
        return torch.cat(pooled, dim=1)

    def features(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T) -> pooled features (B, sum(num_filters)) after the highway layer, joined
        with e(c) (B, C) before it when conditional by concatenation."""
        if self._use_tables():
            pooled = self._pooled_by_tables(tokens)
        else:
            x = self.embedding(tokens).transpose(1, 2).contiguous()  # (B, E, T): Conv1d wants channels first
            pooled = torch.cat([conv(x).amax(dim=-1) for conv in self.convs], dim=1)
        # relu(max_t(x)) = max_t(relu(x)): pooling first makes ReLU a pass over (B, n_w), not (B, n_w, L).
        if self.projection is not None:
            check_condition(True, cond, len(pooled))
            return self.highway(pooled.relu_())
        return self.highway(join_condition(pooled.relu_(), self.condition, cond))

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T), cond (B, ...) for a conditional D -> logits (B, 2), class 1 = real
        (a classifier D: real and of class c)."""
        if self.classifier is not None:
            check_condition(True, cond, len(tokens))
            return self.classifier.joint_logits(*self.realness_and_classes(tokens), cond)
        h = self.dropout(self.features(tokens, cond))  # (B, P)
        return project_condition(self.out(h), h, self.projection, self.condition, cond)

    def realness_and_classes(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A classifier D's two outputs from one read of y: tokens (B, T) -> real/fake logits (B, 2)
        and its head's output: class logits (B, sum_f K_f), the label fields side by side, or a
        matcher's query (B, E)."""
        h = self.dropout(self.features(tokens))  # (B, P)
        return self.out(h), self.classifier(h)


class AttentionPooling(nn.Module):
    """Multi-head attention pooling over time: one learned query attends to every step.

    x (B, T, D) -> (B, D): softmax(q K^T / sqrt(d)) V per head, heads concatenated and projected."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) / dim**0.5)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.attention(self.query.expand(x.shape[0], -1, -1), x, x, need_weights=False)  # (B, 1, D)
        return pooled.squeeze(1)


class RNNDiscriminator(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        cell: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.25,
        pooling: str = "last",
        attention_heads: int = 1,
        condition: nn.Module | None = None,
        condition_join: str = "concat",
    ) -> None:
        super().__init__()
        if pooling not in ("last", "attention"):
            raise ValueError(f"pooling must be 'last' or 'attention', got {pooling!r}")
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(embed_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)
        width = hidden_dim * (2 if bidirectional else 1)
        self.pool = AttentionPooling(width, attention_heads) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        project = _projects(condition, condition_join)
        self.classifier = _classifier(condition, condition_join, width)
        self.condition = None if self.classifier is not None else condition  # a classifier D reads y alone
        self.out = nn.Linear(width + (self.condition.dim if self.condition is not None and not project else 0), 2)
        self.projection = nn.Linear(condition.dim, width, bias=False) if project else None

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> (B, P): the last layer's final state of each direction, or attention
        pooling over the outputs of every step."""
        out, state = self.rnn(self.embedding(tokens))  # out (B, T, directions * H)
        if self.pool is not None:
            return self.pool(out)
        h = state[0] if isinstance(state, tuple) else state  # (directions, B, H)
        return torch.cat(list(h), dim=1)

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T), cond (B, ...) for a conditional D -> logits (B, 2), class 1 = real
        (a classifier D: real and of class c)."""
        if self.classifier is not None:
            check_condition(True, cond, len(tokens))
            return self.classifier.joint_logits(*self.realness_and_classes(tokens), cond)
        pooled = self.pooled(tokens)
        if self.projection is not None:
            check_condition(True, cond, len(pooled))
            h = self.dropout(pooled)  # (B, P)
            return project_condition(self.out(h), h, self.projection, self.condition, cond)
        return self.out(self.dropout(join_condition(pooled, self.condition, cond)))

    def realness_and_classes(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A classifier D's two outputs: tokens (B, T) -> real/fake logits (B, 2), and class logits
        (B, sum_f K_f) or a matcher's query (B, E)."""
        h = self.dropout(self.pooled(tokens))
        return self.out(h), self.classifier(h)


class ConditionClassifier(nn.Module):
    """The auxiliary classifier of an AC-GAN D (Odena et al., 2017): D's features h (B, P) -> class
    logits (B, sum_f K_f), one softmax per label field. It is trained on real sequences only (a
    classifier of the data's p(c | y) that G cannot teach its own mistakes), and D scores a pair as
    D(y, c) = P(real | y) * prod_f P(c_f | y): a sequence of the wrong class earns nothing, one
    that fits every class equally earns 1/K of its realness."""

    def __init__(self, in_dim: int, num_classes: list[int]) -> None:
        super().__init__()
        self.num_classes = list(num_classes)
        self.linear = nn.Linear(in_dim, sum(num_classes))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h)

    def log_prob(self, class_logits: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """log prod_f P(c_f | y): class logits (B, sum K), labels (B, F) -> (B,)."""
        return label_log_prob(class_logits, cond, self.num_classes)

    def loss(self, class_logits: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on real rows: class logits (B, sum K), their labels (B, F) -> ()."""
        return condition_classifier_loss(class_logits, cond, self.num_classes)

    def joint_logits(self, logits: torch.Tensor, class_logits: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Real/fake logits (B, 2), class logits (B, sum K), labels (B, F) -> logits (B, 2) whose
        softmax is (1 - P, P), P = P(real | y) * prod_f P(c_f | y)."""
        return real_and_fitting_logits(logits, self.log_prob(class_logits, cond))


class ConditionMatcher(nn.Module):
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

    def set_reference(self, rows: torch.Tensor) -> None:
        """The R conditions every c competes with: rows (R, F), e.g. drawn from the training data's."""
        if rows.shape != self.reference.shape:
            raise ValueError(f"reference conditions must be {tuple(self.reference.shape)}, got {tuple(rows.shape)}")
        self.reference.copy_(rows)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """D's features h (B, P) -> the query W h (B, E) that meets each e(c)."""
        return self.query(h)

    def log_prob(self, query: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """log P(c | y) against the reference conditions: query (B, E), c (B, F) -> (B,)."""
        own = (query * self.encoder(cond)).sum(dim=1)  # (B,)
        return log_posterior_against_references(own, query @ self.encoder(self.reference).T, cond, self.reference)

    def loss(self, query: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """InfoNCE on real rows: query (B, E), their conditions (B, F) -> ()."""
        return condition_matching_loss(query, self.encoder(cond))

    def joint_logits(self, logits: torch.Tensor, query: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Real/fake logits (B, 2), query (B, E), c (B, F) -> logits (B, 2) of P(real | y) * P(c | y)."""
        return real_and_fitting_logits(logits, self.log_prob(query, cond))


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


CONDITION_JOINS = ("concat", "projection", "classifier")


def _projects(condition: nn.Module | None, condition_join: str) -> bool:
    if condition_join not in CONDITION_JOINS:
        raise ValueError(f"condition_join must be one of {CONDITION_JOINS}, got {condition_join!r}")
    return condition is not None and condition_join == "projection"


def _classifier(condition: nn.Module | None, condition_join: str, in_dim: int) -> ConditionClassifier | ConditionMatcher | None:
    """The auxiliary head of condition_join='classifier': a class head sized by the label encoder's
    fields, or for feature vectors a matcher that owns D's feature encoder."""
    if condition is None or condition_join != "classifier":
        return None
    if isinstance(condition, LabelEncoder):
        return ConditionClassifier(in_dim, condition.num_classes)
    if isinstance(condition, FeatureEncoder):
        return ConditionMatcher(in_dim, condition)
    raise ValueError("condition_join='classifier' needs label or feature-vector conditions (a LabelEncoder or FeatureEncoder)")


def check_condition(conditional: bool, cond: torch.Tensor | None, rows: int) -> None:
    """A conditional D needs one condition per sequence; an unconditional one none."""
    if conditional == (cond is None):
        raise ValueError(
            "this discriminator is conditional: pass cond (B, ...), each sequence's condition"
            if cond is None
            else "this discriminator has no condition input; pass cond=None"
        )
    if cond is not None and len(cond) != rows:
        raise ValueError(f"cond has {len(cond)} rows for {rows} sequences; give one condition per sequence")


def join_condition(pooled: torch.Tensor, encoder: nn.Module | None, cond: torch.Tensor | None) -> torch.Tensor:
    """pooled (B, P) -> [pooled; e(c)] (B, P + C) for a conditional D; pooled itself otherwise."""
    check_condition(encoder is not None, cond, len(pooled))
    return pooled if encoder is None else torch.cat([pooled, encoder(cond)], dim=1)


def project_condition(
    logits: torch.Tensor, h: torch.Tensor, projection: nn.Module | None, encoder: nn.Module | None, cond: torch.Tensor | None
) -> torch.Tensor:
    """The projection discriminator's condition term (Miyato & Koyama 2018): the "real" logit
    gains <W e(c), h>, an inner product of the condition's embedding with D's features, so D
    scores how well y fits c directly instead of through a layer over [h; e(c)].
    logits (B, 2), h (B, P), cond (B, ...) -> (B, 2); unchanged without a projection."""
    if projection is None:
        return logits
    score = (projection(encoder(cond)) * h).sum(dim=1)  # (B,)
    return logits + torch.stack([torch.zeros_like(score), score], dim=1)


@torch.no_grad()
def prob_real(
    discriminator: nn.Module, tokens: torch.Tensor, batch_size: int = 1024, cond: torch.Tensor | None = None
) -> torch.Tensor:
    """D(Y) = P(real | Y) (or D(Y, c) for a conditional D, cond (R, ...)) for many sequences, in
    chunks: tokens (R, T) -> (R,).

    The caller puts D in eval mode (no dropout), as the paper's code does when scoring rewards.
    """
    out = [
        torch.softmax(discriminator(tokens[i : i + batch_size], None if cond is None else cond[i : i + batch_size]), dim=-1)[:, 1]
        for i in range(0, len(tokens), batch_size)
    ]
    return torch.cat(out) if out else tokens.new_zeros(0, dtype=torch.float)


@torch.no_grad()
def prob_real_alone(discriminator: nn.Module, tokens: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """A classifier D's P(real | y) from its real/fake head alone, ignoring the class: tokens (R, T) -> (R,)."""
    out = [
        torch.softmax(discriminator.realness_and_classes(tokens[i : i + batch_size])[0], dim=-1)[:, 1]
        for i in range(0, len(tokens), batch_size)
    ]
    return torch.cat(out) if out else tokens.new_zeros(0, dtype=torch.float)
