"""A real labelled corpus: the fortunes converter on a fake package folder, the held-out condition
classifier on rigged corpora, per-condition BLEU and classifier accuracy by hand, bad inputs, and
the command line from training to `evaluate --classifier`."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch

from seqgan.cli.main import main
from seqgan.config import ConfigError
from seqgan.data.conditions import ConditionSpace
from seqgan.data.corpus import CorpusError
from seqgan.data.text import TextData
from seqgan.data.tokenizers import EOS, PAD, SPECIAL_TOKENS, VocabTokenizer
from seqgan.metrics.classifier import ClassifierError, NgramClassifier, featurize, train_classifier, train_on_files
from seqgan.metrics.text_eval import per_condition_text_metrics

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("prepare_fortunes", ROOT / "scripts" / "prepare_fortunes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


prep = load_script()

# ----------------------------------------------------------------------------- the converter

ALPHA = [
    "Short saying one.",
    "A wrapped saying that goes on\nand on over two lines.",  # prose wrapped at the margin: one line once joined
    "Attributed   saying\there.\n\t\t-- Somebody",  # the attribution goes, whitespace runs collapse
    "\tAn indented\n\tpoem line",  # multi-line
    "Dialogue:\n\nwith a blank line.",  # multi-line
    "one two three four five six seven eight nine ten eleven twelve thirteen",  # 13 words: too long
    "Short saying one.",  # duplicate
    "Shared text.",  # also in beta: ambiguous
] + [f"alpha saying number {i}" for i in range(20)]
BETA = ["Shared text."] + [f"beta saying number {i}" for i in range(20)]


def fortune_file(path: Path, entries: list[str]) -> None:
    path.write_text("\n%\n".join(entries) + "\n%\n", encoding="utf-8")


@pytest.fixture
def fortunes(tmp_path: Path) -> Path:
    folder = tmp_path / "usr" / "share" / "games" / "fortunes"
    folder.mkdir(parents=True)
    fortune_file(folder / "alpha", ALPHA)
    fortune_file(folder / "beta", BETA)
    fortune_file(folder / "gamma", ["too few", "lines here"])
    (folder / "alpha.dat").write_bytes(b"\x00\xff\xfe strfile index")  # not text: must not be read
    (folder / "alpha.u8").symlink_to("alpha")  # the package's links: not categories of their own
    (folder / "off").mkdir()
    fortune_file(folder / "off" / "rude", ["not read"])
    return folder


def read_split(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def test_converter_keeps_one_liners_of_the_categories_with_enough_lines(fortunes, tmp_path):
    report = prep.prepare(fortunes, tmp_path / "out", max_words=12, min_lines=10, valid=0.1, test=0.2, seed=0)
    alpha = report["categories"]["alpha"]
    assert (alpha["entries"], alpha["multi_line"], alpha["too_long"], alpha["duplicates"], alpha["ambiguous"]) == (28, 2, 1, 1, 1)
    assert alpha["kept"] == 23 and alpha["attribution_dropped"] == 1 and report["categories"]["beta"]["kept"] == 20
    assert set(report["categories"]) == {"alpha", "beta"} and report["other_categories"] == {"gamma": 2}
    rows = [r for s in ("train", "valid", "test") for r in read_split(tmp_path / "out", s)]
    texts = {r["text"] for r in rows}
    assert "A wrapped saying that goes on and on over two lines." in texts and "Attributed saying here." in texts
    assert not any("poem" in t or "Dialogue" in t or "thirteen" in t or "Shared" in t for t in texts)
    assert len(texts) == len(rows) == 43 and {r["category"] for r in rows} == {"alpha", "beta"}
    counts = {s: len(read_split(tmp_path / "out", s)) for s in ("train", "valid", "test")}
    assert (
        counts == report["lines"] == {"train": 16 + 14, "valid": 2 + 2, "test": 5 + 4}
    )  # round(0.1 n), round(0.2 n) per category
    assert alpha["splits"] == {"train": 16, "valid": 2, "test": 5}


def test_converter_split_is_seeded_and_disjoint(fortunes, tmp_path):
    def run(seed: int, name: str) -> dict[str, list[dict]]:
        prep.prepare(fortunes, tmp_path / name, max_words=12, min_lines=10, seed=seed)
        return {s: read_split(tmp_path / name, s) for s in ("train", "valid", "test")}

    a, again, other = run(0, "a"), run(0, "again"), run(1, "other")
    assert a == again and a["test"] != other["test"]
    sets = [{r["text"] for r in a[s]} for s in ("train", "valid", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert {r["text"] for r in other["train"] + other["valid"] + other["test"]} == set().union(*sets)


def test_converter_names_its_categories_and_explains_bad_input(fortunes, tmp_path, capsys):
    report = prep.prepare(fortunes, tmp_path / "named", ["beta", "alpha"], max_words=12, min_lines=10)
    assert list(report["categories"]) == ["alpha", "beta"]
    for kwargs, message in [
        (
            {"categories": ["alpha", "delta"]},
            r"no fortune file delta; one-liners per category: alpha \(24\), beta \(21\), gamma \(2\)",
        ),
        ({"categories": ["alpha", "gamma"]}, r"gamma \(2\) have fewer than --min-lines=10"),
        ({"min_lines": 22}, "fewer than 2 categories have >= 22 one-liners"),
        ({"test": 0.0}, "fractions with 0 <= valid, 0 < test"),
    ]:
        with pytest.raises(prep.PrepareError, match=message):
            prep.prepare(fortunes, tmp_path / "bad", **{"max_words": 12, "min_lines": 10, **kwargs})
    assert prep.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "not a folder; pass the extracted usr/share/games/fortunes folder" in capsys.readouterr().err
    assert prep.main([str(fortunes), "--out", str(tmp_path / "cli"), "--min-lines", "10", "--max-words", "12"]) == 0
    assert "lines: train 33, valid 4, test 6" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the classifier

FILLER = "the a of and to in is it that was for on".split()
MARKERS = [[f"m{k}x{j}" for j in range(5)] for k in range(4)]


def rigged_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Lines of 3 shared filler words and 2 marker words of their class: separable by the markers alone."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        k = i % 4
        words = rng.sample(FILLER, 3) + rng.sample(MARKERS[k], 2)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(f"class{k}")
    return texts, labels


def test_classifier_learns_a_separable_corpus_and_not_shuffled_labels():
    texts, labels = rigged_corpus(200, seed=0)
    held_texts, held_labels = rigged_corpus(200, seed=1)
    model = train_classifier(texts, labels, "kind")
    assert model.labels == ["class0", "class1", "class2", "class3"]
    assert model.accuracy(held_texts, held_labels) == 1.0
    shuffled = labels[:]
    random.Random(2).shuffle(shuffled)  # labels no longer depend on the text
    chance = train_classifier(texts, shuffled, "kind").accuracy(held_texts, held_labels)
    assert chance < 0.4  # 1/4 is chance; 200 held-out lines put 0.4 beyond 3 standard deviations


def test_classifier_features_ignore_spacing_case_and_unknown_tokens():
    assert featurize("End. <unk> NOW") == featurize("end .  now")
    assert featurize("a b") == ["b:<s> a", "b:a b", "b:b </s>", "w:a", "w:b"]


def test_classifier_saves_and_loads_exactly(tmp_path):
    texts, labels = rigged_corpus(40, seed=0)
    model = train_classifier(texts, labels, "kind")
    model.save(tmp_path / "clf")
    again = NgramClassifier.load(tmp_path / "clf")
    assert again.label_field == "kind" and again.labels == model.labels
    assert torch.equal(again.logits(texts), model.logits(texts))
    with pytest.raises(ClassifierError, match="not a classifier folder"):
        NgramClassifier.load(tmp_path / "missing")
    (tmp_path / "clf" / "classifier.json").write_text("{", encoding="utf-8")
    with pytest.raises(ClassifierError, match="unreadable classifier"):
        NgramClassifier.load(tmp_path / "clf")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_classifier_training_input_is_checked(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": "a b", "kind": "x"}, {"text": "b c", "kind": "y"}] * 3)
    test = write_jsonl(tmp_path / "test.jsonl", [{"text": "a b", "kind": "x"}, {"text": "c", "kind": "z"}])
    with pytest.raises(
        CorpusError, match=r"test\.jsonl:2: label kind='z' does not occur in the training file .*known values: x, y"
    ):
        train_on_files(train, test, "kind")
    with pytest.raises(CorpusError, match=r"train\.jsonl:1: no label field 'genre'"):
        train_on_files(train, train, "genre")
    with pytest.raises(ClassifierError, match=r"hold 1 value\(s\) of .kind.; a classifier needs at least 2"):
        train_classifier(["a", "b"], ["x", "x"], "kind")
    with pytest.raises(ClassifierError, match="no n-gram occurs in 3 or more"):
        train_classifier(["a", "b"], ["x", "y"], "kind", min_count=3)


# ----------------------------------------------------------------------------- per-condition metrics by hand

TOKENIZER = VocabTokenizer("word", [*SPECIAL_TOKENS, "a", "b", "c"])
A, B, C = 4, 5, 6


class StubGenerator:
    """Emits `filler[c]` at every position for a sample of class c (never the end token)."""

    def __init__(self, filler: list[int]) -> None:
        self.filler = torch.tensor(filler)

    def sample(self, num, length, rng, temperature=1.0, batch_size=1000, cond=None, top_k=None, top_p=None):
        return self.filler[cond[:, 0]].unsqueeze(1).expand(num, length).clone()


def hand_data() -> TextData:
    """Test lines 'a a a a' and 'b b b b' of class x, 'b c' of class y; max_len 4."""
    rows = torch.tensor([[A, A, A, A, EOS], [B, B, B, B, EOS], [B, C, EOS, PAD, PAD]])
    cond = torch.tensor([[0], [0], [1]])
    lines = ["a a a a", "b b b b", "b c"]
    space = ConditionSpace("label", ("kind",), (("x", "y"),))
    return TextData(TOKENIZER, rows, rows, rows, None, lines, lines, lines, {}, space, cond, cond, cond, None, cond)


def hand_classifier() -> NgramClassifier:
    return train_classifier(["a", "a a", "a a a", "b", "b c", "c b b"], ["x", "x", "x", "y", "y", "y"], "kind", min_count=1)


def test_per_condition_bleu_and_classifier_accuracy_by_hand():
    per, overall = per_condition_text_metrics(
        StubGenerator([A, B]),
        hand_data(),
        6,
        torch.Generator().manual_seed(0),
        temperature=1.0,
        batch_size=100,
        classifier=hand_classifier(),
    )
    x, y = per["kind=x"], per["kind=y"]
    assert x["num_samples"] == y["num_samples"] == 3
    # x: 'a a a a a' against {'a a a a', 'b b b b'}: clipped precisions 4/5, 3/4, 2/3, 1/2, then none (0.1 / 1); BP = 1
    for n, want in {2: 0.6 ** (1 / 2), 3: 0.4 ** (1 / 3), 4: 0.2 ** (1 / 4), 5: 0.02 ** (1 / 5)}.items():
        assert math.isclose(x[f"bleu{n}_test"], want, rel_tol=1e-9), n
    # y: 'b b b b b' against {'b c'} only (not x's 'b b b b'): 1/5, then 0.1/4, 0.1/3, 0.1/2, 0.1/1
    precisions = [1 / 5, 0.1 / 4, 0.1 / 3, 0.1 / 2, 0.1]
    for n in (2, 3, 4, 5):
        assert math.isclose(y[f"bleu{n}_test"], math.prod(precisions[:n]) ** (1 / n), rel_tol=1e-9), n
    assert x["self_bleu4"] == y["self_bleu4"] == 1.0  # identical samples
    # the classifier reads 'a a a a a' as x and 'b b b b b' as y; of the test lines it gets 'b b b b' (x) wrong
    assert (x["cond_acc"], y["cond_acc"], x["cond_acc_real"], y["cond_acc_real"]) == (1.0, 1.0, 0.5, 1.0)
    assert overall == {"cond_acc": 1.0, "cond_acc_real": 2 / 3}

    swapped, overall = per_condition_text_metrics(
        StubGenerator([B, A]),
        hand_data(),
        6,
        torch.Generator().manual_seed(0),
        temperature=1.0,
        batch_size=100,
        classifier=hand_classifier(),
    )
    assert swapped["kind=x"]["cond_acc"] == swapped["kind=y"]["cond_acc"] == overall["cond_acc"] == 0.0
    without, overall = per_condition_text_metrics(
        StubGenerator([A, B]), hand_data(), 6, torch.Generator(), temperature=1.0, batch_size=100
    )
    assert overall == {} and "cond_acc" not in without["kind=x"] and without["kind=x"]["bleu4_test"] == x["bleu4_test"]
    with pytest.raises(
        ConfigError, match="-n 3 gives fewer than 2 samples for each of the 2 conditions of the test lines; use -n >= 4"
    ):
        per_condition_text_metrics(StubGenerator([A, B]), hand_data(), 3, torch.Generator(), temperature=1.0, batch_size=100)


# ----------------------------------------------------------------------------- the command line

TECH = "the computer program crashed again with a memory error in the kernel".split()
LOVE = "my wife and her husband married in june with love and a kiss".split()


def corpus(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"text": " ".join(rng.sample(words, 6)), "category": name}
        for i in range(n)
        for name, words in [(("tech", "love")[i % 2], (TECH, LOVE)[i % 2])]
    ]


TINY = """
    data.heldout_size=4 pretrain.epochs=2 pretrain.batch_size=8 d_pretrain.steps=1 d_pretrain.num_negatives=16
    adversarial.epochs=1 adversarial.batch_size=4 adversarial.num_negatives=16 adversarial.rollout_num=2
    discriminator.batch_size=8 eval.every=1 eval.d_samples=8 eval.bleu_samples=8 eval.final_samples=4
    generator.embed_dim=8 generator.hidden_dim=8 discriminator.embed_dim=8 discriminator.num_filters=[4,4,4,4,4,4]
""".split()


def test_cli_trains_a_classifier_and_evaluates_per_condition_with_it(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", corpus(40, 0))
    valid = write_jsonl(tmp_path / "valid.jsonl", corpus(8, 1))
    test = write_jsonl(tmp_path / "test.jsonl", corpus(10, 2))
    clf = tmp_path / "clf"
    assert main(["classifier", "train", str(train), "--field", "category", "--test", str(test), "--out", str(clf)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == ["love", "tech"] and report["test_accuracy"] == 1.0 and report["num_test"] == 10

    run = tmp_path / "run"
    files = [f"data.train={train}", f"data.valid={valid}", f"data.test={test}"]
    assert main(["train", str(ROOT / "configs" / "fortunes_seqgan.yaml"), "--out", str(run), "--quiet", *files, *TINY]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "10", "--classifier", str(clf)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classifier"]["test_accuracy"] == 1.0 and 0 <= result["cond_acc"] <= 1 and result["cond_acc_real"] > 0.5
    per = result["per_condition"]
    assert sorted(per) == ["category=love", "category=tech"]
    keys = {"num_samples", "cond_acc", "cond_acc_real", "num_test", "nll_test"}
    keys |= {f"bleu{n}_test" for n in (2, 3, 4, 5)} | {f"self_bleu{n}" for n in (2, 3, 4, 5)}
    assert set(per["category=tech"]) == keys
    assert sum(p["num_samples"] for p in per.values()) == 10 and sum(p["num_test"] for p in per.values()) == 10
    assert math.isclose(sum(p["cond_acc"] for p in per.values()) / 2, result["cond_acc"])

    leaky = tmp_path / "leaky"
    assert main(["classifier", "train", str(test), "--field", "category", "--test", str(valid), "--out", str(leaky)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "10", "--classifier", str(leaky)]) == 2
    assert "which holds the run's test lines" in capsys.readouterr().err
    assert main(["evaluate", str(run), "-n", "3"]) == 2
    assert "use -n >= 4" in capsys.readouterr().err
    other = write_jsonl(tmp_path / "other.jsonl", [{"text": r["text"], "topic": r["category"]} for r in corpus(20, 3)])
    assert main(["classifier", "train", str(other), "--field", "topic", "--test", str(other), "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--classifier", str(tmp_path / "o")]) == 2
    assert "the classifier predicts 'topic', but the run has label fields category" in capsys.readouterr().err


def test_classifier_only_judges_label_conditioned_text_runs(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", corpus(20, 0))
    test = write_jsonl(tmp_path / "test.jsonl", corpus(6, 1))
    assert (
        main(["classifier", "train", str(train), "--field", "category", "--test", str(test), "--out", str(tmp_path / "c")]) == 0
    )
    run = tmp_path / "oracle"
    smoke = ROOT / "configs" / "smoke.yaml"
    assert main(["train", str(smoke), "--out", str(run), "--quiet", "adversarial.epochs=0", "d_pretrain.steps=0"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "-n", "20", "--classifier", str(tmp_path / "c")]) == 2
    assert "judges samples of label-conditioned text runs" in capsys.readouterr().err
