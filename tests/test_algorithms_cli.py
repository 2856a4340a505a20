"""MaliGAN, RankGAN and LeakGAN through the command line, as a user runs them: train, sample, evaluate, and
resume with a longer adversarial phase."""

from __future__ import annotations

import json

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
