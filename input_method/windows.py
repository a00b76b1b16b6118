"""Sliding windows over sentences, and their jsonl files. Pure Python, no torch.

Every sentence starts with the start token ``<s>``; each later position is a
target whose input is the ``context_size`` ids before it, left-padded with
``<pad>`` (id 0, never ``<unk>``) near the sentence start. With
``context_size=3`` the sentence ``<s> 我 今天 去 北京`` gives::

    input             target
    [pad pad <s>]  -> 我
    [pad <s> 我 ]  -> 今天
    [<s> 我  今天] -> 去
    [我  今天 去 ] -> 北京

so the first word of a sentence is predicted too (from ``<s>`` alone).
One window per line: ``{"input": [0, 0, 2], "target": 57}``.

A split is written as numbered shards, ``train-00000.jsonl``,
``train-00001.jsonl``, ..., each cut at a sentence end, so that a shard can be
read alone and a stream can hand whole sentences to different readers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from input_method.atomic import atomic_open

log = logging.getLogger(__name__)


def left_pad(ids: Sequence[int], context_size: int, pad_id: int) -> list[int]:
    """The last ``context_size`` ids, padded on the left to exactly that length."""
    tail = list(ids[-context_size:]) if context_size else []
    return [pad_id] * (context_size - len(tail)) + tail


def sentence_windows(ids: Sequence[int], context_size: int,
                     pad_id: int) -> Iterator[tuple[list[int], int]]:
    """Windows ``(input, target)`` for every position after the first of ``ids``.

    ``ids`` is one sentence that begins with the start id.
    """
    for i in range(1, len(ids)):
        yield left_pad(ids[max(0, i - context_size):i], context_size, pad_id), ids[i]


def format_window(inputs: Sequence[int], target: int) -> str:
    """One jsonl line (with newline) for a window; the same as ``json.dumps`` gives."""
    return f'{{"input": [{", ".join(map(str, inputs))}], "target": {target}}}\n'


def write_windows(path: Path, windows: Iterable[tuple[Sequence[int], int]]) -> int:
    """Write windows to ``path`` atomically; return how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for inputs, target in windows:
            handle.write(format_window(inputs, target))
            count += 1
    return count


def shard_path(directory: Path, split: str, index: int) -> Path:
    """``directory/{split}-{index:05d}.jsonl``."""
    return Path(directory) / f"{split}-{index:05d}.jsonl"


def split_files(directory: Path | str, split: str) -> list[Path]:
    """The window files of ``split`` in order: its shards, or a single ``{split}.jsonl``.

    The single file is what versions before sharding wrote; it is still read.
    """
    directory = Path(directory)
    pattern = re.compile(rf"{re.escape(split)}-(\d{{5,}})\.jsonl")
    numbered = ((pattern.fullmatch(p.name), p) for p in directory.glob(f"{split}-*.jsonl"))
    shards = [p for m, p in sorted((int(m[1]), p) for m, p in numbered if m)]
    if shards:
        return shards
    single = directory / f"{split}.jsonl"
    return [single] if single.is_file() else []


def write_window_shards(directory: Path, split: str,
                        sentences: Iterable[Iterable[tuple[Sequence[int], int]]],
                        shard_size: int) -> tuple[int, int]:
    """Write the windows of each sentence into shards of about ``shard_size`` windows.

    A shard is closed at the first sentence end after ``shard_size`` windows, so
    no sentence spans two shards. Each shard is written atomically; shards of
    an earlier run that this one did not write are removed afterwards.
    Returns ``(windows, shards)``.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    directory = Path(directory)
    written: list[Path] = []
    total = in_shard = 0
    with ExitStack() as stack:
        handle = None
        for sentence in sentences:
            if handle is None or in_shard >= shard_size:
                stack.close()  # completes (renames) the previous shard
                written.append(shard_path(directory, split, len(written)))
                handle = stack.enter_context(atomic_open(written[-1]))
                in_shard = 0
            for inputs, target in sentence:
                handle.write(format_window(inputs, target))
                in_shard += 1
                total += 1
        if handle is None:  # no sentences: one empty shard, so the split still exists
            written.append(shard_path(directory, split, 0))
            stack.enter_context(atomic_open(written[-1]))
    for stale in set(split_files(directory, split)) - set(written):
        stale.unlink()
    (directory / f"{split}.jsonl").unlink(missing_ok=True)  # the pre-shard layout
    return total, len(written)


@dataclass
class WindowReadStats:
    """Lines read from a window file and lines skipped as broken."""

    windows: int = 0
    skipped: int = 0


def read_windows(path: Path, context_size: int | None = None,
                 stats: WindowReadStats | None = None) -> Iterator[tuple[list[int], int]]:
    """Yield the windows of a jsonl file, skipping (and counting) broken lines.

    A line is broken if it is not JSON, lacks ``input``/``target``, holds
    non-integers, or (when ``context_size`` is given) has another length.
    """
    stats = stats if stats is not None else WindowReadStats()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                inputs, target = record["input"], record["target"]
                valid = (isinstance(inputs, list) and all(type(i) is int for i in inputs)
                         and type(target) is int
                         and (context_size is None or len(inputs) == context_size))
            except (json.JSONDecodeError, KeyError, TypeError):
                valid = False
            if not valid:
                stats.skipped += 1
                if stats.skipped <= 3:
                    log.warning("%s:%d: skipping a broken window line", path, number)
                continue
            stats.windows += 1
            yield inputs, target
    if stats.skipped:
        log.warning("%s: skipped %d broken lines in all", path, stats.skipped)
