"""Condition encoders of the conditional SeqGAN: a condition c per sequence -> a vector (rows, dim).

A conditional SeqGAN (Mirza and Osindero, 2014, applied to SeqGAN) learns p(y | c): G, its rollout
policy and D each read c through an encoder of their own. G maps the vector to its initial state
(and, optionally, joins it to each step's input); D joins it to its pooled features, so D judges
(y, c) pairs. A raw condition is whatever the data holds for a sequence, one row per sequence:

- `LabelEncoder`: one or more categorical label fields, c (rows, fields) int64 of label ids; each
  field has its own embedding, and the embeddings are concatenated;
- `FeatureEncoder`: a dense feature vector per sequence (e.g. image features, the cross-modal
  case), c (rows, feature_dim) float, through a learned linear projection;
- `SourceEncoder`: a source token sequence (the seq2seq case), c (rows, S) int64 token ids, left
  aligned, padding (id 0) after the last token, read by a (bidirectional) GRU or LSTM; the vector
  is the final state of each direction. Its `encode` also returns the outputs of every source
  step, the memory a G with source attention reads (`source_attention`, Luong et al., 2015,
  "general" score, one head, masked at padding).

The losses of D's condition heads live here too: `condition_classifier_loss` (the AC-GAN class
head's cross-entropy) and `condition_matching_loss` (InfoNCE of the feature-vector matcher).

Every encoder maps c (rows, ...) to (rows, dim) and has `dim`: that is the whole interface G and D
rely on. Rollouts and D's negatives keep each sequence's raw c next to its tokens, repeating rows
where the tokens are repeated (`repeat_rows`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqgan import runtime
from seqgan.models.masked import masked_mean


class LabelEncoder(nn.Module):
    """Label fields -> the concatenation of one embedding per field: c (rows, F) int64 -> (rows, F * embed_dim)."""

    def __init__(self, num_classes: list[int], embed_dim: int) -> None:
        super().__init__()
        if not num_classes or min(num_classes) < 1:
            raise ValueError(f"num_classes must list at least one field of >= 1 classes, got {num_classes}")
        self.num_classes = list(num_classes)
        self.embeddings = nn.ModuleList(nn.Embedding(k, embed_dim) for k in num_classes)
        self.dim = embed_dim * len(num_classes)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2 or cond.shape[1] != len(self.embeddings) or cond.dtype != torch.long:
            raise ValueError(
                f"label conditions must be (rows, {len(self.embeddings)}) int64 label ids, got {tuple(cond.shape)} {cond.dtype}"
            )
        return torch.cat([emb(cond[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)


def label_log_prob(class_logits: torch.Tensor, cond: torch.Tensor, num_classes: list[int]) -> torch.Tensor:
    """log prod_f P(c_f | y) under one softmax per label field: class_logits (B, sum_f K_f) with the
    fields side by side, cond (B, F) int64 label ids -> (B,)."""
    if cond.dim() != 2 or cond.shape[1] != len(num_classes) or cond.dtype != torch.long:
        raise ValueError(
            f"label conditions must be (rows, {len(num_classes)}) int64 label ids, got {tuple(cond.shape)} {cond.dtype}"
        )
    fields = torch.split(class_logits, list(num_classes), dim=1)  # F x (B, K_f)
    return sum(torch.log_softmax(logits, dim=1).gather(1, cond[:, f : f + 1]).squeeze(1) for f, logits in enumerate(fields))


class FeatureEncoder(nn.Module):
    """A feature vector per sequence -> a learned linear projection: c (rows, feature_dim) -> (rows, dim)."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.proj = nn.Linear(feature_dim, dim)
        self.dim = dim

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.dim() != 2 or cond.shape[1] != self.feature_dim or not cond.is_floating_point():
            raise ValueError(
                f"feature conditions must be (rows, {self.feature_dim}) floats, got {tuple(cond.shape)} {cond.dtype}"
            )
        return self.proj(cond)


class SourceEncoder(nn.Module):
    """A source sequence -> the final states of an RNN reading it: c (rows, S) int64 -> (rows, dim).

    Rows hold token ids from the left and `pad_token` after the last one; the RNN reads each row
    to its length only, so padding never reaches it: a source means the same at any padded
    width, and the memory (`encode`) is zero at padded positions. dim = hidden_dim x directions
    (the final h of each direction, concatenated).

    On the CPU each row is packed to its length (`pack_padded_sequence`), which takes the lengths
    on the host. Elsewhere that read would stall every step that encodes a source (and keep its
    training steps out of CUDA graphs), so the RNN reads the rows as they are for the forward
    direction and aligned to the right for the backward one (`_encode_aligned`): the same
    recurrences over the same tokens, the same values to float round-off, twice the RNN's work."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        cell: str = "gru",
        bidirectional: bool = True,
        pad_token: int = 0,
    ) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.vocab_size = vocab_size
        self.pad_token = pad_token
        self.directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(embed_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)
        self.dim = hidden_dim * self.directions
        self.memory_dim = self.dim

    def mask(self, cond: torch.Tensor) -> torch.Tensor:
        """(rows, S) bool, True at source tokens; checks that c is what this encoder reads (its
        values only where reading them back is free: on a GPU the data's own checks on loading,
        `seqgan.data.conditions`, stand for them)."""
        if cond.dim() != 2 or cond.dtype != torch.long or cond.shape[1] == 0:
            raise ValueError(f"source conditions must be (rows, S) int64 token ids, got {tuple(cond.shape)} {cond.dtype}")
        if not runtime.host_reads_are_free(cond.device):
            return cond != self.pad_token
        if len(cond) and (int(cond.min()) < 0 or int(cond.max()) >= self.vocab_size):
            raise ValueError(f"source token ids must lie in 0..{self.vocab_size - 1}, got {int(cond.min())}..{int(cond.max())}")
        mask = cond != self.pad_token
        lengths = mask.sum(dim=1)
        if len(cond) and int(lengths.min()) == 0:
            raise ValueError(f"source row {int((lengths == 0).nonzero()[0])} is empty (all padding); every source needs a token")
        if not torch.equal(mask, torch.arange(cond.shape[1], device=cond.device) < lengths.unsqueeze(1)):
            raise ValueError(f"source rows must hold their tokens first and padding ({self.pad_token}) only after the last one")
        return mask

    def encode(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """c (rows, S) -> (vector (rows, dim), memory (rows, S, dim) zero at padding, mask (rows, S) bool)."""
        mask = self.mask(cond)
        if not runtime.host_reads_are_free(cond.device):
            return (*self._encode_aligned(self.embedding(cond), mask), mask)
        packed = pack_padded_sequence(self.embedding(cond), mask.sum(dim=1).cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state  # (layers x directions, rows, H)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=cond.shape[1])
        return torch.cat(list(h[-self.directions :]), dim=1), memory, mask

    def _encode_aligned(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode`'s vector (rows, dim) and memory (rows, S, dim) without packing: x (rows, S, E) the
        embedded source, mask (rows, S) its tokens (a prefix of each row).

        The forward direction reads each row as it is: its outputs at the tokens never saw padding,
        and its final state is the output at the last token. The backward direction reads the rows
        aligned to the right (padding first), so it starts at the last token and ends, at the first
        one, with its final state, before it meets any padding. Both passes run the one
        bidirectional RNN (one layer), on the two alignments stacked as 2 x rows."""
        R, S = mask.shape
        length = mask.sum(dim=1, keepdim=True)  # (R, 1)
        if self.directions == 1:
            out, _ = self.rnn(x)  # (R, S, H)
            last = (length - 1).unsqueeze(2).expand(-1, 1, out.shape[2])  # (R, 1, H)
            return out.gather(1, last).squeeze(1), out * mask.unsqueeze(2)
        shift = S - length  # (R, 1): how far right each row moves
        steps = torch.arange(S, device=x.device).unsqueeze(0)  # (1, S)
        source = (steps - shift).clamp(min=0)  # (R, S): the token right-aligned position p holds
        right = x.gather(1, source.unsqueeze(2).expand_as(x)) * (steps >= shift).unsqueeze(2)  # padding (zeros) first
        out, _ = self.rnn(torch.cat([x, right]))  # (2R, S, 2H)
        H = out.shape[2] // 2
        forward, backward = out[:R, :, :H], out[R:, :, H:]  # (R, S, H) each, the backward one right-aligned
        backward = backward.gather(1, (steps + shift).clamp(max=S - 1).unsqueeze(2).expand(-1, -1, H))  # back to the left
        vector = torch.cat([forward.gather(1, (length - 1).unsqueeze(2).expand(-1, 1, H)).squeeze(1), backward[:, 0]], dim=1)
        return vector, torch.cat([forward, backward], dim=2) * mask.unsqueeze(2)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.encode(cond)[0]


def source_attention(query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dot-product attention of each query over the source memory, padding masked out.

    query (B, T, M) (G's outputs already mapped by W_a: the Luong "general" score o^T W_a m),
    memory (B, S, M), mask (B, S) bool -> (read-out (B, T, M), weights (B, T, S)); the weights of
    padded positions are exactly 0 and every row sums to 1 over the source's tokens."""
    scores = query @ memory.transpose(1, 2)  # (B, T, S)
    weights = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)
    return weights @ memory, weights


def pick_rows(pool: torch.Tensor | None, num: int, rng: torch.Generator) -> torch.Tensor | None:
    """`num` rows of `pool` (R, ...), e.g. a data set's conditions, drawn uniformly with replacement
    from `rng`: the conditions G is asked to generate for. None (nothing drawn) without a pool."""
    return None if pool is None else pool[pick_index(pool, num, rng)]


def pick_index(pool: torch.Tensor, num: int, rng: torch.Generator) -> torch.Tensor:
    """The row numbers (num,) that `pick_rows` takes, on `pool`'s device."""
    return runtime.to_device(torch.randint(len(pool), (num,), generator=rng, device=rng.device), pool.device)


def mismatched_pairs(cond: torch.Tensor, num: int, rng: torch.Generator, tries: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """`num` rows of a data set, each to be shown with another row's condition: the negatives of a
    matching-aware discriminator (Reed et al. 2016, GAN-CLS), which learns that a real sequence
    under the wrong condition is not a real pair.

    cond (R, ...) -> (rows (M,), wrong (M, ...)), M <= num: real row rows[i] goes with condition
    wrong[i], which differs from cond[rows[i]] in at least one entry. A draw that matches is drawn
    again (up to `tries` times) and dropped if it still matches, e.g. when every row shares one
    condition."""
    rows = pick_index(cond, num, rng)  # (num,)
    other = pick_index(cond, num, rng)  # (num,)

    def same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (num,) bool
        return (cond[a] == cond[b]).reshape(len(a), -1).all(dim=1)

    for _ in range(tries):
        clash = same(rows, other)
        if not bool(clash.any()):
            break
        other[clash] = pick_index(cond, int(clash.sum()), rng)
    keep = ~same(rows, other)
    return rows[keep], cond[other[keep]]


def repeat_rows(cond: torch.Tensor | None, times: int) -> torch.Tensor | None:
    """c (B, ...) -> (times * B, ...) with row r holding c[r % B]: the condition of each row of
    `times` stacked copies of a batch, e.g. rollouts laid out (t, n, b)."""
    if cond is None:
        return None
    return cond.repeat(times, *([1] * (cond.dim() - 1)))


def condition_classifier_loss(
    class_logits: torch.Tensor, cond: torch.Tensor, num_classes: list[int], rows: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of an AC-GAN D's auxiliary classifier (Odena et al., 2017), summed over label
    fields and averaged over rows: class_logits (B, sum_f K_f), cond (B, F) the true labels.
    It learns from real sequences only: rows (B,) bool marks them (None: every row is). No real
    row gives 0 (a batch of generated ones), the graph kept (DDP expects every parameter used)."""
    if len(cond) == 0:
        return class_logits.sum() * 0.0
    return masked_mean(-label_log_prob(class_logits, cond, num_classes), rows)


def condition_matching_loss(query: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE (van den Oord et al., 2018) of a feature-vector matcher D (`ConditionMatcher`):
    query (B, E) of the sequences, keys (B, E) their encoded conditions. It learns from real
    sequences only, rows (B,) bool (None: every row is real): real row i scores the key of every
    real row j by s_ij = query_i . key_j and is trained to pick its own, mean_i -log softmax_j(s_i)_i.
    No real row gives 0, the graph kept. Masks, not a selection of rows, so no count is read back."""
    if len(query) == 0:
        return query.sum() * 0.0 + keys.sum() * 0.0
    scores = query @ keys.T  # (B, B)
    if rows is None:
        return F.cross_entropy(scores, torch.arange(len(query), device=query.device))
    own = torch.eye(len(query), dtype=torch.bool, device=query.device)  # (B, B); a generated row keeps its own key: finite
    nll = torch.logsumexp(scores.masked_fill(~(rows.unsqueeze(0) | own), float("-inf")), dim=1) - scores.diagonal()  # (B,)
    return masked_mean(nll, rows)
