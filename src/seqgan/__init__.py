"""seqgan: SeqGAN (Yu, Zhang, Wang, Yu, AAAI 2017) and its variants on PyTorch.

    import seqgan
    run = seqgan.train("configs/smoke.yaml", ["adversarial.epochs=2"], out="runs/smoke")
    seqgan.sample(run, 5, temperature=0.8, seed=1)   # five lines, as `seqgan sample` prints them
    seqgan.evaluate(run, n=1000)                     # the metrics `seqgan evaluate` prints
    seqgan.generate(run, ["3 17"], n=2, top_p=0.9)   # prompts, decoding choices and scores (docs/generation.md)

(`seqgan.api`; the command line is `seqgan --help`.)
"""

import seqgan.algorithms  # noqa: F401  (registers every algorithm and its config section)
from seqgan.api import Run, evaluate, generate, open_run, resume, sample, train
from seqgan.config import ExperimentConfig, load_config

__version__ = "0.1.0"
__all__ = ["ExperimentConfig", "Run", "evaluate", "generate", "load_config", "open_run", "resume", "sample", "train"]
