"""MaliGAN (algorithm: maligan): its weights and loss by hand, its G step against the hand formula,
no fallback to SeqGAN's rollouts, its config checks, and resume on the smoke config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.algorithms import maligan as maligan_module
from seqgan.algorithms import seqgan as seqgan_module
from seqgan.config import ConfigError, load_config
from seqgan.metrics.logger import without_clock
from seqgan.models.generator import Generator
from seqgan.rl import rollout as rollout_module
from seqgan.rl.maligan import importance_weights, maligan_advantages, maligan_loss, mixed_coefficients, mle_tokens
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke_maligan.yaml"


def trainer(tmp_path: Path, *overrides: str) -> Trainer:
    t = Trainer(load_config(SMOKE, list(overrides)), tmp_path, quiet=True)
    t.start(["test"])
    return t


# ---------------------------------------------------------------- the weights


def test_weights_on_three_sequences_equal_the_hand_computed_odds():
    d = torch.tensor([0.5, 0.75, 0.2])  # odds D / (1 - D): 1, 3, 0.25; sum 4.25
    want = torch.tensor([1.0, 3.0, 0.25]) / 4.25
    torch.testing.assert_close(importance_weights(d), want)
    torch.testing.assert_close(maligan_advantages(d), want - 1.0 / 3.0)
    torch.testing.assert_close(maligan_advantages(d, baseline="none"), want)


def test_weights_sum_to_one_per_group_and_favour_what_d_prefers():
    d = torch.rand(24, generator=torch.Generator().manual_seed(0)) * 0.98 + 0.01
    w = importance_weights(d, group_size=6).view(4, 6)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(maligan_advantages(d, 6).view(4, 6).sum(dim=1), torch.zeros(4), atol=1e-6, rtol=0)
    for group, weights in zip(d.view(4, 6), w, strict=True):  # monotone: a higher D(y), a higher weight
        order = group.argsort()
        assert torch.all(weights[order].diff() > 0)
    assert torch.isfinite(importance_weights(torch.tensor([1.0, 0.5, 0.0]))).all()  # a sure D overflows nothing


def test_groups_must_split_the_batch():
    with pytest.raises(ValueError, match="groups of 4"):
        importance_weights(torch.full((6,), 0.5), group_size=4)


def test_prefix_length_schedule_falls_by_k_every_few_epochs_to_zero():
    assert [mle_tokens(10, e, 2, 1) for e in range(7)] == [8, 6, 4, 2, 0, 0, 0]
    assert [mle_tokens(20, e, 1, 3) for e in range(7)] == [19, 19, 19, 18, 18, 18, 17]


def test_mixed_coefficients_split_mle_prefix_and_weighted_samples():
    adv = torch.tensor([0.3, -0.3, 0.1, -0.1])  # two groups of m = 2
    c = mixed_coefficients(adv, prefix_len=2, seq_len=4, group_size=2)
    want = torch.tensor([[0.5, 0.5, 0.3, 0.3], [0.5, 0.5, -0.3, -0.3], [0.5, 0.5, 0.1, 0.1], [0.5, 0.5, -0.1, -0.1]])
    torch.testing.assert_close(c, want)


# ---------------------------------------------------------------- the G step against the hand formula


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(vocab_size=5, embed_dim=3, hidden_dim=4, init_std=0.3)


def hand_objective(g: Generator, samples: torch.Tensor, d_prob: list[float], n: int, m: int, prefix: int) -> torch.Tensor:
    """Algorithm 2 written out: per group i, the MLE term of its real prefix (read once) plus
    sum_j (r_ij / sum_j' r_ij' - 1/m) log p(continuation_ij), over n T."""
    lp = g.log_probs(samples)  # (n m, T)
    odds = [p / (1 - p) for p in d_prob]
    total = lp.new_zeros(())
    for i in range(n):
        rows = range(i * m, (i + 1) * m)
        norm = sum(odds[r] for r in rows)
        total = total + lp[i * m, :prefix].sum()
        for r in rows:
            total = total + (odds[r] / norm - 1.0 / m) * lp[r, prefix:].sum()
    return -total / (n * samples.shape[1])


def test_loss_gradient_equals_the_hand_formula_on_a_tiny_generator():
    g, n, m, prefix = tiny_generator(), 2, 3, 2
    prefixes = torch.tensor([[1, 2, 0, 0, 0], [3, 4, 0, 0, 0]])
    samples = maligan_module.continue_prefixes(g, prefixes, prefix, m, torch.Generator().manual_seed(1))
    assert torch.equal(samples[:, :prefix], prefixes.repeat_interleave(m, dim=0)[:, :prefix])  # the real prefixes stay
    d_prob = [0.2, 0.5, 0.9, 0.6, 0.6, 0.3]
    coef = mixed_coefficients(maligan_advantages(torch.tensor(d_prob), m), prefix, samples.shape[1], m)
    got = torch.autograd.grad(maligan_loss(g.log_probs(samples), coef, m), list(g.parameters()))
    want = torch.autograd.grad(hand_objective(g, samples, d_prob, n, m, prefix), list(g.parameters()))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


class FixedD(torch.nn.Module):
    """A rigged D: P(real) of each sampled row is fixed in advance (logits log p, log(1 - p))."""

    def __init__(self, d_prob: list[float]) -> None:
        super().__init__()
        self.p = torch.tensor(d_prob)

    def forward(self, tokens: torch.Tensor, cond=None) -> torch.Tensor:
        return torch.stack([torch.log1p(-self.p), torch.log(self.p)], dim=1)[: len(tokens)]


def test_a_maligan_step_moves_g_by_the_hand_gradient(tmp_path):
    """maligan_step with a rigged D and plain SGD (lr 1): G's change is minus the hand formula's gradient."""
    t = trainer(tmp_path, "adversarial.grad_clip=1000000000")
    a, s, m = t.cfg.adversarial, t.cfg.algo, t.cfg.algo.samples_per_prefix
    d_prob = [0.1 + 0.05 * i for i in range(a.batch_size)]
    g = t.generator
    before = [p.detach().clone() for p in g.parameters()]
    rng_state = t.streams.sample.get_state()
    opt = torch.optim.SGD(g.parameters(), lr=1.0)
    maligan_module.maligan_step(g, FixedD(d_prob), opt, t.data.train, a, s, prefix_len=4, streams=t.streams)
    # the same draws again, by hand
    t.streams.sample.set_state(rng_state)
    clone = tiny_copy(g, before)
    prefixes = maligan_module.pick_rows(t.data.train, a.batch_size // m, t.streams.sample)
    samples = maligan_module.continue_prefixes(clone, prefixes, 4, m, t.streams.sample)
    grads = torch.autograd.grad(hand_objective(clone, samples, d_prob, a.batch_size // m, m, 4), list(clone.parameters()))
    for p0, p1, grad in zip(before, g.parameters(), grads, strict=True):
        torch.testing.assert_close(p1.detach(), p0 - grad, atol=1e-6, rtol=1e-5)


def tiny_copy(g: Generator, params: list[torch.Tensor]) -> Generator:
    import copy

    clone = copy.deepcopy(g).eval()
    with torch.no_grad():
        for p, value in zip(clone.parameters(), params, strict=True):
            p.copy_(value)
    return clone


def test_training_never_calls_seqgans_policy_gradient_or_rollouts(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("maligan fell back to SeqGAN's rollout policy gradient")

    for module, name in ((seqgan_module, "policy_gradient_step"), (seqgan_module, "rollout_q"), (seqgan_module, "pg_objective")):
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(seqgan_module, "rollout_rewards", forbidden)
    monkeypatch.setattr(rollout_module, "rollout_rewards", forbidden)
    monkeypatch.setattr(rollout_module, "rollout_sequences", forbidden)
    t = trainer(tmp_path / "one")
    before = {k: v.clone() for k, v in t.generator.state_dict().items()}
    t.algorithm.begin_phase("adversarial")
    t.algorithm.adversarial_epoch()
    for name, value in t.generator.state_dict().items():
        assert not torch.equal(before[name], value), f"{name} did not change"
    trainer(tmp_path / "run").run()  # every phase
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in rows if r["phase"] == "adversarial"]
    assert [r["mle_tokens"] for r in adv] == [7.0, 3.0]  # epochs 1-2 (N 8, 6) and 3-4 (N 4, 2) averaged
    assert all(0 < r["mean_d"] < 1 and "mean_reward" not in r for r in adv)
    assert not list((tmp_path / "run" / "checkpoints").glob("*/rollout.safetensors"))


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("adversarial.rollout_num=8", "adversarial.rollout_num: algorithm=maligan has no rollouts"),
        ("adversarial.baseline=mean", "adversarial.baseline"),
        ("adversarial.batch_size=10", "multiple of maligan.samples_per_prefix=4"),
        ("maligan.baseline=prefix", "maligan.baseline='prefix'"),
        ("maligan.samples_per_prefix=0", "maligan.samples_per_prefix must be >= 1"),
        ("generator.noise_dim=4", "noise_dim=0"),
        ("condition.kind=label", "condition: algorithm=maligan does not use this section"),
    ],
)
def test_settings_that_do_not_apply_are_errors(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(SMOKE, [override])


def test_the_mixed_schedule_settings_need_the_mixed_schedule():
    with pytest.raises(ConfigError, match="maligan.mixed=true"):
        load_config(SMOKE, ["maligan.mixed=false"])  # the smoke config sets mle_step=2
    assert load_config(SMOKE, ["maligan.mixed=false", "maligan.mle_step=1"]).algo.mixed is False


# ---------------------------------------------------------------- resume


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, crash_on_third_call):
    trainer(tmp_path / "full").run()
    with crash_on_third_call(maligan_module, "maligan_step"):  # the checkpoint after adversarial epoch 2 exists; epoch 3 dies
        trainer(tmp_path / "crash").run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    assert (resumed.phase, resumed.epoch, resumed.algorithm.prefix_tokens()) == ("adversarial", 2, 4)
    resumed.run()
    assert metric_rows(tmp_path / "crash") == metric_rows(tmp_path / "full")
    for key in ("generator", "discriminator"):
        a = load_file(tmp_path / "full" / "checkpoints" / "2-adversarial-000004" / f"{key}.safetensors")
        b = load_file(tmp_path / "crash" / "checkpoints" / "2-adversarial-000004" / f"{key}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), key


def metric_rows(run: Path) -> list[dict]:
    """The run's metrics rows without the clock (when each was written differs between runs)."""
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])
