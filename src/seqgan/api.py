"""The Python API: the command line's three verbs as functions, on the same code.

    import seqgan
    run = seqgan.train("configs/smoke.yaml", ["adversarial.epochs=2"], out="runs/smoke")
    lines = seqgan.sample(run, 5, temperature=0.8, seed=1)   # list[str], as `seqgan sample` prints them
    metrics = seqgan.evaluate(run, n=1000)                    # dict, as `seqgan evaluate` prints it
    run = seqgan.open_run("runs/smoke@mle")                   # any run folder (or DIR@CHECKPOINT)
    out = seqgan.generate(run, ["3 17"], n=2, top_p=0.9)      # prompts, top-k / top-p, greedy, beam, scores

A `Run` holds the folder, the resolved config, the data and the trained generator (eval mode).
`train` writes exactly the run folder `seqgan train` does (command.txt holds the equivalent
command); under torchrun it trains as one rank, as the CLI does.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqgan import distributed
from seqgan.algorithms.common import discriminator_metrics
from seqgan.config import ConfigError, ExperimentConfig, apply_overrides, changed_settings, config_from_dict, load_config
from seqgan.data.report import summary_lines
from seqgan.data.tokenizers import UNK
from seqgan.decoding import Decoding, Generated, generate_for_data
from seqgan.generation import format_samples, sample_for_data
from seqgan.metrics.conditional import oracle_sample_metrics, per_condition_nll
from seqgan.metrics.nll import nll_test
from seqgan.metrics.seq2seq import match_metrics, reference_match_sums
from seqgan.metrics.text import sequence_diversity
from seqgan.metrics.text_eval import classifier_for_run, full_text_metrics, per_condition_text_metrics
from seqgan.training.experiment import Run, load_discriminator, open_run, resolve_device
from seqgan.training.lm_scores import lm_scores
from seqgan.training.run import PHASES, Trainer

RESUME_OVERRIDES = ("adversarial.epochs", "checkpoint.every", "checkpoint.keep", "cuda_graphs")
"""The settings a resumed run may change: the adversarial phase's length, checkpointing, and whether
CUDA graphs replay its steps (the same computation to round-off: a run whose graphs fail on some GPU
goes on eagerly from its last checkpoint with cuda_graphs=false)."""

__all__ = ["RESUME_OVERRIDES", "Run", "evaluate", "generate", "open_run", "sample", "train"]


# ----------------------------------------------------------------------------- train


def train(
    config: str | Path | ExperimentConfig,
    overrides: list[str] | tuple[str, ...] = (),
    out: str | Path | None = None,
    *,
    quiet: bool = True,
) -> Run:
    """Train a new run: `config` a YAML file or an `ExperimentConfig`, `overrides` `section.key=value`
    strings, `out` the run folder (default runs/<config name>-<time>). Returns the trained run."""
    cfg, run_dir = new_run(config, list(overrides), out)
    name = str(config) if not isinstance(config, ExperimentConfig) else "CONFIG.yaml"
    argv = ["seqgan", "train", name, "--out", str(run_dir), *overrides]
    return open_run(run_training(cfg, run_dir, argv, quiet=quiet))


def resume(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), *, quiet: bool = True) -> Run:
    """Continue a run from its last checkpoint with its own config; `overrides` may lengthen it
    (adversarial.epochs=N), change checkpointing or turn CUDA graphs off (RESUME_OVERRIDES)."""
    cfg, changed = resumed_config(Path(run_dir), list(overrides))
    argv = ["seqgan", "train", "--resume", str(run_dir), *overrides]
    return open_run(run_training(cfg, Path(run_dir), argv, quiet=quiet, resume=True, changed=changed))


def new_run(config: str | Path | ExperimentConfig, overrides: list[str], out: str | Path | None) -> tuple[ExperimentConfig, Path]:
    """The config of a new run and its folder (which must not hold a run yet)."""
    if isinstance(config, ExperimentConfig):
        cfg, stem = config_from_dict(apply_overrides(config.to_dict(), overrides)), "run"
    else:
        cfg, stem = load_config(config, overrides), Path(config).stem
    run_dir = Path(out or f"runs/{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    if (run_dir / "metrics.jsonl").exists():
        raise FileExistsError(f"{run_dir}: already holds a run; continue it with --resume {run_dir}, or choose another --out")
    return cfg, run_dir


def resumed_config(run_dir: Path, overrides: list[str]) -> tuple[ExperimentConfig, list[str]]:
    """A run's saved config with `overrides` applied, and the settings they change (only
    RESUME_OVERRIDES may change)."""
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml); pass the --out folder of 'seqgan train'")
    saved = load_config(run_dir / "config.yaml")
    cfg = load_config(run_dir / "config.yaml", overrides)
    changed = changed_settings(saved, cfg)
    fixed = [key for key in changed if key not in RESUME_OVERRIDES]
    if fixed:
        raise ConfigError(
            f"--resume keeps the run's settings, so {', '.join(fixed)} cannot change; only "
            f"{', '.join(RESUME_OVERRIDES)} can (to run longer, checkpoint differently, or replay steps eagerly); "
            "start a new run for the rest"
        )
    return cfg, changed


def run_training(
    cfg: ExperimentConfig,
    run_dir: Path,
    argv: list[str],
    *,
    quiet: bool = False,
    resume: bool = False,
    changed: list[str] | None = None,
) -> Path:
    """Train in this process, or as one rank of a torchrun job (see `seqgan.distributed`); returns
    the run folder."""
    dist = distributed.init_from_env(resolve_device(cfg.device))
    try:
        run_dir = Path(str(distributed.all_gather_object(str(run_dir), dist)[0]))  # rank 0's clock names the folder
        trainer = Trainer(cfg, run_dir, quiet=quiet, dist=dist)
        if trainer.data.text is not None and not quiet and dist.is_main():  # what happened to the corpus, before any work
            print("\n".join(summary_lines(trainer.data.text.report["summary"])), file=sys.stderr)
        if resume:
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
    finally:
        distributed.cleanup()
    return trainer.dir


# ----------------------------------------------------------------------------- sample


def _run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else open_run(run)


def sample(
    run: Run | str | Path,
    n: int = 10,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    condition: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """`n` samples of the run's G, one string each: decoded text, or token ids joined by spaces for
    the oracle. Conditional runs: `condition` as `seqgan sample --condition` takes it (FIELD=VALUE
    per label field, source=TEXT, or row=INDEX); without it each sample's condition is drawn from
    the held-out set and starts its line, followed by a tab."""
    run = _run(run)
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    cond = None
    if condition:
        cond, unknown = parse_condition(run, list(condition))
        if unknown:
            warnings.warn(f"{unknown} source token(s) are not in the run's vocabulary and read as <unk>", stacklevel=2)
    rng = torch.Generator(run.device).manual_seed(seed)
    samples = sample_for_data(
        run.generator, run.data, n, rng, temperature=temperature, batch_size=run.config.eval.batch_size, cond=cond
    )
    return format_samples(samples, run.data)


def parse_condition(run: Run, condition: list[str]) -> tuple[torch.Tensor, int]:
    """The condition tensor (1, ...) of `FIELD=VALUE` / `source=TEXT` / `row=INDEX` strings, and how
    many source tokens are not in the run's vocabulary."""
    if run.data.condition is None:
        raise ConfigError(f"--condition: {run.dir} is an unconditional run; sample it without --condition")
    tokenizer = None if run.data.text is None else run.data.text.tokenizer
    cond = run.data.condition.parse(condition, run.data.cond_test, tokenizer)
    unknown = int((cond == UNK).sum()) if run.data.condition.kind == "source" else 0
    return cond, unknown


# ----------------------------------------------------------------------------- generate


def generate(
    run: Run | str | Path,
    prompts: str | list[str] | None = None,
    n: int = 1,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    beam: int | None = None,
    length_penalty: float = 1.0,
    max_len: int | None = None,
    seed: int = 0,
    condition: list[str] | None = None,
    discriminator: bool | nn.Module = False,
) -> Generated:
    """`n` sequences per prompt (or `n` from scratch) of a run (a `Run` from `open_run`, or its
    folder, `DIR[@CHECKPOINT]`). prompts: text for a text run, token ids ('3 17 42') for an
    oracle run. condition: `--condition` specs of a conditional run ('field=value', 'source=TEXT',
    'row=N'); without it each sequence gets the condition of a held-out row. discriminator: True
    loads the run's D from the same checkpoint (or pass a loaded D) to score each sequence.
    Bad arguments raise `ConfigError` with a one-line message."""
    if not isinstance(run, Run):
        run = open_run(run)
    decoding = Decoding(temperature, top_k, top_p, greedy, beam, length_penalty)
    if isinstance(prompts, str):
        prompts = [prompts]
    if max_len is not None and max_len < 1:
        raise ConfigError(f"max-len {max_len}: must be >= 1")
    d = load_discriminator(run) if discriminator is True else (discriminator if isinstance(discriminator, nn.Module) else None)
    cond, unknown = parse_condition(run, list(condition)) if condition else (None, 0)
    rng = torch.Generator(run.device).manual_seed(seed)
    out = generate_for_data(
        run.generator,
        run.data,
        decoding,
        n,
        rng,
        prompts=prompts,
        cond=cond,
        max_len=max_len,
        batch_size=run.config.eval.batch_size,
        discriminator=d,
    )
    if unknown:
        out.notes.insert(0, f"{unknown} source token(s) are not in the run's vocabulary and read as <unk>")
    return out


# ----------------------------------------------------------------------------- evaluate


def evaluate(
    run: Run | str | Path,
    n: int = 10_000,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    classifier: str | Path | None = None,
    discriminator: bool = False,
    lm_scorer: Run | str | Path | None = None,
    reverse_lm_epochs: int = 5,
) -> dict[str, Any]:
    """The metrics `seqgan evaluate` prints, as a dict: NLL-oracle and diversity of `n` samples
    (oracle runs), NLL-test, BLEU / Self-BLEU (text runs), exact match (seq2seq runs); with
    `classifier` (a `seqgan classifier train` folder) condition accuracy of label-conditioned text
    runs; with `discriminator` D's accuracy from the same checkpoint; with `lm_scorer` (a run
    trained on the same data, e.g. an MLE run) the LM score and, unless `reverse_lm_epochs` is 0,
    the reverse LM score of `n` samples (`seqgan.training.lm_scores`). `top_k` / `top_p` truncate
    the sampled metrics' draws (after the temperature); NLL-test reads the temperature alone."""
    Decoding(temperature, top_k, top_p)  # bad choices fail with one line
    cut = {"top_k": top_k, "top_p": top_p}
    run = _run(run)
    data, cfg = run.data, run.config
    judge = None
    if classifier is not None:
        test_file = Path(cfg.data.test or cfg.data.train) if cfg.data.source == "text" else None  # else held out of train
        judge = classifier_for_run(str(classifier), test_file, data.condition), str(classifier)
    rng = torch.Generator(run.device).manual_seed(seed)
    result: dict[str, Any] = {"run": str(run.dir), "checkpoint": run.checkpoint, "temperature": temperature}
    result |= {k: v for k, v in cut.items() if v is not None}
    result |= {"num_samples": n, "seed": seed}
    batch = cfg.eval.batch_size
    drawn = {"temperature": temperature, "batch_size": batch, **cut}  # how the sampled metrics draw
    if data.oracle is not None:
        samples = sample_for_data(run.generator, data, n, rng, **drawn)
        pool, candidates = data.cond_test, cfg.condition.candidates
        result |= oracle_sample_metrics(
            data.oracle, samples.tokens, samples.cond, data.condition, pool=pool, candidates=candidates, rng=rng, batch_size=batch
        )
        result |= sequence_diversity(samples.tokens.tolist())  # mode collapse shows here
    result |= {"nll_test": nll_test(run.generator, data.test, temperature, data.cond_test), "num_test": len(data.test)}
    if data.text is not None:
        result |= full_text_metrics(run.generator, data.text, n, rng, **drawn)
    if data.condition is not None and data.condition.kind == "source":  # outputs against each test source's reference
        for t, suffix in ((temperature, ""), (0.0, "_greedy")):
            how = {"temperature": t, "batch_size": batch, **(cut if t else {})}  # greedy decoding has nothing to truncate
            sums = reference_match_sums(run.generator, data.cond_test, data.test, rng, **how)
            result |= match_metrics(sums, suffix)
    if discriminator:
        d = load_discriminator(run)
        result |= discriminator_metrics(d, data.test, run.generator, cfg.eval.d_samples, rng, cond=data.cond_test)
    if data.condition is not None and data.condition.kind == "label":
        result |= per_label_metrics(run, result.pop("per_condition", {}), n, rng, temperature=temperature, judge=judge, cut=cut)
    if lm_scorer is not None:
        reference = _run(lm_scorer)
        samples = sample_for_data(run.generator, data, n, rng, **drawn).tokens
        result |= {"lm_scorer": str(reference.dir), **lm_scores(run, reference, samples, reverse_lm_epochs, seed)}
    return result


def per_label_metrics(
    run: Run,
    per: dict,
    n: int,
    rng: torch.Generator,
    *,
    temperature: float,
    judge: tuple[Any, str] | None,
    cut: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Label-conditioned runs: per label value, the sample metrics, the held-out NLL and (text) the
    text metrics; with a classifier (`judge`: the model and its folder), its overall condition
    accuracy and what it is."""
    data, cfg = run.data, run.config
    held = per_condition_nll(run.generator, data.test, data.cond_test, data.condition, temperature, cfg.eval.batch_size)
    text, out = {}, {}
    if data.text is not None:
        classifier = None if judge is None else judge[0]
        text, overall = per_condition_text_metrics(
            run.generator,
            data.text,
            n,
            rng,
            temperature=temperature,
            batch_size=cfg.eval.batch_size,
            classifier=classifier,
            **(cut or {}),
        )
        if judge is not None:
            out |= overall | {"classifier": classifier_summary(judge[1], judge[0].info)}
    names = sorted(set(held) | set(text))
    return out | {"per_condition": {name: per.get(name, {}) | text.get(name, {}) | held.get(name, {}) for name in names}}


def classifier_summary(folder: str, info: dict) -> dict:
    """What evaluate reports of the classifier: where it is and its own held-out accuracy."""
    keys = ("train_file", "test_file", "num_test", "test_accuracy")
    return {"dir": str(Path(folder).resolve())} | {k: info[k] for k in keys if k in info}
