"""The Python API (`seqgan.train / sample / evaluate / open_run / resume`) on the smoke config: the
same run folder, samples and metrics as the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seqgan
from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_train_sample_evaluate_as_short_as_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the run folder's default place is ./runs
    run = seqgan.train(ROOT / "configs" / "smoke.yaml", ["adversarial.epochs=2"], out="run")
    assert isinstance(run, seqgan.Run) and run.dir.name == "run" and run.config.adversarial.epochs == 2
    assert not run.generator.training and run.checkpoint.startswith("2-adversarial")
    command = (tmp_path / "run" / "command.txt").read_text()
    assert "seqgan train" in command and "adversarial.epochs=2" in command

    lines = seqgan.sample(run, 5, temperature=0.8, seed=3)
    assert len(lines) == 5 and all(len(line.split()) == 10 for line in lines)
    assert seqgan.sample("run", 5, temperature=0.8, seed=3) == lines  # a folder works as well as a Run
    assert main(["sample", "run", "-n", "5", "--temperature", "0.8", "--seed", "3"]) == 0
    assert capsys.readouterr().out.splitlines() == lines

    metrics = seqgan.evaluate(run, n=200, seed=1)
    assert main(["evaluate", "run", "-n", "200", "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics
    assert {"nll_oracle", "nll_test", "unique_frac"} <= set(metrics)
    assert "d_acc" in seqgan.evaluate(run, n=64, discriminator=True)

    mle = seqgan.open_run("run@mle")
    assert mle.checkpoint.startswith("0-mle") and seqgan.sample(mle, 2) != seqgan.sample(run, 2)
    longer = seqgan.resume("run", ["adversarial.epochs=3"])
    assert longer.checkpoint.startswith("2-adversarial-000003")


def test_train_takes_a_config_object_and_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "configs" / "smoke.yaml", ["d_pretrain.steps=0", "adversarial.epochs=0", "pretrain.epochs=1"])
    run = seqgan.train(cfg, ["eval.final_samples=3"])
    assert run.dir.parent.name == "runs" and run.dir.name.startswith("run-")
    assert run.config.eval.final_samples == 3 and len((run.dir / "samples.txt").read_text().splitlines()) == 3
    with pytest.raises(FileExistsError, match="already holds a run"):
        seqgan.train(cfg, out=run.dir)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        seqgan.sample(run, 2, temperature=0)
