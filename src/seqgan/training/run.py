"""A SeqGAN run, top to bottom (Yu et al., 2017, Algorithm 1, with the paper code's schedule):

1. `mle`: pre-train G by maximum likelihood on the real data (with `pretrain.patience`, until the
   validation NLL stops improving; G then goes back to its best epoch, kept as `mle_best`).
2. `d_pretrain`: pre-train D on real data against fresh samples of G.
3. `adversarial`: per epoch, g-steps policy-gradient steps of G rewarded by Monte Carlo rollouts
   scored by D, then d-steps rounds of D training on fresh negatives (either side can be frozen:
   `adversarial.train_g` / `train_d`). With `adversarial.kl_weight` > 0 a frozen copy of G taken
   when this phase starts (`reference`, saved in checkpoints) anchors G by a KL penalty.

An "MLE only" baseline is the same run with more `mle` epochs and no adversarial ones. A
conditional run (`condition.kind`) is this same loop with each set's conditions passed along;
on the conditional oracle it also logs cond_acc (`seqgan.metrics.conditional`), and a run
conditioned on source sequences logs the exact match and token accuracy of G's outputs against
each test source's reference, sampled and greedy (`seqgan.metrics.seq2seq`).
Metrics go to metrics.jsonl every `eval.every` epochs and at every phase end; checkpoints every
`checkpoint.every` epochs and at every phase end.

Under torchrun (`seqgan.training.distributed`) every rank runs this same loop on its shard of each
global batch; metrics are computed on shards and summed; only rank 0 writes files; checkpoints
hold every rank's RNG states, so a resume must use the same number of processes.
"""

from __future__ import annotations

import copy
import json
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from seqgan.config import ConfigError, ExperimentConfig, save_config
from seqgan.data.text import resolve_paths
from seqgan.generation import format_samples, sample_for_data
from seqgan.metrics.conditional import oracle_condition_scores
from seqgan.metrics.logger import MetricsLog
from seqgan.metrics.nll import nll_test, token_nll_sum
from seqgan.metrics.seq2seq import match_metrics, reference_match_sums
from seqgan.metrics.tensorboard import TensorBoardLog
from seqgan.metrics.text import unique_fraction
from seqgan.metrics.text_eval import quick_text_metrics
from seqgan.models.condition import pick_rows
from seqgan.models.judge import GenerativeJudge
from seqgan.runtime import configure
from seqgan.seeding import rng_state, set_rng_state, set_seed
from seqgan.training import distributed
from seqgan.training.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_state,
    load_weights,
    save_checkpoint,
)
from seqgan.training.experiment import (
    CONDITIONS_FILE,
    ORACLE_DATA_FILE,
    ORACLE_FILE,
    TOKENIZER_FILE,
    eval_generator,
    init_source,
    load_run_data,
    make_discriminator,
    make_generator,
    resolve_device,
    save_oracle,
    save_oracle_data,
    split_run_spec,
)
from seqgan.training.signals import StopOnSignal, TrainingStopped
from seqgan.training.steps import (
    NonFiniteLossError,
    discriminator_metrics,
    discriminator_round,
    mle_epoch,
    policy_gradient_step,
)

PHASES = ("mle", "d_pretrain", "adversarial")
SHOWN = ("nll_oracle", "nll_test", "bleu4_test", "exact_match_greedy")  # metrics on the progress bar


class Trainer:
    def __init__(
        self, cfg: ExperimentConfig, run_dir: str | Path, quiet: bool = False, dist: distributed.Dist = distributed.SINGLE
    ) -> None:
        check_divisible(cfg, dist.world)
        self.cfg = cfg
        self.dir = Path(run_dir)
        self.dist = dist
        self.quiet = quiet or not dist.is_main()
        configure(cfg.threads)
        set_seed(cfg.seed)  # the same data and initial models on every rank
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and dist.parallel:
            self.device = torch.device("cuda", dist.local_rank)
        # A resumed run keeps its own data (oracle samples, vocabulary); a new one builds it, or
        # with pretrain.init_from takes that run's data and starts G from its checkpoint.
        source = None
        if cfg.pretrain.init_from and not (self.dir / "config.yaml").is_file():
            source = init_source(cfg, Path.cwd())
        self.data = load_run_data(cfg, self.dir if source is None else source[0], self.device)
        self.generator = make_generator(cfg, self.data).to(self.device)
        if source is not None:
            load_weights(source[1], "generator", self.generator)
        self.rollout = copy.deepcopy(self.generator).requires_grad_(False)
        # Only a run with a KL penalty has (and checkpoints) a reference model.
        self.reference = copy.deepcopy(self.generator).requires_grad_(False) if cfg.adversarial.kl_weight > 0 else None
        # Early stopping keeps the best MLE epoch's G and its validation NLL (both in checkpoints).
        self.mle_best = copy.deepcopy(self.generator).requires_grad_(False) if cfg.pretrain.patience > 0 else None
        self.early = {"best": float("inf"), "best_epoch": 0, "stopped_at": 0}
        self.discriminator = make_discriminator(cfg, self.data).to(self.device)
        head = getattr(self.discriminator, "classifier", None)
        if getattr(head, "reference", None) is not None:  # the vectors each c competes with: seeded, the same on every rank
            ref_rng = torch.Generator(self.data.cond_train.device).manual_seed(cfg.seed + 2)
            head.set_reference(pick_rows(self.data.cond_train, len(head.reference), ref_rng))
        self.mle_opt = torch.optim.Adam(self.generator.parameters(), lr=cfg.pretrain.lr)
        self.adv_opt = torch.optim.Adam(self.generator.parameters(), lr=cfg.adversarial.g_lr)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.discriminator.lr)
        if not dist.is_main():  # dropout differs per rank; rank 0 goes on as the single-process run
            set_seed(dist.seed(cfg.seed))
        # DDP wrappers of the two trained models (plain method routers on one process).
        self.g_model = distributed.data_parallel(self.generator, dist)
        self.d_model = distributed.data_parallel(self.discriminator, dist)
        self.rngs = {
            "sample": torch.Generator(self.device).manual_seed(dist.seed(cfg.seed)),  # each rank its own samples
            "shuffle": torch.Generator().manual_seed(cfg.seed + 1),  # the same batch order on every rank
        }
        self.phase, self.epoch = PHASES[0], 0  # the next epoch to run is `epoch` of `phase`
        self.log = MetricsLog(self.dir / "metrics.jsonl", self._tensorboard())
        self.timings: dict[str, float] = {}  # seconds per finished phase (and the running one's, in checkpoints)
        self._phase_began: float | None = None
        self._saved = ""  # name of the last checkpoint written by this process
        self.steps = {"g": 0, "d": 0}  # optimizer steps taken so far
        self.pending: dict[str, list[float]] = {}  # adversarial losses / rewards since the last evaluation
        self._stop = StopOnSignal()

    # ------------------------------------------------------------------ run directory

    def start(self, argv: list[str]) -> None:
        """Create the run directory with the resolved config and command line (rank 0)."""
        if self.dist.is_main():
            self._write_start(argv)
        distributed.barrier(self.dist)

    def _write_start(self, argv: list[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        resolve_paths(self.cfg.data, Path.cwd(), self.cfg.condition)
        if self.cfg.pretrain.init_from:  # recorded absolute, like the data paths
            folder, name = split_run_spec(self.cfg.pretrain.init_from)
            self.cfg.pretrain.init_from = str(folder.resolve()) + (f"@{name}" if name else "")
        save_config(self.cfg, self.dir / "config.yaml")
        (self.dir / "command.txt").write_text(" ".join(argv) + "\n", encoding="utf-8")
        if self.data.condition is not None:
            self.data.condition.save(self.dir / CONDITIONS_FILE)
        if self.data.oracle is not None:
            save_oracle(self.data.oracle, self.dir / ORACLE_FILE)
            save_oracle_data(self.data, self.dir / ORACLE_DATA_FILE)
            # The floor of NLL-oracle: the oracle's own per-token NLL on its held-out samples.
            data = self.data
            floor = {"oracle_nll_test": nll_test(data.oracle, data.test, cond=data.cond_test), "num_test": len(data.test)}
            if data.condition is not None:  # the ceiling of condition accuracy: the oracle's on its own samples
                _, hits = self._condition_scores(data.test, data.cond_test, eval_generator(self.cfg, self.device))
                floor["oracle_cond_acc"] = float(hits.float().mean())
            (self.dir / "oracle.json").write_text(json.dumps(floor) + "\n", encoding="utf-8")
        if self.data.text is not None:
            self.data.text.tokenizer.save(self.dir / TOKENIZER_FILE)
            (self.dir / "data_report.json").write_text(json.dumps(self.data.text.report, indent=1) + "\n", encoding="utf-8")

    def resume(self) -> None:
        path = latest_checkpoint(self.dir / "checkpoints")
        for key, model in self.models().items():
            load_weights(path, key, model)
        state = load_state(path)
        self.mle_opt.load_state_dict(state["optimizers"]["mle"])
        self.adv_opt.load_state_dict(state["optimizers"]["adversarial"])
        self.d_opt.load_state_dict(state["optimizers"]["discriminator"])
        # An optimizer's state carries its learning rate: a config edited since would be silently ignored.
        for key, opt, lr in (
            ("pretrain.lr", self.mle_opt, self.cfg.pretrain.lr),
            ("adversarial.g_lr", self.adv_opt, self.cfg.adversarial.g_lr),
            ("discriminator.lr", self.d_opt, self.cfg.discriminator.lr),
        ):
            if opt.param_groups[0]["lr"] != lr:
                raise CheckpointError(
                    f"{path}: its optimizer ran with {key}={opt.param_groups[0]['lr']}, the config says {lr}; "
                    "a resumed run keeps its settings: put the value back, or start a new run"
                )
        ranks = state.get("rng_ranks", [state["rng"]])
        if len(ranks) != self.dist.world:
            raise CheckpointError(
                f"{path}: written by {len(ranks)} process(es), resumed with {self.dist.world}; resume with the same "
                f"number of processes (torchrun --nproc_per_node x --nnodes = {len(ranks)}, or no torchrun for 1)"
            )
        set_rng_state(ranks[self.dist.rank], self.rngs)
        self.phase, self.epoch = state["phase"], state["epoch"]
        # Checkpoints written before step counts and pending averages were recorded lack them.
        self.steps = dict(state.get("steps", {"g": 0, "d": 0}))
        self.pending = {k: list(v) for k, v in state.get("pending", {}).items()}
        self.timings = dict(state.get("timings", {}))
        if self.mle_best is not None:
            self.early = dict(state["early_stop"])
        if not self.dist.is_main():
            return
        # Drop metrics written after the checkpoint, so the log reads as if never interrupted.
        keep = [r for r in self.log.read() if (PHASES.index(r["phase"]), r["epoch"]) <= (PHASES.index(self.phase), self.epoch)]
        self.log.rewrite(keep)

    def models(self) -> dict[str, torch.nn.Module]:
        models = {"generator": self.generator, "rollout": self.rollout, "discriminator": self.discriminator}
        if self.reference is not None:
            models["reference"] = self.reference
        if self.mle_best is not None:
            models["mle_best"] = self.mle_best
        return models

    def checkpoint(self) -> None:
        state = {
            "phase": self.phase,
            "epoch": self.epoch,
            "optimizers": {
                "mle": self.mle_opt.state_dict(),
                "adversarial": self.adv_opt.state_dict(),
                "discriminator": self.d_opt.state_dict(),
            },
            "rng": rng_state(self.rngs),
            "steps": dict(self.steps),
            "pending": {k: list(v) for k, v in self.pending.items()},
            "timings": self._timings_so_far(),
        }
        if self.mle_best is not None:
            state["early_stop"] = dict(self.early)
        name = f"{PHASES.index(self.phase)}-{self.phase}-{self.epoch:06d}"
        if name == self._saved:
            return
        self._saved = name
        if self.dist.parallel:  # every rank's streams, so that each resumes exactly
            state["rng_ranks"] = distributed.all_gather_object(state["rng"], self.dist)
        if self.dist.is_main():
            save_checkpoint(self.dir / "checkpoints", name, self.models(), state, self.cfg.checkpoint.keep)
        distributed.barrier(self.dist)  # no rank reports or resumes from a checkpoint still being written

    # ------------------------------------------------------------------ measuring

    def g_epoch(self) -> int:
        """Epochs of G training so far: MLE epochs (those run, when stopped early) then adversarial
        ones (the x-axis of the paper's Fig. 2)."""
        mle_epochs = self.early["stopped_at"] or self.cfg.pretrain.epochs
        if self.phase == "adversarial":
            return mle_epochs + self.epoch
        return self.epoch if self.phase == "mle" else mle_epochs

    def _eval_rng(self) -> torch.Generator:
        """The evaluation samples' stream; rank r > 0 draws its own part with its own seed."""
        rng = eval_generator(self.cfg, self.device)
        return rng if self.dist.is_main() else rng.manual_seed(self.dist.seed(rng.initial_seed()))

    def _nll(self, model: torch.nn.Module, tokens: torch.Tensor, cond: torch.Tensor | None) -> float:
        """Mean per-token NLL of tokens (R, T) given their conditions (R, ...) or None, each rank scoring its part."""
        part = self.dist.part(len(tokens))
        total, count = token_nll_sum(model, tokens[part], cond=None if cond is None else cond[part])
        total, count = distributed.all_reduce_sum([total, count], self.dist, self.device)
        return total / max(count, 1)

    def _condition_scores(
        self, samples: torch.Tensor, cond: torch.Tensor, rng: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditional oracle's NLL sum (R,) and posterior hit (R,) of samples drawn for cond (R, ...)."""
        data, c = self.data, self.cfg.condition
        return oracle_condition_scores(
            data.oracle, samples, cond, data.condition, data.cond_test, c.candidates, rng, self.cfg.eval.batch_size
        )

    def evaluate(self, with_discriminator: bool) -> dict[str, float]:
        """Every rank evaluates its part and the parts are summed; BLEU (text) is computed on rank 0 alone."""
        cfg, data = self.cfg, self.data
        rng = self._eval_rng()
        self.generator.eval()
        out: dict[str, float] = {}
        if data.oracle is not None:
            n = cfg.eval.num_samples
            samples = sample_for_data(self.generator, data, n // self.dist.world, rng, 1.0, cfg.eval.batch_size)
            if data.condition is None:
                total, count = token_nll_sum(data.oracle, samples.tokens)
                hits = 0.0
            else:
                nll, hit = self._condition_scores(samples.tokens, samples.cond, rng)
                total, count, hits = float(nll.sum()), samples.tokens.numel(), float(hit.sum())
            total, count, hits = distributed.all_reduce_sum([total, count, hits], self.dist, self.device)
            out["nll_oracle"] = total / max(count, 1)
            if data.condition is not None:
                out["cond_acc"] = hits / n
            out["unique_frac"] = unique_fraction(distributed.all_gather_rows(samples.tokens, self.dist).tolist())
        out["nll_test"] = self._nll(self.generator, data.test, data.cond_test)
        if data.valid is not None:
            out["nll_valid"] = self._nll(self.generator, data.valid, data.cond_valid)
        text = self.data.text
        if text is not None and self.dist.is_main():
            if cfg.eval.bleu_samples:
                out |= quick_text_metrics(self.generator, text, cfg.eval.bleu_samples, rng, cfg.eval.batch_size)
        if data.condition is not None and data.condition.kind == "source":
            out |= self._reference_match(rng)
        if with_discriminator:
            out |= self._d_metrics(rng)
        return out

    def _d_metrics(self, rng: torch.Generator) -> dict[str, float]:
        """D's accuracy on held-out real sequences and fresh samples; conditional runs add
        d_cond_acc, how often D prefers a real sequence's own condition to another one."""
        data = self.data
        return discriminator_metrics(
            self.discriminator, data.test, self.generator, self.cfg.eval.d_samples, rng, self.dist, data.cond_test
        )

    def _reference_match(self, rng: torch.Generator) -> dict[str, float]:
        """Exact match and token accuracy of G's outputs for every test source against its
        reference: sampled at temperature 1 and greedy (suffix _greedy); each rank scores its part."""
        part = self.dist.part(len(self.data.test))
        sources, references = self.data.cond_test[part], self.data.test[part]
        out: dict[str, float] = {}
        for temperature, suffix in ((1.0, ""), (0.0, "_greedy")):
            sums = reference_match_sums(self.generator, sources, references, rng, temperature, self.cfg.eval.batch_size)
            out |= match_metrics(distributed.all_reduce_sum(sums, self.dist, self.device), suffix)
        return out

    def record(self, extra: dict[str, Any], with_discriminator: bool) -> dict[str, Any]:
        row = {"phase": self.phase, "epoch": self.epoch, "g_epoch": self.g_epoch(), **extra}
        row.update(self.evaluate(with_discriminator))
        if self.dist.is_main():
            self.log.write(row)
        return row

    def due(self, every: int, total: int) -> bool:
        return self.epoch % every == 0 or self.epoch == total

    # ------------------------------------------------------------------ phases

    def run(self) -> None:
        with StopOnSignal() as stop:
            self._stop = stop
            try:
                for phase in PHASES[PHASES.index(self.phase) :]:
                    if phase != self.phase:
                        self.phase, self.epoch = phase, 0
                    self._phase_began = time.perf_counter()
                    getattr(self, f"_{phase}")()
                    self.timings = self._timings_so_far()
                    self._phase_began = None
            except NonFiniteLossError as err:
                raise NonFiniteLossError(
                    f"{err} in {self.phase} epoch {self.epoch + 1} (G steps so far {self.steps['g']}, D steps {self.steps['d']}); "
                    f"training stopped; the last good checkpoint is {self.last_checkpoint()}: lower the learning rate or "
                    "the gradient clip and continue with --resume, or start again"
                ) from None
        self.checkpoint()  # the final state, whatever the phases' lengths
        if self.dist.is_main():
            self._write_end()

    def _timings_so_far(self) -> dict[str, float]:
        """Seconds per phase, the running phase's time so far included: a checkpoint keeps it, so a
        resumed run's totals count the time before the interruption too."""
        out = dict(self.timings)
        if self._phase_began is not None:
            out[self.phase] = out.get(self.phase, 0.0) + time.perf_counter() - self._phase_began
        return out

    def _write_end(self) -> None:
        timings = {
            **self.timings,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": self.cfg.threads,
            "processes": self.dist.world,
        }
        (self.dir / "timings.json").write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")
        self.write_samples()

    def last_checkpoint(self) -> str:
        try:
            return str(latest_checkpoint(self.dir / "checkpoints"))
        except CheckpointError:
            return "none (no checkpoint was written yet)"

    def _checkpoint_or_stop(self, total: int, phase_over: bool = False) -> None:
        """After an epoch: checkpoint when due, at the phase's end or when a stop signal came, then stop if asked."""
        if self.dist.parallel:  # all ranks stop together when any of them got a signal
            flag = torch.tensor([self._stop.signum], device=self.device)
            self._stop.signum = int(distributed.all_reduce_(flag, self.dist, op="max"))
        if self.due(self.cfg.checkpoint.every, total) or phase_over or self._stop.signum:
            self.checkpoint()
        if self._stop.signum:
            raise TrainingStopped(
                f"stopped by {signal.Signals(self._stop.signum).name} after {self.phase} epoch {self.epoch}; "
                f"checkpoint {self.last_checkpoint()}; continue with: seqgan train --resume {self.dir}",
                self._stop.signum,
            )

    def _tensorboard(self) -> TensorBoardLog | None:
        """The TensorBoard mirror of metrics.jsonl (rank 0, with eval.tensorboard)."""
        if not (self.cfg.eval.tensorboard and self.dist.is_main()):
            return None
        return TensorBoardLog(self.dir / "tensorboard", self.cfg.to_dict)

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, initial=self.epoch, desc=desc, disable=self.quiet, file=sys.stderr, dynamic_ncols=True)

    def _mle(self) -> None:
        cfg, p = self.cfg, self.cfg.pretrain
        if self.epoch == 0 and (p.epochs > 0 or p.init_from):  # where G starts (from pretrain.init_from: that G)
            self.record({}, with_discriminator=False)
        if p.epochs == 0:
            return
        with self._bar(p.epochs, "MLE pre-training") as bar:
            while self.epoch < p.epochs and not self.early["stopped_at"]:
                loss = mle_epoch(
                    self.generator, self.mle_opt, self.data.train, p.batch_size, p.grad_clip, self.rngs["shuffle"],
                    self.dist, self.g_model, self.data.cond_train,
                )  # fmt: skip
                self.steps["g"] += len(self.data.train) // p.batch_size
                self.epoch += 1
                bar.update()
                stopped = p.patience > 0 and self._early_stop(p.patience)
                if self.due(cfg.eval.every, p.epochs) or stopped:
                    extra = {"mle_loss": loss} | ({"best_epoch": self.early["best_epoch"]} if stopped else {})
                    row = self.record(extra, with_discriminator=False)
                    bar.set_postfix({k: f"{row[k]:.3f}" for k in SHOWN if k in row})
                self._checkpoint_or_stop(p.epochs, phase_over=stopped)

    def _early_stop(self, patience: int) -> bool:
        """After an MLE epoch: keep G if its validation NLL is the best so far; after `patience`
        epochs without improvement put the best G back and return True (the phase ends)."""
        nll = self._nll(self.generator, self.data.valid, self.data.cond_valid)  # the same value on every rank: they stop together
        if nll < self.early["best"]:
            self.early.update(best=nll, best_epoch=self.epoch)
            self.mle_best.load_state_dict(self.generator.state_dict())
        elif self.epoch - self.early["best_epoch"] >= patience:
            self.generator.load_state_dict(self.mle_best.state_dict())
            self.early["stopped_at"] = self.epoch
            return True
        return False

    def _d_round(self, num_negatives: int, epochs: int) -> float:
        d = self.cfg.discriminator
        mismatched = round(d.mismatched * num_negatives) if self.data.cond_train is not None else 0
        pairs = min(num_negatives, len(self.data.train)) + num_negatives + mismatched
        self.steps["d"] += epochs * (pairs // d.batch_size)
        return discriminator_round(
            self.discriminator, self.d_opt, self.generator, self.data.train, num_negatives, epochs,
            d.batch_size, d.label_smoothing, d.l2_reg, self.rngs["sample"], self.rngs["shuffle"], self.dist, self.d_model,
            self.data.cond_train, mismatched,
        )  # fmt: skip

    def _d_pretrain(self) -> None:
        cfg, p = self.cfg, self.cfg.d_pretrain
        judge = getattr(self.discriminator, "classifier", None)
        if self.epoch == 0 and isinstance(judge, GenerativeJudge):  # the judge starts as the pre-trained G
            judge.lm.load_state_dict(self.generator.state_dict())
        with self._bar(p.steps, "D pre-training") as bar:
            while self.epoch < p.steps:
                loss = self._d_round(p.num_negatives, p.epochs)
                self.epoch += 1
                bar.update()
                if self.due(cfg.eval.every, p.steps):
                    self.generator.eval()
                    d_metrics = self._d_metrics(self._eval_rng())
                    row = {"phase": self.phase, "epoch": self.epoch, "g_epoch": self.g_epoch(), "d_loss": loss} | d_metrics
                    if self.dist.is_main():
                        self.log.write(row)
                    bar.set_postfix(d_loss=f"{loss:.3f}", d_acc=f"{d_metrics['d_acc']:.3f}")
                self._checkpoint_or_stop(p.steps)

    def _adversarial(self) -> None:
        cfg, a = self.cfg, self.cfg.adversarial
        if a.epochs == 0:
            return
        if self.epoch == 0:  # the rollout policy (and the KL reference) start as copies of the pre-trained G
            self.rollout.load_state_dict(self.generator.state_dict())
            if self.reference is not None:
                self.reference.load_state_dict(self.generator.state_dict())
        acc = self.pending  # losses and rewards since the last evaluation (kept in checkpoints)
        with self._bar(a.epochs, "Adversarial") as bar:
            while self.epoch < a.epochs:
                for _ in range(a.g_steps if a.train_g else 0):
                    loss, reward, kl = policy_gradient_step(
                        self.generator, self.rollout, self.discriminator, self.adv_opt, a.batch_size, self.data.length,
                        a.rollout_num, a.grad_clip, a.baseline, a.rollout_update_rate, a.rollout_chunk, self.rngs["sample"],
                        a.discount, a.kl_weight, self.reference, self.dist, self.g_model, self.data.cond_train,
                    )  # fmt: skip
                    self.steps["g"] += 1
                    acc.setdefault("g_loss", []).append(loss)
                    acc.setdefault("mean_reward", []).append(reward)
                    if kl is not None:
                        acc.setdefault("kl_mle", []).append(kl)
                for _ in range(a.d_steps if a.train_d else 0):
                    acc.setdefault("d_loss", []).append(self._d_round(a.num_negatives, a.d_epochs))
                self.epoch += 1
                bar.update()
                if self.due(cfg.eval.every, a.epochs):
                    row = self.record({k: sum(v) / len(v) for k, v in acc.items() if v}, with_discriminator=True)
                    acc.clear()
                    bar.set_postfix({k: f"{row[k]:.3f}" for k in SHOWN if k in row})
                self._checkpoint_or_stop(a.epochs)

    def write_samples(self) -> None:
        n = self.cfg.eval.final_samples
        samples = sample_for_data(self.generator, self.data, n, eval_generator(self.cfg, self.device))
        lines = "".join(line + "\n" for line in format_samples(samples, self.data))
        (self.dir / "samples.txt").write_text(lines, encoding="utf-8")


def check_divisible(cfg: ExperimentConfig, world: int) -> None:
    """Batch sizes are global: each of `world` processes takes an equal share of every batch."""
    if world == 1:
        return
    sizes = {
        "pretrain.batch_size": cfg.pretrain.batch_size,
        "discriminator.batch_size": cfg.discriminator.batch_size,
        "d_pretrain.num_negatives": cfg.d_pretrain.num_negatives,
        "adversarial.batch_size": cfg.adversarial.batch_size,
        "adversarial.num_negatives": cfg.adversarial.num_negatives,
    }
    if cfg.data.source == "oracle":
        sizes["eval.num_samples"] = cfg.eval.num_samples
    bad = [f"{k}={v}" for k, v in sizes.items() if v % world]
    if bad:
        raise ConfigError(
            f"{', '.join(bad)}: batch sizes are global and must split evenly over the {world} processes of this "
            f"torchrun job; use multiples of {world} or another --nproc_per_node"
        )
