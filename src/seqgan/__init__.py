"""seqgan: SeqGAN (Yu, Zhang, Wang, Yu, AAAI 2017) and its variants on PyTorch."""

__version__ = "0.1.0"
