"""Tests for the vocabulary."""

from __future__ import annotations

from collections import Counter

import pytest

from input_method.config import SPECIAL_TOKENS
from input_method.errors import CheckpointError
from input_method.vocab import Vocab, is_punctuation


def test_specials_first_then_by_frequency_with_min_freq_and_max_size():
    """Specials take ids 0-2; rarer words are cut by min_freq, then by max_size."""
    counts = Counter({"的": 10, "我": 7, "你": 7, "他": 1})
    vocab = Vocab.build(counts, min_freq=2)
    assert vocab.itos == [*SPECIAL_TOKENS, "的", "你", "我"]
    assert Vocab.build(counts, max_size=4).itos == [*SPECIAL_TOKENS, "的"]
    assert (vocab.pad_id, vocab.unk_id, vocab.start_id) == (0, 1, 2)


def test_unknown_words_encode_to_unk():
    """A word outside the vocabulary maps to <unk>."""
    vocab = Vocab.build(Counter({"我": 2}))
    assert vocab.encode(["我", "火星"]) == [3, vocab.unk_id]


def test_save_load_round_trip_keeps_fingerprint(tmp_path):
    """The JSON file restores the same tokens and fingerprint."""
    vocab = Vocab.build(Counter({"我": 2, "你": 1}))
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded.itos == vocab.itos and loaded.fingerprint() == vocab.fingerprint()


def test_a_vocabulary_without_specials_is_rejected():
    """Ids of the specials are fixed; a list lacking them is an error."""
    with pytest.raises(CheckpointError):
        Vocab(["我", "你"])


def test_punctuation_is_never_suggested_but_words_digits_and_latin_are():
    """The bar's exclusions: special tokens and tokens of punctuation or symbols only;
    Chinese words, numbers (full-width too) and Latin words stay suggestable."""
    assert all(is_punctuation(t) for t in ("，", "。", "——", "《", "......", "~", "¥", "&#"))
    assert not any(is_punctuation(t) for t in ("的", "１２月", "2024", "iPhone", "U盘", "，好"))
    vocab = Vocab([*SPECIAL_TOKENS, "的", "，", "。", "１２月", "iPhone", "——"])
    assert vocab.unsuggested_ids == [0, 1, 2, 4, 5, 8]
