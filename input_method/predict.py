"""The prediction engine: load a model once, suggest next words many times.

    prefix text ──tail──> jieba words ──current sentence──> [<s>] + words
    ──last context_size ids, left-padded──> model ──softmax──> top-k words

``<pad>``, ``<unk>`` and ``<s>`` are never suggested; probabilities are the
model's own (not renormalised after removing them).
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import torch

from input_method.checkpoint import load_model
from input_method.config import DEFAULT_MODEL_DIR
from input_method.corpus import clean_text
from input_method.model import NextWordModel
from input_method.segment import Segmenter, current_sentence
from input_method.vocab import Vocab

log = logging.getLogger(__name__)

# Only the end of a long prefix is segmented, so latency does not grow with
# the text typed so far; a sentence rarely matters further back than this.
MAX_PREFIX_CHARS = 200

Suggestion = tuple[str, float]


class Predictor:
    """Next-word suggestions from a trained model."""

    def __init__(self, model: NextWordModel, vocab: Vocab, context_size: int,
                 segmenter: Segmenter | None = None, name: str = "") -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.context_size = context_size
        self.segmenter = segmenter or Segmenter()
        self.name = name
        self._never = torch.tensor(vocab.special_ids)

    @classmethod
    def load(cls, model_dir: Path | str | None = None, user_dict: str | None = None) -> Predictor:
        """Load a model directory (or checkpoint file); no argument means the default model."""
        path = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        model, vocab, payload = load_model(path, "cpu")
        name = path.name if path.is_dir() else path.parent.name
        return cls(model, vocab, int(payload["context_size"]), Segmenter(user_dict), name)

    def tokenize(self, prefix: str) -> list[str]:
        """The words of the sentence being typed, start token first when it is in view."""
        tail = clean_text(prefix[-MAX_PREFIX_CHARS:])
        tokens = self.segmenter.tokens(tail)
        truncated = len(prefix) > MAX_PREFIX_CHARS
        if truncated and tokens:
            tokens = tokens[1:]  # the cut may have split the first word
        sentence = current_sentence(tokens)
        if truncated and len(sentence) == len(tokens):
            return sentence  # the sentence began before the visible tail
        return [self.vocab.itos[self.vocab.start_id], *sentence]

    def context_ids(self, prefix: str) -> list[int]:
        """The model input for ``prefix``: its last ``context_size`` ids (never padded)."""
        return self.vocab.encode(self.tokenize(prefix))[-self.context_size:]

    def next_word_log_probs(self, context_ids: list[int]) -> torch.Tensor:
        """log P(word | context) over the vocabulary: (V,)."""
        with torch.inference_mode():
            logits, _ = self.model(torch.tensor([context_ids]), last_only=True)  # (1, V)
            return torch.log_softmax(logits[0].float(), dim=-1)

    def predict(self, prefix: str, top_k: int = 5) -> list[Suggestion]:
        """The ``top_k`` most likely next words after ``prefix``, best first, with probabilities."""
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
        context = self.context_ids(prefix)
        with torch.inference_mode():
            log_probs = self.next_word_log_probs(context)
            log_probs[self._never] = -math.inf
            k = min(top_k, len(self.vocab) - len(self._never))
            values, indices = torch.topk(log_probs, k)
        pairs = zip(values.tolist(), indices.tolist(), strict=True)
        return [(self.vocab.itos[i], math.exp(v)) for v, i in pairs]


@functools.lru_cache(maxsize=1)
def _default_predictor() -> Predictor:
    return Predictor.load()


def predict_next_word(prefix: str, top_k: int = 5) -> list[Suggestion]:
    """Top-k next words for ``prefix`` from the default model (loaded on first use)."""
    return _default_predictor().predict(prefix, top_k)
