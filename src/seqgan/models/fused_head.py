"""The generator's output layer fused with its per-token NLL, in cache-sized row chunks.

-log softmax(h W^T + b)[y] for R rows and a V-word vocabulary needs (R, V) logits: 25 MB for a
batch of 64 x 20 tokens and V = 5000, more than the caches hold. This function computes the same
values and gradients chunk by chunk (`chunk` rows at a time, so that each chunk's logits stay in
cache while they are normalised and read again), and keeps between forward and backward either
the probabilities P = softmax(z), written once by the forward (up to `KEEP_LIMIT` logits), or,
beyond that, only h and the targets, recomputing each chunk's P in backward (a long sequence's
batch would otherwise hold gigabytes).

Per chunk the forward takes the logits z, their row max m and z_y, and turns z into P in place with
PyTorch's softmax, which works row by row in the fastest cache (one pass of max, exponential and
sum per row, where separate whole-chunk passes spill). The NLL is then log s + m - z_y with
s = sum_v exp(z_v - m) = 1 / max_v P_v (the row's largest probability is exp(0) / s), so no
exponential underflows even when P_y does. With gradients the forward also takes P W for the
chunk while P is in cache: it is all that dh needs, whatever the upstream gradient g is, since
with l = sum_r g_r nll_r

    dl/dz = g * (P - one_hot(y))                                              (rows, V)
    dh    = g * (P W) - g * W[y]                                              (rows, H)
    dW+^T = (g * h+)^T P - sum_r g_r h+_r one_hot(y_r)                        (H + 1, V)

(g scales the narrow side of each product, never the (rows, V) block). When the loss is a
weighted sum of the rows' NLLs with weights known in advance (MLE's mean over the valid tokens),
`weighted_token_nll` takes dW+ in the forward as well, chunk by chunk while P is in cache, and
keeps no P at all: its backward only scales the two gradients by the upstream scalar. The bias rides in the
matmul as one more column of W against a column of ones in h (h+ = [h, 1], W+ = [W, b]:
z = h+ W+^T), so no bias is copied into the logits and db is dW+'s last column; the backward's one
product is (H + 1, R) x (R, V), the layout that runs fastest here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK_ROWS = 64
"""Rows per chunk: 64 x 5000 logits (1.3 MB); on this CPU 32 rows were 6% slower and 128 within 2%."""
KEEP_LIMIT = 1 << 24
"""The most logits (R x V; 64 MB in fp32) whose probabilities the forward keeps for the backward."""


@dataclass(frozen=True)
class _Plan:
    """How `_LinearTokenNLL` goes through the rows: `chunk` at a time, keeping P for the backward
    or not (`keep`), and preparing a backward at all or not (`grad`)."""

    chunk: int
    keep: bool
    grad: bool


def _softmax_(z: torch.Tensor) -> torch.Tensor:
    """softmax over each row of z (rows, V), written into z: in place on the CPU (its kernel reads
    each row before writing it; the tests compare it with torch.softmax), through a new tensor
    elsewhere, where an aliased output is not something the kernels promise."""
    if z.device.type == "cpu":
        return torch.ops.aten._softmax.out(z, 1, False, out=z)
    return z.copy_(torch.softmax(z, dim=1))


def _chunk_probabilities(
    h1: torch.Tensor, w1t: torch.Tensor, target: torch.Tensor, z: torch.Tensor, nll: torch.Tensor
) -> torch.Tensor:
    """One chunk of rows: their logits h+ W+^T written into z (rows, V), their NLL m - z_y - log max P
    into nll (rows,), and z turned into P in place; returns P (= z)."""
    torch.mm(h1, w1t, out=z)
    top, picked = z.amax(dim=1), z.gather(1, target[:, None]).squeeze(1)  # m, z_y
    p = _softmax_(z)
    torch.sub(top - picked, p.amax(dim=1).log(), out=nll)  # m - z_y + log s
    return p


def _bias_column(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """W+^T = [W, b]^T: (H + 1, V), contiguous."""
    return torch.cat([weight, bias[:, None]], dim=1).T.contiguous()


class _LinearTokenNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, plan: _Plan):  # h (R, H), weight (V, H), bias (V,), target (R,)
        R, V = h.shape[0], weight.shape[0]
        chunk = plan.chunk
        h1 = torch.cat([h, h.new_ones(R, 1)], dim=1)  # (R, H + 1): h+ = [h, 1]
        w1t = _bias_column(weight, bias)  # (H + 1, V)
        kept = h.new_empty(R, V) if plan.keep else None  # P, row by row
        scratch = None if kept is not None else h.new_empty(min(chunk, R), V)
        pw = h.new_empty(R, weight.shape[1]) if plan.grad else None  # P W
        nll = h.new_empty(R)
        for i in range(0, R, chunk):
            rows = slice(i, i + chunk)
            z = kept[rows] if kept is not None else scratch[: len(h1[rows])]
            p = _chunk_probabilities(h1[rows], w1t, target[rows], z, nll[rows])
            if pw is not None:
                torch.mm(p, weight, out=pw[rows])
        ctx.save_for_backward(h1, weight, bias, target, pw)
        ctx.chunk = chunk
        ctx.kept = kept  # an intermediate, not an input or output: held on ctx, consumed by the first backward
        return nll  # (R,)

    @staticmethod
    def backward(ctx, grad):  # grad (R,)
        with torch.autocast(grad.device.type, enabled=False):  # fp32 like the forward, autocast or not
            return _LinearTokenNLL._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        h1, weight, bias, target, pw = ctx.saved_tensors
        kept, ctx.kept = ctx.kept, None  # a second backward (retain_graph) recomputes
        H = weight.shape[1]
        g = grad[:, None].to(h1.dtype)  # (R, 1)
        scaled = (h1 * g).T  # (H + 1, R): (g * h+)^T
        grad_h = pw * g - g * weight[target]  # g * (P W) - g * W[y]
        if kept is not None:
            grad_w1t = torch.mm(scaled, kept)  # (g * h+)^T P
        else:
            w1t = _bias_column(weight, bias)
            grad_w1t = torch.zeros_like(w1t)
            for i in range(0, h1.shape[0], ctx.chunk):
                rows = slice(i, i + ctx.chunk)
                grad_w1t.addmm_(scaled[:, rows], _softmax_(torch.mm(h1[rows], w1t)))  # P recomputed
        grad_w1t.index_add_(1, target, -scaled)  # - sum_r g_r h+_r one_hot(y_r)
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
        w1t = _bias_column(weight, bias)  # (H + 1, V)
        g = row_weight[:, None].to(h.dtype)  # (R, 1)
        scaled = (h1 * g).T.contiguous()  # (H + 1, R): (g * h+)^T
        scratch, nll = h.new_empty(min(chunk, R), V), h.new_empty(R)
        grad_h, grad_w1t = h.new_empty(R, weight.shape[1]), torch.zeros_like(w1t)
        for i in range(0, R, chunk):
            rows = slice(i, i + chunk)
            p = _chunk_probabilities(h1[rows], w1t, target[rows], scratch[: len(h1[rows])], nll[rows])
            torch.mm(p, weight, out=grad_h[rows])  # P W
            grad_w1t.addmm_(scaled[:, rows], p)  # (g * h+)^T P
        grad_h.mul_(g).sub_(g * weight[target])
        grad_w1t.index_add_(1, target, -scaled)  # - sum_r g_r h+_r one_hot(y_r)
        ctx.save_for_backward(grad_h, grad_w1t[:-1].T.contiguous(), grad_w1t[-1].clone())
        return (nll * row_weight).sum()

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
    chunk: int = CHUNK_ROWS,
) -> torch.Tensor:
    """sum_r row_weight_r * -log softmax(h W^T + b)[target]_r, a scalar: h (..., H), weight (V, H),
    bias (V,), target (...), row_weight (...) (e.g. a mask over its count: the mean NLL of the valid
    tokens). With gradients they are taken in the forward, while each chunk's probabilities are
    in cache, and nothing (R, V) is kept; without, it is `linear_token_nll` weighted. The same values
    and gradients as `(linear_token_nll(...) * row_weight).sum()`, in the parameters' precision."""
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
    chunk: int = CHUNK_ROWS,
    keep_limit: int = KEEP_LIMIT,
) -> torch.Tensor:
    """-log softmax(h W^T + b)[target] per row: h (..., H), weight (V, H), bias (V,), target (...) -> (...).

    The forward keeps the probabilities for the backward when there are at most `keep_limit`
    logits (rows x V), and leaves the backward to recompute them otherwise; the values are the same.
    Always in the parameters' precision: under bf16 autocast h is cast back (the log-normaliser
    over V words is where bf16 would cost the most)."""
    with torch.autocast(h.device.type, enabled=False):
        h = h.reshape(-1, h.shape[-1]).to(weight.dtype)
        grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad or bias.requires_grad)
        keep = grad and h.shape[0] * weight.shape[0] <= keep_limit
        flat = _LinearTokenNLL.apply(h, weight, bias, target.reshape(-1), _Plan(chunk, keep, grad))
    return flat.view(target.shape)
