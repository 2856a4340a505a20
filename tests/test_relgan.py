"""algorithm: relgan: GSGAN's loop with RelGAN's loss, schedule and models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqgan.algorithms.relgan import RelGANConfig
from seqgan.cli.main import main
from seqgan.config import load_config
from seqgan.models.discriminator import MultiRepCNNDiscriminator
from seqgan.models.relational_memory import RelationalGenerator
from seqgan.rl import relaxed
from test_gsgan import build, changed, no_policy_gradient, rows

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke_relgan.yaml"


def test_relgan_defaults_are_the_papers():
    assert RelGANConfig() == RelGANConfig(loss="rsgan", beta_max=100.0, schedule="exp", relaxation="soft")
    cfg = load_config(SMOKE)
    assert cfg.algo == RelGANConfig() and cfg.discriminator.lr == 1e-4 and cfg.adversarial.g_lr == 1e-4


def test_relgan_trains_its_relational_g_by_the_rsgan_loss_over_every_representation(monkeypatch):
    no_policy_gradient(monkeypatch)
    seen = []

    def spy(real, fake, kind):
        seen.append((kind, real.shape, fake.shape))
        return relaxed.gan_losses(real, fake, kind)

    monkeypatch.setattr("seqgan.algorithms.gsgan.gan_losses", spy)
    algo = build("relgan", config=SMOKE)
    assert isinstance(algo.generator, RelationalGenerator) and isinstance(algo.discriminator, MultiRepCNNDiscriminator)
    before = {k: v.clone() for k, v in algo.generator.state_dict().items()}
    algo.generator_step()
    assert changed(before, algo.generator) == set(before)
    algo.discriminator_step()
    assert seen == [("rsgan", (16 * 4,), (16 * 4,))] * 2  # batch 16, 4 representations, real row b against fake row b


def test_relgan_schedule_reaches_beta_max_at_the_last_adversarial_step():
    algo = build("relgan", config=SMOKE)  # 4 epochs of 1 G step
    algo.steps["adversarial_g"] = 3
    assert algo.beta() == pytest.approx(100.0)
    algo.steps["adversarial_g"] = 0
    assert algo.beta() == pytest.approx(1.0)


def test_relgan_smoke_run_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke_relgan.yaml", "--out", str(run), "--quiet"]) == 0
    last = rows(run)[-1]
    assert last["phase"] == "adversarial" and last["epoch"] == 4 and {"g_loss", "d_loss", "beta", "d_acc"} <= set(last)
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=5"]) == 0
    assert rows(run)[-1]["epoch"] == 5
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(["evaluate", str(run), "-n", "64"]) == 0
    assert "nll_oracle" in json.loads(capsys.readouterr().out)
