"""Discriminators D: score whole sequences as real (from the data) or generated.

`CNNDiscriminator` is the paper's (Yu et al., 2017, Sec. 4; Kim, 2014): token embedding, one
1-d convolution per window width with ReLU and max-over-time pooling, one highway layer, dropout,
and a 2-way output layer (class 1 = real). `RNNDiscriminator` reads the sequence with a
(bidirectional) GRU or LSTM and classifies either its final states or, with attention pooling,
a multi-head attention read-out of all its time steps by a learned query.

Both are `Discriminator`s: the interface every algorithm uses, with no probing of what kind of D
it holds: `forward` (logits (B, 2) of D(y, c), whose `prob_real` is the reward signal), `loss`
(what a D training step minimises: Eq. 5's cross-entropy, the paper code's L2 on the output layer,
and a condition head's own loss), `real_fake_logits` (the real/fake decision alone, which D
accuracy reads) and `begin_training` (called before D's first step). A causal D (a one-way RNN D,
or the CNN with causal=True: `scores_prefixes`) also scores every prefix of a batch in one pass
(`prefix_logits`) and learns from every prefix (`prefix_loss`): the rewards of
`adversarial.reward=prefix_d`, with no rollouts.

A conditional D (`condition`, an encoder of `seqgan.models.condition`, D's own) judges (y, c)
pairs: the encoded condition e(c) is joined to the pooled sequence features before the layers that
classify them (the CNN's highway and output layers, the RNN's output layer), so its score can
depend on whether y fits c. `forward(tokens, cond)` then needs each row's condition.
With `condition_join="classifier"` (AC-GAN, Odena et al. 2017) D reads y alone and an auxiliary
head trained on real sequences scores c from the same features: for labels `ConditionClassifier`
predicts each label field, for feature vectors `ConditionMatcher` scores c against reference
vectors (`seqgan.models.heads`); the logits D returns are those of the event "real and of
condition c", P(real | y) * P(c | y).
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from seqgan.models.condition import repeat_rows
from seqgan.models.heads import ConditionHead, make_head, real_and_fitting_logits
from seqgan.models.masked import masked_mean
from seqgan.models.window_max import window_major, window_max
from seqgan.runtime import to_device


def discriminator_loss(
    logits: torch.Tensor,
    is_real: torch.Tensor,
    label_smoothing: float = 0.0,
    out_weight: torch.Tensor | None = None,
    out_bias: torch.Tensor | None = None,
    l2_reg: float = 0.0,
    *,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of D (Eq. 5): logits (B, 2), is_real (B,) bool, averaged over the rows, or over
    the rows where valid (B,) bool is True (a weighted mean: no boolean indexing, whose row count a
    GPU would read back).

    One-sided label smoothing: a real sequence's target is (eps, 1 - eps); a fake's stays (1, 0).
    L2 as TensorFlow's l2_loss on the output layer: l2_reg * (sum(W^2) + sum(b^2)) / 2.

    Without smoothing or a mask (the paper's D step) the targets are one-hot and the loss is
    `F.cross_entropy`: two operators forward and two backward where the soft targets' take ten (a
    D step on a GPU is launch-bound); the same gradients bit for bit (tested), the value to its
    last bit.
    """
    if label_smoothing == 0 and valid is None:
        loss = F.cross_entropy(logits, is_real.long())
    else:
        target_real = is_real.float() * (1.0 - label_smoothing)  # (B,): P(real) target
        targets = torch.stack([1.0 - target_real, target_real], dim=1)  # (B, 2)
        loss = masked_mean(-(targets * F.log_softmax(logits, dim=-1)).sum(dim=1), valid)
    if l2_reg > 0:
        if out_weight is None or out_bias is None:
            raise ValueError("l2_reg > 0 needs the output layer's weight and bias")
        loss = loss + l2_reg * 0.5 * (out_weight.pow(2).sum() + out_bias.pow(2).sum())
    return loss


ENTRY_POINTS = (
    "forward",
    "real_fake_logits",
    "loss",
    "prefix_loss",
    "soft_logits",
    "soft_scores",
    "prefix_scores",
    "continuation_logits",
    "prefix_logits",
    "features",
)
"""The methods through which algorithms, rewards and metrics use a D: each runs in the D's
`compute_dtype` (`_in_compute_dtype`), in the base class and in every subclass that overrides it."""


def _in_compute_dtype(method):
    """`method` of a Discriminator run in its `compute_dtype`: under bfloat16 autocast for
    torch.bfloat16, with autocast off for torch.float32, as the caller runs it for None. Only the
    outermost entry point switches (one D call may go through several), and bfloat16 outputs come
    back as float32, so that rewards, losses and probabilities are taken in float32 by the caller."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        dtype = self.compute_dtype
        if dtype is None or self._computing:
            return method(self, *args, **kwargs)
        device = next(self.parameters()).device.type
        self._computing = True
        try:
            with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
                out = method(self, *args, **kwargs)
        finally:
            self._computing = False
        if isinstance(out, tuple):
            return tuple(_float32(x) for x in out)
        return _float32(out)

    return run


def _float32(x):
    return x.float() if isinstance(x, torch.Tensor) and x.dtype == torch.bfloat16 else x


class Discriminator(nn.Module):
    """What every discriminator offers the algorithms that train it and read its rewards.

    A D either reads (y, c) itself (unconditional, or conditional by concatenation or projection:
    `plain_logits`), or reads y alone and has a condition head `classifier` giving P(c | y)
    (condition_join=classifier: `realness_and_head`), its score then the event "real and of
    condition c".

    compute_dtype (`discriminator.precision`): None, D computes in the caller's precision (the run's:
    bf16 autocast or none); torch.bfloat16, every `ENTRY_POINTS` method runs under bfloat16 autocast
    whatever the caller's, while G keeps the run's precision; torch.float32, autocast off. Its outputs
    are float32 in every case. Parameters and optimizer state stay float32."""

    out: nn.Linear  # the real/fake output layer (the paper code's L2 penalty is on it)
    classifier: ConditionHead | None  # P(c | y) of a D that reads y alone, else None
    compute_dtype: torch.dtype | None = None
    _computing = False  # inside an entry point (`_in_compute_dtype`)

    def __init_subclass__(cls, **kwargs) -> None:  # a subclass's overrides of the entry points switch too
        super().__init_subclass__(**kwargs)
        for name in ENTRY_POINTS:
            if name in cls.__dict__:
                setattr(cls, name, _in_compute_dtype(cls.__dict__[name]))

    def plain_logits(self, tokens: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """A D without a condition head: tokens (B, T), cond (B, ...) or None -> logits (B, 2)."""
        raise NotImplementedError

    def realness_and_head(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A D with a condition head, from one read of y: tokens (B, T) -> real/fake logits (B, 2)
        and what its head reads (the head's output on D's features, or the tokens for an LM judge)."""
        raise NotImplementedError

    @_in_compute_dtype
    def forward(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T), cond (B, ...) for a conditional D -> logits (B, 2), class 1 = real
        (a D with a condition head: real and of condition c)."""
        if self.classifier is None:
            return self.plain_logits(tokens, cond)
        check_condition(True, cond, len(tokens))
        logits, read = self.realness_and_head(tokens)
        return real_and_fitting_logits(logits, self.classifier.log_prob(read, cond))

    @_in_compute_dtype
    def real_fake_logits(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The real/fake decision alone (D accuracy reads it): a D with a condition head leaves the
        head out and ignores cond; any other D is `forward`."""
        if self.classifier is None:
            return self.plain_logits(tokens, cond)
        return self.realness_and_head(tokens)[0]

    @_in_compute_dtype
    def loss(
        self,
        tokens: torch.Tensor,
        cond: torch.Tensor | None,
        is_real: torch.Tensor,
        label_smoothing: float = 0.0,
        l2_reg: float = 0.0,
    ) -> torch.Tensor:
        """What one D step minimises on a batch: tokens (B, T), cond (B, ...) or None, is_real (B,) bool.

        Real/fake cross-entropy (`discriminator_loss`, one-sided label smoothing, L2 on the output
        layer); a D with a condition head learns real/fake on every row and its head, on the real
        rows only, the conditions of real sequences (a classifier of the data's p(c | y) that G
        cannot teach its own mistakes)."""
        if self.classifier is None:
            logits, head_loss = self.plain_logits(tokens, cond), 0.0
        else:
            logits, read = self.realness_and_head(tokens)
            head_loss = self.classifier.loss(read, cond, is_real)
        return head_loss + discriminator_loss(logits, is_real, label_smoothing, self.out.weight, self.out.bias, l2_reg)

    def weights_changed(self) -> None:
        """Forget what was computed from the weights: a training step changed them, perhaps without a
        forward pass of this module's Python (a replayed CUDA graph, `seqgan.cuda_graphs`). Nothing by default."""

    def output_l2(self, l2_reg: float) -> torch.Tensor:
        """The paper code's L2 penalty on the real/fake output layer (TensorFlow's l2_loss):
        l2_reg * (sum(W^2) + sum(b^2)) / 2, a scalar; what `loss` adds, for algorithms with a loss of their own."""
        return l2_reg * 0.5 * (self.out.weight.pow(2).sum() + self.out.bias.pow(2).sum())

    @_in_compute_dtype
    def soft_logits(self, vectors: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, 2) of D on probability vectors over the vocabulary, vectors (B, T, V) (one-hots
        of real tokens, relaxed samples of G), differentiable in them: what Gumbel-softmax GANs train
        G through. For a one-hot of y it equals `forward(y)`. A D with a condition head raises."""
        if self.classifier is not None:
            raise ValueError("a D with a condition head reads token ids only; use condition_join=concat or projection")
        return self.plain_soft_logits(vectors, cond)

    @_in_compute_dtype
    def soft_scores(self, vectors: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """D's logits of "real" on probability vectors (B, T, V) -> (B, K): one per representation
        of each sequence (K = 1 here; RelGAN's D scores K embedded representations, each logit a
        term of its loss). Subclasses with several representations override `representation_scores`."""
        return self.representation_scores(vectors, cond)

    def representation_scores(self, vectors: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """`soft_scores` of a D with one representation: its "real" log-odds (B, 1)."""
        return realness(self.soft_logits(vectors, cond)).unsqueeze(1)

    def plain_soft_logits(self, vectors: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """`soft_logits` of a D without a condition head; a D that reads token ids only raises."""
        raise NotImplementedError(f"{type(self).__name__} reads token ids only (no soft_logits)")

    @_in_compute_dtype
    def prefix_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """D's logit of "real" for every prefix y_1..y_t: tokens (B, T) -> (B, T) (ScratchGAN's dense
        rewards); only a D that reads left to right has it."""
        raise NotImplementedError(f"{type(self).__name__} scores whole sequences only (no prefix_scores)")

    @_in_compute_dtype
    def continuation_logits(
        self,
        sequences: torch.Tensor,
        continued: torch.Tensor,
        stride: int,
        cond: torch.Tensor | None = None,
        batch_size: int = 1024,
    ) -> torch.Tensor:
        """Logits (P, N, B, 2) of Monte Carlo rollouts (`seqgan.rl.rollout.rollout_sequences`):
        continued (P, N, B, T), row [j, n, b] the first (j + 1) * stride tokens of sequences[b]
        (B, T) and a continuation; cond (B, ...) each sequence's condition, or None. The values of
        `forward` on the rows, `batch_size` rows at a time; a D may share the work of the rows'
        common prefixes."""
        P, N, B, T = continued.shape
        rows, conds = continued.reshape(-1, T), repeat_rows(cond, P * N)
        out = [
            self(rows[i : i + batch_size], None if conds is None else conds[i : i + batch_size])
            for i in range(0, len(rows), batch_size)
        ]
        return torch.cat(out).view(P, N, B, 2)

    def begin_training(self, generator: nn.Module) -> None:
        """Called once before D's first training step, with the pre-trained G (an LM judge starts as a copy of it)."""

    @property
    def scores_prefixes(self) -> bool:
        """Whether `prefix_logits` is available: a causal D, whose score of y_1..y_t reads no later token."""
        return False

    @_in_compute_dtype
    def prefix_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every prefix scored in one pass: tokens (B, T) -> logits (B, T, 2), [b, t-1] = D(y_1..y_t)
        (class 1 = real). Only a D that `scores_prefixes` has it; its [:, -1] is `forward`'s score."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot score prefixes; use discriminator.kind=rnn with discriminator.bidirectional=false, "
            "or discriminator.causal=true (CNN), and no condition"
        )

    @_in_compute_dtype
    def prefix_loss(
        self,
        tokens: torch.Tensor,
        is_real: torch.Tensor,
        mask: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        l2_reg: float = 0.0,
    ) -> torch.Tensor:
        """D's loss on every prefix (ScratchGAN's per-step D, de Masson d'Autume et al. 2019): the
        cross-entropy of `discriminator_loss` at each (b, t), each prefix labelled as its sequence,
        averaged over the valid positions; tokens (B, T), is_real (B,) bool, mask (B, T) bool (True
        up to and including the end token; None: every position)."""
        logits = self.prefix_logits(tokens)  # (B, T, 2)
        labels = is_real[:, None].expand(tokens.shape)  # (B, T)
        valid = None if mask is None else mask.reshape(-1)  # (B T,): padding left out
        return discriminator_loss(
            logits.reshape(-1, 2), labels.reshape(-1), label_smoothing, self.out.weight, self.out.bias, l2_reg, valid=valid
        )


def _fused_gather(weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For `_fused_weight`: weights, each (n_w, E, w), laid end to end as (n_w, w, E) blocks and
    followed by the zeros (P,) returned here (P = the padded places) -> order (F, E, W) into that
    flat tensor, [f, c, j] = filter f's weight for channel c at offset j, or a zero of its own
    where j >= w_f; a permutation of its positions, whose inverse (F E W,) comes second. Built
    once, on the CPU, by arithmetic (nothing read back)."""
    widest, device = max(w.shape[2] for w in weights), weights[0].device
    start, zero = 0, sum(w.numel() for w in weights)  # where the next block, and the next zero, begin
    blocks = []
    for w in weights:
        n, e, width = w.shape
        at = (
            start
            + torch.arange(n)[:, None, None] * (width * e)
            + torch.arange(width)[None, None, :] * e
            + torch.arange(e)[None, :, None]
        )
        pads = n * e * (widest - width)
        blocks.append(torch.cat([at, zero + torch.arange(pads).view(n, e, widest - width)], dim=2))  # (n, E, W)
        start, zero = start + w.numel(), zero + pads
    order = torch.cat(blocks)
    inverse = torch.empty(order.numel(), dtype=torch.long)
    inverse[order.view(-1)] = torch.arange(order.numel())
    return to_device(order, device), to_device(inverse, device), torch.zeros(zero - start, device=device)


def padded_groups(widths: list[int], num_filters: list[int], length: int, groups: int) -> list[list[int]]:
    """The convolutions (indices into `widths`) split into `groups` zero-padded convolutions, each a
    run of consecutive widths in ascending order: the split with the fewest multiply-adds, a run
    costing (its filters) x (its widest width) x (length - its narrowest width + 1) per channel and
    row. For the paper's D at length 20, relative to the 12 convolutions' own: 1 group 5.8x,
    2 groups 2.7x, 3 groups 1.7x (widths 1-5, 6-10, 15-20), 4 groups 1.5x."""
    if not 1 <= groups <= len(widths):
        raise ValueError(f"groups must be between 1 and the number of widths ({len(widths)}), got {groups}")
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    w = [widths[i] for i in order]
    n = [num_filters[i] for i in order]

    def cost(a: int, b: int) -> int:  # one convolution for sorted widths a..b
        return sum(n[a : b + 1]) * w[b] * (length - w[a] + 1)

    # best[k][a]: (cost, runs) of sorted widths a.. in k runs
    best: list[dict[int, tuple[int, list[tuple[int, int]]]]] = [
        {},
        {a: (cost(a, len(w) - 1), [(a, len(w) - 1)]) for a in range(len(w))},
    ]
    for k in range(2, groups + 1):
        best.append({})
        for a in range(len(w) - k + 1):
            best[k][a] = min(
                ((cost(a, b) + best[k - 1][b + 1][0], [(a, b), *best[k - 1][b + 1][1]]) for b in range(a, len(w) - k + 1)),
                key=lambda option: option[0],
            )
    return [order[a : b + 1] for a, b in best[groups][0][1]]


class _FusedGroup:
    """What one zero-padded convolution of `CNNDiscriminator._pooled_fused` needs, built once per
    sequence length and device: its convolutions (`members`), `_fused_gather`'s permutation, the
    zero columns x gets on the right (`pad`: widest - narrowest width) and, per filter and window,
    -inf where the window overruns the sequence and 0 elsewhere (`overrun` (F_g, L), L = length -
    narrowest + 1): added to the outputs, a mask whose backward is no operation at all."""

    def __init__(self, members: list[int], weights: list[torch.Tensor], length: int) -> None:
        self.members = members
        self.gather = _fused_gather(weights)
        narrowest, widest = min(w.shape[2] for w in weights), max(w.shape[2] for w in weights)
        self.pad = widest - narrowest
        device = weights[0].device
        widths = torch.cat([torch.full((w.shape[0],), w.shape[2], device=device) for w in weights])  # (F_g,)
        invalid = torch.arange(length - narrowest + 1, device=device)[None, :] > length - widths[:, None]
        self.overrun = torch.zeros(invalid.shape, device=device).masked_fill_(invalid, float("-inf"))


class _Permuted(torch.autograd.Function):
    """x (N,) -> x[order] for a permutation `order` of 0..N-1, the gradient sent back through the
    inverse permutation (a gather), where index_select's backward would scatter-add."""

    @staticmethod
    def forward(ctx, x, order, inverse):
        ctx.save_for_backward(inverse)
        return x.index_select(0, order)

    @staticmethod
    def backward(ctx, grad):
        (inverse,) = ctx.saved_tensors
        return grad.contiguous().view(-1).index_select(0, inverse), None, None


class Highway(nn.Module):
    """One highway layer (Srivastava et al., 2015), as in the paper's code with gate bias 0:
    t = sigmoid(W_t x + b_t);  y = t * relu(W_h x + b_h) + (1 - t) * x, computed as
    x + t * (relu(W_h x + b_h) - x): three passes over the (rows, size) values instead of five.
    Without gradients (D scoring rollouts) the passes run in place on the product's output, the
    same values bit for bit: at the paper's sizes (1,024 rows x 1,720) 118 against 125 ms a chunk
    on one CPU thread, of which the two products take 110, about 0.13 s of a G step's 3.9 s."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        r = F.relu(self.transform(x))
        if torch.is_grad_enabled() or r.dtype != x.dtype:  # (under autocast r may be bf16 and x float32)
            return x + t * (r - x)
        return r.sub_(x).mul_(t).add_(x)


FUSED_CONV = ("auto", "on", "off")  # CNN D training: one padded convolution for all widths (auto: on CUDA only)

# Above this many table entries (V x sum(width x filters)) scoring keeps the plain convolutions.
MAX_TABLE_ENTRIES = 100_000_000


class CNNDiscriminator(Discriminator):
    """The paper's CNN discriminator.

    Scoring without gradients (eval mode under `torch.no_grad`) takes a faster, equivalent route:
    a width-w convolution over embeddings at window p is sum_j Emb[y_{p+j}] . W_w[:, :, j], so with
    tables P_w[j * V + v] = Emb[v] @ W_w[:, :, j]^T every window is a sum of w table rows, one
    fused `embedding_bag` call per width. The paper's sizes need ~120k additions a sequence instead
    of 15 MFLOP of convolution; the tables (V x sum(w n_w) floats, 250 MB for the paper's D) are
    rebuilt whenever a weight may have changed since the last call: after any pass in training mode
    or with gradients, and after any in-place change that bumps a weight's version (loading weights).

    causal=True makes it a D that scores every prefix in one pass (`prefix_logits`): each width-w
    convolution reads the sequence left-padded with w - 1 zero vectors, so a window ends at every
    position t, and the pooled feature of prefix y_1..t is the running max over the windows that end
    at or before t. Its whole-sequence score is the last prefix's (a different D from the paper's,
    whose windows never overhang; scoring takes the convolutions, not the tables).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        filter_sizes: list[int],
        num_filters: list[int],
        *,
        dropout: float = 0.25,
        condition: nn.Module | None = None,
        condition_join: str = "concat",
        fused_conv: str = "auto",
        fused_groups: int = 1,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if fused_conv not in FUSED_CONV:
            raise ValueError(f"fused_conv must be one of {FUSED_CONV}, got {fused_conv!r}")
        if not 1 <= fused_groups <= len(filter_sizes):
            raise ValueError(f"fused_groups must be between 1 and the number of widths ({len(filter_sizes)}), got {fused_groups}")
        self.fused_conv = fused_conv
        self.fused_groups = fused_groups
        self.causal = causal
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embed_dim, n, w) for w, n in zip(filter_sizes, num_filters, strict=False))
        for conv in self.convs:  # the same values, laid out so that a step copies no weight (`window_major`)
            conv.weight = nn.Parameter(window_major(conv.weight.detach()))
        self._fused_plan: tuple[int, torch.device, list[_FusedGroup], torch.Tensor | None] | None = None  # `_fused_groups`
        project = _projects(condition, condition_join)
        self.classifier = make_head(condition, condition_join, sum(num_filters))
        self.condition = None if self.classifier is not None else condition  # a classifier D reads y alone
        total = sum(num_filters) + (self.condition.dim if self.condition is not None and not project else 0)
        self.highway = Highway(total)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(total, 2)
        self.projection = nn.Linear(condition.dim, total, bias=False) if project else None
        self._tables: list[torch.Tensor] | None = None
        self._tables_key: tuple | None = None

    def weights_changed(self) -> None:
        self._tables_key = None  # the scoring tables are rebuilt at their next use

    def _lookup_tables(self) -> list[torch.Tensor]:
        """Per width: (V * w, n_w) with row v * w + j = embedding[v] @ conv.weight[:, :, j]^T."""
        params = [*self.embedding.parameters()] + [conv.weight for conv in self.convs]  # what the table is made of
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
        return not self.training and self._tables_fit()

    def _tables_fit(self) -> bool:
        """Scoring without gradients, with tables of at most MAX_TABLE_ENTRIES entries."""
        entries = self.embedding.num_embeddings * sum(c.weight.shape[0] * c.weight.shape[2] for c in self.convs)
        return not torch.is_grad_enabled() and entries <= MAX_TABLE_ENTRIES

    def _pooled_by_tables(self, tokens: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Max-over-time convolution outputs from the lookup tables: tokens (B, T) -> (B, sum n_w);
        valid (B, T) bool: False positions add nothing (a zero embedding); None: all count."""
        pooled = []
        for conv, table in zip(self.convs, self._lookup_tables(), strict=True):
            w = conv.weight.shape[2]
            weights = None if valid is None else valid.unfold(1, w, 1).reshape(-1, w).to(table.dtype)
            pooled.append(self._window_sums(tokens, table, w, weights).amax(dim=1) + conv.bias)
        return torch.cat(pooled, dim=1)

    def _pooled_fused(self, x: torch.Tensor) -> torch.Tensor:
        """Max-over-time outputs of every width by `fused_groups` convolutions: x (B, E, T) -> (B, sum n_w).

        Each group's filters are zero-padded on the right to its widest width W_g, and x gets
        W_g - w_min zero columns (w_min its narrowest width), so window p of filter f reads exactly
        the w_f real tokens from p on; windows that overrun the sequence (p > T - w_f) are left out
        of the max. The same values and gradients as one convolution per width, in one kernel launch
        per group (`padded_groups` splits the widths; 1 group: one launch where twelve widths take
        twelve, for 5.8x their multiply-adds at the paper's sizes). The max is taken with its
        position, as `window_max` takes it: its backward writes the gradient at the winning window
        (2 kernels on a GPU), where `amax`'s compares every window with the max and shares it among
        ties (4 kernels over (B, F_g, L)); ties send it to the first, as in `window_max`."""
        groups, order = self._fused_groups(x.shape[2], x.device)
        pooled = []
        for group in groups:
            weight = self._fused_weight(group)  # (F_g, E, W_g)
            bias = torch.cat([self.convs[i].bias for i in group.members])  # (F_g,)
            out = F.conv1d(F.pad(x, (0, group.pad)) if group.pad else x, weight, bias)  # (B, F_g, L)
            pooled.append((out + group.overrun.to(out.dtype)).max(dim=-1).values)
        joined = torch.cat(pooled, dim=1) if len(pooled) > 1 else pooled[0]
        return joined if order is None else joined.index_select(1, order)

    def _fused_groups(self, length: int, device: torch.device) -> tuple[list[_FusedGroup], torch.Tensor | None]:
        """The groups of `_pooled_fused` for sequences of `length` on `device` (built once for each),
        and the permutation of their joined outputs into the filters' order (None when the widths
        are in ascending order, as the paper's are)."""
        plan = self._fused_plan
        if plan is None or plan[0] != length or plan[1] != device:
            widths = [conv.weight.shape[2] for conv in self.convs]
            if length < max(widths):  # as `window_max` (the per-width path) says
                raise ValueError(f"sequences of length {length} are shorter than a window of {max(widths)}")
            split = padded_groups(widths, [conv.weight.shape[0] for conv in self.convs], length, self.fused_groups)
            groups = [_FusedGroup(members, [self.convs[i].weight for i in members], length) for members in split]
            starts = [0, *itertools.accumulate(conv.weight.shape[0] for conv in self.convs)]  # each conv's first filter
            joined = [f for members in split for i in members for f in range(starts[i], starts[i + 1])]  # filters, joined order
            at = sorted(range(len(joined)), key=joined.__getitem__)  # filter f's place in the joined outputs
            order = None if joined == sorted(joined) else to_device(torch.tensor(at), device)
            plan = self._fused_plan = (length, device, groups, order)
        return plan[2], plan[3]

    def _fused_weight(self, group: _FusedGroup) -> torch.Tensor:
        """A group's filters zero-padded on the right to its widest width W: (F_g, E, W), by one
        gather from the filters laid end to end (window-major weights, `window_major`, flatten as
        views) followed by as many zeros as there are padded places, each its own, so that the
        gather is a permutation. Two operators forward and two backward,
        where padding each width and joining them took some thirty a step (the kernels of a
        graphed D step on a GPU). The gather is a permutation of the flat tensor, so its backward
        is a gather too (`_Permuted`): no scatter-add, deterministic."""
        weights = [self.convs[i].weight for i in group.members]
        order, inverse, zeros = group.gather
        flat = torch.cat([*(w.permute(0, 2, 1).reshape(-1) for w in weights), zeros.to(weights[0].dtype)])
        return _Permuted.apply(flat, order.view(-1), inverse).view(order.shape)

    def features(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T) -> pooled features (B, sum(num_filters)) after the highway layer, joined
        with e(c) (B, C) before it when conditional by concatenation."""
        if self.causal:
            pooled = torch.cat([out.amax(dim=-1) for out in self._causal_windows(tokens)], dim=1)
        elif self._use_tables():
            pooled = self._pooled_by_tables(tokens)
        else:
            # A pass that can lead to a step makes the tables stale: fused optimizers change the
            # weights in place without bumping their version counters, which the key also reads.
            self.weights_changed()
            pooled = self._pooled(self.embedding(tokens))
        return self._joined(pooled, cond)

    def continuation_logits(
        self,
        sequences: torch.Tensor,
        continued: torch.Tensor,
        stride: int,
        cond: torch.Tensor | None = None,
        batch_size: int = 1024,
    ) -> torch.Tensor:
        """`Discriminator.continuation_logits`, sharing what the rows' prefixes have in common when
        scoring by the lookup tables: a window that lies inside the prefix y_1..y_t is a window of
        the sequence itself, the same for all N continuations of every prefix from t on. So each
        width's window sums are taken once over the B sequences, with their running max over the
        window positions, and each continued row sums only the windows that reach past its
        prefix; its max over all windows is the larger of the two maxima. The same sums and the
        same maxima as scoring the rows one by one (a third fewer table reads at the paper's sizes)."""
        if self.causal or self.classifier is not None or not self._use_tables():
            return super().continuation_logits(sequences, continued, stride, cond, batch_size)
        P, N, B, T = continued.shape
        rows, conds, group = continued.reshape(-1, T), repeat_rows(cond, P * N), N * B
        inside = self._prefix_window_maxima(sequences, stride, P)  # per width (P, B, n_w)
        out = []
        for i in range(0, len(rows), batch_size):
            end = min(i + batch_size, len(rows))
            parts = []
            for j in range(i // group, (end - 1) // group + 1):  # the prefixes this chunk's rows continue
                lo, hi = max(i, j * group), min(end, (j + 1) * group)
                source = torch.arange(lo, hi, device=rows.device) % B  # the sequence each row continues
                parts.append(self._continued_pooled(rows[lo:hi], (j + 1) * stride, [m[j, source] for m in inside]))
            c = None if conds is None else conds[i:end]
            h = self.dropout(self._joined(torch.cat(parts), c))
            out.append(project_condition(self.out(h), h, self.projection, self.condition, c))
        return torch.cat(out).view(P, N, B, 2)

    @staticmethod
    def _window_sums(tokens: torch.Tensor, table: torch.Tensor, w: int, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Every width-w window of tokens (R, S) summed from its table: (R, S - w + 1, n_w), no bias;
        weights (R (S - w + 1), w) scale each token's row (None: all 1)."""
        idx = tokens.unfold(1, w, 1) * w + torch.arange(w, device=tokens.device)  # (R, L, w): rows token * w + j
        sums = F.embedding_bag(idx.reshape(-1, w), table, mode="sum", per_sample_weights=weights)  # (R L, n_w)
        return sums.view(len(tokens), -1, table.shape[1])

    def _prefix_window_maxima(self, sequences: torch.Tensor, stride: int, num_prefixes: int) -> list[torch.Tensor]:
        """Per width w: (P, B, n_w), [j, b] the max over sequences[b]'s windows inside its first
        t = (j + 1) * stride tokens (those at p <= t - w), -inf where t < w (no such window)."""
        maxima = []
        for conv, table in zip(self.convs, self._lookup_tables(), strict=True):
            w = conv.weight.shape[2]
            running = self._window_sums(sequences, table, w).cummax(dim=1).values  # (B, L, n_w)
            ends = torch.arange(1, num_prefixes + 1, device=sequences.device) * stride - w  # (P,): last window inside
            picked = running[:, ends.clamp(min=0)].transpose(0, 1)  # (P, B, n_w)
            maxima.append(picked.masked_fill((ends < 0)[:, None, None], float("-inf")))
        return maxima

    def _continued_pooled(self, rows: torch.Tensor, t: int, inside: list[torch.Tensor]) -> torch.Tensor:
        """Pooled outputs (R, sum n_w) of rows (R, T) that continue prefixes of length t, given the
        max over each row's windows inside the prefix (`inside`, per width (R, n_w))."""
        pooled = []
        for conv, table, prefix_max in zip(self.convs, self._lookup_tables(), inside, strict=True):
            w = conv.weight.shape[2]
            reaching = self._window_sums(rows[:, max(0, t - w + 1) :], table, w).amax(dim=1)  # windows past the prefix
            pooled.append(torch.maximum(reaching, prefix_max) + conv.bias)
        return torch.cat(pooled, dim=1)

    def prefix_features(self, prefixes: torch.Tensor) -> torch.Tensor:
        """The features LeakGAN's D leaks to G (Guo et al., 2018): prefixes (B, T), each a
        prefix y_1..y_t padded to the full length with -1 -> `features` (B, sum(num_filters)), the
        highway output before dropout and the output layer. A -1 reads as a zero embedding (the
        official code pads with -1, whose TensorFlow lookup gives zeros), so padding adds nothing
        to any window. Unconditional, non-causal D only; the caller decides about gradients."""
        if self.condition is not None or self.classifier is not None or self.projection is not None or self.causal:
            raise ValueError("prefix_features needs an unconditional, non-causal CNN D")
        valid, tokens = prefixes >= 0, prefixes.clamp(min=0)  # (B, T)
        if self._tables_fit():  # no gradients: the lookup tables, whatever D's mode (features have no dropout)
            return self._joined(self._pooled_by_tables(tokens, valid), None)
        self.weights_changed()  # a pass with gradients: a later step may change the weights
        embedded = self.embedding(tokens) * valid.unsqueeze(-1)  # (B, T, E): zero vectors at the padding
        return self._joined(self._pooled(embedded), None)

    def _pooled(self, embedded: torch.Tensor) -> torch.Tensor:
        """Max-over-time convolution outputs: embedded (B, T, E) -> (B, sum n_w)."""
        if self.fused_conv == "on" or (self.fused_conv == "auto" and embedded.device.type != "cpu"):
            return self._pooled_fused(embedded.transpose(1, 2).contiguous())  # (B, E, T): channels first
        # conv(x).amax(-1) per width, with a backward through the winning windows only (`window_max`)
        return torch.cat([window_max(embedded, conv.weight, conv.bias) for conv in self.convs], dim=1)

    def _joined(self, pooled: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Pooled outputs (B, sum n_w) -> features after the highway layer (joined with e(c) when conditional)."""
        # relu(max_t(x)) = max_t(relu(x)): pooling first makes ReLU a pass over (B, n_w), not (B, n_w, L).
        if self.projection is not None:
            check_condition(True, cond, len(pooled))
            return self.highway(pooled.relu())
        return self.highway(join_condition(pooled.relu(), self.condition, cond))

    def _causal_windows(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Per width w: tokens (B, T) -> (B, n_w, T), [.., t-1] the window y_{t-w+1}..y_t (zero vectors before y_1)."""
        x = self.embedding(tokens).transpose(1, 2).contiguous()  # (B, E, T)
        return [conv(F.pad(x, (conv.weight.shape[2] - 1, 0))) for conv in self.convs]

    @property
    def scores_prefixes(self) -> bool:
        """causal=True with no condition: the running max of left-padded windows reads no later token."""
        return self.causal and self.condition is None and self.classifier is None and self.projection is None

    def prefix_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.scores_prefixes:
            return super().prefix_logits(tokens)
        running = torch.cat([out.cummax(dim=-1).values for out in self._causal_windows(tokens)], dim=1)  # (B, F, T)
        h = self.highway(running.transpose(1, 2).relu())  # (B, T, F): relu and max commute, as in `features`
        return self.out(self.dropout(h))  # (B, T, 2)

    def plain_logits(self, tokens: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.dropout(self.features(tokens, cond))  # (B, P)
        return project_condition(self.out(h), h, self.projection, self.condition, cond)

    def plain_soft_logits(self, vectors: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Logits (B, 2) of relaxed one-hot vectors (B, T, V): each position's embedding is
        vectors @ E, which is E[y] for the one-hot of y (the token path's value)."""
        self.weights_changed()  # a pass with gradients: the weights may change after it
        h = self.dropout(self._joined(self._pooled(vectors @ self.embedding.weight), cond))  # (B, P)
        return project_condition(self.out(h), h, self.projection, self.condition, cond)

    def realness_and_head(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real/fake logits (B, 2) and the head's output on the same features: class logits
        (B, sum_f K_f), the label fields side by side, or a matcher's query (B, E)."""
        h = self.dropout(self.features(tokens))  # (B, P)
        return self.out(h), self.classifier(h)


class MultiRepCNNDiscriminator(Discriminator):
    """RelGAN's CNN discriminator with multiple embedded representations (Nie et al. 2019, Sec. 2.2).

    The token embedding (embed_dim) is split into num_rep slices of embed_dim / num_rep; the same
    convolutions (one per width, max over time) read each slice as its own representation of the
    sequence, then a highway layer, dropout and two linear layers (to 100, then to 1) give one
    logit of "real" per representation: (B, num_rep) `soft_scores`, each a term of RelGAN's loss.
    As a two-class D (`forward`, rewards, D accuracy) its "real" logit is their mean. Unconditional."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        num_rep: int,
        filter_sizes: list[int],
        num_filters: list[int],
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        if embed_dim % num_rep:
            raise ValueError(f"embed_dim {embed_dim} must be a multiple of num_rep {num_rep}")
        self.num_rep, self.classifier = num_rep, None
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        single = embed_dim // num_rep
        self.convs = nn.ModuleList(nn.Conv1d(single, n, w) for w, n in zip(filter_sizes, num_filters, strict=True))
        self.highway = Highway(sum(num_filters))
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Linear(sum(num_filters), 100)
        self.out = nn.Linear(100, 1)

    def scores(self, embedded: torch.Tensor) -> torch.Tensor:
        """embedded (B, T, embed_dim) -> one logit of "real" per representation (B, num_rep)."""
        B, T, _ = embedded.shape
        x = embedded.view(B, T, self.num_rep, -1).transpose(1, 2).reshape(B * self.num_rep, T, -1)  # (B * K, T, e)
        # conv(x).amax(-1) per width, with a backward through the winning windows only (`window_max`)
        pooled = torch.cat([window_max(x, conv.weight, conv.bias) for conv in self.convs], dim=1).relu()  # (B * K, F)
        return self.out(self.hidden(self.dropout(self.highway(pooled)))).view(B, self.num_rep)

    @staticmethod
    def _two_class(scores: torch.Tensor) -> torch.Tensor:
        """(B, K) -> logits (B, 2) whose "real" log-odds is the mean over the representations."""
        mean = scores.mean(dim=1)
        return torch.stack([torch.zeros_like(mean), mean], dim=1)

    def plain_logits(self, tokens: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        check_condition(False, cond, len(tokens))
        return self._two_class(self.scores(self.embedding(tokens)))

    def plain_soft_logits(self, vectors: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self._two_class(self.representation_scores(vectors, cond))

    def representation_scores(self, vectors: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """One logit of "real" per representation: vectors (B, T, V) -> (B, num_rep)."""
        check_condition(False, cond, len(vectors))
        return self.scores(vectors @ self.embedding.weight)


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


def position_signal(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """ScratchGAN's fixed position signal (its code's `get_position_signal`): `dim` cosine waves over
    positions t = 0..length-1, (length, dim), wave k of period p_k and shift s_k,

        signal[t, k] = cos(pi (t / p_k + s_k)),

    the periods spaced geometrically from 2 to `length`, the shifts evenly from 0 to 2, so the
    longest wave is monotonic over the sequence and the waves do not all start at one value. It
    depends on the position alone, never on the tokens, so a one-way D stays causal."""
    periods = torch.exp(torch.linspace(math.log(2.0), math.log(max(length, 1)), dim, device=device))  # (P,)
    shifts = torch.linspace(0.0, 2.0, dim, device=device)  # (P,)
    t = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    return torch.cos(math.pi * (t / periods + shifts))  # (T, P)


class RNNDiscriminator(Discriminator):
    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        *,
        cell: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.25,
        pooling: str = "last",
        attention_heads: int = 1,
        condition: nn.Module | None = None,
        condition_join: str = "concat",
        embedding_dropout: float = 0.0,
        position_dim: int = 0,
    ) -> None:
        super().__init__()
        if pooling not in ("last", "attention"):
            raise ValueError(f"pooling must be 'last' or 'attention', got {pooling!r}")
        if not 0.0 <= embedding_dropout < 1.0:
            raise ValueError(f"embedding_dropout must be in [0, 1), got {embedding_dropout}")
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.embedding_dropout = embedding_dropout
        self.position_dim = position_dim
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(embed_dim + position_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)
        width = hidden_dim * (2 if bidirectional else 1)
        self.pool = AttentionPooling(width, attention_heads) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        project = _projects(condition, condition_join)
        self.classifier = make_head(condition, condition_join, width)
        self.condition = None if self.classifier is not None else condition  # a classifier D reads y alone
        self.out = nn.Linear(width + (self.condition.dim if self.condition is not None and not project else 0), 2)
        self.projection = nn.Linear(condition.dim, width, bias=False) if project else None

    def table(self) -> torch.Tensor:
        """The embedding table (V, E), in training with each entry zeroed with probability
        `embedding_dropout` (and the rest scaled by 1 / (1 - p)): dropout on the table itself, as
        ScratchGAN's D does, so a token's whole vector varies from pass to pass, not its uses."""
        return F.dropout(self.embedding.weight, self.embedding_dropout, self.training)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> (B, T, E) through `table`."""
        if self.embedding_dropout == 0.0:
            return self.embedding(tokens)
        return F.embedding(tokens, self.table())

    def read(self, embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
        """The RNN over embedded (B, T, E), with `position_signal` appended to every step's input when
        position_dim > 0 (ScratchGAN's D) -> (outputs (B, T, directions * H), final state)."""
        if self.position_dim:
            B, T, _ = embedded.shape
            positions = position_signal(T, self.position_dim, embedded.device).to(embedded.dtype)  # (T, P)
            embedded = torch.cat([embedded, positions.expand(B, T, -1)], dim=-1)  # (B, T, E + P)
        return self.rnn(embedded)

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) -> (B, P): the last layer's final state of each direction, or attention
        pooling over the outputs of every step."""
        return self._pooled_embedded(self.embed(tokens))

    def _pooled_embedded(self, embedded: torch.Tensor) -> torch.Tensor:
        """embedded (B, T, E) -> (B, P), as `pooled`."""
        out, state = self.read(embedded)  # out (B, T, directions * H)
        if self.pool is not None:
            return self.pool(out)
        h = state[0] if isinstance(state, tuple) else state  # (directions, B, H)
        return torch.cat(list(h), dim=1)

    @property
    def scores_prefixes(self) -> bool:
        """A one-way RNN classifying its final state, with no condition: its output after y_t is the
        final state of reading y_1..y_t alone, so one pass scores every prefix."""
        return not self.rnn.bidirectional and self.pool is None and self.condition is None and self.classifier is None

    def prefix_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.scores_prefixes:
            return super().prefix_logits(tokens)
        out, _ = self.read(self.embed(tokens))  # (B, T, H): out[:, t-1] has read y_1..y_t only
        return self.out(self.dropout(out))  # (B, T, 2)

    def plain_logits(self, tokens: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self._logits(self.pooled(tokens), cond)

    def prefix_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every prefix's logit of "real" (B, T) from the output layer on each step's state; for the
        last step it is `forward`'s. Needs a unidirectional RNN with pooling 'last', unconditional."""
        if self.rnn.bidirectional or self.pool is not None or self.condition is not None or self.classifier is not None:
            raise ValueError("prefix scores need a unidirectional, unconditional RNN D with rnn_pooling=last")
        out, _ = self.read(self.embed(tokens))  # (B, T, H)
        return realness(self.out(self.dropout(out)))

    def plain_soft_logits(self, vectors: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Logits (B, 2) of probability vectors (B, T, V), each position embedded as vectors @ E."""
        return self._logits(self._pooled_embedded(vectors @ self.table()), cond)

    def _logits(self, pooled: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.projection is not None:
            check_condition(True, cond, len(pooled))
            h = self.dropout(pooled)  # (B, P)
            return project_condition(self.out(h), h, self.projection, self.condition, cond)
        return self.out(self.dropout(join_condition(pooled, self.condition, cond)))

    def realness_and_head(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real/fake logits (B, 2) and the head's output: class logits (B, sum_f K_f) or a matcher's query (B, E)."""
        h = self.dropout(self.pooled(tokens))
        return self.out(h), self.classifier(h)


CONDITION_JOINS = ("concat", "projection", "classifier")


def _projects(condition: nn.Module | None, condition_join: str) -> bool:
    if condition_join not in CONDITION_JOINS:
        raise ValueError(f"condition_join must be one of {CONDITION_JOINS}, got {condition_join!r}")
    return condition is not None and condition_join == "projection"


def realness(logits: torch.Tensor) -> torch.Tensor:
    """D's scalar logit of "real": logits (..., 2) -> (...) log P(real) / P(fake), the x of
    P(real) = sigmoid(x) that GAN losses on one logit read (`seqgan.rl.relaxed.gan_losses`)."""
    return logits[..., 1] - logits[..., 0]


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


def continuation_prob_real(
    discriminator: Discriminator,
    sequences: torch.Tensor,
    continued: torch.Tensor,
    stride: int,
    cond: torch.Tensor | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    """D's P(real) of rollouts, continued (P, N, B, T) continuing sequences (B, T) (see
    `Discriminator.continuation_logits`) -> (P, N, B). The caller puts D in eval mode."""
    return torch.softmax(discriminator.continuation_logits(sequences, continued, stride, cond, batch_size), dim=-1)[..., 1]


@torch.no_grad()
def prefix_prob_real(discriminator: Discriminator, tokens: torch.Tensor) -> torch.Tensor:
    """P(real | y_1..y_t) for every prefix of every sequence, in one pass: tokens (B, T) -> (B, T).
    The caller puts D in eval mode."""
    return torch.softmax(discriminator.prefix_logits(tokens), dim=-1)[..., 1]


@torch.no_grad()
def prob_real_alone(
    discriminator: Discriminator, tokens: torch.Tensor, batch_size: int = 1024, cond: torch.Tensor | None = None
) -> torch.Tensor:
    """P(real | y) from D's real/fake decision alone (`real_fake_logits`: a condition head left out,
    any other D reading cond (R, ...) as `forward` does): tokens (R, T) -> (R,)."""
    out = [
        torch.softmax(
            discriminator.real_fake_logits(tokens[i : i + batch_size], None if cond is None else cond[i : i + batch_size]), dim=-1
        )[:, 1]
        for i in range(0, len(tokens), batch_size)
    ]
    return torch.cat(out) if out else tokens.new_zeros(0, dtype=torch.float)
