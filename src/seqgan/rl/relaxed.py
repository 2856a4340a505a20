"""Continuous relaxations of sampling, and the GAN losses trained through them, as pure functions.

- `gumbel_noise`, `relaxed_one_hot`: the Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017),
  as GSGAN (Kusner and Hernandez-Lobato 2016) and RelGAN (Nie et al. ICLR 2019, Eq. 3-5) use it:
  with Gumbel noise g, the token is y = argmax(o + g) (an exact sample of softmax(o), the
  Gumbel-max trick) and D reads the relaxed one-hot softmax(beta * (o + g)), beta the inverse
  temperature. As beta grows the relaxed vector tends to the one-hot of y.
- `inverse_temperature`: RelGAN's annealing schedules of beta from 1 to beta_max (its code's
  `get_fixed_temperature`: 'no', 'lin', 'exp', 'log', 'sigmoid', 'quad', 'sqrt').
- `gan_losses`: the losses of D and G from D's real/fake logits: the relativistic standard GAN
  (RSGAN, Jolicoeur-Martineau 2019; RelGAN's choice) and the standard GAN (Goodfellow et al. 2014,
  G's non-saturating form).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from seqgan.runtime import to_device

RELAXATIONS = ("soft", "straight_through", "hard")
SCHEDULES = ("no", "lin", "exp", "log", "sigmoid", "quad", "sqrt")
GAN_LOSSES = ("rsgan", "standard")
TINY = 1e-10  # keeps log(-log(u)) finite at u = 0 and u = 1, as RelGAN's add_gumbel does


def gumbel_noise(shape: tuple[int, ...], rng: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Standard Gumbel noise g = -log(-log u), u ~ U(0, 1): (shape), drawn from `rng` on its own
    device, then moved to `device`."""
    u = to_device(torch.rand(shape, generator=rng, device=rng.device), torch.device(device))
    return -torch.log(-torch.log(u + TINY) + TINY)


def relaxed_one_hot(perturbed: torch.Tensor, beta: float, relaxation: str = "soft") -> torch.Tensor:
    """What D reads for one sampled token: perturbed (R, V) = logits + Gumbel noise -> (R, V).

    'soft': softmax(beta * perturbed), differentiable in the logits (RelGAN, GSGAN);
    'straight_through': the one-hot of argmax(perturbed) forward, the soft vector's gradient backward;
    'hard': the one-hot alone: no gradient reaches G (the relaxation switched off)."""
    if relaxation not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {RELAXATIONS}, got {relaxation!r}")
    hard = F.one_hot(perturbed.argmax(dim=-1), perturbed.shape[-1]).to(perturbed.dtype)
    if relaxation == "hard":
        return hard
    soft = torch.softmax(beta * perturbed, dim=-1)
    return soft if relaxation == "soft" else hard - soft.detach() + soft


def inverse_temperature(schedule: str, beta_max: float, step: int, total: int) -> float:
    """beta at G step `step` of `total` (0-based): 1 at step 0, beta_max at step total - 1.

    RelGAN's `get_fixed_temperature(temper, i, N, adapt)` with N = total - 1 steps to go, so that
    every schedule reaches its maximum at the last adversarial step. (The official code fixes N at
    5,000 whatever the run's length, and its 'exp' reaches beta_max at i = N, its others at
    N - 1; 'sigmoid' there ends at 1 + (beta_max - 1) * sigmoid(10), here rescaled to end
    exactly at beta_max.) 'no': beta_max throughout."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "no":
        return beta_max
    if total <= 1:
        return beta_max
    p = min(max(step, 0), total - 1) / (total - 1)  # progress in [0, 1]
    n = total - 1
    if schedule == "lin":
        frac = p
    elif schedule == "exp":
        return beta_max**p
    elif schedule == "log":
        frac = math.log(1 + p * n) / math.log(1 + n)
    elif schedule == "sigmoid":
        s = [1 / (1 + math.exp(-20 * (x - 0.5))) for x in (p, 0.0, 1.0)]
        frac = (s[0] - s[1]) / (s[2] - s[1])
    elif schedule == "quad":
        frac = p**2
    else:  # sqrt
        frac = math.sqrt(p)
    return 1 + (beta_max - 1) * frac


def gan_losses(real: torch.Tensor, fake: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(D's loss, G's loss) from D's logits of real (B,) and generated (B,) sequences, each the
    log-odds log P(real | x) / P(fake | x).

    'rsgan': L_D = -mean log sigmoid(real - fake), L_G = -mean log sigmoid(fake - real): D judges
        whether a real sequence is more realistic than a generated one, row b against row b.
    'standard': L_D = -mean [log sigmoid(real) + log(1 - sigmoid(fake))], L_G = -mean log sigmoid(fake)
        (the non-saturating generator loss)."""
    if kind == "rsgan":
        return -F.logsigmoid(real - fake).mean(), -F.logsigmoid(fake - real).mean()
    if kind == "standard":
        return -(F.logsigmoid(real).mean() + F.logsigmoid(-fake).mean()), -F.logsigmoid(fake).mean()
    raise ValueError(f"GAN loss must be one of {GAN_LOSSES}, got {kind!r}")


def relaxed_sample(
    generator: torch.nn.Module,
    rows: int,
    seq_len: int,
    beta: float,
    rng: torch.Generator,
    *,
    relaxation: str = "soft",
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample `rows` sequences from G (a `Generator`) by the Gumbel-max trick, keeping the graph:
    (tokens (R, T) int64, relaxed one-hots (R, T, V) for D, differentiable in G's parameters).

    As RelGAN's generator: each step feeds the SAMPLED token to the next one (its embedding), so
    the gradient reaches G through every step's logits, not through the inputs. With an end token,
    a row's positions after it are padding, its vector the padding's one-hot (no gradient).
    noise (R, noise_dim): each row's z for a G with a noise input (None: drawn from `rng`)."""
    device = generator.head.bias.device
    if noise is None:
        noise = generator.draw_noise(rows, rng)
    state = generator.initial_state(noise, rows)
    token = torch.full((rows,), generator.start_token, dtype=torch.long, device=device)
    done, tokens, vectors = None, [], []
    for _ in range(seq_len):
        logits, state = generator.step(token, state)  # (R, V)
        perturbed = logits.float() + gumbel_noise(tuple(logits.shape), rng, device)
        vector = relaxed_one_hot(perturbed, beta, relaxation)  # (R, V)
        was_done = done
        token, done = generator.finish(perturbed.argmax(dim=-1), done)
        if was_done is not None:  # rows past their end token read padding
            pad = F.one_hot(token, vector.shape[-1]).to(vector.dtype)
            vector = torch.where(was_done.unsqueeze(1), pad, vector)
        tokens.append(token)
        vectors.append(vector)
    return torch.stack(tokens, dim=1), torch.stack(vectors, dim=1)
