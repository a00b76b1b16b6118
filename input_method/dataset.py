"""Window files as torch tensors, and batches over them.

Views of the same split (its shards ``{split}-00000.jsonl``, ...):

- ``WindowDataset``: one example per window, the target its last word (the
  seed's recipe; evaluation always scores this view);
- ``SentencePieces``: the sentences rebuilt from consecutive windows and cut
  into pieces, every word a target once, for loss at every position;
- ``WindowStream``: either of the two read from the shards as a stream, for
  training data larger than memory, shared among DataLoader workers and
  distributed ranks sentence by sentence.

The first two hold a split as tensors (a few bytes per window), so a batch is
one fancy-index instead of ``batch_size`` Python ``__getitem__`` calls.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from input_method.errors import CorpusError
from input_method.windows import WindowReadStats, read_windows, sentence_windows, split_files


def context_size_of(data_dir: Path) -> int:
    """The window length the data was written with (from stats.json, else the first window)."""
    stats = data_dir / "stats.json"
    if stats.is_file():
        return int(json.loads(stats.read_text(encoding="utf-8"))["config"]["context_size"])
    files = split_files(data_dir, "train")
    if not files:
        raise CorpusError(f"no training windows in {data_dir}; run `ime process` first")
    with files[0].open(encoding="utf-8") as handle:
        return len(json.loads(handle.readline())["input"])


class WindowDataset(Dataset):
    """Windows of one split: ``inputs`` (N, context) and ``targets`` (N,), both int64."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, skipped: int = 0) -> None:
        assert inputs.dim() == 2 and targets.dim() == 1 and len(inputs) == len(targets)
        self.inputs = inputs
        self.targets = targets
        self.skipped = skipped  # broken lines left out when reading

    @classmethod
    def from_jsonl(cls, paths: Path | str | Sequence[Path | str], context_size: int,
                   vocab_size: int | None = None, limit: int = 0) -> WindowDataset:
        """Read window files in order; broken lines and out-of-range ids are skipped and counted."""
        paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        missing = [p for p in paths if not p.is_file()] or ([] if paths else ["(no files)"])
        if missing:
            raise CorpusError(f"window file not found: {missing[0]}; run `ime process` first")
        stats = WindowReadStats()
        inputs: list[list[int]] = []
        targets: list[int] = []
        out_of_range = 0
        for window, target in _read_all(paths, context_size, stats):
            if vocab_size is not None and not all(0 <= i < vocab_size for i in (*window, target)):
                out_of_range += 1
                continue
            inputs.append(window)
            targets.append(target)
            if limit and len(targets) >= limit:
                break
        if not targets:
            raise CorpusError(f"{', '.join(map(str, paths))} has no usable windows")
        return cls(torch.tensor(inputs, dtype=torch.long).view(-1, context_size),
                   torch.tensor(targets, dtype=torch.long), stats.skipped + out_of_range)

    @classmethod
    def from_split(cls, data_dir: Path | str, split: str, context_size: int,
                   vocab_size: int | None = None, limit: int = 0) -> WindowDataset:
        """Read all shards of one split of a processed-data directory."""
        files = split_files(data_dir, split)
        if not files:
            raise CorpusError(f"no {split} windows in {data_dir}; run `ime process` first")
        return cls.from_jsonl(files, context_size, vocab_size, limit)

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


def _read_all(paths: Iterable[Path], context_size: int | None,
              stats: WindowReadStats) -> Iterator[tuple[list[int], int]]:
    for path in paths:
        yield from read_windows(path, context_size, stats)


def sentences_of(windows: Iterable[tuple[Sequence[int], int]],
                 start_id: int) -> Iterator[list[int]]:
    """Sentences ``[<s>, w1, w2, ...]`` from windows in the order ``process`` wrote them.

    A window whose input ends in ``<s>`` starts a sentence; the targets of it
    and of the windows after it are the sentence's words.
    """
    sentence: list[int] = []
    for inputs, target in windows:
        if inputs[-1] == start_id and sentence:
            yield sentence
            sentence = []
        if not sentence:
            sentence = [start_id]
        sentence.append(target)
    if sentence:
        yield sentence


def rebuild_sentences(windows: WindowDataset, start_id: int) -> list[list[int]]:
    """The sentences behind the windows of a ``WindowDataset`` (see :func:`sentences_of`)."""
    return list(sentences_of(zip(windows.inputs[:, -1:].tolist(), windows.targets.tolist(),
                                 strict=True), start_id))


def cut_pieces(ids: Sequence[int], context_size: int,
               pad_id: int) -> Iterator[tuple[list[int], list[int]]]:
    """One sentence as ``(inputs, targets)`` pieces; see :class:`SentencePieces`."""
    stride = max(1, context_size // 2)
    begin = 0
    while True:
        piece = list(ids[begin:begin + context_size + 1])
        scored = piece[1:]
        if begin > 0:  # the first (context_size - stride) targets were scored before
            keep = context_size - stride
            scored = [pad_id] * keep + scored[keep:]
        padding = [pad_id] * (context_size + 1 - len(piece))
        yield piece[:-1] + padding, scored + padding
        if begin + context_size >= len(ids) - 1:
            return
        begin += stride


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
        inputs: list[list[int]] = []
        targets: list[list[int]] = []
        for ids in sentences:
            for piece_inputs, piece_targets in cut_pieces(ids, context_size, pad_id):
                inputs.append(piece_inputs)
                targets.append(piece_targets)
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


class WindowStream(IterableDataset):
    """Training batches streamed from a split's shards, for data larger than memory.

    Every reader (DataLoader worker ``w`` of ``W`` on distributed rank ``r`` of
    ``R``) reads the shards in the same seeded order, rebuilds the same
    sequence of sentences, and keeps sentence ``k`` when
    ``k % (R * W) == r * W + w``::

        sentence    s0    s1    s2    s3    s4    s5   ...
        R=2, W=2    r0w0  r0w1  r1w0  r1w1  r0w0  r0w1 ...

    so in an epoch each sentence is used once, by exactly one reader. Its
    examples (pieces for objective ``"all"``, stride-1 windows for ``"last"``)
    pass through a seeded shuffle buffer and leave as ready ``(inputs, targets)``
    batches, the same shapes as ``SentencePieces.batches`` and
    ``WindowDataset.batches`` give. Memory holds the buffer, never a shard.
    """

    def __init__(self, files: Sequence[Path | str], data_context_size: int, context_size: int,
                 objective: str, start_id: int, pad_id: int, vocab_size: int | None = None,
                 workers: int = 0, shuffle_buffer: int = 100_000, limit: int = 0) -> None:
        super().__init__()
        if not files:
            raise CorpusError("no window shards to stream; run `ime process` first")
        self.files = [Path(f) for f in files]
        self.data_context_size = data_context_size
        self.context_size = context_size
        self.objective = objective
        self.start_id = start_id
        self.pad_id = pad_id
        self.vocab_size = vocab_size
        self.workers = workers
        self.shuffle_buffer = shuffle_buffer
        self.limit = limit  # read only the first N windows of the split (0: all)
        # Set by ``batches`` for one epoch; the DataLoader copies them into its workers.
        self.batch_size = 1
        self.shuffle = False
        self.seed = 0
        self.rank = 0
        self.world_size = 1

    def num_batches(self, batch_size: int) -> None:
        """Unknown until the stream has been read: ``None``."""
        return None

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                start_batch: int = 0, rank: int = 0, world_size: int = 1,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's batches of one epoch; ``start_batch`` counts batches of all ranks."""
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        loader = torch.utils.data.DataLoader(self, batch_size=None, num_workers=self.workers)
        for position, batch in enumerate(loader):
            if position >= start_batch // world_size:  # a resumed epoch skips what it did
                yield batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader, readers = self.rank * workers + worker, self.world_size * workers
        files = list(self.files)
        if self.shuffle:  # the same order for every reader, or sentence numbers disagree
            random.Random(f"shards-{self.seed}").shuffle(files)
        examples = self._examples(files, reader, readers)
        if self.shuffle and self.shuffle_buffer > 1:
            examples = _buffer_shuffle(examples, self.shuffle_buffer,
                                       random.Random(f"buffer-{self.seed}-{reader}"))
        batch: list[tuple[list[int], list[int] | int]] = []
        for example in examples:
            batch.append(example)
            if len(batch) == self.batch_size:
                yield self._collate(batch)
                batch = []
        if batch:
            yield self._collate(batch)

    def _examples(self, files: list[Path], reader: int,
                  readers: int) -> Iterator[tuple[list[int], list[int] | int]]:
        windows = _read_all(files, self.data_context_size, WindowReadStats())
        if self.vocab_size is not None:
            size = self.vocab_size
            windows = ((w, t) for w, t in windows if all(0 <= i < size for i in (*w, t)))
        if self.limit:
            windows = itertools.islice(windows, self.limit)
        for number, ids in enumerate(sentences_of(windows, self.start_id)):
            if number % readers != reader:
                continue
            if self.objective == "all":
                yield from cut_pieces(ids, self.context_size, self.pad_id)
            else:
                yield from sentence_windows(ids, self.context_size, self.pad_id)

    def _collate(self, batch: list) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.tensor([inputs for inputs, _ in batch], dtype=torch.long)
        targets = torch.tensor([targets for _, targets in batch], dtype=torch.long)
        if self.objective == "all":  # pieces are padded on the right: trim to the longest
            width = int((inputs != self.pad_id).sum(1).max())
            return inputs[:, :width], targets[:, :width]
        return inputs, targets


def _buffer_shuffle(items: Iterator, size: int, rng: random.Random) -> Iterator:
    """Items in a shuffled order, holding at most ``size`` of them at a time."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        index = rng.randrange(size)
        yield buffer[index]
        buffer[index] = item
    rng.shuffle(buffer)
    yield from buffer
