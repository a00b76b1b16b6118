"""Tests for the process stage: dedup, split, vocabulary, windows, stats."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from input_method.config import ProcessConfig
from input_method.errors import CorpusError
from input_method.process import dedup, process, split_texts
from input_method.vocab import Vocab
from tests.conftest import TINY_TEXTS, tiny_process_config, write_tiny_corpus


def _split_texts(processed: Path, name: str) -> set[str]:
    lines = (processed / f"{name}.tokens.txt").read_text(encoding="utf-8").splitlines()
    return {line.replace(" ", "") for line in lines}


def test_dedup_happens_before_the_split(processed_dir, tiny_stats):
    """Duplicated texts are dropped first, so no test or valid sentence also sits in train."""
    assert tiny_stats["duplicates_dropped"] == len(TINY_TEXTS[::3])
    assert tiny_stats["unique_texts"] == len(TINY_TEXTS)
    train = _split_texts(processed_dir, "train")
    assert not train & _split_texts(processed_dir, "test")
    assert not train & _split_texts(processed_dir, "valid")


def test_split_is_seeded_and_reproducible():
    """The same seed gives the same split; another seed another one."""
    texts = [f"文本{i}" for i in range(100)]
    config = ProcessConfig()
    assert split_texts(texts, config) == split_texts(texts, config)
    assert split_texts(texts, config) != split_texts(texts, replace(config, seed=7))
    sizes = {k: len(v) for k, v in split_texts(texts, config).items()}
    assert sizes == {"train": 80, "valid": 10, "test": 10}


def test_dedup_keeps_first_occurrence_order():
    """Order of first appearance is kept."""
    assert dedup(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_windows_use_train_vocabulary_and_pad_not_unk(processed_dir):
    """Every window has context_size ids; padding is <pad>; each sentence starts with <s>."""
    vocab = Vocab.load(processed_dir / "vocab.json")
    lines = (processed_dir / "train.jsonl").read_text(encoding="utf-8").splitlines()
    windows = [json.loads(line) for line in lines]
    assert all(len(w["input"]) == 3 for w in windows)
    starts = [w for w in windows if w["input"][-1] == vocab.start_id]
    sentences = (processed_dir / "train.tokens.txt").read_text(encoding="utf-8").splitlines()
    assert len(starts) == len(sentences)
    assert all(w["input"][:2] == [vocab.pad_id, vocab.pad_id] for w in starts)
    assert not any(vocab.unk_id in w["input"] for w in windows)  # min_freq 1: train has no OOV


def test_stats_json_reports_texts_duplicates_tokens_and_oov(tiny_stats):
    """stats.json carries the figures a user checks first."""
    for key in ("texts_read", "duplicates_dropped", "vocab_size", "broken_lines_skipped"):
        assert key in tiny_stats
    for split in ("train", "valid", "test"):
        assert {"texts", "tokens", "windows", "oov_rate"} <= tiny_stats["splits"][split].keys()
    assert tiny_stats["splits"]["train"]["oov_rate"] == 0.0


def test_empty_corpus_stops_with_a_clear_message(tmp_path):
    """A corpus of blank lines is an error, not an empty model."""
    (tmp_path / "corpus.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="no text"):
        process(tiny_process_config(tmp_path))


def test_a_split_that_would_be_empty_is_an_error(tmp_path):
    """Two texts cannot fill three splits."""
    (tmp_path / "corpus.txt").write_text("我好。\n你好。\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="split would be empty"):
        process(tiny_process_config(tmp_path))


def test_parallel_processing_gives_identical_files(tmp_path, processed_dir):
    """Two segmentation workers write byte-identical windows."""
    write_tiny_corpus(tmp_path / "corpus.txt")
    config = replace(tiny_process_config(tmp_path), workers=2)
    process(config)
    for name in ("train.jsonl", "test.jsonl", "vocab.json"):
        assert (Path(config.output_dir) / name).read_bytes() == (processed_dir / name).read_bytes()
