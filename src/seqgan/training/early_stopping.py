"""Early stopping of MLE pre-training (`pretrain.patience`), on the validation set's NLL.

After each MLE epoch: keep a copy of G when its validation NLL is the best so far; after
`patience` epochs without improvement put the best G back and end the phase. The copy
(`mle_best`) and the record below are kept in checkpoints, so a resume stops where an
uninterrupted run would have.
"""

from __future__ import annotations

import math

from torch import nn

from seqgan.models.generator import frozen_copy


class EarlyStopping:
    def __init__(self, generator: nn.Module, patience: int) -> None:
        self.generator = generator
        self.patience = patience
        self.best_model = frozen_copy(generator)
        self.state = {"best": math.inf, "best_epoch": 0, "stopped_at": 0}

    @property
    def stopped_at(self) -> int:
        """The MLE epoch the phase stopped after (0: not stopped)."""
        return self.state["stopped_at"]

    def update(self, epoch: int, nll_valid: float) -> bool:
        """After MLE epoch `epoch` with validation NLL `nll_valid`: True when the phase ends (G is then its best epoch's)."""
        if nll_valid < self.state["best"]:
            self.state.update(best=nll_valid, best_epoch=epoch)
            self.best_model.load_state_dict(self.generator.state_dict())
        elif epoch - self.state["best_epoch"] >= self.patience:
            self.generator.load_state_dict(self.best_model.state_dict())
            self.state["stopped_at"] = epoch
            return True
        return False
