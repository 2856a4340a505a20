"""Inverse-CDF sampling draws from the softmax distribution; temperature and greedy limits."""

from __future__ import annotations

import pytest
import torch

from seqgan.models.generator import Generator
from seqgan.models.sampling import sample_logits


def test_inverse_cdf_matches_softmax_frequencies():
    logits = torch.tensor([[2.0, 0.0, -1.0, 1.0, -30.0]]).expand(200_000, -1)
    draws = sample_logits(logits, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=5).float() / len(draws)
    torch.testing.assert_close(freq, torch.softmax(logits[0], -1), atol=3e-3, rtol=0)
    assert int(freq[4] * len(draws)) == 0


def test_temperature_scales_logits():
    logits = torch.tensor([[1.0, 0.0]]).expand(200_000, -1)
    draws = sample_logits(logits, torch.Generator().manual_seed(0), temperature=0.5)
    p0 = (draws == 0).float().mean().item()
    assert abs(p0 - torch.softmax(torch.tensor([2.0, 0.0]), -1)[0].item()) < 3e-3


def test_sampling_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(torch.zeros(1, 3), torch.Generator(), temperature=0.0)


def test_low_temperature_sampling_becomes_greedy():
    torch.manual_seed(0)
    g = Generator(20, 8, 16, init_std=1.0)
    greedy = g.sample(50, 8, torch.Generator().manual_seed(0), temperature=0)
    cold = g.sample(50, 8, torch.Generator().manual_seed(1), temperature=1e-3)
    assert torch.equal(greedy, cold)
    warm = g.sample(50, 8, torch.Generator().manual_seed(1), temperature=1.0)
    assert not torch.equal(greedy, warm)


def test_same_generator_seed_gives_same_samples():
    g = Generator(20, 8, 16)
    a = g.sample(30, 8, torch.Generator().manual_seed(5))
    b = g.sample(30, 8, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_unnormalised_probs_are_the_exponential_within_float_rounding():
    """exp is taken as exp2(x log2 e) (faster on the CPU): relatively within |x| x 2^-24 (the
    product's rounding, <= 6e-6 for these |x| <= 100) and exp2's ulp of torch.exp, and shifted by
    the row max where a logit could overflow."""
    from seqgan.models.sampling import _unnormalised_probs

    small = torch.randn(64, 500, generator=torch.Generator().manual_seed(0)) * 10
    torch.testing.assert_close(_unnormalised_probs(small.clone()), small.exp(), rtol=1e-5, atol=0)
    large = small + torch.tensor([[0.0], [500.0]]).repeat(32, 1)  # every other row far past exp's range
    got = _unnormalised_probs(large.clone())
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, (large - large.amax(dim=1, keepdim=True)).exp(), rtol=1e-5, atol=0)


def test_sampling_far_beyond_the_exponentials_range_keeps_the_softmax():
    logits = torch.tensor([[1000.0, 1000.0 + torch.log(torch.tensor(3.0)).item()]]).expand(100_000, -1)
    draws = sample_logits(logits, torch.Generator().manual_seed(0))
    assert abs((draws == 1).float().mean().item() - 0.75) < 4e-3
