"""Discriminators: shapes, the lookup-table scoring path equals the convolutions, D learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqgan.models.discriminator import CNNDiscriminator, RNNDiscriminator, discriminator_loss, prob_real, realness


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


def test_discriminators_output_two_logits_and_probabilities():
    x = torch.randint(0, 30, (9, 7))
    for d in (
        CNNDiscriminator(30, 8, [1, 3], [4, 4]),
        RNNDiscriminator(30, 8, 6, "gru", True),
        RNNDiscriminator(30, 8, 6, "lstm", False),
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
    "make", [lambda: CNNDiscriminator(20, 8, [1, 2, 3], [4, 4, 4], 0.0), lambda: RNNDiscriminator(20, 8, 6, dropout=0.0)]
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
    d = CNNDiscriminator(20, 8, [1, 2], [4, 4], 0.0)
    vectors = torch.softmax(torch.randn(3, 5, 20), dim=-1).requires_grad_()
    realness(d.soft_logits(vectors)).sum().backward()
    assert vectors.grad is not None and vectors.grad.abs().sum() > 0
