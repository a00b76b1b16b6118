"""Tests for pinyin filtering."""

from __future__ import annotations

import pytest

from input_method.pinyin import PinyinIndex, normalize_typed, readings_of, spells


@pytest.mark.parametrize("typed", ["zg", "zhongguo", "zhongg", "zhong g", "zhong'guo", "ZG", "zhg"])
def test_zhongguo_is_spelled_by_initials_full_partial_and_mixed(typed):
    """Initials, full syllables, a partial last syllable and explicit boundaries all spell 中国."""
    assert spells(normalize_typed(typed), readings_of("中国"))


@pytest.mark.parametrize("typed", ["z", "zgr", "zhongguoren", "gz", "zh'ongguo", "zhongguox"])
def test_letters_that_do_not_spell_zhongguo(typed):
    """Too few characters covered, extra letters, wrong order or a boundary inside a syllable."""
    assert not spells(normalize_typed(typed), readings_of("中国"))


def test_heteronyms_match_any_reading():
    """行 is xing and hang: both spell it."""
    readings = readings_of("行")
    assert spells("xing", readings) and spells("hang", readings)


def test_u_umlaut_is_typed_as_v():
    """绿 (lü) is typed lv; ü itself is accepted too."""
    assert spells(normalize_typed("lv"), readings_of("绿"))
    assert spells(normalize_typed("lü"), readings_of("绿"))


def test_non_han_words_and_non_letters_never_match():
    """Punctuation and Latin words have no readings; digits are not pinyin."""
    assert readings_of("，") is None and readings_of("abc") is None
    assert normalize_typed("zg1") == "" and normalize_typed("  ") == ""


def test_index_filters_ranked_ids_in_order():
    """filter keeps the ranking and stops at the limit."""
    words = ["<pad>", "<unk>", "<s>", "中国", "增高", "北京", "这个", "中"]
    index = PinyinIndex(words)
    assert set(index.candidates("zg")) == {3, 4, 6, 7}
    assert index.filter([6, 4, 3, 7], "zg", limit=2) == [6, 4]
    assert index.filter([7, 3, 5], "zhong", limit=5) == [7, 3]  # 中, and 中国 as "zhon g"
