"""`seqgan train | sample | evaluate`: the command-line contract later tools rely on.

    seqgan train CONFIG.yaml [--out DIR] [section.key=value ...] [--quiet]
    seqgan train --resume DIR
    seqgan sample DIR[@CHECKPOINT] [-n N] [--prefix TEXT ... | --prefix-file FILE] [--temperature T] [--top-k K] [--top-p P]
                  [--greedy | --beam N] [--max-len L] [--seed S] [--format text|jsonl [--discriminator]] [--out FILE]
                  [--condition FIELD=VALUE ... | source=TEXT | row=INDEX]
    seqgan evaluate DIR[@CHECKPOINT] [-n N] [--temperature T] [--top-k K] [--top-p P] [--classifier CLF_DIR] [--discriminator]
    seqgan classifier train TRAIN.jsonl --field FIELD --test TEST.jsonl [--valid VALID.jsonl] --out CLF_DIR
    seqgan plot DIR [DIR ...] [--out PNG] [--labels ...] [--table]
    seqgan sweep DIR [DIR ...] [--temperatures 0.5:1.5:0.1] [--top-p 0.8:1.0:0.05] [-n N] [--out FOLDER]

Bad input ends with one line on stderr saying what is wrong and what to do, exit status 2, and
no traceback unless --debug.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from seqgan import distributed
from seqgan.algorithms.common import discriminator_metrics
from seqgan.api import generate
from seqgan.config import ConfigError, ExperimentConfig, changed_settings, load_config
from seqgan.data.corpus import CorpusError
from seqgan.data.tokenizers import TokenizerError
from seqgan.decoding import Decoding
from seqgan.errors import NonFiniteLossError
from seqgan.generation import format_samples, sample_for_data
from seqgan.metrics.classifier import ClassifierError, train_on_files
from seqgan.metrics.conditional import oracle_sample_metrics, per_condition_nll
from seqgan.metrics.nll import nll_test
from seqgan.metrics.plot import curve_table, oracle_floor, plot_runs
from seqgan.metrics.seq2seq import match_metrics, reference_match_sums
from seqgan.metrics.sweep import parse_temperatures, parse_top_ps, plot_sweep, sweep_generator, write_csv
from seqgan.metrics.text import sequence_diversity
from seqgan.metrics.text_eval import classifier_for_run, full_text_metrics, per_condition_text_metrics
from seqgan.models.oracle import OracleError
from seqgan.training.checkpoint import CheckpointError
from seqgan.training.experiment import load_discriminator, open_run, resolve_device
from seqgan.training.run import PHASES, Trainer
from seqgan.training.signals import TrainingStopped

USER_ERRORS = (
    ConfigError, OracleError, CorpusError, TokenizerError, CheckpointError, NonFiniteLossError, FileNotFoundError, FileExistsError,
    ClassifierError,
)  # fmt: skip


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

    train = sub.add_parser("train", help="train a generator (MLE pre-training, D pre-training, adversarial)")
    train.add_argument("config", nargs="?", help="YAML config, e.g. configs/oracle_seqgan.yaml")
    train.add_argument("overrides", nargs="*", help="section.key=value settings, e.g. adversarial.epochs=10")
    train.add_argument("--out", help="run directory (default: runs/<config name>-<time>)")
    train.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint, with its own config; overrides may lengthen it "
        "(adversarial.epochs=N) or change checkpoint.every / checkpoint.keep",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bars")

    sample = sub.add_parser("sample", help="print sequences from a trained run, one a line (or JSON Lines with scores)")
    sample.add_argument("run_dir", help=RUN_HELP)
    sample.add_argument("-n", type=int, help="sequences per prompt (default 10 when sampling, 1 for --greedy / --beam)")
    sample.add_argument("--prefix", action="append", default=[], metavar="TEXT", help=PREFIX_HELP)
    sample.add_argument("--prefix-file", metavar="FILE", help="continue every non-blank line of FILE, as --prefix")
    add_decoding_args(sample)
    sample.add_argument("--greedy", action="store_true", help="the most probable token at every step")
    sample.add_argument("--beam", type=int, metavar="N", help="beam search of width N; -n returns the n best (n <= N)")
    sample.add_argument(
        "--length-penalty", type=float, default=1.0, help="beam search ranks by log-prob / length**this (default 1)"
    )
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
    plot = sub.add_parser("plot", help="learning curves of one or more runs as a PNG (and a text table)")
    plot.add_argument("run_dirs", nargs="+")
    plot.add_argument("--out", help="PNG path (default: RUN_DIR/curves.png of the first run)")
    plot.add_argument("--labels", nargs="+", help="one legend label per run (default: folder names)")
    plot.add_argument("--table", action="store_true", help="also print each run's curve as text")
    sweep = sub.add_parser("sweep", help="quality against diversity over sampling temperatures (and top-p): CSV and PNG")
    sweep.add_argument("run_dirs", nargs="+", help=RUN_HELP)
    sweep.add_argument("--temperatures", default="0.5:1.5:0.1", help="start:stop:step or a comma list (default 0.5:1.5:0.1)")
    sweep.add_argument("--top-p", help="a second axis: top-p values as start:stop:step or a comma list, e.g. 0.8:1.0:0.05")
    sweep.add_argument("-n", type=int, default=10_000, help="samples per run and temperature (default 10,000)")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--labels", nargs="+", help="one label per run (default: folder names)")
    sweep.add_argument("--out", default="sweep", help="output folder for sweep.csv and sweep.png (default ./sweep)")
    return parser


def cmd_train(args: argparse.Namespace, argv: list[str]) -> None:
    """Train in this process, or as one rank of a torchrun job (see `seqgan.distributed`)."""
    changed: list[str] = []
    if args.resume:
        # argparse reads the first override as CONFIG: with --resume every positional is an override
        overrides = ([args.config] if args.config else []) + list(args.overrides)
        if args.out or any("=" not in o for o in overrides):
            raise ConfigError(
                "--resume DIR continues a run with the config saved in DIR: give no CONFIG or --out "
                f"(only overrides of {', '.join(RESUME_OVERRIDES)}, e.g. adversarial.epochs=200 to run longer)"
            )
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml); pass the --out folder of 'seqgan train'")
        saved = load_config(run_dir / "config.yaml")
        cfg = load_config(run_dir / "config.yaml", overrides)
        changed = changed_settings(saved, cfg)
        fixed = [key for key in changed if key not in RESUME_OVERRIDES]
        if fixed:
            raise ConfigError(
                f"--resume keeps the run's settings, so {', '.join(fixed)} cannot change; only "
                f"{', '.join(RESUME_OVERRIDES)} can (to run longer or checkpoint differently); start a new run for the rest"
            )
    elif not args.config:
        raise ConfigError("give a CONFIG.yaml to start a run (e.g. configs/smoke.yaml), or --resume DIR to continue one")
    else:
        cfg = load_config(args.config, args.overrides)
        run_dir = Path(args.out or f"runs/{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
        if (run_dir / "metrics.jsonl").exists():
            raise FileExistsError(f"{run_dir}: already holds a run; continue it with --resume {run_dir}, or choose another --out")
    dist = distributed.init_from_env(resolve_device(cfg.device))
    try:
        run_dir = _train(cfg, run_dir, args, argv, changed, dist)
    finally:
        distributed.cleanup()
    if dist.is_main():
        print(f"run written to {run_dir}", file=sys.stderr)


def _train(cfg: ExperimentConfig, run_dir: Path, args: argparse.Namespace, argv: list[str], changed: list[str], dist) -> Path:
    run_dir = Path(str(distributed.all_gather_object(str(run_dir), dist)[0]))  # rank 0's clock names the folder
    trainer = Trainer(cfg, run_dir, quiet=args.quiet, dist=dist)
    if args.resume:
        trainer.resume()
        if trainer.phase == PHASES[-1] and trainer.epoch > cfg.adversarial.epochs:
            raise ConfigError(
                f"adversarial.epochs={cfg.adversarial.epochs}: {run_dir} has already run {trainer.epoch} adversarial "
                "epochs; give at least that many"
            )
        if changed and dist.is_main():
            trainer.folder.record_resume(cfg, argv)
    else:
        trainer.start(argv)
    trainer.run()
    return trainer.dir


RESUME_OVERRIDES = ("adversarial.epochs", "checkpoint.every", "checkpoint.keep")
"""The settings `train --resume DIR` may change: the adversarial phase's length and checkpointing."""


def cmd_sample(args: argparse.Namespace) -> None:
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
    out = generate(
        run,
        prompts or None,
        n,
        max_len=args.max_len,
        seed=args.seed,
        condition=args.condition,
        discriminator=args.discriminator,
        **decoding,
    )
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
    decoding = Decoding(args.temperature, args.top_k, args.top_p)
    run = open_run(args.run_dir)
    data, cfg = run.data, run.config
    test_file = (
        Path(cfg.data.test or cfg.data.train) if cfg.data.source == "text" else None
    )  # without a test file, test lines are held out of train
    classifier = classifier_for_run(args.classifier, test_file, data.condition) if args.classifier else None
    cut = {"top_k": args.top_k, "top_p": args.top_p}  # sampled metrics only: NLL-test is at the temperature alone
    rng = torch.Generator(run.device).manual_seed(args.seed)
    result = {
        "run": str(run.dir),
        "checkpoint": run.checkpoint,
        "temperature": decoding.temperature,
        **{k: v for k, v in cut.items() if v is not None},
        "num_samples": args.n,
        "seed": args.seed,
    }
    if data.oracle is not None:
        samples = sample_for_data(run.generator, data, args.n, rng, args.temperature, cfg.eval.batch_size, **cut)
        result |= oracle_sample_metrics(
            data.oracle, samples.tokens, samples.cond, data.condition, data.cond_test, cfg.condition.candidates, rng,
            cfg.eval.batch_size,
        )  # fmt: skip
        result |= sequence_diversity(samples.tokens.tolist())  # mode collapse shows here
    result |= {"nll_test": nll_test(run.generator, data.test, args.temperature, data.cond_test), "num_test": len(data.test)}
    if data.text is not None:
        result |= full_text_metrics(run.generator, data.text, args.n, rng, args.temperature, cfg.eval.batch_size, **cut)
    if data.condition is not None and data.condition.kind == "source":  # outputs against each test source's reference
        for temperature, suffix in ((args.temperature, ""), (0.0, "_greedy")):
            truncation = cut if temperature else {}
            sums = reference_match_sums(
                run.generator, data.cond_test, data.test, rng, temperature, cfg.eval.batch_size, **truncation
            )
            result |= match_metrics(sums, suffix)
    if args.discriminator:
        result |= discriminator_metrics(
            load_discriminator(run), run.data.test, run.generator, cfg.eval.d_samples, rng, cond=run.data.cond_test
        )
    if data.condition is not None and data.condition.kind == "label":  # per label value, with its held-out NLL
        per = result.pop("per_condition", {})
        held = per_condition_nll(run.generator, data.test, data.cond_test, data.condition, args.temperature, cfg.eval.batch_size)
        text: dict = {}
        if data.text is not None:
            text, overall = per_condition_text_metrics(
                run.generator, data.text, args.n, rng, args.temperature, cfg.eval.batch_size, classifier, **cut
            )
            if classifier is not None:
                result |= overall | {"classifier": classifier_summary(args.classifier, classifier.info)}
        names = sorted(set(held) | set(text))
        result["per_condition"] = {name: per.get(name, {}) | text.get(name, {}) | held.get(name, {}) for name in names}
    print(json.dumps(result))


def classifier_summary(folder: str, info: dict) -> dict:
    """What evaluate reports of the classifier: where it is and its own held-out accuracy."""
    keys = ("train_file", "test_file", "num_test", "test_accuracy")
    return {"dir": str(Path(folder).resolve())} | {k: info[k] for k in keys if k in info}


def cmd_classifier(args: argparse.Namespace) -> None:
    model = train_on_files(
        args.train_file, args.test, args.field, args.valid, args.text_field, min_count=args.min_count, l2=args.l2,
        steps=args.steps,
    )  # fmt: skip
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
    try:
        temperatures = parse_temperatures(args.temperatures)
        top_ps = None if args.top_p is None else parse_top_ps(args.top_p)
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
        swept = sweep_generator(
            run.generator, run.data, temperatures, args.n, args.seed, cfg.eval.batch_size, cfg.condition.candidates, top_ps
        )
        rows += [{"run": str(run.dir), "checkpoint": run.checkpoint, "label": label} | row for row in swept]
        print(f"swept {run.dir}", file=sys.stderr)
    out = Path(args.out)
    write_csv(rows, out / "sweep.csv")
    floors = {round(f, 4) for f in (oracle_floor(r.dir) for r in runs) if f is not None}
    plot_sweep(rows, out / "sweep.png", floors.pop() if len(floors) == 1 else None)
    print(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}", file=sys.stderr)


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
