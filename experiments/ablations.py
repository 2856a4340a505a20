"""Ablations on the paper's oracle: what each option beyond the paper does to NLL-oracle and NLL-test.

Every row is the paper setting (configs/oracle_seqgan.yaml: the paper's oracle, G, D, rollouts,
learning rates) on one reduced budget, with ONE option changed; each row runs for every seed.
The budget (BUDGET below; about 3-5 minutes a run on one core):
  MLE pre-training 10 epochs -> D pre-training 3 x (2,000 negatives + 2,000 positives, 1 epoch)
  -> 10 adversarial epochs of 1 G step (16 rollouts) + 1 D round (1,000 + 1,000, 1 epoch).
(The paper: 120 MLE epochs, 50 x 3 D epochs over 20,000, 200 adversarial epochs with 5 x 3 D epochs.)

Options that leave G's architecture and its pre-training alone start from the same MLE-pre-trained
G per seed (run once, the "MLE only" row); options that change G or its pre-training (noise,
layers, GRU, attention, early stopping) pre-train their own G with the same budget. Wall time
counts the MLE pre-training either way. Figures are from each run's last evaluation (10,000
samples at temperature 1 for NLL-oracle; the 10,000 held-out oracle samples for NLL-test).

Results go to OUT/results.jsonl as they finish (a rerun skips rows already there, so an
interrupted sweep continues) and the table to OUT/table.md and stdout. Several processes may
share one OUT (one core each): each row is claimed in OUT/claims/ first (a claim whose process
is gone is taken over); `--reverse` walks the rows from the other end.

    python experiments/ablations.py [--seeds 0 1] [--out runs/ablations] [--only NAME ...] [--reverse]

A study, not a benchmark: its results are in docs/ablations.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from seqgan.config import load_config
from seqgan.metrics.logger import read_metrics
from seqgan.runtime import configure
from seqgan.training.checkpoint import find_checkpoint, load_weights
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "oracle_seqgan.yaml"
BUDGET = """
    pretrain.epochs=10 d_pretrain.steps=3 d_pretrain.epochs=1 d_pretrain.num_negatives=2000 adversarial.epochs=10
    adversarial.d_steps=1 adversarial.d_epochs=1 adversarial.num_negatives=1000 eval.every=5 eval.final_samples=0
    checkpoint.every=1000 checkpoint.keep=1
""".split()
# name -> overrides on top of the paper config and the budget. Values chosen once, not tuned.
OPTIONS: dict[str, list[str]] = {
    "paper setting": [],
    "G: noise z (16-dim)": ["generator.noise_dim=16"],
    "G: 3 LSTM layers": ["generator.num_layers=3"],
    "G: GRU": ["generator.cell=gru"],
    "G: self-attention read-out": ["generator.attention=true"],
    "G: early stopping (patience 2, 5,000 validation samples)": ["pretrain.patience=2", "data.num_valid=5000"],
    "D: bi-LSTM, 4-head attention pooling": [
        "discriminator.kind=rnn",
        "discriminator.rnn_cell=lstm",
        "discriminator.rnn_pooling=attention",
        "discriminator.attention_heads=4",
    ],
    "D: label smoothing 0.1": ["discriminator.label_smoothing=0.1"],
    "PG: KL to the MLE model, weight 0.1": ["adversarial.kl_weight=0.1"],
    "PG: mean-reward baseline": ["adversarial.baseline=mean"],
    "PG: reward discount 0.95": ["adversarial.discount=0.95"],
    "schedule: D frozen after pre-training (G only)": [
        "adversarial.train_d=false",
        "-adversarial.d_steps",
        "-adversarial.d_epochs",
        "-adversarial.num_negatives",
    ],
    "schedule: 3 d-steps per g-step": ["adversarial.d_steps=3"],
}
OWN_MLE = ("generator.", "pretrain.", "data.")  # overrides that change G or its pre-training


def config(seed: int, overrides: list[str]):
    """The paper config + BUDGET + the option's overrides ("-key" drops key from the budget)."""
    drop = {o[1:] for o in overrides if o.startswith("-")}
    budget = [b for b in BUDGET if b.split("=")[0] not in drop]
    return load_config(PAPER, [*budget, f"seed={seed}", *(o for o in overrides if not o.startswith("-"))])


def last_metrics(run: Path) -> dict:
    rows = [r for r in read_metrics(run / "metrics.jsonl") if "nll_oracle" in r]
    return rows[-1]


def train(cfg, run: Path, init_from: Path | None = None) -> float:
    """Train a fresh run in `run`; with `init_from` (an MLE-only run), G starts as its G and MLE is skipped."""
    shutil.rmtree(run, ignore_errors=True)
    begin = time.perf_counter()
    trainer = Trainer(cfg, run, quiet=True)
    trainer.start(["experiments/ablations.py"])
    if init_from is not None:
        load_weights(find_checkpoint(init_from / "checkpoints", None), "generator", trainer.generator)
        trainer.phase, trainer.epoch = "d_pretrain", 0
    trainer.run()
    return time.perf_counter() - begin


def claim(out: Path, key: str) -> bool:
    """Take `key` for this process; False while another live process holds it."""
    path = out / "claims" / key
    path.parent.mkdir(exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)
            return False
        except (ProcessLookupError, ValueError):
            path.unlink(missing_ok=True)  # its process died: take it over
            return claim(out, key)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def shared_mle(seed: int, out: Path) -> Path:
    """The MLE-only run of this seed that shared-G rows start from (made by whichever process comes first)."""
    base = out / f"mle-seed{seed}"
    while not (base / "wall.json").is_file():
        if claim(out, base.name):
            mle = config(seed, ["d_pretrain.steps=0", "adversarial.epochs=0"])
            wall = train(mle, base)
            (base / "wall.json").write_text(json.dumps({"seconds": wall}))
        else:
            time.sleep(10)
    return base


def run_row(name: str, seed: int, out: Path) -> dict:
    overrides = OPTIONS[name]
    base = shared_mle(seed, out)
    mle_wall = json.loads((base / "wall.json").read_text())["seconds"]
    run = out / f"{slug(name)}-seed{seed}"
    if any(o.startswith(OWN_MLE) for o in overrides):
        wall = train(config(seed, overrides), run)
    else:
        wall = mle_wall + train(config(seed, overrides), run, init_from=base)
    last = last_metrics(run)
    return {"option": name, "seed": seed, "nll_oracle": last["nll_oracle"], "nll_test": last["nll_test"], "seconds": wall}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:60]


def mean_spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def after_mle(out: Path, row: dict) -> float:
    """NLL-oracle of the G that adversarial training started from (the row's own MLE, or the shared one)."""
    run = out / f"{slug(row['option'])}-seed{row['seed']}"
    mle = [r for r in read_metrics(run / "metrics.jsonl") if r["phase"] == "mle" and "nll_oracle" in r]
    return mle[-1]["nll_oracle"] if mle else last_metrics(out / f"mle-seed{row['seed']}")["nll_oracle"]


def table(rows: list[dict], mle_rows: list[dict], out: Path) -> str:
    lines = [
        "| option | seeds | NLL-oracle after MLE | NLL-oracle | change in the adversarial phase | NLL-test | Δ NLL-oracle vs paper | wall (s, per run) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    if mle_rows:
        lines.append(
            f"| MLE only (10 epochs; where every shared-G row starts) | {len(mle_rows)} | | "
            f"{mean_spread([r['nll_oracle'] for r in mle_rows])} | | {mean_spread([r['nll_test'] for r in mle_rows])} | | "
            f"{statistics.mean(r['seconds'] for r in mle_rows):.0f} |"
        )
    paper = {r["seed"]: r["nll_oracle"] for r in rows if r["option"] == "paper setting"}
    for name in OPTIONS:
        got = [r for r in rows if r["option"] == name]
        if not got:
            continue
        deltas = [r["nll_oracle"] - paper[r["seed"]] for r in got if r["seed"] in paper]
        delta = mean_spread(deltas) if deltas and name != "paper setting" else ""
        lines.append(
            f"| {name} | {len(got)} | {mean_spread([after_mle(out, r) for r in got])} | "
            f"{mean_spread([r['nll_oracle'] for r in got])} | {mean_spread([r['nll_oracle'] - after_mle(out, r) for r in got])} | "
            f"{mean_spread([r['nll_test'] for r in got])} | {delta} | "
            f"{statistics.mean(r['seconds'] for r in got):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--only", nargs="+", help="option names to run (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reverse", action="store_true", help="run the rows in reverse order (for a second process)")
    args = parser.parse_args()
    configure(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = {(r["option"], r["seed"]) for r in read_metrics(results)}
    names = args.only or list(OPTIONS)
    unknown = [n for n in names if n not in OPTIONS]
    if unknown:
        raise SystemExit(f"unknown options {unknown}; choose from {list(OPTIONS)}")
    # All options of one seed before the next, so that a cut-short sweep still compares.
    todo = [(name, seed) for seed in args.seeds for name in names if (name, seed) not in done]
    for name, seed in reversed(todo) if args.reverse else todo:
        if not claim(out, f"{slug(name)}-seed{seed}"):
            continue
        if (name, seed) in {(r["option"], r["seed"]) for r in read_metrics(results)}:
            continue  # finished by another process since this one started
        row = run_row(name, seed, out)
        with results.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    rows = read_metrics(results)
    mle_rows = []
    for seed in args.seeds:
        base = out / f"mle-seed{seed}"
        if (base / "wall.json").is_file():
            m = last_metrics(base)
            mle_rows.append(
                {
                    "nll_oracle": m["nll_oracle"],
                    "nll_test": m["nll_test"],
                    "seconds": json.loads((base / "wall.json").read_text())["seconds"],
                }
            )
    text = f"Budget: {' '.join(BUDGET)}; seeds {args.seeds}; {args.threads} thread(s).\n\n" + table(rows, mle_rows, out)
    (out / "table.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
