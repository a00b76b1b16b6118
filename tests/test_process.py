"""Tests for the process stage: dedup, split, vocabulary, windows, stats."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from input_method.config import ProcessConfig
from input_method.errors import CorpusError
from input_method.process import assign_split, process, unique_texts
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


def test_split_is_seeded_reproducible_and_near_the_fractions():
    """The same seed gives the same split; another seed another one; sizes near 80/10/10."""
    texts = [f"文本{i}" for i in range(2000)]
    config = ProcessConfig()
    first = [assign_split(t, config) for t in texts]
    assert first == [assign_split(t, config) for t in texts]
    assert first != [assign_split(t, replace(config, seed=7)) for t in texts]
    sizes = Counter(first)
    assert abs(sizes["train"] - 1600) < 80 and abs(sizes["valid"] - 200) < 50


def test_unique_texts_keeps_first_occurrences_in_order():
    """Duplicates are dropped and counted; order of first appearance is kept."""
    tally = Counter()
    assert list(unique_texts(["b", "a", "b", "c", "a"], tally)) == ["b", "a", "c"]
    assert tally["duplicates"] == 2


def test_windows_use_train_vocabulary_and_pad_not_unk(processed_dir):
    """Every window has context_size ids; padding is <pad>; each sentence starts with <s>."""
    vocab = Vocab.load(processed_dir / "vocab.json")
    lines = (processed_dir / "train-00000.jsonl").read_text(encoding="utf-8").splitlines()
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
    for name in ("train-00000.jsonl", "test-00000.jsonl", "vocab.json"):
        assert (Path(config.output_dir) / name).read_bytes() == (processed_dir / name).read_bytes()


def test_stream_mode_splits_by_hash_without_leaking(tmp_path):
    """--stream gives every split text, no text in two splits, and a reproducible result."""
    write_tiny_corpus(tmp_path / "corpus.txt")
    config = replace(tiny_process_config(tmp_path), stream=True)
    stats = process(config)
    out = Path(config.output_dir)
    train = _split_texts(out, "train")
    assert not train & _split_texts(out, "test") and not train & _split_texts(out, "valid")
    assert sum(s["texts"] for s in stats["splits"].values()) == len(TINY_TEXTS)
    first = (out / "train-00000.jsonl").read_bytes()
    process(config)
    assert (out / "train-00000.jsonl").read_bytes() == first
