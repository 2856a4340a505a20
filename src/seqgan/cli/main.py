"""`seqgan train | sample | evaluate`: the command-line contract later tools rely on.

    seqgan train CONFIG.yaml [--out DIR] [section.key=value ...] [--quiet]
    seqgan train --resume DIR
    seqgan sample DIR[@CHECKPOINT] [-n N] [--prefix TEXT ... | --prefix-file FILE] [--temperature T] [--top-k K] [--top-p P]
                  [--greedy | --beam N] [--max-len L] [--seed S] [--format text|jsonl [--discriminator]] [--out FILE]
                  [--condition FIELD=VALUE ... | source=TEXT | row=INDEX]
    seqgan evaluate DIR[@CHECKPOINT] [-n N] [--temperature T] [--top-k K] [--top-p P] [--classifier CLF_DIR] [--discriminator]
    seqgan classifier train TRAIN.jsonl --field FIELD --test TEST.jsonl [--valid VALID.jsonl] --out CLF_DIR
    seqgan plot DIR [DIR ...] [--out PNG] [--labels ...] [--table]
    seqgan sweep DIR [DIR ...] [--temperatures 0.5:1.5:0.1] [--top-p 0.8:1.0:0.05 [--top-p-at T]] [-n N] [--out FOLDER] [--table]
    seqgan config [--explain SECTION[.KEY]]

train, sample and evaluate are `seqgan.train`, `seqgan.sample` and `seqgan.evaluate` of the Python
API (`seqgan.api`), which this module only parses arguments for.

Bad input ends with one line on stderr saying what is wrong and what to do, exit status 2, and
no traceback unless --debug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

from seqgan import distributed
from seqgan.api import RESUME_OVERRIDES, evaluate, generate, new_run, resumed_config, run_training
from seqgan.cli.explain import explain
from seqgan.config import ConfigError
from seqgan.data.corpus import CorpusError
from seqgan.data.tokenizers import TokenizerError
from seqgan.decoding import Decoding
from seqgan.errors import NonFiniteLossError
from seqgan.generation import format_samples
from seqgan.metrics.classifier import ClassifierError, train_on_files
from seqgan.metrics.plot import curve_table, oracle_floor, plot_runs
from seqgan.metrics.sweep import parse_temperatures, parse_top_ps, plot_sweep, sweep_generator, sweep_table, write_csv
from seqgan.models.oracle import OracleError
from seqgan.training.checkpoint import CheckpointError
from seqgan.training.experiment import open_run
from seqgan.training.signals import TrainingStopped

USER_ERRORS = (ConfigError, OracleError, CorpusError, TokenizerError, CheckpointError, ClassifierError, NonFiniteLossError)
USER_ERRORS += (FileNotFoundError, FileExistsError)
"""Errors that end a command with one line on stderr (the input was wrong), not a traceback."""


def check_count(option: str, value: int, minimum: int, why: str, example: int) -> None:
    """A sample count from the command line: at least `minimum`, else a ConfigError that says why and what to give."""
    if value < minimum:
        raise ConfigError(f"{option} {value}: give at least {minimum} ({why}), e.g. {option} {example}")


RUN_HELP = "run directory (its latest checkpoint), or DIR@mle for G at the end of MLE pre-training, or DIR@CHECKPOINT_FOLDER"
PREFIX_HELP = (
    "continue this prompt: words for a text run (tokenised as the run's data), token ids ('3 17 42') for an oracle run; "
    "repeat for several"
)
FORMAT_HELP = (
    "text (default): one sequence a line; jsonl: one object a line with the text (or ids), prefix, condition, logprob "
    "(G's log-probability of the generated tokens), nll (per token), num_tokens"
)


def add_decoding_args(parser: argparse.ArgumentParser) -> None:
    """--temperature, --top-k, --top-p: how `sample`, `evaluate` (and `sweep`, temperature aside) draw."""
    parser.add_argument("--temperature", type=float, default=1.0, help="divide the logits by this (> 0; default 1)")
    parser.add_argument("--top-k", type=int, help="sample among the k most probable tokens (after the temperature)")
    parser.add_argument("--top-p", type=float, help="sample from the nucleus of mass p in (0, 1] (after top-k)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan", description="SeqGAN: adversarial sequence generation.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_train, add_sample, add_evaluate, add_classifier, add_plot, add_sweep, add_config):
        add(sub)
    return parser


def add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a generator (MLE pre-training, D pre-training, adversarial)")
    train.add_argument("config", nargs="?", help="YAML config, e.g. configs/oracle_seqgan.yaml")
    train.add_argument(
        "overrides",
        nargs="*",
        help="section.key=value settings, e.g. adversarial.epochs=10; what a setting does, its type and default: "
        "seqgan config --explain section.key (or --explain section for all its keys)",
    )
    train.add_argument("--out", help="run directory (default: runs/<config name>-<time>)")
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint, with its own config; overrides may lengthen it "
        "(adversarial.epochs=N) or change checkpoint.every / checkpoint.keep",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")


def add_sample(sub: argparse._SubParsersAction) -> None:
    sample = sub.add_parser("sample", help="print sequences from a trained run, one a line (or JSON Lines with scores)")
    sample.add_argument("run_dir", help=RUN_HELP)
    sample.add_argument("-n", type=int, help="sequences per prompt (default 10 when sampling, 1 for --greedy / --beam)")
    sample.add_argument("--prefix", action="append", default=[], metavar="TEXT", help=PREFIX_HELP)
    sample.add_argument("--prefix-file", metavar="FILE", help="continue every non-blank line of FILE, as --prefix")
    add_decoding_args(sample)
    sample.add_argument("--greedy", action="store_true", help="the most probable token at every step")
    sample.add_argument("--beam", type=int, metavar="N", help="beam search of width N; -n returns the n best (n <= N)")
    sample.add_argument("--length-penalty", type=float, default=1.0, help="beam search ranks by log-prob / length**this")
    sample.add_argument("--max-len", type=int, help="tokens per sequence, prefix included (default: the run's length)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--format", choices=("text", "jsonl"), default="text", help=FORMAT_HELP)
    sample.add_argument("--discriminator", action="store_true", help="jsonl: add d_score, the run's D's probability of real")
    sample.add_argument("--out", help="write to this file instead of stdout")
    sample.add_argument(
        "--condition",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="conditional runs: sample for this label (once per label field), for source='TEXT' (a source sentence, "
        "tokenized as the run's data), or row=INDEX for the condition of held-out sequence INDEX; without it each "
        "sample's condition is drawn from the held-out set and starts its line",
    )


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("evaluate", help="print one JSON object of metrics for a trained run")
    evaluate.add_argument("run_dir", help=RUN_HELP)
    evaluate.add_argument("-n", type=int, default=10_000, help="generated samples for NLL-oracle / BLEU (default 10,000)")
    add_decoding_args(evaluate)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument(
        "--classifier",
        metavar="CLF_DIR",
        help="label-conditioned text runs: also judge the samples of each condition with this held-out classifier "
        "('seqgan classifier train'): cond_acc, and cond_acc_real on the test lines",
    )
    evaluate.add_argument(
        "--discriminator",
        action="store_true",
        help="also score the run's D from the same checkpoint: d_acc (held-out real sequences against as many fresh "
        "samples at temperature 1, eval.d_samples of each) and, for conditional runs, d_cond_acc",
    )
    evaluate.add_argument(
        "--lm-scorer",
        metavar="REF_DIR",
        help="language-model scores against a run trained on the same data (e.g. an MLE run): lm_score, REF's NLL of "
        "the samples (quality), and reverse_lm_score, the test-set NLL of an LM of REF's shape trained on the samples alone",
    )
    evaluate.add_argument(
        "--reverse-lm-epochs",
        type=int,
        default=5,
        help="with --lm-scorer: MLE epochs of the reverse LM over the samples (default 5; 0: the LM score only)",
    )


def add_classifier(sub: argparse._SubParsersAction) -> None:
    classifier = sub.add_parser("classifier", help="a held-out text classifier of a label field, to judge conditional samples")
    classifier_sub = classifier.add_subparsers(dest="action", required=True)
    fit = classifier_sub.add_parser("train", help="train on a JSON Lines file; print its accuracy on the held-out file")
    fit.add_argument("train_file", help="JSON Lines training file (the run's data.train)")
    fit.add_argument("--field", required=True, help="the label field to predict, e.g. category")
    fit.add_argument("--test", required=True, help="held-out JSON Lines file (the run's data.test): its accuracy is reported")
    fit.add_argument("--valid", help="another held-out file, reported too")
    fit.add_argument("--text-field", default="text", help="the field holding the text (default: text)")
    fit.add_argument("--out", required=True, help="folder for classifier.json and classifier.safetensors")
    fit.add_argument("--min-count", type=int, default=2, help="drop n-grams in fewer training lines (default 2)")
    fit.add_argument("--l2", type=float, default=1e-3, help="L2 penalty on the weights (default 0.001)")
    fit.add_argument("--steps", type=int, default=100, help="full-batch Adam steps (default 100)")


def add_plot(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="learning curves of one or more runs as a PNG (and a text table)")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", help="PNG path (default: RUN_DIR/curves.png of the first run)")
    plot.add_argument("--labels", nargs="+", help="one legend label per run (default: folder names)")
    plot.add_argument("--table", action="store_true", help="also print each run's curve as text")


def add_sweep(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="quality against diversity over sampling temperatures (and top-p): CSV and PNG")
    sweep.add_argument("run_dirs", nargs="+", help=RUN_HELP)
    sweep.add_argument("--temperatures", default="0.5:1.5:0.1", help="start:stop:step or a comma list (default 0.5:1.5:0.1)")
    sweep.add_argument("--table", action="store_true", help="also print the sweep as text")
    sweep.add_argument("--top-p", help="a second axis: top-p values as start:stop:step or a comma list, e.g. 0.8:1.0:0.05")
    sweep.add_argument(
        "--top-p-at",
        type=float,
        metavar="T",
        help="with --top-p: sweep top-p at temperature T only, beside the plain temperature sweep (not the grid)",
    )
    sweep.add_argument("-n", type=int, default=10_000, help="samples per run and temperature (default 10,000)")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    sweep.add_argument("--out", default="sweep", help="output folder for sweep.csv and sweep.png (default ./sweep)")


def add_config(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser("config", help="what the settings are: seqgan config --explain adversarial.rollout_num")
    config.add_argument(
        "--explain",
        metavar="KEY",
        default="",
        help="a setting (section.key: its type, default and documentation) or a section (its keys, one line each); "
        "without it, the sections",
    )


def cmd_train(args: argparse.Namespace, argv: list[str]) -> None:
    """Train in this process, or as one rank of a torchrun job (see `seqgan.distributed`)."""
    if args.resume:
        # argparse reads the first override as CONFIG: with --resume every positional is an override
        overrides = ([args.config] if args.config else []) + list(args.overrides)
        if args.out or any("=" not in o for o in overrides):
            raise ConfigError(
                "--resume DIR continues a run with the config saved in DIR: give no CONFIG or --out "
                f"(only overrides of {', '.join(RESUME_OVERRIDES)}, e.g. adversarial.epochs=200 to run longer)"
            )
        cfg, changed = resumed_config(Path(args.resume), overrides)
        run_dir = run_training(cfg, Path(args.resume), argv, quiet=args.quiet, resume=True, changed=changed)
    elif not args.config:
        raise ConfigError("give a CONFIG.yaml to start a run (e.g. configs/smoke.yaml), or --resume DIR to continue one")
    else:
        cfg, run_dir = new_run(args.config, args.overrides, args.out)
        run_dir = run_training(cfg, run_dir, argv, quiet=args.quiet)
    if os.environ.get("RANK", "0") == "0":  # rank 0 of a torchrun job, or the only process
        print(f"run written to {run_dir}", file=sys.stderr)


def cmd_sample(args: argparse.Namespace) -> None:
    if args.n is not None:
        check_count("-n", args.n, 1, "how many sequences to print", 10)
    prompts = list(args.prefix)
    if args.prefix_file:
        prompts += [line for line in Path(args.prefix_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        if not prompts:
            raise ConfigError(f"--prefix-file {args.prefix_file}: no prompt in it (every line is blank)")
    if args.discriminator and args.format != "jsonl":
        raise ConfigError("--discriminator adds a score to each JSON object: use it with --format jsonl")
    n = args.n if args.n is not None else (1 if args.greedy or args.beam is not None else 10)
    decoding = {k: getattr(args, k) for k in ("temperature", "top_k", "top_p", "greedy", "beam", "length_penalty")}
    Decoding(**decoding)  # bad choices fail before the run is read
    run = open_run(args.run_dir)
    options = {"max_len": args.max_len, "seed": args.seed, "condition": args.condition, "discriminator": args.discriminator}
    out = generate(run, prompts or None, n, **options, **decoding)
    for note in out.notes:
        print(f"seqgan sample: note: {note}", file=sys.stderr)
    if args.format == "jsonl":
        rows = out.records(run.data, ",".join(args.condition) or None)
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        text = "".join(line + "\n" for line in format_samples(out.samples, run.data))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def cmd_evaluate(args: argparse.Namespace) -> None:
    check_count("-n", args.n, 2, "Self-BLEU and the diversity measures compare samples with each other", 10_000)
    Decoding(args.temperature, args.top_k, args.top_p)  # bad choices fail before the run is read
    check_count("--reverse-lm-epochs", args.reverse_lm_epochs, 0, "0 gives the LM score alone", 5)
    options = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed}
    options |= {"classifier": args.classifier, "discriminator": args.discriminator}
    options |= {"lm_scorer": args.lm_scorer, "reverse_lm_epochs": args.reverse_lm_epochs}
    print(json.dumps(evaluate(args.run_dir, args.n, **options)))


def cmd_classifier(args: argparse.Namespace) -> None:
    settings = {"min_count": args.min_count, "l2": args.l2, "steps": args.steps}
    model = train_on_files(args.train_file, args.test, args.field, args.valid, args.text_field, **settings)
    model.save(args.out)
    print(json.dumps({"out": str(Path(args.out).resolve()), "label_field": args.field, "labels": model.labels, **model.info}))


def cmd_plot(args: argparse.Namespace) -> None:
    dirs = [Path(d) for d in args.run_dirs]
    for d in dirs:
        if not (d / "metrics.jsonl").is_file():
            raise FileNotFoundError(f"{d}: no metrics.jsonl; pass run directories written by 'seqgan train'")
    if args.labels and len(args.labels) != len(dirs):
        raise ConfigError(f"--labels: {len(args.labels)} labels for {len(dirs)} runs")
    out = plot_runs(dirs, Path(args.out) if args.out else dirs[0] / "curves.png", args.labels)
    if args.table:
        for d in dirs:
            print(f"== {d}\n{curve_table(d)}")
    print(f"wrote {out}", file=sys.stderr)


def cmd_sweep(args: argparse.Namespace) -> None:
    check_count("-n", args.n, 2, "Self-BLEU and the diversity measures compare samples with each other", 10_000)
    try:
        temperatures = parse_temperatures(args.temperatures)
        top_ps = None if args.top_p is None else parse_top_ps(args.top_p)
        if args.top_p_at is not None:
            if top_ps is None or args.top_p_at <= 0:
                raise ValueError(f"--top-p-at {args.top_p_at:g}: give it with --top-p, and a temperature > 0")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if args.labels and len(args.labels) != len(args.run_dirs):
        raise ConfigError(f"--labels: {len(args.labels)} labels for {len(args.run_dirs)} runs")
    labels = args.labels or [Path(d).name for d in args.run_dirs]
    runs = [open_run(d) for d in args.run_dirs]  # open all first: a bad folder fails before any work
    if len({r.data.text is None for r in runs}) > 1:
        raise ConfigError("oracle runs and text runs are measured on different axes: sweep them separately")
    rows = []
    for run, label in zip(runs, labels, strict=True):
        cfg = run.config
        swept = partial(sweep_generator, run.generator, run.data, num_samples=args.n, seed=args.seed)
        swept = partial(swept, batch_size=cfg.eval.batch_size, candidates=cfg.condition.candidates)
        if args.top_p_at is None:
            run_rows = swept(temperatures, top_ps=top_ps)
        else:  # the temperature curve, then a top-p curve at one temperature
            run_rows = swept(temperatures) + swept([args.top_p_at], top_ps=top_ps)
        rows += [{"run": str(run.dir), "checkpoint": run.checkpoint, "label": label} | row for row in run_rows]
        print(f"swept {run.dir}", file=sys.stderr)
    out = Path(args.out)
    write_csv(rows, out / "sweep.csv")
    floors = {round(f, 4) for f in (oracle_floor(r.dir) for r in runs) if f is not None}
    plot_sweep(rows, out / "sweep.png", floors.pop() if len(floors) == 1 else None)
    print(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}", file=sys.stderr)
    if args.table:
        print(sweep_table(rows))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may follow options (train CONFIG --out DIR key=value): argparse leaves those over.
    if extra and args.command == "train" and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "train":
            cmd_train(args, ["seqgan", *argv])
        elif args.command == "sample":
            cmd_sample(args)
        elif args.command == "evaluate":
            cmd_evaluate(args)
        elif args.command == "sweep":
            cmd_sweep(args)
        elif args.command == "classifier":
            cmd_classifier(args)
        elif args.command == "config":
            print(explain(args.explain))
        else:
            cmd_plot(args)
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"seqgan {args.command}: error: {err}", file=sys.stderr)
        return distributed.finish(2)
    except TrainingStopped as err:
        print(f"seqgan {args.command}: {err}", file=sys.stderr)
        return distributed.finish(128 + err.signum)
    except KeyboardInterrupt:
        print(f"seqgan {args.command}: interrupted; the last checkpoint is intact", file=sys.stderr)
        return distributed.finish(130)
    return distributed.finish(0)
