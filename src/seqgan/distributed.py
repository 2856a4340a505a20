"""Data-parallel training on torch.distributed, as launched by torchrun (issue 7).

`torchrun --nproc_per_node=P -m seqgan train CONFIG` sets RANK, WORLD_SIZE and LOCAL_RANK (and the
rendezvous variables) in every process; `init_from_env` reads them and joins the process group,
with gloo on CPU and NCCL on CUDA. Without those variables the run is one process and nothing here
talks to anyone: every helper is then the identity.

Batch sizes in the config stay global: every rank holds the whole training set, draws the same
global batch order from an identical shuffle stream, and trains on its `shard` of each batch; DDP
averages the gradients, and losses are scaled so that the average is the global batch's mean.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import torch
import torch.distributed as td
from torch import nn
from torch.nn.parallel import DistributedDataParallel

M = TypeVar("M", bound=nn.Module)
P = ParamSpec("P")
R = TypeVar("R")

# Rank r > 0 offsets its sampling seeds by r * RANK_SEED_STRIDE: rank 0 keeps the single-process streams.
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank of world (0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def parallel(self) -> bool:
        return self.world > 1

    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of n (n divisible by world, checked by `check_divisible`)."""
        return shard(n, self.rank, self.world)

    def part(self, n: int) -> slice:
        """This rank's part of n items when they need not split evenly (evaluation: results are
        weighted by counts, so uneven parts are exact)."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    def seed(self, seed: int) -> int:
        """The seed of this rank's own random streams (sampling, dropout, evaluation samples)."""
        return seed + self.rank * RANK_SEED_STRIDE


SINGLE = Dist()


def shard(n: int, rank: int, world: int) -> slice:
    """Rows [rank * n / world, (rank + 1) * n / world) of n: equal, contiguous, in rank order."""
    if n % world:
        raise ValueError(f"{n} rows do not split evenly over {world} processes")
    size = n // world
    return slice(rank * size, (rank + 1) * size)


def init_from_env(device: torch.device | None = None) -> Dist:
    """Join torchrun's process group (gloo on CPU, NCCL on CUDA); a single process when not under torchrun."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return SINGLE
    dist = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not td.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(dist.local_rank)
        td.init_process_group(backend="nccl" if cuda else "gloo")
    global _JOINED
    _JOINED = True
    return dist


_JOINED = False  # whether this process joined a process group (`init_from_env`)


def cleanup() -> None:
    """Leave the process group (every rank, once no more collectives will run)."""
    if td.is_initialized():
        gc.collect()
        td.destroy_process_group()


def finish(code: int) -> int:
    """The exit of a process: `code` back to the caller, except in a torchrun worker, which ends here
    with `code` and without interpreter finalization.

    Why: once DDP has run, gloo keeps its worker threads, and the work objects they hold (with tensors
    that reference Python objects), alive past `destroy_process_group`. Interpreter finalization then
    destroys them without the GIL and aborts the process ("terminate called without an active
    exception"), by chance, after all the work is done and written (measured here: 3 of 8 two-process
    runs under load; pytorch/pytorch#179291 describes the cause). Everything a run writes is closed by
    then, so the worker flushes its output and leaves at once."""
    if not _JOINED:
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def barrier(dist: Dist) -> None:
    if dist.parallel:
        td.barrier()


def all_reduce_sum(values: list[float], dist: Dist, device: torch.device | str = "cpu") -> list[float]:
    """Elementwise sum over ranks of a few numbers (float64, one collective)."""
    if not dist.parallel:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    td.all_reduce(t)
    return t.tolist()


def all_reduce_mean(value: float, dist: Dist, device: torch.device | str = "cpu") -> float:
    return all_reduce_sum([value], dist, device)[0] / dist.world


def all_reduce_(tensor: torch.Tensor, dist: Dist, op: str = "sum") -> torch.Tensor:
    """In-place sum (or max) of a tensor over ranks."""
    if dist.parallel:
        td.all_reduce(tensor, op=td.ReduceOp.MAX if op == "max" else td.ReduceOp.SUM)
    return tensor


def all_gather_rows(x: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Concatenate every rank's (n, ...) tensor in rank order: (world * n, ...)."""
    if not dist.parallel:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.world)]
    td.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_gather_object(obj: object, dist: Dist) -> list[object]:
    if not dist.parallel:
        return [obj]
    out: list[object] = [None] * dist.world
    td.all_gather_object(out, obj)
    return out


class Replicated(nn.Module, Generic[M]):
    """One wrapper of a model that DDP can hold and that calls any of the model's methods through
    `forward` (DDP hooks only `forward`): `call(wrapper, Generator.log_probs, tokens, noise=z)` runs
    `generator.log_probs(tokens, noise=z)`, with its gradients averaged over the ranks. One wrapper
    serves every method that builds a training graph, so a model has one DDP instance."""

    def __init__(self, module: M) -> None:
        super().__init__()
        self.module = module

    def forward(self, method: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return method(self.module, *args, **kwargs)


def call(wrapper: nn.Module, method: Callable[Concatenate[M, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`method(model, *args, **kwargs)` through `wrapper`, the model's `replicate` (DDP under torchrun):
    the method is named by reference (`Generator.log_probs`), so its arguments and result are typed."""
    return wrapper(method, *args, **kwargs)


def replicate(module: M, dist: Dist) -> nn.Module:
    """`Replicated(module)`, wrapped in DistributedDataParallel when there is more than one rank."""
    wrapped = Replicated(module)
    if not dist.parallel:
        return wrapped
    device_ids = [dist.local_rank] if next(module.parameters()).is_cuda else None
    return DistributedDataParallel(wrapped, device_ids=device_ids)


def broadcast_(tensors: list[torch.Tensor], dist: Dist) -> None:
    """Rank 0's values of `tensors` on every rank, in place (what DDP does to a model it wraps)."""
    if dist.parallel:
        for t in tensors:
            td.broadcast(t.data, src=0)


def average_gradients(params: list[nn.Parameter], dist: Dist) -> None:
    """Each parameter's gradient replaced by its mean over the ranks, in one collective: what DDP's
    hooks do, for a model that is not wrapped (LeakGAN's G holds D, which G's losses never train).
    A parameter without a gradient on this rank counts as a zero one, so every rank sends the same
    tensors."""
    if not dist.parallel:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    td.all_reduce(flat)
    flat /= dist.world
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset : offset + p.numel()].view_as(p.grad))
        offset += p.numel()


def global_mean_scale(local_count: float, dist: Dist, device: torch.device | str = "cpu") -> float:
    """Factor that turns this rank's mean over `local_count` items into its share of the global mean,
    once DDP averages gradients over ranks: local_count * world / global_count (1 on one rank)."""
    if not dist.parallel:
        return 1.0
    total = all_reduce_sum([local_count], dist, device)[0]
    return local_count * dist.world / max(total, 1.0)
