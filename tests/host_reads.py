"""`HostReads`: which operations of a block of code would read a value back from a GPU, found on the CPU.

On CUDA a read of a device value (`.item()`, `float(t)`, `bool(t)`, `.tolist()`, `.cpu()`, and the
operations whose output size depends on the data: `nonzero`, boolean indexing, `masked_select`,
`unique`, `bincount`, `repeat_interleave` without an output size) waits for every queued kernel, and
inside a CUDA graph's capture it is an error (`seqgan.cuda_graphs` then runs the step eagerly for
good). On the CPU the same reads cost nothing, so nothing shows them; this mode records them as
PyTorch dispatches them, with the lines of seqgan that made them, and the copies to a device that
seqgan's code makes of CPU tensors outside `seqgan.runtime.to_device` (see `COPY`).

Not recorded: `F.one_hot`'s range checks (read on the CPU only; on CUDA it relies on device
asserts). Recorded although free on a GPU: nothing known.
"""

from __future__ import annotations

import traceback
from collections import Counter

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

READS = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_dim", "unique_consecutive", "bincount"}
"""aten operations that read device values on the host (item() and bool() end in _local_scalar_dense)."""
INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}
"""aten operations that read when an index is a boolean mask (its nonzero runs inside, unseen)."""
METHODS = ("tolist", "numpy", "cpu")
"""Tensor methods that read (on the CPU they do not reach the dispatcher)."""
COPY = "to(device) of a CPU tensor"
"""A blocking copy from the host to a GPU waits for every queued kernel first. On the CPU such a
call is a no-op, so every `.to(device)` that seqgan's code makes of a CPU tensor counts: what a step
draws on the CPU goes through `seqgan.runtime.to_device` (pinned memory, no wait)."""


def seqgan_lines() -> str:
    """The innermost lines of seqgan's code on the stack, innermost first."""
    frames = [f for f in traceback.extract_stack()[:-2] if "/seqgan/" in f.filename]
    return " <- ".join(f"{f.filename.rsplit('/seqgan/', 1)[-1]}:{f.lineno} ({f.name})" for f in frames[::-1][:3])


class HostReads(TorchDispatchMode):
    """with HostReads() as reads: ...; then reads.sites: Counter of (operation, seqgan's lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.sites: Counter[tuple[str, str]] = Counter()
        self._paused = 0
        self._saved: dict[str, object] = {}

    @property
    def count(self) -> int:
        return sum(self.sites.values())

    def __str__(self) -> str:
        return "\n".join(f"{n} x {op} at {where}" for (op, where), n in self.sites.most_common()) or "no host reads"

    def _record(self, op: str) -> None:
        if not self._paused:
            self.sites[(op, seqgan_lines())] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.split("::")[-1]
        if name in READS or (name == "repeat_interleave" and (kwargs or {}).get("output_size") is None):
            self._record(name)
        elif name in INDEXING and any(
            isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in (args[1] or ())
        ):
            self._record(f"{name} by a boolean mask")
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        for method in METHODS:
            self._saved[method] = real = getattr(torch.Tensor, method)
            setattr(torch.Tensor, method, self._reading(method, real))
        self._saved["to"] = torch.Tensor.to
        torch.Tensor.to = self._copying(torch.Tensor.to)
        self._saved["one_hot"] = F.one_hot
        F.one_hot = self._unrecorded(F.one_hot)
        return super().__enter__()

    def __exit__(self, *exc):
        for method in (*METHODS, "to"):
            setattr(torch.Tensor, method, self._saved[method])
        F.one_hot = self._saved["one_hot"]
        return super().__exit__(*exc)

    def _reading(self, method: str, real):
        def read(tensor, *args, **kwargs):
            self._record(method)
            return real(tensor, *args, **kwargs)

        return read

    def _copying(self, real):
        def to(tensor, *args, **kwargs):
            device = kwargs.get("device", next((a for a in args if isinstance(a, (torch.device, str))), None))
            caller = traceback.extract_stack(limit=2)[0].filename
            if device is not None and tensor.device.type == "cpu" and not kwargs.get("non_blocking") and "/seqgan/" in caller:
                self._record(COPY)
            return real(tensor, *args, **kwargs)

        return to

    def _unrecorded(self, real):
        def call(*args, **kwargs):
            self._paused += 1
            try:
                return real(*args, **kwargs)
            finally:
                self._paused -= 1

        return call
