"""Window files as torch tensors, and batches over them.

Two views of the same ``{split}.jsonl`` file:

- ``WindowDataset``: one example per window, the target its last word (the
  seed's recipe; evaluation always scores this view);
- ``SentencePieces``: the sentences rebuilt from consecutive windows and cut
  into pieces, every word a target once, for loss at every position.

A split is held as tensors (a few bytes per window), so a batch is one
fancy-index instead of ``batch_size`` Python ``__getitem__`` calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset

from input_method.errors import CorpusError
from input_method.windows import WindowReadStats, read_windows


class WindowDataset(Dataset):
    """Windows of one split: ``inputs`` (N, context) and ``targets`` (N,), both int64."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, skipped: int = 0) -> None:
        assert inputs.dim() == 2 and targets.dim() == 1 and len(inputs) == len(targets)
        self.inputs = inputs
        self.targets = targets
        self.skipped = skipped  # broken lines left out when reading

    @classmethod
    def from_jsonl(cls, path: Path | str, context_size: int, vocab_size: int | None = None,
                   limit: int = 0) -> WindowDataset:
        """Read a window file; broken lines and out-of-range ids are skipped and counted."""
        path = Path(path)
        if not path.is_file():
            raise CorpusError(f"window file not found: {path}; run `ime process` first")
        stats = WindowReadStats()
        inputs: list[list[int]] = []
        targets: list[int] = []
        out_of_range = 0
        for window, target in read_windows(path, context_size, stats):
            if vocab_size is not None and not all(0 <= i < vocab_size for i in (*window, target)):
                out_of_range += 1
                continue
            inputs.append(window)
            targets.append(target)
            if limit and len(targets) >= limit:
                break
        if not targets:
            raise CorpusError(f"{path} has no usable windows")
        return cls(torch.tensor(inputs, dtype=torch.long).view(-1, context_size),
                   torch.tensor(targets, dtype=torch.long), stats.skipped + out_of_range)

    def __len__(self) -> int:
        return len(self.targets)

    def last_words(self, context_size: int) -> WindowDataset:
        """The same windows cut to their last ``context_size`` ids (left padding stays left)."""
        if context_size >= self.inputs.shape[1]:
            return self
        return WindowDataset(self.inputs[:, -context_size:].contiguous(), self.targets, self.skipped)

    def __getitem__(self, index: int | list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                start_batch: int = 0, rank: int = 0, world_size: int = 1,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs, targets)`` batches, optionally in a seeded order.

        With ``world_size`` ranks, this rank gets batches ``rank, rank + world_size, ...``
        of the same order, and every rank the same number (a remainder is dropped).

        The order depends only on ``seed`` (the training loop passes seed+epoch),
        so a resumed run can skip the first ``start_batch`` batches and see the
        same data as an uninterrupted one::

            order = randperm(N, seed)      e.g. [7 2 9 | 0 4 1 | 8 3 6 | 5]
            batch b = order[b*B:(b+1)*B]          batch 0  batch 1  ...
        """
        order = _seeded_order(len(self), shuffle, seed)
        for b in _own_batches(self.num_batches(batch_size), start_batch, rank, world_size):
            index = order[b * batch_size:(b + 1) * batch_size]
            yield self.inputs[index], self.targets[index]

    def num_batches(self, batch_size: int) -> int:
        """How many batches one pass yields."""
        return (len(self) + batch_size - 1) // batch_size


def _seeded_order(n: int, shuffle: bool, seed: int) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def _own_batches(count: int, start: int, rank: int, world_size: int) -> range:
    """This rank's batch positions from ``start`` on; every rank gets equally many.

        world_size 2, 7 batches:  rank 0 -> 0 2 4   rank 1 -> 1 3 5   (6 dropped)
    """
    usable = count - count % world_size
    return range(start + rank, usable, world_size)


def rebuild_sentences(windows: WindowDataset, start_id: int) -> list[list[int]]:
    """Sentences ``[<s>, w1, w2, ...]`` from the windows that ``process`` wrote in order.

    A window whose input ends in ``<s>`` starts a sentence; the targets of it
    and of the windows after it are the sentence's words.
    """
    sentences: list[list[int]] = []
    starts = (windows.inputs[:, -1] == start_id).tolist()
    for is_start, target in zip(starts, windows.targets.tolist(), strict=True):
        if is_start or not sentences:
            sentences.append([start_id])
        sentences[-1].append(target)
    return sentences


class SentencePieces(Dataset):
    """Sentences cut into pieces of ``context_size + 1`` ids; every word is a target once.

    A sentence longer than a piece is covered by pieces that overlap by half,
    and a later piece scores only its second half, so each target keeps at
    least half a context of words before it (``context_size=4``, stride 2)::

        ids      <s> a  b  c  d  e  f  g
        piece 0  <s> a  b  c  d             targets a b c d
        piece 1          b  c  d  e  f      targets       e f   (c, d masked)
        piece 2                d  e  f  g   targets           g

    ``inputs`` and ``targets`` are (N, context_size), padded on the right with
    ``pad_id``; a ``pad_id`` target is not scored.
    """

    def __init__(self, sentences: list[list[int]], context_size: int, pad_id: int) -> None:
        stride = max(1, context_size // 2)
        inputs: list[list[int]] = []
        targets: list[list[int]] = []
        for ids in sentences:
            begin = 0
            while True:
                piece = ids[begin:begin + context_size + 1]
                scored = piece[1:]
                if begin > 0:  # the first (context_size - stride) targets were scored before
                    keep = context_size - stride
                    scored = [pad_id] * keep + scored[keep:]
                padding = [pad_id] * (context_size + 1 - len(piece))
                inputs.append(piece[:-1] + padding)
                targets.append(scored + padding)
                if begin + context_size >= len(ids) - 1:
                    break
                begin += stride
        self.inputs = torch.tensor(inputs, dtype=torch.long).view(-1, context_size)
        self.targets = torch.tensor(targets, dtype=torch.long).view(-1, context_size)
        self.lengths = (self.inputs != pad_id).sum(1)
        self.pad_id = pad_id

    @classmethod
    def from_windows(cls, windows: WindowDataset, start_id: int, pad_id: int) -> SentencePieces:
        """Pieces of the sentences behind a window file."""
        return cls(rebuild_sentences(windows, start_id), windows.inputs.shape[1], pad_id)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int | list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def num_targets(self) -> int:
        """Scored targets in one pass."""
        return int((self.targets != self.pad_id).sum())

    def num_batches(self, batch_size: int) -> int:
        """How many batches one pass yields."""
        return (len(self) + batch_size - 1) // batch_size

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                start_batch: int = 0, rank: int = 0, world_size: int = 1,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of pieces of similar length, trimmed to their longest piece.

        Pieces are shuffled, sorted by length within groups of 64 batches (so
        little padding is computed), and the batches shuffled again; all of it
        from ``seed`` alone, so a resumed run can skip ``start_batch`` batches.
        """
        order = _seeded_order(len(self), shuffle, seed)
        group = batch_size * 64
        batches = []
        for begin in range(0, len(order), group):
            chunk = order[begin:begin + group]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
        batch_order = _seeded_order(len(batches), shuffle, seed + 1).tolist()
        for position in _own_batches(len(batches), start_batch, rank, world_size):
            index = batches[batch_order[position]]
            width = int(self.lengths[index].max())
            yield self.inputs[index, :width], self.targets[index, :width]
