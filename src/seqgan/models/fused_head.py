"""The generator's output layer fused with its per-token NLL, in cache-sized row chunks.

-log softmax(h W^T + b)[y] for R rows and a V-word vocabulary needs (R, V) logits: 25 MB for a
batch of 64 x 20 tokens and V = 5000, which is more than the caches hold, and on CPU each such
tensor is mapped fresh from the OS. This function computes the same values and gradients chunk
by chunk (`chunk` rows at a time), keeping only h, the log-normaliser and the targets between
forward and backward, and recomputing each chunk's logits in backward.

Gradient of the loss l = sum_r g_r * nll_r with respect to the chunk's logits:
    dl/dz = g * (softmax(z) - one_hot(y))                                     (rows, V)
from which dh = dz W, dW = dz^T h, db = sum_rows dz.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 256


class _LinearTokenNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, target, chunk):  # h (R, H), weight (V, H), bias (V,), target (R,)
        lse = torch.empty(h.shape[0], dtype=h.dtype, device=h.device)
        picked = torch.empty_like(lse)
        for i in range(0, h.shape[0], chunk):
            z = torch.addmm(bias, h[i : i + chunk], weight.T)  # (rows, V)
            lse[i : i + chunk] = torch.logsumexp(z, dim=1)
            picked[i : i + chunk] = z.gather(1, target[i : i + chunk, None]).squeeze(1)
        ctx.save_for_backward(h, weight, bias, target, lse)
        ctx.chunk = chunk
        return lse - picked  # (R,)

    @staticmethod
    def backward(ctx, grad):  # grad (R,)
        with torch.autocast(grad.device.type, enabled=False):  # fp32 like the forward, autocast or not
            return _LinearTokenNLL._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        h, weight, bias, target, lse = ctx.saved_tensors
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros_like(weight)
        grad_b = torch.zeros_like(bias)
        for i in range(0, h.shape[0], ctx.chunk):
            hc, g = h[i : i + ctx.chunk], grad[i : i + ctx.chunk, None].to(h.dtype)  # (rows, H), (rows, 1)
            dz = torch.addmm(bias, hc, weight.T).sub_(lse[i : i + ctx.chunk, None]).exp_().mul_(g)  # softmax * g
            dz.scatter_add_(1, target[i : i + ctx.chunk, None], -g)  # - one_hot * g
            grad_h[i : i + ctx.chunk] = dz @ weight
            grad_w.addmm_(dz.T, hc)
            grad_b += dz.sum(dim=0)
        return grad_h, grad_w, grad_b, None, None


def linear_token_nll(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, target: torch.Tensor, chunk: int = CHUNK_ROWS
) -> torch.Tensor:
    """-log softmax(h W^T + b)[target] per row: h (..., H), weight (V, H), bias (V,), target (...) -> (...).

    Always in the parameters' precision: under bf16 autocast h is cast back (the log-normaliser
    over V words is where bf16 would cost the most)."""
    with torch.autocast(h.device.type, enabled=False):
        h = h.reshape(-1, h.shape[-1]).to(weight.dtype)
        flat = _LinearTokenNLL.apply(h, weight, bias, target.reshape(-1), chunk)
    return flat.view(target.shape)
