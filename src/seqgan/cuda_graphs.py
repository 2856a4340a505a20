"""Fixed-shape training steps (loss, backward, gradient clipping, optimizer step) replayed as CUDA graphs.

A D step at the paper's sizes (batch 64 x 20 tokens) is some sixty small kernels, so on a GPU its
time is the host's work of launching them (the issue measured a D epoch of 313 steps at 2.4 s on an
H200, the same as a ports-style loop), and the paper's protocol takes about a million such steps.
`StepGraphs` records one whole step of an optimizer, per kind of step and input shape, as a CUDA
graph and replays it: one launch per step, the host free to prepare the next batch. Following
PyTorch's whole-network capture:

- the first `warmup` steps of each kind run eagerly on a side stream (cuDNN and the optimizer's
  state are set up by them); they are real training steps, like every later one;
- the next one is captured with its inputs copied into static buffers, then replayed; each later
  step copies its inputs into those buffers and replays. The loss returned is the graph's static
  output: read or add it before the next step;
- Adam must be the fused kernel (`algorithms.base.adam` on CUDA), whose learning rate and
  hyperparameters the graph holds as they were at capture: a changed learning rate, a loaded
  optimizer state (new state tensors) or moved parameters drop the graphs, which are captured anew;
- dropout inside a graph draws from the device generator as the eager step would (each replay
  advances it by what the captured step consumed), so a checkpoint's RNG state still resumes it;
- Python that a step runs besides kernels does not run again on replay: `after_step` redoes what
  matters (D forgets its scoring tables, `Discriminator.weights_changed`);
- a step that cannot be captured (one that reads a value back to the host, or inputs off the GPU)
  runs eagerly from then on, with a warning that names the reason: slower, never wrong.

`step_graphs_apply` says where graphs are used: a CUDA optimizer of fused Adam, one process (DDP's
gradient hooks all-reduce outside the step), fp32 or tf32 (bf16 autocast's cast cache does not
belong in a graph), and the run's `cuda_graphs` setting on. Anywhere else the same steps run eagerly.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import torch

WARMUP_STEPS = 3
"""Eager steps of each kind before its capture (PyTorch's examples warm up with 3)."""

Inputs = Sequence[torch.Tensor | None]


def clipped_step(params, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float | None) -> None:
    """Backward, clip the gradients' global norm to `clip` (None: no clipping), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


def eager_step(
    loss_fn: Callable[..., torch.Tensor], inputs: Inputs, optimizer: torch.optim.Optimizer, clip: float | None
) -> torch.Tensor:
    """One step without graphs: loss_fn(*inputs), then `clipped_step` over the optimizer's parameters."""
    loss = loss_fn(*inputs)
    clipped_step(_params(optimizer), optimizer, loss, clip)
    return loss


def d_step_precision(run_precision: str, d_precision: str | None) -> str:
    """The precision that `step_graphs_apply` takes for D's steps: 'bf16' where the run's or D's own
    (`discriminator.precision`) is, else the run's. A float32 D inside a bf16 run stays eager as well:
    its steps still run inside the run's autocast."""
    return "bf16" if "bf16" in (run_precision, d_precision) else run_precision


def step_graphs_apply(optimizer: torch.optim.Optimizer, parallel: bool, precision: str, enabled: bool) -> bool:
    """Whether `StepGraphs` may run this optimizer's steps (see the module's docstring)."""
    params = _params(optimizer)
    return (
        enabled
        and not parallel
        and precision != "bf16"
        and bool(params)
        and all(p.device.type == "cuda" for p in params)
        and isinstance(optimizer, torch.optim.Adam)
        and all(group.get("fused") for group in optimizer.param_groups)
    )


@dataclass
class _Graph:
    replay: Callable[[], None]
    inputs: tuple[torch.Tensor | None, ...]  # the static buffers the captured step reads
    loss: torch.Tensor  # the captured step's loss, rewritten by every replay


class StepGraphs:
    """One optimizer's training steps as CUDA graphs: `step(kind, loss_fn, inputs, clip)` trains one
    step and returns its loss, eagerly for the first `warmup` steps of a (kind, clip, input shapes),
    then by replaying the graph of that step. `loss_fn` must be the same computation for a kind
    (its constants, e.g. label smoothing, belong in `kind`), take tensors of fixed shapes, and read
    nothing back to the host."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, after_step: Callable[[], None] | None = None, warmup: int = WARMUP_STEPS
    ) -> None:
        if warmup < 1:
            raise ValueError(f"warmup={warmup}: the optimizer's state must exist before a capture; use >= 1")
        self.optimizer, self.after_step, self.warmup = optimizer, after_step, warmup
        self.graphs: dict[Hashable, _Graph] = {}
        self.eager_steps: Counter[Hashable] = Counter()
        self.uncapturable: set[Hashable] = set()  # kinds whose capture failed: eager for good
        self._state: object = None  # the optimizer's state (a dict) the graphs were captured with
        self._settings: tuple | None = None  # and its hyperparameters and the parameters' memory
        self._side: torch.cuda.Stream | None = None
        self.device = _params(optimizer)[0].device

    def step(
        self, kind: Hashable, loss_fn: Callable[..., torch.Tensor], inputs: Inputs, clip: float | None = None
    ) -> torch.Tensor:
        self._drop_stale_graphs()
        key = (kind, clip, tuple(None if x is None else (tuple(x.shape), x.dtype, x.device) for x in inputs))
        graph = self.graphs.get(key)
        if graph is None and self.eager_steps[key] >= self.warmup and key not in self.uncapturable:
            graph = self._capture(key, loss_fn, inputs, clip)
        if graph is None:
            self.eager_steps[key] += 1
            loss = self._on_side_stream(lambda: eager_step(loss_fn, inputs, self.optimizer, clip))
        else:
            for static, x in zip(graph.inputs, inputs, strict=True):
                if static is not None:
                    static.copy_(x)
            graph.replay()
            loss = graph.loss
        if self.after_step is not None:
            self.after_step()
        return loss

    def _on_side_stream(self, run: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Warm-up steps run on a side stream, as capture does; the caller's stream then waits for it."""
        current = torch.cuda.current_stream()
        self._side = self._side or torch.cuda.Stream()
        self._side.wait_stream(current)  # the inputs are ready, and earlier reads of recycled memory done
        with torch.cuda.stream(self._side):
            loss = run()
        current.wait_stream(self._side)
        return loss

    def _capture(self, key: Hashable, loss_fn: Callable[..., torch.Tensor], inputs: Inputs, clip: float | None) -> _Graph | None:
        """The graph of a step of `key` (kept in `graphs`), or None, with a warning, if it cannot be captured."""
        if any(x is not None and x.device != self.device for x in inputs):
            return self._give_up(key, f"an input of the step is not on {self.device}")
        static = tuple(None if x is None else x.clone() for x in inputs)
        groups = self.optimizer.param_groups
        capturable = [group["capturable"] for group in groups]
        self.optimizer.zero_grad(set_to_none=True)  # the step's gradients live in the graph's memory
        try:
            for group in groups:  # fused Adam's kernels ignore the flag; step()'s capture check reads it
                group["capturable"] = True
            replay, loss = self._record(lambda: eager_step(loss_fn, static, self.optimizer, clip))
        except RuntimeError as error:  # nothing of the step ran: it runs eagerly instead
            return self._give_up(key, str(error).splitlines()[0])
        finally:
            for group, flag in zip(groups, capturable, strict=True):
                group["capturable"] = flag  # as saved in checkpoints: the state loads anywhere
        self.graphs[key] = _Graph(replay, static, loss.detach())
        return self.graphs[key]

    def _record(self, step: Callable[[], torch.Tensor]) -> tuple[Callable[[], None], torch.Tensor]:
        """Capture step() (nothing runs): the graph's replay and the loss tensor each replay rewrites."""
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        try:
            with torch.cuda.graph(graph):
                loss = step()
        except RuntimeError:
            torch.cuda.synchronize()  # the failed capture has ended; the device is ready for eager steps
            raise
        return graph.replay, loss

    def _give_up(self, key: Hashable, reason: str) -> None:
        self.uncapturable.add(key)
        warnings.warn(
            f"training step {key[0]!r} runs without a CUDA graph: {reason} (cuda_graphs=false silences this)", stacklevel=3
        )

    def _drop_stale_graphs(self) -> None:
        """Graphs hold the optimizer's state tensors, its hyperparameters and the parameters'
        memory as they were at capture: if any changed, forget them (and their warm-ups)."""
        settings = (
            tuple((group["lr"], group["betas"], group["eps"], group["weight_decay"]) for group in self.optimizer.param_groups),
            tuple(p.data_ptr() for p in _params(self.optimizer)),
        )
        if self.optimizer.state is not self._state or settings != self._settings:  # load_state_dict: a new state dict
            self.graphs.clear()
            self.eager_steps.clear()
            self._state, self._settings = self.optimizer.state, settings


def _params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]
