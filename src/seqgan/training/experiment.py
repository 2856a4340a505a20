"""Assemble what a config describes (device, data, models) and reopen runs for sampling and evaluation.

The data (`seqgan.data.dataset.Data`) comes from the config, or for a run folder from what the run
saved (its oracle and oracle samples, its tokenizer and conditions)."""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from seqgan.algorithms.build import make_discriminator, make_generator
from seqgan.config import ConfigError, ExperimentConfig, changed_settings, load_config
from seqgan.data.conditions import ConditionSpace, oracle_space
from seqgan.data.dataset import Data
from seqgan.data.text import TextData, make_text_data, resolve_paths
from seqgan.data.tokenizers import SPECIAL_TOKENS, Tokenizer, load_tokenizer
from seqgan.data.word_vectors import WordVectorsError, read_word_vectors
from seqgan.models.generator import Generator
from seqgan.models.oracle import build_oracle, oracle_dataset
from seqgan.runtime import configure
from seqgan.training.checkpoint import DamagedCheckpointError, checkpoint_names, find_checkpoint, load_weights

TOKENIZER_FILE = "tokenizer.json"
ORACLE_FILE = "oracle.safetensors"
ORACLE_DATA_FILE = "oracle_data.safetensors"
CONDITIONS_FILE = "conditions.json"
WORD_VECTORS_FILE = "word_vectors.safetensors"


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when a device is visible) as a torch device; 'cuda' without one
    is a ConfigError (one line on the command line, exit status 2), before any work or folder."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device=cuda but no CUDA device is visible here (torch.cuda.is_available() is False: a CPU build of "
            f"torch {torch.__version__}, no GPU, or CUDA_VISIBLE_DEVICES hiding it); use device=cpu or device=auto"
        )
    return torch.device(name)


def make_data(
    cfg: ExperimentConfig,
    device: torch.device,
    oracle: Generator | None = None,
    tokenizer: Tokenizer | None = None,
    space: ConditionSpace | None = None,
    word_vectors: torch.Tensor | None = None,
) -> Data:
    """The run's data on `device`. Everything is made on the CPU first (text is tokenised there, oracle
    samples drawn there), so a run on a GPU sees exactly the data a CPU run does. With
    data.word_vectors, the vectors of the vocabulary: `word_vectors` (a run's saved ones) or read
    from the file."""
    d = cfg.data
    if d.source == "text":
        text = make_text_data(d, tokenizer, cfg.condition, space)
        data = Data.from_text(text)
        if d.word_vectors:
            data.word_vectors = word_vectors if word_vectors is not None else vocabulary_vectors(d.word_vectors, text, cfg.seed)
        return data.to(device)
    space = space or oracle_space(cfg.condition.kind, cfg.condition.num_classes, cfg.condition.feature_dim)
    if oracle is None:
        oracle = build_oracle(d.oracle, d.oracle_path, d.vocab_size, d.embed_dim, d.hidden_dim, d.oracle_seed, space=space)
    batch = cfg.eval.batch_size
    train, cond_train = oracle_dataset(oracle, d.num_train, d.seq_len, d.train_seed, batch, space)
    test, cond_test = oracle_dataset(oracle, d.num_test, d.seq_len, d.test_seed, batch, space)
    valid = cond_valid = None
    if d.num_valid > 0:
        valid, cond_valid = oracle_dataset(oracle, d.num_valid, d.seq_len, d.valid_seed, batch, space)
    sets = {
        "train": train,
        "test": test,
        "valid": valid,
        "cond_train": cond_train,
        "cond_test": cond_test,
        "cond_valid": cond_valid,
    }
    return Data.from_oracle(oracle, d.vocab_size, space, sets).to(device)


def vocabulary_vectors(path: str, text: TextData, seed: int) -> torch.Tensor:
    """The vectors (V, P) of the vocabulary's tokens from the file at `path`; what was found goes into
    the corpus summary `train` prints and data_report.json."""
    tokens = getattr(text.tokenizer, "tokens", None)
    if tokens is None:
        raise ConfigError("data.word_vectors needs data.tokenizer=word or char (vectors are looked up by token)")
    try:
        found = read_word_vectors(path, tokens, seed)
    except WordVectorsError as e:
        raise ConfigError(str(e)) from e
    text.report["summary"]["word_vectors"] = {
        "file": path,
        "dim": found.vectors.shape[1],
        "found": found.found,
        "tokens": len(tokens),
        "missing": [t for t in found.missing if t not in SPECIAL_TOKENS][:20],
    }
    return found.vectors


def save_oracle(oracle: Generator, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in oracle.state_dict().items()}, path)


def load_run_data(cfg: ExperimentConfig, run_dir: Path, device: torch.device) -> Data:
    """The data of a run as it was trained, from what the run saved: its oracle and the datasets
    drawn from it (so no later change to sampling can alter them), or its tokenizer. What the
    folder lacks (a new run, or a run older than these files) is built from the config."""
    if cfg.data.source == "text":
        saved, conditions, vectors = run_dir / TOKENIZER_FILE, run_dir / CONDITIONS_FILE, run_dir / WORD_VECTORS_FILE
        tokenizer = load_tokenizer(saved) if saved.is_file() else None
        return make_data(
            cfg,
            device,
            tokenizer=tokenizer,
            space=ConditionSpace.load(conditions) if conditions.is_file() else None,
            word_vectors=load_file(vectors)["vectors"] if vectors.is_file() else None,
        )
    d = cfg.data
    oracle = None
    space = oracle_space(cfg.condition.kind, cfg.condition.num_classes, cfg.condition.feature_dim)
    if (run_dir / ORACLE_FILE).is_file():
        oracle = build_oracle("random", "", d.vocab_size, d.embed_dim, d.hidden_dim, 0, space=space)
        load_weights(run_dir, ORACLE_FILE.removesuffix(".safetensors"), oracle)  # shapes checked: a clear error
        oracle = oracle.requires_grad_(False).eval()
    if oracle is not None and (run_dir / ORACLE_DATA_FILE).is_file():
        sets = load_file(run_dir / ORACLE_DATA_FILE)
        return Data.from_oracle(oracle, d.vocab_size, space, sets).to(device)
    return make_data(cfg, device, oracle=oracle)


def save_run_data(data: Data, run_dir: Path) -> None:
    """What `load_run_data` reads back: the conditions' space, the oracle and its samples, or the tokenizer."""
    if data.condition is not None:
        data.condition.save(run_dir / CONDITIONS_FILE)
    if data.oracle is not None:
        save_oracle(data.oracle, run_dir / ORACLE_FILE)
        save_oracle_data(data, run_dir / ORACLE_DATA_FILE)
    if data.text is not None:
        data.text.tokenizer.save(run_dir / TOKENIZER_FILE)
    if data.word_vectors is not None:
        save_file({"vectors": data.word_vectors.contiguous().cpu()}, run_dir / WORD_VECTORS_FILE)


def save_oracle_data(data: Data, path: Path) -> None:
    """The oracle's training, held-out (and validation) samples, and their conditions, exactly as the run uses them."""
    save_file({k: v.contiguous().cpu() for k, v in data.sets().items()}, path)


@dataclass
class Run:
    """A finished or running run, reopened from its directory for sampling and evaluation."""

    dir: Path
    config: ExperimentConfig
    data: Data
    generator: Generator
    device: torch.device
    checkpoint: str
    """The checkpoint folder G was loaded from."""


def open_run(run_dir: str | Path, device: str | None = None) -> Run:
    """A trained run for sampling and evaluation: `DIR` (its latest checkpoint) or `DIR@CHECKPOINT`,
    where CHECKPOINT is a phase (`DIR@mle`: G at the end of MLE pre-training) or a checkpoint folder name.

    device: 'cpu', 'cuda' or 'auto'; None: the device the run trained on, or the CPU (with a
    warning) when that was a GPU and none is visible here."""
    run_dir, checkpoint = split_run_spec(str(run_dir))
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml); pass the --out folder of 'seqgan train'")
    cfg = load_config(run_dir / "config.yaml")
    configure(cfg.threads)
    if device is None and cfg.device == "cuda" and not torch.cuda.is_available():
        print(f"{run_dir}: trained on CUDA, none visible here: using the CPU", file=sys.stderr)
        device = "cpu"
    device = resolve_device(device or cfg.device)
    data = load_run_data(cfg, run_dir, device)
    generator = make_generator(cfg, data).to(device)
    path = find_checkpoint(run_dir / "checkpoints", checkpoint)
    load_or_say_which_others(run_dir, path, "generator", generator)
    return Run(run_dir, cfg, data, generator.eval(), device, path.name)


def load_or_say_which_others(run_dir: Path, path: Path, name: str, model: nn.Module) -> None:
    """Load `name`'s weights from checkpoint `path`; when they are damaged, the error names the
    run's other checkpoints to use instead (`DIR@NAME`)."""
    try:
        load_weights(path, name, model)
    except DamagedCheckpointError as err:
        others = [n for n in checkpoint_names(run_dir / "checkpoints") if n != path.name]
        raise DamagedCheckpointError(
            f"{err}; use another checkpoint, {run_dir}@NAME with NAME one of: {', '.join(others)}"
            if others
            else f"{err}; no other checkpoint is left: train the run again"
        ) from None


INIT_SECTIONS = ("data", "condition", "generator")  # what pretrain.init_from's run must share with this config


def init_source(cfg: ExperimentConfig, base: Path) -> tuple[Path, Path]:
    """pretrain.init_from -> (that run's folder, the checkpoint G starts from), once the run is
    known to fit this config: the same data, condition and generator settings (paths resolved
    against `base`, as a new run saves them)."""
    spec = cfg.pretrain.init_from
    run_dir, name = split_run_spec(spec)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(
            f"pretrain.init_from={spec}: {run_dir} is not a run directory (no config.yaml); name the --out folder of an earlier 'seqgan train'"
        )
    source, here = load_config(run_dir / "config.yaml"), _resolved(cfg, base)
    values = source.to_dict(), here.to_dict()
    diffs = [
        f"{name}: {values[0][section][key]!r} there, {values[1][section][key]!r} here"
        for name in changed_settings(source, here, INIT_SECTIONS)
        for section, key in [name.split(".", 1)]
    ]
    if diffs:
        raise ConfigError(
            f"pretrain.init_from={spec}: that run was trained on other settings ({'; '.join(diffs[:3])}"
            f"{' ...' if len(diffs) > 3 else ''}); give this run its data, condition and generator settings"
        )
    return run_dir, find_checkpoint(run_dir / "checkpoints", name)


def _resolved(cfg: ExperimentConfig, base: Path) -> ExperimentConfig:
    cfg = copy.deepcopy(cfg)
    resolve_paths(cfg.data, base, cfg.condition)
    return cfg


def load_discriminator(run: Run) -> nn.Module:
    """The run's D as saved in the checkpoint its G came from (eval mode)."""
    cfg, data = run.config, run.data
    discriminator = make_discriminator(cfg, data).to(run.device)
    load_or_say_which_others(run.dir, find_checkpoint(run.dir / "checkpoints", run.checkpoint), "discriminator", discriminator)
    return discriminator.eval()


def split_run_spec(spec: str) -> tuple[Path, str | None]:
    """ "DIR@NAME" -> (DIR, NAME); "DIR" (or a folder whose own name holds an @) -> (DIR, None)."""
    if "@" not in spec or Path(spec).is_dir():
        return Path(spec), None
    folder, name = spec.rsplit("@", 1)
    return Path(folder), name or None
