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


def _sentences(count: int = 23) -> list[list[int]]:
    return [[2, *range(10 * n + 10, 10 * n + 10 + 1 + n % 7)] for n in range(count)]


def _write_shards(tmp_path, sentences, shard_size: int, context_size: int = 4):
    from input_method.windows import split_files, write_window_shards

    write_window_shards(tmp_path, "train", (sentence_windows(ids, context_size, 0)
                                            for ids in sentences), shard_size)
    return split_files(tmp_path, "train")


@pytest.mark.parametrize("objective", ["all", "last"])
def test_stream_shares_every_example_once_among_ranks_and_workers(tmp_path, objective):
    """2 ranks x 2 DataLoader workers together see each example once: nothing twice, nothing lost."""
    from input_method.dataset import WindowStream

    sentences = _sentences()
    files = _write_shards(tmp_path, sentences, shard_size=10)
    assert len(files) > 2
    seen: list[int] = []
    for rank in range(2):
        stream = WindowStream(files, 4, 4, objective, start_id=2, pad_id=0, workers=2,
                              shuffle_buffer=8)
        for _, targets in stream.batches(3, shuffle=True, seed=1, rank=rank, world_size=2):
            seen.extend(t for t in targets.flatten().tolist() if t)
    assert sorted(seen) == sorted(w for ids in sentences for w in ids[1:])


def test_stream_batches_match_the_in_memory_pieces_and_resume(tmp_path):
    """Unshuffled, one reader: the stream yields the SentencePieces examples; start_batch skips."""
    from input_method.dataset import WindowStream

    sentences = _sentences(12)
    files = _write_shards(tmp_path, sentences, shard_size=7)
    stream = WindowStream(files, 4, 4, "all", start_id=2, pad_id=0)
    streamed = [row for inputs, _ in stream.batches(5) for row in inputs.tolist()]
    pieces = SentencePieces(sentences, 4, 0)
    assert [[i for i in row if i] for row in streamed] == [
        [i for i in row if i] for row in pieces.inputs.tolist()]
    full = [t.tolist() for _, t in stream.batches(5, shuffle=True, seed=4)]
    tail = [t.tolist() for _, t in stream.batches(5, shuffle=True, seed=4, start_batch=2)]
    assert tail == full[2:] and full != [t.tolist() for _, t in stream.batches(5, shuffle=True,
                                                                                seed=5)]


def test_shards_end_at_sentence_ends_and_rewriting_removes_stale_ones(tmp_path):
    """Each shard starts a sentence; a rewrite with bigger shards leaves no old shard behind."""
    sentences = _sentences()
    files = _write_shards(tmp_path, sentences, shard_size=10)
    for path in files:
        first = WindowDataset.from_jsonl(path, 4).inputs[0].tolist()
        assert first[-1] == 2  # the first window of a shard starts a sentence
    both = WindowDataset.from_jsonl(files, 4)
    assert rebuild_sentences(both, start_id=2) == sentences
    assert [p.name for p in _write_shards(tmp_path, sentences, shard_size=10**6)] == [
        "train-00000.jsonl"]
