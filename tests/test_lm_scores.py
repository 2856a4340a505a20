"""Language-model scores (ScratchGAN's): the reference's NLL of the samples, and the test-set NLL
of an LM trained on the samples alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from seqgan.cli.main import main
from seqgan.models.generator import Generator
from seqgan.training.lm_scores import LMTraining, lm_score, reverse_lm_score

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")


def test_a_uniform_scorer_gives_log_v_per_token():
    scorer = Generator(7, 4, 5)
    for p in scorer.parameters():
        torch.nn.init.zeros_(p)  # all logits 0: every token has probability 1/7
    samples = torch.randint(0, 7, (9, 6))
    assert lm_score(scorer, samples) == pytest.approx(math.log(7), abs=1e-6)


def test_the_reverse_lm_learns_from_the_samples_alone():
    """Test data of two patterns: an LM trained on both predicts it far better than one trained on
    a single repeated sequence (collapsed samples), and the score repeats with the seed."""
    a, b = torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([6, 5, 4, 3, 2, 1])
    test = torch.stack([a, b] * 32)  # (64, 6)
    varied = torch.stack([a, b] * 64)  # the same two patterns, other rows
    collapsed = a.repeat(128, 1)
    settings = LMTraining(epochs=20, batch_size=16, lr=0.05, grad_clip=5.0)

    def score(samples, seed=0):
        torch.manual_seed(0)
        return reverse_lm_score(Generator(7, 8, 16), samples, test, settings, seed)

    good, bad = score(varied), score(collapsed)
    assert good < 0.5 * math.log(2) + 0.1  # nearly only the first token's coin flip: log 2 / 6 per token
    assert bad > 3 * good and bad > 1.0
    assert score(varied) == good  # seeded
    with pytest.raises(ValueError, match="draw at least that many"):
        reverse_lm_score(Generator(7, 8, 16), varied[:8], test, settings, 0)


def test_evaluate_with_an_lm_scorer(tmp_path, capsys):
    ref, other = tmp_path / "mle", tmp_path / "other"
    assert main(["train", SMOKE, "--out", str(ref), "--quiet", "adversarial.epochs=1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(ref), "-n", "64", "--lm-scorer", str(ref), "--reverse-lm-epochs", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reverse_lm_epochs"] == 2 and result["lm_scorer"] == str(ref)
    assert 0 < result["lm_score"] < math.log(50) + 1 and 0 < result["reverse_lm_score"] < 20
    assert main(["evaluate", str(ref), "-n", "64", "--lm-scorer", str(ref), "--reverse-lm-epochs", "0"]) == 0
    only = json.loads(capsys.readouterr().out)
    assert "reverse_lm_score" not in only and only["lm_score"] == pytest.approx(result["lm_score"])  # same samples
    assert (
        main(["train", SMOKE, "--out", str(other), "--quiet", "adversarial.epochs=1", "pretrain.epochs=1", "data.test_seed=5"])
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(other), "-n", "64", "--lm-scorer", str(ref)]) == 2
    assert "its test set differs" in capsys.readouterr().err
    assert main(["evaluate", str(ref), "--lm-scorer", str(ref), "--reverse-lm-epochs", "-1"]) == 2
