"""Benchmark: one adversarial G step at paper sizes, against the straightforward implementation.

Paper sizes: batch 64, N = 16 rollouts, T = 20, V = 5000, G an LSTM 32/32, D the paper's CNN.
Measured in one process, with the thread count given (default 1):
- g_step_seconds: seqgan's policy-gradient step (batched rollouts by inverse-CDF sampling,
  D scoring in chunks, PG update, rollout-policy update), median of --repeats;
- naive_g_step_seconds: the loop of the public ports, kept here: for each of the N rollouts and
  each prefix length t, re-run the policy from the start over the batch of 64 (the prefix forced,
  the rest drawn with torch.multinomial) and score those 64 sequences with D; then the same update;
- d_epoch_seconds: one D epoch over 20,000 sequences (10,000 real + 10,000 generated), batch 64;
- mle_epoch_seconds: one MLE epoch over 10,000 sequences, batch 64;
- matmul_gflops: a 2048^3 float32 matmul in the same process;
- algorithm_gflop: FLOPs of one G step done the plain way (D's convolutions as convolutions), the
  work of the naive loop too; executed_gflop: what seqgan executes instead (D's convolutions become
  a table build and gather-adds when scoring rollouts);
- achieved_gflops = executed_gflop / g_step_seconds (how busy the arithmetic units are);
  effective_gflops = algorithm_gflop / g_step_seconds (the plain method's rate it equals).
Ends by printing one JSON line.

    python bench/adversarial_step.py [--threads 1] [--repeats 3] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch

from seqgan.algorithms.common import DRound, Streams, discriminator_round, mle_epoch
from seqgan.algorithms.seqgan import Players, policy_gradient_step
from seqgan.config import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, AdversarialConfig
from seqgan.models.discriminator import CNNDiscriminator, prob_real
from seqgan.models.generator import Generator
from seqgan.rl.losses import pg_loss
from seqgan.rl.rollout import update_rollout_policy
from seqgan.runtime import configure

B, N, T, V, E, H = 64, 16, 20, 5000, 32, 32
D_EMB = 64


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def g_step_flops(tables: bool) -> float:
    """Counted FLOPs (2 per multiply-add) of one G step: rollout sampling, D scoring, PG update.

    tables=True counts D's convolutions as seqgan runs them when scoring: building the lookup
    tables (V x E x sum(w n_w) multiply-adds) and one add per table row gathered."""
    lstm_step = 2 * 4 * H * (E + H)
    head = 2 * H * V
    row_steps = N * B * T * (T - 1) // 2  # a row with prefix t draws T - t tokens
    prefix_pass = B * T * (lstm_step + head)
    sampling = B * T * (lstm_step + head)  # drawing the batch itself
    pairs = list(zip(PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, strict=True))
    conv = sum(2 * D_EMB * w * n * (T - w + 1) for w, n in pairs)
    gathers = sum(w * n * (T - w + 1) for w, n in pairs)
    f = sum(PAPER_NUM_FILTERS)
    dense = 2 * 2 * f * f + 2 * f * 2  # highway (two f x f layers) and the output layer
    rows = (N * (T - 1) + 1) * B
    table_build = 2 * V * D_EMB * sum(w * n for w, n in pairs)
    scoring = rows * (gathers + dense) + table_build if tables else rows * (conv + dense)
    update = 3 * B * T * (lstm_step + head)  # forward + backward of log-probabilities
    return row_steps * (lstm_step + head) + prefix_pass + sampling + scoring + update


@torch.no_grad()
def naive_rollout(policy: Generator, tokens: torch.Tensor, given: int) -> torch.Tensor:
    """The public ports' rollout: run from the start token, force the first `given` tokens, draw the rest."""
    out = tokens.clone()
    token = torch.full((tokens.shape[0],), policy.start_token, dtype=torch.long)
    state = None
    for t in range(T):
        logits, state = policy.step(token, state)
        if t < given:
            token = tokens[:, t]
        else:
            token = torch.multinomial(torch.softmax(logits, -1), 1).squeeze(1)
            out[:, t] = token
    return out


def naive_g_step(generator, rollout, discriminator, optimizer) -> None:
    samples = generator.sample(B, T, torch.Generator().manual_seed(0))
    discriminator.eval()
    rewards = torch.zeros(T, B)
    for _ in range(N):
        for given in range(1, T):
            rewards[given - 1] += prob_real(discriminator, naive_rollout(rollout, samples, given), B)
        rewards[T - 1] += prob_real(discriminator, samples, B)
    rewards = (rewards / N).T
    loss = pg_loss(generator.log_probs(samples), rewards)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(generator.parameters(), 5.0)
    optimizer.step()
    update_rollout_policy(rollout, generator, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-naive", action="store_true", help="leave out the slow baseline loop")
    args = parser.parse_args()
    configure(args.threads)
    torch.manual_seed(0)

    generator = Generator(V, E, H)
    rollout = Generator(V, E, H)
    rollout.load_state_dict(generator.state_dict())
    discriminator = CNNDiscriminator(V, D_EMB, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, 0.25)
    g_opt = torch.optim.Adam(generator.parameters(), lr=0.01)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
    streams = Streams(sample=torch.Generator().manual_seed(0), shuffle=torch.Generator().manual_seed(0))
    players = Players(generator, rollout, discriminator)
    adversarial = AdversarialConfig(batch_size=B, rollout_num=N)
    real = Generator(V, E, H, init_std=1.0).sample(10_000, T, torch.Generator().manual_seed(1))

    def ours() -> None:
        policy_gradient_step(players, g_opt, adversarial, T, streams)

    ours()  # warm-up
    g_step = timed(ours, args.repeats)

    a = 2048
    x, y = torch.randn(a, a), torch.randn(a, a)
    torch.mm(x, y)
    matmul = 2 * a**3 / timed(lambda: torch.mm(x, y), 3) / 1e9

    d_epoch = timed(
        lambda: discriminator_round(discriminator, d_opt, generator, real, DRound(10_000, 1, 64, l2_reg=0.2), streams),
        1,
    )
    mle = timed(lambda: mle_epoch(generator, torch.optim.Adam(generator.parameters(), 0.01), real, 64, 5.0, streams.shuffle), 1)

    result = {
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
        "g_step_seconds": round(g_step, 3),
        "d_epoch_seconds": round(d_epoch, 2),
        "mle_epoch_seconds": round(mle, 2),
        "matmul_gflops": round(matmul, 1),
        "algorithm_gflop": round(g_step_flops(tables=False) / 1e9, 1),
        "executed_gflop": round(g_step_flops(tables=True) / 1e9, 1),
        "achieved_gflops": round(g_step_flops(tables=True) / g_step / 1e9, 1),
        "effective_gflops": round(g_step_flops(tables=False) / g_step / 1e9, 1),
    }
    if not args.skip_naive:
        naive = timed(lambda: naive_g_step(generator, rollout, discriminator, g_opt), 1)
        result |= {"naive_g_step_seconds": round(naive, 2), "speedup_vs_naive": round(naive / g_step, 2)}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
