"""Stage 2: train a next-word model on the windows written by ``process``.

    data_dir/{train,valid}-NNNNN.jsonl + vocab.json
        -> NextWordModel (Embedding -> LSTM/GRU/RNN -> Linear)
        -> models/<run>/{best.pt,last.pt,vocab.json}, logs/<run>/ (TensorBoard)

Adam, cross-entropy on the next word, gradient-norm clipping, the learning
rate halved when validation loss stalls, early stopping after ``patience``
epochs without improvement. ``last.pt`` is rewritten every
``checkpoint_every`` steps and at each epoch end with the optimizer,
scheduler, RNG states and data position, so ``--resume`` continues exactly
where a killed run stopped.

Training data is held in memory as tensors by default (fast batches); with
``stream_data`` it is streamed from the shards by DataLoader workers instead
(``dataset.WindowStream``), for corpora larger than memory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from input_method import distributed
from input_method.checkpoint import (
    BEST,
    LAST,
    build_model,
    load_trained_on,
    read_checkpoint,
    save_checkpoint,
)
from input_method.config import OBJECTIVES, SELECT_BY, ModelConfig, TrainConfig
from input_method.dataset import SentencePieces, WindowDataset, WindowStream, context_size_of
from input_method.distill import TeacherEnsemble, distillation_loss
from input_method.errors import CorpusError, TrainingError
from input_method.metrics import RankingTotals
from input_method.model import NextWordModel, align_left, window_logits
from input_method.runtime import resolve_device, set_threads
from input_method.vocab import Vocab
from input_method.windows import split_files

log = logging.getLogger(__name__)

LOG_EVERY = 50  # steps between TensorBoard points for the training curves


@dataclass
class Progress:
    """Where training stands; saved in ``last.pt`` for ``--resume``."""

    epoch: int = 0  # the epoch in progress
    batch: int = 0  # batches of that epoch already done
    step: int = 0  # optimizer steps in all
    best_valid_loss: float = math.inf
    best_valid_hits: float = -1.0  # hit@1 + hit@5 of the best validation so far
    bad_epochs: int = 0
    train_seconds: float = 0.0
    train_targets: int = 0  # words scored in all (for throughput)
    valid_losses: list[float] = field(default_factory=list)  # after each validation


def default_run_name() -> str:
    """A sortable time-stamped run name."""
    return time.strftime("run-%Y%m%d-%H%M%S")


def unit_of(data_dir: Path) -> str:
    """The unit the data was cut into (``"word"`` for data written before units existed)."""
    stats = data_dir / "stats.json"
    if stats.is_file():
        return str(json.loads(stats.read_text(encoding="utf-8"))["config"].get("unit", "word"))
    return "word"


def validate(model: NextWordModel, data: WindowDataset, vocab: Vocab, device: torch.device,
             batch_size: int = 1024) -> dict[str, float]:
    """Loss, perplexity and hit@k of ``model`` on ``data``."""
    model.eval()
    totals = RankingTotals()
    with torch.inference_mode():
        for inputs, targets in data.batches(batch_size):
            logits = window_logits(model, inputs.to(device), vocab.pad_id)
            totals.add(torch.log_softmax(logits.float(), dim=-1), targets.to(device),
                       vocab.special_ids)
    model.train()
    return totals.summary()


def train(config: TrainConfig, model_config: ModelConfig) -> dict[str, Any]:
    """Train (or resume) one run; return its summary, also stored as ``metrics`` in best.pt."""
    _check_config(config)
    if config.dry_run:
        config = replace(config, epochs=1, max_steps=min(config.max_steps or 20, 20),
                         max_train_windows=2000, max_valid_windows=500, checkpoint_every=10)
    set_threads(config.num_threads)
    group, device = distributed.setup(resolve_device(config.device))
    data_dir = Path(config.data_dir)
    if not (data_dir / "vocab.json").is_file():
        raise CorpusError(f"no processed data in {data_dir}; run `ime process` first")
    vocab = Vocab.load(data_dir / "vocab.json")
    window_size = context_size_of(data_dir)  # what the data holds; the model may use fewer
    context_size = window_size
    unit = unit_of(data_dir)
    if config.context_limit and config.context_limit < context_size:
        context_size = config.context_limit
    run_name = config.run_name or default_run_name()
    config = replace(config, run_name=run_name)
    run_dir = Path(config.models_root) / run_name
    log_dir = Path(config.logs_root) / run_name

    torch.manual_seed(config.seed)
    random.seed(config.seed)
    resumed = _read_resume_point(run_dir / LAST, vocab, device) if config.resume else None
    if resumed is not None:
        model, _ = build_model(resumed, device)  # the saved shape wins over the flags
        model_config = model.config
    elif (run_dir / LAST).exists():
        raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it "
                            "or choose another --run-name")
    elif config.init_from:
        model = load_trained_on(config.init_from, vocab, device, "--init-from").train()
        model_config = model.config
        log.info("starting from the weights of %s", config.init_from)
    else:
        model_config = replace(model_config, vocab_size=len(vocab))
        model = NextWordModel(model_config).to(device)
    # The fused kernel is several times faster than the per-tensor loop on CPU too.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay,
                                 fused=device.type in ("cpu", "cuda") or None)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_decay, patience=0)
    progress = Progress()
    if resumed is not None:
        training = resumed["training"]
        optimizer.load_state_dict(training["optimizer"])
        scheduler.load_state_dict(training["scheduler"])
        torch.set_rng_state(training["rng_torch"].cpu())  # map_location may have moved it
        random.setstate(training["rng_python"])
        progress = Progress(**training["progress"])
        log.info("resuming %s at epoch %d, batch %d (step %d)", run_name, progress.epoch + 1,
                 progress.batch, progress.step)

    train_data = _training_data(config, data_dir, vocab, window_size, context_size)
    valid_data = WindowDataset.from_split(data_dir, "valid", window_size,
                                          len(vocab), config.max_valid_windows
                                          ).last_words(context_size)
    log.info("training %s on %s: %s %s examples, %d validation windows, %d parameters",
             run_name, device, "a stream of" if isinstance(train_data, WindowStream)
             else len(train_data), config.objective, len(valid_data), model.num_parameters())
    teachers = None
    if config.teachers:
        teachers = TeacherEnsemble.load(config.teachers, vocab, device)
        log.info("distilling from %d teachers at weight %.2f", len(teachers.models),
                 config.distill_weight)
    if group.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        vocab.save(run_dir / "vocab.json")
    # Loss inside a module, so that DDP sees the forward pass it synchronises.
    loss_module = distributed.wrap(
        BatchLoss(model, config.objective, vocab.pad_id, teachers, config.distill_weight),
        group, device)
    # With several ranks, every rank must take the same number of steps per epoch:
    # in-memory data drops the remainder; a stream stops when one rank runs dry.
    usable_batches = train_data.num_batches(config.batch_size)
    if usable_batches is not None:
        usable_batches -= usable_batches % group.world_size
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def checkpoint(path: Path, metrics: dict[str, Any] | None = None) -> None:
        if not group.is_main:
            return
        if path.name == BEST:  # serving needs only the weights; no optimizer state
            save_checkpoint(path, model=model, vocab=vocab, context_size=context_size,
                            unit=unit, train_config=asdict(config), metrics=metrics)
            return
        training = {
            "progress": asdict(progress),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_python": random.getstate(),
        }
        save_checkpoint(path, model=model, vocab=vocab, context_size=context_size,
                        unit=unit, train_config=asdict(config), metrics=metrics, training=training)

    writer: Any = SummaryWriter(log_dir=str(log_dir)) if group.is_main else _NoWriter()
    last_valid: dict[str, float] = {}
    stopped_early = False
    model.train()
    try:
        while progress.epoch < config.epochs and not _step_limit(config, progress):
            epoch_start = time.perf_counter()
            batches = train_data.batches(config.batch_size, shuffle=True,
                                         seed=config.seed + progress.epoch,
                                         start_batch=progress.batch, rank=group.rank,
                                         world_size=group.world_size)
            if usable_batches is None:
                batches = distributed.lockstep(batches, group, device)
            ran_out = False  # the epoch's data ended (not a step or time limit)
            bar = tqdm(batches, total=usable_batches and usable_batches // group.world_size,
                       initial=progress.batch // group.world_size,
                       desc=f"epoch {progress.epoch + 1}/{config.epochs}", unit="batch",
                       dynamic_ncols=True, mininterval=1.0, disable=not group.is_main)
            for inputs, targets in bar:
                inputs, targets = inputs.to(device), targets.to(device)
                with autocast:
                    loss, scored = loss_module(inputs, targets)
                if distributed.any_rank(not torch.isfinite(loss), group, device):
                    raise TrainingError(
                        f"loss became {loss.item()} at step {progress.step}; last good "
                        f"checkpoint kept in {run_dir}; try a lower --learning-rate")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
                optimizer.step()
                progress.step += 1
                progress.batch += group.world_size  # one round: a batch on every rank
                progress.train_targets += scored
                if progress.step % LOG_EVERY == 0:
                    writer.add_scalar("train/loss", loss.item(), progress.step)
                    writer.add_scalar("train/perplexity", math.exp(min(loss.item(), 50)),
                                      progress.step)
                    writer.add_scalar("train/grad_norm", grad_norm, progress.step)
                    writer.add_scalar("train/learning_rate", optimizer.param_groups[0]["lr"],
                                      progress.step)
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                if progress.step % config.checkpoint_every == 0:
                    progress.train_seconds += time.perf_counter() - epoch_start
                    epoch_start = time.perf_counter()
                    checkpoint(run_dir / LAST)
                if distributed.any_rank(_step_limit(config, progress,
                                                    time.perf_counter() - epoch_start),
                                        group, device):
                    log.info("step or time limit reached at step %d", progress.step)
                    break
            else:
                ran_out = True
            bar.close()
            progress.train_seconds += time.perf_counter() - epoch_start
            epoch_done = ran_out or (usable_batches is not None
                                     and progress.batch >= usable_batches)

            last_valid = validate(model, valid_data, vocab, device)
            for name in ("loss", "perplexity", "hit@1", "hit@5", "hit@10", "mrr"):
                writer.add_scalar(f"valid/{name.replace('@', '_at_')}", last_valid[name],
                                  progress.step)
            log.info("epoch %d: valid loss %.4f, perplexity %.1f, hit@1 %.3f, hit@5 %.3f",
                     progress.epoch + 1, last_valid["loss"], last_valid["perplexity"],
                     last_valid["hit@1"], last_valid["hit@5"])
            scheduler.step(last_valid["loss"])
            progress.valid_losses.append(last_valid["loss"])
            if epoch_done:
                progress.epoch += 1
                progress.batch = 0
            # Early stopping and the learning rate follow the loss; best.pt follows
            # select_by (hits: what the suggestion bar shows, which the loss can miss).
            lower_loss = last_valid["loss"] < progress.best_valid_loss
            hits = last_valid["hit@1"] + last_valid["hit@5"]
            more_hits = hits > progress.best_valid_hits
            if lower_loss:
                progress.best_valid_loss = last_valid["loss"]
                progress.bad_epochs = 0
            else:
                progress.bad_epochs += 1
            if more_hits:
                progress.best_valid_hits = hits
            if more_hits if config.select_by == "hits" else lower_loss:
                checkpoint(run_dir / BEST, _metrics(last_valid, progress))
            checkpoint(run_dir / LAST, _metrics(last_valid, progress))
            if progress.bad_epochs >= config.patience:
                log.info("validation loss has not improved for %d epochs: stopping early",
                         progress.bad_epochs)
                stopped_early = True
                break
    finally:
        writer.flush()
    progress.train_targets = distributed.total(progress.train_targets, group, device)
    distributed.teardown(group)
    summary = _metrics(last_valid, progress)
    summary.update(run_name=run_name, run_dir=str(run_dir), log_dir=str(log_dir),
                   stopped_early=stopped_early, parameters=model.num_parameters(),
                   device=str(device))
    _log_hparams(writer, config, model_config, context_size, summary)
    writer.close()
    return summary


def _check_config(config: TrainConfig) -> None:
    """Refuse settings that cannot work before anything is loaded or written."""
    if config.objective not in OBJECTIVES:
        raise TrainingError(f"unknown objective {config.objective!r}; choose from "
                            f"{', '.join(OBJECTIVES)}")
    if config.select_by not in SELECT_BY:
        raise TrainingError(f"unknown --select-by {config.select_by!r}; choose from "
                            f"{', '.join(SELECT_BY)}")
    if not 0.0 <= config.distill_weight <= 1.0:
        raise TrainingError(f"--distill-weight must lie in [0, 1], not {config.distill_weight}")


def _training_data(config: TrainConfig, data_dir: Path, vocab: Vocab, window_size: int,
                   context_size: int) -> WindowDataset | SentencePieces | WindowStream:
    """The training split as the objective wants it: in memory, or streamed from its shards."""
    if config.stream_data:
        return WindowStream(split_files(data_dir, "train"), window_size,
                            context_size, config.objective, vocab.start_id, vocab.pad_id,
                            len(vocab), config.loader_workers, config.shuffle_buffer,
                            config.max_train_windows)
    windows = WindowDataset.from_split(data_dir, "train", window_size, len(vocab),
                                       config.max_train_windows).last_words(context_size)
    if config.objective == "all":
        return SentencePieces.from_windows(windows, vocab.start_id, vocab.pad_id)
    return windows


class _NoWriter:
    """TensorBoard writer of the ranks that do not log."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class BatchLoss(nn.Module):
    """``batch_loss`` as a module: what DistributedDataParallel wraps."""

    def __init__(self, model: NextWordModel, objective: str, pad_id: int,
                 teachers: TeacherEnsemble | None = None, distill_weight: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.objective = objective
        self.pad_id = pad_id
        # A plain attribute, not a submodule: the frozen teachers stay out of the
        # student's parameters, its checkpoints and DDP's gradient buckets.
        self.teachers = teachers
        self.distill_weight = distill_weight

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean loss and scored targets of one batch."""
        return batch_loss(self.model, inputs, targets, self.objective, self.pad_id,
                          self.teachers, self.distill_weight)


def batch_loss(model: NextWordModel, inputs: torch.Tensor, targets: torch.Tensor,
               objective: str, pad_id: int, teachers: TeacherEnsemble | None = None,
               distill_weight: float = 0.0) -> tuple[torch.Tensor, int]:
    """Mean loss of a batch and how many targets it scored.

    "all": inputs/targets (batch, width), pad targets unscored.
    "last": left-padded windows (batch, context) and one target each (batch,).
    With ``teachers`` the loss also pulls towards their distribution (distill.py).
    """
    if objective == "all":
        features, _ = model.features(inputs)  # (batch, width, hidden)
        scored = targets != pad_id  # (batch, width)
        features, targets, count = features[scored], targets[scored], int(scored.sum())
        soft = teachers.probs_at(inputs, scored) if teachers is not None else None
    else:
        aligned, lengths = align_left(inputs, pad_id)
        features, _ = model.features(aligned)  # (batch, context, hidden)
        features = features[torch.arange(len(lengths), device=features.device), lengths - 1]
        count = len(targets)
        soft = teachers.probs_last(inputs, pad_id) if teachers is not None else None
    if soft is None:
        return model.loss(features, targets), count
    return distillation_loss(model, features, targets, soft, distill_weight), count


def _step_limit(config: TrainConfig, progress: Progress, epoch_seconds: float = 0.0) -> bool:
    if config.max_steps and progress.step >= config.max_steps:
        return True
    if config.max_train_targets and progress.train_targets >= config.max_train_targets:
        return True
    elapsed = progress.train_seconds + epoch_seconds
    return bool(config.time_limit_minutes) and elapsed >= 60 * config.time_limit_minutes


def _metrics(valid: dict[str, float], progress: Progress) -> dict[str, Any]:
    return {
        "valid": dict(valid),
        "best_valid_loss": progress.best_valid_loss,
        "epochs_done": progress.epoch,
        "steps": progress.step,
        "train_seconds": round(progress.train_seconds, 1),
        "train_targets": progress.train_targets,
        "train_tokens_per_second": round(progress.train_targets / max(progress.train_seconds, 1e-9)),
    }


def _read_resume_point(path: Path, vocab: Vocab, device: torch.device) -> dict[str, Any]:
    """The payload of ``last.pt``, checked to belong to this data."""
    payload = read_checkpoint(path, map_location=device)
    if payload["vocab_fingerprint"] != vocab.fingerprint():
        raise TrainingError(f"{path} was trained on another vocabulary; "
                            "resume with the same processed data")
    if not payload.get("training"):
        raise TrainingError(f"{path} holds no training state to resume from")
    return payload


def _log_hparams(writer: SummaryWriter, config: TrainConfig, model_config: ModelConfig,
                 context_size: int, summary: dict[str, Any]) -> None:
    """One row per run in TensorBoard's HPARAMS tab, so runs compare in one table."""
    hparams = {k: (" ".join(map(str, v)) if isinstance(v, tuple) else v)
               for k, v in asdict(model_config).items() if k != "vocab_size"}
    hparams.update(vocab_size=model_config.vocab_size, context_size=context_size,
                   batch_size=config.batch_size, learning_rate=config.learning_rate,
                   objective=config.objective, teachers=len(config.teachers),
                   distill_weight=config.distill_weight if config.teachers else 0.0,
                   init_from=config.init_from or "")
    valid = summary.get("valid") or {}
    metrics = {f"hparam/valid_{k.replace('@', '_at_')}": float(valid[k])
               for k in ("loss", "hit@1", "hit@5") if k in valid}
    if metrics:
        writer.add_hparams(hparams, metrics, run_name=".")
