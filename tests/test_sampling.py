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
    """exp is taken as exp2 of base-2 logits (faster on the CPU). The products x log2 e and the
    shift by the row max m round at 2^-24 of |x|, |m| and |x - m| in the exponent, so each
    probability is within (|x| + |m| + 2 |x - m|) 2^-24 of torch.exp's (whose x - m rounds too),
    relatively, plus exp2's ulp: within 4 max|x| 2^-23 + 2^-21 per row. Rows past exp's range are
    shifted by their max."""
    from seqgan.models.sampling import LOG2_E, exp2_probs

    def relative_error(got, want):
        return (got - want).abs() / want

    def bound(x):
        return 4 * x.abs().amax(dim=1, keepdim=True) * 2**-23 + 2**-21

    small = torch.randn(64, 500, generator=torch.Generator().manual_seed(0)) * 10
    assert (relative_error(exp2_probs(small * LOG2_E), small.exp()) <= bound(small)).all()
    large = small + torch.tensor([[0.0], [500.0]]).repeat(32, 1)  # every other row far past exp's range
    got = exp2_probs(large * LOG2_E)
    assert torch.isfinite(got).all()
    want = (large - large.amax(dim=1, keepdim=True)).exp()
    assert (relative_error(got, want) <= bound(large)).all()
    assert not (relative_error(got, want) <= 2**-21).all()  # the bound is the product's: large rows do round


def test_sampling_far_beyond_the_exponentials_range_keeps_the_softmax():
    logits = torch.tensor([[1000.0, 1000.0 + torch.log(torch.tensor(3.0)).item()]]).expand(100_000, -1)
    draws = sample_logits(logits, torch.Generator().manual_seed(0))
    assert abs((draws == 1).float().mean().item() - 0.75) < 4e-3


def test_bf16_base2_logits_are_drawn_in_float32():
    """A step under bf16 autocast gives bf16 logits: the draw is the one of the same values in
    float32 (sums of 5,000 probabilities in bf16's 8 bits would misplace it)."""
    from seqgan.models.sampling import sample_base2

    logits = (torch.randn(1000, 5000, generator=torch.Generator().manual_seed(0)) * 0.1).bfloat16()
    got = sample_base2(logits.clone(), torch.Generator().manual_seed(1))
    assert torch.equal(got, sample_base2(logits.float(), torch.Generator().manual_seed(1)))


def vocabulary_maxima(monkeypatch, vocab: int) -> list[tuple[int, ...]]:
    """Records the shape of every `amax` over rows of `vocab` logits from now on."""
    calls, amax = [], torch.Tensor.amax

    def counted(self, *args, **kwargs):
        if self.dim() == 2 and self.shape[1] == vocab:
            calls.append(tuple(self.shape))
        return amax(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "amax", counted)
    return calls


@pytest.mark.parametrize(("scale", "shift"), [(1.0, 0.0), (1000.0, 0.0), (1.0, -2000.0)])
def test_steps_draws_skip_the_row_max_and_draw_what_the_row_max_route_draws(monkeypatch, scale, shift):
    """`sampling_step` hands `sample_base2` its logits with the product they come from
    (`Base2Logits`): on the CPU the draw exponentiates without the row max and checks the rows'
    totals. Moderate logits (the initial G): no row max over the vocabulary in `sample`, and in the
    rollouts one only, over all prefixes' logits (a plain tensor: each prefix's first draw). Logits 1000 times larger
    (2^logit overflows) or 2000 nats lower (it underflows): the totals refuse, the product is
    recomputed and the row maxima decide. Every way, the tokens are those of the plain route,
    which takes each step's row max, bit for bit."""
    from seqgan.rl.rollout import rollout_sequences

    torch.manual_seed(0)
    g = Generator(300, 8, 16)
    with torch.no_grad():
        g.output_layer()[0].mul_(scale)
        g.output_layer()[1].mul_(scale).add_(shift)

    def draws() -> tuple[torch.Tensor, torch.Tensor]:
        sequences = g.sample(40, 7, torch.Generator().manual_seed(1))
        return sequences, rollout_sequences(g, sequences, 3, torch.Generator().manual_seed(2), chunk_rows=50)

    maxima = vocabulary_maxima(monkeypatch, 300)
    got = draws()
    chunks = -(-6 * 3 * 40 // 50)  # the rollouts' 720 rows (6 prefixes x 3 x 40) in chunks of 50
    if scale == 1.0 and shift == 0.0:
        assert maxima == [(6 * 40, 300)]  # one over the 6 x 40 prefixes' logits, none in sample
    else:
        assert len(maxima) > chunks + 7  # every step of sample's 7 and of the rollouts' too
    fast_step = Generator.sampling_step

    def plain_step(self, temperature=1.0):  # the step's logits alone: the draw takes the row max
        step = fast_step(self, temperature)
        return lambda token, state: (lambda logits, new_state: (logits.values, new_state))(*step(token, state))

    monkeypatch.setattr(Generator, "sampling_step", plain_step)
    want = draws()
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_the_totals_prove_the_row_maxima_moderate_only_with_room_for_rounding():
    """S = 80 log2 e = 115.4 (base 2). max <= total <= V max, so a total in (2 V 2^-S, 2^(S-1))
    proves |max| < S; near the ends it decides nothing, and the draw takes the row max instead."""
    from seqgan.models.sampling import unshifted_is_exact

    s, v = 80 * 1.4426950408889634, 5000
    assert unshifted_is_exact(torch.tensor([1.0, 2.0**-100, 2.0**110]), v)
    assert not unshifted_is_exact(torch.tensor([1.0, float("inf")]), v)
    assert not unshifted_is_exact(torch.tensor([1.0, 0.0]), v)
    assert not unshifted_is_exact(torch.tensor([1.0, float("nan")]), v)
    assert not unshifted_is_exact(torch.tensor([2.0 ** (s - 1)]), v)  # a max of S - 1 - log2 V .. S - 1: unproven
    assert not unshifted_is_exact(torch.tensor([2.0 * v * 2.0**-s]), v)
    assert unshifted_is_exact(torch.tensor([2.0 * v * 2.0**-s * 1.01]), v)


def test_base2_logits_keep_leading_rows_only():
    from seqgan.models.sampling import Base2Logits

    inputs, columns = torch.randn(5, 3), torch.randn(3, 7)
    logits = Base2Logits(inputs @ columns, inputs, columns)
    assert torch.equal(logits[:2].recomputed(), (inputs @ columns)[:2])
    with pytest.raises(IndexError, match="leading rows"):
        logits[1:3]


def test_drawing_by_row_indices_equals_drawing_from_the_copied_rows():
    # V = 301: the last block is short (BLOCK = 125), so the padding mask is exercised too.
    from seqgan.models.sampling import block_cdf, exp2_probs, inverse_cdf

    p = exp2_probs(torch.randn(5, 301, generator=torch.Generator().manual_seed(0)) * 3)
    rows = torch.tensor([4, 0, 0, 2, 4, 4, 1, 3, 3, 0] * 50)  # (500,): repeated, out of order
    want = inverse_cdf(p[rows], torch.Generator().manual_seed(7))
    got = inverse_cdf(p, torch.Generator().manual_seed(7), block_cdf(p), rows)
    assert torch.equal(got, want)
    assert len(set(want.tolist())) > 20  # a rigged case that draws many words, not one per row
    assert torch.equal(inverse_cdf(p, torch.Generator().manual_seed(7), rows=rows), want)  # cdf taken here
