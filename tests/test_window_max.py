"""`window_max`: the max over time of a convolution, whose backward reads only the winning windows,
against PyTorch's convolution and amax."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqgan.models.window_max import window_max


@pytest.mark.parametrize(("channels", "width", "chunk"), [(1, 2, 8), (1, 5, 100), (3, 4, 7)])
def test_values_and_gradients_equal_the_convolutions_max(channels, width, chunk):
    torch.manual_seed(channels * 10 + width)
    x = torch.randn(37, channels, 20, dtype=torch.double, requires_grad=True)
    w = torch.randn(11, channels, width, dtype=torch.double, requires_grad=True)
    b = torch.randn(11, dtype=torch.double, requires_grad=True)
    g = torch.randn(37, 11, dtype=torch.double)
    ref = F.conv1d(x, w, b).amax(dim=-1)
    got = window_max(x, w, b, chunk=chunk)
    torch.testing.assert_close(got, ref)
    for a, c in zip(
        torch.autograd.grad((ref * g).sum(), (x, w, b)), torch.autograd.grad((got * g).sum(), (x, w, b)), strict=True
    ):
        torch.testing.assert_close(c, a)


def test_at_tied_windows_the_weights_get_amaxs_gradient_and_the_input_the_same_total():
    """A row 1 2 1 2 1 2 ...: every window of width 2 starting at an even place is (1, 2), tied."""
    x = torch.tensor([1.0, 2.0] * 5, dtype=torch.double)[None, None].requires_grad_()
    w = torch.tensor([[[1.0, 3.0]]], dtype=torch.double, requires_grad=True)  # (1, 2) scores 7, (2, 1) scores 5
    b = torch.zeros(1, dtype=torch.double, requires_grad=True)
    ref = torch.autograd.grad(F.conv1d(x, w, b).amax(dim=-1).sum(), (x, w, b))
    got = torch.autograd.grad(window_max(x, w, b).sum(), (x, w, b))
    torch.testing.assert_close(got[1], ref[1])
    torch.testing.assert_close(got[2], ref[2])
    torch.testing.assert_close(got[0].sum(), ref[0].sum())  # amax splits over the 5 tied windows
    assert torch.equal(got[0][0, 0, :2], torch.tensor([1.0, 3.0], dtype=torch.double))  # the first window takes it all


def test_a_sequence_shorter_than_the_window_is_refused():
    with pytest.raises(ValueError, match="shorter than a window of 5"):
        window_max(torch.zeros(2, 1, 4), torch.zeros(3, 1, 5), torch.zeros(3))
