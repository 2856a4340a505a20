"""`masked_mean`: the mean over the valid entries of a mask, by arithmetic.

Selecting the valid entries (`x[mask]`) gives a tensor whose size depends on the data: a GPU reads
the count back to the host, which stalls the device and keeps the step out of a CUDA graph. The
weighted sum below has fixed shapes. Losses over padded positions (MLE, policy gradients) and over
some rows of a batch (D's condition heads on the real rows, D's loss on every prefix) use it."""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of x over the positions where mask (bool, x's shape) is True (all of them when mask is
    None); 0 when none is, with the graph kept."""
    if mask is None:
        return x.mean()
    return (x * mask).sum() / mask.sum().clamp(min=1)
