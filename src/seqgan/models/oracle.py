"""The synthetic oracle of SeqGAN (Yu et al., 2017, Sec. 5): an LSTM whose samples are the "real" data.

The oracle's gate equations (../shared/README.md), with x the embedding of the previous token
(token 0 first) and h, c starting at zero:

    i = sigmoid(x W_i + h U_i + b_i)      f = sigmoid(x W_f + h U_f + b_f)
    o = sigmoid(x W_o + h U_o + b_o)      c = f * c + i * tanh(x W_c + h U_c + b_c)
    h = o * tanh(c)                       logits = h W_out + b_out

These are exactly `torch.nn.LSTM`'s with one bias, so the oracle is a frozen `Generator` whose
weights are packed in PyTorch's gate order (i, f, g=c, o). Two sources of weights: the paper's
own (`target_params.npz`) or a seeded random oracle with N(0, 1) parameters (the paper code's
`TARGET_LSTM` initialisation), which needs no file.

The conditional oracle (made here, for the conditional SeqGAN) is the random oracle of the same
seed whose initial state depends on a condition c, so p_oracle(y | c) and, by Bayes, the
posterior p_oracle(c | y) are exact:
- labels: K classes, class k starting from (h0, c0) = tanh(W e_k + b), with e_k (K x H), W
  (2H x H) and b drawn N(0, 1) after the LSTM's parameters: K seeded points of (-1, 1)^2H, most
  coordinates near +-1. Sequences draw their class uniformly.
- features (standing for the cross-modal case): a vector f ~ N(0, I_F) per sequence, and
  (h0, c0) = tanh(W (P f + p) + b), a fixed random (N(0, 1)) projection of f.
Sizes and how far the classes can be told apart are measured in the README (the oracle's own
condition accuracy on its own samples is the ceiling of any model's).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from seqgan.data.conditions import ConditionSpace, draw_conditions
from seqgan.models.condition import FeatureEncoder, LabelEncoder
from seqgan.models.generator import Generator

GATES = ("i", "f", "c", "o")  # PyTorch's LSTM gate order, with its g gate = the paper's c


class OracleError(ValueError):
    """The oracle's weights file is missing or malformed."""


def random_oracle_params(
    vocab_size: int, embed_dim: int, hidden_dim: int, seed: int, space: ConditionSpace | None = None
) -> dict[str, np.ndarray]:
    """N(0, 1) parameters in the layout of `target_params.npz`, drawn from a seeded generator; for
    a conditional oracle (`space`), its initial-state parameters are drawn after them, under the
    names of the `Generator`'s state dict."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"embedding": (vocab_size, embed_dim)}
    for gate in GATES:
        shapes |= {f"W_{gate}": (embed_dim, hidden_dim), f"U_{gate}": (hidden_dim, hidden_dim), f"b_{gate}": (hidden_dim,)}
    shapes |= {"W_out": (hidden_dim, vocab_size), "b_out": (vocab_size,)}
    if space is not None:
        shapes |= {name: tuple(t.shape) for name, t in _condition_encoder(space, hidden_dim).state_dict().items()}
        shapes |= {"condition_map.weight": (2 * hidden_dim, hidden_dim), "condition_map.bias": (2 * hidden_dim,)}
    return {name: torch.randn(shape, generator=g).numpy() for name, shape in shapes.items()}


def _condition_encoder(space: ConditionSpace, hidden_dim: int) -> torch.nn.Module:
    """The oracle's condition encoder, prefixed 'condition.' as a `Generator` holds it: e_k or P f + p."""
    if space.kind == "label":
        return torch.nn.ModuleDict({"condition": LabelEncoder(space.num_classes, hidden_dim)})
    return torch.nn.ModuleDict({"condition": FeatureEncoder(space.feature_dim, hidden_dim)})


def load_oracle_params(path: str | Path) -> dict[str, np.ndarray]:
    """Read the paper's weights; `numpy.load` with allow_pickle=False never runs code from the file."""
    path = Path(path)
    if not path.is_file():
        raise OracleError(
            f"{path}: oracle weights not found; set data.oracle_path, or data.oracle=random for the built-in oracle"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            params = {k: npz[k] for k in npz.files}
    except Exception as err:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise OracleError(f"{path}: not a readable .npz file ({err})") from None
    needed = ["embedding", "W_out", "b_out"] + [f"{m}_{g}" for g in GATES for m in ("W", "U", "b")]
    missing = [k for k in needed if k not in params]
    if missing:
        raise OracleError(f"{path}: missing arrays {missing}; expected the layout of target_params.npz")
    return params


def oracle_from_params(params: dict[str, np.ndarray], space: ConditionSpace | None = None) -> Generator:
    """Pack the paper's per-gate matrices into a frozen single-layer LSTM `Generator` (conditional
    when `space` is given: its initial-state parameters are then in `params` too)."""
    vocab_size, embed_dim = params["embedding"].shape
    hidden_dim = params["U_i"].shape[0]
    encoder = None if space is None else _condition_encoder(space, hidden_dim)["condition"]
    oracle = Generator(vocab_size, embed_dim, hidden_dim, num_layers=1, cell="lstm", start_token=0, init_std=0, condition=encoder)
    t = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in params.items()}
    with torch.no_grad():
        oracle.embedding.weight.copy_(t["embedding"])
        # x W (row vector times matrix) is W^T x: PyTorch stores (4H, in) matrices.
        oracle.rnn.weight_ih_l0.copy_(torch.cat([t[f"W_{g}"].T for g in GATES]))
        oracle.rnn.weight_hh_l0.copy_(torch.cat([t[f"U_{g}"].T for g in GATES]))
        oracle.rnn.bias_ih_l0.copy_(torch.cat([t[f"b_{g}"] for g in GATES]))
        oracle.rnn.bias_hh_l0.zero_()
        oracle.head.weight.copy_(t["W_out"].T)
        oracle.head.bias.copy_(t["b_out"])
        for name, value in oracle.named_parameters():
            if name.startswith("condition"):
                value.copy_(t[name])
    oracle.requires_grad_(False)
    return oracle.eval()


def build_oracle(
    kind: str,
    path: str | Path,
    vocab_size: int,
    embed_dim: int,
    hidden_dim: int,
    seed: int,
    *,
    space: ConditionSpace | None = None,
) -> Generator:
    """The oracle named by the config: kind 'paper' reads `path`, 'random' draws from `seed`
    (the conditional oracle when `space` is given)."""
    if kind == "paper":
        if space is not None:
            raise OracleError("the paper's oracle has no condition; a conditional oracle is data.oracle=random")
        return oracle_from_params(load_oracle_params(path))
    return oracle_from_params(random_oracle_params(vocab_size, embed_dim, hidden_dim, seed, space), space)


def oracle_dataset(
    oracle: Generator, num: int, seq_len: int, seed: int, batch_size: int = 1000, space: ConditionSpace | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`num` oracle samples (num, T) drawn with their own `seed`, and for a conditional oracle the
    condition of each (drawn first, from the same seed), else None.

    Drawn on the CPU whatever device the oracle is on (a copy is made there), so that a run on a
    GPU trains and tests on exactly the data a CPU run does; the caller moves them where it needs."""
    generator = torch.Generator().manual_seed(seed)
    if oracle.head.weight.device.type != "cpu":
        oracle = copy.deepcopy(oracle).cpu()
    cond = None if space is None else draw_conditions(space, num, generator)
    return oracle.sample(num, seq_len, generator, batch_size=batch_size, cond=cond), cond
