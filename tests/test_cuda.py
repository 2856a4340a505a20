"""CUDA runs through the real command line (marked `cuda`; skipped where no GPU is visible).

Run them on a GPU machine with `python -m pytest -m cuda`. For each kind of run (oracle, oracle
with labels or feature vectors, text, source sequences) a short run on CUDA with the deterministic
switch on, lengthened by `--resume`, must end exactly where one uninterrupted run of that length
ends: the same metrics and the same weights; each GAN variant (MaliGAN, RankGAN, LeakGAN, REINFORCE,
GSGAN, RelGAN, scratch) resumed from a mid-run checkpoint ends as its uninterrupted run did. A GPU
run must also train on the same data as the CPU run of its config (random draws of data happen on
the CPU).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kinds import OPTIONS, ROOT, every_run, kinds
from seqgan.training.checkpoint import checkpoint_names, latest_checkpoint

MODE = os.environ.get("SEQGAN_CUDA_TESTS_ON", "cuda")
"""Where these tests run: 'cuda'; 'virtual', a GPU played by the CPU (tests/virtual_gpu.py: it refuses
what CUDA refuses, tensors on two devices and draws from the other device's generator); or 'cpu', to
try the tests themselves. `SEQGAN_CUDA_TESTS_ON=virtual python -m pytest -m cuda` before a GPU session
finds device faults; the tests of CUDA graphs and of bf16 autocast then skip."""
assert MODE in ("cuda", "virtual", "cpu"), f"SEQGAN_CUDA_TESTS_ON={MODE!r}: use cuda, virtual or cpu"
DEVICE = {"virtual": "vgpu"}.get(MODE, MODE)
"""The torch device of the tests' own tensors."""
CLI_DEVICE = {"virtual": "cuda"}.get(MODE, MODE)
"""The `device=` of the runs (on the played GPU, `cuda` resolves to it)."""
SEQGAN = {"virtual": [str(ROOT / "tests" / "scripts" / "virtual_gpu_seqgan.py")]}.get(MODE, ["-m", "seqgan"])
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(MODE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"),
]
needs_graphs = pytest.mark.skipif(MODE != "cuda", reason="CUDA graphs; SEQGAN_CUDA_TESTS_ON=virtual|cpu tries the other tests")


@pytest.fixture(autouse=True)
def played_gpu():
    """The tests' own tensors on the played GPU, when it plays."""
    if MODE != "virtual":
        yield
        return
    from virtual_gpu import virtual_gpu

    with virtual_gpu():
        yield


TIME_KEYS = {"wall_s", "time"}  # when a row was written differs between any two runs
ON_CUDA = [f"device={CLI_DEVICE}", "deterministic=true", "checkpoint.every=1"]


def seqgan_out(*args: str) -> str:
    """`seqgan ARGS`, which must succeed; its standard output."""
    r = subprocess.run([sys.executable, *SEQGAN, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def seqgan(*args: str) -> None:
    seqgan_out(*args)


def rows(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIME_KEYS}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


@pytest.mark.parametrize("kind", ["oracle", "label", "features", "text", "source"])
def test_a_resumed_cuda_run_equals_an_uninterrupted_one(tmp_path, kind):
    config, *overrides = kinds(tmp_path)[kind]
    full, short = tmp_path / "full", tmp_path / "short"
    seqgan("train", config, "--out", str(full), "--quiet", *ON_CUDA, *overrides, "adversarial.epochs=4")
    seqgan("train", config, "--out", str(short), "--quiet", *ON_CUDA, *overrides, "adversarial.epochs=2")
    seqgan("train", "--resume", str(short), "adversarial.epochs=4", "--quiet")
    assert rows(short) == rows(full)
    a, b = latest_checkpoint(full / "checkpoints"), latest_checkpoint(short / "checkpoints")
    for name in ("generator", "discriminator"):
        wa, wb = load_file(a / f"{name}.safetensors"), load_file(b / f"{name}.safetensors")
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
    seqgan("sample", str(short), "-n", "3")
    if kind in ("oracle", "label", "features") or find_spec("fast_bleu"):  # evaluating text reads BLEU (fast-bleu)
        seqgan("evaluate", str(short), "-n", "64")


ALGORITHMS = ["maligan", "rankgan", "leakgan", "reinforce", "gsgan", "relgan", "scratch"]
"""The GAN variants beside SeqGAN (whose runs are the kinds above), each through its smoke config."""


def rewind(run: Path, to: str) -> None:
    """Leave `run` as a run killed right after writing checkpoint `to` would: the later checkpoints gone,
    `latest` naming `to` (the metric rows past it stay, as a kill leaves them; resume drops them)."""
    checkpoints, names = run / "checkpoints", checkpoint_names(run / "checkpoints")
    later = names[names.index(to) + 1 :]
    assert later, f"no checkpoint after {to} to remove"
    for name in later:
        shutil.rmtree(checkpoints / name)
    (checkpoints / "latest").write_text(to)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithms_cuda_run_resumed_mid_way_ends_as_the_uninterrupted_one(tmp_path, algorithm):
    """Each variant trains, resumes, samples and evaluates on CUDA. With the deterministic switch on, the
    run resumed from its checkpoint after adversarial epoch 2 (as if killed then) ends exactly as it did:
    the same metric rows, networks and samples. (Not lengthened by --resume: GSGAN's and RelGAN's
    temperatures anneal over the configured number of epochs, so a longer run takes another path.)"""
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    seqgan("train", f"configs/smoke_{algorithm}.yaml", "--out", str(full), "--quiet", *ON_CUDA, "checkpoint.keep=100")
    assert (
        f"algorithm: {algorithm}" in (full / "config.yaml").read_text()
        and f"device: {CLI_DEVICE}" in (full / "config.yaml").read_text()
    )
    shutil.copytree(full, resumed)
    rewind(resumed, "2-adversarial-000002")
    seqgan("train", "--resume", str(resumed), "--quiet")
    assert rows(resumed) == rows(full)
    a, b = latest_checkpoint(full / "checkpoints"), latest_checkpoint(resumed / "checkpoints")
    assert a.name == b.name and a.name.startswith("2-adversarial")
    networks = sorted(path.name for path in a.glob("*.safetensors"))
    assert "generator.safetensors" in networks and networks == sorted(path.name for path in b.glob("*.safetensors"))
    for name in networks:
        wa, wb = load_file(a / name), load_file(b / name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
    assert (full / "samples.txt").read_text() == (resumed / "samples.txt").read_text()
    assert len(seqgan_out("sample", str(resumed), "-n", "3").splitlines()) == 3
    metrics = json.loads(seqgan_out("evaluate", str(resumed), "-n", "64"))
    assert math.isfinite(metrics["nll_oracle"]) and math.isfinite(metrics["nll_test"])


def test_a_cuda_run_trains_on_the_cpu_runs_data_and_starts_from_its_nll(tmp_path):
    """Oracle data is drawn on the CPU whatever the device: the first row (before any training)
    reads the same NLL-test and nearly the same NLL-oracle on both devices."""
    cpu, gpu = tmp_path / "cpu", tmp_path / "gpu"
    seqgan("train", "configs/smoke.yaml", "--out", str(cpu), "--quiet", "pretrain.epochs=1", "adversarial.epochs=0")
    seqgan(
        "train",
        "configs/smoke.yaml",
        "--out",
        str(gpu),
        "--quiet",
        "pretrain.epochs=1",
        "adversarial.epochs=0",
        f"device={CLI_DEVICE}",
    )
    first_cpu, first_gpu = rows(cpu)[0], rows(gpu)[0]
    assert first_gpu["nll_test"] == pytest.approx(first_cpu["nll_test"], rel=1e-4)


@pytest.mark.parametrize("groups", [1, 3])
def test_fused_discriminator_matches_per_width_on_cuda(groups):
    from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS
    from seqgan.models.discriminator import CNNDiscriminator

    torch.manual_seed(0)
    plain = CNNDiscriminator(500, 16, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.0, fused_conv="off").to(DEVICE)
    fused = CNNDiscriminator(500, 16, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.0, fused_conv="on", fused_groups=groups)
    fused = fused.to(DEVICE)
    fused.load_state_dict(plain.state_dict())
    x = torch.randint(500, (32, 20), device=DEVICE)
    torch.testing.assert_close(fused(x), plain(x), rtol=1e-4, atol=1e-4)
    is_real = torch.arange(32, device=DEVICE) % 2 == 0
    for d in (plain, fused):
        d.loss(x, None, is_real, 0.0, 0.2).backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("channels", [1, 16])
def test_window_max_matches_the_convolutions_max_on_cuda(channels):
    """Both of window_max's paths (gathers; channels-last convolution and embedding_bag) on CUDA."""
    import torch.nn.functional as F

    from seqgan.models.window_max import window_max

    torch.manual_seed(channels)
    x = torch.randn(40, 20, channels, device=DEVICE, requires_grad=True)
    w = torch.randn(12, channels, 5, device=DEVICE, requires_grad=True)
    b = torch.randn(12, device=DEVICE, requires_grad=True)
    g = torch.randn(40, 12, device=DEVICE)
    ref = F.conv1d(x.transpose(1, 2), w, b).amax(dim=-1)
    got = window_max(x, w, b)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    for a, c in zip(
        torch.autograd.grad((ref * g).sum(), (x, w, b)), torch.autograd.grad((got * g).sum(), (x, w, b)), strict=True
    ):
        torch.testing.assert_close(c, a, rtol=1e-4, atol=1e-3)


def test_fused_output_layers_match_the_cpus_on_cuda():
    """linear_token_nll (kept and recomputed probabilities) and weighted_token_nll on CUDA against the CPU."""
    from seqgan.models.fused_head import linear_token_nll, weighted_token_nll

    torch.manual_seed(0)
    h, w, b = torch.randn(300, 8), torch.randn(700, 8), torch.randn(700)
    y, weights = torch.randint(0, 700, (300,)), torch.rand(300)
    for fn in (
        lambda *a: (linear_token_nll(*a[:4], chunk=64) * a[4]).sum(),
        lambda *a: (linear_token_nll(*a[:4], chunk=64, keep_limit=0) * a[4]).sum(),
        lambda *a: weighted_token_nll(*a, chunk=64),
        lambda *a: (linear_token_nll(*a[:4]) * a[4]).sum(),  # the device's default chunk: all 300 rows on a GPU
        lambda *a: weighted_token_nll(*a),
    ):
        results = []
        for device in ("cpu", DEVICE):
            args = [t.to(device).requires_grad_(t.is_floating_point() and t is not weights) for t in (h, w, b)]
            loss = fn(*args, y.to(device), weights.to(device))
            results.append([loss, *torch.autograd.grad(loss, args)])
        for a, c in zip(*results, strict=True):
            torch.testing.assert_close(c.cpu(), a, rtol=1e-4, atol=1e-4)


def test_rollout_scores_sharing_prefixes_equal_scoring_the_rows_on_cuda():
    from seqgan.models.discriminator import CNNDiscriminator, Discriminator

    torch.manual_seed(0)
    d = CNNDiscriminator(50, 8, [1, 2, 4], [3, 5, 4], dropout=0.5).to(DEVICE).eval()
    sequences = torch.randint(0, 50, (6, 9), device=DEVICE)
    rows = sequences.repeat(8 * 3, 1).view(8, 3, 6, 9).clone()
    for j in range(8):
        rows[j, :, :, j + 1 :] = torch.randint(0, 50, (3, 6, 8 - j), device=DEVICE)
    with torch.no_grad():
        shared = d.continuation_logits(sequences, rows, 1, None, 10)
        plain = Discriminator.continuation_logits(d, sequences, rows, 1, None, 10)
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)


@needs_graphs
def test_graphed_d_and_mle_epochs_match_eager_ones_and_d_scores_follow_on_cuda():
    """`seqgan.cuda_graphs` on a GPU: D epochs (dropout on) and MLE epochs (clipping) replayed as CUDA
    graphs train as the eager steps do, and D's table scoring afterwards reads the new weights."""
    from seqgan.algorithms.base import adam
    from seqgan.algorithms.common import DRound, Streams, discriminator_epochs, mle_epoch
    from seqgan.cuda_graphs import StepGraphs, step_graphs_apply
    from seqgan.models.discriminator import CNNDiscriminator, prob_real
    from seqgan.models.generator import Generator

    def train(graphed: bool):
        torch.manual_seed(0)
        d = CNNDiscriminator(200, 16, [1, 2, 3, 5], [20, 20, 10, 10], dropout=0.25).cuda()
        g = Generator(200, 16, 16).cuda()
        d_opt, g_opt = adam(list(d.parameters()), 1e-3), adam(list(g.parameters()), 1e-2)
        assert step_graphs_apply(d_opt, False, "fp32", True) and step_graphs_apply(g_opt, False, "fp32", True)
        d_graphs, g_graphs = (StepGraphs(d_opt, d.weights_changed), StepGraphs(g_opt)) if graphed else (None, None)
        tokens = torch.randint(0, 200, (256, 10), generator=torch.Generator().manual_seed(1)).cuda()
        streams = Streams(torch.Generator("cuda").manual_seed(2), torch.Generator().manual_seed(3))
        torch.cuda.manual_seed(4)
        d.eval()
        prob_real(d, tokens)  # tables built before training: they must not outlive the steps
        losses = [
            discriminator_epochs(
                d,
                d_opt,
                (tokens, None, torch.arange(256, device="cuda") < 128),
                DRound(128, 3, 32, l2_reg=0.2),
                streams,
                graphs=d_graphs,
            )
        ]
        losses += [mle_epoch(g, g_opt, tokens, 32, 1.0, streams.shuffle, graphs=g_graphs) for _ in range(2)]
        d.eval()
        return d, g, losses, prob_real(d, tokens), (d_graphs, g_graphs)

    d0, g0, losses0, scores0, _ = train(False)
    d1, g1, losses1, scores1, graphs = train(True)
    assert all(len(x.graphs) == 1 for x in graphs)
    assert losses1 == pytest.approx(losses0, rel=1e-5)
    for a, b in zip(
        [*d0.state_dict().values(), *g0.state_dict().values()],
        [*d1.state_dict().values(), *g1.state_dict().values()],
        strict=True,
    ):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scores1, scores0, rtol=1e-5, atol=1e-6)
    fresh = CNNDiscriminator(200, 16, [1, 2, 3, 5], [20, 20, 10, 10], dropout=0.25).cuda().eval()
    fresh.load_state_dict(d1.state_dict())
    torch.testing.assert_close(
        scores1, prob_real(fresh, torch.randint(0, 200, (256, 10), generator=torch.Generator().manual_seed(1)).cuda())
    )


def test_a_run_with_cuda_graphs_ends_where_an_eager_one_does(tmp_path):
    ends = []
    for graphs in ("true", "false"):
        run = tmp_path / graphs
        seqgan("train", "configs/smoke.yaml", "--out", str(run), "--quiet", f"device={CLI_DEVICE}", f"cuda_graphs={graphs}")
        ends.append(rows(run)[-1])
    assert ends[0].keys() == ends[1].keys()
    for key, value in ends[1].items():  # the phase by name, the figures to round-off
        expected = value if isinstance(value, str) else pytest.approx(value, rel=1e-4, abs=1e-6)
        assert ends[0][key] == expected, key


def test_a_graphed_run_goes_on_eagerly_from_its_checkpoint(tmp_path):
    """A run whose CUDA graphs fail on some GPU goes on eagerly: `--resume DIR cuda_graphs=false` from
    its checkpoint after adversarial epoch 2 (as if it had crashed then) ends where the graphed run
    ended, to round-off (the same computation, other kernels' rounding), and records the change."""
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    seqgan("train", "configs/smoke.yaml", "--out", str(full), "--quiet", *ON_CUDA, "checkpoint.keep=100")
    shutil.copytree(full, resumed)
    rewind(resumed, "2-adversarial-000002")
    seqgan("train", "--resume", str(resumed), "cuda_graphs=false", "--quiet")
    ends = [rows(run) for run in (resumed, full)]
    assert [(r["phase"], r["epoch"]) for r in ends[0]] == [(r["phase"], r["epoch"]) for r in ends[1]]
    for key, value in ends[1][-1].items():
        expected = value if isinstance(value, str) else pytest.approx(value, rel=1e-4, abs=1e-6)
        assert ends[0][-1][key] == expected, key
    assert "cuda_graphs: false" in (resumed / "config.yaml").read_text()
    assert (resumed / "command.txt").read_text().splitlines()[-1].endswith("cuda_graphs=false --quiet")


@needs_graphs
@pytest.mark.parametrize("kind", ["oracle", "label", "features", "text", "source", *OPTIONS])
def test_every_kinds_mle_and_d_steps_are_captured_as_cuda_graphs(tmp_path, kind):
    """What tests/test_host_reads.py checks on the CPU, by the real capture: every kind of run's MLE
    and D steps become CUDA graphs (none falls back to eager steps with a warning)."""
    import warnings

    from seqgan.algorithms import ALGORITHMS, Context
    from seqgan.algorithms.common import Streams
    from seqgan.config import load_config
    from seqgan.distributed import SINGLE
    from seqgan.training.experiment import make_data

    config, *overrides = every_run(tmp_path)[kind]
    cfg, cuda = load_config(ROOT / config, overrides), torch.device("cuda")
    streams = Streams(torch.Generator(cuda).manual_seed(0), torch.Generator().manual_seed(1))
    algo = ALGORITHMS[cfg.algorithm](Context(cfg, make_data(cfg, cuda), cuda, SINGLE, streams))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*runs without a CUDA graph")
        algo.train_unit("mle")
        algo.begin_phase("d_pretrain")
        algo.train_unit("d_pretrain")
    for name in ("mle", "discriminator"):
        graphs = algo.step_graphs(name)
        assert graphs is not None and graphs.graphs and not graphs.uncapturable, name


@pytest.mark.parametrize("kind", ["oracle", "label", "text"])
def test_every_command_works_on_a_run_trained_with_device_auto(tmp_path, kind):
    """device=auto picks the GPU; sample, evaluate (with D's figures), sweep (against the run's MLE
    start) and plot then read the CUDA run; evaluate reports the NLL the run logged last."""
    if kind == "text":
        pytest.importorskip("fast_bleu", reason="evaluating text computes BLEU (the device machine may lack fast-bleu)")
    config, *overrides = kinds(tmp_path)[kind]
    run = tmp_path / "run"
    seqgan("train", config, "--out", str(run), "--quiet", "device=auto", *overrides, "adversarial.epochs=2")
    assert "device: auto" in (run / "config.yaml").read_text()
    condition = ["--condition", "class=1"] if kind == "label" else []
    lines = seqgan_out("sample", str(run), "-n", "4", *condition, "--temperature", "0.9", "--top-p", "0.9").splitlines()
    assert len(lines) == 4
    metrics = json.loads(seqgan_out("evaluate", str(run), "-n", "64", "--discriminator"))
    assert metrics["nll_test"] == pytest.approx(rows(run)[-1]["nll_test"], abs=1e-4)
    sweep = tmp_path / "sweep"
    seqgan("sweep", str(run), f"{run}@mle", "--temperatures", "0.9,1.0", "-n", "64", "--out", str(sweep))
    assert len((sweep / "sweep.csv").read_text().splitlines()) == 1 + 2 * 2
    seqgan("plot", str(run))
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_graphs
def test_graphed_epochs_synchronise_once_at_their_end_and_cpu_draws_move_without_waiting():
    """torch's sync debug mode flags every operation that makes the host wait for the GPU: a graphed
    D epoch and MLE epoch (after the epoch that captured them) wait once, for their mean loss, and
    `to_device` moves a CPU draw (a batch order) without waiting."""
    import warnings

    from seqgan.algorithms.base import adam
    from seqgan.algorithms.common import DRound, Streams, discriminator_epochs, mle_epoch
    from seqgan.cuda_graphs import StepGraphs
    from seqgan.models.discriminator import CNNDiscriminator
    from seqgan.models.generator import Generator
    from seqgan.runtime import to_device

    torch.manual_seed(0)
    d, g = CNNDiscriminator(200, 16, [1, 2, 3, 5], [20, 20, 10, 10]).cuda(), Generator(200, 16, 16, noise_dim=4).cuda()
    d_opt, g_opt = adam(list(d.parameters()), 1e-3), adam(list(g.parameters()), 1e-2)
    d_graphs, g_graphs = StepGraphs(d_opt, d.weights_changed), StepGraphs(g_opt)
    tokens = torch.randint(0, 200, (256, 10), generator=torch.Generator().manual_seed(1)).cuda()
    streams = Streams(torch.Generator("cuda").manual_seed(2), torch.Generator().manual_seed(3))
    examples, settings = (tokens, None, torch.arange(256, device="cuda") < 128), DRound(128, 1, 32)

    def epochs() -> None:
        discriminator_epochs(d, d_opt, examples, settings, streams, graphs=d_graphs)
        mle_epoch(g, g_opt, tokens, 32, 1.0, streams.shuffle, graphs=g_graphs)

    epochs()  # warm-ups and captures
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            epochs()
            moved = to_device(torch.randperm(1000, generator=streams.shuffle), torch.device("cuda"))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    waits = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert len(waits) == 2, waits  # finite_mean's read of each epoch's mean loss
    assert len(d_graphs.graphs) == len(g_graphs.graphs) == 1 and moved.device.type == "cuda"
    assert torch.equal(moved.cpu().sort().values, torch.arange(1000))


@pytest.mark.skipif(MODE == "virtual", reason="bf16 autocast is not played")
def test_a_bf16_discriminator_trains_on_cuda_repeats_and_lands_near_the_fp32_run(tmp_path):
    """discriminator.precision=bf16 (D under bf16 autocast, G in float32) on the device: two runs with
    the deterministic switch end the same, and near the float32 run, which they do not equal."""
    ends = []
    for name, extra in (("a", "discriminator.precision=bf16"), ("b", "discriminator.precision=bf16"), ("fp32", "precision=fp32")):
        seqgan("train", "configs/smoke.yaml", "--out", str(tmp_path / name), "--quiet", *ON_CUDA, extra)
        ends.append(rows(tmp_path / name)[-1])
    assert ends[0] == ends[1]
    assert ends[0] != ends[2]
    assert ends[0]["nll_oracle"] == pytest.approx(ends[2]["nll_oracle"], abs=0.1)
