"""Decoding maths: top-k and top-p filters, truncated sampling, beam search, prompts.

Analytic checks on hand-made distributions and on tiny generators whose sequences can all be
enumerated; the command line and the Python `generate` are tested in test_generate_cli.py."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqgan import runtime
from seqgan.models import sampling
from seqgan.models.beam import beam_search
from seqgan.models.generator import Generator
from seqgan.models.sampling import sample_logits, sample_truncated
from seqgan.models.truncation import filter_logits, nucleus_mask, top_k_filter

PROBS = torch.tensor([0.05, 0.4, 0.1, 0.25, 0.2])  # sorted: 0.4 (1), 0.25 (3), 0.2 (4), 0.1 (2), 0.05 (0)


def kept(logits: torch.Tensor) -> set[int]:
    return set(torch.nonzero(torch.isfinite(logits[0])).flatten().tolist())


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.3, {1}), (0.4, {1}), (0.41, {1, 3}), (0.6, {1, 3}), (0.7, {1, 3, 4}), (0.9, {1, 3, 4, 2}), (0.97, {0, 1, 2, 3, 4})],
)
def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p(p, expected):
    logits = PROBS.log().unsqueeze(0)
    assert kept(filter_logits(logits, top_p=p)) == expected
    assert kept(filter_logits(logits * 1.0 + 3.0, top_p=p)) == expected  # logits are defined up to a constant


def test_top_p_keeps_tokens_tied_at_the_boundary_together_and_p_1_keeps_all():
    tied = torch.tensor([[0.4, 0.2, 0.2, 0.2]]).log()
    assert kept(filter_logits(tied, top_p=0.5)) == {0, 1, 2, 3}
    assert kept(filter_logits(tied, top_p=0.4)) == {0}
    assert bool(nucleus_mask(torch.tensor([[1e-30, 1.0, 1e-30]]), 1.0).all())


def test_top_k_keeps_the_k_largest_and_composes_before_top_p():
    logits = PROBS.log().unsqueeze(0)
    assert kept(top_k_filter(logits, 2)) == {1, 3}
    assert torch.equal(top_k_filter(logits, 5), logits)
    # top-k 3 leaves {0.4, 0.25, 0.2} (mass 0.85); the nucleus 0.5 of that is 0.4 / 0.85 < 0.5 -> two tokens
    assert kept(filter_logits(logits, top_k=3, top_p=0.5)) == {1, 3}
    assert kept(filter_logits(logits, top_k=3, top_p=0.45)) == {1}
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(logits, 0)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=1.5)


@pytest.mark.parametrize(("top_k", "top_p"), [(None, 0.7), (3, None), (4, 0.8), (None, 0.3)])
@pytest.mark.parametrize("route", ["rejection", "sorting fallback", "as on a GPU"])
def test_truncated_sampling_draws_the_filtered_distribution(monkeypatch, top_k, top_p, route):
    if route == "sorting fallback":  # every row through the fallback after the rejection rounds
        monkeypatch.setattr(sampling, "NUCLEUS_ROUNDS", 0)
    if route == "as on a GPU":  # where host reads are not free: the sort, no rejection rounds
        monkeypatch.setattr(runtime, "host_reads_are_free", lambda device: False)
        monkeypatch.setattr(sampling, "_mass_above", None)
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0, 1.5]]).expand(100_000, -1)
    draws = sample_truncated(logits, torch.Generator().manual_seed(0), 0.8, top_k, top_p)
    want = torch.softmax(filter_logits(logits[:1] / 0.8, top_k, top_p), dim=-1)[0]
    freq = torch.bincount(draws, minlength=7).float() / len(draws)
    torch.testing.assert_close(freq, want, atol=5e-3, rtol=0)
    assert bool((freq[want == 0] == 0).all())  # never a token outside the truncated set


def test_top_p_1_and_top_k_v_draw_exactly_plain_samples():
    logits = torch.randn(300, 57, generator=torch.Generator().manual_seed(1)) * 2
    plain = sample_logits(logits, torch.Generator().manual_seed(7), 0.7)
    for top_k, top_p in ((None, 1.0), (57, None), (57, 1.0), (1000, 1.0)):
        assert torch.equal(sample_truncated(logits, torch.Generator().manual_seed(7), 0.7, top_k, top_p), plain)
    g = Generator(30, 8, 16, init_std=1.0, eos_token=2)
    base = g.sample(200, 9, torch.Generator().manual_seed(3), temperature=0.9)
    for top_k, top_p in ((None, 1.0), (30, None), (30, 1.0)):
        assert torch.equal(g.sample(200, 9, torch.Generator().manual_seed(3), temperature=0.9, top_k=top_k, top_p=top_p), base)
    assert not torch.equal(g.sample(200, 9, torch.Generator().manual_seed(3), temperature=0.9, top_p=0.5), base)


@pytest.mark.parametrize("eos", [None, 2])
def test_top_k_1_is_greedy(eos):
    torch.manual_seed(0)
    g = Generator(25, 8, 16, init_std=1.0, eos_token=eos)
    greedy = g.sample(50, 8, torch.Generator().manual_seed(0), temperature=0)
    assert torch.equal(g.sample(50, 8, torch.Generator().manual_seed(1), temperature=1.3, top_k=1), greedy)
    assert torch.equal(g.sample(50, 8, torch.Generator().manual_seed(1), temperature=1.3, top_k=1, top_p=0.9), greedy)


def test_a_prefix_starts_every_sample_verbatim():
    torch.manual_seed(0)
    g = Generator(25, 8, 16, init_std=1.0, eos_token=2, attention=True)
    prefix = torch.tensor([[5, 6, 7], [9, -1, -1], [2 + 1, 4, -1]]).repeat_interleave(4, dim=0)  # 3 prompts x 4
    for kwargs in ({}, {"top_p": 0.8}, {"temperature": 0}):
        out = g.sample(12, 8, torch.Generator().manual_seed(0), prefix=prefix, **kwargs)
        for row, forced in zip(out, prefix, strict=True):
            n = int((forced >= 0).sum())
            assert row[:n].tolist() == forced[:n].tolist()
    draws = g.sample(400, 8, torch.Generator().manual_seed(0), prefix=torch.tensor([[5, 6]]).expand(400, -1))
    assert len({tuple(r[2:].tolist()) for r in draws}) > 10  # continued by sampling, not copied


def brute_force_best(g: Generator, length: int, penalty: float = 1.0) -> tuple[list[int], float]:
    """The best sequence of every possible one (after the end token only padding), by G's log-prob / length ** penalty."""
    seqs = torch.tensor(list(itertools.product(range(g.vocab_size), repeat=length)))
    if g.eos_token is not None:
        ended = (seqs == g.eos_token).cumsum(dim=1).roll(1, dims=1)
        ended[:, 0] = 0
        seqs = seqs[((ended > 0) <= (seqs == g.pad_token)).all(dim=1)]  # padded after the end, else anything
    with torch.no_grad():
        logp = g.log_probs(seqs)
    mask = g.mask(seqs) if g.eos_token is not None else torch.ones_like(seqs, dtype=torch.bool)
    score = (logp * mask).sum(dim=1) / mask.sum(dim=1).float() ** penalty
    best = int(score.argmax())
    return seqs[best].tolist(), float(score[best])


@pytest.mark.parametrize("eos", [None, 1])
def test_beam_search_of_width_1_is_greedy_and_a_wide_beam_finds_the_best_sequence(eos):
    torch.manual_seed(3)
    g = Generator(3, 4, 8, init_std=1.5, eos_token=eos, start_token=0).eval()
    length = 4
    greedy = g.sample(1, length, torch.Generator(), temperature=0)
    tokens, _ = beam_search(g, 1, length)
    assert tokens[0, 0].tolist() == greedy[0].tolist()
    best, score = brute_force_best(g, length)
    tokens, scores = beam_search(g, 3**length, length)
    assert tokens[0, 0].tolist() == best and math.isclose(float(scores[0, 0]), score, rel_tol=1e-5)
    assert bool((scores[0, 1:] <= scores[0, :-1]).all())  # best first


def test_beam_search_continues_each_prompt_and_ranks_by_log_prob_per_generated_token():
    torch.manual_seed(1)
    g = Generator(6, 4, 8, init_std=1.5, eos_token=1).eval()
    prefix = torch.tensor([[3, 4], [5, -1]])
    tokens, scores = beam_search(g, 5, 6, prefix=prefix)
    assert tokens.shape == (2, 5, 6)
    assert (tokens[0, :, :2] == torch.tensor([3, 4])).all() and (tokens[1, :, 0] == 5).all()
    start = torch.tensor([2, 1]).repeat_interleave(5)  # prompt lengths: the prompt costs nothing and does not count
    flat = tokens.reshape(10, 6)
    with torch.no_grad():
        counted = (torch.arange(6) >= start[:, None]) & g.mask(flat)
        per_token = (g.log_probs(flat) * counted).sum(dim=1) / counted.sum(dim=1)
    torch.testing.assert_close(scores.reshape(10), per_token)
    assert bool((scores[:, 1:] <= scores[:, :-1]).all())


def test_noise_free_beam_scores_are_the_teacher_forced_log_probs():
    torch.manual_seed(2)
    g = Generator(7, 4, 8, init_std=1.0, eos_token=1).eval()
    tokens, scores = beam_search(g, 3, 5, length_penalty=0.0)
    with torch.no_grad():
        logp = (g.log_probs(tokens[0]) * g.mask(tokens[0])).sum(dim=1)
    torch.testing.assert_close(scores[0], logp)
