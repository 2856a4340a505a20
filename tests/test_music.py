"""Validity of ABC folk tunes (seqgan.metrics.music) on hand-written tunes, and the recipe's
splitting and joining of Essen ABC files (scripts/prepare_folk_tunes.py) on a tiny file."""

from __future__ import annotations

import importlib.util
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from seqgan.metrics.music import (
    abc_parse_share,
    bar_checks,
    bar_duration,
    bar_share,
    bars,
    note_length,
    read_tune,
    to_abc,
    whole_tune_share,
)

ROOT = Path(__file__).resolve().parents[1]
VALID = "M:3/4 L:1/8 K:F CC|F2ACCC|F2A4|c2B2A2|G6|"  # pick-up of 2 eighths, then bars of 6
WRONG_BAR = "M:3/4 L:1/8 K:F CC|F2ACCC|F2A4c|c2B2A2|G6|"  # the third bar holds 7 eighths
GARBAGE = "hello, world! 123"


def load_recipe():
    spec = importlib.util.spec_from_file_location("prepare_folk_tunes", ROOT / "scripts" / "prepare_folk_tunes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_read_tune_gives_the_header_fields():
    tune = read_tune(VALID)
    assert (tune.metre, tune.unit, tune.key, tune.body) == (Fraction(3, 4), Fraction(1, 8), "F", "CC|F2ACCC|F2A4|c2B2A2|G6|")
    assert read_tune(GARBAGE) is None
    assert read_tune("M:0/4 L:1/8 K:F C") is None


@pytest.mark.parametrize(
    ("suffix", "units"), [("", 1), ("2", 2), ("12", 12), ("3/2", Fraction(3, 2)), ("/2", Fraction(1, 2)), ("/", Fraction(1, 2))]
)
def test_note_lengths(suffix, units):
    assert note_length(suffix) == units


def test_bar_duration_reads_accidentals_octaves_rests_and_ties():
    assert bar_duration("^F,2=c'/2_B3/2z4") == 2 + Fraction(1, 2) + Fraction(3, 2) + 4
    assert bar_duration("c2-c2 d") == 5  # a tie and a space take no time
    assert bar_duration("[CEG]2") is None  # chords are not read
    assert bar_duration("c//") is None
    assert bar_duration("c/0") is None  # not a division by zero


def test_bars_split_at_every_kind_of_bar_line():
    assert bars("|:AB|c2||d:|e|]") == ["AB", "c2", "d", "e"]


def test_a_valid_tune_passes_the_bar_check():
    assert bar_checks(VALID) == [True] * 5
    assert bar_share([VALID]) == 1.0
    assert whole_tune_share([VALID]) == 1.0


def test_a_wrong_bar_length_fails_the_bar_check():
    assert bar_checks(WRONG_BAR) == [True, True, False, True, True]
    assert bar_share([WRONG_BAR]) == pytest.approx(0.8)
    assert whole_tune_share([VALID, WRONG_BAR]) == 0.5


def test_a_short_bar_counts_only_at_either_end():
    assert bar_checks("M:2/4 L:1/8 K:C C|D4|E2|F4|G2") == [True, True, False, True, True]


def test_garbage_fails_the_bar_check():
    assert bar_checks(GARBAGE) == [False]
    assert bar_checks("M:2/4 L:1/8 K:C ") == [False]  # no bar at all
    assert bar_checks("M:2/4 L:1/8 K:C xyz|C4|") == [False, True]
    assert bar_share([VALID, GARBAGE]) == 0.5
    assert bar_share([]) == 0.0


def test_to_abc_writes_the_header_lines():
    assert to_abc(VALID) == "X:1\nM:3/4\nL:1/8\nK:F\nCC|F2ACCC|F2A4|c2B2A2|G6|\n"


def test_music21_parses_a_valid_tune_and_not_garbage():
    pytest.importorskip("music21")
    assert abc_parse_share([VALID, WRONG_BAR]) == 1.0  # music21 does not check bar lengths
    assert abc_parse_share([GARBAGE]) == 0.0
    assert abc_parse_share([]) == 0.0


ESSEN = """% a comment
X:1
T: A title
N: A0001
M: 4/2
L: 1/4
K: G
G2 | _B2B2c2c2 | d4d4
z2d4d2 | d4z2
d2 | G8

X:2
T: Free rhythm
M: none
L: 1/4
K: E
A2A2A2 | A4

X:3
T: The first tune again
M: 4/2
L: 1/4
K: G
G2 | _B2B2c2c2 | d4d4
z2d4d2 | d4z2
d2 | G8
"""


def test_recipe_joins_phrases_with_a_bar_line_only_where_a_bar_is_full(tmp_path):
    recipe = load_recipe()
    (tmp_path / "essen.abc").write_text(ESSEN, encoding="latin-1")
    lines, counts = recipe.collect(tmp_path)
    # "d4d4" fills a bar of 4/2 = 8 quarters: its line end is a bar line; "d4z2" + "d2" share one bar
    assert lines == ["M:4/2 L:1/4 K:G G2|_B2B2c2c2|d4d4|z2d4d2|d4z2d2|G8"]
    assert counts == {"files": 1, "tunes": 3, "no_metre": 1, "duplicates": 1}
    assert all(bar_checks(lines[0]))


def test_recipe_splits_train_and_test_with_a_seed(tmp_path):
    recipe = load_recipe()
    folder = tmp_path / "abc"
    folder.mkdir()
    tunes = "".join(f"X:{i}\nM: 2/4\nL: 1/8\nK: C\nC4 | D{i + 1}\n\n" for i in range(20))
    (folder / "many.abc").write_text(tunes, encoding="latin-1")
    report = recipe.prepare(tmp_path / "a", 5, seed=1, folder=folder)
    recipe.prepare(tmp_path / "b", 5, seed=1, folder=folder)
    assert (report["kept"], report["train"], report["test"]) == (20, 15, 5)
    assert (tmp_path / "a" / "test.txt").read_text() == (tmp_path / "b" / "test.txt").read_text()
    with pytest.raises(recipe.PrepareError, match="--test 20"):
        recipe.prepare(tmp_path / "c", 20, seed=1, folder=folder)


def test_recipe_without_music21_says_how_to_install_it(monkeypatch, capsys):
    recipe = load_recipe()
    monkeypatch.setitem(sys.modules, "music21", None)  # import music21 raises ImportError
    assert recipe.main(["--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["prepare_folk_tunes: error: music21 is not installed: pip install music21 (it bundles the Essen folk songs)"]
