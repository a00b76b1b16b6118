"""Tests for the window dataset and its batches."""

from __future__ import annotations

import pytest
import torch

from input_method.dataset import WindowDataset
from input_method.errors import CorpusError
from input_method.windows import write_windows


def _dataset(n: int = 10) -> WindowDataset:
    return WindowDataset(torch.arange(n * 3).view(n, 3), torch.arange(n))


def test_from_jsonl_skips_broken_and_out_of_range_lines(tmp_path):
    """Broken lines and ids beyond the vocabulary are counted in ``skipped``."""
    path = tmp_path / "w.jsonl"
    write_windows(path, [([0, 2, 5], 7), ([2, 5, 99], 8)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("garbage\n")
    data = WindowDataset.from_jsonl(path, 3, vocab_size=10)
    assert len(data) == 1 and data.skipped == 2
    assert data.inputs.tolist() == [[0, 2, 5]] and data.targets.tolist() == [7]


def test_missing_file_says_to_process_first(tmp_path):
    """A missing window file is a CorpusError naming `ime process`."""
    with pytest.raises(CorpusError, match="ime process"):
        WindowDataset.from_jsonl(tmp_path / "none.jsonl", 3)


def test_shuffled_batches_depend_only_on_seed_and_cover_everything():
    """Same seed, same order; every window appears once per pass."""
    data = _dataset(10)
    first = [t.tolist() for _, t in data.batches(4, shuffle=True, seed=3)]
    again = [t.tolist() for _, t in data.batches(4, shuffle=True, seed=3)]
    assert first == again
    assert sorted(sum(first, [])) == list(range(10))
    assert [len(b) for b in first] == [4, 4, 2]


def test_start_batch_skips_exactly_the_batches_already_seen():
    """Resuming at batch 1 yields the tail of the same order."""
    data = _dataset(10)
    full = [t.tolist() for _, t in data.batches(4, shuffle=True, seed=5)]
    tail = [t.tolist() for _, t in data.batches(4, shuffle=True, seed=5, start_batch=1)]
    assert tail == full[1:]
