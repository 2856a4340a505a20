"""MaliGAN, RankGAN and LeakGAN through the command line, as a user runs them: train, sample, evaluate, sweep
against the MLE start, plot, and resume with a longer adversarial phase."""

from __future__ import annotations

import csv
import json
import math

import pytest

from test_cli import seqgan


@pytest.mark.parametrize("algorithm", ["maligan", "rankgan", "leakgan"])
def test_train_sample_evaluate_resume(tmp_path, algorithm):
    out = tmp_path / "run"
    r = seqgan("train", f"configs/smoke_{algorithm}.yaml", "--out", str(out), "--quiet", "adversarial.epochs=2")
    assert r.returncode == 0, r.stderr
    assert f"algorithm: {algorithm}" in (out / "config.yaml").read_text()

    r = seqgan("sample", str(out), "-n", "5", "--seed", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and all(len(line.split()) == 10 for line in lines)

    r = seqgan("evaluate", str(out), "-n", "300")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert abs(metrics["nll_test"] - last["nll_test"]) < 1e-4

    r = seqgan(
        "sweep",
        str(out),
        f"{out}@mle",
        "--labels",
        algorithm,
        "MLE",
        "--temperatures",
        "0.9,1.0",
        "-n",
        "300",
        "--out",
        str(tmp_path / "sweep"),
    )
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((tmp_path / "sweep" / "sweep.csv").open()))
    assert [(row["label"], float(row["temperature"])) for row in rows] == [
        (algorithm, 0.9),
        (algorithm, 1.0),
        ("MLE", 0.9),
        ("MLE", 1.0),
    ]
    assert all(math.isfinite(float(row["nll_oracle"])) for row in rows)
    assert abs(float(rows[1]["nll_test"]) - metrics["nll_test"]) < 1e-4  # the swept run is the evaluated one
    assert rows[1]["nll_test"] != rows[3]["nll_test"]  # and @mle another G
    r = seqgan("plot", str(out), "--table")
    assert r.returncode == 0, r.stderr
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "adversarial" in r.stdout

    r = seqgan("train", "--resume", str(out), "--quiet", "adversarial.epochs=4")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if row["phase"] == "adversarial"] == [2, 4]
    assert (out / "checkpoints" / "2-adversarial-000004").is_dir()


@pytest.mark.parametrize("algorithm", ["maligan", "rankgan", "leakgan"])
def test_torchrun_with_two_processes_trains_and_resumes(tmp_path, algorithm):
    from test_distributed import torchrun

    out = tmp_path / "run"
    done = torchrun(f"configs/smoke_{algorithm}.yaml", "--quiet", "--out", str(out), "adversarial.epochs=2")
    assert done.returncode == 0, done.stderr[-3000:]
    done = torchrun("--resume", str(out), "--quiet", "adversarial.epochs=4")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if row["phase"] == "adversarial"] == [2, 4]
