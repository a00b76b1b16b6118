"""Tests for the window dataset and its batches."""

from __future__ import annotations

import pytest
import torch

from input_method.dataset import SentencePieces, WindowDataset, rebuild_sentences
from input_method.errors import CorpusError
from input_method.windows import sentence_windows, write_windows


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


def test_sentences_rebuilt_from_windows_and_every_word_scored_once():
    """Pieces score each word of each sentence exactly once, with at least half a context."""
    sentences = [[2, 10, 11, 12, 13, 14, 15, 16, 17, 18], [2, 20], [2, 30, 31]]
    inputs, targets = [], []
    for ids in sentences:
        for window, target in sentence_windows(ids, 4, 0):
            inputs.append(window)
            targets.append(target)
    windows = WindowDataset(torch.tensor(inputs), torch.tensor(targets))
    assert rebuild_sentences(windows, start_id=2) == sentences
    pieces = SentencePieces.from_windows(windows, start_id=2, pad_id=0)
    scored = pieces.targets[pieces.targets != 0].tolist()
    assert sorted(scored) == sorted(w for ids in sentences for w in ids[1:])
    for row_inputs, row_targets in zip(pieces.inputs.tolist(), pieces.targets.tolist(), strict=True):
        for position, target in enumerate(row_targets):
            if target:  # a scored word sees the piece's words before it
                assert position + 1 >= 2 or row_inputs[0] == 2


def test_piece_batches_are_trimmed_and_resumable():
    """Batches drop all-pad columns, and start_batch skips exactly the batches seen."""
    pieces = SentencePieces([[2, *range(10, 10 + n)] for n in range(1, 30)], 8, 0)
    full = list(pieces.batches(4, shuffle=True, seed=9))
    assert all((inputs != 0).any(0).all() for inputs, _ in full)
    tail = list(pieces.batches(4, shuffle=True, seed=9, start_batch=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full[2:], tail, strict=True))
