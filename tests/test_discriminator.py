"""Discriminators: shapes, the lookup-table scoring path equals the convolutions, D learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqgan.models.condition import LabelEncoder, repeat_rows
from seqgan.models.discriminator import (
    CNNDiscriminator,
    Discriminator,
    Highway,
    MultiRepCNNDiscriminator,
    RNNDiscriminator,
    discriminator_loss,
    prob_real,
    realness,
)


def conv_features(d: CNNDiscriminator, tokens: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():  # grad mode forces the plain convolution path
        return d.features(tokens).detach()


def test_table_scoring_equals_convolutions_and_follows_weight_changes():
    torch.manual_seed(0)
    d = CNNDiscriminator(30, 8, [1, 2, 3, 7], [4, 5, 6, 3], dropout=0.25).eval()
    x = torch.randint(0, 30, (50, 7))
    with torch.no_grad():
        torch.testing.assert_close(d.features(x), conv_features(d, x), atol=1e-5, rtol=1e-5)
        d.convs[2].weight.add_(0.5)  # an optimizer step changes weights in place: tables must follow
        d.embedding.weight.mul_(2.0)
        torch.testing.assert_close(d.features(x), conv_features(d, x), atol=1e-5, rtol=1e-5)


def test_highway_is_the_papers_formula_with_and_without_gradients():
    """t * relu(W_h x + b_h) + (1 - t) * x, t = sigmoid(W_t x + b_t): with gradients out of place,
    without them in place on the product's output, the same values bit for bit; the gradient of x
    is the formula's."""
    torch.manual_seed(0)
    hw = Highway(6)
    x = torch.randn(5, 6, requires_grad=True)
    t = torch.sigmoid(hw.gate(x))
    paper = t * F.relu(hw.transform(x)) + (1 - t) * x
    y = hw(x)
    torch.testing.assert_close(y, paper, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        assert torch.equal(hw(x), y)
    (grad,) = torch.autograd.grad(y.sum(), x)
    (want,) = torch.autograd.grad(paper.sum(), x)
    torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-6)
    with torch.autocast("cpu", torch.bfloat16), torch.no_grad():  # bf16 products against a float32 x: out of place
        assert hw(x).dtype == torch.float32


def test_discriminators_output_two_logits_and_probabilities():
    x = torch.randint(0, 30, (9, 7))
    for d in (
        CNNDiscriminator(30, 8, [1, 3], [4, 4]),
        RNNDiscriminator(30, 8, 6, cell="gru", bidirectional=True),
        RNNDiscriminator(30, 8, 6, cell="lstm", bidirectional=False),
    ):
        assert d(x).shape == (9, 2)
        d.eval()
        p = prob_real(d, x, batch_size=4)
        assert p.shape == (9,) and bool(((p > 0) & (p < 1)).all())


def test_cnn_discriminator_learns_to_separate_two_token_sets():
    torch.manual_seed(0)
    d = CNNDiscriminator(20, 8, [1, 2], [8, 8], dropout=0.0)
    opt = torch.optim.Adam(d.parameters(), lr=0.01)
    real, fake = torch.randint(0, 10, (64, 6)), torch.randint(10, 20, (64, 6))
    x, is_real = torch.cat([real, fake]), torch.cat([torch.ones(64), torch.zeros(64)]).bool()
    for _ in range(30):
        loss = discriminator_loss(d(x), is_real, 0.0, d.out.weight, d.out.bias, 0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    assert prob_real(d, real).min() > 0.9 and prob_real(d, fake).max() < 0.1


# ----------------------------------------------------------------------------- relaxed one-hots


@pytest.mark.parametrize(
    "make", [lambda: CNNDiscriminator(20, 8, [1, 2, 3], [4, 4, 4], dropout=0.0), lambda: RNNDiscriminator(20, 8, 6, dropout=0.0)]
)
def test_d_on_one_hots_equals_d_on_token_ids(make):
    torch.manual_seed(0)
    d = make()
    tokens = torch.randint(0, 20, (5, 7), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(d.soft_logits(F.one_hot(tokens, 20).float()), d(tokens))
    d.eval()
    with torch.no_grad():  # the lookup-table route of the token path, too
        torch.testing.assert_close(d.soft_logits(F.one_hot(tokens, 20).float()), d(tokens))


def test_ds_gradient_reaches_its_soft_inputs():
    torch.manual_seed(0)
    d = CNNDiscriminator(20, 8, [1, 2], [4, 4], dropout=0.0)
    vectors = torch.softmax(torch.randn(3, 5, 20), dim=-1).requires_grad_()
    realness(d.soft_logits(vectors)).sum().backward()
    assert vectors.grad is not None and vectors.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- RelGAN's multi-representation D


def test_multi_representation_d_scores_each_slice_with_the_same_convolutions():
    torch.manual_seed(0)
    d = MultiRepCNNDiscriminator(20, 6, 3, [1, 2], [4, 4], 0.0)
    tokens = torch.randint(0, 20, (5, 7))
    scores = d.soft_scores(F.one_hot(tokens, 20).float())
    assert scores.shape == (5, 3)
    emb = d.embedding(tokens)  # (B, T, 6): representation k is columns 2k, 2k + 1
    for k in range(3):
        one = emb[:, :, 2 * k : 2 * k + 2].transpose(1, 2)  # (B, 2, T)
        pooled = torch.cat([conv(one).amax(dim=-1) for conv in d.convs], dim=1).relu()
        torch.testing.assert_close(scores[:, k], d.out(d.hidden(d.highway(pooled))).squeeze(1))
    logits = d(tokens)  # the two-class view: "real" log-odds is the mean over the representations
    torch.testing.assert_close(realness(logits), scores.mean(dim=1))


def test_discriminator_config_builds_the_multi_representation_d():
    from seqgan.algorithms.build import build_discriminator
    from seqgan.config import ConfigError, DiscriminatorConfig

    d = build_discriminator(DiscriminatorConfig(embed_dim=8, num_rep=4, filter_sizes=[2], num_filters=[3]), 30)
    assert isinstance(d, MultiRepCNNDiscriminator) and d.num_rep == 4
    with pytest.raises(ConfigError, match="must be a multiple of num_rep 3"):
        DiscriminatorConfig(embed_dim=8, num_rep=3)
    with pytest.raises(ConfigError, match="num_rep applies to kind=cnn only"):
        DiscriminatorConfig(kind="rnn", num_rep=2)


def continuations(sequences: torch.Tensor, num: int, stride: int, vocab: int, seed: int) -> torch.Tensor:
    """(P, N, B, T) rows as rollouts lay them out: [j, n, b] = sequences[b]'s first (j + 1) * stride
    tokens, then random ones."""
    B, T = sequences.shape
    P = (T - 1) // stride
    out = sequences.repeat(P * num, 1).view(P, num, B, T).clone()
    rng = torch.Generator().manual_seed(seed)
    for j in range(P):
        t = (j + 1) * stride
        out[j, :, :, t:] = torch.randint(0, vocab, (num, B, T - t), generator=rng)
    return out


@pytest.mark.parametrize(("stride", "batch_size", "conditional"), [(1, 7, False), (3, 1024, False), (2, 10, True)])
def test_continuation_scores_share_prefix_windows_and_equal_scoring_each_row(stride, batch_size, conditional):
    """Sharing the windows inside each prefix gives bit for bit the logits of scoring every row by
    itself, with chunks of rows that cut across prefixes (batch 7 and 10 for groups of 3 x 5 rows),
    for an unconditional and a conditional (concat) D, widths up to the length (7 of 9 tokens)."""
    torch.manual_seed(stride)
    condition = LabelEncoder([4], 3) if conditional else None
    d = CNNDiscriminator(40, 8, [1, 2, 4, 7], [3, 5, 4, 2], dropout=0.5, condition=condition).eval()
    sequences = torch.randint(0, 40, (5, 9))
    cond = torch.randint(0, 4, (5, 1)) if conditional else None
    rows = continuations(sequences, 3, stride, 40, seed=stride)
    with torch.no_grad():
        shared = d.continuation_logits(sequences, rows, stride, cond, batch_size)
        one_by_one = Discriminator.continuation_logits(d, sequences, rows, stride, cond, batch_size)  # forward on each chunk
        all_at_once = d(rows.reshape(-1, 9), repeat_rows(cond, len(rows) * 3)).view(shared.shape)
    assert torch.equal(shared, one_by_one)
    torch.testing.assert_close(shared, all_at_once)  # chunks of other sizes: other matmul blockings


def test_continuation_scores_of_other_ds_and_with_gradients_are_their_forward():
    torch.manual_seed(0)
    sequences = torch.randint(0, 40, (4, 6))
    rows = continuations(sequences, 2, 1, 40, seed=1)
    for d in (RNNDiscriminator(40, 8, 6, cell="gru").eval(), CNNDiscriminator(40, 8, [1, 3], [4, 4]).eval()):
        got = d.continuation_logits(sequences, rows, 1)  # grad mode: the CNN's plain convolutions
        torch.testing.assert_close(got, d(rows.reshape(-1, 6)).view(got.shape))
