"""Training on text: any script in, decoded samples and text metrics out, through the real entry points."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from seqgan.cli.main import main
from seqgan.config import load_config
from seqgan.data.tokenizers import UNK
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]

POEM = """
    床前明月光 疑是地上霜 举头望明月 低头思故乡 白日依山尽 黄河入海流 欲穷千里目 更上一层楼 春眠不觉晓 处处闻啼鸟 夜来风雨声 花落知多少
""".split()
SMALL_TEXT = """
    data.max_len=12 data.heldout_size=4 pretrain.epochs=3 pretrain.batch_size=8 d_pretrain.steps=1
    d_pretrain.num_negatives=16 adversarial.epochs=2 adversarial.batch_size=4 adversarial.num_negatives=16
    adversarial.rollout_num=2 discriminator.batch_size=8 eval.every=1 eval.d_samples=8 eval.bleu_samples=8
    eval.final_samples=5 generator.embed_dim=8 generator.hidden_dim=8 discriminator.embed_dim=8
    discriminator.filter_sizes=[1,2,3] discriminator.num_filters=[4,4,4]
""".split()


def test_chinese_characters_train_and_decode(tmp_path, capsys):
    corpus = tmp_path / "poems.txt"
    corpus.write_text("\n".join(POEM * 4) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    args = [
        "train",
        "configs/text.yaml",
        "--out",
        str(run),
        "--quiet",
        f"data.train={corpus}",
        "data.tokenizer=char",
        *SMALL_TEXT,
    ]
    assert main(args) == 0, capsys.readouterr().err
    vocab = set("".join(POEM))
    samples = (run / "samples.txt").read_text(encoding="utf-8").splitlines()
    assert len(samples) == 5 and all(" " not in s and set(s) <= vocab | {"<unk>"} for s in samples)
    assert any(samples)  # at least one non-empty sample, decoded back to characters
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"nll_test", "bleu4_test", "self_bleu4", "distinct2", "unique_frac"} <= rows[-1].keys()
    assert "nll_oracle" not in rows[-1]
    assert 0.0 < rows[-1]["unique_frac"] <= 1.0 and 0.0 <= rows[-1]["distinct2"] <= 1.0 and 0.0 <= rows[-1]["self_bleu4"] <= 1.0
    report = json.loads((run / "data_report.json").read_text())
    assert report["train"]["kept"] == len(POEM) * 4 - 4 and report["heldout"]["kept"] == 4

    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(set(s) <= vocab | {"<unk>"} for s in out)


def test_word_corpus_evaluate_reports_text_metrics(tmp_path, capsys):
    lines = [f"a {w} sat on the {v} mat ." for w in ("cat", "dog", "bird", "fox") for v in ("red", "big", "old")] * 3
    corpus = tmp_path / "words.jsonl"
    corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "configs/text.yaml", "--out", str(run), "--quiet", f"data.train={corpus}", *SMALL_TEXT]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "40"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("nll_test", "bleu2_test", "bleu5_heldout", "self_bleu4", "distinct2", "copy_rate", "length_mean"):
        assert key in result, key
    # a sample that never emits the end token fills all max_len + 1 positions
    assert 0.0 <= result["bleu2_test"] <= 1.0 and result["length_max"] <= 13

    # Learning curves: a valid PNG, and the text table carries BLEU beside NLL-test, one row per logged epoch.
    png = tmp_path / "curves.png"
    assert main(["plot", str(run), "--out", str(png), "--table"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out.splitlines()
    header = table[1].split()
    assert {"nll_test", "bleu4_test", "d_acc"} <= set(header) and "nll_oracle" not in header
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(table) == 2 + len(logged)
    first = dict(zip(header, table[2].split(), strict=False))
    assert float(first["bleu4_test"]) == round(logged[0]["bleu4_test"], 4)

    # The temperature sweep of a text run: BLEU-4 against Self-BLEU-4, one filled row per temperature.
    out = tmp_path / "sweep"
    assert main(["sweep", str(run), f"{run}@mle", "--temperatures", "0.5,1.5", "-n", "30", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["label"], r["temperature"]) for r in rows] == [(n, t) for n in ("run", "run@mle") for t in ("0.5", "1.5")]
    assert all(0.0 <= float(r[k]) <= 1.0 for r in rows for k in ("bleu4_test", "self_bleu4"))
    assert all(r["nll_test"] and "nll_oracle" not in r for r in rows)
    assert rows[0]["checkpoint"].startswith("2-adversarial") and rows[2]["checkpoint"].startswith("0-mle")
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    oracle_run = tmp_path / "oracle"
    assert main(["train", "configs/smoke.yaml", "--out", str(oracle_run), "--quiet", "adversarial.epochs=1"]) == 0
    capsys.readouterr()
    assert main(["sweep", str(run), str(oracle_run), "--out", str(tmp_path / "mixed")]) == 2
    assert "sweep them separately" in capsys.readouterr().err and not (tmp_path / "mixed").exists()


def test_corpus_errors_reach_the_user_as_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\n\xff\xfe broken\n")
    code = main(["train", "configs/text.yaml", "--out", str(tmp_path / "r"), f"data.train={bad}"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.txt:2: not valid UTF-8" in err and err.count("\n") == 1
    code = main(["train", "configs/text.yaml", "--out", str(tmp_path / "r2"), f"data.train={tmp_path / 'missing.txt'}"])
    assert code == 2 and "missing.txt" in capsys.readouterr().err
    assert not (tmp_path / "r" / "metrics.jsonl").exists()  # nothing half-written


def test_text_run_resumes_exactly_with_its_saved_tokenizer(tmp_path, monkeypatch):
    from seqgan.algorithms import seqgan as seqgan_module
    from seqgan.config import load_config
    from seqgan.training.run import Trainer

    corpus = tmp_path / "poems.txt"
    corpus.write_text("\n".join(POEM * 4) + "\n", encoding="utf-8")
    overrides = [f"data.train={corpus}", "data.tokenizer=char", *SMALL_TEXT, "adversarial.epochs=3", "checkpoint.every=1"]

    def trainer(run: Path) -> Trainer:
        t = Trainer(load_config("configs/text.yaml", overrides), run, quiet=True)
        t.start(["test"])
        return t

    trainer(tmp_path / "full").run()
    calls = {"n": 0}
    real_step = seqgan_module.policy_gradient_step

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(seqgan_module, "policy_gradient_step", crash_on_second)
    try:
        trainer(tmp_path / "crash").run()
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(seqgan_module, "policy_gradient_step", real_step)
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    resumed.run()
    assert without_clock(read_metrics(tmp_path / "crash" / "metrics.jsonl")) == without_clock(
        read_metrics(tmp_path / "full" / "metrics.jsonl")
    )
    for name in ("samples.txt", "tokenizer.json"):
        assert (tmp_path / "crash" / name).read_text() == (tmp_path / "full" / name).read_text(), name

    # The vocabulary is the run's own: new characters in the corpus do not rebuild it.
    vocab = resumed.data.vocab_size
    corpus.write_text("\n".join(POEM * 4 + ["新的字符在这里"]) + "\n", encoding="utf-8")
    again = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    assert again.data.vocab_size == vocab


def test_training_logs_show_mode_collapse(tmp_path):
    """quick_text_metrics (logged every eval.every epochs): a G rigged to write one character at
    every step gives identical samples, so Self-BLEU is 1 and unique_frac 1/n."""
    corpus = tmp_path / "poems.txt"
    corpus.write_text("\n".join(POEM * 4) + "\n", encoding="utf-8")
    overrides = [f"data.train={corpus}", "data.tokenizer=char", *SMALL_TEXT, "eval.bleu_samples=20"]
    trainer = Trainer(load_config(ROOT / "configs" / "text.yaml", overrides), tmp_path / "run", quiet=True)
    fresh = trainer.evaluator.generator_metrics(trainer.generator, trainer.evaluator.rng())
    assert fresh["unique_frac"] > 0.5 and fresh["self_bleu4"] < 0.5
    with torch.no_grad():
        trainer.generator.head.weight.zero_()
        trainer.generator.head.bias.fill_(-1e4)
        trainer.generator.head.bias[UNK + 1] = 0.0  # the first real character, never the end token
    rigged = trainer.evaluator.generator_metrics(trainer.generator, trainer.evaluator.rng())
    T = trainer.data.train.shape[1]  # a sample that never ends fills every step
    assert rigged["unique_frac"] == 1 / 20 and rigged["distinct1"] == 1 / (20 * T)
    assert rigged["self_bleu4"] == pytest.approx(1.0)
