"""The generator's output layer fused with its per-token NLL, in cache-sized row chunks.

-log softmax(h W^T + b)[y] for R rows and a V-word vocabulary needs (R, V) logits: 25 MB for a
batch of 64 x 20 tokens and V = 5000, more than the caches hold. This function computes the same
values and gradients chunk by chunk (`chunk` rows at a time, so that each chunk's logits stay in
cache while they are shifted, exponentiated and summed), and keeps between forward and backward
either e = exp(z - max z), written once by the forward (up to `KEEP_LIMIT` logits), or, beyond
that, only h, the per-row max and sum and the targets, recomputing each chunk's logits in backward
(a long sequence's batch would otherwise hold gigabytes).

With s = sum_v e_v, the loss per row is log s + max z - z_y, and the gradient of
l = sum_r g_r * nll_r with respect to the chunk's logits is
    dl/dz = g * (e / s - one_hot(y))                                          (rows, V)
Keeping e saves the backward a matmul and an exponential per logit: about a third of an MLE epoch
at the paper's sizes on one CPU thread.

Two more passes over the (rows, V) block are avoided. The bias rides in the matmul as one more
column of W against a column of ones in h (h+ = [h, 1], W+ = [W, b]: z = h+ W+^T), so no bias is
copied into the logits and db is dW+'s last column. And the row factor c = g / s and the one-hot
term are applied on the narrow side of each product, never to the (rows, V) block:
    dh  = c * (e W) - g * W[y]                                                (rows, H)
    dW+ = e^T (c * h+) - sum_r g_r one_hot(y_r)^T h+_r                        (V, H + 1)
(the same values up to round-off as scaling e first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK_ROWS = 64
"""Rows per chunk: 64 x 5000 logits (1.3 MB) stay in a core's cache; 256 was slower on this CPU."""
KEEP_LIMIT = 1 << 24
"""The most logits (R x V; 64 MB in fp32) whose exponentials the forward keeps for the backward."""


@dataclass(frozen=True)
class _Plan:
    """How `_LinearTokenNLL` goes through the rows: `chunk` at a time, keeping the exponentials for
    the backward or not (`keep`)."""

    chunk: int
    keep: bool


class _LinearTokenNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, plan: _Plan):  # h (R, H), weight (V, H), bias (V,), target (R,)
        R, V = h.shape[0], weight.shape[0]
        chunk, keep = plan.chunk, plan.keep
        h1 = torch.cat([h, h.new_ones(R, 1)], dim=1)  # (R, H + 1): h+ = [h, 1]
        w1 = torch.cat([weight, bias[:, None]], dim=1)  # (V, H + 1): W+ = [W, b]
        kept = h.new_empty(R, V) if keep else None  # e = exp(z - max z), row by row
        shift, total, picked = (h.new_empty(R, 1) for _ in range(3))  # max z, sum e, z_y
        for i in range(0, R, chunk):
            rows = slice(i, i + chunk)
            z = torch.mm(h1[rows], w1.T) if kept is None else torch.mm(h1[rows], w1.T, out=kept[rows])
            torch.amax(z, dim=1, keepdim=True, out=shift[rows])
            picked[rows] = z.gather(1, target[rows, None])
            torch.sum(z.sub_(shift[rows]).exp_(), dim=1, keepdim=True, out=total[rows])
        ctx.save_for_backward(h1, w1, target, shift, total)
        ctx.chunk = chunk
        ctx.kept = kept  # an intermediate, not an input or output: held on ctx, consumed by the first backward
        return (total.log() + shift - picked).squeeze(1)  # (R,)

    @staticmethod
    def backward(ctx, grad):  # grad (R,)
        with torch.autocast(grad.device.type, enabled=False):  # fp32 like the forward, autocast or not
            return _LinearTokenNLL._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        h1, w1, target, shift, total = ctx.saved_tensors
        kept, ctx.kept = ctx.kept, None  # a second backward (retain_graph) recomputes
        H = h1.shape[1] - 1
        weight = w1[:, :H]
        g = grad[:, None].to(h1.dtype)  # (R, 1)
        scaled = h1 * (g / total)  # (R, H + 1): c * h+, c = g / s
        grad_h = torch.empty(h1.shape[0], H, dtype=h1.dtype, device=h1.device)
        grad_w1 = torch.zeros_like(w1)
        if kept is not None:  # two whole products: larger matmuls run faster than chunked ones
            torch.mm(kept, weight, out=grad_h)  # e W, scaled by c below
            grad_w1.addmm_(kept.T, scaled)  # e^T (c * h+)
        for i in range(0, h1.shape[0] if kept is None else 0, ctx.chunk):
            rows = slice(i, i + ctx.chunk)
            e = torch.mm(h1[rows], w1.T).sub_(shift[rows]).exp_()  # (rows, V), recomputed
            torch.mm(e, weight, out=grad_h[rows])
            grad_w1.addmm_(e.T, scaled[rows])
        grad_h.mul_(g / total).sub_(g * weight[target])  # c * (e W) - g * W[y]
        grad_w1.index_add_(0, target, -g * h1)  # - g one_hot(y)^T h+
        return grad_h, grad_w1[:, :H].contiguous(), grad_w1[:, H].contiguous(), None, None


def linear_token_nll(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    target: torch.Tensor,
    chunk: int = CHUNK_ROWS,
    keep_limit: int = KEEP_LIMIT,
) -> torch.Tensor:
    """-log softmax(h W^T + b)[target] per row: h (..., H), weight (V, H), bias (V,), target (...) -> (...).

    The forward keeps the exponentials for the backward when there are at most `keep_limit`
    logits (rows x V), and leaves the backward to recompute them otherwise; the values are the same.
    Always in the parameters' precision: under bf16 autocast h is cast back (the log-normaliser
    over V words is where bf16 would cost the most)."""
    with torch.autocast(h.device.type, enabled=False):
        h = h.reshape(-1, h.shape[-1]).to(weight.dtype)
        keep = torch.is_grad_enabled() and h.shape[0] * weight.shape[0] <= keep_limit
        flat = _LinearTokenNLL.apply(h, weight, bias, target.reshape(-1), _Plan(chunk, keep))
    return flat.view(target.shape)
