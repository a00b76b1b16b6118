"""Tests for training in several processes (DDP with gloo on CPU)."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from input_method.dataset import SentencePieces
from input_method.predict import Predictor
from input_method.train import train
from tests.conftest import TINY_MODEL, tiny_train_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, tmp: str, processed: str, stream: bool) -> None:
    """One rank, set up as torchrun would."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    config = replace(tiny_train_config(Path(tmp), Path(processed)), run_name="ddp", epochs=6,
                     stream_data=stream, loader_workers=1)
    train(config, TINY_MODEL)


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "stream"])
def test_two_gloo_processes_train_one_model_that_predict_serves(tmp_path, processed_dir, stream):
    """Two ranks train together (data in memory, or streamed from shards by a worker per
    rank); rank 0 writes the usual checkpoint; the loss falls."""
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), str(processed_dir), stream),
             nprocs=2, join=True)
    run_dir = tmp_path / "models" / "ddp"
    predictor = Predictor.load(run_dir)
    assert len(predictor.predict("我今天", 3)) == 3
    last = torch.load(run_dir / "last.pt", weights_only=True)
    progress = last["training"]["progress"]
    losses = progress["valid_losses"]
    assert progress["epoch"] == 6 and len(losses) == 6
    assert min(losses[1:]) < losses[0]  # the loss falls
    assert set(os.listdir(tmp_path / "logs" / "ddp"))  # rank 0 logged


def test_ranks_split_batches_without_overlap():
    """Each rank gets its own batches of the same order; together they cover each once."""
    pieces = SentencePieces([[2, *range(10, 10 + n)] for n in range(1, 40)], 6, 0)
    whole = [t for _, t in pieces.batches(4, shuffle=True, seed=3)]
    usable = len(whole) - len(whole) % 2
    shards = [[t for _, t in pieces.batches(4, shuffle=True, seed=3, rank=r, world_size=2)]
              for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == usable // 2
    interleaved = [batch for pair in zip(*shards, strict=True) for batch in pair]
    assert all(torch.equal(a, b) for a, b in zip(interleaved, whole[:usable], strict=True))
