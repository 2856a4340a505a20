"""`window_max`: the max over time of a convolution, whose backward reads only the winning windows,
against PyTorch's convolution and amax, on both of its paths (few channels: matmul and gathers;
many channels: channels-last convolution and embedding_bag)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import seqgan.models.window_max as window_max_module
from seqgan import runtime
from seqgan.models.window_max import CHUNK_ROWS, WIDE_CHANNELS, window_max
from seqgan.runtime import chunk_rows


def reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.conv1d(x.transpose(1, 2), w, b).amax(dim=-1)


@pytest.mark.parametrize(
    ("channels", "width", "chunk"),
    [(1, 2, 8), (1, 5, 100), (3, 4, 7), (WIDE_CHANNELS, 1, 256), (WIDE_CHANNELS, 3, 256), (16, 20, 256), (16, 7, 5)],
)
def test_values_and_gradients_equal_the_convolutions_max(channels, width, chunk):
    torch.manual_seed(channels * 10 + width)
    x = torch.randn(37, 20, channels, dtype=torch.double, requires_grad=True)
    w = torch.randn(11, channels, width, dtype=torch.double, requires_grad=True)
    b = torch.randn(11, dtype=torch.double, requires_grad=True)
    g = torch.randn(37, 11, dtype=torch.double)
    ref = reference(x, w, b)
    got = window_max(x, w, b, chunk=chunk)
    torch.testing.assert_close(got, ref)
    for a, c in zip(
        torch.autograd.grad((ref * g).sum(), (x, w, b)), torch.autograd.grad((got * g).sum(), (x, w, b)), strict=True
    ):
        torch.testing.assert_close(c, a)


@pytest.mark.parametrize("channels", [1, WIDE_CHANNELS])
def test_a_window_as_long_as_the_rows_is_one_matmul_with_no_convolution_max_or_bags(monkeypatch, channels):
    """w = T (the paper's width 20 at T = 20): one window, so no max to take; the values and both
    gradients of the row's linear map by matmuls, and the weight's gradient in its window-major layout
    (the parameter's, so that autograd keeps it without a copy)."""

    def unused(*args):
        raise AssertionError("a single window went through the windowed route")

    for route in ("_max_by_convolution", "_max_by_matmul", "_grads_by_bags", "_grads_by_gather"):
        monkeypatch.setattr(window_max_module, route, unused)
    torch.manual_seed(channels)
    x = torch.randn(9, 6, channels, dtype=torch.double, requires_grad=True)
    w = window_max_module.window_major(torch.randn(4, channels, 6, dtype=torch.double)).requires_grad_()
    b = torch.randn(4, dtype=torch.double, requires_grad=True)
    g = torch.randn(9, 4, dtype=torch.double)
    ref, got = reference(x, w, b), window_max(x, w, b)
    torch.testing.assert_close(got, ref)
    want = torch.autograd.grad((ref * g).sum(), (x, w, b))
    grads = torch.autograd.grad((got * g).sum(), (x, w, b))
    for a, c in zip(want, grads, strict=True):
        torch.testing.assert_close(c, a)
    layout = [[s for s, n in zip(t.stride(), t.shape, strict=True) if n > 1] for t in (grads[1], w)]  # size-1 dims: any stride
    assert layout[0] == layout[1]


def test_few_channels_go_in_cache_sized_chunks_on_the_cpu_and_far_larger_ones_on_a_gpu(monkeypatch):
    """256 rows on the CPU; on a GPU as many as 2^24 outputs hold: RelGAN's D (300 filters, 18
    windows of width 3 at T = 20) 3,106 rows, its 4,096 rows of a batch in 2 chunks; never below 256.
    (Every chunk gives the same values: the test above.)"""
    assert chunk_rows(18 * 300, torch.device("cpu"), CHUNK_ROWS) == 256
    assert chunk_rows(18 * 300, torch.device("cuda"), CHUNK_ROWS) == 3106
    assert chunk_rows(1000 * 100_000, torch.device("cuda"), CHUNK_ROWS) == 256
    asked = []
    monkeypatch.setattr(runtime, "chunk_rows", lambda *args: asked.append(args) or chunk_rows(*args))
    x = torch.randn(5, 20, 1)
    window_max(x, torch.randn(300, 1, 3), torch.zeros(300))
    assert asked == [(18 * 300, x.device, CHUNK_ROWS)]  # the windows' outputs a row


def test_long_rows_go_through_the_wide_backward_in_chunks_with_the_same_gradients(monkeypatch):
    """A window-gradient limit of 3 rows' worth sends 8 rows through in chunks of 3, 3, 2."""
    torch.manual_seed(5)
    x = torch.randn(8, 12, WIDE_CHANNELS, dtype=torch.double, requires_grad=True)
    w = torch.randn(6, WIDE_CHANNELS, 4, dtype=torch.double, requires_grad=True)
    b = torch.randn(6, dtype=torch.double, requires_grad=True)
    g = torch.randn(8, 6, dtype=torch.double)
    whole = torch.autograd.grad((window_max(x, w, b) * g).sum(), (x, w, b))
    monkeypatch.setattr(window_max_module, "WINDOW_GRADS_LIMIT", 3 * 9 * 4 * WIDE_CHANNELS)  # 3 rows of L = 9 windows
    chunked = torch.autograd.grad((window_max(x, w, b) * g).sum(), (x, w, b))
    for a, c in zip(whole, chunked, strict=True):
        assert torch.equal(a, c)
    torch.testing.assert_close(chunked[0], torch.autograd.grad((reference(x, w, b) * g).sum(), x)[0])


def test_the_wide_path_by_hand():
    """Two rows of 3 steps of 8 channels, one width-2 filter of ones on channel 0: the windows of
    row 0 sum to 3, 5 (p* = 1); of row 1 to 4, 1 (p* = 0). Gradient g = (2, -1)."""
    x = torch.zeros(2, 3, WIDE_CHANNELS, dtype=torch.double)
    x[0, :, 0] = torch.tensor([1.0, 2.0, 3.0])
    x[1, :, 0] = torch.tensor([3.0, 1.0, 0.0])
    x.requires_grad_()
    w = torch.zeros(1, WIDE_CHANNELS, 2, dtype=torch.double)
    w[0, 0] = 1.0
    w.requires_grad_()
    b = torch.tensor([0.5], dtype=torch.double, requires_grad=True)
    y = window_max(x, w, b)
    assert torch.equal(y, torch.tensor([[5.5], [4.5]], dtype=torch.double))
    gx, gw, gb = torch.autograd.grad((y * torch.tensor([[2.0], [-1.0]], dtype=torch.double)).sum(), (x, w, b))
    # dW[0, 0] = 2 * x[0, 1:3, 0] - 1 * x[1, 0:2, 0] = 2 * (2, 3) - (3, 1) = (1, 5); other channels 0
    assert torch.equal(gw[0, 0], torch.tensor([1.0, 5.0], dtype=torch.double)) and not gw[0, 1:].any()
    assert gb.item() == 1.0
    # dx: row 0's steps 1, 2 get 2 * W (channel 0), row 1's steps 0, 1 get -1 * W
    assert torch.equal(gx[0, :, 0], torch.tensor([0.0, 2.0, 2.0], dtype=torch.double))
    assert torch.equal(gx[1, :, 0], torch.tensor([-1.0, -1.0, 0.0], dtype=torch.double))
    assert not gx[:, :, 1:].any()


@pytest.mark.parametrize("channels", [1, WIDE_CHANNELS])
def test_at_tied_windows_the_weights_get_amaxs_gradient_and_the_input_the_same_total(channels):
    """A row 1 2 1 2 1 2 ... (on every channel): every window of width 2 starting at an even place is (1, 2), tied."""
    x = torch.tensor([1.0, 2.0] * 5, dtype=torch.double)[None, :, None].repeat(1, 1, channels).requires_grad_()
    w = torch.tensor([[[1.0, 3.0]]], dtype=torch.double).repeat(1, channels, 1).requires_grad_()  # (1, 2) scores 7 c
    b = torch.zeros(1, dtype=torch.double, requires_grad=True)
    ref = torch.autograd.grad(reference(x, w, b).sum(), (x, w, b))
    got = torch.autograd.grad(window_max(x, w, b).sum(), (x, w, b))
    torch.testing.assert_close(got[1], ref[1])
    torch.testing.assert_close(got[2], ref[2])
    torch.testing.assert_close(got[0].sum(), ref[0].sum())  # amax splits over the 5 tied windows
    assert torch.equal(got[0][0, :2, 0], torch.tensor([1.0, 3.0], dtype=torch.double))  # the first window takes it all


def test_a_sequence_shorter_than_the_window_is_refused():
    with pytest.raises(ValueError, match="shorter than a window of 5"):
        window_max(torch.zeros(2, 4, 1), torch.zeros(3, 1, 5), torch.zeros(3))
