"""`seqgan.cuda_graphs` on the CPU: its bookkeeping (warm-ups, static inputs, stale graphs, failed
captures) with CUDA's two primitives played by the CPU; the real graphs are tested in test_cuda.py.

`ReplayOnCPU` "captures" a step by keeping it without running it, and "replays" it by running it on
the static input buffers, which is what a CUDA graph's replay computes. So a run through it must
equal an eager run bit for bit, and would not if a step's inputs were not copied into the buffers,
a warm-up were skipped or repeated, or a stale graph (old optimizer state) were replayed.
"""

from __future__ import annotations

import pytest
import torch

from seqgan.algorithms.base import adam
from seqgan.algorithms.common import DRound, Streams, discriminator_epochs, mle_epoch
from seqgan.cuda_graphs import StepGraphs, step_graphs_apply
from seqgan.models.discriminator import CNNDiscriminator
from seqgan.models.generator import Generator


class ReplayOnCPU(StepGraphs):
    def _on_side_stream(self, run):
        return run()

    def _record(self, step):
        self.captures = getattr(self, "captures", 0) + 1
        loss = torch.zeros(())
        return (lambda: loss.copy_(step().detach())), loss


class FailingCapture(ReplayOnCPU):
    def _record(self, step):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")


def d_setup(seed: int = 0):
    torch.manual_seed(seed)
    d = CNNDiscriminator(40, 8, [1, 2, 3], [6, 5, 4], dropout=0.25)
    tokens = torch.randint(0, 40, (96, 7))
    examples = (tokens, None, torch.arange(96) < 48)
    return d, adam(list(d.parameters()), 0.01), examples


def d_epochs(graphs_class=None, epochs: int = 2, reload_state: bool = False):
    d, opt, examples = d_setup()
    graphs = None if graphs_class is None else graphs_class(opt, d.weights_changed)
    streams = Streams(torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    torch.manual_seed(3)  # dropout
    settings = DRound(48, epochs, 16, label_smoothing=0.1, l2_reg=0.2)
    losses = [discriminator_epochs(d, opt, examples, settings, streams, graphs=graphs)]
    if reload_state:  # as a resume does: new state tensors that a graph captured before must not touch
        opt.load_state_dict(opt.state_dict())
    losses.append(discriminator_epochs(d, opt, examples, settings, streams, graphs=graphs))
    return d, losses, graphs


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name


def test_graphed_d_epochs_replay_the_eager_steps_exactly():
    eager, eager_losses, _ = d_epochs()
    graphed, losses, graphs = d_epochs(ReplayOnCPU)
    assert losses == eager_losses
    assert_same_weights(graphed, eager)
    # 2 x 2 epochs of 6 batches: 3 warm-up steps, then one capture replayed for the 21 others
    assert graphs.captures == 1 and len(graphs.graphs) == 1 and sum(graphs.eager_steps.values()) == 3


def test_a_loaded_optimizer_state_drops_the_graphs_and_captures_anew():
    eager, eager_losses, _ = d_epochs(reload_state=True)
    graphed, losses, graphs = d_epochs(ReplayOnCPU, reload_state=True)
    assert losses == eager_losses
    assert_same_weights(graphed, eager)
    assert graphs.captures == 2 and sum(graphs.eager_steps.values()) == 3  # counted since the reload


def test_a_changed_learning_rate_drops_the_graphs():
    d, opt, examples = d_setup()
    graphs = ReplayOnCPU(opt)
    streams = Streams(torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    discriminator_epochs(d, opt, examples, DRound(48, 1, 16), streams, graphs=graphs)
    assert graphs.captures == 1
    opt.param_groups[0]["lr"] = 0.001
    discriminator_epochs(d, opt, examples, DRound(48, 2, 16), streams, graphs=graphs)
    assert graphs.captures == 2


def test_a_step_that_cannot_be_captured_runs_eagerly_with_a_warning():
    eager, eager_losses, _ = d_epochs()
    with pytest.warns(UserWarning, match="operation not permitted when stream is capturing"):
        graphed, losses, graphs = d_epochs(FailingCapture)
    assert losses == eager_losses
    assert_same_weights(graphed, eager)
    assert not graphs.graphs and len(graphs.uncapturable) == 1


def test_graphed_mle_epochs_with_clipping_and_noise_replay_the_eager_steps_exactly():
    def run(graphs_class):
        torch.manual_seed(0)
        g = Generator(30, 8, 8, noise_dim=3)
        opt = adam(list(g.parameters()), 0.05)
        graphs = None if graphs_class is None else graphs_class(opt)
        shuffle = torch.Generator().manual_seed(4)
        data = torch.randint(0, 30, (70, 6), generator=torch.Generator().manual_seed(5))
        losses = [mle_epoch(g, opt, data, 8, 0.5, shuffle, graphs=graphs) for _ in range(2)]
        return g, losses, graphs

    eager, eager_losses, _ = run(None)
    graphed, losses, graphs = run(ReplayOnCPU)
    assert losses == eager_losses
    assert_same_weights(graphed, eager)
    assert graphs.captures == 1 and sum(graphs.eager_steps.values()) == 3


def test_graphs_apply_only_to_fused_adam_on_cuda_in_one_process():
    cpu = adam([torch.nn.Parameter(torch.zeros(3))], 0.1)
    assert not step_graphs_apply(cpu, parallel=False, precision="fp32", enabled=True)
    with pytest.raises(ValueError, match="warmup=0"):
        ReplayOnCPU(cpu, warmup=0)


def test_weights_changed_makes_table_scoring_follow_a_change_no_forward_pass_saw():
    """A replayed graph's optimizer step changes D's weights in place, bumping no version counter
    and running none of D's Python: `weights_changed`, called after each replay, rebuilds the tables."""
    torch.manual_seed(0)
    d = CNNDiscriminator(30, 8, [1, 2, 3], [4, 5, 6]).eval()
    x = torch.randint(0, 30, (20, 5))
    with torch.no_grad():
        before = d.features(x)
        d.convs[1].weight.data.add_(0.5)  # .data: the parameter's version counter does not move
        assert torch.equal(d.features(x), before)  # the stale tables, as a graph replay would leave them
        d.weights_changed()
        with torch.enable_grad():
            by_convolutions = d.features(x).detach()
        torch.testing.assert_close(d.features(x), by_convolutions, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(d.features(x), before)
