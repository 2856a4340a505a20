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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seqgan.models.generator import Generator

GATES = ("i", "f", "c", "o")  # PyTorch's LSTM gate order, with its g gate = the paper's c


class OracleError(ValueError):
    """The oracle's weights file is missing or malformed."""


def random_oracle_params(vocab_size: int, embed_dim: int, hidden_dim: int, seed: int) -> dict[str, np.ndarray]:
    """N(0, 1) parameters in the layout of `target_params.npz`, drawn from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"embedding": (vocab_size, embed_dim)}
    for gate in GATES:
        shapes |= {f"W_{gate}": (embed_dim, hidden_dim), f"U_{gate}": (hidden_dim, hidden_dim), f"b_{gate}": (hidden_dim,)}
    shapes |= {"W_out": (hidden_dim, vocab_size), "b_out": (vocab_size,)}
    return {name: torch.randn(shape, generator=g).numpy() for name, shape in shapes.items()}


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


def oracle_from_params(params: dict[str, np.ndarray]) -> Generator:
    """Pack the paper's per-gate matrices into a frozen single-layer LSTM `Generator`."""
    vocab_size, embed_dim = params["embedding"].shape
    hidden_dim = params["U_i"].shape[0]
    oracle = Generator(vocab_size, embed_dim, hidden_dim, num_layers=1, cell="lstm", start_token=0, init_std=0)
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
    oracle.requires_grad_(False)
    return oracle.eval()


def build_oracle(kind: str, path: str | Path, vocab_size: int, embed_dim: int, hidden_dim: int, seed: int) -> Generator:
    """The oracle named by the config: kind 'paper' reads `path`, 'random' draws from `seed`."""
    if kind == "paper":
        return oracle_from_params(load_oracle_params(path))
    return oracle_from_params(random_oracle_params(vocab_size, embed_dim, hidden_dim, seed))


def oracle_datasets(
    oracle: Generator, seq_len: int, num_train: int, num_test: int, train_seed: int, test_seed: int, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """The real training set and the held-out set: (num_train, T) and (num_test, T), separate seeds."""
    train = oracle.sample(num_train, seq_len, torch.Generator().manual_seed(train_seed), batch_size=batch_size)
    test = oracle.sample(num_test, seq_len, torch.Generator().manual_seed(test_seed), batch_size=batch_size)
    return train, test
