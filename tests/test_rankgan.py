"""RankGAN (algorithm: rankgan): the rank score and the ranker's loss by hand, rewards from a
rigged ranker, no use of a binary D, its config checks, and resume on the smoke config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqgan.algorithms import rankgan as rankgan_module
from seqgan.algorithms import seqgan as seqgan_module
from seqgan.algorithms.seqgan import Players, rollout_q
from seqgan.config import ConfigError, load_config
from seqgan.metrics.logger import without_clock
from seqgan.models.generator import Generator
from seqgan.models.ranker import Ranker
from seqgan.rl.ranking import log_rank_scores, rank_scores, ranker_loss
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke_rankgan.yaml"


def trainer(tmp_path: Path, *overrides: str) -> Trainer:
    t = Trainer(load_config(SMOKE, list(overrides)), tmp_path, quiet=True)
    t.start(["test"])
    return t


# ---------------------------------------------------------------- the maths by hand


def test_rank_score_is_the_softmax_of_cosine_similarities_by_hand():
    s = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # two scored sentences, each ranked against the same C
    comparison = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    references = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    gamma, r = 2.0, 1 / math.sqrt(2)
    # cos to (u1, u2): s1 (1, 0), s2 (0, 1), c1 (r, r), c2 (r, -r)
    c_terms = [math.exp(gamma * r) + math.exp(gamma * r), math.exp(gamma * r) + math.exp(-gamma * r)]  # per reference

    def hand(cos_u1: float, cos_u2: float) -> float:
        p1 = math.exp(gamma * cos_u1) / (math.exp(gamma * cos_u1) + c_terms[0])
        p2 = math.exp(gamma * cos_u2) / (math.exp(gamma * cos_u2) + c_terms[1])
        return (p1 + p2) / 2

    want = torch.tensor([hand(1.0, 0.0), hand(0.0, 1.0)])
    torch.testing.assert_close(rank_scores(s, comparison, references, gamma), want)
    torch.testing.assert_close(log_rank_scores(s, comparison, references, gamma), want.log())
    # a sentence identical to every member of C, against one reference, ranks 1 / (|C| + 1)
    same = torch.ones(1, 2)
    assert rank_scores(same, same.expand(5, 2), references[:1], 7.0).item() == pytest.approx(1 / 6)


def test_ranker_loss_by_hand():
    log_r_real = torch.log(torch.tensor([0.5, 0.25]))
    r_fake = torch.tensor([0.1, 0.2, 0.3])
    want = -(math.log(0.5) + math.log(0.25)) / 2 - (math.log(0.9) + math.log(0.8) + math.log(0.7)) / 3
    assert ranker_loss(log_r_real, r_fake).item() == pytest.approx(want)
    assert ranker_loss(log_r_real[:0], r_fake).item() == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.7)) / 3)
    # one batch of both kinds, each row scored both ways: its kind's score counts (R = 1 on a real
    # row, out of log1p's range, must leave the loss and its gradient finite)
    is_real = torch.tensor([True, False, True, False, False])
    both_log = torch.tensor([0.5, 0.7, 0.25, 0.1, 0.9]).log().requires_grad_(True)
    both_r = torch.tensor([1.0, 0.1, 1.0, 0.2, 0.3], requires_grad=True)
    loss = ranker_loss(both_log, both_r, is_real)
    loss.backward()
    assert loss.item() == pytest.approx(want)
    assert torch.isfinite(both_r.grad).all() and both_r.grad[is_real].eq(0).all() and both_log.grad[~is_real].eq(0).all()


def test_batch_loss_ranks_real_among_generated_and_generated_among_real():
    torch.manual_seed(0)
    ranker = Ranker(vocab_size=12, embed_dim=6, filter_sizes=[1, 2], num_filters=[4, 4], dropout=0.0).eval()
    rows = [torch.randint(12, (n, 5)) for n in (3, 2, 4, 4, 2)]  # real, fake, C+, C-, U
    real, fake, plus, minus, refs = rows
    kind = torch.tensor([True, False, True, False, True])  # the batch: real, fake, real, fake, real
    batch = torch.stack([real[0], fake[0], real[1], fake[1], real[2]])
    got = rankgan_module.batch_loss(ranker, batch, kind, real_comparison=plus, fake_comparison=minus, references=refs, gamma=1.5)
    e_real, e_fake, e_plus, e_minus, e_ref = (ranker(r) for r in rows)
    r_real = rank_scores(e_real, e_minus, e_ref, 1.5)  # real among generated
    r_fake = rank_scores(e_fake, e_plus, e_ref, 1.5)  # generated among real
    want = -r_real.log().mean() - (1 - r_fake).log().mean()
    torch.testing.assert_close(got, want)
    assert not hasattr(ranker.cnn, "out")  # no real/fake output layer left to hold dead weights


# ---------------------------------------------------------------- rewards from a rigged ranker


class RiggedRanker(torch.nn.Module):
    """Features that say only whether a sentence starts with token 1: (1, 0) if so, else (0, 1)."""

    def embed(self, tokens: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        first = (tokens[:, 0] == 1).float()
        return torch.stack([first, 1 - first], dim=1)

    def eval(self):
        return self


def test_rewards_from_a_rigged_ranker_are_its_rank_scores_at_every_token():
    """Every real sentence starts with 1, so U and C+ are all (1, 0). A sample starting with 1 ties
    with C+: R = 1 / (|C| + 1); one starting otherwise has cos 0 to U: R = 1 / (1 + |C| e^gamma).
    The first token is in every rollout's prefix, so Q(t) is that score at every t."""
    cfg = load_config(SMOKE, ["rankgan.gamma=2.0"])
    s = cfg.algo
    real = torch.ones(20, 6, dtype=torch.long)
    score = rankgan_module.rank_scorer(RiggedRanker(), real, s, torch.Generator().manual_seed(0), chunk=7)
    torch.manual_seed(0)
    g = Generator(vocab_size=5, embed_dim=4, hidden_dim=4)
    samples = torch.tensor([[1, 2, 3, 4, 0, 0], [3, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    q = rollout_q(Players(g, g, None, score=score), samples, None, None, cfg.adversarial, torch.Generator().manual_seed(1))
    tie, low = 1 / (s.comparison + 1), 1 / (1 + s.comparison * math.exp(s.gamma))
    want = torch.tensor([tie, low, tie]).unsqueeze(1).expand(3, 6)
    torch.testing.assert_close(q, want)


def test_adversarial_training_scores_with_the_ranker_never_a_binary_d(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("rankgan scored rewards with a binary discriminator")

    monkeypatch.setattr(seqgan_module, "prob_real", forbidden)
    t = trainer(tmp_path / "one")
    assert not hasattr(t.algorithm, "discriminator")
    before = {k: v.clone() for k, v in t.generator.state_dict().items()}
    ranker_before = {k: v.clone() for k, v in t.algorithm.ranker.state_dict().items()}
    t.algorithm.begin_phase("adversarial")
    logs = t.algorithm.adversarial_epoch()
    for name, value in t.generator.state_dict().items():
        assert not torch.equal(before[name], value), f"G's {name} did not change"
    for name, value in t.algorithm.ranker.state_dict().items():
        assert not torch.equal(ranker_before[name], value), f"the ranker's {name} did not change"
    assert 0 < logs["mean_reward"][0] < 1
    trainer(tmp_path / "run").run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    adv = [r for r in rows if r["phase"] == "adversarial"]
    assert all(0 < r["rank_real"] < 1 and 0 < r["rank_fake"] < 1 and "d_acc" not in r for r in adv)
    assert {p.name for p in (tmp_path / "run" / "checkpoints" / "2-adversarial-000004").glob("*.safetensors")} == {
        "generator.safetensors",
        "rollout.safetensors",
        "ranker.safetensors",
    }


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("discriminator.lr=0.001", "discriminator: algorithm=rankgan does not use this section"),
        ("rankgan.filter_sizes=[1,2,3,20]", r"rankgan.filter_sizes \[20\] are wider than the sequences"),
        ("rankgan.gamma=0", "rankgan.gamma and rankgan.lr must be > 0"),
        ("rankgan.comparison=0", "rankgan.comparison must be >= 1"),
        ("maligan.mixed=false", "maligan: settings of algorithm=maligan"),
    ],
)
def test_settings_that_do_not_apply_are_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SMOKE, [override])


# ---------------------------------------------------------------- resume


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, crash_on_third_call):
    trainer(tmp_path / "full").run()
    with crash_on_third_call(rankgan_module, "policy_gradient_step"):
        trainer(tmp_path / "crash").run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    assert (resumed.phase, resumed.epoch) == ("adversarial", 2)
    resumed.run()
    assert metric_rows(tmp_path / "crash") == metric_rows(tmp_path / "full")
    for key in ("generator", "ranker", "rollout"):
        a = load_file(tmp_path / "full" / "checkpoints" / "2-adversarial-000004" / f"{key}.safetensors")
        b = load_file(tmp_path / "crash" / "checkpoints" / "2-adversarial-000004" / f"{key}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), key


def metric_rows(run: Path) -> list[dict]:
    """The run's metrics rows without the clock (when each was written differs between runs)."""
    return without_clock([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])
