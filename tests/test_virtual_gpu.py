"""The GPU played by the CPU (tests/virtual_gpu.py): that it refuses what CUDA refuses and computes
what the CPU computes, and what it found in seqgan (a GPU run's dropout stream, not checkpointed).

`SEQGAN_CUDA_TESTS_ON=virtual python -m pytest -m cuda` runs tests/test_cuda.py's runs on it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from kinds import OPTIONS, every_run


def played_gpu():
    """`virtual_gpu()` (conftest.py imports the module before any test runs; see there)."""
    return pytest.importorskip("virtual_gpu").virtual_gpu()


@pytest.fixture
def vg():
    """The played GPU's module, its device playing during the test."""
    virtual_gpu = pytest.importorskip("virtual_gpu")
    with virtual_gpu.virtual_gpu():
        yield virtual_gpu


def test_it_refuses_what_cuda_refuses(vg):
    x = torch.ones(3, 4, device="vgpu")
    assert isinstance(x, vg.VTensor) and x.device.type == "vgpu"
    with pytest.raises(RuntimeError, match="same device"):
        x + torch.ones(4)
    with pytest.raises(RuntimeError, match="same device"):
        torch.nn.Embedding(5, 3).to("vgpu")(torch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="'vgpu' device type for generator"):
        torch.rand(3, device="vgpu", generator=torch.Generator().manual_seed(0))
    with pytest.raises(RuntimeError, match="'cpu' device type for generator"):
        torch.rand(3, generator=torch.Generator("vgpu").manual_seed(0))
    with pytest.raises(TypeError, match="numpy"):
        x.numpy()
    with pytest.raises(RuntimeError, match="does not nest"), vg.virtual_gpu():
        pass
    with pytest.raises(RuntimeError, match="same device"):
        x[torch.tensor([0, 2])] = torch.ones(2, 4)  # CPU values put into a device tensor
    with pytest.raises(RuntimeError, match="same device"):
        torch.ones(3, 4)[torch.tensor([0, 2], device="vgpu")]  # a CPU tensor indexed by device indices


def test_it_allows_what_cuda_allows(vg):
    x = torch.zeros(5, device="vgpu")
    y = x + torch.tensor(2.0)  # a CPU scalar
    x[torch.tensor([1, 3])] = 1.0  # CPU indices
    x.add_(y)
    x.copy_(x.cpu() * 2)
    assert type(x) is vg.VTensor and x.cpu().tolist() == [4.0, 6.0, 4.0, 6.0, 4.0]
    g = torch.Generator("vgpu").manual_seed(7)
    assert g.device.type == "vgpu" and g.initial_seed() == 7
    a = torch.randint(0, 100, (6,), device="vgpu", generator=g)
    b = torch.randint(0, 100, (6,), device="vgpu", generator=torch.Generator("vgpu").manual_seed(7))
    assert torch.equal(a.cpu(), b.cpu())
    m = torch.ones(2, 3, device="vgpu").transpose_(0, 1)
    assert m.shape == (3, 2) and m.cpu().shape == (3, 2)


@pytest.mark.parametrize("cell", [torch.nn.LSTM, torch.nn.GRU])
def test_its_recurrent_kernels_compute_what_the_cpus_do(vg, cell):
    """The fused LSTM and GRU cells that PyTorch picks on a GPU, written here in CPU operations:
    their outputs and gradients are the CPU layer's."""
    torch.manual_seed(0)
    layer = cell(4, 8, num_layers=2, batch_first=True)
    x = torch.randn(3, 5, 4, requires_grad=True)
    weights = torch.arange(8.0)
    y_cpu, _ = layer(x)
    grads_cpu = torch.autograd.grad((y_cpu * weights).sum(), [x, *layer.parameters()])
    layer.to("vgpu")
    xv = x.detach().to("vgpu").requires_grad_()
    y, _ = layer(xv)
    grads = torch.autograd.grad((y * weights.to("vgpu")).sum(), [xv, *layer.parameters()])
    assert type(y) is vg.VTensor
    torch.testing.assert_close(y.cpu(), y_cpu)
    for a, b in zip(grads, grads_cpu, strict=True):
        torch.testing.assert_close(a.cpu(), b)


def test_its_default_generator_is_the_devices_own(vg):
    """As CUDA's: dropout on the device draws from it, torch.manual_seed seeds it, and the CPU's
    stream (torch.get_rng_state) neither holds it nor moves with it."""
    dropout = torch.nn.Dropout(0.5).train()
    torch.manual_seed(1)
    cpu_state = torch.get_rng_state()
    first = dropout(torch.ones(64, device="vgpu")).cpu()
    assert torch.equal(torch.get_rng_state(), cpu_state)
    second = dropout(torch.ones(64, device="vgpu")).cpu()
    torch.set_rng_state(cpu_state)  # restores the CPU's stream only
    assert not torch.equal(dropout(torch.ones(64, device="vgpu")).cpu(), first)
    torch.manual_seed(1)
    assert torch.equal(dropout(torch.ones(64, device="vgpu")).cpu(), first)
    assert not torch.equal(first, second) and set(first.tolist()) == {0.0, 2.0}


def rows(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("wall_s", "time")}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_a_gpu_run_resumed_ends_as_the_uninterrupted_one_its_dropout_stream_checkpointed(tmp_path):
    """The fault the played GPU found: a GPU run's D draws its dropout masks from the device's own
    generator, which checkpoints did not hold, so a resumed GPU run left the uninterrupted one at
    its next D round. Checkpoints now hold it, and restore it on a GPU."""
    import seqgan
    from seqgan.training.checkpoint import latest_checkpoint, load_state

    on_gpu = ["device=cuda", "checkpoint.every=1", "eval.every=1", "pretrain.epochs=2", "d_pretrain.steps=1"]
    with played_gpu():
        seqgan.train("configs/smoke.yaml", [*on_gpu, "adversarial.epochs=3"], out=tmp_path / "full")
        seqgan.train("configs/smoke.yaml", [*on_gpu, "adversarial.epochs=1"], out=tmp_path / "short")
        seqgan.resume(tmp_path / "short", ["adversarial.epochs=3"])
    assert rows(tmp_path / "short") == rows(tmp_path / "full")
    state = load_state(latest_checkpoint(tmp_path / "full" / "checkpoints"))
    assert state["rng"]["device"].dtype == torch.uint8


KINDS = ["oracle", "label", "features", "text", "source", *OPTIONS]
ALGORITHMS = ["maligan", "rankgan", "leakgan", "reinforce", "gsgan", "relgan", "scratch"]


@pytest.mark.parametrize("name", [*KINDS, *ALGORITHMS])
def test_every_kind_of_run_and_every_algorithm_trains_on_the_played_gpu(tmp_path, name):
    """Each kind of run (oracle, labels, feature vectors, text, source sequences, and the variants of
    D and G in tests/kinds.py) and each GAN variant trains with device=cuda on the played GPU, where a
    tensor left on the CPU, or a draw from the wrong device's generator, fails as on CUDA; its G
    samples there, and its checkpoint opens on the CPU."""
    import seqgan

    config, *overrides = every_run(tmp_path)[name] if name in KINDS else [f"configs/smoke_{name}.yaml"]
    short = ["pretrain.epochs=1", "d_pretrain.steps=1"] if name in KINDS else []  # scratch has no pre-training
    with played_gpu():
        run = seqgan.train(config, [*overrides, *short, "device=cuda", "adversarial.epochs=1"], out=tmp_path / "run")
        assert run.device.type == "vgpu" and next(run.generator.parameters()).device.type == "vgpu"
        assert len(seqgan.sample(run, 3)) == 3
    last = rows(tmp_path / "run")[-1]
    assert last["phase"] == "adversarial" and all(math.isfinite(v) for v in last.values() if isinstance(v, float))
    assert seqgan.open_run(tmp_path / "run", device="cpu").device.type == "cpu"


def test_every_command_reads_a_played_gpu_run(tmp_path):
    """generate (top-p, beam search, D's scores), evaluate (D's figures, LM scores, top-p) and sweep on
    a run trained with device=auto, which picks the GPU; evaluate reports the NLL the run logged."""
    import seqgan
    from seqgan.cli.main import main

    run_dir, sweep = tmp_path / "run", tmp_path / "sweep"
    with played_gpu():
        run = seqgan.train("configs/smoke.yaml", ["device=auto", "adversarial.epochs=2"], out=run_dir)
        assert run.device.type == "vgpu"
        out = seqgan.generate(run, ["3 17"], n=2, top_p=0.9, discriminator=True)
        assert len(out.texts) == 2 and all(t.startswith("3 17") for t in out.texts)
        assert len(seqgan.generate(run, ["5"], beam=3, max_len=8).texts) == 1
        metrics = seqgan.evaluate(run, n=64, top_p=0.9, discriminator=True, lm_scorer=run, reverse_lm_epochs=1)
        assert main(["sweep", str(run_dir), f"{run_dir}@mle", "--temperatures", "0.9,1.0", "-n", "64", "--out", str(sweep)]) == 0
    assert metrics["nll_test"] == pytest.approx(rows(run_dir)[-1]["nll_test"], abs=1e-4)
    assert all(math.isfinite(metrics[k]) for k in ("nll_oracle", "d_acc", "lm_score", "reverse_lm_score"))
    assert len((sweep / "sweep.csv").read_text().splitlines()) == 1 + 2 * 2
