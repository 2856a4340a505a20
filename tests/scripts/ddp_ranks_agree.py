"""Run under torchrun by tests/test_distributed.py: train the smoke config (or the config file given
right after the run folder) with the overrides given after them, then check that every rank ends with the same G and D weights and buffers
(a parameter whose gradient DDP did not average would drift apart).
Exits 1 naming each tensor that differs."""

import sys
from pathlib import Path

import torch

from seqgan import distributed
from seqgan.config import load_config
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[2]
args = sys.argv[2:]
config = Path(args.pop(0)) if args and args[0].endswith(".yaml") else ROOT / "configs" / "smoke.yaml"
cfg = load_config(config, args)
dist = distributed.init_from_env(torch.device("cpu"))
try:
    trainer = Trainer(cfg, Path(sys.argv[1]), quiet=True, dist=dist)
    trainer.start(["ddp_ranks_agree"])
    trainer.run()
    differ = []
    for name, model in (("generator", trainer.generator), ("discriminator", trainer.algorithm.discriminator)):
        for key, value in model.state_dict().items():
            every = distributed.all_gather_rows(value.detach().double().reshape(1, -1), dist)  # (world, numel)
            if not bool((every == every[0]).all()):
                differ.append(f"{name}.{key}")
finally:
    distributed.cleanup()
if differ:
    print(f"rank {dist.rank}: weights differ between ranks: {differ}", file=sys.stderr)
distributed.finish(1 if differ else 0)  # a worker leaves without interpreter finalization: see `finish`
