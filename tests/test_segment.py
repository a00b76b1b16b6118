"""Tests for jieba segmentation and sentence splitting."""

from __future__ import annotations

from input_method.segment import Segmenter, current_sentence, segment_texts, split_sentences


def test_tokens_drop_whitespace():
    """Spaces between words never become tokens."""
    tokens = Segmenter().tokens("我今天 去北京")
    assert " " not in tokens and "".join(tokens) == "我今天去北京"


def test_split_sentences_keeps_closing_quotes_with_their_sentence():
    """A sentence ends after 。！？ and any closing quote that follows."""
    tokens = ["他", "说", "：", "“", "好", "。", "”", "我", "走", "了", "！", "再见"]
    assert split_sentences(tokens) == [["他", "说", "：", "“", "好", "。", "”"],
                                       ["我", "走", "了", "！"], ["再见"]]


def test_current_sentence_starts_after_the_last_end_mark():
    """After 。 (and a closing quote) the next word starts a new sentence."""
    assert current_sentence("我好。") == ("", True)
    assert current_sentence("他说：“好。”") == ("", True)
    assert current_sentence("我好。你") == ("你", True)
    assert current_sentence("我今天") == ("我今天", False)


def test_parallel_segmentation_matches_one_process():
    """Two worker processes give the same sentences, in the same order, as one."""
    texts = [f"我今天去北京。第{i}次来这里！" for i in range(50)]
    assert list(segment_texts(texts, workers=2, chunk_size=7)) == list(segment_texts(texts, workers=1))


def test_user_dictionary_changes_segmentation(tmp_path):
    """A user dictionary word is kept whole."""
    word = "喵喵输入法"
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{word} 100000 n\n", encoding="utf-8")
    assert word not in Segmenter().tokens(f"我用{word}打字")
    assert word in Segmenter(str(user_dict)).tokens(f"我用{word}打字")


def test_char_unit_cuts_chinese_words_but_keeps_numbers_and_latin_whole():
    """unit="char": 北京 -> 北 京; 2024 and iPhone stay one unit each."""
    from input_method.segment import to_units

    assert to_units(["我们", "在", "2024", "年", "买", "iPhone", "。"], "char") == [
        "我", "们", "在", "2024", "年", "买", "iPhone", "。"]
    assert to_units(["我们"], "word") == ["我们"]
    assert Segmenter(unit="char").tokens("我们去北京") == ["我", "们", "去", "北", "京"]


def test_an_unknown_unit_is_an_error():
    """A typo in the unit is a CorpusError, not a silent word model."""
    import pytest

    from input_method.errors import CorpusError

    with pytest.raises(CorpusError, match="unit"):
        Segmenter(unit="syllable")
