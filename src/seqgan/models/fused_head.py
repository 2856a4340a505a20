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
from which dh = dz W, dW = dz^T h, db = sum_rows dz. Keeping e saves the backward a matmul and an
exponential per logit: about a third of an MLE epoch at the paper's sizes on one CPU thread.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 64
"""Rows per chunk: 64 x 5000 logits (1.3 MB) stay in a core's cache; 256 was slower on this CPU."""
KEEP_LIMIT = 1 << 24
"""The most logits (R x V; 64 MB in fp32) whose exponentials the forward keeps for the backward."""


class _LinearTokenNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, chunk, keep):  # h (R, H), weight (V, H), bias (V,), target (R,)
        R, V = h.shape[0], weight.shape[0]
        kept = h.new_empty(R, V) if keep else None  # e = exp(z - max z), row by row
        shift, total, picked = (h.new_empty(R, 1) for _ in range(3))  # max z, sum e, z_y
        for i in range(0, R, chunk):
            rows = slice(i, i + chunk)
            z = torch.addmm(bias, h[rows], weight.T) if kept is None else torch.addmm(bias, h[rows], weight.T, out=kept[rows])
            torch.amax(z, dim=1, keepdim=True, out=shift[rows])
            picked[rows] = z.gather(1, target[rows, None])
            torch.sum(z.sub_(shift[rows]).exp_(), dim=1, keepdim=True, out=total[rows])
        ctx.save_for_backward(h, weight, bias, target, shift, total)
        ctx.chunk = chunk
        ctx.kept = kept  # an intermediate, not an input or output: held on ctx, consumed by the first backward
        return (total.log() + shift - picked).squeeze(1)  # (R,)

    @staticmethod
    def backward(ctx, grad):  # grad (R,)
        with torch.autocast(grad.device.type, enabled=False):  # fp32 like the forward, autocast or not
            return _LinearTokenNLL._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        h, weight, bias, target, shift, total = ctx.saved_tensors
        kept, ctx.kept = ctx.kept, None  # a second backward (retain_graph) recomputes
        g = grad[:, None].to(h.dtype)  # (R, 1)
        scale = g / total  # (R, 1): g / s
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(weight)
        grad_b = torch.zeros_like(bias)
        for i in range(0, h.shape[0], ctx.chunk):
            rows = slice(i, i + ctx.chunk)
            e = kept[rows] if kept is not None else torch.addmm(bias, h[rows], weight.T).sub_(shift[rows]).exp_()
            dz = e.mul_(scale[rows])  # softmax * g, in place
            dz.scatter_add_(1, target[rows, None], -g[rows])  # - one_hot * g
            torch.mm(dz, weight, out=grad_h[rows])
            grad_w.addmm_(dz.T, h[rows])
            grad_b += dz.sum(dim=0)
        return grad_h, grad_w, grad_b, None, None, None


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
        flat = _LinearTokenNLL.apply(h, weight, bias, target.reshape(-1), chunk, keep)
    return flat.view(target.shape)
