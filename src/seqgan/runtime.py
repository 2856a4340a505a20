"""Process-wide settings, applied once by the command line, the trainer and the benchmarks.

- numerics (`set_numerics`): TF32 on CUDA or not, and PyTorch's deterministic mode with cuBLAS's
  fixed workspace, so that a CUDA run can repeat bitwise; `autocast` for bf16 training steps;
- torch intra-op threads (1 by default: on 2 cores, two threads beside another busy process were
  measured 30-50x slower).
- `host_reads_are_free`: whether code may read a tensor's values back to decide something (on the
  CPU, yes; on a GPU such a read waits for the device and no CUDA graph can hold it); `to_device`
  moves the CPU's random draws to a GPU without such a wait;
- glibc's allocator keeps freed memory instead of returning it: tensors of a few MB (a batch of
  5000-word logits) are otherwise mapped fresh from the OS on every step, and the page faults
  were measured to cost a third of an MLE step (83 ms -> 56 ms per step).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os

import torch

from seqgan.errors import ConfigError

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


def set_numerics(precision: str, deterministic: bool) -> None:
    """precision: 'fp32', 'tf32' or 'bf16' (`seqgan.config.PRECISIONS`). TF32 for CUDA matmuls and convolutions only with precision 'tf32' (fp32 otherwise, as on
    the CPU); deterministic=True makes PyTorch pick deterministic kernels (and fail on an op that
    has none, naming it) and fixes cuBLAS's workspace, which must happen before the first cuBLAS
    call of the process. deterministic=False restores PyTorch's defaults."""
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic


DETERMINISTIC_CUDA_SINCE = (2, 6)
"""The first torch whose CUDA `cumsum` has a deterministic kernel. Sampling takes cumulative sums
(`seqgan.models.sampling.inverse_cdf`), and before 2.6 deterministic mode refuses them on CUDA
("cumsum_cuda_kernel does not have a deterministic implementation"): 2.5.1's CUDA library still
raises that alert, 2.6.0's has the deterministic scan instead."""


def check_deterministic(device: torch.device, deterministic: bool) -> None:
    """Refuse deterministic=true on CUDA with a torch that would fail at the first sample, before the run starts."""
    version = torch.__version__
    if deterministic and device.type == "cuda" and torch.torch_version.TorchVersion(version) < DETERMINISTIC_CUDA_SINCE:
        since = ".".join(map(str, DETERMINISTIC_CUDA_SINCE))
        raise ConfigError(
            f"deterministic=true on CUDA needs torch >= {since} (its CUDA cumsum, which sampling uses, has no "
            f"deterministic kernel before); this is torch {version}: upgrade torch, or set deterministic=false"
        )


@functools.cache
def cpu_bf16_lstm_works() -> bool:
    """Whether PyTorch runs an LSTM under bfloat16 autocast on this CPU, tried once on a 1-unit LSTM.
    Its oneDNN kernel wants AVX-512 or AMX: it runs on an AMD EPYC of the Zen 4 generation (AVX512-BF16)
    and on a Xeon with AMX, and on a Zen 3 EPYC (AVX2 only) fails with "could not create a primitive
    descriptor for the LSTM forward propagation primitive". The probe's weights are drawn from a fork
    of the global random stream: a run that asks after seeding draws what it would have drawn."""
    with torch.random.fork_rng(devices=[]):
        lstm = torch.nn.LSTM(1, 1)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 1, 1))
    except RuntimeError:
        return False
    return True


def lstms_in_bf16(models: dict[str, torch.nn.Module], precision: str) -> list[tuple[str, str, bool]]:
    """The `nn.LSTM` layers of `models` that run under bfloat16 autocast, as (qualified name, the
    setting that puts it there, whether it is part of a D). A D's layers run in its `compute_dtype`
    when it has one (`discriminator.precision`), every other layer in the run's `precision`."""
    found = []

    def walk(name: str, module: torch.nn.Module, setting: str | None, in_d: bool) -> None:
        if hasattr(module, "compute_dtype"):  # a Discriminator (duck-typed: runtime imports no model)
            in_d, dtype = True, module.compute_dtype
            if dtype is not None:
                setting = "discriminator.precision=bf16" if dtype == torch.bfloat16 else None
        if setting is not None and isinstance(module, torch.nn.LSTM):
            found.append((name, setting, in_d))
        for child, sub in module.named_children():
            walk(f"{name}.{child}", sub, setting, in_d)

    for name, model in models.items():
        walk(name, model, "precision=bf16" if precision == "bf16" else None, False)
    return found


def check_precision(device: torch.device, precision: str, models: dict[str, torch.nn.Module]) -> None:
    """Refuse, before a run starts, bf16 for an LSTM on a CPU whose PyTorch cannot run one in bf16
    (it would fail at the first step that uses it: G's at the first MLE step, an RNN D's later).
    GRU cells, LSTM cells and every other layer do run in bf16 there."""
    found = lstms_in_bf16(models, precision) if device.type == "cpu" else []
    if not found or cpu_bf16_lstm_works():  # probed only for a run with an LSTM in bf16
        return
    settings = " and ".join(sorted({setting for _, setting, _ in found}))
    d_alone = "" if any(in_d for *_, in_d in found) else "; discriminator.precision=bf16 still runs D alone in bf16"
    raise ConfigError(
        f"{settings}: PyTorch cannot run an LSTM in bf16 on this CPU (oneDNN's bf16 kernels want AVX-512 or AMX, "
        f"which it lacks), and this run's {', '.join(name for name, *_ in found)} would; use fp32 instead of {settings}, "
        f"or GRU cells for them (generator.cell=gru, discriminator.rnn_cell=gru, condition.encoder_cell=gru){d_alone}"
    )


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context a training step runs in: bfloat16 autocast with precision 'bf16' (matmuls,
    convolutions and recurrent layers in bf16, parameters and optimizer state in fp32), else nothing."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def host_reads_are_free(device: torch.device) -> bool:
    """Whether reading a value back to the host costs nothing on `device`: on the CPU it does; on a
    GPU it waits for every queued kernel, and a CUDA graph cannot hold it (`seqgan.cuda_graphs`).
    Code with a cheaper route that needs such a read takes it only where this is True."""
    return device.type == "cpu"


GPU_CHUNK_VALUES = 1 << 24
"""Values per chunk of a loop over rows on a GPU (64 MB in fp32): `chunk_rows`."""


def chunk_rows(values_per_row: int, device: torch.device, cpu_rows: int) -> int:
    """Rows per chunk of a loop over rows whose chunk makes `values_per_row` values a row: `cpu_rows`
    on the CPU (sized for its caches); on a GPU, where every chunk is a launch or more and caches do
    not decide, as many rows as `GPU_CHUNK_VALUES` values hold, and never fewer than `cpu_rows`."""
    if device.type == "cpu":
        return cpu_rows
    return max(cpu_rows, GPU_CHUNK_VALUES // max(values_per_row, 1))


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`, without making the host wait: from the CPU to a GPU through pinned
    memory and asynchronously, where a plain copy first waits for every kernel queued before it (a
    host synchronisation). For what a step draws on the CPU's random stream (batch orders and
    indices, noise) so that a GPU run sees the CPU run's draws."""
    if tensor.device == device:
        return tensor
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
