"""Tests for sliding windows and their jsonl files."""

from __future__ import annotations

import json

from input_method.windows import (
    WindowReadStats,
    format_window,
    read_windows,
    sentence_windows,
    write_windows,
)

PAD, START = 0, 2


def test_windows_are_left_padded_with_pad_and_start_at_sentence_start():
    """The first word is predicted from <s> alone, padded on the left with <pad>."""
    sentence = [START, 10, 11, 12, 13]
    windows = list(sentence_windows(sentence, 3, PAD))
    assert windows == [([PAD, PAD, START], 10), ([PAD, START, 10], 11),
                       ([START, 10, 11], 12), ([10, 11, 12], 13)]


def test_format_window_is_the_seed_json_shape():
    """Lines parse as {"input": [...], "target": id}."""
    line = format_window([0, 2, 5], 7)
    assert json.loads(line) == {"input": [0, 2, 5], "target": 7}
    assert line == json.dumps({"input": [0, 2, 5], "target": 7}) + "\n"


def test_broken_lines_are_skipped_and_counted(tmp_path):
    """Not JSON, missing fields, wrong length or non-integers: skipped, counted, rest kept."""
    path = tmp_path / "w.jsonl"
    write_windows(path, [([0, 2, 5], 7), ([2, 5, 7], 8)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"input": [1, 2\n{"target": 3}\n{"input": [1], "target": 3}\n'
                     '{"input": ["a", 1, 2], "target": 3}\n')
    stats = WindowReadStats()
    assert list(read_windows(path, 3, stats)) == [([0, 2, 5], 7), ([2, 5, 7], 8)]
    assert (stats.windows, stats.skipped) == (2, 4)
