"""Monte Carlo rollout rewards with rigged policies and discriminators whose answer is known."""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.generator import Generator
from seqgan.rl.rollout import rollout_rewards, rollout_sequences, update_rollout_policy

V, T, B = 7, 6, 5
TOKEN = 3  # the token the rigged D counts


def constant_policy(token: int, cell: str = "lstm", num_layers: int = 1) -> Generator:
    """A policy that emits `token` at every step (probability 1 - V * e^-60)."""
    g = Generator(V, 4, 5, num_layers=num_layers, cell=cell)
    with torch.no_grad():
        g.head.weight.zero_()
        g.head.bias.fill_(-30.0)
        g.head.bias[token] = 30.0
    return g


def uniform_policy() -> Generator:
    g = Generator(V, 4, 5)
    with torch.no_grad():
        g.head.weight.zero_()
        g.head.bias.zero_()
    return g


def token_fraction(tokens: torch.Tensor, cond: None = None) -> torch.Tensor:
    """Rigged D: P(real | Y) = fraction of TOKEN in Y. tokens (R, T) -> (R,)."""
    return (tokens == TOKEN).float().mean(dim=1)


def sequences() -> torch.Tensor:
    # Every row has its own prefix counts, so a scrambled (batch, time) layout cannot pass.
    return torch.tensor(
        [
            [3, 0, 3, 1, 3, 2],
            [0, 1, 2, 4, 5, 6],
            [3, 3, 3, 3, 3, 3],
            [1, 3, 1, 3, 1, 3],
            [6, 6, 3, 6, 6, 0],
        ]
    )


def expected_constant_rewards(y: torch.Tensor, filler: int) -> torch.Tensor:
    """Q(t) = (count of TOKEN in y_1..t + (T - t) * [filler == TOKEN]) / T, computed by hand."""
    out = torch.zeros(y.shape)
    for b in range(y.shape[0]):
        for t in range(1, T + 1):
            in_prefix = int((y[b, :t] == TOKEN).sum())
            out[b, t - 1] = (in_prefix + (T - t) * (filler == TOKEN)) / T
    return out


def test_rigged_rewards_equal_hand_computed_matrix():
    y = sequences()
    for filler in (TOKEN, 0):
        for chunk in (1, 7, 64, 10_000):  # chunk boundaries must not matter
            rewards = rollout_rewards(constant_policy(filler), token_fraction, y, 4, torch.Generator().manual_seed(0), chunk)
            assert rewards.shape == (B, T)
            torch.testing.assert_close(rewards, expected_constant_rewards(y, filler))


def test_rigged_rewards_for_gru_and_stacked_policies():
    y = sequences()
    for cell, layers in (("gru", 1), ("lstm", 3), ("gru", 2)):
        rewards = rollout_rewards(constant_policy(TOKEN, cell, layers), token_fraction, y, 3, torch.Generator().manual_seed(0), 9)
        torch.testing.assert_close(rewards, expected_constant_rewards(y, TOKEN))


def test_uniform_policy_rewards_converge_to_expectation():
    """With a uniform policy, E[Q(t)] = (count in prefix + (T - t) / V) / T."""
    y = sequences()
    rewards = rollout_rewards(uniform_policy(), token_fraction, y, 4000, torch.Generator().manual_seed(1), 4096)
    expected = torch.zeros(B, T)
    for b in range(B):
        for t in range(1, T + 1):
            expected[b, t - 1] = (int((y[b, :t] == TOKEN).sum()) + (T - t) / V) / T
    # Std of a mean of 4000 rollouts <= sqrt(5 * (1/7)(6/7)) / 6 / sqrt(4000) ~ 0.0022.
    torch.testing.assert_close(rewards, expected, atol=0.012, rtol=0)


def test_rollouts_keep_prefixes_and_continue_from_the_policy_state():
    y = sequences()
    out = rollout_sequences(constant_policy(5), y, 2, torch.Generator().manual_seed(0), chunk_rows=11)
    assert out.shape == (T - 1, 2, B, T)
    for t in range(1, T):
        assert torch.equal(out[t - 1, :, :, :t], y[:, :t].expand(2, -1, -1))
        assert bool((out[t - 1, :, :, t:] == 5).all())


def test_rollout_continuations_follow_the_policy_state_not_a_restart():
    """A policy whose next token depends on its input reproduces the chain from each prefix."""
    g = Generator(V, V, 8, cell="lstm")
    with torch.no_grad():  # make the next token (previous + 1) mod V, read through the embedding
        g.embedding.weight.copy_(torch.eye(V) * 10)
        for p in g.rnn.parameters():
            p.zero_()
        # LSTM input gate and output gate open, candidate = input: h ~ tanh(tanh(x)) picks the token.
        H = 8
        g.rnn.weight_ih_l0.data[2 * H : 2 * H + V, :V] = torch.eye(V)  # g gate
        g.rnn.bias_ih_l0.data[:H] = 20.0  # input gate
        g.rnn.bias_ih_l0.data[H : 2 * H] = -20.0  # forget gate closed: no memory of older tokens
        g.rnn.bias_ih_l0.data[3 * H :] = 20.0  # output gate
        g.head.weight.zero_()
        g.head.weight.data[:, :V] = torch.roll(torch.eye(V), 1, dims=0) * 60
        g.head.bias.zero_()
    y = torch.tensor([[2, 5, 1, 1, 0, 4]])
    out = rollout_sequences(g, y, 1, torch.Generator().manual_seed(0), chunk_rows=3)
    for t in range(1, T):
        expect = [(int(y[0, t - 1]) + k) % V for k in range(1, T - t + 1)]
        assert out[t - 1, 0, 0, t:].tolist() == expect


def test_rollout_policy_update_is_a_delayed_average():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in a.parameters()]
    update_rollout_policy(a, b, 0.8)
    for p_old, p_new, p_g in zip(before, a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p_new, 0.8 * p_old + 0.2 * p_g)
    update_rollout_policy(a, b, 0.0)
    for p_new, p_g in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p_new, p_g)
