"""Assemble what a config describes (device, data, models) and reopen runs for sampling and evaluation.

`Data` is the one shape the training loop sees, whatever the source:
- oracle: the oracle LSTM, its 10,000 training samples and a held-out set drawn with another seed;
- text: a tokenised corpus (see `seqgan.data.text`), with an end token and padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from seqgan.config import ExperimentConfig, load_config
from seqgan.data.oracle import build_oracle, oracle_datasets
from seqgan.data.text import TextData, decode_rows, make_text_data
from seqgan.data.tokenizers import BOS, EOS, PAD, Tokenizer, load_tokenizer
from seqgan.models.build import build_generator
from seqgan.models.generator import Generator
from seqgan.runtime import configure
from seqgan.training.checkpoint import find_checkpoint, load_weights

EVAL_SEED_OFFSET = 7919  # evaluation samples use their own fixed stream, apart from training's
TOKENIZER_FILE = "tokenizer.json"
ORACLE_FILE = "oracle.safetensors"
ORACLE_DATA_FILE = "oracle_data.safetensors"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is visible; use device=cpu or device=auto")
    return torch.device(name)


@dataclass
class Data:
    train: torch.Tensor  # (R, L) token ids
    test: torch.Tensor  # (R', L) held out: NLL-test, D accuracy
    vocab_size: int
    start_token: int
    eos_token: int | None  # None: fixed-length sequences (the oracle)
    pad_token: int
    oracle: Generator | None = None
    text: TextData | None = None
    valid: torch.Tensor | None = None  # (R'', L) validation: nll_valid, early stopping; never the test set

    @property
    def length(self) -> int:
        return self.train.shape[1]


def make_data(
    cfg: ExperimentConfig, device: torch.device, oracle: Generator | None = None, tokenizer: Tokenizer | None = None
) -> Data:
    d = cfg.data
    if d.source == "text":
        text = make_text_data(d, tokenizer)
        valid = None if text.valid is None else text.valid.to(device)
        return Data(text.train.to(device), text.test.to(device), text.tokenizer.vocab_size, BOS, EOS, PAD, text=text, valid=valid)
    if oracle is None:
        oracle = build_oracle(d.oracle, d.oracle_path, d.vocab_size, d.embed_dim, d.hidden_dim, d.oracle_seed)
    oracle = oracle.to(device)
    train, test = oracle_datasets(oracle, d.seq_len, d.num_train, d.num_test, d.train_seed, d.test_seed, cfg.eval.batch_size)
    valid = None
    if d.num_valid > 0:
        valid = oracle.sample(d.num_valid, d.seq_len, torch.Generator().manual_seed(d.valid_seed), batch_size=cfg.eval.batch_size)
    return Data(train, test, d.vocab_size, 0, None, 0, oracle=oracle, valid=valid)


def make_generator(cfg: ExperimentConfig, data: Data) -> Generator:
    return build_generator(cfg.generator, data.vocab_size, data.start_token, data.eos_token, data.pad_token)


def save_oracle(oracle: Generator, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in oracle.state_dict().items()}, path)


def load_run_data(cfg: ExperimentConfig, run_dir: Path, device: torch.device) -> Data:
    """The data of a run as it was trained, from what the run saved: its oracle and the datasets
    drawn from it (so no later change to sampling can alter them), or its tokenizer. What the
    folder lacks (a new run, or a run older than these files) is built from the config."""
    if cfg.data.source == "text":
        saved = run_dir / TOKENIZER_FILE
        return make_data(cfg, device, tokenizer=load_tokenizer(saved) if saved.is_file() else None)
    d = cfg.data
    oracle = None
    if (run_dir / ORACLE_FILE).is_file():
        oracle = build_oracle("random", "", d.vocab_size, d.embed_dim, d.hidden_dim, 0)
        load_weights(run_dir, ORACLE_FILE.removesuffix(".safetensors"), oracle)  # shapes checked: a clear error
        oracle = oracle.requires_grad_(False).eval().to(device)
    if oracle is not None and (run_dir / ORACLE_DATA_FILE).is_file():
        sets = load_file(run_dir / ORACLE_DATA_FILE, device=str(device))
        return Data(sets["train"], sets["test"], d.vocab_size, 0, None, 0, oracle=oracle, valid=sets.get("valid"))
    return make_data(cfg, device, oracle=oracle)


def save_oracle_data(data: Data, path: Path) -> None:
    """The oracle's training, held-out (and validation) samples, exactly as the run uses them."""
    sets = {"train": data.train, "test": data.test} | ({"valid": data.valid} if data.valid is not None else {})
    save_file({k: v.contiguous().cpu() for k, v in sets.items()}, path)


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


def open_run(run_dir: str | Path) -> Run:
    """A trained run for sampling and evaluation: `DIR` (its latest checkpoint) or `DIR@CHECKPOINT`,
    where CHECKPOINT is a phase (`DIR@mle`: G at the end of MLE pre-training) or a checkpoint folder name."""
    run_dir, checkpoint = split_run_spec(str(run_dir))
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml); pass the --out folder of 'seqgan train'")
    cfg = load_config(run_dir / "config.yaml")
    configure(cfg.threads)
    device = resolve_device(cfg.device)
    data = load_run_data(cfg, run_dir, device)
    generator = make_generator(cfg, data).to(device)
    path = find_checkpoint(run_dir / "checkpoints", checkpoint)
    load_weights(path, "generator", generator)
    return Run(run_dir, cfg, data, generator.eval(), device, path.name)


def split_run_spec(spec: str) -> tuple[Path, str | None]:
    """ "DIR@NAME" -> (DIR, NAME); "DIR" (or a folder whose own name holds an @) -> (DIR, None)."""
    if "@" not in spec or Path(spec).is_dir():
        return Path(spec), None
    folder, name = spec.rsplit("@", 1)
    return Path(folder), name or None


def format_samples(samples: torch.Tensor, data: Data) -> list[str]:
    """Samples (R, L) as lines: decoded text for corpora, space-separated ids for the oracle."""
    if data.text is not None:
        return decode_rows(data.text.tokenizer, samples)
    return [" ".join(map(str, row)) for row in samples.tolist()]


def eval_generator(cfg: ExperimentConfig, device: torch.device) -> torch.Generator:
    return torch.Generator(device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
