"""Progress on a terminal: one bar per phase (its units) and, under it, one per long unit (its optimizer
steps, with an estimate of the unit's end: a D pre-training step on long sequences can take minutes).
Bars go to a terminal only: never to logs, nor under `--quiet`, nor in tests."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator

import torch
from tqdm import tqdm


def shown(quiet: bool) -> bool:
    """Whether bars are drawn: not quiet, and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


def phase_bar(title: str, total: int, done: int, quiet: bool) -> tqdm:
    """The phase's bar: `done` of `total` units so far (a resumed phase starts part-way)."""
    return tqdm(total=total, initial=done, desc=title, disable=not shown(quiet), file=sys.stderr, dynamic_ncols=True)


@contextlib.contextmanager
def steps_bar(title: str, steps: int, optimizers: Iterable[torch.optim.Optimizer], quiet: bool) -> Iterator[None]:
    """A bar under the phase's that counts the `steps` optimizer steps of one unit as `optimizers` take them."""
    if not shown(quiet) or steps <= 1:
        yield
        return
    with tqdm(total=steps, desc=f"  {title}", unit="step", leave=False, file=sys.stderr) as bar:
        hooks = [opt.register_step_post_hook(lambda *_: bar.update()) for opt in optimizers]
        try:
            yield
        finally:
            for hook in hooks:
                hook.remove()
