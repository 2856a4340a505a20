"""Checkpoints: everything needed to sample from, evaluate or resume a run.

A checkpoint is a folder `checkpoints/<step>-<phase>-<epoch>/` holding the weights in safetensors
(`generator`, `rollout`, `discriminator`) and `state.pt` (optimizer states, RNG states, phase,
epoch, format version) loaded with `torch.load(weights_only=True)`, which runs no code from the
file, and `manifest.json`: the SHA-256 of every other file, checked on loading, so a damaged file
(truncated, overwritten, bit rot) is named as damaged instead of loading wrong weights or failing
with an OS error. Folders are written under a temporary name, fsynced and renamed, so a crash never
leaves a half-written checkpoint under a real name; `checkpoints/latest` names the newest.

`checkpoint.keep` keeps the newest folders, and always the last one of MLE pre-training (`DIR@mle`:
the generator adversarial training started from).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save_file
from torch import nn

from seqgan.files import fsync_dir, write_atomic_text

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not match the run."""


class DamagedCheckpointError(CheckpointError):
    """A file of a checkpoint is missing, unreadable or not what was written (an earlier checkpoint may still serve)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(folder: Path) -> None:
    """The SHA-256 of every file in `folder` (written last, before the folder gets its real name)."""
    files = {f.name: _sha256(f.read_bytes()) for f in sorted(folder.iterdir()) if f.is_file() and f.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"sha256": files}, indent=1) + "\n", encoding="utf-8")


def read_checked(file: Path) -> bytes:
    """The bytes of a checkpoint file, checked against its folder's manifest when there is one
    (checkpoints written before manifests existed are read unchecked)."""
    if not file.is_file():
        raise DamagedCheckpointError(f"{file}: missing; the checkpoint is incomplete")
    data = file.read_bytes()
    manifest = file.parent / MANIFEST
    if not manifest.is_file():
        return data
    try:
        expected = json.loads(manifest.read_text(encoding="utf-8"))["sha256"].get(file.name)
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as err:
        raise DamagedCheckpointError(f"{manifest}: damaged ({err}); the checkpoint cannot be trusted") from None
    if expected is not None and expected != _sha256(data):
        raise DamagedCheckpointError(
            f"{file}: damaged (its SHA-256 differs from the one written in {MANIFEST}: truncated or overwritten)"
        )
    return data


def save_checkpoint(
    root: Path, name: str, models: dict[str, nn.Module | dict[str, torch.Tensor]], state: dict[str, Any], keep: int
) -> Path:
    """Write `root/name/` atomically, point `root/latest` at it, keep the newest `keep` folders (and
    the last MLE one). `models`: each model, or its state dict, by file name."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for key, model in models.items():
            weights = model.state_dict() if isinstance(model, nn.Module) else model
            save_file({k: v.detach().contiguous() for k, v in weights.items()}, tmp / f"{key}.safetensors")
        torch.save({"format_version": FORMAT_VERSION, **state}, tmp / "state.pt")
        write_manifest(tmp)
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
    for old in stale_checkpoints(checkpoint_names(root), keep):
        shutil.rmtree(root / old)
    return final


def checkpoint_names(root: Path) -> list[str]:
    """The checkpoint folders under `root`, oldest first (names sort by phase, then epoch)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def phase_of(name: str) -> str:
    """ "0-mle-000080" -> "mle"."""
    return name.split("-", 1)[-1].rsplit("-", 1)[0]


def stale_checkpoints(names: list[str], keep: int) -> list[str]:
    """Of `names` (oldest first), those beyond the newest `keep`, except the last MLE one (`@mle`)."""
    mle = [n for n in names if phase_of(n) == "mle"]
    return [n for n in names[:-keep] if not (mle and n == mle[-1])]


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
    names = checkpoint_names(root)
    if spec in names:
        return root / spec
    of_phase = [n for n in names if phase_of(n) == spec]
    if of_phase:
        return root / of_phase[-1]
    raise CheckpointError(
        f"{root}: no checkpoint {spec!r}; name a phase (mle, d_pretrain, adversarial) or one of: {', '.join(names) or 'none'}"
        + (" (older ones were deleted: checkpoint.keep)" if names else "")
    )


def resume_candidates(root: Path) -> list[Path]:
    """The checkpoints a resume may start from, best first: the one `latest` names, then the
    others newest first (a damaged latest one falls back to them; so does a `latest` that names
    no folder)."""
    newest_first = [root / n for n in reversed(checkpoint_names(root))]
    try:
        first = latest_checkpoint(root)
    except CheckpointError:
        if not newest_first:
            raise
        return newest_first
    return [first] + [p for p in newest_first if p != first]


def load_weights(path: Path, key: str, model: nn.Module) -> None:
    file = path / f"{key}.safetensors"
    try:
        weights = load(read_checked(file))
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001
        raise DamagedCheckpointError(f"{file}: unreadable ({err}); the file is damaged") from None
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
    data = read_checked(file)
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")  # a GPU run's state opens anywhere
    except Exception as err:  # noqa: BLE001 - a truncated or overwritten file fails in many ways; all mean the same
        raise DamagedCheckpointError(f"{file}: unreadable ({type(err).__name__}: {err}); the file is damaged") from None
    if not isinstance(state, dict):
        raise DamagedCheckpointError(f"{file}: holds a {type(state).__name__}, not a checkpoint state; the file is damaged")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: format version {state.get('format_version')}, this seqgan reads {FORMAT_VERSION}; "
            "use the seqgan version that wrote it, or start the run again"
        )
    return state
