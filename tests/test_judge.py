"""The generative condition judge (discriminator.condition_judge=generator): its posterior and loss
by hand, a judge that ignores c gives chance, it starts as the pre-trained G and learns from real
pairs alone, a run with it is deterministic and resumes exactly, and bad settings are errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.metrics.nll import sequence_log_probs
from seqgan.models.condition import FeatureEncoder, LabelEncoder
from seqgan.models.discriminator import RNNDiscriminator, prob_real, prob_real_alone
from seqgan.models.generator import Generator
from seqgan.models.judge import GenerativeJudge, JudgedDiscriminator
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
V, T, K, F = 9, 6, 3, 5


def logged(run: Path) -> list[dict]:
    """The run's metrics rows without the time they were written at."""
    return without_clock(read_metrics(run / "metrics.jsonl"))


def label_lm() -> Generator:
    torch.manual_seed(0)
    return Generator(V, 8, 16, condition=LabelEncoder([K], 4), condition_input=True, init_std=0.5)


def feature_lm() -> Generator:
    torch.manual_seed(0)
    return Generator(V, 8, 16, condition=FeatureEncoder(F, 4), condition_input=True, init_std=0.5)


def tokens(rows: int) -> torch.Tensor:
    return torch.randint(V, (rows, T), generator=torch.Generator().manual_seed(1))


def test_a_label_judge_is_the_lm_posterior_over_every_class():
    judge = GenerativeJudge(label_lm(), num_classes=K)
    y, cond = tokens(5), torch.tensor([[0], [1], [2], [1], [0]])
    loglik = torch.stack([sequence_log_probs(judge.lm, y, torch.full_like(cond, k)) for k in range(K)], dim=1)  # (5, K)
    want = torch.log_softmax(loglik, dim=1).gather(1, cond).squeeze(1)
    with torch.no_grad():
        assert torch.allclose(judge.log_prob(y, cond), want, atol=1e-5)
        assert judge.loss(y, cond, torch.ones(5, dtype=torch.bool)).item() == pytest.approx(-want.mean().item(), rel=1e-5)
        real = torch.tensor([True, False, True, True, False])  # it learns from the real rows only
        assert judge.loss(y, cond, real).item() == pytest.approx(-want[real].mean().item(), rel=1e-5)
        assert torch.allclose(
            torch.stack([judge.log_prob(y, torch.full_like(cond, k)) for k in range(K)]).exp().sum(0), torch.ones(5)
        )


def test_a_feature_judge_compares_c_with_its_references_leaving_c_itself_out():
    judge = GenerativeJudge(feature_lm(), feature_dim=F, num_reference=3)
    g = torch.Generator().manual_seed(2)
    cond, refs = torch.randn(4, F, generator=g), torch.randn(3, F, generator=g)
    refs[1] = cond[2]  # row 2's own vector is a reference: it competes with the other two only
    judge.set_reference(refs)
    y = tokens(4)

    def loglik(c: torch.Tensor) -> torch.Tensor:
        return sequence_log_probs(judge.lm, y, c.expand(4, -1) if c.dim() == 1 else c)

    own, per_ref = loglik(cond), torch.stack([loglik(r) for r in refs], dim=1)  # (4,), (4, 3)
    with torch.no_grad():
        got = judge.log_prob(y, cond)
    for i in range(4):
        others = [per_ref[i, r] for r in range(3) if not (i == 2 and r == 1)]
        want = own[i] - torch.logsumexp(torch.stack([own[i], *others]), dim=0)
        assert got[i].item() == pytest.approx(want.item(), abs=1e-5)
    # training: c against the next rows' conditions of the batch (cyclically), not the references
    with torch.no_grad():
        loss = judge.loss(y, cond, torch.ones(4, dtype=torch.bool)).item()
    rolled = torch.stack([loglik(cond.roll(-s, dims=0)) for s in (1, 2, 3)], dim=1)  # (4, 3): R = 3 = B - 1
    want = (torch.logsumexp(torch.cat([own[:, None], rolled], dim=1), dim=1) - own).mean()
    assert loss == pytest.approx(want.item(), rel=1e-5)


def test_a_judge_whose_lm_ignores_the_condition_gives_chance():
    judge = GenerativeJudge(label_lm(), num_classes=K)
    for table in judge.lm.condition.embeddings:
        table.weight.data.zero_()  # every class gets the same code: p(y | c) is the same for every c
    y, cond = tokens(6), torch.tensor([[0], [1], [2]] * 2)
    with torch.no_grad():
        assert torch.allclose(judge.log_prob(y, cond), torch.full((6,), -math.log(K)), atol=1e-6)


def test_a_judged_d_scores_real_times_the_judge_posterior():
    torch.manual_seed(0)
    judge = GenerativeJudge(label_lm(), num_classes=K)
    d = JudgedDiscriminator(RNNDiscriminator(V, 8, 6), judge).eval()
    y, cond = tokens(6), torch.tensor([[0], [1], [2]] * 2)
    with torch.no_grad():
        want = prob_real_alone(d, y) * judge.log_prob(y, cond).exp()
    assert torch.allclose(prob_real(d, y, cond=cond), want, atol=1e-6)
    assert d.out is d.realness.out and d.classifier is judge
    with pytest.raises(ValueError, match="pass cond"):
        d(y)


def test_a_judge_needs_exact_likelihoods_and_valid_references():
    with pytest.raises(ValueError, match="no noise input"):
        GenerativeJudge(Generator(V, 8, 16, noise_dim=2, condition=LabelEncoder([K], 4)), num_classes=K)
    with pytest.raises(ValueError, match="num_classes .* or feature_dim"):
        GenerativeJudge(label_lm())
    with pytest.raises(ValueError, match="reference conditions must be"):
        GenerativeJudge(feature_lm(), feature_dim=F, num_reference=3).set_reference(torch.zeros(2, F))


# ----------------------------------------------------------------------------- training runs


def judge_trainer(path: Path, *overrides: str) -> Trainer:
    overrides = ("discriminator.condition_join=classifier", "discriminator.condition_judge=generator", *overrides)
    trainer = Trainer(load_config(SMOKE, list(overrides)), path, quiet=True)
    trainer.start(["test"])
    return trainer


@pytest.mark.parametrize("kind", ["label", "features"])
def test_the_judge_starts_as_the_pretrained_g_and_learns_from_real_pairs(tmp_path, kind):
    t = judge_trainer(tmp_path / "copy", f"condition.kind={kind}", "d_pretrain.steps=0", "adversarial.epochs=0")
    t.run()
    judge = t.algorithm.discriminator.classifier
    for name, value in t.generator.state_dict().items():
        assert torch.equal(judge.lm.state_dict()[name], value), f"judge {name} is not G's"
    t = judge_trainer(tmp_path / "train", f"condition.kind={kind}", "adversarial.epochs=0")
    t.run()  # 2 D pre-training rounds: every judge weight moves away from G's
    judge = t.algorithm.discriminator.classifier
    for name, value in t.generator.named_parameters():
        assert not torch.equal(dict(judge.lm.named_parameters())[name], value), f"judge {name} did not learn"
    if kind == "features":  # the reference vectors are rows of the training conditions
        assert all(bool((t.data.cond_train == r).all(dim=1).any()) for r in judge.reference)


def test_a_judged_run_is_deterministic_resumes_exactly_and_evaluates(tmp_path, crash_on_third_pg_step, capsys):
    overrides = ("condition.kind=features", "discriminator.judge_references=3")
    for name in ("a", "b"):
        judge_trainer(tmp_path / name, *overrides).run()
    a = logged(tmp_path / "a")
    assert a == logged(tmp_path / "b")
    with crash_on_third_pg_step():
        judge_trainer(tmp_path / "crash", *overrides).run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    resumed.run()
    assert logged(tmp_path / "crash") == a
    main(["evaluate", str(tmp_path / "a"), "-n", "64", "--discriminator"])  # D (and its judge) load from the checkpoint
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= out["cond_acc"] <= 1 and 0 <= out["d_cond_acc"] <= 1


JUDGE = ["discriminator.condition_join=classifier", "discriminator.condition_judge=generator"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["condition.kind=label", "discriminator.condition_judge=lm"], "use 'head' or 'generator'"),
        (["condition.kind=label", "discriminator.condition_judge=generator"], "set discriminator.condition_join=classifier"),
        (
            ["condition.kind=features", "discriminator.condition_join=classifier", "discriminator.judge_references=3"],
            "judge_references applies only to condition_judge=generator",
        ),
        (["condition.kind=label", *JUDGE, "discriminator.judge_references=3"], "judge_references applies to feature vectors"),
        (["condition.kind=label", *JUDGE, "generator.noise_dim=4"], "generator.noise_dim=0"),
        (["condition.kind=features", *JUDGE, "discriminator.judge_references=0"], "judge_references must be >= 1"),
    ],
)
def test_bad_judge_settings_say_how_to_fix_them(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
