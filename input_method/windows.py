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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
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
