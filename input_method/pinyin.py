"""Pinyin filtering: which vocabulary words the letters typed so far can spell.

Typed letters match a word when every character of the word is spelled by
the start of one of its readings, in order, using up all the letters:

    zg        中国 (zhong guo)      initials
    zhongguo  中国                  full syllables
    zhongg    中国                  a partial last syllable
    zhong g   中国                  a space or ' marks a syllable boundary
    xing/hang 行                    heteronyms: any reading
    lv        绿 (lü)               ü is typed as v

Readings come from pypinyin, tone-less, computed once for the whole
vocabulary (lazily, on the first pinyin query); words are bucketed by the
first letter of their first syllable, so a query only ever tests one bucket,
in the language model's order, until it has enough matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pypinyin import Style, pinyin

Readings = tuple[tuple[str, ...], ...]  # per character, its possible syllables

_HAN_ONLY = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff]+$")
_TYPED = re.compile(r"^[a-zv' ]+$")


def normalize_typed(typed: str) -> str:
    """Lower-case, ü as v, spaces as boundary marks ('); '' if not pinyin at all."""
    text = typed.strip().lower().replace("ü", "v").replace("u:", "v")
    text = re.sub(r"[ ']+", "'", text)
    return text if text and _TYPED.match(text) and any(c.isalpha() for c in text) else ""


def readings_of(word: str) -> Readings | None:
    """Tone-less readings per character, or None for a word that is not all Han characters."""
    if not _HAN_ONLY.match(word):
        return None
    syllables = pinyin(word, style=Style.NORMAL, heteronym=True, errors="ignore")
    if len(syllables) != len(word):
        return None
    return tuple(tuple(dict.fromkeys(s.replace("ü", "v") for s in options)) for options in syllables)


def spells(typed: str, readings: Readings, pos: int = 0, index: int = 0) -> bool:
    """Whether normalised ``typed`` (from ``pos``) spells the characters from ``index`` on."""
    if index == len(readings):
        return pos == len(typed)
    while pos < len(typed) and typed[pos] == "'":
        pos += 1
    if pos == len(typed):
        return False  # every character needs at least one letter
    for syllable in readings[index]:
        n = 0
        while n < len(syllable) and pos + n < len(typed) and typed[pos + n] == syllable[n]:
            n += 1
            if spells(typed, readings, pos + n, index + 1):
                return True
    return False


class PinyinIndex:
    """Readings of every vocabulary word, bucketed by their first letter."""

    def __init__(self, words: Sequence[str]) -> None:
        self.readings: list[Readings | None] = [readings_of(w) for w in words]
        self.by_letter: dict[str, list[int]] = {}
        for word_id, readings in enumerate(self.readings):
            if readings is None:
                continue
            for letter in {s[0] for s in readings[0]}:
                self.by_letter.setdefault(letter, []).append(word_id)

    def candidates(self, typed: str) -> list[int]:
        """Ids that might match: those whose first syllable starts with the first letter."""
        return self.by_letter.get(typed.lstrip("'")[:1], [])

    def matches(self, word_id: int, typed: str) -> bool:
        """Whether word ``word_id`` is spelled by normalised ``typed``."""
        readings = self.readings[word_id]
        return readings is not None and spells(typed, readings)

    def filter(self, ranked_ids: Iterable[int], typed: str, limit: int) -> list[int]:
        """The first ``limit`` ids of ``ranked_ids`` that ``typed`` spells."""
        found = []
        for word_id in ranked_ids:
            if self.matches(word_id, typed):
                found.append(word_id)
                if len(found) == limit:
                    break
        return found
