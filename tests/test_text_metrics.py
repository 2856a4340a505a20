"""Text metrics: BLEU and Self-BLEU by hand and against NLTK (method1), distinct-n, copy rate, lengths."""

from __future__ import annotations

import math
import random

import pytest

from seqgan.metrics.text import bleu, copy_rate, distinct_n, length_stats, self_bleu, sequence_diversity, unique_fraction

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")

REFS = [s.split() for s in ["the cat sat on the mat", "a dog sat on the log"]]
ORDERS = (2, 3, 4, 5)


def nltk_mean_bleu(hypotheses, references_for, n):
    """NLTK sentence BLEU-n with method1 smoothing, averaged; `references_for(i)` gives hypothesis i's references."""
    smooth = nltk_bleu.SmoothingFunction().method1
    scores = [
        nltk_bleu.sentence_bleu(references_for(i), h, weights=(1.0 / n,) * n, smoothing_function=smooth)
        for i, h in enumerate(hypotheses)
    ]
    return math.fsum(scores) / len(scores)


def test_bleu_exact_match_up_to_four_grams():
    # 1- to 4-grams all occur in a reference; of the two 5-grams only "the cat sat on the" does: p5 = 1/2.
    scores = bleu([["the", "cat", "sat", "on", "the", "log"]], REFS)
    assert scores[2] == pytest.approx(1.0, abs=1e-15)
    assert scores[4] == pytest.approx(1.0, abs=1e-15)
    assert scores[5] == pytest.approx(0.5**0.2, abs=1e-15)


def test_bleu_brevity_penalty_and_method1_smoothing():
    # "a dog on the mat": p1 = 5/5, p2 = 3/4, p3 = 1/3, p4 = 0/2 -> 0.1/2, p5 = 0/1 -> 0.1/1;
    # length 5 against closest reference length 6: BP = exp(1 - 6/5).
    scores = bleu([["a", "dog", "on", "the", "mat"]], REFS)
    bp = math.exp(-0.2)
    assert scores[2] == pytest.approx(bp * 0.75**0.5, abs=1e-15)
    assert scores[3] == pytest.approx(bp * (0.75 / 3) ** (1 / 3), abs=1e-15)
    assert scores[4] == pytest.approx(bp * (0.75 / 3 * 0.05) ** 0.25, abs=1e-15)
    assert scores[5] == pytest.approx(bp * (0.75 / 3 * 0.05 * 0.1) ** 0.2, abs=1e-15)


def test_bleu_is_the_mean_over_hypotheses_and_zero_without_unigram_matches():
    hyps = [["the", "cat", "sat", "on", "the", "log"], ["x", "y", "z"], []]
    assert bleu(hyps, REFS, orders=(5,))[5] == pytest.approx(0.5**0.2 / 3, abs=1e-15)


def test_self_bleu_uses_other_samples_by_position():
    # Samples 0 and 1 are copies of each other (BLEU 1); sample 2 shares no token (BLEU 0).
    samples = [["a", "b", "c"], ["a", "b", "c"], ["x", "y", "z"]]
    for n, score in self_bleu(samples, orders=(2, 3)).items():
        assert score == pytest.approx(2 / 3, abs=1e-15), n


def random_sentences(rng, count, vocab="abcdefgh"):
    return [[rng.choice(vocab) for _ in range(rng.randint(1, 12))] for _ in range(count)]


def test_bleu_matches_nltk_method1():
    rng = random.Random(0)
    hyps, refs = random_sentences(rng, 40), random_sentences(rng, 25)
    hyps += [refs[3], refs[3][:2], ["z"], ["a"]]  # exact copy, too short for 3-grams, no match, one token
    ours = bleu(hyps, refs, ORDERS)
    for n in ORDERS:
        assert ours[n] == pytest.approx(nltk_mean_bleu(hyps, lambda i: refs, n), abs=1e-12), n


def test_self_bleu_matches_nltk_method1():
    rng = random.Random(1)
    samples = random_sentences(rng, 30)
    samples += [samples[0], ["q"]]  # a duplicate and a sample sharing nothing
    ours = self_bleu(samples, ORDERS)
    for n in ORDERS:
        expected = nltk_mean_bleu(samples, lambda i: samples[:i] + samples[i + 1 :], n)
        assert ours[n] == pytest.approx(expected, abs=1e-12), n


def test_bleu_input_errors():
    with pytest.raises(ValueError, match="n >= 2"):
        bleu([["a"]], REFS, orders=(1, 2))
    with pytest.raises(ValueError, match="needs hypotheses and references"):
        bleu([], REFS)
    with pytest.raises(ValueError, match="at least 2 samples"):
        self_bleu([["a"]])


def test_distinct_n_by_hand():
    samples = [["a", "b", "a", "b"], ["a", "b"]]
    assert distinct_n(samples, 1) == 2 / 6
    assert distinct_n(samples, 2) == 2 / 4  # (a,b) x3, (b,a) x1
    assert distinct_n(samples, 3) == 2 / 2  # (a,b,a), (b,a,b)
    assert distinct_n([["a"]], 2) == 0.0


def test_unique_fraction_by_hand():
    assert unique_fraction([[1, 2], [1, 2], [2, 1], [3]]) == 3 / 4
    assert unique_fraction([["a"]] * 5) == 1 / 5
    d = sequence_diversity([[7, 7, 7], [7, 7, 7]])  # a collapsed generator
    assert d["unique_frac"] == 0.5 and d["distinct1"] == 1 / 6 and d["distinct2"] == 1 / 4
    with pytest.raises(ValueError, match="no samples"):
        unique_fraction([])


def test_copy_rate_by_hand():
    samples = [["a", "b"], ["a", "c"], ["a", "b"]]
    assert copy_rate(samples, [["a", "b"], ["c"], ["a", "b", "c"]]) == 2 / 3
    assert copy_rate([["a"]], [["a", "b"]]) == 0.0


def test_length_stats_by_hand():
    stats = length_stats([["a"], ["a", "b"], ["a", "b", "c"], ["a"] * 6])
    assert stats == {"mean": 3.0, "std": pytest.approx(math.sqrt(3.5), abs=1e-15), "min": 1.0, "max": 6.0}


def test_quatrain_form_accepts_the_corpus_form_and_nothing_else():
    from seqgan.metrics.poetry import is_quatrain, quatrain_share

    poem = "秦 川 雄 帝 宅 ， 函 谷 壮 皇 居 。 绮 殿 千 寻 起 ， 离 宫 百 雉 余 。".split()
    assert is_quatrain(poem)
    assert not is_quatrain(poem[:-1])  # one character short
    assert not is_quatrain(poem[:5] + ["。"] + poem[6:])  # the first clause must end in a comma
    assert not is_quatrain(poem[:2] + ["，"] + poem[3:])  # punctuation inside a clause
    assert not is_quatrain(poem + ["。"])
    seven = "a b c d e f g ， a b c d e f g 。 a b c d e f g ， a b c d e f g 。".split()
    assert is_quatrain(seven, clause_len=7) and not is_quatrain(seven)
    assert quatrain_share([poem, poem[:-1], poem, poem]) == 0.75 and quatrain_share([]) == 0.0
