"""The command line, run as a user runs it: train -> sample -> evaluate on the smoke config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def seqgan(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqgan", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_smoke_train_sample_evaluate(tmp_path):
    out = tmp_path / "run"
    r = seqgan("train", "configs/smoke.yaml", "--out", str(out), "--quiet", "adversarial.epochs=2")
    assert r.returncode == 0, r.stderr
    for name in ("config.yaml", "command.txt", "metrics.jsonl", "samples.txt", "oracle.safetensors", "checkpoints/latest"):
        assert (out / name).exists(), name
    assert "adversarial.epochs=2" in (out / "command.txt").read_text()

    r = seqgan("sample", str(out), "-n", "5", "--seed", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and all(len(line.split()) == 10 for line in lines)
    assert all(0 <= int(tok) < 50 for line in lines for tok in line.split())
    assert seqgan("sample", str(out), "-n", "5", "--seed", "3").stdout == r.stdout

    r = seqgan("sample", str(out), "-n", "4", "--out", str(tmp_path / "s.txt"), "--temperature", "0.5")
    assert r.returncode == 0 and len((tmp_path / "s.txt").read_text().splitlines()) == 4

    r = seqgan("evaluate", str(out), "-n", "300")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["num_samples"] == 300 and metrics["temperature"] == 1.0
    assert 0 < metrics["unique_frac"] <= 1 and 0 < metrics["distinct4"] <= 1  # the oracle run's diversity
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert abs(metrics["nll_test"] - last["nll_test"]) < 1e-4  # the same held-out set and generator


def test_errors_are_one_line_with_exit_status_2(tmp_path):
    r = seqgan("train", "configs/smoke.yaml", "adversarial.epoch=1", "--out", str(tmp_path / "x"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "did you mean 'epochs'" in r.stderr and "Traceback" not in r.stderr
    r = seqgan("sample", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "not a run directory" in r.stderr
    r = seqgan("evaluate", str(tmp_path), "--temperature", "0")
    assert r.returncode == 2 and "temperature must be > 0" in r.stderr
