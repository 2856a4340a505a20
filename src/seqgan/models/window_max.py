"""The max over time of a 1-D convolution, with a backward that reads only the winning windows.

y[r, f] = max_p (W_f * x_r)[p] + b_f for rows x (N, e, T) and n filters W (n, e, w). The forward
computes `chunk` rows at a time (so that their (rows, L, n) outputs stay in cache), each as the
rows' windows (rows, L, e w) times W (e w, n), and keeps p*(r, f), the window of each maximum. A max passes its gradient g to its winning window alone, so

    dW[f, c, j] = sum_r g[r, f] x[r, c, p*(r, f) + j]
    dx[r, c, p*(r, f) + j] += g[r, f] W[f, c, j]
    db[f] = sum_r g[r, f]

costs N n e w gathers and scatters, where the convolution's own backward works through every
window's gradient, (N, n, L) values written and read (mostly zeros) and N n L e w multiply-adds.
It pays for inputs of few channels: RelGAN's D reads each representation as ONE channel
(`MultiRepCNNDiscriminator`: B x 64 rows of 300 filters per width), where the convolutions and
their (B K, n, L) gradients were most of a training step on the CPU. For the paper's D (64
channels, widths up to 20) the gathered windows would outweigh the convolution, which stays.

Ties (equal values at two windows, i.e. equal windows) send the whole gradient to the first where
`amax` splits it evenly: the same dW and db, and for x the same total over the tied positions.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 256


class _WindowMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, chunk):  # x (N, e, T), weight (n, e, w), bias (n,)
        N, n, e, w = x.shape[0], *weight.shape
        flat = weight.reshape(n, e * w).T  # (e w, n): [c w + j, f] = W[f, c, j]
        values = x.new_empty(N, n)
        where = torch.empty(N, n, dtype=torch.long, device=x.device)  # p*: the start of each winning window
        for i in range(0, N, chunk):
            rows = x[i : i + chunk]
            windows = rows.unfold(2, w, 1).permute(0, 2, 1, 3).reshape(len(rows), -1, e * w)  # (rows, L, e w)
            torch.max(windows @ flat, dim=1, out=(values[i : i + chunk], where[i : i + chunk]))  # over (rows, L, n)
        ctx.save_for_backward(x, weight, where)
        return values + bias  # (N, n): max_p (z_p + b) = max_p z_p + b

    @staticmethod
    def backward(ctx, grad):  # grad (N, n)
        x, weight, where = ctx.saved_tensors
        n, e, w = weight.shape
        grad = grad.to(x.dtype)
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.empty_like(weight)
        for j in range(w):
            index = (where + j)[:, None, :].expand(-1, e, -1)  # (N, e, n): position p* + j of each winning window
            grad_w[:, :, j] = (x.gather(2, index) * grad[:, None, :]).sum(dim=0).T  # (n, e)
            if grad_x is not None:
                grad_x.scatter_add_(2, index, grad[:, None, :] * weight[:, :, j].T[None])
        return grad_x, grad_w, grad.sum(dim=0), None


def window_max(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, chunk: int = CHUNK_ROWS) -> torch.Tensor:
    """max over time of conv1d(x, weight, bias): x (N, e, T), weight (n, e, w), bias (n,) -> (N, n),
    the value and gradient of `F.conv1d(x, weight, bias).amax(dim=-1)` (T >= w)."""
    if x.shape[-1] < weight.shape[-1]:
        raise ValueError(f"sequences of length {x.shape[-1]} are shorter than a window of {weight.shape[-1]}")
    return _WindowMax.apply(x, weight, bias, chunk)
