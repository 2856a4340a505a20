"""The generator's output layer fused with its per-token NLL, in cache-sized row chunks.

-log softmax(h W^T + b)[y] for R rows and a V-word vocabulary needs (R, V) logits: 25 MB for a
batch of 64 x 20 tokens and V = 5000, more than the caches hold. This function computes the same
values and gradients chunk by chunk (`chunk` rows at a time, so that on the CPU each chunk's logits
stay in cache while they are exponentiated and read again; a GPU takes many more rows at a time,
`runtime.chunk_rows`), and keeps between forward and backward either
the exponentials e below and their row sums, written once by the forward (up to `KEEP_LIMIT`
logits), or, beyond that, only h, the targets and the row sums, recomputing each chunk's e in the
backward (a long sequence's batch would otherwise hold gigabytes).

Per chunk the forward takes the logits in base 2, z' = z log2 e (the product with W+ log2 e), their
row max m' and z'_y, and turns z' in place into e = 2^(z' - m'), whose row sums are s (>= 1: the
row's largest e is 1). The NLL is ln 2 (m' - z'_y) + ln s, so no exponential underflows even when
P_y does, and P = e / s is never written: 1/s scales the narrow side of each product instead.
Four passes over the chunk (max, subtraction, exp2, sum) took 0.18 ms a 64 x 5000 chunk here
against 0.26 ms for PyTorch's in-place softmax and the row max the NLL needed from it (torch's CPU
exponential is slower than exp2: 0.90 against 0.31 ns a float, `bench/sampling_exp.py`); MLE's
head, forward and backward of 1,280 rows, went from 27.3 to 25.6 ms (1 thread).

On the CPU the first pass takes m' = 0 (two passes over a chunk: exp2 and sum) and is kept when
every row sum s is finite and at least 2^-100 (`sums_are_normal`): then no exponential overflowed,
each row's largest is a normal float, and e / s is the softmax to round-off (about 1e-7 relative).
Otherwise (a row's logits all below about -69 nats, or one above about 80) the pass is redone with
the maxima, bit for bit the GPU's route, which always takes them (deciding is a host read there). A
paper MLE epoch went from 2.68 to 2.41 s (`bench/mle_head.py`, 1 thread, interleaved).

With gradients the forward also takes e W for the chunk while e is in cache: it is all that dh
needs, whatever the upstream gradient g is, since with l = sum_r g_r nll_r

    dl/dz = g * (P - one_hot(y))                                              (rows, V)
    dh    = (g / s) * (e W) - g * W[y]                                        (rows, H)
    dW+^T = ((g / s) * h+)^T e - sum_r g_r h+_r one_hot(y_r)                  (H + 1, V)

(g and 1/s scale the narrow side of each product, never the (rows, V) block). When the loss is a
weighted sum of the rows' NLLs with weights known in advance (MLE's mean over the valid tokens),
`weighted_token_nll` takes dW+ in the forward as well, chunk by chunk while e is in cache, and
keeps no (R, V) block at all: its backward only scales the two gradients by the upstream scalar.
The bias rides in the matmul as one more column of W against a column of ones in h (h+ = [h, 1], W+ = [W, b]:
z = h+ W+^T), so no bias is copied into the logits and db is dW+'s last column; the backward's one
product is (H + 1, R) x (R, V), the layout that runs fastest here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from seqgan import runtime
from seqgan.models.sampling import base2_columns

CHUNK_ROWS = 64
"""Rows per chunk on the CPU: 64 x 5000 logits (1.3 MB); on this CPU 32 rows were 6% slower and 128
within 2%. On a GPU `runtime.chunk_rows` gives more (3,355 rows at V = 5000: the paper's batch of 64 x 20
rows is one chunk of a dozen kernels, not 20)."""
TINY_SUM = 2.0**-100
"""The least row sum of unshifted exponentials kept (`sums_are_normal`); 2^-100 / V is far above float32's
least normal number, 2^-126, for any vocabulary below 2^26 words."""
KEEP_LIMIT = 1 << 24
"""The most logits (R x V; 64 MB in fp32) whose exponentials the forward keeps for the backward."""
LN_2 = 0.6931471805599453


@dataclass(frozen=True)
class _Plan:
    """How `_LinearTokenNLL` goes through the rows: `chunk` at a time, keeping e and 1/s for the
    backward or not (`keep`), and preparing a backward at all or not (`grad`)."""

    chunk: int
    keep: bool
    grad: bool


def row_maxima_passes(rows: torch.Tensor, total: torch.Tensor) -> Iterator[torch.Tensor | None]:
    """The passes over rows (R, ...) to make, as the row maxima buffer (R, 1) each takes, or None for
    a pass that takes 2^z' without them. On the CPU the first pass is such a one; after it (its row
    sums in total (R, 1)) a second, with the maxima, follows only where a sum left float32's normal
    range (`sums_are_normal`). Then 2^z' / s is the softmax to round-off, and two passes over every
    logit (the max and the subtraction) are saved. On a GPU that check would be a host read that
    stalls the step, so there is one pass, with the maxima. The last buffer given is the one whose
    results stand."""
    top = None if runtime.host_reads_are_free(rows.device) else rows.new_empty(rows.shape[0], 1)
    yield top
    if top is None and not sums_are_normal(total):
        yield rows.new_empty(rows.shape[0], 1)


def sums_are_normal(total: torch.Tensor) -> bool:
    """Whether row sums s = sum_v 2^z' (R, 1) taken without the row max are all finite and at least
    `TINY_SUM`: then no 2^z' overflowed, and the row's largest one, at least s / V, is a normal float."""
    return bool(((total >= TINY_SUM) & (total < math.inf)).all())


def _chunk_exponentials(
    h1: torch.Tensor,
    w2t: torch.Tensor,
    e: torch.Tensor,
    total: torch.Tensor,
    *,
    top: torch.Tensor | None,
    picked: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
) -> None:
    """One chunk of rows h+ (rows, H + 1) against w2t = (W+ log2 e)^T (H + 1, V): their base-2 logits
    z' = h+ w2t written into e (rows, V) and turned in place into e = 2^(z' - m'), their row sums s
    into total (rows, 1). m' is each row's max, written into top (rows, 1); top=None takes m' = 0
    (`row_maxima_passes`). With a target (rows, 1), z'_y goes into picked (rows, 1)."""
    torch.mm(h1, w2t, out=e)
    if top is not None:
        torch.amax(e, dim=1, keepdim=True, out=top)
    if target is not None:
        torch.gather(e, 1, target, out=picked)
    if top is not None:
        e.sub_(top)
    torch.sum(e.exp2_(), dim=1, keepdim=True, out=total)


def _chunks(tensors: tuple[torch.Tensor | None, ...], chunk: int, rows: int):
    """The chunks of rows of several (rows, ...) tensors, as one tuple of views a chunk, each tensor
    split at once (`split`, not a slice a chunk: fewer operators in the loop); None stays None."""
    count = -(-rows // chunk)
    return zip(*(t.split(chunk) if t is not None else (None,) * count for t in tensors), strict=True)


def _token_nll(total: torch.Tensor, top: torch.Tensor | None, picked: torch.Tensor) -> torch.Tensor:
    """ln s + ln 2 (m' - z'_y) from (R, 1) row sums, maxima (None: m' = 0) and target logits -> (R,)."""
    if top is None:
        return torch.add(total.log(), picked, alpha=-LN_2).squeeze(1)
    return torch.add(total.log(), top - picked, alpha=LN_2).squeeze(1)


class _LinearTokenNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, plan: _Plan):  # h (R, H), weight (V, H), bias (V,), target (R,)
        R, V = h.shape[0], weight.shape[0]
        chunk = plan.chunk
        h1 = torch.cat([h, h.new_ones(R, 1)], dim=1)  # (R, H + 1): h+ = [h, 1]
        w2t = base2_columns(weight, bias)  # (H + 1, V)
        kept = h.new_empty(R, V) if plan.keep else None  # e, row by row
        scratch = None if kept is not None else h.new_empty(min(chunk, R), V)
        pw = h.new_empty(R, weight.shape[1]) if plan.grad else None  # P W = (e W) / s
        total, inv_s, picked = h.new_empty(R, 1), h.new_empty(R, 1), h.new_empty(R, 1)  # s, 1 / s, z'_y
        for top in row_maxima_passes(h, total):  # m' (None: 0)
            parts = (h1, target[:, None], total, inv_s, picked, top, pw, kept)
            for h1_c, target_c, total_c, inv_s_c, picked_c, top_c, pw_c, kept_c in _chunks(parts, chunk, R):
                e = kept_c if kept_c is not None else scratch[: len(h1_c)]
                _chunk_exponentials(h1_c, w2t, e, total_c, top=top_c, picked=picked_c, target=target_c)
                torch.reciprocal(total_c, out=inv_s_c)
                if pw_c is not None:
                    torch.mm(e, weight, out=pw_c).mul_(inv_s_c)
        ctx.save_for_backward(h1, weight, bias, target, pw, inv_s)
        ctx.chunk, ctx.shifted = chunk, top is not None
        ctx.kept = kept  # an intermediate, not an input or output: held on ctx, consumed by the first backward
        return _token_nll(total, top, picked)  # (R,)

    @staticmethod
    def backward(ctx, grad):  # grad (R,)
        with torch.autocast(grad.device.type, enabled=False):  # fp32 like the forward, autocast or not
            return _LinearTokenNLL._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        h1, weight, bias, target, pw, inv_s = ctx.saved_tensors
        kept, ctx.kept = ctx.kept, None  # a second backward (retain_graph) recomputes
        H = weight.shape[1]
        g = grad[:, None].to(h1.dtype)  # (R, 1)
        grad_h = pw * g - g * weight[target]  # g * (P W) - g * W[y]
        over_s = (h1 * (g * inv_s)).T  # (H + 1, R): ((g / s) * h+)^T
        if kept is not None:
            grad_w1t = torch.mm(over_s, kept)  # ((g / s) * h+)^T e
        else:
            w2t = base2_columns(weight, bias)
            grad_w1t, e = torch.zeros_like(w2t), h1.new_empty(min(ctx.chunk, len(h1)), w2t.shape[1])
            # e recomputed as the forward took it (m' again where it took the row max); 1/s is kept from the forward
            total, top = h1.new_empty(len(h1), 1), h1.new_empty(len(h1), 1) if ctx.shifted else None
            for h1_c, over_s_c, total_c, top_c in _chunks((h1, over_s.T, total, top), ctx.chunk, len(h1)):
                e_c = e[: len(h1_c)]
                _chunk_exponentials(h1_c, w2t, e_c, total_c, top=top_c)
                grad_w1t.addmm_(over_s_c.T, e_c)
        grad_w1t.index_add_(1, target, -(h1 * g).T)  # - sum_r g_r h+_r one_hot(y_r)
        return grad_h, grad_w1t[:H].T.contiguous(), grad_w1t[H].clone(), None, None


@dataclass(frozen=True)
class _Rows:
    """How `_WeightedTokenNLL` weighs the rows (weight (R,): g, needing no gradient) and goes through them."""

    weight: torch.Tensor
    chunk: int


class _WeightedTokenNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, rows_plan: _Rows):  # h (R, H), weight (V, H), bias (V,), target (R,)
        R, V = h.shape[0], weight.shape[0]
        row_weight, chunk = rows_plan.weight, rows_plan.chunk
        h1 = torch.cat([h, h.new_ones(R, 1)], dim=1)  # (R, H + 1)
        w2t = base2_columns(weight, bias)  # (H + 1, V)
        g = row_weight[:, None].to(h.dtype)  # (R, 1)
        scratch = h.new_empty(min(chunk, R), V)
        total, picked, over_s = h.new_empty(R, 1), h.new_empty(R, 1), h.new_empty(R, 1)  # s, z'_y, g / s
        grad_h = h.new_empty(R, weight.shape[1])
        for top in row_maxima_passes(h, total):  # m' (None: 0)
            # A chunk's loop body is its products and the passes over its logits; the per-row
            # arithmetic of the NLL waits until after the loop.
            grad_w1t = torch.zeros_like(w2t)
            parts = (h1, target[:, None], g, total, top, picked, over_s, grad_h)
            for h1_c, target_c, g_c, total_c, top_c, picked_c, over_s_c, grad_h_c in _chunks(parts, chunk, R):
                e = scratch[: len(h1_c)]
                _chunk_exponentials(h1_c, w2t, e, total_c, top=top_c, picked=picked_c, target=target_c)
                torch.reciprocal(total_c, out=over_s_c).mul_(g_c)  # g / s
                torch.mm(e, weight, out=grad_h_c)  # e W
                grad_w1t.addmm_((h1_c * over_s_c).T, e)  # ((g / s) * h+)^T e
        grad_h.mul_(over_s).sub_(g * weight[target])
        grad_w1t.index_add_(1, target, -(h1 * g).T)  # - sum_r g_r h+_r one_hot(y_r)
        ctx.save_for_backward(grad_h, grad_w1t[:-1].T.contiguous(), grad_w1t[-1].clone())
        return (_token_nll(total, top, picked) * row_weight).sum()

    @staticmethod
    def backward(ctx, upstream):  # a scalar's gradient scales the ones taken in the forward
        grad_h, grad_w, grad_b = ctx.saved_tensors
        return grad_h * upstream, grad_w * upstream, grad_b * upstream, None, None


def weighted_token_nll(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    row_weight: torch.Tensor,
    chunk: int | None = None,
) -> torch.Tensor:
    """sum_r row_weight_r * -log softmax(h W^T + b)[target]_r, a scalar: h (..., H), weight (V, H),
    bias (V,), target (...), row_weight (...) (e.g. a mask over its count: the mean NLL of the valid
    tokens). With gradients they are taken in the forward, while each chunk's exponentials are
    in cache, and nothing (R, V) is kept; without, it is `linear_token_nll` weighted. The same values
    and gradients as `(linear_token_nll(...) * row_weight).sum()`, in the parameters' precision.
    `chunk` rows at a time (None: `runtime.chunk_rows` for h's device)."""
    chunk = chunk or runtime.chunk_rows(weight.shape[0], h.device, CHUNK_ROWS)
    if row_weight.requires_grad:
        raise ValueError("row_weight must not need gradients (they are taken in the forward for fixed weights); detach it")
    with torch.autocast(h.device.type, enabled=False):
        h = h.reshape(-1, h.shape[-1]).to(weight.dtype)
        flat_weight, flat_target = row_weight.reshape(-1).to(weight.dtype), target.reshape(-1)
        if not (torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad or bias.requires_grad)):
            return (linear_token_nll(h, weight, bias, flat_target, chunk) * flat_weight).sum()
        return _WeightedTokenNLL.apply(h, weight, bias, flat_target, _Rows(flat_weight, chunk))


def linear_token_nll(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    chunk: int | None = None,
    keep_limit: int = KEEP_LIMIT,
) -> torch.Tensor:
    """-log softmax(h W^T + b)[target] per row: h (..., H), weight (V, H), bias (V,), target (...) -> (...).

    `chunk` rows at a time (None: `runtime.chunk_rows` for h's device). The forward keeps the exponentials
    for the backward when there are at most `keep_limit` logits (rows x V), and leaves the backward
    to recompute them otherwise; the values are the same. Always in the parameters' precision:
    under bf16 autocast h is cast back (the log-normaliser over V words is where bf16 would cost
    the most)."""
    chunk = chunk or runtime.chunk_rows(weight.shape[0], h.device, CHUNK_ROWS)
    with torch.autocast(h.device.type, enabled=False):
        h = h.reshape(-1, h.shape[-1]).to(weight.dtype)
        grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad or bias.requires_grad)
        keep = grad and h.shape[0] * weight.shape[0] <= keep_limit
        flat = _LinearTokenNLL.apply(h, weight, bias, target.reshape(-1), _Plan(chunk, keep, grad))
    return flat.view(target.shape)
