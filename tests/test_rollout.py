"""Monte Carlo rollout rewards with rigged policies and discriminators whose answer is known."""

from __future__ import annotations

import torch
from torch import nn

from seqgan.models.generator import Generator
from seqgan.rl.rollout import rollout_rewards, rollout_sequences, running_rows, stride_columns, update_rollout_policy

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
            rewards = rollout_rewards(
                constant_policy(filler), token_fraction, y, 4, torch.Generator().manual_seed(0), chunk_rows=chunk
            )
            assert rewards.shape == (B, T)
            torch.testing.assert_close(rewards, expected_constant_rewards(y, filler))


def test_rigged_rewards_for_gru_and_stacked_policies():
    y = sequences()
    for cell, layers in (("gru", 1), ("lstm", 3), ("gru", 2)):
        rewards = rollout_rewards(
            constant_policy(TOKEN, cell, layers), token_fraction, y, 3, torch.Generator().manual_seed(0), chunk_rows=9
        )
        torch.testing.assert_close(rewards, expected_constant_rewards(y, TOKEN))


def test_uniform_policy_rewards_converge_to_expectation():
    """With a uniform policy, E[Q(t)] = (count in prefix + (T - t) / V) / T."""
    y = sequences()
    rewards = rollout_rewards(uniform_policy(), token_fraction, y, 4000, torch.Generator().manual_seed(1), chunk_rows=4096)
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


def test_stride_one_is_the_code_before_strides_bit_for_bit():
    """Rewards of a seeded random policy with an end token (2), as the code before rollout_stride
    computed them (commit 447823c; exact: each is a count of TOKEN over 3 rollouts x 9 tokens)."""
    torch.manual_seed(0)
    g = Generator(V, 4, 5, eos_token=2, pad_token=0)
    y = g.sample(4, 9, torch.Generator().manual_seed(1))
    before = (
        torch.tensor([[4, 3, 3, 4, 7, 6, 6, 6, 6], [4, 3, 0, 0, 0, 0, 0, 0, 0], [0] * 9, [1, 1, 4, 7, 9, 6, 6, 7, 6]])
        .float()
        .div(27)
    )
    for stride in ({}, {"stride": 1}):
        rewards = rollout_rewards(g, token_fraction, y, 3, torch.Generator().manual_seed(2), chunk_rows=10, **stride)
        assert torch.equal(rewards, before)


def test_strided_rewards_by_hand():
    """T = 7, not a multiple of k. k = 3: prefixes 3 and 6 are rolled out; tokens 1-3 share Q(3),
    4-6 share Q(6), token 7 gets D(Y). k = 2: prefixes 2, 4, 6; token 7 gets D(Y).
    y has TOKEN at 1, 3, 5, 7. A policy that always emits 0 leaves Q(t) = count in y_1..t / 7;
    one that always emits TOKEN adds the T - t tokens it fills in."""
    y = torch.tensor([[3, 0, 3, 1, 3, 2, 3]])
    cases = [
        (3, 0, [2, 2, 2, 3, 3, 3, 4]),  # Q(3) = 2/7, Q(6) = 3/7, D(Y) = 4/7
        (3, TOKEN, [6, 6, 6, 4, 4, 4, 4]),  # Q(3) = (2 + 4)/7, Q(6) = (3 + 1)/7
        (2, 0, [1, 1, 2, 2, 3, 3, 4]),  # Q(2) = 1/7, Q(4) = 2/7, Q(6) = 3/7
        (2, TOKEN, [6, 6, 5, 5, 4, 4, 4]),  # Q(2) = (1 + 5)/7, Q(4) = (2 + 3)/7, Q(6) = (3 + 1)/7
    ]
    for stride, filler, sevenths in cases:
        for chunk in (1, 3, 100):
            rewards = rollout_rewards(
                constant_policy(filler), token_fraction, y, 2, torch.Generator(), chunk_rows=chunk, stride=stride
            )
            torch.testing.assert_close(rewards, torch.tensor([sevenths]) / 7, rtol=0, atol=1e-6)


def test_stride_columns_name_the_reward_of_each_token():
    assert stride_columns(7, 3).tolist() == [0, 0, 0, 1, 1, 1, 2]  # Q(3), Q(6), D(Y)
    assert stride_columns(6, 3).tolist() == [0, 0, 0, 1, 1, 1]  # Q(3), D(Y): prefix 6 is the whole sequence
    assert stride_columns(4, 1).tolist() == [0, 1, 2, 3]
    assert stride_columns(3, 5).tolist() == [0, 0, 0]  # k >= T: every token gets D(Y)


def test_strided_rollouts_of_ended_prefixes_are_padding():
    """With an end token (2): a rolled-out prefix that already holds it continues as padding (0),
    so its Q counts the prefix alone; the other prefixes are filled with TOKEN by the policy."""
    g = constant_policy(TOKEN)
    g.eos_token, g.pad_token = 2, 0
    y = torch.tensor([[3, 1, 2, 0, 0, 0, 0], [3, 3, 1, 1, 3, 2, 0]])
    out = rollout_sequences(g, y, 1, torch.Generator(), chunk_rows=3, stride=2)  # prefixes 2, 4, 6
    assert out.shape == (3, 1, 2, 7)
    assert out[:, 0, 0].tolist() == [[3, 1, 3, 3, 3, 3, 3], [3, 1, 2, 0, 0, 0, 0], [3, 1, 2, 0, 0, 0, 0]]
    assert out[:, 0, 1].tolist() == [[3, 3, 3, 3, 3, 3, 3], [3, 3, 1, 1, 3, 3, 3], [3, 3, 1, 1, 3, 2, 0]]
    rewards = rollout_rewards(g, token_fraction, y, 1, torch.Generator(), chunk_rows=5, stride=2)
    torch.testing.assert_close(rewards * 7, torch.tensor([[6.0, 6, 1, 1, 1, 1, 1], [7, 7, 5, 5, 3, 3, 3]]))


def test_rollout_policy_update_is_a_delayed_average():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in a.parameters()]
    update_rollout_policy(a, b, 0.8)
    for p_old, p_new, p_g in zip(before, a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p_new, 0.8 * p_old + 0.2 * p_g)
    update_rollout_policy(a, b, 0.0)
    for p_new, p_g in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p_new, p_g)


def test_a_rollout_scorer_sees_the_continuations_laid_out_and_gives_the_rows_rewards():
    """score_rollouts gets the sequences and their continuations (P, N, B, T) with the condition,
    and its scores replace the row scorer's: here the same function, so the same rewards bit for bit;
    the seqgan path's `continuation_prob_real` is tested against D's forward in test_discriminator.py."""
    torch.manual_seed(0)
    g = Generator(V, 4, 5)
    y = g.sample(4, 9, torch.Generator().manual_seed(1))
    seen = []

    def by_layout(sequences, continued, cond):
        seen.append((sequences, continued.shape, cond))
        return token_fraction(continued.reshape(-1, continued.shape[-1]), None).view(continued.shape[:3])

    for stride in (1, 3):
        plain = rollout_rewards(g, token_fraction, y, 3, torch.Generator().manual_seed(2), chunk_rows=10, stride=stride)
        laid = rollout_rewards(
            g, token_fraction, y, 3, torch.Generator().manual_seed(2), chunk_rows=10, stride=stride, score_rollouts=by_layout
        )
        assert torch.equal(plain, laid)
        assert seen[-1][0] is y and seen[-1][1] == ((9 - 1) // stride, 3, 4, 9) and seen[-1][2] is None


def test_running_rows_count_the_rows_a_tensor_count_gives():
    """The sampling loop's count of rows still drawing, by arithmetic, against counting the prefix
    lengths of the rows (what the loop read back from the device before)."""
    for N, B, T, stride, chunk in [(3, 4, 9, 1, 10), (2, 5, 11, 3, 7), (1, 1, 5, 2, 1), (4, 2, 20, 1, 1024)]:
        P = (T - 1) // stride
        prefix_len = (torch.arange(P * N * B) // (N * B) + 1) * stride
        for begin in range(0, P * N * B, chunk):
            plen = prefix_len[begin : begin + chunk]
            for k in range(1, T):
                assert running_rows(begin, len(plen), T - k, stride, N * B) == int((plen <= T - k).sum())
