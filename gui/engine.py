"""What the GUI needs from a prediction engine, and nothing more."""

from __future__ import annotations

import re
import threading
from typing import Protocol

# Latin letters at the end of the text, right after Chinese (or alone): pinyin being typed.
_PINYIN_TAIL = re.compile(r"(?:(?<=[^\x00-\x7f])|^)[A-Za-z][A-Za-z']*$")


class SuggestionEngine(Protocol):
    """Anything that suggests next words; ``input_method.Predictor`` is one."""

    name: str
    learning: bool  # False: incognito, learn() does nothing

    def learn(self, text: str) -> None:
        """Learn from text the user finished typing."""
        ...

    def forget(self) -> None:
        """Clear everything learned."""
        ...

    def adapt(self, config: None = None, stop: threading.Event | None = None) -> dict:
        """Fine-tune the model on what was learned (up to a minute); ``targets``: words used.

        Called on its own thread; setting ``stop`` ends it early, changing nothing.
        """
        ...

    def predict(self, prefix: str, top_k: int = 5,
                pinyin: str | None = None) -> list[tuple[str, float]]:
        """The ``top_k`` most likely next words after ``prefix``, best first.

        With ``pinyin``, only words those letters spell.
        """
        ...


def finished_sentence(text: str) -> str | None:
    """The sentence ``text`` just finished with 。！？!?, or None if it did not just end one."""
    if not text or text[-1] not in "。！？!?":
        return None
    start = max(text.rfind(mark, 0, len(text) - 1) for mark in "。！？!?\n") + 1
    return text[start:].strip() or None


def split_pinyin(text: str) -> tuple[str, str]:
    """``("我今天", "qu")`` for ``"我今天qu"``; ``(text, "")`` when no pinyin is being typed."""
    match = _PINYIN_TAIL.search(text)
    if match is None:
        return text, ""
    return text[: match.start()], match.group(0)
