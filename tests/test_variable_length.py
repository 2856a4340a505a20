"""Sequences of varying length: end token, padding and masks in G, rollouts and losses."""

from __future__ import annotations

import math

import torch

from seqgan.models.generator import Generator
from seqgan.rl.losses import masked_mean, pg_loss
from seqgan.rl.rollout import rollout_rewards, rollout_sequences

PAD, EOS, V, T = 0, 2, 9, 6


def constant_policy(token: int) -> Generator:
    g = Generator(V, 4, 5, start_token=1, eos_token=EOS, pad_token=PAD)
    with torch.no_grad():
        g.head.weight.zero_()
        g.head.bias.fill_(-30.0)
        g.head.bias[token] = 30.0
    return g


def test_mask_covers_up_to_and_including_the_first_end_token():
    g = Generator(V, 4, 5, eos_token=EOS)
    y = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [2, 0, 0, 0], [4, 2, 2, 0]])
    expect = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]]).bool()
    assert torch.equal(g.mask(y), expect)
    assert Generator(V, 4, 5).mask(y) is None  # no end token: every position counts


def test_sampling_pads_after_the_end_token():
    torch.manual_seed(0)
    g = Generator(V, 4, 5, start_token=1, eos_token=EOS, pad_token=PAD, init_std=1.0)
    with torch.no_grad():
        g.head.bias[EOS] += 1.5  # end often
    y = g.sample(300, T, torch.Generator().manual_seed(0))
    ended = (y == EOS).cumsum(1) > 0
    after = ended & ~(y == EOS) | (ended.cumsum(1) > 1)  # positions after the first EOS
    assert bool(ended.any(1).float().mean() > 0.5)
    assert bool((y[after] == PAD).all())


def test_rollouts_stop_at_the_end_token_and_pad_ended_prefixes():
    y = torch.tensor([[5, 2, 0, 0, 0, 0], [5, 6, 7, 8, 4, 3]])
    out = rollout_sequences(constant_policy(EOS), y, 2, torch.Generator().manual_seed(0), chunk_rows=5)
    for t in range(1, T):
        assert torch.equal(out[t - 1, :, :, :t], y[:, :t].expand(2, -1, -1))
        # row 0 ended at position 2: every continuation is padding; row 1 gets EOS then padding
        if t >= 2:
            assert bool((out[t - 1, :, 0, t:] == PAD).all())
        assert bool((out[t - 1, :, 1, t] == EOS).all()) and bool((out[t - 1, :, 1, t + 1 :] == PAD).all())


def test_rewards_with_a_rigged_length_discriminator():
    """D = 1 if the sequence has ended (holds EOS), else 0: Q(t) is known for every prefix."""
    y = torch.tensor([[5, 2, 0, 0, 0, 0], [5, 6, 7, 8, 4, 3]])

    def ended(tokens, cond=None):
        return (tokens == EOS).any(1).float()

    never_ends = constant_policy(7)
    rewards = rollout_rewards(never_ends, ended, y, 3, torch.Generator().manual_seed(0), chunk_rows=4)
    torch.testing.assert_close(rewards, torch.tensor([[0.0, 1, 1, 1, 1, 1], [0.0, 0, 0, 0, 0, 0]]))
    always_ends = constant_policy(EOS)
    rewards = rollout_rewards(always_ends, ended, y, 3, torch.Generator().manual_seed(0), chunk_rows=4)
    torch.testing.assert_close(rewards, torch.tensor([[1.0, 1, 1, 1, 1, 1], [1.0, 1, 1, 1, 1, 0]]))


def test_mle_loss_ignores_padding():
    torch.manual_seed(0)
    g = Generator(V, 4, 5, start_token=1, eos_token=EOS)
    a = torch.tensor([[5, 6, 2, 0, 0, 0]])
    b = torch.tensor([[5, 6, 2, 7, 8, 3]])  # same sequence, other tokens after the end
    la, lb = (masked_mean(g.log_probs(x), g.mask(x)) for x in (a, b))
    torch.testing.assert_close(la, lb)
    torch.testing.assert_close(la, g.log_probs(a)[0, :3].mean())


def test_masked_pg_loss_by_hand():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]])
    q = torch.tensor([[1.0, 0.5, 9.0], [0.2, 0.4, 0.6]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]]).bool()
    expect = -((-1.0 * 1.0) + (-2.0 * 0.5) + (-4.0 * 0.2) + (-5.0 * 0.4) + (-6.0 * 0.6)) / 5
    assert math.isclose(pg_loss(logp, q, mask=mask).item(), expect, rel_tol=1e-6)
    # mean baseline over running sequences: t=0: (1.0+0.2)/2, t=1: (0.5+0.4)/2, t=2: 0.6 (only row 1)
    adv = torch.tensor([[0.4, 0.05, 0.0], [-0.4, -0.05, 0.0]])
    expect = -((logp * adv) * mask).sum() / 5
    assert math.isclose(pg_loss(logp, q, "mean", mask).item(), expect.item(), rel_tol=1e-6)
