"""Process-wide CPU settings, applied once by the command line and the benchmarks.

- torch intra-op threads (1 by default: on 2 cores, two threads beside another busy process were
  measured 30-50x slower).
- glibc's allocator keeps freed memory instead of returning it: tensors of a few MB (a batch of
  5000-word logits) are otherwise mapped fresh from the OS on every step, and the page faults
  were measured to cost a third of an MLE step (83 ms -> 56 ms per step).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator() -> bool:
    """Ask glibc to keep up to 32 MB blocks on its heap and not trim it; False if not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
        ok &= libc.mallopt(_M_TOP_PAD, 256 * 1024 * 1024)
        return bool(ok)
    except (OSError, AttributeError):
        return False


def configure(threads: int) -> None:
    torch.set_num_threads(threads)
    tune_allocator()
