"""Tokenisers: fixed special ids, round trips, unknown tokens, vocabulary limits, save/load."""

from __future__ import annotations

import json

import pytest

from seqgan.data.tokenizers import (
    BOS,
    EOS,
    PAD,
    UNK,
    BpeTokenizer,
    TokenizerError,
    VocabTokenizer,
    build_tokenizer,
    load_tokenizer,
)

LINES = [
    "a man riding a horse on a beach",
    "a dog sitting on a bench",
    "two men riding bikes down a street",
    "a cat on a red bench near the beach",
]
POEM = "床前明月光疑是地上霜"


def test_word_vocabulary_by_frequency_with_ties_broken_by_word():
    tok = build_tokenizer("word", ["b a c", "a b", "a d"], vocab_size=6)
    # counts: a=3, b=2, c=1, d=1 -> the tie c/d goes to c; specials take ids 0..3
    assert tok.tokens == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]
    assert tok.encode("a b c d") == [4, 5, UNK, UNK]
    assert tok.vocab_size == 6


def test_word_round_trip_and_lowercase():
    tok = build_tokenizer("word", LINES)
    assert tok.decode(tok.encode(LINES[2])) == LINES[2]
    assert tok.encode("A Dog") == [UNK, UNK]
    lower = build_tokenizer("word", LINES, lowercase=True)
    assert lower.decode(lower.encode("A Dog")) == "a dog"


def test_nltk_word_split_separates_punctuation_and_clitics(tmp_path):
    """data.word_split=nltk: the Texygen COCO vocabulary, where "night." is two words."""
    lines = ["several people skiing at night.", "a man's dog, by a bench."]
    tok = build_tokenizer("word", lines, split="nltk")
    assert tok.split("A man's dog at night.") == ["A", "man", "'s", "dog", "at", "night", "."]
    assert {".", ",", "'s", "night", "bench"} <= set(tok.tokens) and "night." not in tok.tokens
    assert tok.decode(tok.encode("a man's dog at night.")) == "a man 's dog at night ."
    whitespace = build_tokenizer("word", lines)
    assert "night." in whitespace.tokens and whitespace.split("at night.") == ["at", "night."]
    tok.save(tmp_path / "vocab.json")
    again = load_tokenizer(tmp_path / "vocab.json")
    assert again.split_rule == "nltk" and again.encode("a dog at night.") == tok.encode("a dog at night.")
    # a file written before word_split existed reads as whitespace splitting
    payload = json.loads((tmp_path / "vocab.json").read_text())
    del payload["split"]
    (tmp_path / "old.json").write_text(json.dumps(payload))
    assert load_tokenizer(tmp_path / "old.json").split("at night.") == ["at", "night."]
    with pytest.raises(TokenizerError, match="word tokenizers only"):
        build_tokenizer("bpe", lines, vocab_size=50, split="nltk")
    with pytest.raises(TokenizerError, match="split='spaces'"):
        build_tokenizer("word", lines, split="spaces")


def test_decode_skips_pad_and_bos_and_stops_at_eos():
    tok = build_tokenizer("word", LINES)
    ids = tok.encode("a dog")
    assert tok.decode([BOS, *ids, EOS, *ids, PAD]) == "a dog"
    assert tok.decode([ids[0], UNK]) == "a <unk>"


def test_special_strings_in_text_are_unknown_not_control_tokens():
    tok = build_tokenizer("word", ["<eos> <pad> a"])
    assert tok.encode("<eos> <pad> a") == [UNK, UNK, 4]


def test_char_round_trip_chinese_and_spaces():
    tok = build_tokenizer("char", [POEM, "ab c"])
    assert tok.decode(tok.encode(POEM)) == POEM
    assert tok.decode(tok.encode("ab c")) == "ab c"
    assert len(tok.encode(POEM)) == 10
    assert tok.encode("床X") == [tok.encode("床")[0], UNK]


def test_char_vocab_limit_keeps_most_frequent():
    tok = build_tokenizer("char", ["aaab", "bbc"], vocab_size=6)
    # a=3, b=3 tie -> both kept in order a, b; c dropped
    assert tok.tokens[4:] == ["a", "b"]
    assert tok.encode("abc") == [4, 5, UNK]


def test_bpe_round_trip_special_ids_and_limit():
    tok = build_tokenizer("bpe", LINES * 5, vocab_size=60)
    assert isinstance(tok, BpeTokenizer)
    assert [tok.hf.token_to_id(t) for t in ("<pad>", "<bos>", "<eos>", "<unk>")] == [PAD, BOS, EOS, UNK]
    assert tok.vocab_size <= 60
    for line in LINES:
        ids = tok.encode(line)
        assert min(ids) > UNK
        assert tok.decode(ids) == line
    assert UNK in tok.encode("a zebra")  # 'z' never seen in training


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_save_load_round_trip_gives_identical_ids(kind, tmp_path):
    tok = build_tokenizer(kind, LINES, vocab_size=40, lowercase=True)
    path = tmp_path / "vocab.json"
    tok.save(path)
    again = load_tokenizer(path)
    assert type(again) is type(tok)
    assert again.vocab_size == tok.vocab_size
    text = "A man on a Bench near the zebra"
    assert again.encode(text) == tok.encode(text)
    assert again.decode(again.encode(text)) == tok.decode(tok.encode(text))
    assert type(tok).load(path).encode(text) == tok.encode(text)
    assert not (tmp_path / "vocab.json.tmp").exists()


@pytest.mark.parametrize("size", [0, 3, 4])
def test_vocab_too_small_for_special_tokens(size):
    with pytest.raises(TokenizerError, match=f"vocab_size={size} is too small.*set vocab_size >= 5"):
        build_tokenizer("word", LINES, vocab_size=size)


def test_unknown_kind_and_empty_training_text():
    with pytest.raises(TokenizerError, match="unknown tokenizer kind 'bytes'"):
        build_tokenizer("bytes", LINES)
    with pytest.raises(TokenizerError, match="every training line is empty"):
        build_tokenizer("char", ["", "  "])


def test_load_errors(tmp_path):
    with pytest.raises(TokenizerError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(TokenizerError, match="not a seqgan tokenizer file"):
        load_tokenizer(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"version": 1, "kind": "word", "lowercase": False, "tokens": ["a", "b", "c", "d"]}))
    with pytest.raises(TokenizerError, match=r"wrong\.json: word vocabulary must start with"):
        load_tokenizer(wrong)
    wrong.write_text(json.dumps({"version": 1, "kind": "bpe", "hf_tokenizer": {"model": 3}}))
    with pytest.raises(TokenizerError, match=r"wrong\.json: damaged bpe tokenizer file"):
        load_tokenizer(wrong)
    build_tokenizer("word", LINES).save(bad)
    with pytest.raises(TokenizerError, match="holds a word tokenizer, not a BpeTokenizer"):
        BpeTokenizer.load(bad)
    assert isinstance(VocabTokenizer.load(bad), VocabTokenizer)
