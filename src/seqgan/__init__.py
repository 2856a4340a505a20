"""seqgan: SeqGAN (Yu, Zhang, Wang, Yu, AAAI 2017) and its variants on PyTorch."""

import seqgan.algorithms  # noqa: F401  (registers every algorithm and its config section)

__version__ = "0.1.0"
