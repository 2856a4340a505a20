"""The algorithms beside SeqGAN: `algorithm: mle` (G by maximum likelihood only) and `algorithm:
reinforce` (every token rewarded with D's score of the whole sequence, no rollouts), and run folders
written before the `algorithm:` key existed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqgan.algorithms import ALGORITHMS, Context
from seqgan.algorithms.common import Streams
from seqgan.algorithms.reinforce import ReinforceConfig, reinforce_step, sequence_advantages
from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.distributed import SINGLE
from seqgan.metrics.logger import without_clock
from seqgan.models.generator import Generator
from seqgan.rl.losses import pg_loss
from seqgan.training.checkpoint import latest_checkpoint
from seqgan.training.experiment import make_data

ROOT = Path(__file__).resolve().parents[1]
TINY_MLE = """
    data.vocab_size=50 data.num_train=256 data.num_test=256 pretrain.epochs=4 pretrain.batch_size=32 eval.every=2
    eval.num_samples=256 eval.batch_size=128 eval.final_samples=10
""".split()


def rows(run: Path) -> list[dict]:
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])


# ----------------------------------------------------------------------------- MLE


def test_mle_configs_choose_the_mle_algorithm():
    for path in sorted((ROOT / "configs").glob("*_mle.yaml")):
        assert load_config(path).algorithm == "mle", path.name


def test_algorithm_mle_trains_as_seqgan_with_no_adversarial_phases(tmp_path, monkeypatch):
    """The MLE configs used to say 'MLE only' with d_pretrain.steps=0 and adversarial.epochs=0; the
    same seed gives the same metrics and samples with algorithm: mle."""
    monkeypatch.chdir(ROOT)
    old, new = tmp_path / "old", tmp_path / "new"
    zero = ["d_pretrain.steps=0", "adversarial.epochs=0"]
    assert main(["train", "configs/cond_oracle_mle.yaml", "--out", str(new), "--quiet", *TINY_MLE]) == 0
    base = ["train", "configs/cond_oracle_mle.yaml", "--out", str(old), "--quiet", "algorithm=seqgan", *TINY_MLE, *zero]
    assert main(base) == 0
    assert rows(new) == rows(old) and [r["epoch"] for r in rows(new)] == [0, 2, 4]
    assert (new / "samples.txt").read_text() == (old / "samples.txt").read_text()
    assert sorted(p.name for p in latest_checkpoint(new / "checkpoints").glob("*.safetensors")) == ["generator.safetensors"]


def test_mle_rejects_the_sections_it_does_not_read():
    with pytest.raises(ConfigError, match="algorithm=mle does not use this section"):
        load_config(ROOT / "configs" / "oracle_mle.yaml", ["adversarial.epochs=10"])


# ----------------------------------------------------------------------------- old run folders


def test_a_run_folder_without_the_algorithm_key_resumes_as_seqgan(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke.yaml", "--out", str(run), "--quiet", "adversarial.epochs=2"]) == 0
    config = run / "config.yaml"
    text = config.read_text()
    assert "algorithm: seqgan\n" in text
    config.write_text(text.replace("algorithm: seqgan\n", ""))  # as runs made before the key existed
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=4"]) == 0
    assert rows(run)[-1]["phase"] == "adversarial" and rows(run)[-1]["epoch"] == 4
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_a_run_folder_of_an_unknown_algorithm_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke.yaml", "--out", str(run), "--quiet", "adversarial.epochs=0", "d_pretrain.steps=0"]) == 0
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("algorithm: seqgan", "algorithm: sentigan"))
    assert main(["sample", str(run), "-n", "2"]) == 2
    assert (
        "algorithm='sentigan': use one of gsgan, leakgan, maligan, mle, rankgan, reinforce, relgan, scratch, seqgan"
        in capsys.readouterr().err
    )


# ----------------------------------------------------------------------------- REINFORCE


class RiggedD(torch.nn.Module):
    """D whose P(real | y) is a fixed number per sequence: sigmoid of (first token - 2)."""

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        logit = tokens[:, 0].float() - 2.0  # (B,)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)  # softmax(.)[:, 1] = sigmoid(logit)


def test_sequence_advantages_give_every_token_its_sequences_score():
    scores = torch.tensor([0.2, 0.9, 0.5])
    adv = sequence_advantages(scores, 4)
    assert adv.shape == (3, 4) and torch.equal(adv, scores[:, None].expand(3, 4))
    centred = sequence_advantages(scores, 4, "mean")
    torch.testing.assert_close(centred, (scores - scores.mean())[:, None].expand(3, 4))
    torch.testing.assert_close(sequence_advantages(scores, 2, "mean", torch.tensor(0.5)), (scores - 0.5)[:, None].expand(3, 2))


def reinforce_gradient(baseline: str, monkeypatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """REINFORCE's step against the rigged D: the sampled batch, the rewards it used and the loss."""
    torch.manual_seed(0)
    g = Generator(6, 4, 8, init_std=0.5)
    seen = {}

    def spy(log_probs, rewards, baseline="none", mask=None):
        seen["rewards"] = rewards.detach().clone()
        seen["log_probs"] = log_probs.detach().clone()
        return pg_loss(log_probs, rewards, baseline, mask)

    monkeypatch.setattr("seqgan.algorithms.reinforce.pg_loss", spy)
    streams = Streams(torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    a = load_config(None, ["adversarial.batch_size=8"]).adversarial
    state = torch.Generator().manual_seed(1)
    samples = g.sample(8, 5, state)
    reinforce_step(g, RiggedD(), torch.optim.SGD(g.parameters(), lr=0.0), a, baseline=baseline, seq_len=5, streams=streams)
    return samples, seen["rewards"], seen["log_probs"]


def test_reinforce_rewards_every_token_with_ds_probability_of_the_whole_sequence(monkeypatch):
    samples, rewards, _ = reinforce_gradient("none", monkeypatch)
    d_prob = torch.sigmoid(samples[:, 0].float() - 2.0)  # (B,): the rigged D's P(real | y)
    assert rewards.shape == samples.shape
    torch.testing.assert_close(rewards, d_prob[:, None].expand_as(rewards))
    # not SeqGAN's rollout rewards: those would differ per time step (a prefix's continuations vary)
    assert torch.equal(rewards, rewards[:, :1].expand_as(rewards))
    assert len(set(d_prob.tolist())) > 1  # the batch holds sequences D scores differently


def test_reinforce_mean_baseline_centres_the_rewards(monkeypatch):
    samples, rewards, _ = reinforce_gradient("mean", monkeypatch)
    d_prob = torch.sigmoid(samples[:, 0].float() - 2.0)
    torch.testing.assert_close(rewards, (d_prob - d_prob.mean())[:, None].expand_as(rewards))


def test_reinforce_never_rolls_out(monkeypatch):
    """A run of algorithm: reinforce that reached SeqGAN's rollouts would fail here."""

    def no_rollouts(*args, **kwargs):
        raise AssertionError("REINFORCE used SeqGAN's rollout rewards")

    monkeypatch.setattr("seqgan.rl.rollout.rollout_rewards", no_rollouts)
    monkeypatch.setattr("seqgan.algorithms.seqgan.rollout_rewards", no_rollouts)
    monkeypatch.setattr("seqgan.algorithms.seqgan.policy_gradient_step", no_rollouts)
    cfg = load_config(ROOT / "configs" / "smoke_reinforce.yaml")
    data = make_data(cfg, torch.device("cpu"))
    streams = Streams(torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    algo = ALGORITHMS["reinforce"](Context(cfg, data, torch.device("cpu"), SINGLE, streams))
    before = {k: v.clone() for k, v in algo.generator.state_dict().items()}
    logs = algo.adversarial_epoch()
    assert set(logs) == {"g_loss", "mean_reward", "d_loss"}
    assert any(not torch.equal(before[k], v) for k, v in algo.generator.state_dict().items())
    assert "rollout" not in algo.models()


def test_reinforce_config_rejects_rollout_settings_and_bad_baselines():
    with pytest.raises(ConfigError, match="adversarial.rollout_num is a setting of SeqGAN's rollouts"):
        load_config(ROOT / "configs" / "smoke_reinforce.yaml", ["adversarial.rollout_num=8"])
    with pytest.raises(ConfigError, match="reinforce.baseline='prefix': use 'none' or 'mean'"):
        load_config(ROOT / "configs" / "smoke_reinforce.yaml", ["reinforce.baseline=prefix"])
    with pytest.raises(ConfigError, match="settings of algorithm=reinforce, but this config runs algorithm=seqgan"):
        load_config(ROOT / "configs" / "smoke.yaml", ["reinforce.baseline=mean"])
    assert load_config(ROOT / "configs" / "smoke_reinforce.yaml").algo == ReinforceConfig("mean")


def test_reinforce_smoke_run_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke_reinforce.yaml", "--out", str(run), "--quiet"]) == 0
    last = rows(run)[-1]
    assert last["phase"] == "adversarial" and last["epoch"] == 4
    assert {"g_loss", "mean_reward", "d_loss", "d_acc", "nll_oracle"} <= set(last)
    assert "reinforce:\n  baseline: mean" in (run / "config.yaml").read_text()
    saved = sorted(p.name for p in latest_checkpoint(run / "checkpoints").glob("*.safetensors"))
    assert saved == ["discriminator.safetensors", "generator.safetensors"]
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=5"]) == 0
    assert rows(run)[-1]["epoch"] == 5
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "64"]) == 0
    assert "nll_oracle" in json.loads(capsys.readouterr().out)
