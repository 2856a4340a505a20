"""The GAN variants, one module each, chosen by the config's top-level `algorithm:` key.

`seqgan.algorithms.base.Algorithm` says what an algorithm supplies to the trainer; shared
building blocks (MLE epoch, D rounds, D accuracy) are in `common`, config-to-model builders in
`build`. Importing this package registers every algorithm (with its config section, if any).
"""

from seqgan.algorithms import gsgan, leakgan, maligan, mle, rankgan, reinforce, relgan, scratch, seqgan  # noqa: F401  (registers them)
from seqgan.algorithms.base import ALGORITHMS, Algorithm, Context

__all__ = ["ALGORITHMS", "Algorithm", "Context"]
