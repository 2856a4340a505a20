"""Losses checked against values and gradients computed by hand."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from seqgan import runtime
from seqgan.algorithms import seqgan as seqgan_module
from seqgan.algorithms.seqgan import advantages
from seqgan.distributed import SINGLE, Dist
from seqgan.models.discriminator import CNNDiscriminator, discriminator_loss
from seqgan.models.fused_head import CHUNK_ROWS, linear_token_nll, weighted_token_nll
from seqgan.models.generator import Generator
from seqgan.rl.losses import masked_mean, pg_advantages, pg_loss, token_nll
from seqgan.runtime import chunk_rows


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


def test_prefix_baseline_by_hand():
    # A(1) = Q(1) - mean_b Q(1); A(t) = Q(t) - Q(t-1); row 0 has ended after t = 2 (masked)
    q = torch.tensor([[1.0, 0.5, 9.0], [0.2, 0.4, 0.6]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]]).bool()
    adv = pg_advantages(q, "prefix", mask)
    torch.testing.assert_close(adv[mask], torch.tensor([0.4, -0.5, -0.4, 0.2, 0.2]))
    logp = torch.tensor([[-1.0, -3.0, -3.0], [-4.0, -5.0, -6.0]])
    expect = -(-1.0 * 0.4 + -3.0 * -0.5 + -4.0 * -0.4 + -5.0 * 0.2 + -6.0 * 0.2) / 5  # -0.1
    assert math.isclose(pg_loss(logp, q, "prefix", mask).item(), expect, rel_tol=1e-5)
    # given means (the global batch's under torchrun) replace the batch's own
    torch.testing.assert_close(pg_advantages(q, "prefix", means=torch.tensor([[0.0, 7.0, 7.0]]))[:, 0], q[:, 0])


def test_prefix_baseline_with_discount_weighs_the_advantage():
    # A(t) = gamma^(L - t) (Q(t) - Q(t-1)), L = 3: weights (.25, .5, 1)
    q = torch.tensor([[1.0, 0.5, 0.8], [0.2, 0.4, 0.6]])
    adv = advantages(q, "prefix", 0.5, None, SINGLE)
    torch.testing.assert_close(adv, torch.tensor([[0.4 * 0.25, -0.5 * 0.5, 0.3], [-0.4 * 0.25, 0.2 * 0.5, 0.2]]))
    torch.testing.assert_close(advantages(q, "prefix", 1.0, None, SINGLE), pg_advantages(q, "prefix"))
    # 'mean' keeps its order: the mean of the discounted Q is subtracted
    d = q * torch.tensor([0.25, 0.5, 1.0])
    torch.testing.assert_close(advantages(q, "mean", 0.5, None, SINGLE), d - d.mean(0, keepdim=True))


def test_prefix_baseline_of_strided_rewards_by_hand():
    """Stride 3, T = 7: Q is Q(3), Q(6), D(Y) over tokens 1-3, 4-6, 7. Every token of a stride gets
    its stride's Q minus the previous stride's (the first stride: minus the batch mean of Q(3))."""
    q = torch.tensor([[0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.9], [0.4, 0.4, 0.4, 0.1, 0.1, 0.1, 0.3]])
    want = torch.tensor([[-0.1, -0.1, -0.1, 0.3, 0.3, 0.3, 0.4], [0.1, 0.1, 0.1, -0.3, -0.3, -0.3, 0.2]])
    torch.testing.assert_close(pg_advantages(q, "prefix", stride=3), want)
    torch.testing.assert_close(advantages(q, "prefix", 1.0, None, SINGLE, 3), want)
    assert torch.equal(pg_advantages(q, "prefix", stride=1), pg_advantages(q, "prefix"))
    torch.testing.assert_close(pg_advantages(q, "prefix", stride=9), q - q[:, :1].mean())  # k >= T: the mean of D(Y)


def test_baselines_take_the_global_batch_means_under_torchrun(monkeypatch):
    """Rank 0 of 2: the step means (t = 1 for 'prefix', every t for 'mean') are those of both
    ranks' rows, so each rank's advantages are its rows of the one-process global batch's."""
    mine, other = torch.tensor([[1.0, 0.5, 0.8], [0.2, 0.4, 0.6]]), torch.tensor([[0.0, 0.1, 0.9], [0.3, 0.3, 0.3]])

    def add_other_rank(sums: torch.Tensor, dist: Dist) -> torch.Tensor:  # (2, T): sums of q and of weights
        return sums.add_(torch.stack([other.sum(0), torch.full((3,), 2.0)]))

    monkeypatch.setattr(seqgan_module, "all_reduce_", add_other_rank)
    for baseline in ("prefix", "mean"):
        expect = pg_advantages(torch.cat([mine, other]), baseline)[:2]
        torch.testing.assert_close(advantages(mine, baseline, 1.0, None, Dist(rank=0, world=2)), expect)
        assert not torch.allclose(advantages(mine, baseline, 1.0, None, SINGLE), expect)


def test_prefix_baseline_leaves_the_expected_gradient_unbiased():
    """Two tokens from a vocabulary of 3 with exact action values: summed over all 9 sequences
    weighted by their probabilities, the policy gradient with A(t) = Q(t) - V(Y_1..t-1) equals the
    exact gradient of the expected reward. A baseline read after y_t (Q(t+1)) would not."""
    torch.manual_seed(0)
    a = torch.randn(3, dtype=torch.double, requires_grad=True)  # logits of y_1
    b = torch.randn(3, 3, dtype=torch.double, requires_grad=True)  # logits of y_2 given y_1
    reward = torch.rand(3, 3, dtype=torch.double)  # D(y_1, y_2)
    p1, p2 = torch.softmax(a, 0), torch.softmax(b, 1)  # (3,), (3, 3)
    exact = torch.autograd.grad((p1[:, None] * p2 * reward).sum(), (a, b))
    y1, y2 = torch.arange(3).repeat_interleave(3), torch.arange(3).repeat(3)  # all 9 sequences
    with torch.no_grad():
        q1 = (p2 * reward).sum(1)  # (3,): Q(y_1) = E[D | y_1]
        v0 = (p1 * q1).sum()  # V of the empty prefix
        q = torch.stack([q1[y1], reward[y1, y2]], dim=1)  # (9, 2)
        weight = p1[y1] * p2[y1, y2]  # (9,): P(sequence)
    logp = torch.stack([torch.log_softmax(a, 0)[y1], torch.log_softmax(b, 1)[y1, y2]], dim=1)  # (9, 2)
    for baseline in ("prefix", "none"):
        adv = pg_advantages(q, baseline, means=torch.stack([v0, v0]).view(1, 2))
        grads = torch.autograd.grad((weight[:, None] * logp * adv).sum(), (a, b), retain_graph=True)
        for g, e in zip(grads, exact, strict=True):
            torch.testing.assert_close(g, e)
    late = q - torch.stack([q[:, 1], torch.zeros(9, dtype=torch.double)], dim=1)  # Q(1) - Q(2): depends on y_2
    grads = torch.autograd.grad((weight[:, None] * logp * late).sum(), (a, b))
    assert not torch.allclose(grads[0], exact[0])


def head_case(seed: int):
    """An output layer h (13, 6), W (11, 6), b (11,), targets, per-row weights, and the reference:
    the weighted cross-entropy of F.linear and its gradients with respect to h, W, b."""
    torch.manual_seed(seed)
    h = torch.randn(13, 6, dtype=torch.double, requires_grad=True)
    w = torch.randn(11, 6, dtype=torch.double, requires_grad=True)
    b = torch.randn(11, dtype=torch.double, requires_grad=True)
    y = torch.randint(0, 11, (13,))
    weights = torch.rand(13, dtype=torch.double)
    ref = (F.cross_entropy(F.linear(h, w, b), y, reduction="none") * weights).sum()
    return h, w, b, y, weights, ref, torch.autograd.grad(ref, (h, w, b))


def test_token_nll_and_fused_head_match_cross_entropy_values_and_gradients():
    h, w, b, y, weights, ref, grads_ref = head_case(0)
    fused = (linear_token_nll(h, w, b, y, chunk=4) * weights).sum()
    grads_fused = torch.autograd.grad(fused, (h, w, b))
    plain = (token_nll(F.linear(h, w, b), y) * weights).sum()
    grads_plain = torch.autograd.grad(plain, (h, w, b))
    torch.testing.assert_close(fused, ref)
    torch.testing.assert_close(plain, ref)
    for a, c, d in zip(grads_ref, grads_fused, grads_plain, strict=True):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(a, d)


def test_fused_head_kept_and_recomputed_exponentials_give_the_same_gradients_twice():
    """The forward keeps exp(z - max z) for the backward (small batches) or the backward recomputes
    it (keep_limit exceeded): the same values and gradients, and a second backward through a
    retained graph (which finds the kept tensor consumed) recomputes them unchanged."""
    h, w, b, y, weights, ref, grads_ref = head_case(1)
    kept = (linear_token_nll(h, w, b, y, chunk=5) * weights).sum()
    first = torch.autograd.grad(kept, (h, w, b), retain_graph=True)
    second = torch.autograd.grad(kept, (h, w, b))
    recomputed = (linear_token_nll(h, w, b, y, chunk=5, keep_limit=0) * weights).sum()
    torch.testing.assert_close(recomputed, kept)
    for a, c, d, e in zip(grads_ref, first, second, torch.autograd.grad(recomputed, (h, w, b)), strict=True):
        torch.testing.assert_close(c, a)
        torch.testing.assert_close(d, a)
        torch.testing.assert_close(e, a)


def test_fused_head_nll_of_a_target_whose_probability_underflows():
    """z = (0, 200): P(word 0) = e^-200 is 0 in float32, yet its NLL is log(1 + e^200) = 200 (to
    float precision), and its gradient with respect to z is P - one_hot = (-1, 1)."""
    h = torch.ones(1, 1, requires_grad=True)
    w = torch.tensor([[0.0], [200.0]], requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    nll = linear_token_nll(h, w, b, torch.tensor([0]))
    assert nll.item() == pytest.approx(200.0, rel=1e-6)
    gh, gw, gb = torch.autograd.grad(nll.sum(), (h, w, b))
    assert torch.equal(gb, torch.tensor([-1.0, 1.0])) and torch.equal(gw, torch.tensor([[-1.0], [1.0]]))
    assert gh.item() == pytest.approx(200.0)  # dz/dh = W: -1 * 0 + 1 * 200
    with torch.no_grad():  # no backward planned: the same value
        assert linear_token_nll(h, w, b, torch.tensor([0])).item() == nll.item()


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


@pytest.mark.parametrize("rows", [64, 50, 7])
def test_the_one_hot_discriminator_loss_has_the_soft_targets_gradients_bit_for_bit(rows):
    """Unsmoothed and unmasked, the loss is `F.cross_entropy`; the soft targets' way (here with
    every row valid, which keeps that path) gives the same gradients exactly and the value to round-off,
    so a D trains exactly as before (the golden metrics)."""
    torch.manual_seed(rows)
    logits = (torch.randn(rows, 2) * 10).requires_grad_()
    is_real = torch.rand(rows) < 0.5
    every = torch.ones(rows, dtype=torch.bool)
    one_hot, soft = discriminator_loss(logits, is_real), discriminator_loss(logits, is_real, valid=every)
    assert one_hot.item() == pytest.approx(soft.item(), rel=1e-6)
    assert torch.equal(torch.autograd.grad(one_hot, logits)[0], torch.autograd.grad(soft, logits)[0])


def test_a_ds_output_l2_by_hand_is_what_its_loss_adds():
    d = CNNDiscriminator(7, 4, [2], [3], dropout=0.0)
    with torch.no_grad():
        d.out.weight.copy_(torch.arange(6.0).reshape(2, 3))  # 0 + 1 + 4 + 9 + 16 + 25 = 55
        d.out.bias.copy_(torch.tensor([1.0, -2.0]))  # 1 + 4 = 5
    assert math.isclose(d.output_l2(0.2).item(), 0.2 * (55 + 5) / 2, rel_tol=1e-6)
    tokens, is_real = torch.randint(7, (4, 5), generator=torch.Generator().manual_seed(0)), torch.tensor([True, False] * 2)
    added = d.loss(tokens, None, is_real, l2_reg=0.2) - d.loss(tokens, None, is_real)
    assert math.isclose(added.item(), 6.0, rel_tol=1e-5)


def test_weighted_token_nll_takes_the_same_gradients_in_its_forward():
    """weighted_token_nll (gradients taken in the forward, chunks of 4 rows) against the weighted
    cross-entropy of F.linear: value and gradients, scaled by an upstream factor of 3 (the backward
    only scales), a second backward through a retained graph, and no gradients -> the plain head."""
    h, w, b, y, weights, ref, grads_ref = head_case(2)
    fused = weighted_token_nll(h, w, b, y, weights, chunk=4)
    torch.testing.assert_close(fused, ref)
    first = torch.autograd.grad(3.0 * fused, (h, w, b), retain_graph=True)
    second = torch.autograd.grad(fused, (h, w, b))
    for a, c, d in zip(grads_ref, first, second, strict=True):
        torch.testing.assert_close(c, 3.0 * a)
        torch.testing.assert_close(d, a)
    with torch.no_grad():
        torch.testing.assert_close(weighted_token_nll(h, w, b, y, weights), ref)
    with pytest.raises(ValueError, match="detach it"):
        weighted_token_nll(h, w, b, y, weights.clone().requires_grad_())


def test_the_fused_head_takes_cache_sized_chunks_on_the_cpu_and_whole_batches_on_a_gpu(monkeypatch):
    """64 rows at a time on the CPU; on a GPU as many as 2^24 logits hold (the paper's batch of
    64 x 20 rows at V = 5000 in one chunk, 3,355 rows), never fewer than 64. Whatever the chunk,
    the same values and gradients (the GPU's plan run here: all rows in one chunk)."""
    assert chunk_rows(5000, torch.device("cpu"), CHUNK_ROWS) == 64
    assert chunk_rows(5000, torch.device("cuda"), CHUNK_ROWS) == 3355
    assert chunk_rows(1_000_000, torch.device("cuda"), CHUNK_ROWS) == 64
    asked = []
    monkeypatch.setattr(runtime, "chunk_rows", lambda *args: asked.append(args) or chunk_rows(*args))
    h5000 = torch.randn(3, 4)
    weighted_token_nll(h5000, torch.randn(5000, 4), torch.zeros(5000), torch.zeros(3, dtype=torch.long), torch.ones(3))
    linear_token_nll(h5000, torch.randn(5000, 4), torch.zeros(5000), torch.zeros(3, dtype=torch.long))
    assert asked[0] == (5000, h5000.device, CHUNK_ROWS) and asked[-1] == (5000, h5000.device, CHUNK_ROWS)  # V a row
    h, w, b, y, weights, ref, grads_ref = head_case(3)
    for loss in (
        weighted_token_nll(h, w, b, y, weights, chunk=len(h)),
        (linear_token_nll(h, w, b, y, chunk=len(h)) * weights).sum(),
    ):
        torch.testing.assert_close(loss, ref)
        for a, c in zip(grads_ref, torch.autograd.grad(loss, (h, w, b)), strict=True):
            torch.testing.assert_close(c, a)


class Ops(TorchDispatchMode):
    """Counts the aten operations dispatched inside it, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.count = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def head_losses(h, w, b, y, weights):
    """The fused head's three routes (gradients taken in the forward; e kept; e recomputed), each a
    weighted sum of per-token NLLs, and their gradients with respect to h, W, b; chunks of 4 rows."""
    losses = []
    for loss in (
        lambda: weighted_token_nll(h, w, b, y, weights, chunk=4),
        lambda: (linear_token_nll(h, w, b, y, chunk=4) * weights).sum(),
        lambda: (linear_token_nll(h, w, b, y, chunk=4, keep_limit=0) * weights).sum(),
    ):
        value = loss()
        losses.append((value, *torch.autograd.grad(value, (h, w, b))))
    return losses


@pytest.mark.parametrize(("scale", "shift", "first_pass_kept"), [(1.0, 0.0, True), (40.0, 0.0, False), (1.0, -150.0, False)])
def test_the_cpu_head_skips_the_row_max_while_the_sums_stay_normal_and_else_takes_the_gpus_route(
    monkeypatch, scale, shift, first_pass_kept
):
    """On the CPU the head first takes 2^z' without the row max (no `amax` at all) and keeps that pass
    when every row sum is finite and >= 2^-100: the GPU's route (the max always subtracted) to round-off.
    Logits of up to 40 x 3 x 6 = 720 nats overflow float32 without the max (scale 40), and logits
    below -150 nats leave every sum under 2^-100 (shift -150): then the pass is redone with the maxima,
    and the values and gradients are the GPU route's bit for bit. Every route agrees with the float64
    cross-entropy of F.linear."""
    torch.manual_seed(5)
    h = torch.rand(13, 6, requires_grad=True)
    w = (torch.rand(11, 6) * scale).requires_grad_()
    b = (torch.randn(11) + shift).requires_grad_()
    y, weights = torch.randint(0, 11, (13,)), torch.rand(13)
    with Ops() as ops:
        cpu = head_losses(h, w, b, y, weights)
    assert (ops.count["amax"] == 0) == first_pass_kept
    monkeypatch.setattr(runtime, "host_reads_are_free", lambda device: False)
    with Ops() as ops:
        gpu = head_losses(h, w, b, y, weights)
    assert ops.count["amax"] == 3 * 4 + 4  # 4 chunks a route; the recomputing backward takes them again
    ref = (F.cross_entropy(F.linear(h.double(), w.double(), b.double()), y, reduction="none") * weights).sum()
    grads_ref = torch.autograd.grad(ref, (h, w, b))
    for cpu_route, gpu_route in zip(cpu, gpu, strict=True):
        for got, want, exact in zip(cpu_route, gpu_route, (ref, *grads_ref), strict=True):
            if first_pass_kept:
                torch.testing.assert_close(got, want)
            else:
                assert torch.equal(got, want)
            torch.testing.assert_close(got.double(), exact.double(), rtol=1e-5, atol=1e-5 * exact.abs().max().item())


def test_generators_nll_loss_is_the_masked_mean_of_its_log_probs():
    torch.manual_seed(0)
    g = Generator(11, 4, 5, eos_token=2, pad_token=0)
    tokens = torch.randint(0, 11, (3, 6))
    mask = torch.rand(3, 6) < 0.7
    for m in (None, mask):
        loss = g.nll_loss(tokens, m)
        ref = -masked_mean(g.log_probs(tokens), m)
        torch.testing.assert_close(loss, ref)
        for a, c in zip(
            torch.autograd.grad(loss, list(g.parameters())), torch.autograd.grad(ref, list(g.parameters())), strict=True
        ):
            torch.testing.assert_close(a, c)
