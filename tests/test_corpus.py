"""Corpus files: reading, one-line errors with file and line, EOS/PAD layout, overflow counts, splits, masks."""

from __future__ import annotations

import json

import pytest
import torch

from seqgan.data.corpus import (
    CorpusError,
    encode_corpus,
    read_corpus,
    sequence_lengths,
    split_heldout,
    token_mask,
)
from seqgan.data.tokenizers import EOS, PAD, UNK, build_tokenizer


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_text_file_skips_and_counts_blank_lines(tmp_path):
    path = write(tmp_path, "train.txt", "a b\n\n  \nc d\r\ne\n")
    corpus = read_corpus(path)
    assert corpus.lines == ["a b", "c d", "e"]
    assert corpus.line_numbers == [1, 4, 5]
    assert corpus.blank_lines == 2


def test_jsonl_file_with_custom_field(tmp_path):
    rows = [{"caption": "a b", "id": 1}, {"caption": "床前明月光"}]
    path = write(tmp_path, "train.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    corpus = read_corpus(path, text_field="caption")
    assert corpus.lines == ["a b", "床前明月光"]
    assert corpus.blank_lines == 1


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match=r"nope\.txt: corpus file not found; check the path"):
        read_corpus(tmp_path / "nope.txt")


BAD_FILES = [
    ("empty.txt", "\n \n", r"empty\.txt: empty corpus \(2 blank lines, no text\); give a file"),
    ("latin.txt", b"ok line\ncaf\xe9 au lait\n", r"latin\.txt:2: not valid UTF-8 \(byte offset 11.*re-save the file as UTF-8"),
    ("bad.jsonl", '{"text": "a"}\n{"text": \n', r"bad\.jsonl:2: invalid JSON .*write one JSON object a line"),
    ("nofield.jsonl", '{"text": "a"}\n\n{"caption": "b"}\n', r"nofield\.jsonl:3: no 'text' field; every line needs"),
    ("array.jsonl", '["text"]\n', r"array\.jsonl:1: no 'text' field"),
    ("num.jsonl", '{"text": "a"}\n{"text": 5}\n', r"num\.jsonl:2: field 'text' is int, not a string"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_gives_one_line_error_with_file_and_line(tmp_path, name, content, message):
    with pytest.raises(CorpusError, match=message) as err:
        read_corpus(write(tmp_path, name, content))
    assert "\n" not in str(err.value)


TOK = build_tokenizer("word", ["a b c d e f"])  # a=4, b=5, ... f=9


def test_eos_and_padding_layout():
    tokens, report = encode_corpus(["a b", "c d e f", "a z"], TOK, max_len=4)
    expected = torch.tensor(
        [
            [4, 5, EOS, PAD, PAD],
            [6, 7, 8, 9, EOS],
            [4, UNK, EOS, PAD, PAD],
        ]
    )
    assert tokens.dtype == torch.long
    assert torch.equal(tokens, expected)
    assert report == {
        "lines": 3,
        "kept": 3,
        "truncated": 0,
        "dropped": 0,
        "empty": 0,
        "tokens": 8,
        "unk_tokens": 1,
        "longest": 4,
        "max_len": 4,
    }


def test_truncate_keeps_room_for_eos_and_counts():
    tokens, report = encode_corpus(["a b c d e f", "a b", "a b c"], TOK, max_len=2)
    assert torch.equal(tokens, torch.tensor([[4, 5, EOS], [4, 5, EOS], [4, 5, EOS]]))
    assert (report["truncated"], report["dropped"], report["kept"], report["longest"]) == (2, 0, 3, 6)


def test_drop_leaves_long_lines_out_and_counts():
    tokens, report = encode_corpus(["a b c d e f", "a b", "a b c"], TOK, max_len=2, overflow="drop")
    assert torch.equal(tokens, torch.tensor([[4, 5, EOS]]))
    assert (report["truncated"], report["dropped"], report["kept"]) == (0, 2, 1)


def test_all_dropped_gives_empty_tensor_of_the_right_width():
    tokens, report = encode_corpus(["a b c"], TOK, max_len=2, overflow="drop")
    assert tokens.shape == (0, 3)
    assert report["dropped"] == 1


def test_bad_overflow_and_max_len():
    with pytest.raises(CorpusError, match="overflow='cut'"):
        encode_corpus(["a"], TOK, max_len=2, overflow="cut")
    with pytest.raises(CorpusError, match="max_len=0"):
        encode_corpus(["a"], TOK, max_len=0)


def test_token_mask_up_to_and_including_first_eos():
    tokens = torch.tensor(
        [
            [4, 5, EOS, PAD, PAD],
            [EOS, PAD, PAD, EOS, PAD],
            [4, 5, 6, 7, 8],  # no EOS: a sample that ran to the end
        ]
    )
    expected = torch.tensor(
        [
            [True, True, True, False, False],
            [True, False, False, False, False],
            [True, True, True, True, True],
        ]
    )
    assert torch.equal(token_mask(tokens), expected)
    assert sequence_lengths(tokens).tolist() == [3, 1, 5]


def test_split_is_seeded_disjoint_and_complete():
    train, held = split_heldout(100, 10, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert sorted(train + held) == list(range(100))
    assert (train, held) == split_heldout(100, 10, seed=3)
    assert held != split_heldout(100, 10, seed=4)[1]
    assert len(split_heldout(100, 0.25, seed=0)[1]) == 25


@pytest.mark.parametrize("size", [0, 100, 1.0, 0.0])
def test_split_size_must_leave_both_parts(size):
    with pytest.raises(CorpusError, match=r"data\.heldout_(size|share)=.*(lower|line count)"):
        split_heldout(100, size, seed=0)


def test_a_one_line_corpus_cannot_be_split_and_says_so():
    with pytest.raises(CorpusError, match="data.train has 1 non-blank line.*at least 2 lines"):
        split_heldout(1, 1, seed=0)


def test_nltk_word_split_gives_bleu_references_in_the_tokenizer_words(tmp_path):
    """With data.word_split=nltk the stored lines (BLEU references, copy rate) are split like samples are."""
    from seqgan.config import ConfigError, DataConfig
    from seqgan.data.text import make_text_data

    train = write(tmp_path, "train.txt", "A dog at night.\nTwo men, one bench.\n" * 3)
    test = write(tmp_path, "test.txt", "A cat at night.\n")
    cfg = DataConfig(source="text", train=str(train), test=str(test), word_split="nltk", lowercase=True, heldout_size=1)
    data = make_text_data(cfg)
    assert data.test_lines == ["a cat at night ."]
    assert set(data.train_lines + data.heldout_lines) == {"a dog at night .", "two men , one bench ."}
    assert data.tokenizer.decode(data.test[0].tolist()) == "a <unk> at night ."  # "cat" never trained on
    with pytest.raises(ConfigError, match="word_split applies to data.tokenizer=word only"):
        DataConfig(source="text", train=str(train), tokenizer="char", word_split="nltk")
    with pytest.raises(ConfigError, match="use 'whitespace' or 'nltk'"):
        DataConfig(source="text", train=str(train), word_split="treebank")
