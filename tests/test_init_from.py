"""pretrain.init_from: a run that starts G (and its data) from an earlier run's checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqgan.config import ConfigError, load_config
from seqgan.training.checkpoint import CheckpointError
from seqgan.training.experiment import open_run
from seqgan.training.run import Trainer

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def run_smoke(run_dir: Path, *overrides: str) -> Trainer:
    trainer = Trainer(load_config(SMOKE, list(overrides)), run_dir, quiet=True)
    trainer.start(["test"])
    trainer.run()
    return trainer


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_run_starts_from_another_runs_generator_and_data(tmp_path):
    mle = tmp_path / "mle"
    run_smoke(mle, "adversarial.epochs=0", "d_pretrain.steps=0", "checkpoint.keep=10")
    source = open_run(f"{mle}@mle")

    gan = tmp_path / "gan"
    trainer = Trainer(load_config(SMOKE, [f"pretrain.init_from={mle}@mle", "pretrain.epochs=0"]), gan, quiet=True)
    for key, value in source.generator.state_dict().items():
        assert torch.equal(trainer.generator.state_dict()[key], value), key
        assert torch.equal(trainer.algorithm.rollout.state_dict()[key], value), key
    assert torch.equal(trainer.data.train, source.data.train) and torch.equal(trainer.data.test, source.data.test)
    trainer.start(["test"])
    trainer.run()

    # its first row is the G it started from, scored as the MLE run scored it at the end of MLE
    first, mle_end = rows(gan)[0], [r for r in rows(mle) if r["phase"] == "mle"][-1]
    assert (first["phase"], first["epoch"]) == ("mle", 0)
    assert first["nll_test"] == mle_end["nll_test"] and first["nll_oracle"] == mle_end["nll_oracle"]
    phases = [r["phase"] for r in rows(gan)]
    assert phases.count("mle") == 1 and phases[-1] == "adversarial"
    saved = load_config(gan / "config.yaml").pretrain.init_from
    assert saved == f"{mle.resolve()}@mle"
    # and G moved on from there in the adversarial phase
    final = open_run(gan).generator.state_dict()
    assert any(not torch.equal(final[k], v) for k, v in source.generator.state_dict().items())


def test_more_mle_epochs_continue_from_the_loaded_generator(tmp_path):
    """init_from + 2 MLE epochs ends where 2 more epochs of the first run would have (same data, same G)."""
    mle = tmp_path / "mle"
    run_smoke(mle, "adversarial.epochs=0", "d_pretrain.steps=0", "pretrain.epochs=2")
    more = tmp_path / "more"
    run_smoke(more, f"pretrain.init_from={mle}", "pretrain.epochs=2", "adversarial.epochs=0", "d_pretrain.steps=0")
    mle_rows = [r for r in rows(more) if r["phase"] == "mle"]
    assert [r["epoch"] for r in mle_rows] == [0, 2]
    assert mle_rows[1]["nll_test"] != mle_rows[0]["nll_test"]


def test_init_from_a_run_that_does_not_fit_is_a_clear_error(tmp_path):
    mle = tmp_path / "mle"
    run_smoke(mle, "adversarial.epochs=0", "d_pretrain.steps=0", "pretrain.epochs=2")
    bad = {
        "generator.hidden_dim=32": (ConfigError, r"generator\.hidden_dim: 16 there, 32 here"),
        "data.num_train=128": (ConfigError, r"data\.num_train: 256 there, 128 here"),
        "condition.kind=label": (ConfigError, r"condition\.kind: 'none' there, 'label' here"),
    }
    for override, (error, message) in bad.items():
        cfg = load_config(SMOKE, [f"pretrain.init_from={mle}", override])
        with pytest.raises(error, match=message):
            Trainer(cfg, tmp_path / "x", quiet=True)
    with pytest.raises(FileNotFoundError, match=r"pretrain\.init_from=.*nowhere is not a run directory"):
        Trainer(load_config(SMOKE, [f"pretrain.init_from={tmp_path / 'nowhere'}"]), tmp_path / "x", quiet=True)
    with pytest.raises(CheckpointError, match=r"no checkpoint 'gan'; name a phase"):
        Trainer(load_config(SMOKE, [f"pretrain.init_from={mle}@gan"]), tmp_path / "x", quiet=True)
    assert not (tmp_path / "x").exists()  # nothing half-written
