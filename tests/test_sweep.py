"""Temperature sweeps: one filled CSV row per run x temperature, a valid PNG, bad temperatures refused."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from seqgan.cli.main import main
from seqgan.metrics.sweep import parse_temperatures
from seqgan.models.generator import Generator


def test_parse_temperatures():
    assert parse_temperatures("0.5:1.5:0.1") == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    assert parse_temperatures("0.7, 1.3") == [0.7, 1.3]
    for bad in ("0:1:0.5", "-1,1", "1:2:0", "a:b:c", ""):
        with pytest.raises(ValueError, match="temperature"):
            parse_temperatures(bad)


def test_log_probs_under_temperature_divide_the_logits():
    torch.manual_seed(0)
    g = Generator(11, 4, 6, init_std=0.5)
    y = torch.randint(0, 11, (3, 5))
    expect = torch.log_softmax(g(y) / 0.7, -1).gather(-1, y[..., None]).squeeze(-1)
    torch.testing.assert_close(g.log_probs(y, 0.7), expect)


def test_sweep_writes_one_filled_row_per_run_and_temperature(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "configs/smoke.yaml", "--out", str(run), "--quiet", "adversarial.epochs=2"]) == 0
    out = tmp_path / "sweep"
    code = main(
        [
            "sweep",
            str(run),
            str(run),
            "--labels",
            "a",
            "b",
            "--temperatures",
            "0.5:1.5:0.5",
            "-n",
            "200",
            "--out",
            str(out),
            "--table",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    table = printed.out.splitlines()  # --table: a header, then one line per row of the CSV with the same figures
    assert table[0].split() == ["label", "temperature", "nll_oracle", "nll_test"] and len(table) == 1 + len(rows)
    assert table[2].split() == ["a", "1.0000", f"{float(rows[1]['nll_oracle']):.4f}", f"{float(rows[1]['nll_test']):.4f}"]
    assert [(r["label"], float(r["temperature"])) for r in rows] == [(lbl, t) for lbl in "ab" for t in (0.5, 1.0, 1.5)]
    for r in rows:
        assert all(r[k] != "" for k in r) and math.isfinite(float(r["nll_oracle"])) and math.isfinite(float(r["nll_test"]))
    at_one = rows[1]
    assert at_one["nll_oracle"] == rows[4]["nll_oracle"]  # same run, same seed: same samples
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_refuses_non_positive_temperatures(tmp_path, capsys):
    code = main(["sweep", str(tmp_path), "--temperatures", "0,1"])
    err = capsys.readouterr().err
    assert code == 2 and "must be > 0" in err and err.count("\n") == 1


def test_debug_flag_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "sample", str(tmp_path / "missing")])
