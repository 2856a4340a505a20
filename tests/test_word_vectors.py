"""Pre-trained word vectors (data.word_vectors): read for the vocabulary, frozen in G's and D's
embeddings beside a trainable part, saved with the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqgan.cli.main import main
from seqgan.config import ConfigError, load_config
from seqgan.data.word_vectors import WordVectorsError, read_word_vectors
from seqgan.models.discriminator import CNNDiscriminator
from seqgan.models.embedding import PretrainedEmbedding, use_word_vectors
from seqgan.models.generator import Generator
from seqgan.training.experiment import open_run
from test_text_training import SMALL_TEXT

ROOT = Path(__file__).resolve().parents[1]
LINES = [f"a {w} sat on the {v} mat ." for w in ("cat", "dog", "bird", "fox") for v in ("red", "big", "old")] * 3


def test_vectors_are_read_for_the_vocabulary_in_id_order(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("3 2\ncat 1 2\nzebra 9 9\ndog -1 0.5\ncat 7 7\n", encoding="utf-8")  # word2vec header; a repeat
    got = read_word_vectors(path, ["<pad>", "dog", "cat", "emu"], seed=0)
    assert got.found == 2 and got.missing == ["<pad>", "emu"]
    torch.testing.assert_close(got.vectors[1:3], torch.tensor([[-1.0, 0.5], [1.0, 2.0]]))  # the first line of a token
    again = read_word_vectors(path, ["<pad>", "dog", "cat", "emu"], seed=0)
    assert torch.equal(got.vectors, again.vectors)  # the missing rows are seeded
    spread = torch.tensor([1.0, 2.0, -1.0, 0.5]).std()
    big = read_word_vectors(path, ["cat", "dog", *[f"w{i}" for i in range(4000)]], seed=1).vectors[2:]
    assert big.std().item() == pytest.approx(spread.item(), rel=0.05)  # random rows of the found ones' spread
    path.write_text("cat 1 2\ndog 1 2 3\n", encoding="utf-8")
    with pytest.raises(WordVectorsError, match=":2: 3 numbers where earlier lines have 2"):
        read_word_vectors(path, ["cat"])
    path.write_text("emu 1\n", encoding="utf-8")
    with pytest.raises(WordVectorsError, match="none of the 1 tokens"):
        read_word_vectors(path, ["cat"])


def test_the_embedding_is_the_frozen_vectors_and_a_trainable_part_projected():
    torch.manual_seed(0)
    vectors = torch.randn(6, 3)
    emb = PretrainedEmbedding(vectors, 4)
    tokens = torch.tensor([[0, 5, 2]])
    by_hand = torch.cat([vectors, emb.trainable], dim=1) @ emb.project.weight.T  # (V, E): W [u_v; t_v]
    torch.testing.assert_close(emb.weight, by_hand)
    torch.testing.assert_close(emb(tokens), by_hand[tokens])
    emb(tokens).sum().backward()
    assert emb.trainable.grad is not None and emb.project.weight.grad is not None
    assert [name for name, _ in emb.named_parameters()] == ["trainable", "project.weight"]  # the vectors stay fixed
    assert "vectors" in emb.state_dict()  # but travel with the model's weights

    g = use_word_vectors(Generator(6, 4, 5), vectors)
    assert isinstance(g.embedding, PretrainedEmbedding)
    samples = g.sample(3, 5, torch.Generator().manual_seed(0))
    assert samples.shape == (3, 5) and torch.isfinite(g.log_probs(samples)).all()
    d = use_word_vectors(CNNDiscriminator(6, 4, [1, 2], [3, 3], dropout=0.0), vectors).eval()
    with torch.no_grad():  # D's lookup tables are rebuilt when the embedding's trainable part changes
        before = d(samples).clone()
        d.embedding.trainable.add_(1.0)
        assert not torch.allclose(before, d(samples))
    with pytest.raises(ValueError, match="no embedding table of 7 tokens"):
        use_word_vectors(Generator(6, 4, 5), torch.randn(7, 3))


def test_a_run_trains_with_word_vectors_and_reopens_without_the_file(tmp_path, capsys):
    corpus = tmp_path / "words.txt"
    corpus.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    vectors = tmp_path / "glove.txt"
    words = ["a", "cat", "dog", "sat", "on", "the", "mat", "red", "big"]  # bird, fox, old and '.' have none
    vectors.write_text("".join(f"{w} {' '.join(str((i + j) % 5 - 2.0) for j in range(6))}\n" for i, w in enumerate(words)))
    run = tmp_path / "run"
    args = ["train", "configs/text.yaml", "--out", str(run), f"data.train={corpus}", f"data.word_vectors={vectors}", *SMALL_TEXT]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "word vectors:" in err and "6 numbers a token, 9 of 17 tokens found" in err and "bird" in err
    report = json.loads((run / "data_report.json").read_text())["summary"]["word_vectors"]
    assert report["found"] == 9 and "<pad>" not in report["missing"]
    vectors.unlink()  # the run keeps its own copy
    opened = open_run(run)
    table = opened.generator.embedding.vectors
    tokens = opened.data.text.tokenizer.tokens
    assert torch.equal(table[tokens.index("cat")], torch.tensor([(1 + j) % 5 - 2.0 for j in range(6)]))
    assert main(["sample", str(run), "-n", "2", "--seed", "0"]) == 0


def test_word_vectors_need_a_token_vocabulary():
    with pytest.raises(ConfigError, match="data.word_vectors needs data.tokenizer=word or char"):
        load_config(
            ROOT / "configs" / "text.yaml",
            ["data.train=a.txt", "data.tokenizer=bpe", "data.max_vocab=100", "data.word_vectors=v.txt"],
        )
    with pytest.raises(ConfigError, match="data.word_vectors does not apply to data.source='oracle'"):
        load_config(ROOT / "configs" / "smoke.yaml", ["data.word_vectors=v.txt"])
