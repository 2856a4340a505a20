"""Assemble what a config describes (device, oracle, data, models) and reopen finished runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from seqgan.config import ExperimentConfig, load_config
from seqgan.data.oracle import build_oracle, oracle_datasets
from seqgan.models.build import build_generator
from seqgan.models.generator import Generator
from seqgan.runtime import configure
from seqgan.training.checkpoint import latest_checkpoint, load_weights

EVAL_SEED_OFFSET = 7919  # evaluation samples use their own fixed stream, apart from training's


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is visible; use device=cpu or device=auto")
    return torch.device(name)


@dataclass
class OracleData:
    oracle: Generator
    train: torch.Tensor  # (num_train, T)
    test: torch.Tensor  # (num_test, T), held out: another seed


def make_oracle_data(cfg: ExperimentConfig, device: torch.device, oracle: Generator | None = None) -> OracleData:
    d = cfg.data
    if oracle is None:
        oracle = build_oracle(d.oracle, d.oracle_path, d.vocab_size, d.embed_dim, d.hidden_dim, d.oracle_seed)
    oracle = oracle.to(device)
    train, test = oracle_datasets(oracle, d.seq_len, d.num_train, d.num_test, d.train_seed, d.test_seed, cfg.eval.batch_size)
    return OracleData(oracle, train, test)


def save_oracle(oracle: Generator, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in oracle.state_dict().items()}, path)


@dataclass
class Run:
    """A finished or running run, reopened from its directory for sampling and evaluation."""

    dir: Path
    config: ExperimentConfig
    generator: Generator
    device: torch.device

    def oracle_data(self) -> OracleData:
        d = self.config.data
        oracle = build_oracle("random", "", d.vocab_size, d.embed_dim, d.hidden_dim, 0)
        oracle.load_state_dict(load_file(self.dir / "oracle.safetensors"))
        return make_oracle_data(self.config, self.device, oracle.requires_grad_(False).eval())


def open_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml); pass the --out folder of 'seqgan train'")
    cfg = load_config(run_dir / "config.yaml")
    configure(cfg.threads)
    device = resolve_device(cfg.device)
    generator = build_generator(cfg.generator, cfg.data.vocab_size).to(device)
    load_weights(latest_checkpoint(run_dir / "checkpoints"), "generator", generator)
    return Run(run_dir, cfg, generator.eval(), device)


def eval_generator(cfg: ExperimentConfig, device: torch.device) -> torch.Generator:
    return torch.Generator(device).manual_seed(cfg.seed + EVAL_SEED_OFFSET)
