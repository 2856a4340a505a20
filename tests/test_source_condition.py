"""The seq2seq condition: a source token sequence read by an encoder RNN (optionally attended by G).

Padding is invisible to the encoder and gets zero attention; a source ignored by G, its attention,
the rollout policy or D is caught; a rigged policy and D that reward copying the source give
rewards computable by hand; MLE learns the synthetic transduction; bad sources name the file and
line; runs are deterministic; the command line trains, samples for a source and evaluates."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from seqgan import runtime
from seqgan.algorithms.common import Streams
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.cli.main import main
from seqgan.config import AdversarialConfig, ConfigError, load_config
from seqgan.data.conditions import ConditionSpace
from seqgan.data.corpus import CorpusError
from seqgan.data.transduction import permutation, target_of, write_task
from seqgan.metrics.logger import read_metrics, without_clock
from seqgan.metrics.seq2seq import match_counts
from seqgan.models.condition import SourceEncoder, source_attention
from seqgan.models.discriminator import CNNDiscriminator, Discriminator, RNNDiscriminator, prob_real
from seqgan.models.generator import Generator
from seqgan.rl.rollout import rollout_rewards, rollout_sequences
from seqgan.training.run import Trainer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "configs" / "text.yaml"
V, T = 9, 6
# Sources of 3..6 tokens (ids 1..8), padded with 0 to 6 columns; their last tokens differ pairwise.
SRC = torch.tensor([[3, 1, 4, 0, 0, 0], [1, 5, 8, 2, 6, 0], [2, 7, 1, 8, 2, 5], [5, 3, 5, 0, 0, 0], [6, 6, 1, 7, 0, 0]])
LAST = torch.tensor([4, 6, 5, 5, 7])


def logged(run: Path) -> list[dict]:
    """The run's metrics rows without the time they were written at."""
    return without_clock(read_metrics(run / "metrics.jsonl"))


def pad_wider(src: torch.Tensor, width: int) -> torch.Tensor:
    return torch.cat([src, src.new_zeros(len(src), width - src.shape[1])], dim=1)


def seq2seq_generator(attention: bool = True, cell: str = "lstm", **kwargs) -> Generator:
    torch.manual_seed(0)
    encoder = SourceEncoder(V, 5, 7, cell="gru", bidirectional=True)
    return Generator(
        V, 8, 12, cell=cell, init_std=0.5, condition=encoder, source_attention=attention, eos_token=2, pad_token=0, **kwargs
    )


# ----------------------------------------------------------------------------- encoder and attention


@pytest.fixture(params=["packed", "aligned"])
def encoding(request, monkeypatch):
    """Both of SourceEncoder's routes: packed rows (the CPU's), and the two alignments a GPU takes
    because packing reads the lengths back to the host."""
    if request.param == "aligned":
        monkeypatch.setattr(runtime, "host_reads_are_free", lambda device: False)
    return request.param


@pytest.mark.parametrize(("cell", "bidirectional"), [("gru", True), ("lstm", False), ("lstm", True)])
def test_encoder_shapes_and_padding_is_invisible(cell, bidirectional, encoding):
    torch.manual_seed(0)
    enc = SourceEncoder(V, 5, 7, cell, bidirectional)
    vector, memory, mask = enc.encode(SRC)
    dim = 14 if bidirectional else 7
    assert enc.dim == enc.memory_dim == dim
    assert vector.shape == (5, dim) and memory.shape == (5, 6, dim) and mask.shape == (5, 6)
    assert torch.equal(mask, SRC != 0) and bool((memory[~mask] == 0).all())
    wide_vector, wide_memory, _ = enc.encode(pad_wider(SRC, 9))  # more padding: the same source
    torch.testing.assert_close(wide_vector, vector, rtol=0, atol=1e-6)
    torch.testing.assert_close(wide_memory[:, :6], memory, rtol=0, atol=1e-6)
    with torch.no_grad():
        enc.embedding.weight[0] += 5.0  # what a padded position would read, if it were read
    torch.testing.assert_close(enc(SRC), vector, rtol=0, atol=0)


@pytest.mark.parametrize(("cell", "bidirectional"), [("gru", True), ("lstm", True), ("gru", False)])
def test_the_unpacked_encoding_of_gpus_equals_the_packed_one_with_its_gradients(monkeypatch, cell, bidirectional):
    torch.manual_seed(0)
    enc = SourceEncoder(V, 5, 7, cell, bidirectional)
    w = torch.randn(5, enc.dim), torch.randn(5, 6, enc.dim)

    def encoded() -> tuple[torch.Tensor, ...]:
        vector, memory, mask = enc.encode(SRC)
        grads = torch.autograd.grad((vector * w[0]).sum() + (memory * w[1]).sum(), list(enc.parameters()))
        return vector, memory, mask, *grads

    packed = encoded()
    monkeypatch.setattr(runtime, "host_reads_are_free", lambda device: False)
    aligned = encoded()
    assert torch.equal(aligned[2], packed[2])
    for a, b in zip(aligned, packed, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_attention_gives_padding_exactly_zero_weight():
    g = torch.Generator().manual_seed(0)
    query, memory = torch.randn(5, 4, 14, generator=g), torch.randn(5, 6, 14, generator=g)
    read, weights = source_attention(query, memory, SRC != 0)
    assert read.shape == (5, 4, 14) and weights.shape == (5, 4, 6)
    assert bool((weights[(SRC == 0).unsqueeze(1).expand(-1, 4, -1)] == 0).all())
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(5, 4))
    changed = memory.clone()
    changed[SRC == 0] = 100.0  # anything at padded positions
    torch.testing.assert_close(source_attention(query, changed, SRC != 0)[0], read, rtol=0, atol=0)


def test_generator_outputs_do_not_depend_on_padding():
    gen = seq2seq_generator()
    y = torch.randint(3, V, (5, T), generator=torch.Generator().manual_seed(1))
    logp = gen.log_probs(y, cond=SRC)
    torch.testing.assert_close(gen.log_probs(y, cond=pad_wider(SRC, 10)), logp, rtol=0, atol=1e-6)
    with torch.no_grad():
        gen.condition.embedding.weight[0].normal_()
    torch.testing.assert_close(gen.log_probs(y, cond=SRC), logp, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("cell", "self_attention", "step_input"), [("lstm", False, False), ("gru", True, False), ("lstm", True, True)]
)
def test_step_by_step_states_match_teacher_forcing(cell, self_attention, step_input):
    """Rollouts continue from cached states that hold the memory exactly as teacher forcing reads it."""
    torch.manual_seed(0)
    options = {"attention": self_attention, "condition_input": step_input}
    gen = Generator(V, 8, 12, cell=cell, init_std=0.5, condition=SourceEncoder(V, 5, 7), source_attention=True, **options)
    y = torch.randint(3, V, (5, T), generator=torch.Generator().manual_seed(1))
    _, logits = gen.prefix_states(y, cond=SRC)
    torch.testing.assert_close(torch.stack(logits, dim=1), gen(y, cond=SRC)[:, 1:], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- an ignored source is caught

OTHER = SRC.roll(1, dims=0)  # every row gets another row's source


@pytest.mark.parametrize("attention", [False, True])
def test_generator_and_rollout_policy_read_the_source(attention):
    gen = seq2seq_generator(attention)
    y = torch.randint(3, V, (5, T), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(gen.log_probs(y, cond=SRC), gen.log_probs(y, cond=OTHER))

    def draws(src):
        return gen.sample(5, T, torch.Generator().manual_seed(2), cond=src)

    assert torch.equal(draws(SRC), draws(SRC)) and not torch.equal(draws(SRC), draws(OTHER))

    def rollouts(src):
        return rollout_sequences(gen, y, 4, torch.Generator().manual_seed(3), chunk_rows=7, cond=src)

    assert torch.equal(rollouts(SRC), rollouts(SRC)) and not torch.equal(rollouts(SRC), rollouts(OTHER))


def test_attention_alone_carries_the_source():
    gen = seq2seq_generator(attention=True)
    with torch.no_grad():
        gen.condition_map.weight.zero_()  # the initial state no longer depends on the source: only attention does
    y = torch.randint(3, V, (5, T), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(gen.log_probs(y, cond=SRC), gen.log_probs(y, cond=OTHER))


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_discriminator_reads_the_source(kind):
    torch.manual_seed(0)
    encoder = SourceEncoder(V, 5, 6)
    d = (
        CNNDiscriminator(V, 8, [1, 2], [4, 4], condition=encoder)
        if kind == "cnn"
        else RNNDiscriminator(V, 8, 6, condition=encoder)
    )
    d.eval()
    y = torch.randint(3, V, (5, T), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(prob_real(d, y, cond=SRC), prob_real(d, y, cond=OTHER))
    torch.testing.assert_close(prob_real(d, y, batch_size=2, cond=SRC), prob_real(d, y, cond=SRC))


def test_bad_source_rows_are_errors():
    enc = SourceEncoder(V, 5, 7)
    with pytest.raises(ValueError, match="padding .* only after the last one"):
        enc(torch.tensor([[3, 0, 4]]))
    with pytest.raises(ValueError, match="source row 1 is empty"):
        enc(torch.tensor([[3, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"source conditions must be \(rows, S\) int64"):
        enc(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="ids must lie in 0..8"):
        enc(torch.tensor([[3, 9]]))
    with pytest.raises(ValueError, match="needs a condition encoder with a memory"):
        Generator(V, 8, 12, condition=nn.Embedding(3, 2), source_attention=True)


# ----------------------------------------------------------------------------- rigged: copying the source


def copy_last_policy() -> Generator:
    """A G that emits its source's last token at every step: the encoder's forward GRU keeps only
    the token it read last (update gate shut, no recurrence), h = tanh(3) e_last, which sets the
    LSTM's cell state; the LSTM keeps it (input gate shut, forget and output gates open) and the
    output layer reads it. Any loss of the source (zero state, another row's) emits other tokens."""
    enc = SourceEncoder(V, V, V, cell="gru", bidirectional=False)
    g = Generator(V, 4, V, cell="lstm", init_std=0, condition=enc)
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
        enc.embedding.weight.copy_(torch.eye(V))
        enc.rnn.weight_ih_l0[2 * V :] = 3.0 * torch.eye(V)  # n = tanh(3 x_t)
        enc.rnn.bias_ih_l0[V : 2 * V] = -30.0  # update gate z = 0: h_t = n_t
        g.condition_map.weight[V:] = 3.0 * torch.eye(V)  # c0 from the encoder's vector; h0 = 0
        g.rnn.bias_ih_l0[:V] = -30.0
        g.rnn.bias_ih_l0[V : 2 * V] = 30.0
        g.rnn.bias_ih_l0[3 * V :] = 30.0
        g.head.weight.copy_(200.0 * torch.eye(V))
    return g


def copy_score(tokens: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Rigged D(y, x): the fraction of positions where y copies x (x's padding never matches). (R, T), (R, T) -> (R,)."""
    return (tokens == src).float().mean(dim=1)


Y = torch.tensor([[3, 1, 7, 7, 7, 7], [2, 6, 6, 2, 6, 6], [5, 5, 5, 5, 5, 5], [5, 3, 5, 1, 1, 1], [6, 8, 8, 8, 8, 8]])


def expected_copy_rewards(y: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Q(t) = (copied positions of y_1..t + positions s > t where the policy's token, x's last, equals x_s) / T, by hand."""
    out = torch.zeros(y.shape)
    for b in range(len(y)):
        last = int(src[b][src[b] != 0][-1])
        for t in range(1, T + 1):
            prefix = sum(int(y[b, s]) == int(src[b, s]) for s in range(t))
            rest = sum(last == int(src[b, s]) for s in range(t, T))
            out[b, t - 1] = (prefix + rest) / T
    return out


def test_rollouts_continue_each_row_with_its_own_source():
    out = rollout_sequences(copy_last_policy(), Y, 2, torch.Generator().manual_seed(0), chunk_rows=5, cond=SRC)
    for t in range(1, T):
        for b in range(len(Y)):
            assert bool((out[t - 1, :, b, t:] == LAST[b]).all()), (t, b)
            assert torch.equal(out[t - 1, :, b, :t], Y[b, :t].expand(2, -1))


def test_rigged_copy_rewards_are_computed_by_hand():
    want = expected_copy_rewards(Y, SRC)
    # row 0: y copies x_1, x_2, and the policy's 4 (x's last) copies x_3 from any earlier prefix; row 2: only x_6 = 5
    torch.testing.assert_close(want[[0, 2]], torch.tensor([[2, 3, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1]]) / 6)
    for chunk in (1, 7, 64, 10_000):  # chunk boundaries must not mix sources up
        rewards = rollout_rewards(
            copy_last_policy(), copy_score, Y, 3, torch.Generator().manual_seed(0), chunk_rows=chunk, cond=SRC
        )
        torch.testing.assert_close(rewards, want)
    rewards = rollout_rewards(copy_last_policy(), copy_score, Y, 3, torch.Generator().manual_seed(0), chunk_rows=11, cond=OTHER)
    torch.testing.assert_close(rewards, expected_copy_rewards(Y, OTHER))


class LastTokenD(Discriminator):
    """Rigged D(y, x): the fraction of y's tokens equal to x's last token; records the (y, x) pairs it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(1, 2)
        self.classifier = None
        self.seen: list[torch.Tensor] = []

    def plain_logits(self, tokens: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        self.seen.append(src.clone())
        last = src.gather(1, ((src != 0).sum(dim=1) - 1).unsqueeze(1))  # (R, 1)
        p = (tokens == last).float().mean(dim=1)
        return torch.stack([torch.log1p(-p + 1e-6), torch.log(p + 1e-6)], dim=1) + 0.0 * self.out.bias.sum()


def test_policy_gradient_step_gives_g_rollouts_and_d_each_rows_source():
    """G emits its source's last token, the rollouts continue it, D rewards exactly that: with every
    link keeping each row's source every reward is 1; a dropped or shuffled source anywhere lowers it."""
    policy = copy_last_policy()
    d = LastTokenD()
    a = AdversarialConfig(batch_size=12, rollout_num=4, rollout_chunk=16)
    streams = Streams(torch.Generator().manual_seed(0), torch.Generator())
    players = Players(copy.deepcopy(policy), policy, d)
    _, reward, _ = policy_gradient_step(players, torch.optim.SGD(policy.parameters(), lr=0.0), a, T, streams, cond_pool=SRC)
    assert reward > 1 - 1e-5
    assert len({tuple(row) for row in torch.cat(d.seen).tolist()}) >= 4  # the batch held several sources


# ----------------------------------------------------------------------------- the transduction task and runs


def test_transduction_task_is_seeded_and_exact(tmp_path):
    write_task(tmp_path / "a", num_train=50, num_valid=5, num_test=10, symbols=5, min_len=2, max_len=4, seed=3)
    write_task(tmp_path / "b", num_train=50, num_valid=5, num_test=10, symbols=5, min_len=2, max_len=4, seed=3)
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "task.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    pi = permutation(5, 3)
    task = json.loads((tmp_path / "a" / "task.json").read_text())
    pairs = [json.loads(line) for name in ("train", "valid", "test") for line in (tmp_path / "a" / f"{name}.jsonl").open()]
    assert len({p["source"] for p in pairs}) == 65  # no test or validation source is a training source
    for p in pairs:
        src = ["abcde".index(s) for s in p["source"].split()]
        assert p["text"].split() == [task["pi"][p["source"].split()[-1 - i]] for i in range(len(src))]
        assert p["text"] == " ".join("abcde"[s] for s in target_of(src, pi)) and 2 <= len(src) <= 4
    with pytest.raises(ValueError, match="too few for"):
        write_task(tmp_path / "c", num_train=100, num_valid=5, num_test=10, symbols=2, min_len=2, max_len=4)


def test_match_counts_by_hand():
    refs = torch.tensor([[3, 4, 2, 0], [5, 2, 0, 0], [3, 3, 3, 2]])
    outs = torch.tensor([[3, 4, 2, 0], [5, 6, 2, 0], [3, 1, 3, 2]])
    counts = match_counts(outs, refs)  # a run-on output misses the end token; one wrong token of four
    assert counts.tolist() == [[1, 3, 3], [0, 1, 2], [0, 3, 4]]


TINY = """
    data.max_len=5 data.heldout_size=50 condition.kind=source condition.max_source_len=5 condition.attention=true
    generator.embed_dim=16 generator.hidden_dim=32 condition.embed_dim=16 condition.encoder_hidden=32 pretrain.epochs=4
    pretrain.batch_size=32 eval.every=2 eval.bleu_samples=0 eval.d_samples=50 d_pretrain.steps=0 adversarial.epochs=0
    eval.final_samples=6 discriminator.embed_dim=8 discriminator.filter_sizes=[1,2,3] discriminator.num_filters=[4,4,4]
""".split()
ADVERSARIAL = """
    pretrain.epochs=1 d_pretrain.steps=1 d_pretrain.num_negatives=64 adversarial.epochs=2 adversarial.batch_size=8
    adversarial.num_negatives=32 adversarial.rollout_num=2 adversarial.d_steps=1 adversarial.d_epochs=1
    adversarial.g_lr=0.001 discriminator.batch_size=16 eval.every=1 checkpoint.every=1
""".split()


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("task")
    write_task(folder, num_train=1500, num_valid=100, num_test=200, symbols=5, min_len=2, max_len=5, seed=0)
    return folder


def task_args(task: Path, *overrides: str) -> list[str]:
    files = [f"data.train={task / 'train.jsonl'}", f"data.valid={task / 'valid.jsonl'}", f"data.test={task / 'test.jsonl'}"]
    return [*files, *TINY, *overrides]


def test_mle_learns_the_transduction(tmp_path, task):
    trainer = Trainer(load_config(TEXT, task_args(task)), tmp_path, quiet=True)
    trainer.start(["test"])
    trainer.run()
    last = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["exact_match_greedy"] > 0.9 and last["exact_match"] > 0.8 and last["token_acc_greedy"] > 0.97
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert report["vocab_size"] == 9 and report["test"]["kept"] == 200 and report["test"]["source_truncated"] == 0


def test_source_runs_are_deterministic_and_train_every_parameter(tmp_path, task):
    def run(name):
        trainer = Trainer(load_config(TEXT, task_args(task, *ADVERSARIAL)), tmp_path / name, quiet=True)
        trainer.start(["test"])
        before = {k: v.clone() for k, v in trainer.algorithm.discriminator.state_dict().items()}
        before |= {f"g.{k}": v.clone() for k, v in trainer.generator.state_dict().items()}
        trainer.run()
        return trainer, before

    a, before = run("a")
    run("b")
    assert logged(tmp_path / "a") == logged(tmp_path / "b")
    after = a.algorithm.discriminator.state_dict() | {f"g.{k}": v for k, v in a.generator.state_dict().items()}
    unchanged = [k for k, v in after.items() if torch.equal(before[k], v)]
    assert not unchanged and any(k.startswith("g.condition.") for k in after) and "g.source_query.weight" in after


def test_source_run_resumes_exactly(tmp_path, task, crash_on_third_pg_step):
    args = task_args(task, *ADVERSARIAL, "adversarial.epochs=3")
    full = Trainer(load_config(TEXT, args), tmp_path / "full", quiet=True)
    full.start(["test"])
    full.run()
    crash = Trainer(load_config(TEXT, args), tmp_path / "crash", quiet=True)
    crash.start(["test"])
    with crash_on_third_pg_step():
        crash.run()
    resumed = Trainer(load_config(tmp_path / "crash" / "config.yaml"), tmp_path / "crash", quiet=True)
    resumed.resume()
    resumed.run()
    assert logged(tmp_path / "crash") == logged(tmp_path / "full")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


GOOD = [{"source": "a b c", "text": "c b a"}, {"source": "b a", "text": "a b"}] * 30


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"text": "x y"}, r"train\.jsonl:3: no source field 'source'; every line needs"),
        ({"text": "x y", "source": "  "}, r"train\.jsonl:3: empty source 'source'"),
        (
            {"text": "x y", "source": ["a"]},
            r"train\.jsonl:3: source 'source' is list \(\[\"a\"\]\); store the source as a JSON string",
        ),
    ],
)
def test_a_bad_source_names_the_file_and_line(tmp_path, record, message):
    train = write_jsonl(tmp_path / "train.jsonl", [*GOOD[:2], record, *GOOD])
    with pytest.raises(CorpusError, match=message):
        Trainer(load_config(TEXT, [f"data.train={train}", *TINY]), tmp_path / "run", quiet=True)


def test_long_sources_are_truncated_or_dropped_and_counted(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", GOOD)
    test = write_jsonl(tmp_path / "test.jsonl", [*GOOD[:10], {"source": "a b c a b c a", "text": "a"}])
    for overflow, kept in (("truncate", 11), ("drop", 10)):
        args = [f"data.train={train}", f"data.test={test}", *TINY, f"data.overflow={overflow}"]
        data = Trainer(load_config(TEXT, args), tmp_path / overflow, quiet=True).data
        report = data.text.report["test"]
        assert report["kept"] == kept and len(data.test) == len(data.cond_test) == kept
        assert report[f"source_{'truncated' if overflow == 'truncate' else 'dropped'}"] == 1
        assert report["source_longest"] == 7 and data.cond_test.shape[1] == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["condition.kind=source"], "condition.kind=source reads a source sequence .* set data.source=text"),
        (["condition.kind=label", "condition.attention=true"], "condition.attention does not apply to condition.kind='label'"),
        (["condition.kind=source", "condition.encoder_cell=rnn"], "condition.encoder_cell='rnn': use 'gru' or 'lstm'"),
        (["data.source=text", "data.train=a.txt", "condition.kind=source"], "sources are read from JSON Lines"),
        (
            ["data.source=text", "data.train=a.jsonl", "condition.kind=source", "condition.source_field=text"],
            "the source and the target need their own fields",
        ),
    ],
)
def test_bad_source_settings_say_how_to_fix_them(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_source_condition_arguments_are_checked(tmp_path):
    from seqgan.data.tokenizers import build_tokenizer

    space = ConditionSpace("source", ("source",), source_len=4)
    tok = build_tokenizer("word", ["a b c"], None, False)
    pool = torch.tensor([[4, 5, 0, 0]])
    assert space.parse(["source=c a"], pool, tok).tolist() == [[tok.encode("c")[0], tok.encode("a")[0], 0, 0]]
    assert space.parse(["row=0"], pool, tok).tolist() == [[4, 5, 0, 0]]
    for specs, message in [
        (["source=a b c a b"], r"5 tokens, but this run reads sources of at most 4 \(condition.max_source_len\)"),
        (["genre=x"], "this run conditions on a source sequence; give --condition source='TEXT' once"),
        (["source="], "write --condition source='TEXT'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            space.parse(specs, pool, tok)
    assert ConditionSpace.from_dict(space.to_dict()) == space


# ----------------------------------------------------------------------------- the command line


def test_cli_trains_samples_for_a_source_and_evaluates(tmp_path, task, capsys):
    run = tmp_path / "run"
    args = task_args(task, *ADVERSARIAL, "pretrain.epochs=2")
    assert main(["train", str(ROOT / "configs" / "s2s_seqgan.yaml"), "--out", str(run), "--quiet", *args]) == 0
    lines = (run / "samples.txt").read_text().splitlines()
    assert len(lines) == 6 and all(line.startswith("source=") and "\t" in line for line in lines)
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "3", "--condition", "source=a b c d", "--temperature", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(set(line.split()) <= {*"abcde", "<unk>"} for line in out)
    assert main(["sample", str(run), "-n", "2", "--condition", "source=a b z"]) == 0
    assert "1 source token(s) are not in the run's vocabulary" in capsys.readouterr().err
    assert main(["sample", str(run), "--condition", "source=a b c d e a"]) == 2
    assert "6 tokens, but this run reads sources of at most 5" in capsys.readouterr().err
    assert main(["sample", str(run), "--condition", "class=1"]) == 2
    assert "conditions on a source sequence" in capsys.readouterr().err
    assert main(["evaluate", str(run), "-n", "8"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("exact_match", "token_acc", "exact_match_greedy", "token_acc_greedy", "nll_test"):
        assert 0 <= result[key] <= 1 or key == "nll_test", key
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("exact_match_greedy" in r for r in rows if r["phase"] != "d_pretrain")
