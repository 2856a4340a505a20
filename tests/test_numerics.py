"""Numerics switches: the fused CNN convolution, bf16 autocast, the deterministic switch, fused Adam."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqgan.algorithms.base import adam
from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, ConfigError, load_config
from seqgan.cuda_graphs import d_step_precision
from seqgan.models.discriminator import CNNDiscriminator, padded_groups
from seqgan.models.generator import Generator, frozen_copy
from seqgan.runtime import autocast, check_deterministic, check_precision, cpu_bf16_lstm_works, lstms_in_bf16, set_numerics
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]


def twin_discriminators(**kwargs) -> tuple[CNNDiscriminator, CNNDiscriminator]:
    torch.manual_seed(0)
    plain = CNNDiscriminator(300, 16, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.0, fused_conv="off", **kwargs)
    fused = CNNDiscriminator(300, 16, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, dropout=0.0, fused_conv="on", **kwargs)
    fused.load_state_dict(plain.state_dict())
    return plain, fused


@pytest.mark.parametrize("groups", [1, 2, 3, 12])
def test_the_fused_convolution_gives_the_per_width_values_and_gradients(groups):
    plain, fused = twin_discriminators(fused_groups=groups)
    x = torch.randint(300, (16, 20), generator=torch.Generator().manual_seed(1))
    is_real = torch.arange(16) % 2 == 0
    losses = [d.loss(x, None, is_real, 0.0, 0.2) for d in (plain, fused)]
    torch.testing.assert_close(losses[1], losses[0])
    for loss in losses:
        loss.backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_the_fused_weight_is_every_width_zero_padded_and_its_gradient_each_widths_exactly():
    """`_fused_weight` gathers the padded (F, E, W) weight in one permutation of the filters laid
    end to end (and zeros): the same tensor as padding each width and joining them, and for any
    upstream gradient the same per-width gradients, bit for bit (a gather moves values, adds none)."""
    _, fused = twin_discriminators()
    weights = [conv.weight for conv in fused.convs]
    padded = torch.cat([torch.nn.functional.pad(w, (0, 20 - w.shape[2])) for w in weights])
    (group,), order = fused._fused_groups(20, torch.device("cpu"))
    assert order is None and group.members == list(range(12)) and group.pad == 19
    got = fused._fused_weight(group)
    assert torch.equal(got, padded)
    upstream = torch.randn(padded.shape, generator=torch.Generator().manual_seed(2))
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            torch.autograd.grad((got * upstream).sum(), weights),
            torch.autograd.grad((padded * upstream).sum(), weights),
            strict=True,
        )
    )
    order, inverse, _ = group.gather
    assert torch.equal(order.view(-1).sort().values, torch.arange(order.numel())) and torch.equal(
        order.view(-1)[inverse], torch.arange(order.numel())
    )


def test_the_widths_split_into_the_padded_convolutions_of_fewest_multiply_adds():
    """Hand-counted at the paper's sizes (units: filters x padded width x windows; the 12 widths alone
    cost 118,600): one group 1,720 x 20 x 20 = 688,000; three, widths 1-5 / 6-10 / 15-20, cost
    900 x 5 x 20 + 500 x 10 x 15 + 320 x 20 x 6 = 90,000 + 75,000 + 38,400 = 203,400, less than
    any other split into three runs (e.g. 1-7 / 8-10 / 15-20 costs 1,100 x 7 x 20 + 300 x 10 x 13 +
    38,400 = 231,400). Widths out of order are grouped by size and given back as indices."""
    widths, filters = PAPER_FILTER_SIZES, PAPER_NUM_FILTERS
    assert padded_groups(widths, filters, 20, 1) == [list(range(12))]
    assert padded_groups(widths, filters, 20, 3) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert padded_groups(widths, filters, 20, 12) == [[i] for i in range(12)]
    assert padded_groups([5, 1, 4, 2], [10, 10, 10, 10], 8, 2) == [[1, 3], [2, 0]]  # widths 1, 2 | 4, 5
    with pytest.raises(ValueError, match="between 1 and the number of widths"):
        padded_groups(widths, filters, 20, 13)


def test_grouped_fused_convolutions_give_back_the_filters_in_their_order():
    """Widths out of order (5, 1, 4, 2): two groups (1, 2 | 4, 5) joined, then permuted back into
    the filters' order; values and gradients those of the per-width convolutions."""
    torch.manual_seed(0)
    plain = CNNDiscriminator(50, 8, [5, 1, 4, 2], [3, 4, 5, 6], dropout=0.0, fused_conv="off")
    fused = CNNDiscriminator(50, 8, [5, 1, 4, 2], [3, 4, 5, 6], dropout=0.0, fused_conv="on", fused_groups=2)
    fused.load_state_dict(plain.state_dict())
    x = torch.randint(50, (6, 9), generator=torch.Generator().manual_seed(1))
    emb = plain.embedding(x)
    want = torch.cat([conv(emb.transpose(1, 2)).amax(dim=-1) for conv in plain.convs], dim=1)
    got = fused._pooled_fused(fused.embedding(x).transpose(1, 2).contiguous())
    torch.testing.assert_close(got, want)
    groups, order = fused._fused_groups(9, torch.device("cpu"))
    assert [g.members for g in groups] == [[1, 3], [2, 0]] and order is not None
    assert [g.pad for g in groups] == [1, 1] and [tuple(g.overrun.shape) for g in groups] == [(10, 9), (8, 6)]
    is_real = torch.arange(6) % 2 == 0
    for d in (plain, fused):
        d.loss(x, None, is_real, 0.0, 0.2).backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="fused_groups must be between 1 and the number of widths"):
        CNNDiscriminator(50, 8, [5, 1], [3, 4], fused_groups=3)
    with pytest.raises(ValueError, match="sequences of length 4 are shorter than a window of 5"):
        fused(x[:, :4])


def test_the_fused_convolution_leaves_out_windows_that_overrun_the_sequence():
    """A filter of width 20 on 20 tokens has exactly one window: its pooled output is that window's
    value. Were overrunning windows (zero-padded) counted, a large positive bias alone would win."""
    plain, fused = twin_discriminators()
    with torch.no_grad():
        for d in (plain, fused):
            d.convs[-1].weight.fill_(-1.0)  # every real window scores very low...
            d.convs[-1].bias.fill_(0.0)
    x = torch.randint(300, (4, 20), generator=torch.Generator().manual_seed(2))
    emb = plain.embedding(x).transpose(1, 2)
    want = plain.convs[-1](emb).amax(dim=-1)  # (4, 160): the single window
    got = fused._pooled_fused(emb.contiguous())[:, -160:]
    torch.testing.assert_close(got, want)  # ...and zero-padded windows (value 0 > it) are not taken


def test_auto_keeps_per_width_convolutions_on_the_cpu_and_bad_values_are_refused(monkeypatch):
    d = CNNDiscriminator(10, 4, [1, 2], [2, 2])
    assert d.fused_conv == "auto"
    monkeypatch.setattr(d, "_pooled_fused", lambda x: pytest.fail("fused on the CPU"))
    d(torch.randint(10, (3, 5))).sum().backward()
    with pytest.raises(ValueError, match="fused_conv"):
        CNNDiscriminator(10, 4, [1, 2], [2, 2], fused_conv="yes")
    with pytest.raises(ConfigError, match="discriminator.fused_conv='sometimes': use 'auto', 'on' or 'off'"):
        load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.fused_conv=sometimes"])
    with pytest.raises(ConfigError, match="discriminator.fused_groups=5: use 1 to 4"):
        load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.fused_conv=on", "discriminator.fused_groups=5"])
    with pytest.raises(ConfigError, match="fused_groups applies to the fused convolution"):
        load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.fused_conv=off", "discriminator.fused_groups=3"])
    with pytest.raises(ConfigError, match="precision='fp16': use one of fp32, tf32, bf16"):
        load_config(ROOT / "configs" / "smoke.yaml", ["precision=fp16"])


def test_the_deterministic_switch_sets_and_restores_torch_flags():
    try:
        set_numerics("tf32", True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        set_numerics("fp32", False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cuda.matmul.allow_tf32


def test_deterministic_cuda_runs_are_refused_before_they_start_where_torch_cannot_sample_deterministically(tmp_path, monkeypatch):
    """torch < 2.6 has no deterministic CUDA cumsum, which sampling takes: such a run would fail at its
    first sample, so it is refused at once, before its folder is written. CPU runs, runs without the
    switch and torch >= 2.6 pass."""
    monkeypatch.setattr(torch, "__version__", "2.5.1+cu121")
    check_deterministic(torch.device("cpu"), True)
    check_deterministic(torch.device("cuda"), False)
    monkeypatch.setattr("seqgan.training.run.resolve_device", lambda name: torch.device("cuda"))
    cfg = load_config(ROOT / "configs" / "smoke.yaml", ["device=cuda", "deterministic=true"])
    try:
        with pytest.raises(
            ConfigError, match=r"needs torch >= 2\.6 .*this is torch 2\.5\.1\+cu121: upgrade torch, or set deterministic=false"
        ):
            Trainer(cfg, tmp_path / "run", quiet=True)
    finally:
        set_numerics("fp32", False)
    assert not (tmp_path / "run").exists()
    for version in ("2.6.0", "2.11.0+cu130"):
        monkeypatch.setattr(torch, "__version__", version)
        check_deterministic(torch.device("cuda"), True)


needs_cpu_bf16 = pytest.mark.skipif(
    not cpu_bf16_lstm_works(), reason="PyTorch has no bf16 LSTM on this CPU (no AVX-512 / AMX): precision=bf16 is refused here"
)


@needs_cpu_bf16
def test_bf16_autocast_runs_g_and_d_in_bf16_but_the_output_layer_nll_in_fp32():
    g = Generator(50, 8, 8)
    x = torch.randint(50, (4, 6))
    with autocast(torch.device("cpu"), "bf16"):
        nll = -g.log_probs(x)
        nll.sum().backward()
        logits, _ = g.step(x[:, 0], None)
    assert nll.dtype == torch.float32 and logits.dtype == torch.bfloat16
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in g.parameters() if p.requires_grad)
    with autocast(torch.device("cpu"), "fp32"):
        assert g.step(x[:, 0], None)[0].dtype == torch.float32


@needs_cpu_bf16
def test_a_bf16_run_trains_and_lands_near_the_fp32_run(tmp_path):
    last = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(ROOT / "configs" / "smoke.yaml", [f"precision={precision}", "adversarial.epochs=2"])
        trainer = Trainer(cfg, tmp_path / precision, quiet=True)
        trainer.start(["test"])
        trainer.run()
        last[precision] = json.loads((tmp_path / precision / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["bf16"]["nll_oracle"] == pytest.approx(last["fp32"]["nll_oracle"], abs=0.1)
    assert last["bf16"]["nll_oracle"] != last["fp32"]["nll_oracle"]  # it did run in another precision


def test_bf16_lstms_are_refused_before_the_run_starts_on_a_cpu_without_a_bf16_lstm(tmp_path, monkeypatch):
    """Where PyTorch cannot run an LSTM under bf16 autocast on the CPU (a Zen 3 EPYC: AVX2 only), a
    run that would put one in bf16 fails at the first step that uses it (G's at the first MLE step,
    an RNN D's after MLE pre-training): it is refused at once, before its folder is written, naming
    the layers, the setting and the fix. A bf16 run without an LSTM, and GPUs, pass."""
    monkeypatch.setattr("seqgan.runtime.cpu_bf16_lstm_works", lambda: False)
    rnn_d = tmp_path / "rnn_d.yaml"  # the smoke config without its CNN widths, for discriminator.kind=rnn
    lines = (ROOT / "configs" / "smoke.yaml").read_text().splitlines()
    rnn_d.write_text("\n".join(line for line in lines if "filter_sizes" not in line and "num_filters" not in line) + "\n")
    lstm_d = ["discriminator.kind=rnn", "discriminator.rnn_cell=lstm"]
    refused = {
        "g": (
            ROOT / "configs" / "smoke.yaml",
            ["precision=bf16"],
            r"^precision=bf16: .* on this CPU .*generator\.rnn, rollout\.rnn would; "
            r"use fp32 instead of precision=bf16, or GRU cells .*; discriminator\.precision=bf16 still runs D alone in bf16$",
        ),
        "d": (
            rnn_d,
            [*lstm_d, "discriminator.precision=bf16"],
            r"^discriminator\.precision=bf16: .* this run's discriminator\.rnn "
            r"would; use fp32 instead of discriminator\.precision=bf16, or GRU cells for them \(generator\.cell=gru, discriminator\.rnn_cell=gru",
        ),
        "both": (
            rnn_d,
            [*lstm_d, "precision=bf16"],
            r"^precision=bf16: .* generator\.rnn, rollout\.rnn, discriminator\.rnn would; [^;]*$",
        ),
    }
    for name, (config, overrides, message) in refused.items():
        with pytest.raises(ConfigError, match=message):
            Trainer(load_config(config, overrides), tmp_path / name, quiet=True)
        assert not (tmp_path / name).exists(), name
    runs = {  # no LSTM in bf16: G of GRU cells; D alone in bf16 (a CNN); an LSTM D kept in fp32 in a bf16 run
        "gru_g": (ROOT / "configs" / "smoke.yaml", ["precision=bf16", "generator.cell=gru"]),
        "d_alone": (ROOT / "configs" / "smoke.yaml", ["discriminator.precision=bf16"]),
        "fp32_d": (rnn_d, [*lstm_d, "precision=bf16", "generator.cell=gru", "discriminator.precision=fp32"]),
    }
    for name, (config, overrides) in runs.items():
        Trainer(load_config(config, overrides), tmp_path / name, quiet=True)
    gpu_models = {"generator": Generator(10, 4, 4)}
    check_precision(torch.device("cuda"), "bf16", gpu_models)
    monkeypatch.setattr("seqgan.runtime.cpu_bf16_lstm_works", lambda: True)
    check_precision(torch.device("cpu"), "bf16", gpu_models)


def test_the_bf16_lstm_probe_draws_nothing_from_the_runs_random_stream(tmp_path, monkeypatch):
    """The probe of `cpu_bf16_lstm_works` built its LSTM from the global random stream, and every CPU
    run asked it after seeding: the first run in a process drew other numbers than the later ones
    (D's dropout masks), so a CLI run and the golden metrics' test, when it ran first in its
    process, ended elsewhere. Now the probe leaves the stream as it was, and a run with no LSTM in
    bf16 does not ask it at all: the first smoke run in a process equals the next."""
    cpu_bf16_lstm_works.cache_clear()
    torch.manual_seed(3)
    want = torch.rand(4)
    torch.manual_seed(3)
    cpu_bf16_lstm_works()
    assert torch.equal(torch.rand(4), want)

    def no_probe():
        raise AssertionError("an fp32 run asked whether a bf16 LSTM runs here")

    monkeypatch.setattr("seqgan.runtime.cpu_bf16_lstm_works", no_probe)
    check_precision(torch.device("cpu"), "fp32", {"generator": Generator(10, 4, 4)})
    check_precision(torch.device("cpu"), "bf16", {"generator": Generator(10, 4, 4, cell="gru")})
    monkeypatch.undo()
    metrics = []
    cpu_bf16_lstm_works.cache_clear()  # the first run as in a fresh process, the second after it
    for run in ("first", "second"):
        overrides = ["pretrain.epochs=1", "adversarial.epochs=0", "eval.every=1"]
        trainer = Trainer(load_config(ROOT / "configs" / "smoke.yaml", overrides), tmp_path / run, quiet=True)
        trainer.start(["test"])
        trainer.run()
        rows = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        metrics.append([{k: v for k, v in row.items() if k not in ("wall_s", "time")} for row in rows])
    assert any("d_loss" in row for row in metrics[0])  # D trained, with dropout
    assert metrics[0] == metrics[1]


def test_lstms_in_bf16_follow_the_run_and_each_ds_own_precision():
    """Hand-built models: a G's LSTM follows the run's precision; a D's layers follow its
    compute_dtype when set (bf16 or fp32), the run's when None; GRUs and LSTM cells are not listed."""

    class D(torch.nn.Module):
        def __init__(self, dtype):
            super().__init__()
            self.compute_dtype = dtype
            self.rnn, self.cell, self.gru = torch.nn.LSTM(2, 2), torch.nn.LSTMCell(2, 2), torch.nn.GRU(2, 2)

    g = torch.nn.Sequential(torch.nn.Embedding(5, 2), torch.nn.LSTM(2, 2))
    models = {"generator": g, "d_run": D(None), "d_bf16": D(torch.bfloat16), "d_fp32": D(torch.float32)}
    assert lstms_in_bf16(models, "bf16") == [
        ("generator.1", "precision=bf16", False),
        ("d_run.rnn", "precision=bf16", True),
        ("d_bf16.rnn", "discriminator.precision=bf16", True),
    ]
    assert lstms_in_bf16(models, "fp32") == [("d_bf16.rnn", "discriminator.precision=bf16", True)]
    assert lstms_in_bf16({"generator": g}, "tf32") == []


def test_fused_adam_takes_the_per_tensor_loops_step():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(30, 7)), torch.nn.Parameter(torch.randn(7))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fused, loop = adam(params, 0.01), torch.optim.Adam(twins, lr=0.01, foreach=False)
    assert fused.defaults["fused"]
    for step in range(5):
        for a, b in zip(params, twins, strict=True):
            a.grad = torch.full_like(a, 0.1 * (step + 1)).sin()
            b.grad = a.grad.clone()
        fused.step()
        loop.step()
    for a, b in zip(params, twins, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_frozen_copies_take_no_gradients_and_keep_the_weights():
    g = Generator(20, 4, 4, cell="gru")
    copy = frozen_copy(g)
    assert not any(p.requires_grad for p in copy.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), copy.state_dict().values(), strict=True))


def test_scores_read_the_weights_a_fused_optimizer_step_just_wrote():
    """Fused Adam changes weights without bumping their version counters: D's scoring tables
    (keyed on them) must still be rebuilt after a training step, or rewards come from the old D."""
    torch.manual_seed(0)
    d = CNNDiscriminator(50, 8, [1, 2, 3], [4, 4, 4], dropout=0.0)
    opt = adam(list(d.parameters()), 0.5)
    x = torch.randint(50, (8, 6))
    d.eval()
    with torch.no_grad():
        before = d(x)  # builds the tables
    d.train()
    d.loss(x, None, torch.arange(8) % 2 == 0).backward()
    opt.step()
    d.eval()
    with torch.no_grad():
        by_tables = d(x)
    by_convolutions = d(x).detach()  # with gradients: the plain convolutions
    assert not torch.allclose(by_tables, before)
    torch.testing.assert_close(by_tables, by_convolutions)


def test_a_bf16_discriminator_computes_under_bf16_autocast_and_answers_in_float32():
    """discriminator.precision=bf16: each entry point, the base class's (forward, loss) and a
    subclass's override (continuation_logits), gives exactly what it gives under an explicit bf16
    autocast, cast to float32, and not the float32 values; the gradients reach the float32 weights.
    compute_dtype=float32 turns a caller's bf16 autocast off."""
    torch.manual_seed(0)
    d = CNNDiscriminator(40, 8, [1, 2, 3], [6, 6, 6], dropout=0.0).eval()
    x, is_real = torch.randint(40, (6, 5)), torch.arange(6) < 3
    continued = torch.randint(40, (2, 3, 6, 5))
    scores = torch.no_grad()(d.continuation_logits)  # as rollouts score: by the lookup tables, the CNN's own route
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = [d(x).float(), d.loss(x, None, is_real).float(), scores(x, continued, 2).float()]
    fp32 = [d(x), d.loss(x, None, is_real), scores(x, continued, 2)]
    d.compute_dtype = torch.bfloat16
    ours = [d(x), d.loss(x, None, is_real), scores(x, continued, 2)]
    for got, want, plain in zip(ours, bf16, fp32, strict=True):
        assert got.dtype == torch.float32
        assert torch.equal(got, want)
        assert not torch.equal(got, plain)
        assert torch.allclose(got, plain, rtol=0.05, atol=0.05)
    d.loss(x, None, is_real).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in d.parameters())
    d.compute_dtype = torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(d(x), fp32[0])


def test_a_bf16_discriminator_leaves_the_generator_in_float32(tmp_path):
    """In an adversarial G step of a run with discriminator.precision=bf16, D's layers run under bf16
    autocast and G's (its policy's and its rollout policy's LSTM) never do; the setting's bad values
    are refused with the fix."""
    from seqgan.algorithms.seqgan import Players, policy_gradient_step

    cfg = load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.precision=bf16"])
    trainer = Trainer(cfg, tmp_path / "run", quiet=True)
    trainer.start(["test"])
    d, g, rollout = trainer.algorithm.discriminator, trainer.generator, trainer.algorithm.rollout
    assert d.compute_dtype == torch.bfloat16
    seen = {"d": set(), "g": set()}
    for who, model in (("d", d), ("g", g), ("g", rollout)):
        for module in model.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.LSTM | torch.nn.GRU):
                module.register_forward_pre_hook(lambda m, args, who=who: seen[who].add(torch.is_autocast_enabled("cpu")))
    a = trainer.cfg.adversarial
    players = Players(g, rollout, d)
    policy_gradient_step(players, trainer.algorithm.optimizers["adversarial"].optimizer, a, cfg.data.seq_len, trainer.streams)
    assert seen == {"d": {True}, "g": {False}}
    # D's steps stay eager on CUDA under bf16 (autocast's cast cache does not belong in a graph)
    assert [
        d_step_precision(run, own) for run, own in (("fp32", "bf16"), ("bf16", "fp32"), ("tf32", None), ("tf32", "fp32"))
    ] == [
        "bf16",
        "bf16",
        "tf32",
        "tf32",
    ]
    with pytest.raises(ConfigError, match="discriminator.precision='fp16': use 'bf16', 'fp32' or null"):
        load_config(ROOT / "configs" / "smoke.yaml", ["discriminator.precision=fp16"])
