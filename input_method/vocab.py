"""The word vocabulary: special tokens first, then words by falling frequency."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

from input_method.atomic import atomic_write_text
from input_method.config import PAD_TOKEN, SPECIAL_TOKENS, START_TOKEN, UNK_TOKEN
from input_method.errors import CheckpointError

_LETTER_OR_DIGIT = re.compile(r"[^\W_]")  # \w without "_": Unicode letters and digits


def is_punctuation(token: str) -> bool:
    """True for a token of punctuation or symbols only, no letter and no digit (，。——《)."""
    return _LETTER_OR_DIGIT.search(token) is None


class Vocab:
    """Maps words to ids and back. Ids 0, 1, 2 are ``<pad>``, ``<unk>``, ``<s>``."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise CheckpointError(f"vocabulary must start with {', '.join(SPECIAL_TOKENS)}")
        if len(set(tokens)) != len(tokens):
            raise CheckpointError("vocabulary has duplicate tokens")
        self.itos: list[str] = list(tokens)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.pad_id = self.stoi[PAD_TOKEN]
        self.unk_id = self.stoi[UNK_TOKEN]
        self.start_id = self.stoi[START_TOKEN]

    @classmethod
    def build(cls, counts: Counter[str], min_freq: int = 1, max_size: int = 0) -> Vocab:
        """Keep words seen at least ``min_freq`` times, the most frequent first.

        ``max_size`` counts the special tokens too; 0 means no limit. Ties are
        broken by the word itself so the vocabulary is reproducible.
        """
        words = [w for w, c in counts.items() if c >= min_freq and w not in SPECIAL_TOKENS]
        words.sort(key=lambda w: (-counts[w], w))
        if max_size:
            words = words[: max(0, max_size - len(SPECIAL_TOKENS))]
        return cls(list(SPECIAL_TOKENS) + words)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown words become ``<unk>``."""
        unk = self.unk_id
        return [self.stoi.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of ``ids``."""
        return [self.itos[i] for i in ids]

    @property
    def special_ids(self) -> list[int]:
        """Ids of the special tokens: never a word, never ranked as one."""
        return [self.stoi[t] for t in SPECIAL_TOKENS]

    @cached_property
    def unsuggested_ids(self) -> list[int]:
        """Ids the suggestion bar never shows: the special tokens and punctuation.

        Punctuation has its own keys, so a slot holding ，or 。 saves no typing
        and hides a word that might have (input methods' prediction bars offer
        words only). The language model still predicts punctuation: it is part
        of every context and of the perplexity.
        """
        return self.special_ids + [i for i, token in enumerate(self.itos)
                                   if token not in SPECIAL_TOKENS and is_punctuation(token)]

    def fingerprint(self) -> str:
        """A short hash of the token list; a checkpoint records the one it was trained with."""
        digest = hashlib.sha256("\n".join(self.itos).encode("utf-8")).hexdigest()
        return digest[:16]

    def save(self, path: Path | str) -> None:
        """Write the vocabulary as JSON (atomically)."""
        payload = {"tokens": self.itos, "fingerprint": self.fingerprint()}
        atomic_write_text(Path(path), json.dumps(payload, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path | str) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(payload["tokens"])
        except FileNotFoundError:
            raise CheckpointError(f"vocabulary not found: {path}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"vocabulary {path} is unreadable: {exc}") from None
