"""No host reads in the hot loops, checked on the CPU (issue 19: "no per-step host synchronisation").

On a GPU a value read back to the host (`.item()`, `bool(t)`, `.tolist()`, boolean indexing...)
waits for the device, and a training step that reads one cannot be a CUDA graph: `seqgan.cuda_graphs`
would warn and run it eagerly for good, the launch-bound speed the graphs exist to avoid. The CPU
shows neither, so `HostReads` records the reads as PyTorch dispatches them (tests/host_reads.py),
with the CPU-only shortcuts (`seqgan.runtime.host_reads_are_free`) switched to their GPU routes.
A CUDA machine runs the real captures: tests/test_cuda.py.

For every kind of run: G's MLE steps and D's training steps (what a CUDA graph captures) read
nothing; drawing samples reads nothing at any length; a D round reads once (its loss, at the end),
whatever its number of steps; a SeqGAN G step reads once (the values it logs).
"""

from __future__ import annotations

import pytest
import torch

from host_reads import HostReads
from kinds import OPTIONS, ROOT, every_run
from seqgan import runtime
from seqgan.algorithms import ALGORITHMS, Context
from seqgan.algorithms.common import Streams
from seqgan.config import load_config
from seqgan.cuda_graphs import eager_step
from seqgan.distributed import SINGLE
from seqgan.training.experiment import make_data

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def reads_as_on_a_gpu(monkeypatch):
    """Where a host read is free (the CPU) sampling may skip the row max and the source encoder packs
    its rows by their lengths; the tests take the routes of a GPU, where it is not."""
    monkeypatch.setattr(runtime, "host_reads_are_free", lambda device: False)


class StepReads:
    """Stands in for `StepGraphs`: runs each step eagerly, recording the host reads inside it,
    which is the code a CUDA graph would capture."""

    def __init__(self, optimizer: torch.optim.Optimizer, reads: HostReads) -> None:
        self.optimizer, self.reads = optimizer, reads

    def step(self, kind, loss_fn, inputs, clip=None):
        with self.reads:
            return eager_step(loss_fn, inputs, self.optimizer, clip)


def build(config: str, overrides: list[str]):
    cfg = load_config(ROOT / config, overrides)
    streams = Streams(torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    algo = ALGORITHMS[cfg.algorithm](Context(cfg, make_data(cfg, CPU), CPU, SINGLE, streams))
    in_steps = HostReads()
    algo.step_graphs = lambda name, after_step=None: StepReads(algo.optimizers[name].optimizer, in_steps)
    return algo, in_steps


@pytest.mark.parametrize("kind", ["oracle", "label", "features", "text", "source", *OPTIONS])
def test_training_steps_read_nothing_back_so_cuda_graphs_can_hold_them(tmp_path, kind):
    config, *overrides = every_run(tmp_path)[kind]
    algo, in_steps = build(config, overrides)
    algo.train_unit("mle")
    algo.begin_phase("d_pretrain")
    algo.train_unit("d_pretrain")
    assert algo.steps["d"] > 0 and in_steps.count == 0, str(in_steps)


@pytest.mark.parametrize("kind", ["oracle", "label", "features", "text", "source"])
def test_sampling_reads_nothing_back_at_any_length(tmp_path, kind):
    config, *overrides = every_run(tmp_path)[kind]
    algo, _ = build(config, overrides)
    data, rng = algo.data, torch.Generator().manual_seed(0)
    cond = None if data.cond_train is None else data.cond_train[:48]
    with HostReads() as reads:
        algo.generator.sample(48, data.length, rng, cond=cond)
        algo.generator.sample(48, data.length, rng, cond=cond, temperature=0.7, top_p=0.9)
    assert reads.count == 0, str(reads)


@pytest.mark.parametrize("kind", ["oracle", "features", "text", "source"])
def test_a_d_round_reads_once_whatever_its_length_and_a_g_step_once(tmp_path, kind):
    config, *overrides = every_run(tmp_path)[kind]
    counts = []
    for epochs in (1, 3):
        algo, _ = build(config, [*overrides, f"adversarial.d_epochs={epochs}"])
        algo.begin_phase("d_pretrain")
        with HostReads() as reads:
            algo.discriminator_update()
        counts.append(reads)
    with HostReads() as g_step:
        algo.generator_step()
    # the features kind's matching-aware negatives redraw clashing pairs: a few reads per round, not per step
    assert counts[0].sites == counts[1].sites, f"{counts[0]}\n---\n{counts[1]}"
    assert sum(n for (op, where), n in counts[0].sites.items() if "mismatched_pairs" not in where) == 1, str(counts[0])
    assert g_step.count == 1, str(g_step)


ROUNDS = {"smoke", "smoke_maligan", "smoke_leakgan", "smoke_rankgan", "smoke_reinforce"}
"""Algorithms whose D update is a round: fresh negatives, then adversarial.d_epochs passes of steps."""
READS_PER_UPDATE = {  # (per G step, per D update): the reads an adversarial epoch may add per update
    "smoke": (1, 1),  # SeqGAN's G step logs once (beside its rollouts); a D round reads its mean loss
    "smoke_maligan": (1, 1),
    "smoke_leakgan": (1, 1),
    "smoke_rankgan": (1, 3),  # and splits the round's examples into real and generated pools
    "smoke_reinforce": (0, 1),  # G's loss and reward stay on the device until the epoch's end
    "smoke_gsgan": (0, 0),  # GSGAN's and RelGAN's D updates are single steps: nothing per step
    "smoke_relgan": (0, 0),
    "smoke_scratch": (1, 0),  # the EWMA baseline, a number the checkpoints keep
}


@pytest.mark.parametrize("config", READS_PER_UPDATE)
def test_an_adversarial_epoch_reads_per_update_at_most_never_per_d_step(config):
    counts = []
    for k in (1, 3):  # k G steps and k D updates; each round of k passes
        passes = [f"adversarial.d_epochs={k}"] if config in ROUNDS else []
        algo, _ = build(f"configs/{config}.yaml", [f"adversarial.g_steps={k}", f"adversarial.d_steps={k}", *passes])
        algo.begin_phase("adversarial")
        with HostReads() as reads:
            algo.train_unit("adversarial")
        counts.append(reads)
    per_g, per_d = READS_PER_UPDATE[config]
    assert counts[1].count - counts[0].count == 2 * (per_g + per_d), f"{counts[0]}\n---\n{counts[1]}"
