"""A GPU played by the CPU, to find device faults without one: `with virtual_gpu(): ...`.

seqgan's CUDA path was written without a GPU to run it on, and the fault that crashed its first
GPU run (issue 19: the oracle's data drawn with a CPU generator for a tensor on the GPU) is of a
kind that the CPU never shows: there every tensor and every generator is on the one device. This
module gives PyTorch a second device, `vgpu` (PyTorch's PrivateUse1 backend, defined from Python),
whose tensors hold CPU tensors, and refuses what CUDA refuses:
- an operation with tensors on both devices (CPU tensors of zero dimensions excepted, which CUDA
  takes as scalars; and copies, `.to()` and indexing by CPU indices, which CUDA allows);
- a draw for a vgpu tensor from a CPU generator, or for a CPU tensor from a vgpu one;
- `.numpy()` of a vgpu tensor.

And it keeps what CUDA keeps apart: the device's default generator (dropout, draws without a
generator) is a stream of its own, seeded by `torch.manual_seed` and not in `torch.get_rng_state()`.

Within `virtual_gpu()`, `device=cuda` and `device=auto` resolve to `vgpu`, and
`torch.Generator("vgpu")` makes a generator that the draws know as the device's. seqgan's GPU
routes (chunk sizes, rollout rows, the fused convolution, the paths without host reads) key on "not
the CPU", so a vgpu run takes them; CUDA graphs, pinned copies, bf16 autocast and NCCL key on CUDA
itself and are not played. The CUDA-only kernels that PyTorch's composite operations pick on a
device other than the CPU (the fused LSTM and GRU cells, fused dropout) are written here in CPU
operations. It is slow (every operation passes through Python): for tiny runs.

Import it before the process's first backward pass (tests/conftest.py does, and
tests/scripts/virtual_gpu_seqgan.py): PyTorch's autograd engine sizes its queues per device then,
and a device registered later fails its backward passes with an internal assert.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from unittest import mock

import safetensors.torch
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.backend_registration import _DummyDeviceGuard, _DummyPrivateUse1Hook

if not hasattr(getattr(torch._C, "_acc", None), "register_python_privateuseone_device_guard"):
    raise ImportError(
        f"torch {torch.__version__} cannot define a device from Python (torch._C._acc); the played GPU needs a newer torch"
    )
torch.utils.rename_privateuse1_backend("vgpu")
VGPU = torch.device("vgpu", 0)
aten = torch.ops.aten
CROSS_DEVICE = {aten._to_copy.default, aten.copy_.default, aten._copy_from.default, aten._copy_from_and_resize.default}
"""Operations that CUDA runs with their tensors on two devices."""
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
"""Operations whose index tensors may stay on the CPU while the indexed tensor (and the values put) are on the GPU."""
MARK = 1 << 62
"""The bit a vgpu generator's seed carries, by which a draw knows it (seqgan's seeds are small)."""


class VTensor(torch.Tensor):
    """A tensor on `vgpu`: it reports that device and holds its values in a CPU tensor, `elem`."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor) -> VTensor:
        r = torch.Tensor._make_wrapper_subclass(
            cls,
            elem.shape,
            strides=elem.stride(),
            storage_offset=elem.storage_offset(),
            dtype=elem.dtype,
            device=VGPU,
        )
        r.elem = elem
        return r

    def __repr__(self, *, tensor_contents=None) -> str:
        return f"VTensor({self.elem!r})"

    def numpy(self, *args, **kwargs):
        raise TypeError(
            "can't convert vgpu:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first."
        )

    def tolist(self):
        return self.elem.tolist()  # CUDA's reads the values back

    def __reduce_ex__(self, protocol):
        return self.elem.__reduce_ex__(protocol)  # torch.save: as a CUDA tensor loaded with map_location="cpu"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return dispatch(func, args, kwargs or {})


def marked(generator: torch.Generator) -> bool:
    """Whether `generator` (any Python object for it) is a vgpu generator."""
    return bool(generator.initial_seed() & MARK)


class VGenerator(torch.Generator):
    """`torch.Generator` while the device is played: `VGenerator("vgpu")` is a CPU generator whose
    seed carries MARK, so that a draw knows it; on other devices a plain generator."""

    def __new__(cls, device="cpu"):
        on = torch.device(device).type == "vgpu"
        g = torch._C.Generator.__new__(cls, "cpu" if on else device)
        g.on_vgpu = on
        if on:
            torch._C.Generator.manual_seed(g, torch._C.Generator.initial_seed(g) | MARK)
        return g

    def manual_seed(self, seed: int) -> VGenerator:
        torch._C.Generator.manual_seed(self, int(seed) | MARK if self.on_vgpu else seed)
        return self

    def initial_seed(self) -> int:
        seed = torch._C.Generator.initial_seed(self)
        return seed & ~MARK if self.on_vgpu else seed

    @property
    def device(self) -> torch.device:
        return VGPU if self.on_vgpu else torch._C.Generator.device.__get__(self)


class Backend:
    """`torch.vgpu`: what PyTorch asks of a device's module, and the device's default generator."""

    def __init__(self) -> None:
        self.default = VGenerator("vgpu")

    def is_initialized(self) -> bool:
        return True

    def is_available(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def device_count(self) -> int:
        return 1

    def get_amp_supported_dtype(self) -> list[torch.dtype]:
        return [torch.float16, torch.bfloat16]

    def _is_in_bad_fork(self) -> bool:
        return False

    def manual_seed_all(self, seed: int) -> None:
        self.default.manual_seed(seed)

    manual_seed = manual_seed_all

    def get_rng_state(self, device=None) -> torch.Tensor:
        return self.default.get_state()

    def set_rng_state(self, state: torch.Tensor, device=None) -> None:
        self.default.set_state(state)


BACKEND = Backend()
torch.utils.generate_methods_for_privateuse1_backend()
torch._register_device_module("vgpu", BACKEND)
torch._C._acc.register_python_privateuseone_hook(_DummyPrivateUse1Hook())
torch._C._acc.register_python_privateuseone_device_guard(_DummyDeviceGuard())


@functools.cache
def facts(func) -> tuple[bool, bool]:
    """Whether operation `func` takes a generator, and whether it returns its (mutated) input."""
    schema = func._schema
    in_place = schema.is_mutable and bool(schema.returns) and schema.returns[0].alias_info is not None
    return any(a.name == "generator" for a in schema.arguments), in_place


def tree_map(fn, x):
    """`fn` on every leaf of nested tuples, lists and dicts (an operation's arguments and results).
    Written here rather than torch's `tree_map`, which took two thirds of `dispatch`'s time (a smoke
    run on the played GPU: 6.1 s with it, 4.5 s with this)."""
    if isinstance(x, tuple | list):
        return type(x)(tree_map(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: tree_map(fn, v) for k, v in x.items()}
    return fn(x)


def cpu_indices_only(args) -> bool:
    """Whether an indexing operation's CPU tensors are its indices alone (args[1]), its indexed tensor
    (and the values put, args[2]) on the device: what CUDA takes."""
    on_cpu = [isinstance(t, torch.Tensor) and not isinstance(t, VTensor) and t.dim() > 0 for t in (args[0], *args[2:])]
    return isinstance(args[0], VTensor) and not any(on_cpu)


def dispatch(func, args, kwargs):
    """Run `func` on the CPU values of its tensors, refusing what CUDA would refuse; its results on
    vgpu when an input was there or a `device=` asked for it."""
    devices: set[str] = set()

    def unwrap(t):
        if isinstance(t, VTensor):
            devices.add("vgpu")
            return t.elem
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            devices.add("cpu")
        return t

    originals = (args, kwargs)
    args, kwargs = tree_map(unwrap, (tuple(args), dict(kwargs)))
    to_vgpu = "vgpu" in devices
    if kwargs.get("device") is not None:
        to_vgpu = torch.device(kwargs["device"]).type == "vgpu"
        kwargs["device"] = torch.device("cpu") if to_vgpu else kwargs["device"]
    if len(devices) > 1 and func not in CROSS_DEVICE and not (func in INDEXING and cpu_indices_only(originals[0])):
        raise RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two devices, vgpu:0 and cpu! ({func})"
        )
    takes_generator, in_place = facts(func)
    if takes_generator and kwargs.get("generator") is not None and marked(kwargs["generator"]) != to_vgpu:
        want, found = ("vgpu", "cpu") if to_vgpu else ("cpu", "vgpu")
        raise RuntimeError(f"Expected a '{want}' device type for generator but found '{found}' ({func})")
    if takes_generator and to_vgpu and kwargs.get("generator") is None:
        kwargs["generator"] = BACKEND.default
    out = KERNELS[func](*args, **kwargs) if func in KERNELS and to_vgpu else func(*args, **kwargs)
    if in_place:
        self_ = originals[1]["out"] if "out" in originals[1] else originals[0][0]  # in place: the tensor itself
        if isinstance(self_, VTensor) and (self_.shape, self_.stride()) != (self_.elem.shape, self_.elem.stride()):
            with torch._C._DisableTorchDispatch():  # transpose_, resize_, ...: the wrapper takes the new layout
                torch.Tensor.as_strided_(self_, self_.elem.shape, self_.elem.stride(), self_.elem.storage_offset())
        return self_
    return tree_map(lambda t: VTensor(t) if to_vgpu and isinstance(t, torch.Tensor) else t, out)


class Factories(TorchDispatchMode):
    """Sends every operation, factories with `device=vgpu` included, through `dispatch`."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return dispatch(func, args, kwargs or {})


# The CUDA-only kernels that PyTorch's composite operations choose on a device other than the CPU.


def fused_lstm_cell(input_gates, hidden_gates, cx, input_bias=None, hidden_bias=None):
    gates = input_gates + hidden_gates
    if input_bias is not None:
        gates = gates + input_bias + hidden_bias
    i, f, g, o = gates.chunk(4, 1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    cy = f * cx + i * g
    return o * cy.tanh(), cy, torch.cat([i, f, g, o], 1)


def fused_lstm_cell_backward(grad_hy, grad_cy, cx, cy, workspace, has_bias):
    i, f, g, o = workspace.chunk(4, 1)
    tanh_cy = cy.tanh()
    grad_hy = torch.zeros_like(cy) if grad_hy is None else grad_hy
    grad_c = grad_hy * o * (1 - tanh_cy * tanh_cy) + (0 if grad_cy is None else grad_cy)
    grad_gates = torch.cat(
        [grad_c * g * i * (1 - i), grad_c * cx * f * (1 - f), grad_c * i * (1 - g * g), grad_hy * tanh_cy * o * (1 - o)], 1
    )
    return grad_gates, grad_c * f, grad_gates.sum(0) if has_bias else None


def fused_gru_cell(input_gates, hidden_gates, hx, input_bias=None, hidden_bias=None):
    if input_bias is not None:
        input_gates, hidden_gates = input_gates + input_bias, hidden_gates + hidden_bias
    ir, iz, i_n = input_gates.chunk(3, 1)
    hr, hz, h_n = hidden_gates.chunk(3, 1)
    r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
    n = (i_n + r * h_n).tanh()
    return n + z * (hx - n), torch.cat([r, z, n, hx, h_n], 1)


def fused_gru_cell_backward(grad_hy, workspace, has_bias):
    r, z, n, hx, h_n = workspace.chunk(5, 1)
    grad_n = grad_hy * (1 - z) * (1 - n * n)
    grad_z = grad_hy * (hx - n) * z * (1 - z)
    grad_r = grad_n * h_n * r * (1 - r)
    grad_input = torch.cat([grad_r, grad_z, grad_n], 1)
    grad_hidden = torch.cat([grad_r, grad_z, grad_n * r], 1)
    bias = (grad_input.sum(0), grad_hidden.sum(0)) if has_bias else (None, None)
    return grad_input, grad_hidden, grad_hy * z, *bias


def fused_dropout(input, p, train=None):
    """`native_dropout`, its mask drawn from the device's default generator (CUDA's is)."""
    if not train or p == 0:
        return input.clone(), torch.ones_like(input, dtype=torch.bool)
    mask = torch.empty_like(input).bernoulli_(1 - p, generator=BACKEND.default).bool()
    return input * mask / (1 - p), mask


KERNELS = {
    aten._thnn_fused_lstm_cell.default: fused_lstm_cell,
    aten._thnn_fused_lstm_cell_backward_impl.default: fused_lstm_cell_backward,
    aten._thnn_fused_gru_cell.default: fused_gru_cell,
    aten._thnn_fused_gru_cell_backward.default: fused_gru_cell_backward,
    aten.native_dropout.default: fused_dropout,
}

# The backend's own kernels, for what reaches it past the Python key (`torch.tensor(..., device=)`).
_lib = torch.library.Library("aten", "IMPL")
_lib.impl(
    "empty_strided",
    lambda size, stride, *, dtype=None, layout=None, device=None, pin_memory=None: VTensor(
        torch.empty_strided(size, stride, dtype=dtype)
    ),
    "PrivateUse1",
)
_lib.impl(
    "empty.memory_format",
    lambda size, *, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None: VTensor(
        torch.empty(size, dtype=dtype, memory_format=memory_format)
    ),
    "PrivateUse1",
)


def _copy_from(src, dst, non_blocking=False):
    (dst.elem if isinstance(dst, VTensor) else dst).copy_(src.elem if isinstance(src, VTensor) else src)
    return dst


_lib.impl("_copy_from", _copy_from, "PrivateUse1")


def _save_file(tensors: dict[str, torch.Tensor], *args, **kwargs) -> None:
    """safetensors' `save_file`, which copies a GPU's tensors to the host first, as it does CUDA's."""
    safetensors.torch.save_file({k: v.cpu() if isinstance(v, VTensor) else v for k, v in tensors.items()}, *args, **kwargs)


def _resolve(name: str) -> torch.device:
    return VGPU if name in ("cuda", "auto") else torch.device(name)


@contextlib.contextmanager
def virtual_gpu() -> Iterator[None]:
    """Run seqgan with `device=cuda` (or auto) on the played GPU. It does not nest: a second entry
    would patch the patches (and a lock would hang), so it fails at once."""
    if isinstance(torch.Generator, type) and issubclass(torch.Generator, VGenerator):
        raise RuntimeError("virtual_gpu() is already active: it does not nest")
    with contextlib.ExitStack() as stack:
        for module in ("seqgan.training.experiment", "seqgan.training.run", "seqgan.api"):
            stack.enter_context(mock.patch(f"{module}.resolve_device", _resolve))
        for module in ("seqgan.training.experiment", "seqgan.training.checkpoint", "seqgan.metrics.classifier"):
            stack.enter_context(mock.patch(f"{module}.save_file", _save_file))
        stack.enter_context(mock.patch("torch.Generator", VGenerator))
        stack.enter_context(mock.patch("torch.cuda.is_available", lambda: True))
        stack.enter_context(Factories())
        yield
