"""The algorithms beside SeqGAN: `algorithm: mle` (G by maximum likelihood only), and run folders
written before the `algorithm:` key existed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.training.checkpoint import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY_MLE = """
    data.vocab_size=50 data.num_train=256 data.num_test=256 pretrain.epochs=4 pretrain.batch_size=32 eval.every=2
    eval.num_samples=256 eval.batch_size=128 eval.final_samples=10
""".split()


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- MLE


def test_mle_configs_choose_the_mle_algorithm():
    for path in sorted((ROOT / "configs").glob("*_mle.yaml")):
        assert load_config(path).algorithm == "mle", path.name


def test_algorithm_mle_trains_as_seqgan_with_no_adversarial_phases(tmp_path, monkeypatch):
    """The MLE configs used to say 'MLE only' with d_pretrain.steps=0 and adversarial.epochs=0; the
    same seed gives the same metrics and samples with algorithm: mle."""
    monkeypatch.chdir(ROOT)
    old, new = tmp_path / "old", tmp_path / "new"
    zero = ["d_pretrain.steps=0", "adversarial.epochs=0"]
    assert main(["train", "configs/cond_oracle_mle.yaml", "--out", str(new), "--quiet", *TINY_MLE]) == 0
    base = ["train", "configs/cond_oracle_mle.yaml", "--out", str(old), "--quiet", "algorithm=seqgan", *TINY_MLE, *zero]
    assert main(base) == 0
    assert rows(new) == rows(old) and [r["epoch"] for r in rows(new)] == [0, 2, 4]
    assert (new / "samples.txt").read_text() == (old / "samples.txt").read_text()
    assert sorted(p.name for p in latest_checkpoint(new / "checkpoints").glob("*.safetensors")) == ["generator.safetensors"]


def test_mle_rejects_the_sections_it_does_not_read():
    with pytest.raises(ConfigError, match="algorithm=mle does not use this section"):
        load_config(ROOT / "configs" / "oracle_mle.yaml", ["adversarial.epochs=10"])


# ----------------------------------------------------------------------------- old run folders


def test_a_run_folder_without_the_algorithm_key_resumes_as_seqgan(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke.yaml", "--out", str(run), "--quiet", "adversarial.epochs=2"]) == 0
    config = run / "config.yaml"
    text = config.read_text()
    assert "algorithm: seqgan\n" in text
    config.write_text(text.replace("algorithm: seqgan\n", ""))  # as runs made before the key existed
    assert main(["train", "--resume", str(run), "--quiet", "adversarial.epochs=4"]) == 0
    assert rows(run)[-1]["phase"] == "adversarial" and rows(run)[-1]["epoch"] == 4
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_a_run_folder_of_an_unknown_algorithm_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    assert main(["train", "configs/smoke.yaml", "--out", str(run), "--quiet", "adversarial.epochs=0", "d_pretrain.steps=0"]) == 0
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("algorithm: seqgan", "algorithm: leakgan"))
    assert main(["sample", str(run), "-n", "2"]) == 2
    assert "algorithm='leakgan': use one of mle, seqgan" in capsys.readouterr().err
