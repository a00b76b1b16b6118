"""What the GUI needs from a prediction engine, and nothing more."""

from __future__ import annotations

import re
import threading
from typing import Protocol

# Latin letters at the end of the text, right after Chinese (or alone): pinyin being typed.
_PINYIN_TAIL = re.compile(r"(?:(?<=[^\x00-\x7f])|^)[A-Za-z][A-Za-z']*$")


Suggestion = tuple[str, float]


class SuggestionSession(Protocol):
    """Suggestions for one text box (``input_method.TypingSession`` keeps the network's
    state of the text typed so far, so each key press runs only the new words)."""

    def predict(self, prefix: str, top_k: int = 5,
                pinyin: str | None = None) -> list[Suggestion]:
        """The ``top_k`` most likely next words after ``prefix``, best first.

        With ``pinyin``, only words those letters spell.
        """
        ...

    def complete(self, prefix: str, top_k: int = 5, max_words: int = 3) -> list[Suggestion]:
        """The ``top_k`` most likely continuations of 2 to ``max_words`` words, best first."""
        ...


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

    def session(self) -> SuggestionSession:
        """A new session for one text box."""
        ...


def suggest(session: SuggestionSession, prefix: str, pinyin: str, top_k: int,
            phrases: int) -> tuple[list[Suggestion], list[Suggestion]]:
    """The next words for the bar, and up to ``phrases`` phrases to show after them.

    Phrases are left out while pinyin is typed (the letters choose one word),
    where a phrase is already one of the words, and where it holds punctuation
    (``。”`` is a likely continuation, but nothing worth offering as a phrase).
    """
    words = session.predict(prefix, top_k, pinyin=pinyin or None)
    if pinyin or phrases <= 0:
        return words, []
    shown = {word for word, _ in words}
    completions = session.complete(prefix, 2 * phrases, max_words=3)  # spares for the left-out
    return words, [(text, prob) for text, prob in completions
                   if text not in shown and text.isalnum()][:phrases]


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
