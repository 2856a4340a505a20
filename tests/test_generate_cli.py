"""Prompting and decoding a trained run as a user does: `seqgan sample / evaluate / sweep` and the Python `generate`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from seqgan import api
from seqgan.api import generate
from seqgan.cli.main import main
from seqgan.generation import format_samples, sample_for_data
from seqgan.metrics.sweep import sweep_curves
from seqgan.models.discriminator import prob_real
from seqgan.training import experiment
from seqgan.training.experiment import load_discriminator, open_run

WORDS = [f"a {w} sat on the {v} mat ." for w in ("cat", "dog", "bird", "fox") for v in ("red", "big", "old")] * 3
SMALL_TEXT = (  # a text run trained in seconds
    "data.max_len=12 data.heldout_size=4 pretrain.epochs=3 pretrain.batch_size=8 d_pretrain.steps=1 "
    "d_pretrain.num_negatives=16 adversarial.epochs=1 adversarial.batch_size=4 "
    "adversarial.num_negatives=16 adversarial.rollout_num=2 discriminator.batch_size=8 eval.every=1 "
    "eval.d_samples=8 eval.bleu_samples=8 eval.final_samples=5 generator.embed_dim=8 "
    "generator.hidden_dim=8 discriminator.embed_dim=8 discriminator.filter_sizes=[1,2,3] "
    "discriminator.num_filters=[4,4,4]"
).split()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A trained oracle run (the smoke config) and a word-level text run."""
    base = tmp_path_factory.mktemp("generate")
    corpus = base / "words.txt"
    corpus.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    oracle, text = base / "oracle", base / "text"
    assert main(["train", "configs/smoke.yaml", "--out", str(oracle), "--quiet", "adversarial.epochs=1"]) == 0
    assert main(["train", "configs/text.yaml", "--out", str(text), "--quiet", f"data.train={corpus}", *SMALL_TEXT]) == 0
    return {"oracle": oracle, "text": text}


def sample(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["sample", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("kind", ["oracle", "text"])
def test_plain_sampling_prints_what_it_printed_before_decoding_options(runs, capsys, kind):
    run = open_run(runs[kind])
    rng = torch.Generator().manual_seed(3)
    before = format_samples(
        sample_for_data(run.generator, run.data, 20, rng, temperature=0.8, batch_size=run.config.eval.batch_size), run.data
    )
    code, out, _ = sample(capsys, str(runs[kind]), "-n", "20", "--seed", "3", "--temperature", "0.8")
    assert code == 0 and out.splitlines() == before
    assert sample(capsys, str(runs[kind]), "-n", "20", "--seed", "3", "--temperature", "0.8", "--top-p", "1")[1] == out


def test_text_prompts_start_every_sample(runs, capsys, tmp_path):
    code, out, _ = sample(capsys, str(runs["text"]), "--prefix", "a cat sat", "-n", "4", "--top-p", "0.9")
    assert code == 0 and len(out.splitlines()) == 4 and all(line.startswith("a cat sat") for line in out.splitlines())
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dog\n\nthe red\n", encoding="utf-8")
    code, out, _ = sample(capsys, str(runs["text"]), "--prefix-file", str(prompts), "-n", "3", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["prefix"] for r in rows] == ["a dog"] * 3 + ["the red"] * 3
    assert all(r["text"].startswith(r["prefix"]) and r["num_tokens"] >= 1 for r in rows)
    code, out, err = sample(capsys, str(runs["text"]), "--prefix", "a zebraq sat", "-n", "2")
    assert code == 0 and "'a <unk> sat'" in err and "not in the run's vocabulary" in err
    assert all(line.startswith("a <unk> sat") for line in out.splitlines())


def test_jsonl_scores_are_the_generators_teacher_forced_log_probs_and_ds_score(runs, capsys):
    code, out, _ = sample(
        capsys,
        str(runs["oracle"]),
        "--prefix",
        "3 17 42",
        "-n",
        "6",
        "--top-k",
        "10",
        "--top-p",
        "0.8",
        "--format",
        "jsonl",
        "--discriminator",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 6
    run = open_run(runs["oracle"])
    tokens = torch.tensor([r["ids"] for r in rows])
    assert (tokens[:, :3] == torch.tensor([3, 17, 42])).all()
    with torch.no_grad():
        logp = run.generator.log_probs(tokens)[:, 3:].sum(dim=1)  # the generated tokens only
        d = prob_real(load_discriminator(run), tokens)
    for row, want, score in zip(rows, logp.tolist(), d.tolist(), strict=True):
        assert row["logprob"] == pytest.approx(want, rel=1e-5) and row["num_tokens"] == 7
        assert row["nll"] == pytest.approx(-want / 7, rel=1e-5) and row["d_score"] == pytest.approx(score, rel=1e-5)


@pytest.mark.parametrize(
    "args",
    [
        ["--top-p", "0"],
        ["--top-p", "1.5"],
        ["--top-k", "0"],
        ["--temperature", "0"],
        ["--greedy", "--top-k", "3"],
        ["--beam", "0"],
        ["--beam", "2", "-n", "3"],
        ["--greedy", "--beam", "2"],
        ["--prefix", " "],
        ["--prefix", "3 999"],
        ["--prefix", "a b"],
        ["--discriminator"],
        ["--max-len", "3", "--prefix", "1 2 3"],
        ["--length-penalty", "0.5"],
    ],
)
def test_bad_decoding_arguments_exit_2_with_one_line(runs, capsys, args):
    code, out, err = sample(capsys, str(runs["oracle"]), *args)
    assert code == 2 and out == "" and err.strip().count("\n") == 0 and err.startswith("seqgan sample: error:"), err


def test_evaluate_takes_top_p_and_top_k(runs, capsys):
    results = {}
    for name, extra in (("plain", []), ("p1", ["--top-p", "1"]), ("p05", ["--top-p", "0.5", "--top-k", "20"])):
        capsys.readouterr()
        assert main(["evaluate", str(runs["oracle"]), "-n", "300", *extra]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    assert results["p1"].pop("top_p") == 1 and results["p1"] == results["plain"]  # p = 1 cuts nothing
    assert results["p05"]["top_p"] == 0.5 and results["p05"]["top_k"] == 20
    assert results["p05"]["nll_oracle"] != results["plain"]["nll_oracle"]
    assert results["p05"]["nll_test"] == results["plain"]["nll_test"]  # NLL-test reads the temperature only
    assert main(["evaluate", str(runs["oracle"]), "--top-p", "2"]) == 2


def test_sweep_takes_top_p_as_a_second_axis(runs, capsys, tmp_path):
    args = ["sweep", str(runs["oracle"]), "--temperatures", "0.8,1", "-n", "200"]
    assert main([*args, "--top-p", "0.5,1", "--out", str(tmp_path / "two")]) == 0
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    two = list(csv.DictReader((tmp_path / "two" / "sweep.csv").open()))
    one = list(csv.DictReader((tmp_path / "one" / "sweep.csv").open()))
    assert [(r["temperature"], r["top_p"]) for r in two] == [(t, p) for t in ("0.8", "1.0") for p in ("0.5", "1.0")]
    assert [r["nll_oracle"] for r in two if r["top_p"] == "1.0"] == [r["nll_oracle"] for r in one]
    assert main([*args, "--top-p", "0:1:0.5"]) == 2


def test_sweep_top_p_at_one_temperature_beside_the_temperature_curve(runs, tmp_path):
    args = ["sweep", str(runs["oracle"]), "-n", "200", "--temperatures", "0.8,1"]
    assert main([*args, "--top-p", "0.5,0.9", "--top-p-at", "1", "--out", str(tmp_path / "beside")]) == 0
    assert main([*args, "--top-p", "0.5,0.9", "--out", str(tmp_path / "grid")]) == 0
    beside = list(csv.DictReader((tmp_path / "beside" / "sweep.csv").open()))
    grid = list(csv.DictReader((tmp_path / "grid" / "sweep.csv").open()))
    assert [(r["temperature"], r["top_p"]) for r in beside] == [("0.8", ""), ("1.0", ""), ("1.0", "0.5"), ("1.0", "0.9")]
    at_one = {r["top_p"]: r["nll_oracle"] for r in grid if r["temperature"] == "1.0"}
    assert [r["nll_oracle"] for r in beside[2:]] == [at_one["0.5"], at_one["0.9"]]  # same seed, same samples
    rows = [{k: float(v) if k in ("temperature", "top_p") and v else v for k, v in r.items()} for r in beside]
    curves = sweep_curves([{k: v for k, v in r.items() if v != ""} for r in rows])
    assert [(name, along, len(pts)) for name, along, pts in curves] == [
        ("oracle", "temperature", 2),
        ("oracle, top-p at T = 1", "top_p", 2),
    ]
    assert main([*args, "--top-p-at", "1"]) == 2  # --top-p-at without --top-p


def test_generate_works_on_a_loaded_run_without_the_disk(runs, monkeypatch):
    run = open_run(runs["text"])
    d = load_discriminator(run)

    def no_disk(*args, **kwargs):
        raise AssertionError("generate read the run folder again")

    for module, name in ((api, "open_run"), (api, "load_discriminator"), (experiment, "load_run_data")):
        monkeypatch.setattr(module, name, no_disk)
    out = generate(run, ["a cat", "the"], n=3, top_p=0.9, seed=1, discriminator=d)
    assert len(out.texts) == 6 and all(t.startswith(p) for t, p in zip(out.texts, out.prompts, strict=True))
    assert out.d_score.shape == (6,) and bool((out.nll > 0).all())
    with torch.no_grad():
        logp = run.generator.log_probs(out.tokens)
    counted = (torch.arange(out.tokens.shape[1]) >= torch.tensor([2] * 3 + [1] * 3)[:, None]) & run.generator.mask(out.tokens)
    torch.testing.assert_close(out.logprob, (logp * counted).sum(dim=1))
    best = generate(run, "a cat", n=2, beam=3)
    assert best.texts[0].startswith("a cat") and best.logprob.shape == (2,)
    assert generate(run, "a cat", greedy=True).texts == generate(run, "a cat", beam=1).texts


@pytest.mark.parametrize("decoding", [[], ["--top-k", "5"], ["--greedy"], ["--beam", "3", "-n", "1"]])
def test_a_shorter_max_len_ends_every_sample_there_and_scores_only_its_tokens(runs, capsys, decoding):
    code, out, _ = sample(
        capsys, str(runs["oracle"]), "--prefix", "3 17", "--max-len", "5", "-n", "4", *decoding, "--format", "jsonl"
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows and all(len(r["ids"]) == 5 and r["ids"][:2] == [3, 17] and r["num_tokens"] == 3 for r in rows)
    run = open_run(runs["oracle"])
    with torch.no_grad():
        logp = run.generator.log_probs(torch.tensor([r["ids"] for r in rows]))[:, 2:].sum(dim=1)
    assert [r["logprob"] for r in rows] == pytest.approx(logp.tolist(), rel=1e-5)
