"""What happens to a corpus, said at the start of every text run: the summary, its warnings, the
held-out default, the vocabulary counted after truncation, and the char tokenizer without spaces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqgan.cli.main import main
from seqgan.config import ConfigError, DataConfig, load_config
from seqgan.data.corpus import HELDOUT_CAP, heldout_count
from seqgan.data.report import nearest_rank, summary_lines
from seqgan.data.text import make_text_data
from seqgan.data.tokenizers import build_tokenizer, first_words, load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the cat sat on a mat and ran far away from home at night".split()


def clean_lines(n: int, length: int = 6) -> list[str]:
    """n distinct lines of `length` words (no warning of any kind)."""
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(length)) + f" n{i}" for i in range(n)]


def summary(tmp_path: Path, lines: list[str], **settings) -> dict:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DataConfig(source="text", train=str(corpus), **settings)
    return make_text_data(cfg).report["summary"]


def warning_about(s: dict, words: str) -> str:
    found = [w for w in s["warnings"] if words in w]
    assert len(found) == 1, s["warnings"]
    return found[0]


def test_a_clean_corpus_gets_figures_and_no_warning(tmp_path):
    lines = clean_lines(200)
    s = summary(tmp_path, lines[:100] + ["", "  "] + lines[100:])
    assert s["warnings"] == []
    assert (s["lines_read"], s["lines"], s["blank"], s["kept"], s["truncated"], s["dropped"]) == (202, 200, 2, 200, 0, 0)
    assert s["heldout"] == 10 and s["heldout_share"] == pytest.approx(0.05) and s["train_lines"] == 190
    assert s["length"] == {"median": 7, "p95": 7, "max": 7, "one_token": 0}
    assert s["unk_rate"]["train"] == 0.0 and s["unk_rate"]["held-out"] > 0.0  # held-out lines' own n{i} words
    block = summary_lines(s)
    assert len(block) == 4 and block[0].startswith(f"data: {tmp_path / 'corpus.txt'}: 202 lines read; 200 kept (99.0%)")
    assert "held out: 10 lines (5.0% of 200)" in block[1] and "median 7, 95th percentile 7, max 7" in block[3]


def test_the_default_held_out_part_is_a_share_with_a_cap():
    assert heldout_count(1034, 0, 0.05) == 52  # the folk tunes: 982 lines left to train on, not 34
    assert heldout_count(10, 0, 0.05) == 1  # at least one line
    assert heldout_count(100_000, 0, 0.05) == HELDOUT_CAP == 1000
    assert heldout_count(100_000, 250, 0.05) == 250  # an explicit size is kept
    assert DataConfig.heldout_size == 0 and DataConfig.heldout_share == 0.05


def test_configs_with_an_explicit_held_out_size_keep_it():
    expected = {"coco_seqgan": 1000, "coco_mle": 1000, "fortunes_mle": 100, "s2s_seqgan": 200, "text": 0}
    for name, size in expected.items():
        cfg = load_config(ROOT / "configs" / f"{name}.yaml")
        assert cfg.data.heldout_size == size, name
    assert load_config(ROOT / "configs" / "coco_seqgan.yaml").data.test  # COCO's test set is its own file


def test_held_out_settings_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="both set: keep one"):
        DataConfig(source="text", train="x.txt", heldout_size=10, heldout_share=0.1)
    with pytest.raises(ConfigError, match="data.heldout_share=1.5: give a share between 0 and 1"):
        DataConfig(source="text", train="x.txt", heldout_share=1.5)
    with pytest.raises(ConfigError, match="data.heldout_size=-1: give a line count"):
        DataConfig(source="text", train="x.txt", heldout_size=-1)


def test_warns_when_many_lines_are_truncated_and_names_the_max_len_that_keeps_95_percent(tmp_path):
    lines = clean_lines(80, 6) + clean_lines(20, 30)  # 20% of the lines have 31 words
    s = summary(tmp_path, lines, max_len=10)
    assert nearest_rank([len(line.split()) for line in lines], 0.95) == 31
    text = warning_about(s, "20 of the 100 lines (20.0%) are longer than data.max_len=10")
    assert "were truncated; data.max_len=31 keeps 95% of them whole" in text
    dropped = summary(tmp_path, lines, max_len=10, overflow="drop")
    assert "were dropped" in warning_about(dropped, "longer than data.max_len=10") and dropped["dropped"] == 20
    assert summary(tmp_path, clean_lines(95, 6) + clean_lines(5, 30), max_len=10)["warnings"] == []  # 5%: fine


def test_warns_when_the_held_out_part_is_large(tmp_path):
    s = summary(tmp_path, clean_lines(100), heldout_size=30)
    assert "data.heldout_size=30 holds out 30.0% of the lines" in warning_about(s, "holds out")
    assert summary(tmp_path, clean_lines(100), heldout_size=20)["warnings"] == []


def test_warns_about_ansi_escapes_and_control_characters(tmp_path):
    lines = clean_lines(100)
    lines[6] = "\x1b[31mred words\x1b[0m here"
    s = summary(tmp_path, lines)
    assert "1 of the 100 lines hold ANSI escape codes (terminal colours), first at line 7" in warning_about(s, "ANSI")
    lines[6] = "a bell \x07 rings"
    assert "1 of the 100 lines hold control characters, first at line 7" in warning_about(summary(tmp_path, lines), "control")


def test_warns_about_many_exact_duplicates(tmp_path):
    lines = clean_lines(85) + ["the same line again"] * 15
    assert "14 of the 100 lines (14.0%) repeat an earlier line (most often 'the same line again')" in warning_about(
        summary(tmp_path, lines), "repeat"
    )
    assert summary(tmp_path, clean_lines(95) + ["the same line again"] * 5)["warnings"] == []


def test_warns_about_many_one_token_lines(tmp_path):
    lines = clean_lines(90) + [f"alone{i}" for i in range(10)]
    s = summary(tmp_path, lines, heldout_size=1)
    assert "single token" in warning_about(s, "single token") and s["length"]["one_token"] >= 9


def test_fortune_separators_are_both_duplicates_and_one_token_lines(tmp_path):
    lines = [x for pair in zip(clean_lines(80), ["%"] * 80, strict=True) for x in pair]
    s = summary(tmp_path, lines)
    warning_about(s, "repeat an earlier line (most often '%')")
    warning_about(s, "single token")


def test_warns_about_whitespace_in_a_character_corpus_and_drop_spaces_removes_it(tmp_path):
    poems = [" ".join("床前明月光疑是地上霜"[i % 5 : i % 5 + 5] + str(i)) for i in range(100)]  # "床 前 明 月 光 1 7"
    spaced = summary(tmp_path, poems, tokenizer="char")
    assert "data.drop_spaces=true" in warning_about(spaced, "whitespace")
    dropped = summary(tmp_path, poems, tokenizer="char", drop_spaces=True)
    assert dropped["warnings"] == [] and dropped["length"]["max"] == 7 and spaced["length"]["max"] == 13
    assert summary(tmp_path, clean_lines(100), tokenizer="char")["warnings"] == []  # English: spaces between words are fine


def test_drop_spaces_tokenizer_reads_spaced_characters_and_saves_the_choice(tmp_path):
    tok = build_tokenizer("char", ["床 前 明 月 光"], options=None)
    assert len(tok.encode("床 前 明 月 光")) == 9
    from seqgan.data.tokenizers import VocabOptions

    tok = build_tokenizer("char", ["床 前 明 月 光"], options=VocabOptions(drop_spaces=True))
    ids = tok.encode("床 前 明 月 光")
    assert len(ids) == 5 and tok.decode(ids) == "床前明月光" and tok.vocab_size == 4 + 5
    tok.save(tmp_path / "tok.json")
    assert load_tokenizer(tmp_path / "tok.json").encode("床 前") == tok.encode("床前")
    with pytest.raises(ConfigError, match="data.drop_spaces applies to data.tokenizer=char only"):
        DataConfig(source="text", train="x.txt", tokenizer="word", drop_spaces=True)


def test_the_vocabulary_is_counted_after_truncation(tmp_path):
    """One huge line (60,000 distinct words) must not make a 60,000-token vocabulary."""
    huge = " ".join(f"w{i}" for i in range(60_000))
    lines = clean_lines(200) + [huge]
    data = make_text_data(DataConfig(source="text", train=_write(tmp_path, lines), max_len=10, heldout_size=1))
    assert data.tokenizer.vocab_size < 300
    assert data.report["summary"]["length"]["max"] == 60_000  # the report still says how long the line was
    dropped = make_text_data(
        DataConfig(source="text", train=_write(tmp_path, lines), max_len=10, heldout_size=1, overflow="drop")
    )
    assert "w0" not in dropped.tokenizer.tokens  # a dropped line adds nothing
    assert "w0" in data.tokenizer.tokens and "w10" not in data.tokenizer.tokens


def test_bpe_reads_the_first_words_of_a_long_line():
    assert first_words("a b  c d", 2) == "a b " and first_words("a b", 5) == "a b" and first_words("", 3) == ""


def _write(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


TINY = """
    pretrain.epochs=1 pretrain.batch_size=8 d_pretrain.steps=1 d_pretrain.num_negatives=16
    adversarial.epochs=1 adversarial.batch_size=4 adversarial.num_negatives=16 adversarial.rollout_num=2
    discriminator.batch_size=8 eval.d_samples=8 eval.bleu_samples=8 eval.final_samples=2
    generator.embed_dim=8 generator.hidden_dim=8 discriminator.embed_dim=8 discriminator.filter_sizes=[1,2]
    discriminator.num_filters=[4,4] data.max_len=8
""".split()


def test_train_prints_the_summary_and_keeps_it_in_data_report(tmp_path, capsys):
    corpus = _write(tmp_path, clean_lines(60) + ["\x1b[1mbold\x1b[0m words"])
    assert main(["train", "configs/text.yaml", "--out", str(tmp_path / "run"), f"data.train={corpus}", *TINY]) == 0
    err = capsys.readouterr().err
    assert "61 lines read; 61 kept (100.0%)" in err and "held out: 3 lines (4.9% of 61)" in err
    assert "warning: 1 of the 61 lines hold ANSI escape codes" in err and "vocabulary:" in err
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert report["summary"]["heldout"] == 3 and len(report["summary"]["warnings"]) == 1
    assert main(["train", "configs/text.yaml", "--out", str(tmp_path / "q"), f"data.train={corpus}", "--quiet", *TINY]) == 0
    assert "lines read" not in capsys.readouterr().err
