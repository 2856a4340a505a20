"""The maths of the Gumbel-softmax GANs (`seqgan.rl.relaxed`) and D reading relaxed one-hots:
the relaxation's limit and gradient path, the schedules' ends, the RSGAN and standard losses by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqgan.models.discriminator import realness
from seqgan.models.generator import Generator
from seqgan.rl.relaxed import SCHEDULES, gan_losses, gumbel_noise, inverse_temperature, relaxed_one_hot, relaxed_sample


def test_gumbel_noise_has_the_gumbel_mean_and_variance():
    g = gumbel_noise((200_000,), torch.Generator().manual_seed(0), "cpu")
    assert g.mean().item() == pytest.approx(0.5772, abs=0.01)  # Euler-Mascheroni
    assert g.var().item() == pytest.approx(math.pi**2 / 6, abs=0.03)


def test_a_relaxed_sample_tends_to_the_one_hot_of_its_token_as_the_temperature_goes_to_zero():
    perturbed = torch.randn(64, 30, generator=torch.Generator().manual_seed(1))
    one_hot = F.one_hot(perturbed.argmax(dim=-1), 30).float()
    gaps = [(relaxed_one_hot(perturbed, beta) - one_hot).abs().max().item() for beta in (1.0, 10.0, 100.0, 1e4)]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0.3 and gaps[-1] < 1e-6
    torch.testing.assert_close(relaxed_one_hot(perturbed, 1.0).sum(dim=-1), torch.ones(64))


def test_the_gumbel_max_token_is_a_sample_of_the_softmax():
    logits = torch.log(torch.tensor([0.1, 0.2, 0.7]))
    noise = gumbel_noise((100_000, 3), torch.Generator().manual_seed(2), "cpu")
    freq = torch.bincount((logits + noise).argmax(dim=-1), minlength=3).float() / 100_000
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.7]), atol=0.01, rtol=0)


def test_straight_through_is_one_hot_forward_and_soft_backward():
    logits = torch.randn(4, 6, generator=torch.Generator().manual_seed(3), requires_grad=True)
    st = relaxed_one_hot(logits, 2.0, "straight_through")
    torch.testing.assert_close(st, F.one_hot(logits.argmax(-1), 6).float())
    weights = torch.arange(6.0)
    (st * weights).sum().backward()
    grad_st = logits.grad.clone()
    logits.grad = None
    (relaxed_one_hot(logits, 2.0, "soft") * weights).sum().backward()
    torch.testing.assert_close(grad_st, logits.grad)


def generator_gradients(relaxation: str) -> dict[str, torch.Tensor | None]:
    """Each parameter's gradient of a D-like score of G's relaxed samples."""
    torch.manual_seed(0)
    g = Generator(12, 4, 8, init_std=0.5)
    _, vectors = relaxed_sample(g, 5, 6, 3.0, torch.Generator().manual_seed(4), relaxation=relaxation)
    score = (vectors * torch.linspace(-1, 1, 12)).sum()  # any differentiable function of the vectors
    if score.requires_grad:
        score.backward()
    return {name: p.grad for name, p in g.named_parameters()}


def test_the_relaxed_samples_gradient_reaches_every_parameter_of_the_generator():
    grads = generator_gradients("soft")
    assert grads and all(grad is not None and grad.abs().sum() > 0 for grad in grads.values()), [
        name for name, grad in grads.items() if grad is None or grad.abs().sum() == 0
    ]


def test_no_gradient_reaches_the_generator_when_the_relaxation_is_off():
    assert all(grad is None for grad in generator_gradients("hard").values())


def test_relaxed_sample_draws_the_same_tokens_as_its_hard_vectors():
    torch.manual_seed(0)
    g = Generator(12, 4, 8, init_std=0.5)
    tokens, vectors = relaxed_sample(g, 7, 5, 1e6, torch.Generator().manual_seed(5))
    assert tokens.shape == (7, 5) and vectors.shape == (7, 5, 12)
    torch.testing.assert_close(vectors.detach(), F.one_hot(tokens, 12).float(), atol=1e-5, rtol=0)


def test_relaxed_sample_pads_after_the_end_token():
    torch.manual_seed(0)
    g = Generator(6, 4, 8, init_std=2.0, eos_token=1, pad_token=0)
    tokens, vectors = relaxed_sample(g, 64, 8, 1.0, torch.Generator().manual_seed(6))
    ended = (tokens == 1).cumsum(dim=1).cumsum(dim=1) > 1  # strictly after the first end token
    assert ended.any()
    assert (tokens[ended] == 0).all()
    torch.testing.assert_close(vectors[ended], F.one_hot(tokens[ended], 6).float())


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_starts_at_1_and_ends_at_its_maximum(schedule):
    start, end = inverse_temperature(schedule, 100.0, 0, 37), inverse_temperature(schedule, 100.0, 36, 37)
    assert end == pytest.approx(100.0)
    assert start == pytest.approx(100.0 if schedule == "no" else 1.0)
    values = [inverse_temperature(schedule, 100.0, i, 37) for i in range(37)]
    assert values == sorted(values)  # never decreasing


def test_schedules_by_hand():
    assert inverse_temperature("lin", 11.0, 5, 11) == pytest.approx(6.0)
    assert inverse_temperature("exp", 100.0, 5, 11) == pytest.approx(10.0)
    assert inverse_temperature("quad", 11.0, 5, 11) == pytest.approx(1 + 10 * 0.25)
    assert inverse_temperature("sqrt", 11.0, 5, 11) == pytest.approx(1 + 10 * 0.5**0.5)
    assert inverse_temperature("log", 11.0, 5, 11) == pytest.approx(1 + 10 * math.log(6) / math.log(11))
    assert inverse_temperature("sigmoid", 11.0, 5, 11) == pytest.approx(6.0)  # the midpoint
    with pytest.raises(ValueError, match="schedule must be one of"):
        inverse_temperature("cosine", 10.0, 0, 5)


def test_rsgan_loss_by_hand():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    d_loss, g_loss = gan_losses(real, fake, "rsgan")
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert d_loss.item() == pytest.approx(-(math.log(sig(1.5)) + math.log(sig(-2.0))) / 2)
    assert g_loss.item() == pytest.approx(-(math.log(sig(-1.5)) + math.log(sig(2.0))) / 2)


def test_standard_gan_loss_by_hand():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    d_loss, g_loss = gan_losses(real, fake, "standard")
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    want_d = -(math.log(sig(2.0)) + math.log(sig(-1.0))) / 2 - (math.log(1 - sig(0.5)) + math.log(1 - sig(1.0))) / 2
    assert d_loss.item() == pytest.approx(want_d)
    assert g_loss.item() == pytest.approx(-(math.log(sig(0.5)) + math.log(sig(1.0))) / 2)
    # D's cross-entropy on its 2-way logits is the standard loss on their difference
    logits = torch.tensor([[0.3, 2.3], [1.0, 0.0]])
    assert realness(logits).tolist() == pytest.approx([2.0, -1.0])
