"""LeakGAN (algorithm: leakgan): its maths by hand (rescaled activation, manager loss, intrinsic
reward, goal pooling), the leak (G's next token and goals depend on D's features), teacher forcing
against sampling, no fallback to SeqGAN's policy gradient, its config checks, and resume on the
smoke config."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.algorithms import leakgan as leakgan_module
from seqgan.algorithms import seqgan as seqgan_module
from seqgan.config import ConfigError, load_config
from seqgan.metrics.logger import without_clock
from seqgan.models.discriminator import CNNDiscriminator
from seqgan.models.leakgan_generator import LeakGANGenerator, pool_goals
from seqgan.rl.leakgan import intrinsic_rewards, manager_loss, rescaled_activation, worker_loss
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke_leakgan.yaml"
R2 = 1 / math.sqrt(2)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def trainer(tmp_path: Path, *overrides: str) -> Trainer:
    t = Trainer(load_config(SMOKE, list(overrides)), tmp_path, quiet=True)
    t.start(["test"])
    return t


def tiny_generator(seed: int = 0, seq_len: int = 6) -> LeakGANGenerator:
    torch.manual_seed(seed)
    d = CNNDiscriminator(7, 4, [1, 2, 3], [3, 3, 2], dropout=0.0)
    return LeakGANGenerator(d, 7, seq_len, embed_dim=3, hidden_dim=5, manager_hidden=4, goal_size=3, horizon=2, init_std=0.3)


# ---------------------------------------------------------------- the maths by hand


def test_rescaled_activation_is_sigma_of_delta_times_half_minus_rank_over_batch():
    rewards = torch.tensor([[0.2, 0.7], [0.9, 0.1], [0.5, 0.3], [0.1, 0.8]])  # B = 4, two time steps
    ranks = [[3, 2], [1, 4], [2, 3], [4, 1]]  # 1 = the highest reward of its column
    want = torch.tensor([[sigmoid(12 * (0.5 - r / 4)) for r in row] for row in ranks])
    torch.testing.assert_close(rescaled_activation(rewards, 12.0), want)
    assert rescaled_activation(rewards, 12.0)[1, 0] == pytest.approx(sigmoid(3.0))  # the best: sigma(12 * 0.25)
    torch.testing.assert_close(rescaled_activation(rewards.exp() * 5, 12.0), want)  # ranks only: any monotone scale


def test_goal_pooling_sums_the_last_c_goals():
    goals = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1)
    assert pool_goals(goals, 2).flatten().tolist() == [1.0, 3.0, 5.0, 7.0]
    assert pool_goals(goals, 4).flatten().tolist() == [1.0, 3.0, 6.0, 10.0]
    assert pool_goals(goals, 9).flatten().tolist() == [1.0, 3.0, 6.0, 10.0]


def hand_case() -> tuple[torch.Tensor, torch.Tensor]:
    features = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]])  # f_0, f_1, f_2 (B = 1, T = 2, F = 2)
    goals = torch.tensor([[[1.0, 0.0], [R2, R2]]])  # g_0, g_1
    return features, goals


def test_manager_loss_is_minus_q_times_the_cosine_of_feature_change_and_goal():
    features, goals = hand_case()
    q = torch.tensor([[2.0, 3.0]])
    # c = 1: cos(f_1 - f_0, g_0) = 1, cos(f_2 - f_1, g_1) = cos((0, 1), (1, 1)/sqrt 2) = 1/sqrt 2
    assert manager_loss(features, goals, q, 1).item() == pytest.approx(-(2 * 1 + 3 * R2) / 2)
    # c = 2: only g_0 has c tokens after it: cos(f_2 - f_0, g_0) = cos((1, 1), (1, 0)) = 1/sqrt 2
    assert manager_loss(features, goals, q, 2).item() == pytest.approx(-2 * R2)
    g = goals.clone().requires_grad_()
    manager_loss(features, g, q, 1).backward()
    assert g.grad.abs().sum() > 0  # the goals learn; the features are D's and take no gradient


def test_intrinsic_reward_averages_the_cosines_of_the_last_c_goals():
    features, goals = hand_case()
    r = intrinsic_rewards(features, goals, 2)
    # y_1: cos(f_1 - f_0, g_0) = 1; y_2: (cos(f_2 - f_1, g_1) + cos(f_2 - f_0, g_0)) / 2 = 1/sqrt 2
    torch.testing.assert_close(r, torch.tensor([[1.0, R2]]))
    torch.testing.assert_close(intrinsic_rewards(features, goals, 1), torch.tensor([[1.0, R2]]))
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    assert worker_loss(logp, r).item() == pytest.approx((1.0 + 2 * R2) / 2)
    assert worker_loss(logp, r, torch.tensor([[True, False]])).item() == pytest.approx(1.0)


# ---------------------------------------------------------------- the leak


def next_token_logits(g: LeakGANGenerator, prefix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """G's logits after reading prefix (R, P) step by step, and the goal it emitted last."""
    state = g.initial_state(None, len(prefix))
    logits, state = g.step(torch.full((len(prefix),), g.start_token), state)
    for t in range(prefix.shape[1]):
        logits, state = g.step(prefix[:, t], state)
    return logits, state[4][-1]


def test_the_worker_and_the_manager_read_ds_features():
    g = tiny_generator()
    prefix = torch.tensor([[1, 2, 3], [4, 5, 6]])
    logits, goal = next_token_logits(g, prefix)
    other = copy.deepcopy(g)
    with torch.no_grad():  # another D: only the leaked features differ
        for p in other.discriminator.parameters():
            p.add_(torch.randn_like(p))
    logits_d, goal_d = next_token_logits(other, prefix)
    assert (logits - logits_d).abs().max() > 1e-3 and (goal - goal_d).abs().max() > 1e-3
    cut = copy.deepcopy(g)
    cut.leaked_features = lambda prefixes: torch.zeros(len(prefixes), g.feature_dim)  # the leak cut
    logits_cut, goal_cut = next_token_logits(cut, prefix)
    assert (logits - logits_cut).abs().max() > 1e-3 and (goal - goal_cut).abs().max() > 1e-3
    # teacher forcing reads the same features: its last goal is the one emitted while stepping
    full = torch.cat([prefix, torch.zeros(2, g.max_len - 3, dtype=torch.long)], dim=1)
    _, features, goals = g.teacher_forced(full)
    torch.testing.assert_close(goals[:, 3], goal)
    torch.testing.assert_close(features[:, 3], g.leaked_features(torch.cat([prefix, torch.full((2, 3), -1)], dim=1)))


def test_prefix_features_read_the_padding_as_zero_vectors_by_either_route():
    g = tiny_generator()
    d = g.discriminator.eval()
    prefixes = torch.tensor([[1, 2, -1, -1, -1, -1], [3, 4, 5, 6, 1, -1]])
    with torch.no_grad():
        tables = d.prefix_features(prefixes)  # the lookup tables
    convs = d.prefix_features(prefixes)  # with gradients: the convolutions
    torch.testing.assert_close(tables, convs.detach(), atol=1e-5, rtol=1e-5)
    embedded = d.embedding(prefixes.clamp(min=0)) * (prefixes >= 0).unsqueeze(-1)
    torch.testing.assert_close(convs, d._joined(d._pooled(embedded), None))


def test_teacher_forced_log_probs_equal_those_accumulated_while_sampling():
    g = tiny_generator().eval()
    samples = g.sample(5, g.max_len, torch.Generator().manual_seed(3))
    state = g.initial_state(None, 5)
    token, total = torch.full((5,), g.start_token), torch.zeros(5, g.max_len)
    for t in range(g.max_len):
        logits, state = g.step(token, state)
        total[:, t] = torch.log_softmax(logits, dim=-1).gather(1, samples[:, t : t + 1]).squeeze(1)
        token = samples[:, t]
    torch.testing.assert_close(g.log_probs(samples), total, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        torch.log_softmax(g(samples), dim=-1).gather(2, samples.unsqueeze(2)).squeeze(2), total, atol=1e-5, rtol=1e-5
    )
    with pytest.raises(ValueError, match="at most 6 tokens"):
        g.sample(2, 7, torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- no fallback to SeqGAN


def test_adversarial_steps_are_leakgans_never_seqgans_policy_gradient(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("leakgan fell back to SeqGAN's policy gradient")

    for name in ("policy_gradient_step", "pg_objective", "rollout_q"):
        monkeypatch.setattr(seqgan_module, name, forbidden)
    t = trainer(tmp_path / "one")
    g = t.generator
    own = {id(p) for p in g.worker_parameters() + g.manager_parameters()}
    before = {n: p.detach().clone() for n, p in g.named_parameters()}
    t.algorithm.begin_phase("adversarial")
    logs = leakgan_module.leakgan_step(
        g, t.algorithm.optimizers["adversarial"].optimizer, t.cfg.adversarial, t.cfg.algo, t.algorithm.streams
    )
    for name, p in g.named_parameters():  # every G parameter moved, D's did not (G's losses never train D)
        assert torch.equal(before[name], p) != (id(p) in own), name
    assert logs["manager_loss"] < 0 and 0 < logs["intrinsic_reward"] <= 1 and 0 < logs["mean_reward"] < 1
    assert logs["g_loss"] == pytest.approx(logs["manager_loss"] + logs["worker_loss"], rel=1e-5)
    trainer(tmp_path / "run").run()  # every phase
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in rows if r["phase"] == "adversarial"]
    assert len(adv) == 2 and all("intrinsic_reward" in r and "manager_loss" in r and "mle_loss" in r for r in adv)
    assert [r["phase"] for r in rows if "mle_manager_loss" in r][0] == "mle"  # the manager is pre-trained with the worker


def test_mle_interleaves_with_d_pretraining_and_the_adversarial_epochs(tmp_path, monkeypatch):
    t = trainer(tmp_path, "leakgan.pretrain_d_rounds=2", "leakgan.pretrain_g_epochs=3", "leakgan.interleave_every=3")
    calls = []
    monkeypatch.setattr(t.algorithm, "mle_epoch", lambda: calls.append(t.algorithm.steps["leakgan_d_rounds"]) or {})
    monkeypatch.setattr(t.algorithm, "generator_step", lambda: {})
    monkeypatch.setattr(t.algorithm, "discriminator_update", lambda: 0.0)
    for _ in range(5):
        t.algorithm.d_pretrain_step()
    assert calls == [2, 2, 2, 4, 4, 4]  # 3 MLE epochs after D rounds 2 and 4, none after 1, 3, 5
    calls.clear()
    for _ in range(7):
        t.algorithm.adversarial_epoch()
    assert len(calls) == 2  # interleave_epochs=1 after adversarial epochs 3 and 6


# ---------------------------------------------------------------- decoding through the command line


def test_every_decoding_option_reads_the_leak_and_a_longer_max_len_is_refused(tmp_path):
    from test_cli import seqgan

    out = tmp_path / "run"
    r = seqgan("train", str(SMOKE), "--out", str(out), "--quiet", "adversarial.epochs=2")
    assert r.returncode == 0, r.stderr
    for options in (["--beam", "3", "-n", "2"], ["--top-p", "0.9", "-n", "2"], ["--prefix", "3 17", "-n", "2"], ["--greedy"]):
        r = seqgan("sample", str(out), "--format", "jsonl", "--discriminator", *options)
        assert r.returncode == 0, (options, r.stderr)
        records = [json.loads(line) for line in r.stdout.splitlines()]
        assert all(len(rec["ids"]) == 10 and 0 < rec["d_score"] < 1 and rec["logprob"] < 0 for rec in records), options
    r = seqgan("sample", str(out), "--max-len", "12")
    assert r.returncode == 2 and "max-len 12: this run's generator draws at most 10 tokens" in r.stderr


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("adversarial.baseline=mean", "adversarial.baseline: algorithm=leakgan"),
        ("adversarial.rollout_stride=2", "adversarial.rollout_stride"),
        ("generator.cell=gru", "generator.cell: algorithm=leakgan"),
        ("discriminator.causal=true", "discriminator.causal: algorithm=leakgan"),
        ("leakgan.horizon=10", "leakgan.horizon=10 must be below the sequence length"),
        ("leakgan.delta=0", "leakgan.delta must be > 0"),
        ("leakgan.goal_size=0", "leakgan.goal_size must be >= 1"),
        ("condition.kind=label", "condition: algorithm=leakgan does not use this section"),
    ],
)
def test_settings_that_do_not_apply_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SMOKE, [override])


def test_init_from_must_name_a_leakgan_run(tmp_path):
    (tmp_path / "config.yaml").write_text((SMOKE.parent / "smoke.yaml").read_text())
    with pytest.raises(ConfigError, match="that run is algorithm=seqgan; a LeakGAN G"):
        leakgan_module._check_init_from(f"{tmp_path}@mle")
    (tmp_path / "config.yaml").write_text(SMOKE.read_text())
    leakgan_module._check_init_from(f"{tmp_path}@mle")


def test_shipped_leakgan_configs_load():
    for name in ("smoke_leakgan", "oracle_leakgan", "coco_leakgan"):
        assert load_config(SMOKE.parent / f"{name}.yaml").algorithm == "leakgan"


# ---------------------------------------------------------------- resume


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, crash_on_third_call):
    trainer(tmp_path / "full").run()
    with crash_on_third_call(leakgan_module, "leakgan_step"):  # the checkpoint after adversarial epoch 2 exists; epoch 3 dies
        trainer(tmp_path / "crash").run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    assert (resumed.phase, resumed.epoch, resumed.algorithm.steps["leakgan_epochs"]) == ("adversarial", 2, 2)
    resumed.run()
    assert metric_rows(tmp_path / "crash") == metric_rows(tmp_path / "full")
    for key in ("generator", "discriminator"):
        a = load_file(tmp_path / "full" / "checkpoints" / "2-adversarial-000004" / f"{key}.safetensors")
        b = load_file(tmp_path / "crash" / "checkpoints" / "2-adversarial-000004" / f"{key}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), key


def metric_rows(run: Path) -> list[dict]:
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])
