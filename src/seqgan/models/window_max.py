"""The max over time of a 1-D convolution, with a backward that reads only the winning windows.

y[r, f] = max_p (W_f * x_r)[p] + b_f for rows x (N, T, e) of T steps of e channels and n filters
W (n, e, w). The forward keeps p*(r, f), the window of each maximum. A max passes its gradient g to
its winning window alone, so

    dW[f, c, j] = sum_r g[r, f] x[r, p*(r, f) + j, c]
    dx[r, p*(r, f) + j, c] += g[r, f] W[f, c, j]
    db[f] = sum_r g[r, f]

costs N n w e multiply-adds each, where the convolution's own backward works through every
window's gradient: (N, n, L) values written and read (mostly zeros) and 2 N n L w e multiply-adds
(L = T - w + 1 windows). Two ways to compute it, the same values:

- few channels (e < WIDE_CHANNELS; RelGAN's D reads each representation as ONE channel,
  `MultiRepCNNDiscriminator`: B x 64 rows of 300 filters per width): the forward is the rows'
  windows (rows, L, w e) times W (w e, n), `chunk` rows at a time so that their outputs stay in
  cache; the backward gathers and scatters one window offset j at a time.
- many channels (the paper's D: 64 channels, widths 1 to 20): the forward is a channels-last
  convolution. In the backward, dW[f, :, j] is a weighted sum of N rows of x (N T, e), one
  `embedding_bag` (fused gather-multiply-add) for all (f, j); and since a window (w e values) is a
  contiguous stretch of x, the gradient of each (row, window) is a weighted sum of the flattened
  filters that won there (a second `embedding_bag`, over the (r, f) sorted by window), added back
  onto x's steps.
Both take the max with its position by channels-last max pooling, which reads the (N, L, n)
outputs along n-wide rows (`max(dim=1)` walks each (r, f)'s L values one by one: ten times slower).
A window as long as the rows (w = T: the paper's width 20 at T = 20) has no max to take: the
convolution is the linear map x (N, T e) @ W_flat.T, and its gradients are two matmuls (for the
paper's 160 filters of width 20, forward and backward in 1.0 ms against 3.7 ms by the convolution
and bags on one CPU thread).
For the paper's D (12 widths, batch 64) forward and backward take 30 ms against 46 ms for the
convolutions with `amax` on one CPU thread; for RelGAN's D (4 widths x 300 filters, 64 x 64 rows
of one channel) 175 ms against 350 ms for this module's previous version.

Ties (equal values at two windows, i.e. equal windows) send the whole gradient to the first where
`amax` splits it evenly: the same dW and db, and for x the same total over the tied positions
(for windows of equal tokens, the same gradient of their embeddings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqgan import runtime

CHUNK_ROWS = 256
"""Rows per chunk of the few-channel forward on the CPU, where their outputs then stay in cache. On a
GPU `runtime.chunk_rows` gives more (RelGAN's D, 64 x 64 rows of 300 filters over 16-19 windows: 2
chunks, not 16)."""
WINDOW_GRADS_LIMIT = 1 << 24
"""The most window-gradient values (rows x L x w e) the many-channel backward holds at once (64 MB
in fp32): long sequences go through it in row chunks (the paper's sizes in one)."""
WIDE_CHANNELS = 4
"""From this many channels on, the convolution and embedding_bag path (measured on one CPU thread:
1 channel 4x and 2 channels 1.4x faster by gathers, 4 about even, 8 1.9x and 64 4.5x faster by bags)."""


def window_major(weight: torch.Tensor) -> torch.Tensor:
    """weight (n, e, w), the same values laid out as (n, w, e) in memory: each filter in the order of
    a window of x (N, T, e). A convolution's weight kept so (`CNNDiscriminator`) costs no copy of
    its layout in a step: the channels-last convolution reads it as it is, `_flat_filters` is a
    view, and the weight's gradient, which the bags give in this order, is the parameter's layout
    (on one CPU thread a paper D step took 1.2-1.4 ms less, of about 69). Width 1 is both layouts
    at once; it keeps the plain strides, which DDP's gradient buckets expect."""
    if weight.shape[2] == 1:
        return weight.contiguous()
    return weight.permute(0, 2, 1).contiguous().permute(0, 2, 1)


def _flat_filters(weight: torch.Tensor) -> torch.Tensor:
    """(n, e, w) -> (n, w e), [f, j e + c] = W[f, c, j]: a filter in the order of a window row (a
    view of a `window_major` weight)."""
    n, e, w = weight.shape
    return weight.permute(0, 2, 1).reshape(n, w * e)


def _max_over_windows(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """out (N, L, n), contiguous -> its max over the L windows and the first window that has it, (N, n)
    each. Channels-last max pooling reads (N, L, n) along n-wide rows; `max(dim=1)` walks each
    (r, f)'s L values one by one, ten times slower here."""
    pooled, where = F.max_pool2d(out.permute(0, 2, 1).unsqueeze(2), (1, out.shape[1]), return_indices=True)  # (N, n, 1, 1)
    return pooled.view(pooled.shape[:2]), where.view(where.shape[:2])


def _max_by_matmul(x: torch.Tensor, weight: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Few channels: (values, p*) (N, n) from `chunk` rows of windows (rows, L, w e) @ (w e, n) at a time."""
    N, T, e = x.shape
    n, _, w = weight.shape
    flat = _flat_filters(weight).T  # (w e, n)
    windows = x.reshape(-1).as_strided((N, T - w + 1, w * e), (T * e, e, 1))  # (N, L, w e), a view
    maxima = [_max_over_windows(windows[i : i + chunk] @ flat) for i in range(0, N, chunk)]
    return torch.cat([values for values, _ in maxima]), torch.cat([where for _, where in maxima])


def _max_by_convolution(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Many channels: (values, p*) (N, n) from one channels-last convolution, x (N, T, e) read as
    (N, e, 1, T) in channels-last memory (no copy); its output (N, n, 1, L) lies in memory as (N, L, n)."""
    out = F.conv2d(x.permute(0, 2, 1).unsqueeze(2), weight.unsqueeze(2))  # (N, n, 1, L)
    return _max_over_windows(out.squeeze(2).transpose(1, 2))


def _grads_by_gather(x, weight, where, grad, needs_x):
    """Few channels: dW (n, e, w) and dx (N, T, e) or None, one window offset j at a time."""
    n, e, w = weight.shape
    x = x.transpose(1, 2)  # (N, e, T): gathers along the last dimension, several times faster
    grad_x = torch.zeros_like(x) if needs_x else None
    grad_w = torch.empty_like(weight)
    for j in range(w):
        index = (where + j)[:, None, :].expand(-1, e, -1)  # (N, e, n): position p* + j of each winning window
        grad_w[:, :, j] = (x.gather(2, index) * grad[:, None, :]).sum(dim=0).T  # (n, e)
        if grad_x is not None:
            grad_x.scatter_add_(2, index, grad[:, None, :] * weight[:, :, j].T[None])
    return grad_w, None if grad_x is None else grad_x.transpose(1, 2)


def _grads_by_bags(x, weight, where, grad, needs_x):
    """Many channels: dW (n, e, w) and dx (N, T, e) or None as weighted sums of contiguous rows."""
    N, T, e = x.shape
    n, _, w = weight.shape
    L = T - w + 1
    rows = torch.arange(N, device=x.device)[:, None]  # (N, 1)
    # dW[f, :, j] = sum over r of g[r, f] x[r, p*(r, f) + j]: bag (f, j) of N rows of x (N T, e)
    # (n, N) operands made contiguous first (small), so that the (n, w, N) bags are written row by row
    steps = (rows * T + where).T.contiguous()[:, None, :] + torch.arange(w, device=x.device)[None, :, None]  # (n, w, N)
    weights = grad.T.contiguous().repeat_interleave(w, dim=0, output_size=n * w)  # (n w, N): g[:, f] for each (f, j)
    grad_w = F.embedding_bag(steps.view(n * w, N), x.view(N * T, e), mode="sum", per_sample_weights=weights)
    grad_w = grad_w.view(n, w, e).permute(0, 2, 1) if w > 1 else grad_w.view(n, e, 1)  # (n, e, w), the weight's layout
    if not needs_x:
        return grad_w, None
    # the gradient of window (r, p): sum over the filters f that p won in row r of g[r, f] W_f
    by_window, filter_of = torch.sort(where, dim=1)  # (N, n): each row's filters in the order of the windows they won
    won = (rows * L + by_window).reshape(-1)  # (N n,): ascending, the window r L + p* of each (r, f)
    filters, picked = _flat_filters(weight), grad.gather(1, filter_of).reshape(-1)
    offsets = (torch.arange(L, device=x.device)[:, None] + torch.arange(w, device=x.device)).reshape(-1)  # (L w,): p + j
    grad_x = torch.zeros_like(x)
    step = max(1, WINDOW_GRADS_LIMIT // (L * w * e))
    for r0 in range(0, N, step):  # rows r0 .. r1 - 1 hold entries r0 n .. r1 n - 1 (n each)
        r1 = min(N, r0 + step)
        part = slice(r0 * n, r1 * n)
        window_grads = F.embedding_bag(
            filter_of[r0:r1].reshape(-1),
            filters,
            torch.searchsorted(won[part], torch.arange(r0 * L, r1 * L, device=x.device)),  # bag starts, no host read
            mode="sum",
            per_sample_weights=picked[part],
        )  # (rows L, w e): window (r, p)'s gradient, step j at [.., j e : (j + 1) e]
        into = (torch.arange(r0, r1, device=x.device)[:, None] * T + offsets).reshape(-1)  # x's step r T + p + j
        grad_x.view(N * T, e).index_add_(0, into, window_grads.view(-1, e))
    return grad_w, grad_x


def _grads_of_one_window(x, weight, grad, needs_x):
    """A window as long as the rows (w = T): dW (n, e, w) and dx (N, T, e) or None of the linear map
    y = x (N, T e) @ Wflat.T, two matmuls."""
    N, T, e = x.shape
    n, _, w = weight.shape
    grad_w = (grad.T @ x.view(N, T * e)).view(n, w, e).permute(0, 2, 1)  # (n, e, w), the window-major layout
    return grad_w, (grad @ _flat_filters(weight)).view(N, T, e) if needs_x else None


class _WindowMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, chunk):  # x (N, T, e) contiguous, weight (n, e, w), bias (n,)
        N, T, e = x.shape
        ctx.route = "one" if T == weight.shape[2] else "wide" if e >= WIDE_CHANNELS else "few"
        if ctx.route == "one":  # one window: no max, the convolution is a linear map of the whole row
            values, where = x.view(N, T * e) @ _flat_filters(weight).T, None
        elif ctx.route == "wide":
            values, where = _max_by_convolution(x, weight)
        else:
            values, where = _max_by_matmul(x, weight, chunk)
        ctx.save_for_backward(x, weight, where)
        return values + bias  # (N, n): max_p (z_p + b) = max_p z_p + b

    @staticmethod
    def backward(ctx, grad):  # grad (N, n)
        x, weight, where = ctx.saved_tensors
        grad = grad.to(x.dtype).contiguous()
        if ctx.route == "one":
            grad_w, grad_x = _grads_of_one_window(x, weight, grad, ctx.needs_input_grad[0])
        else:
            grads = _grads_by_bags if ctx.route == "wide" else _grads_by_gather
            grad_w, grad_x = grads(x, weight, where, grad, ctx.needs_input_grad[0])
        return grad_x, grad_w, grad.sum(dim=0), None


def window_max(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """max over time of a convolution: x (N, T, e) (time-major rows), weight (n, e, w), bias (n,)
    -> (N, n), the value and gradient of `F.conv1d(x.transpose(1, 2), weight, bias).amax(dim=-1)` (T >= w).
    Few channels go `chunk` rows at a time (None: `runtime.chunk_rows` for x's device)."""
    if x.shape[1] < weight.shape[-1]:
        raise ValueError(f"sequences of length {x.shape[1]} are shorter than a window of {weight.shape[-1]}")
    chunk = chunk or runtime.chunk_rows((x.shape[1] - weight.shape[-1] + 1) * weight.shape[0], x.device, CHUNK_ROWS)
    return _WindowMax.apply(x.contiguous(), weight, bias, chunk)
