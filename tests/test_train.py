"""Tests for training: the loss falls, checkpoints appear, resume is exact."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from input_method.checkpoint import load_model, read_checkpoint
from input_method.dataset import WindowDataset
from input_method.errors import TrainingError
from input_method.model import NextWordModel
from input_method.train import train, validate
from tests.conftest import TINY_MODEL, tiny_train_config


def test_training_lowers_the_loss_and_writes_checkpoints_and_logs(tmp_path, processed_dir):
    """A few epochs on the tiny corpus lower the training loss; best/last/vocab and logs exist."""
    config = tiny_train_config(tmp_path, processed_dir)
    train(replace(config, run_name="zero", max_steps=1, epochs=1), TINY_MODEL)
    train(replace(config, run_name="some", epochs=4), TINY_MODEL)
    train_data = WindowDataset.from_split(processed_dir, "train", 3)
    losses = {}
    for run in ("zero", "some"):
        model, vocab, _ = load_model(tmp_path / "models" / run / "last.pt")
        losses[run] = validate(model, train_data, vocab, torch.device("cpu"))["loss"]
    assert losses["some"] < losses["zero"] - 0.5
    run_dir = tmp_path / "models" / "some"
    assert {"best.pt", "last.pt", "vocab.json"} <= {p.name for p in run_dir.iterdir()}
    assert any((tmp_path / "logs" / "some").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "stream"])
def test_resume_continues_exactly_where_it_stopped(tmp_path, processed_dir, stream):
    """Stopping mid-epoch and resuming gives the same weights as one uninterrupted run,
    with the training data in memory or streamed from its shards by a DataLoader worker."""
    config = replace(tiny_train_config(tmp_path, processed_dir), epochs=2, patience=10,
                     stream_data=stream, loader_workers=1, shuffle_buffer=50)
    train(replace(config, run_name="whole"), TINY_MODEL)
    train(replace(config, run_name="split", max_steps=3), TINY_MODEL)
    train(replace(config, run_name="split", resume=True), TINY_MODEL)
    whole = read_checkpoint(tmp_path / "models" / "whole" / "last.pt")
    split = read_checkpoint(tmp_path / "models" / "split" / "last.pt")
    assert whole["training"]["progress"]["step"] == split["training"]["progress"]["step"]
    for name, tensor in whole["state_dict"].items():
        assert torch.allclose(tensor, split["state_dict"][name], atol=1e-6), name


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path, processed_dir):
    """Training into a used run directory asks for --resume or another name."""
    config = replace(tiny_train_config(tmp_path, processed_dir), max_steps=1, epochs=1)
    train(config, TINY_MODEL)
    with pytest.raises(TrainingError, match="--resume"):
        train(config, TINY_MODEL)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(
        tmp_path, processed_dir, monkeypatch):
    """A NaN loss at step 8 stops the run; last.pt still holds finite weights from before it."""
    calls = {"n": 0}
    real_loss = NextWordModel.loss

    def nan_at_step_8(self, features, targets):
        calls["n"] += 1
        loss = real_loss(self, features, targets)
        return loss * float("nan") if calls["n"] == 8 else loss

    monkeypatch.setattr(NextWordModel, "loss", nan_at_step_8)
    config = tiny_train_config(tmp_path, processed_dir)
    with pytest.raises(TrainingError, match="loss became nan"):
        train(config, TINY_MODEL)
    last = read_checkpoint(tmp_path / "models" / "tiny" / "last.pt")
    assert 5 <= last["training"]["progress"]["step"] < 8  # saved before the NaN step
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())


def test_dry_run_finishes_quickly(tmp_path, processed_dir):
    """--dry-run trains a handful of steps and still writes a usable checkpoint."""
    summary = train(replace(tiny_train_config(tmp_path, processed_dir), dry_run=True), TINY_MODEL)
    assert 0 < summary["steps"] <= 20
    assert (tmp_path / "models" / "tiny" / "best.pt").is_file()


def test_a_killed_run_leaves_a_loadable_last_checkpoint_and_resumes(tmp_path, processed_dir):
    """SIGKILL in the middle of training: last.pt still loads, and --resume finishes the run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "input_method", "train", "--data-dir", str(processed_dir),
            "--models-root", str(tmp_path / "models"), "--logs-root", str(tmp_path / "logs"),
            "--run-name", "killed", "--epochs", "200", "--batch-size", "4", "--checkpoint-every", "1",
            "--embedding-dim", "16", "--hidden-size", "16", "--device", "cpu", "--patience", "500"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "models" / "killed" / "last.pt"
    deadline = time.time() + 60
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let it write a few more checkpoints, then kill it mid-write if it can
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    step = read_checkpoint(last)["training"]["progress"]["step"]
    assert step >= 1
    config = replace(tiny_train_config(tmp_path, processed_dir), run_name="killed", resume=True,
                     epochs=200, batch_size=4, patience=500, max_steps=step + 3)
    resumed = train(config, replace(TINY_MODEL, embedding_dim=16, hidden_size=16))
    assert resumed["steps"] == step + 3


@pytest.mark.parametrize(("select_by", "best_epoch"), [("loss", 2), ("hits", 3)])
def test_best_checkpoint_follows_select_by(tmp_path, processed_dir, monkeypatch, select_by,
                                           best_epoch):
    """With scripted validations (epoch 2 the lowest loss, epoch 3 the most hits),
    best.pt holds epoch 2 under --select-by loss and epoch 3 under hits; early stopping
    still follows the loss (two epochs without a lower one end the run after epoch 4)."""
    scripted = iter([(3.0, 0.10, 0.20), (2.5, 0.05, 0.10), (2.8, 0.30, 0.40),
                     (2.9, 0.20, 0.30), (2.0, 0.9, 0.9)])

    def fake_validate(*args, **kwargs):
        loss, hit1, hit5 = next(scripted)
        return {"loss": loss, "perplexity": 1.0, "hit@1": hit1, "hit@5": hit5,
                "hit@10": hit5, "mrr": hit1, "windows": 10}

    monkeypatch.setattr("input_method.train.validate", fake_validate)
    config = replace(tiny_train_config(tmp_path, processed_dir), epochs=5, patience=2,
                     select_by=select_by)
    summary = train(config, TINY_MODEL)
    assert summary["epochs_done"] == 4 and summary["stopped_early"]
    best = read_checkpoint(tmp_path / "models" / "tiny" / "best.pt")["metrics"]
    assert best["epochs_done"] == best_epoch
    with pytest.raises(TrainingError, match="select-by"):
        train(replace(config, run_name="other", select_by="mrr"), TINY_MODEL)


def test_hparams_row_names_the_run_shape_and_its_teachers(tmp_path, processed_dir,
                                                          tiny_model_dir):
    """Each run writes one HPARAMS row: its cell and sizes, and for a distilled run the
    number of teachers and the distillation weight, beside its validation figures."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = replace(tiny_train_config(tmp_path, processed_dir), epochs=1,
                     teachers=(str(tiny_model_dir),), distill_weight=0.7)
    train(config, TINY_MODEL)
    events = EventAccumulator(str(tmp_path / "logs" / "tiny"),
                              size_guidance={"tensors": 0})
    events.Reload()
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events.PluginTagToContent("hparams")
    session = next(plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info
                   for c in content.values()
                   if plugin_data_pb2.HParamsPluginData.FromString(c).HasField(
                       "session_start_info"))
    hparams = {k: v.ListFields()[0][1] for k, v in session.hparams.items()}
    assert hparams["cell"] == "lstm" and hparams["hidden_size"] == 24
    assert hparams["teachers"] == 1 and hparams["distill_weight"] == pytest.approx(0.7)


def test_init_from_starts_from_the_trained_weights_and_shape(tmp_path, processed_dir,
                                                             tiny_model_dir):
    """Fine-tuning starts from the given model: its shape wins over the model flags, and a
    step at learning rate 0 leaves exactly its weights (a fresh model would not match)."""
    config = replace(tiny_train_config(tmp_path, processed_dir), epochs=1, max_steps=1,
                     learning_rate=0.0, init_from=str(tiny_model_dir))
    other_shape = replace(TINY_MODEL, hidden_size=TINY_MODEL.hidden_size + 8)
    train(config, other_shape)
    start = read_checkpoint(tiny_model_dir / "best.pt")["state_dict"]
    tuned = read_checkpoint(tmp_path / "models" / "tiny" / "last.pt")
    assert tuned["model_config"]["hidden_size"] == TINY_MODEL.hidden_size
    assert tuned["train_config"]["init_from"] == str(tiny_model_dir)
    for name, tensor in start.items():
        assert torch.equal(tensor, tuned["state_dict"][name]), name


def test_init_from_a_model_on_another_vocabulary_is_refused(tmp_path, processed_dir,
                                                            tiny_model_dir):
    """Ids of another vocabulary would mean other words: fine-tuning it is refused, and
    no run directory is left behind."""
    payload = read_checkpoint(tiny_model_dir / "best.pt")
    payload["vocab_fingerprint"] = "0000000000000000"
    torch.save(payload, tmp_path / "other.pt")
    config = replace(tiny_train_config(tmp_path, processed_dir), epochs=1,
                     init_from=str(tmp_path / "other.pt"))
    with pytest.raises(TrainingError, match="another vocabulary"):
        train(config, TINY_MODEL)
    assert not (tmp_path / "models" / "tiny").exists()
