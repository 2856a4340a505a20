"""Checkpoints: everything needed to sample from, evaluate or resume a run.

A checkpoint is a folder `checkpoints/<step>-<phase>-<epoch>/` holding the weights in safetensors
(`generator`, `rollout`, `discriminator`) and `state.pt` (optimizer states, RNG states, phase,
epoch, format version) loaded with `torch.load(weights_only=True)`, which runs no code from the
file. Folders are written under a temporary name, fsynced and renamed, so a crash never leaves a
half-written checkpoint under a real name; `checkpoints/latest` names the newest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from seqgan.files import fsync_dir, write_atomic_text

FORMAT_VERSION = 1
MODELS = ("generator", "rollout", "discriminator")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the run."""


def save_checkpoint(root: Path, name: str, models: dict[str, nn.Module], state: dict[str, Any], keep: int) -> Path:
    """Write `root/name/` atomically, point `root/latest` at it, keep the newest `keep` folders."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for key, model in models.items():
            save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, tmp / f"{key}.safetensors")
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp / "state.pt")
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
    except OSError as err:  # disk full, quota, permissions: leave every earlier checkpoint as it was
        shutil.rmtree(tmp, ignore_errors=True)
        previous = (root / "latest").read_text(encoding="utf-8").strip() if (root / "latest").is_file() else None
        kept = f"the previous checkpoint {root / previous} is intact" if previous else "no earlier checkpoint exists"
        raise CheckpointError(
            f"could not write checkpoint {final} ({err.strerror or err}); {kept}; free space and resume"
        ) from None
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(root)
    write_atomic_text(root / "latest", name + "\n")
    for old in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:-keep]:
        shutil.rmtree(old)
    return final


def latest_checkpoint(root: Path) -> Path:
    pointer = root / "latest"
    if not pointer.is_file():
        raise CheckpointError(f"{root}: no checkpoint found (no 'latest' file); was the run started with 'seqgan train'?")
    path = root / pointer.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {path.name}, which does not exist")
    return path


def find_checkpoint(root: Path, spec: str | None) -> Path:
    """The checkpoint a user names: None -> the latest; a folder name (e.g. `0-mle-000080`); or a
    phase name (`mle`, `d_pretrain`, `adversarial`) -> the last checkpoint of that phase (for `mle`:
    the generator that adversarial training started from)."""
    if spec is None:
        return latest_checkpoint(root)
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if spec in names:
        return root / spec
    of_phase = [n for n in names if n.split("-", 1)[-1].rsplit("-", 1)[0] == spec]
    if of_phase:
        return root / of_phase[-1]
    raise CheckpointError(
        f"{root}: no checkpoint {spec!r}; name a phase (mle, d_pretrain, adversarial) or one of: {', '.join(names) or 'none'}"
        + (" (older ones were deleted: checkpoint.keep)" if names else "")
    )


def load_weights(path: Path, key: str, model: nn.Module) -> None:
    file = path / f"{key}.safetensors"
    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        weights = load_file(file)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{file}: unreadable ({err})") from None
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()}
    if expected != found:
        diffs = [
            f"{k}: checkpoint {found.get(k, 'missing')} vs config {expected.get(k, 'missing')}"
            for k in sorted(expected.keys() | found.keys())
            if expected.get(k) != found.get(k)
        ]
        raise CheckpointError(
            f"{file} does not match the model in the config ({'; '.join(diffs[:3])}{' ...' if len(diffs) > 3 else ''}); "
            "resume with the config the run was started with (its config.yaml), or start a new run"
        )
    model.load_state_dict(weights)


def load_state(path: Path) -> dict[str, Any]:
    file = path / "state.pt"
    if not file.is_file():
        raise CheckpointError(f"{file}: missing")
    try:
        state = torch.load(file, weights_only=True, map_location="cpu")  # a GPU run's state opens anywhere
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{file}: unreadable ({err})") from None
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{file}: format version {state.get('format_version')}, this seqgan reads {FORMAT_VERSION}")
    return state
