"""Training on the smoke config: parameters move, runs are deterministic and resume exactly."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import load_config
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def logged(run: Path) -> list[dict]:
    """The run's metrics rows without the time they were written at."""
    return without_clock(read_metrics(run / "metrics.jsonl"))


def smoke_trainer(tmp_path: Path, *overrides: str) -> Trainer:
    trainer = Trainer(load_config(SMOKE, list(overrides)), tmp_path, quiet=True)
    trainer.start(["test"])
    return trainer


def players(t: Trainer) -> Players:
    return Players(t.generator, t.algorithm.rollout, t.algorithm.discriminator)


def adversarial_optimizer(t: Trainer) -> torch.optim.Optimizer:
    return t.algorithm.optimizers["adversarial"].optimizer


def test_every_generator_parameter_changes_after_one_adversarial_step(tmp_path):
    t = smoke_trainer(tmp_path)
    before = {k: v.clone() for k, v in t.generator.state_dict().items()}
    a = t.cfg.adversarial
    policy_gradient_step(players(t), adversarial_optimizer(t), a, t.cfg.data.seq_len, t.streams)
    for name, value in t.generator.state_dict().items():
        assert not torch.equal(before[name], value), f"{name} did not change"


def test_rollout_policy_lags_behind_the_generator(tmp_path):
    t = smoke_trainer(tmp_path, "adversarial.rollout_update_rate=0.5")
    t.algorithm.rollout.load_state_dict(t.generator.state_dict())
    before = {k: v.clone() for k, v in t.generator.state_dict().items()}
    a = t.cfg.adversarial
    policy_gradient_step(players(t), adversarial_optimizer(t), a, t.cfg.data.seq_len, t.streams)
    after, rolled = t.generator.state_dict(), t.algorithm.rollout.state_dict()
    for name in before:
        torch.testing.assert_close(rolled[name], 0.5 * before[name] + 0.5 * after[name])


def test_same_seed_gives_identical_metrics(tmp_path):
    for name in ("a", "b"):
        smoke_trainer(tmp_path / name).run()
    a = logged(tmp_path / "a")
    assert a == logged(tmp_path / "b")
    phases = [r["phase"] for r in a]
    assert phases[0] == "mle" and "d_pretrain" in phases and phases[-1] == "adversarial"
    smoke_trainer(tmp_path / "c", "seed=1").run()
    assert a != logged(tmp_path / "c")


def test_metrics_hold_what_the_issue_asks_for(tmp_path):
    smoke_trainer(tmp_path).run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in rows if r["phase"] == "adversarial"]
    assert [r["epoch"] for r in adv] == [2, 4]
    clock = [r["wall_s"] for r in rows]  # every row says when it was written: seconds of training, and UTC time
    assert clock == sorted(clock) and clock[-1] > 0
    times = [datetime.fromisoformat(r["time"]) for r in rows]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    for key in ("nll_oracle", "nll_test", "d_acc", "mean_reward", "g_loss", "d_loss"):
        assert all(key in r for r in adv), key
    assert all(0.0 <= r["mean_reward"] <= 1.0 and 0.0 <= r["d_acc"] <= 1.0 for r in adv)


def test_eval_logs_the_unique_fraction_that_flags_mode_collapse(tmp_path):
    t = smoke_trainer(tmp_path, "eval.num_samples=200")
    assert (
        0.9 < t.evaluator.generator_metrics(t.generator, t.evaluator.rng())["unique_frac"] <= 1.0
    )  # a fresh G: (almost) all distinct
    with torch.no_grad():  # rig G: token 7 certain at every step, so every sample is the same sequence
        t.generator.head.weight.zero_()
        t.generator.head.bias.fill_(-1e4)
        t.generator.head.bias[7] = 0.0
    assert t.evaluator.generator_metrics(t.generator, t.evaluator.rng())["unique_frac"] == 1 / 200


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, crash_on_third_pg_step):
    smoke_trainer(tmp_path / "full").run()
    with crash_on_third_pg_step():  # the checkpoint after adversarial epoch 2 exists; epoch 3 dies
        smoke_trainer(tmp_path / "crash").run()

    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    assert (resumed.phase, resumed.epoch) == ("adversarial", 2)
    resumed.run()
    assert logged(tmp_path / "crash") == logged(tmp_path / "full")
    final = "checkpoints/2-adversarial-000004"
    for key in ("generator", "discriminator", "rollout"):
        a = load_file(tmp_path / "full" / final / f"{key}.safetensors")
        b = load_file(tmp_path / "crash" / final / f"{key}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), key


def test_a_run_reopens_with_its_saved_oracle_data_never_resampled(tmp_path, monkeypatch):
    from seqgan.metrics.nll import nll_test
    from seqgan.training import experiment
    from seqgan.training.experiment import open_run

    smoke_trainer(tmp_path).run()
    last_nll = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["nll_test"]

    def no_sampling(*args, **kwargs):
        raise AssertionError("the oracle data was drawn again instead of read from the run")

    monkeypatch.setattr(experiment, "oracle_dataset", no_sampling)
    run = open_run(tmp_path)
    assert nll_test(run.generator, run.data.test) == last_nll
    resumed = Trainer(run.config, tmp_path, quiet=True)  # resume reads the same files
    assert torch.equal(resumed.data.train, run.data.train)


def test_run_at_a_named_checkpoint(tmp_path):
    """DIR@mle is G at the end of MLE pre-training: its NLL-test is the one logged there."""
    from seqgan.metrics.nll import nll_test
    from seqgan.training.checkpoint import CheckpointError
    from seqgan.training.experiment import open_run

    smoke_trainer(tmp_path, "checkpoint.keep=10").run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    mle_end = [r for r in rows if r["phase"] == "mle"][-1]
    run = open_run(f"{tmp_path}@mle")
    assert run.checkpoint == f"0-mle-{mle_end['epoch']:06d}"
    assert nll_test(run.generator, run.data.test) == mle_end["nll_test"]
    assert open_run(f"{tmp_path}@{run.checkpoint}").checkpoint == run.checkpoint
    latest = open_run(tmp_path)
    assert latest.checkpoint.startswith("2-adversarial-")
    assert nll_test(latest.generator, latest.data.test) == rows[-1]["nll_test"]
    with pytest.raises(CheckpointError, match=r"no checkpoint 'gan'; name a phase .*0-mle-"):
        open_run(f"{tmp_path}@gan")
