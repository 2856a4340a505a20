"""algorithm: scratch: no pre-training, dense per-prefix rewards from a recurrent D, discounted,
batch-mean baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.models.discriminator import realness
from seqgan.rl import losses
from seqgan.rl.returns import discounted_returns, mean_baseline_advantages
from test_gsgan import build, rows

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke_scratch.yaml"


def test_discounted_returns_by_hand():
    rewards = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, -1.0]])
    torch.testing.assert_close(discounted_returns(rewards, 0.5), torch.tensor([[2.75, 3.5, 3.0], [3.75, -0.5, -1.0]]))
    mask = torch.tensor([[True, True, False], [True, True, True]])  # row 0 ended at step 2
    torch.testing.assert_close(discounted_returns(rewards, 0.5, mask), torch.tensor([[2.0, 2.0, 0.0], [3.75, -0.5, -1.0]]))
    assert torch.equal(discounted_returns(rewards, 0.0), rewards)
    adv = mean_baseline_advantages(torch.tensor([[1.0, 4.0], [3.0, 0.0]]))
    torch.testing.assert_close(adv, torch.tensor([[-1.0, 2.0], [1.0, -2.0]]))


def test_scratch_g_step_weights_each_token_by_its_discounted_return_less_the_batch_mean(monkeypatch):
    """A rigged D whose logit for prefix y_1..y_t is (y_t mod 3) - 1: the advantages G's step uses
    are computed here by hand, gamma = 0.23."""
    algo = build("scratch", config=SMOKE)
    rigged = lambda tokens: (tokens % 3).float() - 1.0  # noqa: E731
    monkeypatch.setattr(algo.discriminator, "prefix_scores", rigged)
    seen = {}

    def spy(log_probs, adv, baseline="none", mask=None):
        seen["adv"] = adv.detach().clone()
        return losses.pg_loss(log_probs, adv, baseline, mask)

    monkeypatch.setattr("seqgan.algorithms.scratch.pg_loss", spy)
    state = algo.streams.sample.get_state()
    samples = algo.generator.sample(64, 10, algo.streams.sample)
    algo.streams.sample.set_state(state)
    algo.generator_step()
    r = rigged(samples).tolist()
    returns = [[sum(0.23 ** (s - t) * row[s] for s in range(t, 10)) for t in range(10)] for row in r]
    want = torch.tensor(returns)
    want = want - want.mean(dim=0, keepdim=True)
    torch.testing.assert_close(seen["adv"], want)
    assert not torch.equal(seen["adv"], seen["adv"][:, -1:].expand_as(seen["adv"]))  # dense: not one reward per sequence


def test_scratch_has_no_pre_training():
    algo = build("scratch", config=SMOKE)
    assert (algo.epochs("mle"), algo.epochs("d_pretrain"), algo.epochs("adversarial")) == (0, 0, 4)
    with pytest.raises(ConfigError, match="pretrain: algorithm=scratch does not use this section"):
        load_config(SMOKE, ["pretrain.epochs=3"])


def test_scratch_needs_a_left_to_right_recurrent_d():
    with pytest.raises(ConfigError, match="discriminator.bidirectional=false"):
        load_config(SMOKE, ["discriminator.bidirectional=true"])
    with pytest.raises(ConfigError, match="scratch.discount=1.5"):
        load_config(SMOKE, ["scratch.discount=1.5"])


def test_d_step_classifies_every_prefix():
    algo = build("scratch", config=SMOKE)
    before = {k: v.clone() for k, v in algo.discriminator.state_dict().items()}
    assert algo.discriminator_step() > 0
    assert any(not torch.equal(before[k], v) for k, v in algo.discriminator.state_dict().items())
    tokens = torch.randint(0, 50, (3, 10))
    algo.discriminator.eval()
    with torch.no_grad():  # the last prefix's score is the whole sequence's
        torch.testing.assert_close(algo.discriminator.prefix_scores(tokens)[:, -1], realness(algo.discriminator(tokens)))


def test_scratch_smoke_run_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke_scratch.yaml", "--out", str(run), "--quiet"]) == 0
    assert [r["phase"] for r in rows(run)] == ["adversarial", "adversarial"]
    assert {"g_loss", "mean_reward", "d_loss", "d_acc", "nll_oracle"} <= set(rows(run)[-1])
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=5"]) == 0
    assert rows(run)[-1]["epoch"] == 5
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
