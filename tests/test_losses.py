"""Losses checked against values and gradients computed by hand."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seqgan.models.fused_head import linear_token_nll
from seqgan.rl.losses import discriminator_loss, pg_loss, token_nll


def test_pg_loss_value_and_gradient_by_hand():
    # B = 1, T = 2, V = 2: logits z_t, chosen tokens y = (0, 1), rewards Q = (1.0, 0.5).
    z = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]], requires_grad=True)  # p_1 = (.5, .5), p_2 = (.75, .25)
    y = torch.tensor([[0, 1]])
    rewards = torch.tensor([[1.0, 0.5]])
    logp = torch.log_softmax(z, -1).gather(-1, y[..., None]).squeeze(-1)
    loss = pg_loss(logp, rewards)
    # -(1/2) * (1.0 * log .5 + 0.5 * log .25)
    assert math.isclose(loss.item(), -(math.log(0.5) + 0.5 * math.log(0.25)) / 2, rel_tol=1e-6)
    loss.backward()
    # d loss / d z_t = -(Q_t / 2) * (one_hot(y_t) - p_t)
    expected = torch.tensor(
        [[[-(1.0 / 2) * (1 - 0.5), -(1.0 / 2) * (0 - 0.5)], [-(0.5 / 2) * (0 - 0.75), -(0.5 / 2) * (1 - 0.25)]]]
    )
    torch.testing.assert_close(z.grad, expected)


def test_pg_step_raises_probability_of_rewarded_tokens():
    z = torch.zeros(1, 1, 3, requires_grad=True)
    y = torch.tensor([[2]])
    loss = pg_loss(torch.log_softmax(z, -1)[..., 2], torch.ones(1, 1))
    loss.backward()
    with torch.no_grad():
        z -= 0.1 * z.grad  # a descent step on the loss is an ascent step on reward
    assert torch.softmax(z, -1)[0, 0, y[0, 0]] > 1 / 3


def test_pg_loss_mean_baseline_subtracts_batch_mean_per_step():
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], requires_grad=True)
    rewards = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    loss = pg_loss(logp, rewards, baseline="mean")  # advantages ((.5, 0), (-.5, 0))
    assert math.isclose(loss.item(), -(0.5 * -1.0 + -0.5 * -3.0) / 4)


def test_token_nll_and_fused_head_match_cross_entropy_values_and_gradients():
    torch.manual_seed(0)
    h = torch.randn(13, 6, dtype=torch.double, requires_grad=True)
    w = torch.randn(11, 6, dtype=torch.double, requires_grad=True)
    b = torch.randn(11, dtype=torch.double, requires_grad=True)
    y = torch.randint(0, 11, (13,))
    weights = torch.rand(13, dtype=torch.double)
    ref = (F.cross_entropy(F.linear(h, w, b), y, reduction="none") * weights).sum()
    grads_ref = torch.autograd.grad(ref, (h, w, b))
    fused = (linear_token_nll(h, w, b, y, chunk=4) * weights).sum()
    grads_fused = torch.autograd.grad(fused, (h, w, b))
    plain = (token_nll(F.linear(h, w, b), y) * weights).sum()
    grads_plain = torch.autograd.grad(plain, (h, w, b))
    torch.testing.assert_close(fused, ref)
    torch.testing.assert_close(plain, ref)
    for a, c, d in zip(grads_ref, grads_fused, grads_plain, strict=True):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(a, d)


def test_discriminator_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])  # P(real) = .5 and .75
    is_real = torch.tensor([True, False])
    assert math.isclose(discriminator_loss(logits, is_real).item(), -(math.log(0.5) + math.log(0.25)) / 2, rel_tol=1e-6)
    # One-sided smoothing 0.1: the real target becomes (0.1, 0.9); the fake one stays (1, 0).
    smoothed = discriminator_loss(logits, is_real, label_smoothing=0.1).item()
    assert math.isclose(smoothed, -(0.1 * math.log(0.5) + 0.9 * math.log(0.5) + math.log(0.25)) / 2, rel_tol=1e-6)
    w, b = torch.tensor([[1.0, 2.0]]), torch.tensor([3.0])
    with_l2 = discriminator_loss(logits, is_real, 0.0, w, b, l2_reg=0.2).item()
    assert math.isclose(with_l2 - discriminator_loss(logits, is_real).item(), 0.2 * (1 + 4 + 9) / 2, rel_tol=1e-6)
