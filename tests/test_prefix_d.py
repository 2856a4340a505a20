"""adversarial.reward=prefix_d: a causal D scores every prefix in one pass, learns every prefix,
and its scores are the rewards, with no rollouts."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file
from torch import nn

from seqgan.algorithms.common import DRound, Streams, discriminator_round
from seqgan.algorithms.seqgan import Players, action_values, advantages
from seqgan.config import AdversarialConfig, ConfigError, load_config
from seqgan.distributed import SINGLE
from seqgan.metrics.logger import without_clock
from seqgan.models.discriminator import CNNDiscriminator, Discriminator, RNNDiscriminator
from seqgan.models.generator import Generator
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
TOKEN = 3


def metric_rows(run: Path) -> list[dict]:
    """The run's metrics rows without the clock (when each was written differs between runs)."""
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])


def prefix_d_config(tmp_path: Path, kind: str = "rnn") -> Path:
    """configs/smoke.yaml with reward=prefix_d and a causal D: a one-way GRU (kind='rnn'), or the
    smoke CNN with causal=true ('cnn'). The rollout settings (and for the GRU the CNN's) do not
    apply, so they are left out rather than overridden."""
    raw = yaml.safe_load(SMOKE.read_text())
    if kind == "rnn":
        raw["discriminator"] = {"kind": "rnn", "bidirectional": False, "embed_dim": 16, "rnn_hidden": 16, "batch_size": 32}
    else:
        raw["discriminator"]["causal"] = True
    raw["adversarial"] = {k: v for k, v in raw["adversarial"].items() if not k.startswith("rollout_")} | {"reward": "prefix_d"}
    path = tmp_path / f"smoke_prefix_d_{kind}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class CountingD(Discriminator):
    """Rigged causal D: the real logit of prefix y_1..y_t is the count of TOKEN in it, so
    D(y_1..t) = sigmoid(count). Refuses to score in training mode (rewards come from eval mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.out, self.classifier = nn.Linear(1, 2), None

    def prefix_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        assert not self.training, "rewards must be scored with D in eval mode"
        count = (tokens == TOKEN).float().cumsum(dim=1)  # (B, T)
        return torch.stack([torch.zeros_like(count), count], dim=-1)


def causal_d(kind: str) -> Discriminator:
    torch.manual_seed(0)
    if kind == "cnn":
        return CNNDiscriminator(13, 8, [1, 2, 4], [3, 4, 5], dropout=0.0, causal=True).eval()
    return RNNDiscriminator(13, 8, 6, cell=kind, bidirectional=False, dropout=0.0).eval()


@pytest.mark.parametrize("kind", ["gru", "lstm", "cnn"])
def test_causal_d_scores_each_prefix_as_if_it_read_that_prefix_alone(kind):
    """prefix_logits[:, t-1] equals D run on y_1..y_t alone: a D that peeked at later tokens (a
    bidirectional RNN, windows that reach past t, a max over the whole sequence) fails this."""
    d = causal_d(kind)
    assert d.scores_prefixes
    x = torch.randint(0, 13, (5, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        every = d.prefix_logits(x)  # (B, T, 2)
        assert every.shape == (5, 9, 2)
        for t in range(1, 10):
            torch.testing.assert_close(every[:, t - 1], d(x[:, :t]), rtol=1e-5, atol=1e-6)
        changed = x.clone()
        changed[:, 5:] = (changed[:, 5:] + 1) % 13  # a different future leaves the first 5 scores alone
        assert torch.equal(d.prefix_logits(changed)[:, :5], every[:, :5])


def test_only_a_causal_d_scores_prefixes():
    x = torch.randint(0, 13, (2, 6))
    for d in (
        RNNDiscriminator(13, 8, 6, cell="gru", bidirectional=True),
        RNNDiscriminator(13, 8, 6, cell="gru", bidirectional=False, pooling="attention"),
        CNNDiscriminator(13, 8, [1, 2], [3, 3]),
    ):
        assert not d.scores_prefixes
        with pytest.raises(NotImplementedError, match="discriminator.bidirectional=false, or discriminator.causal=true"):
            d.prefix_logits(x)


def test_causal_cnn_windows_by_hand():
    """Width 2, one filter summing its window's embedding (1-d, the token id): the window ending at t
    is y_{t-1} + y_t (0 before y_1), the prefix feature its running max; D's real logit is that max."""
    d = CNNDiscriminator(5, 1, [2], [1], dropout=0.0, causal=True).eval()
    with torch.no_grad():
        d.embedding.weight.copy_(torch.arange(5.0)[:, None])
        d.convs[0].weight.fill_(1.0)
        d.convs[0].bias.zero_()
        for layer in (d.highway.transform, d.highway.gate):
            layer.weight.zero_()
        d.highway.gate.bias.fill_(-100.0)  # the highway passes its input through
        d.out.weight.copy_(torch.tensor([[0.0], [1.0]]))
        d.out.bias.zero_()
        y = torch.tensor([[4, 0, 1, 3, 0]])  # windows: 4, 4, 1, 4, 3 -> running max 4, 4, 4, 4, 4
        assert d.prefix_logits(y)[0, :, 1].tolist() == [4.0, 4.0, 4.0, 4.0, 4.0]
        y = torch.tensor([[1, 0, 2, 3, 4]])  # windows: 1, 1, 2, 5, 7
        assert d.prefix_logits(y)[0, :, 1].tolist() == [1.0, 1.0, 2.0, 5.0, 7.0]
        assert d(y)[0, 1].item() == 7.0


def test_prefix_rewards_from_a_rigged_d_by_hand():
    """Q(t) = D(y_1..t) = sigmoid(count of TOKEN in y_1..t), then the same baseline code as rollouts:
    'prefix' gives A(t) = Q(t) - Q(t-1), Q(0) = the batch mean of Q(1)."""
    d = CountingD().train()
    y = torch.tensor([[3, 0, 3, 3], [1, 1, 3, 1]])
    q = action_values(Players(None, None, d), y, None, None, AdversarialConfig(reward="prefix_d"), torch.Generator())
    assert not d.training
    s0, s1, s2, s3 = (1 / (1 + math.exp(-c)) for c in range(4))  # sigmoid(0..3)
    expected = torch.tensor([[s1, s1, s2, s3], [s0, s0, s1, s1]])
    torch.testing.assert_close(q, expected)
    adv = advantages(q, "prefix", 1.0, None, SINGLE)
    q0 = (s1 + s0) / 2
    torch.testing.assert_close(adv, torch.tensor([[s1 - q0, 0.0, s2 - s1, s3 - s2], [s0 - q0, 0.0, s1 - s0, 0.0]]))


def test_prefix_loss_by_hand_leaves_padding_out():
    """Real row 0 (3 valid prefixes), fake row 1 (2 valid: the third is padding). With the rigged
    D's real logits 1, 2, 3 and 0, 1, 1: mean of softplus(-z) (real) and softplus(z) (fake)."""
    d = CountingD().eval()
    y = torch.tensor([[3, 3, 3], [1, 3, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    is_real = torch.tensor([True, False])
    loss = d.prefix_loss(y, is_real, mask)
    softplus = lambda z: math.log1p(math.exp(z))  # noqa: E731
    want = (softplus(-1) + softplus(-2) + softplus(-3) + softplus(0) + softplus(1)) / 5
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert d.prefix_loss(y, is_real).item() == pytest.approx((5 * want + softplus(1)) / 6, rel=1e-6)  # no mask: all 6


def test_a_prefix_d_round_trains_on_prefixes_with_the_generators_mask(monkeypatch):
    """DRound(prefixes=True) takes D's steps on `prefix_loss`, each example masked by G's end token."""
    torch.manual_seed(0)
    g = Generator(13, 4, 5, eos_token=2, pad_token=0)
    d = RNNDiscriminator(13, 8, 6, cell="gru", bidirectional=False, dropout=0.0)
    seen = []
    real_prefix_loss = Discriminator.prefix_loss

    def spy(self, tokens, is_real, mask=None, label_smoothing=0.0, l2_reg=0.0):
        seen.append((tokens, mask))
        return real_prefix_loss(self, tokens, is_real, mask, label_smoothing, l2_reg)

    monkeypatch.setattr(Discriminator, "prefix_loss", spy)
    real = torch.randint(3, 13, (8, 6))
    streams = Streams(torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    discriminator_round(d, torch.optim.SGD(d.parameters(), lr=0.1), g, real, DRound(8, 1, 4, prefixes=True), streams)
    assert len(seen) == 4  # (8 real + 8 generated) / batches of 4
    assert any(not bool(mask.all()) for _, mask in seen)  # some samples ended early: padding is masked
    for tokens, mask in seen:
        assert torch.equal(mask, g.mask(tokens))


def test_prefix_d_config_needs_a_causal_d_and_no_rollout_settings(tmp_path):
    with pytest.raises(ConfigError, match="adversarial.rollout_num applies only to adversarial.reward=rollout"):
        load_config(SMOKE, ["adversarial.reward=prefix_d"])  # smoke.yaml sets rollout_num
    base = ["adversarial.reward=prefix_d", "adversarial.rollout_num=16", "adversarial.rollout_chunk=null"]
    with pytest.raises(ConfigError, match="discriminator.kind=rnn discriminator.bidirectional=false"):
        load_config(SMOKE, base)  # smoke's D is the CNN
    with pytest.raises(ConfigError, match="scores every prefix"):
        load_config(None, ["adversarial.reward=prefix_d", "discriminator.kind=rnn"])  # bidirectional by default
    with pytest.raises(ConfigError, match="adversarial.reward='best'"):
        load_config(None, ["adversarial.reward=best"])
    with pytest.raises(ConfigError, match="rollout_stride must be >= 1"):
        load_config(None, ["adversarial.rollout_stride=0"])
    with pytest.raises(ConfigError, match="causal applies only to kind='cnn'"):
        load_config(None, ["discriminator.kind=rnn", "discriminator.causal=true"])
    with pytest.raises(ConfigError, match="fused_conv and fused_groups do not apply to causal=true"):
        load_config(None, ["discriminator.causal=true", "discriminator.fused_conv='off'"])
    assert load_config(SMOKE, [*base, "discriminator.causal=true"]).discriminator.causal
    cfg = load_config(prefix_d_config(tmp_path))
    assert cfg.adversarial.reward == "prefix_d" and not cfg.discriminator.bidirectional


def test_smoke_cli_runs_with_prefix_d_and_with_a_rollout_stride(tmp_path):
    for name, args in (
        ("prefix_d", [str(prefix_d_config(tmp_path))]),
        ("prefix_d_cnn", [str(prefix_d_config(tmp_path, "cnn"))]),
        ("stride", [str(SMOKE), "adversarial.rollout_stride=3"]),
    ):
        out = tmp_path / name
        r = subprocess.run(
            [sys.executable, "-m", "seqgan", "train", *args, "--out", str(out), "--quiet", "adversarial.epochs=2"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        rows = [yaml.safe_load(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert rows[-1]["phase"] == "adversarial" and 0.0 <= rows[-1]["mean_reward"] <= 1.0


def test_prefix_d_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, crash_on_third_pg_step):
    config = prefix_d_config(tmp_path)
    for name in ("full", "crash"):
        trainer = Trainer(load_config(config), tmp_path / name, quiet=True)
        trainer.start(["test"])
        if name == "full":
            trainer.run()
            continue
        with crash_on_third_pg_step():  # the checkpoint after adversarial epoch 2 exists; epoch 3 dies
            trainer.run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    assert (resumed.phase, resumed.epoch) == ("adversarial", 2)
    resumed.run()
    assert metric_rows(tmp_path / "crash") == metric_rows(tmp_path / "full")
    final = "checkpoints/2-adversarial-000004"
    for key in ("generator", "discriminator", "rollout"):
        a = load_file(tmp_path / "full" / final / f"{key}.safetensors")
        b = load_file(tmp_path / "crash" / final / f"{key}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), key


def test_prefix_loss_equals_cross_entropy_of_every_valid_prefix():
    torch.manual_seed(0)
    d = RNNDiscriminator(13, 8, 6, cell="lstm", bidirectional=False, dropout=0.0)
    x = torch.randint(0, 13, (4, 7))
    mask = torch.arange(7)[None, :] < torch.tensor([7, 3, 5, 1])[:, None]  # (B, T)
    is_real = torch.tensor([True, False, True, False])
    logits = d.prefix_logits(x)  # (B, T, 2)
    want = F.cross_entropy(logits[mask], is_real[:, None].expand(4, 7)[mask].long())
    torch.testing.assert_close(d.prefix_loss(x, is_real, mask), want)
