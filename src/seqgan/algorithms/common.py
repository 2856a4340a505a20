"""Building blocks every algorithm shares: G's maximum-likelihood epoch, a round of D training on
fresh negatives, and D's accuracy on held-out data.

Each takes the models, an optimizer, explicit random streams and a small settings object, and
returns the losses it measured. Under torchrun (`dist`, see `seqgan.distributed`) each rank trains
on its shard of every global batch through `model`, the model's `replicate` wrapper (DDP); losses
are scaled so that DDP's average of the ranks' gradients is the gradient of the global batch's
mean, and the returned losses are the global ones.

Losses stay on the device during an epoch (no host synchronisation per step); they are read, and
checked to be finite, once at its end: a NaN stops training with `NonFiniteLossError` there.

Conditional runs pass each data set's conditions along with it (`cond`, row for row): MLE reads
every real sequence with its own condition; G's samples (D's negatives, D's accuracy) are drawn for
conditions picked from the real data's, and D sees every sequence, real or generated, with its
condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from seqgan.cuda_graphs import StepGraphs, clipped_step, eager_step
from seqgan.distributed import SINGLE, Dist, all_gather_rows, all_reduce_sum, call, global_mean_scale, replicate
from seqgan.errors import NonFiniteLossError
from seqgan.models.condition import mismatched_pairs, pick_rows
from seqgan.models.discriminator import Discriminator, prob_real, prob_real_alone
from seqgan.models.generator import Generator
from seqgan.runtime import to_device


@dataclass
class Streams:
    """The random streams of training (saved in checkpoints, so a resume continues them exactly)."""

    sample: torch.Generator
    """G's samples (negatives, policy-gradient batches, rollouts), on the device; each rank its own."""
    shuffle: torch.Generator
    """Batch orders and MLE noise, on the CPU: the same on every rank."""


def finite_mean(total: torch.Tensor, count: int, dist: Dist, name: str) -> float:
    """The global mean of losses summed on this rank (`total`, a 0-d tensor) over `count` steps per
    rank; raises NonFiniteLossError if any of them was NaN or infinite. One host read per call."""
    value = all_reduce_sum([float(total)], dist, total.device)[0] / dist.world / max(count, 1)
    if not math.isfinite(value):
        raise NonFiniteLossError(f"the {name} loss is {value}")
    return value


def read_logged(logs: dict[str, list], dist: Dist, device: torch.device) -> dict[str, list[float]]:
    """A unit's logged values (name -> per-step values), those still on the device (0-d tensors of
    this rank, e.g. a step's loss left there so that no step waits for the device) read back in one
    host read and averaged over the ranks (one collective). Raises NonFiniteLossError if a loss (a
    name ending in 'loss') read here is NaN or infinite: training stops at the end of the unit."""
    places = [(name, i) for name, values in logs.items() for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
    if not places:
        return logs
    values = torch.stack([logs[name][i].detach().to(torch.float64) for name, i in places]).tolist()
    out = {name: list(values) for name, values in logs.items()}
    for (name, i), value in zip(places, all_reduce_sum(values, dist, device), strict=True):
        out[name][i] = value / dist.world
        if name.endswith("loss") and not math.isfinite(out[name][i]):
            raise NonFiniteLossError(f"the {name} of step {i + 1} is {out[name][i]}")
    return out


def mle_epoch(
    generator: Generator,
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    batch_size: int,
    grad_clip: float,
    shuffle: torch.Generator,
    *,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
    cond: torch.Tensor | None = None,
    graphs: StepGraphs | None = None,
) -> float:
    """One pass of teacher-forced MLE over `data` (R, T) in shuffled batches (the last partial
    batch is dropped, as in the paper's code), each sequence read with its condition cond (R, ...)
    for a conditional G. Returns the mean batch loss.

    A generator with a noise input reads each real sequence with a fresh z ~ N(0, I), drawn from
    `shuffle` after the batch order (nothing is drawn without one). Under torchrun every rank draws
    the same order and noise for the global batch and trains on its rows of it. With `graphs` (one
    process on CUDA) each step replays a CUDA graph of the same computation (`seqgan.cuda_graphs`)."""
    model = model or replicate(generator, dist)
    generator.train()
    perm = to_device(torch.randperm(len(data), generator=shuffle), data.device)
    total, steps = torch.zeros((), dtype=torch.float64, device=data.device), 0
    for i in range(0, len(data) - batch_size + 1, batch_size):
        idx = perm[i : i + batch_size]
        noise = generator.draw_noise(len(idx), shuffle)
        rows = dist.rows(len(idx))
        batch, noise = data[idx][rows], None if noise is None else noise[rows]
        batch_cond = None if cond is None else cond[idx][rows]
        mask = generator.mask(batch)
        inputs = (batch, mask, noise, batch_cond)
        if graphs is not None:
            loss = graphs.step("mle", lambda *x: teacher_forced_loss(model, *x), inputs, grad_clip)
        else:
            loss = teacher_forced_loss(model, *inputs)
            if dist.parallel:
                loss = loss * global_mean_scale(batch.numel() if mask is None else float(mask.sum()), dist, batch.device)
            clipped_step(generator.parameters(), optimizer, loss, grad_clip)
        total += loss.detach()
        steps += 1
    return finite_mean(total, steps, dist, "MLE")


def teacher_forced_loss(
    model: torch.nn.Module, batch: torch.Tensor, mask: torch.Tensor | None, noise: torch.Tensor | None, cond: torch.Tensor | None
) -> torch.Tensor:
    """MLE's loss on a batch (B, T) through G's wrapper `model`: the fused output layer's mean NLL over
    the valid positions (mask (B, T), None: all), the value of mle_loss(G(batch), batch) with padding left out."""
    return call(model, Generator.nll_loss, batch, mask, noise=noise, cond=cond)


@dataclass(frozen=True)
class DRound:
    """One round of D training: fresh negatives, then `epochs` passes over them and as many real ones."""

    num_negatives: int
    epochs: int
    batch_size: int
    label_smoothing: float = 0.0
    l2_reg: float = 0.0
    mismatched: int = 0
    """Conditional runs: up to this many more negatives, real sequences shown with another row's
    condition (`mismatched_pairs`), so that D also judges whether y fits c."""
    prefixes: bool = False
    """Train D on every prefix of every example (`Discriminator.prefix_loss`, padding masked), as
    the rewards of adversarial.reward=prefix_d read it; else on whole sequences (the paper)."""

    def pairs(self, num_real: int) -> int:
        """Rows per epoch: min(negatives, real ones) real + the negatives + the mismatched (at most)."""
        return min(self.num_negatives, num_real) + self.num_negatives + self.mismatched


def round_examples(
    generator: Generator, real: torch.Tensor, cond: torch.Tensor | None, settings: DRound, streams: Streams, dist: Dist
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """D's examples for a round: (tokens (R, T), their conditions (R, ...) or None, is_real (R,) bool),
    real pairs first. Each rank samples num_negatives / world of the negatives; all ranks gather
    them (in rank order) into the same global set."""
    generator.eval()
    n = settings.num_negatives // dist.world
    fake_cond = pick_rows(cond, n, streams.sample)
    fake = all_gather_rows(generator.sample(n, real.shape[1], streams.sample, cond=fake_cond), dist)
    pick = to_device(torch.randperm(len(real), generator=streams.shuffle)[: min(settings.num_negatives, len(real))], real.device)
    x = torch.cat([real[pick], fake])
    x_cond = None if cond is None else torch.cat([cond[pick], all_gather_rows(fake_cond, dist)])
    if cond is not None and settings.mismatched > 0:
        rows, wrong = mismatched_pairs(cond, settings.mismatched, streams.shuffle)  # the same draw on every rank
        x, x_cond = torch.cat([x, real[rows]]), torch.cat([x_cond, wrong])
    is_real = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    is_real[: len(pick)] = True
    return x, x_cond, is_real


def discriminator_round(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    generator: Generator,
    real: torch.Tensor,
    settings: DRound,
    streams: Streams,
    *,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
    cond: torch.Tensor | None = None,
    graphs: StepGraphs | None = None,
) -> float:
    """Draw `num_negatives` fresh sequences from G, pair them with as many real ones (all of `real`
    when it holds that many, as in the paper), and train D for `epochs` passes on its own loss
    (`Discriminator.loss`). Returns the mean batch loss.

    Conditional runs: cond (R, ...) the conditions of `real`; negatives are sampled for conditions
    drawn from them, and D learns real (y, c) pairs against generated ones (and mismatched ones).
    Under torchrun each rank trains on its rows of every global batch."""
    examples = round_examples(generator, real, cond, settings, streams, dist)
    mask = generator.mask(examples[0]) if settings.prefixes else None  # (R, T): the prefixes a real or generated y has
    return discriminator_epochs(
        discriminator, optimizer, examples, settings, streams, dist=dist, model=model, mask=mask, graphs=graphs
    )


def discriminator_epochs(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    examples: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
    settings: DRound,
    streams: Streams,
    *,
    dist: Dist = SINGLE,
    model: torch.nn.Module | None = None,
    mask: torch.Tensor | None = None,
    graphs: StepGraphs | None = None,
) -> float:
    """`settings.epochs` shuffled passes of D over `examples` (tokens (R, T), conditions (R, ...) or
    None, is_real (R,) bool; see `round_examples`), the last partial batch dropped. Returns the mean
    batch loss. settings.prefixes: D learns every prefix, the positions of mask (R, T) (None: all).
    With `graphs` (one process on CUDA) each step replays a CUDA graph of the same computation."""
    model = model or replicate(discriminator, dist)
    x, x_cond, is_real = examples
    smoothing, l2_reg = settings.label_smoothing, settings.l2_reg
    if settings.prefixes:  # (tokens (b, T), is_real (b,), mask (b, T) or None)

        def d_loss(tokens, labels, batch_mask):
            return call(model, Discriminator.prefix_loss, tokens, labels, batch_mask, label_smoothing=smoothing, l2_reg=l2_reg)

    else:  # (tokens (b, T), is_real (b,), cond (b, ...) or None)

        def d_loss(tokens, labels, batch_cond):
            return call(model, Discriminator.loss, tokens, batch_cond, labels, label_smoothing=smoothing, l2_reg=l2_reg)

    kind, extra = ("d", settings.prefixes, smoothing, l2_reg), mask if settings.prefixes else x_cond
    discriminator.train()
    total, steps, b = torch.zeros((), dtype=torch.float64, device=x.device), 0, settings.batch_size
    for _ in range(settings.epochs):
        perm = to_device(torch.randperm(len(x), generator=streams.shuffle), x.device)
        for i in range(0, len(x) - b + 1, b):
            idx = perm[i : i + b][dist.rows(b)]  # equal shards: DDP's average of the ranks' gradients is the global one
            inputs = (x[idx], is_real[idx], None if extra is None else extra[idx])
            loss = eager_step(d_loss, inputs, optimizer, None) if graphs is None else graphs.step(kind, d_loss, inputs)
            total += loss.detach()
            steps += 1
    return finite_mean(total, steps, dist, "discriminator")


@torch.no_grad()
def discriminator_accuracy(
    discriminator: Discriminator,
    real: torch.Tensor,
    generator: Generator,
    num: int,
    rng: torch.Generator,
    *,
    dist: Dist = SINGLE,
    cond: torch.Tensor | None = None,
) -> float:
    """Accuracy of D's real/fake decision (`Discriminator.real_fake_logits`) on `num` held-out real
    sequences and `num` fresh samples of G (threshold 0.5); conditional runs: cond (R, ...) the
    conditions of `real`, and each sample is drawn for the condition of a real one, so D is judged
    on the same conditions both ways. Under torchrun each rank scores its rows of the real ones and
    as many samples of its own."""
    discriminator.eval()
    generator.eval()
    part = dist.part(min(num, len(real)))
    real, cond = real[:num][part], None if cond is None else cond[:num][part]
    fake = generator.sample(len(real), real.shape[1], rng, cond=cond)
    correct = (prob_real_alone(discriminator, real, cond=cond) > 0.5).sum() + (
        prob_real_alone(discriminator, fake, cond=cond) <= 0.5
    ).sum()
    correct, count = all_reduce_sum([float(correct), 2.0 * len(real)], dist, real.device)
    return correct / count


@torch.no_grad()
def discriminator_condition_accuracy(
    discriminator: Discriminator, real: torch.Tensor, cond: torch.Tensor, num: int, rng: torch.Generator, dist: Dist = SINGLE
) -> float:
    """How often D prefers a held-out real sequence under its own condition to the same sequence
    under another one (drawn by `mismatched_pairs`): D(y, c) > D(y, c'), a tie counting half. 0.5 is
    a D that ignores the condition; the matching-aware negatives (discriminator.mismatched) train it towards 1.
    real (R, T), cond (R, ...); under torchrun each rank scores its share of the pairs."""
    discriminator.eval()
    rows, wrong = mismatched_pairs(cond[:num], min(num, len(real)), rng)  # (M,), (M, ...)
    part = dist.part(len(rows))
    rows, wrong = rows[part], wrong[part]
    right_p = prob_real(discriminator, real[rows], cond=cond[rows])
    wrong_p = prob_real(discriminator, real[rows], cond=wrong)
    wins = (right_p > wrong_p).float() + 0.5 * (right_p == wrong_p).float()  # (M,): a tie counts half
    correct, count = all_reduce_sum([float(wins.sum()), float(len(rows))], dist, real.device)
    return correct / max(count, 1.0)


def discriminator_metrics(
    discriminator: Discriminator,
    real: torch.Tensor,
    generator: Generator,
    num: int,
    rng: torch.Generator,
    *,
    dist: Dist = SINGLE,
    cond: torch.Tensor | None = None,
) -> dict[str, float]:
    """d_acc (`discriminator_accuracy`) and, for conditional runs, d_cond_acc (`discriminator_condition_accuracy`)."""
    out = {"d_acc": discriminator_accuracy(discriminator, real, generator, num, rng, dist=dist, cond=cond)}
    if cond is not None:
        out["d_cond_acc"] = discriminator_condition_accuracy(discriminator, real, cond, num, rng, dist)
    return out
