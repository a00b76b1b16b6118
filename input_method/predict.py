"""The prediction engine: load a model once, suggest next words many times.

    prefix text ──tail──> jieba words ──current sentence──> [<s>] + words
    ──last context_size ids──> model ──softmax──┬──> top-k words
    ──last two ids──> n-gram (if the model ships one, mixture.py) ──┘

``<pad>``, ``<unk>`` and ``<s>`` are never suggested; probabilities are the
model's own (not renormalised after removing them).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from input_method.adapt import adapt, load_adapted, save_adapted, weights_fingerprint
from input_method.checkpoint import load_model, load_neighbours, load_ngram
from input_method.config import DEFAULT_MODEL_DIR, AdaptConfig
from input_method.corpus import clean_text
from input_method.learn import ADAPTED_BLEND, BLEND, UserModel
from input_method.memory import CountModel
from input_method.mixture import ngram_context_ids
from input_method.model import NextWordModel, State
from input_method.neighbours import NeighbourMemory, default_cache_dir
from input_method.ngram import mix_log_probs
from input_method.pinyin import PinyinIndex, normalize_typed
from input_method.segment import Segmenter, current_sentence
from input_method.serving import ServingModel
from input_method.vocab import Vocab

log = logging.getLogger(__name__)

# Only the end of a long prefix is segmented, so latency does not grow with
# the text typed so far; a sentence rarely matters further back than this.
MAX_PREFIX_CHARS = 200
# A learned text's last sentences that teach the user model its weight λ (_observe).
WEIGHT_SENTENCES = 300

Suggestion = tuple[str, float]


class Predictor:
    """Next-word suggestions from a trained model."""

    def __init__(self, model: NextWordModel, vocab: Vocab, context_size: int,
                 segmenter: Segmenter | None = None, name: str = "",
                 user_model: UserModel | None = None, int8_output: bool = True,
                 ngram: CountModel | None = None, ngram_weight: float = 0.0,
                 neighbours: NeighbourMemory | None = None) -> None:
        self.base_model = model.eval()  # never changed; adapt() fine-tunes a copy
        self._int8_output = int8_output
        # The network as the engine runs it (serving.py): step-wise cells and,
        # unless int8_output=False, an int8 output layer.
        self.model = ServingModel(model, int8_output)
        self.vocab = vocab
        self.context_size = context_size
        self.segmenter = segmenter or Segmenter()
        self.name = name
        self.user_model = user_model if user_model is not None else UserModel(vocab, learning=False)
        self._never = torch.tensor(vocab.unsuggested_ids)  # specials and punctuation
        # The trigram shipped with the model, mixed into every distribution (mixture.py).
        self.ngram = ngram
        self.ngram_weight = ngram_weight if ngram is not None else 0.0
        # The neighbour memory (neighbours.py), if the model ships one: its states come
        # from the base network, so it is mixed in only while that network serves, and
        # only once built (it is built on a worker thread: a minute or two, or read
        # back from its cache).
        self.neighbours = neighbours
        self.adapted = False
        if self._adapted_path is not None and self._adapted_path.is_file():
            adapted = load_adapted(self._adapted_path, model, weights_fingerprint(model))
            if adapted is not None:
                self._serve(adapted, adapted=True)

    def _serve(self, network: NextWordModel, adapted: bool) -> None:
        """Switch the network suggestions come from (sessions notice and start over)."""
        self.user_model.prior_weight = ADAPTED_BLEND if adapted else BLEND
        self.model, self.adapted = ServingModel(network, self._int8_output), adapted

    @property
    def _adapted_path(self) -> Path | None:
        """Where adapted weights live: beside the history file (none without one)."""
        path = self.user_model.path
        return path.with_name(path.stem + ".adapted.pt") if path is not None else None

    @classmethod
    def load(cls, model_dir: Path | str | None = None, user_dict: str | None = None,
             history: Path | str | None = None, learning: bool = True,
             threads: int | None = None, int8_output: bool = True,
             cache_dir: Path | str | None = None) -> Predictor:
        """Load a model directory (or checkpoint file); no argument means the default model.

        ``history``: a file where :meth:`learn` keeps the user's word counts
        (``learn.default_history_path()`` is the usual place); without one,
        learning stays in memory. ``learning=False`` is incognito: nothing is
        learned or written. ``threads``: torch threads for this process; one is
        fastest for one prediction at a time (no waiting on a busy second core).
        ``int8_output=False`` serves the output layer in float32 (see serving.py).
        ``cache_dir``: where a neighbour memory's index is kept between loads
        (``neighbours.default_cache_dir()`` is the usual place); without one it is
        rebuilt at every load. Until it is built, suggestions come without it.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        path = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        model, vocab, payload = load_model(path, "cpu")
        name = path.name if path.is_dir() else path.parent.name
        user = UserModel(vocab, Path(history) if history is not None else None, learning)
        segmenter = Segmenter(user_dict, str(payload.get("unit", "word")))
        # A phrase memory's trigram is rebuilt on a worker thread while the engine
        # finishes loading (and a window opens); the first suggestion waits for it.
        ngram, weight = load_ngram(payload, background=True)
        # The neighbour memory's build (minutes) waits until loading is done and the
        # trigram rebuilt: sharing the GIL with them, it would slow both down.
        loaded = threading.Event()
        neighbours = load_neighbours(payload, model, ngram, background=True, cache_dir=cache_dir,
                                     after=lambda: (loaded.wait(), getattr(ngram, "trigram", None)))
        predictor = cls(model, vocab, int(payload["context_size"]), segmenter, name, user,
                        int8_output, ngram, weight, neighbours)
        loaded.set()
        return predictor

    def wait_until_ready(self) -> None:
        """Wait for what loading left building on worker threads (the trigram rebuilt from a
        phrase memory, the neighbour memory), so that suggestions from now on are the
        engine's settled ones: measurements call this first."""
        getattr(self.ngram, "trigram", None)
        if self.neighbours is not None:
            self.neighbours.wait()

    def learn(self, text: str) -> None:
        """Learn the user's word pairs from ``text`` (nothing when learning is off)."""
        self.learn_texts([text])

    def learn_texts(self, texts: Iterable[str]) -> int:
        """Learn many texts with one write of the history; return the words learned."""
        if not self.user_model.learning:
            return 0
        sentences = [words for text in texts
                     for words in self.segmenter.sentences(clean_text(text))]
        # λ learns from the last sentences (each scored before it is counted); the rest
        # of a long file is counted at once, which scoring every sentence would slow down.
        scored = sentences[-WEIGHT_SENTENCES:]
        if len(sentences) > len(scored):
            self.user_model.learn(sentences[:len(sentences) - len(scored)])
        for words in scored:
            self._observe(words)
            self.user_model.learn([words])
        return sum(len(words) for words in sentences)

    def _observe(self, words: list[str]) -> None:
        """Show the user model how the engine would have done on a sentence (λ's EM step).

        Only each word's own probability is needed, not whole distributions: the
        network runs once over the sentence from its start (all of it in view,
        where suggestions see the last ``context_size`` words) and, with an
        adaptive softmax, scores just the typed words in float32. This runs on the
        worker thread after every sentence, beside key presses.
        """
        ids = [self.vocab.start_id, *self.vocab.encode(words)]
        positions = [i for i, word_id in enumerate(ids[1:]) if word_id != self.vocab.unk_id]
        if not positions or not self.user_model:
            return
        network = self.model.model  # the float network now served (base or adapted)
        targets = torch.tensor([ids[i + 1] for i in positions])
        with torch.inference_mode():
            features, _ = network.features(torch.tensor([ids[:-1]]))  # (1, seq, hidden)
            probs = network.target_log_probs(features[0, positions], targets).exp()  # (targets,)
            if self.ngram is not None:  # mixed as distributions() mixes it
                contexts = torch.tensor([ngram_context_ids(ids[:i + 1], self.vocab.pad_id)
                                         for i in positions])
                ngram = self.ngram.probs(contexts).gather(1, targets[:, None])[:, 0]
                probs = (1 - self.ngram_weight) * probs + self.ngram_weight * ngram
            if self._neighbours_ready():
                assert self.neighbours is not None
                probs = self.neighbours.mix_targets(probs, features[0, positions], targets)
        previous = [self.vocab.itos[self.vocab.start_id], *words]
        self.user_model.observe(
            probs.tolist(),
            [self.user_model.user_probability(previous[i], ids[i + 1]) for i in positions])

    def adapt(self, config: AdaptConfig | None = None,
              stop: threading.Event | None = None) -> dict[str, Any]:
        """Fine-tune the network on the sentences learned so far (adapt.py), and use it.

        Starts from the base weights each time. Takes seconds to a minute
        (23,000 words: 45-57 s on one shared core): call it from a background
        thread in a GUI; the swap to the adapted network is one assignment, and
        sessions notice it. Does nothing when learning is off or nothing was
        learned, and changes nothing when ``stop`` is set before it finishes.
        """
        config = config or AdaptConfig()
        sentences = list(self.user_model.sentences)
        if not self.user_model.learning or not sentences:
            return {"pieces": 0, "targets": 0, "seconds": 0.0}
        ids = [[self.vocab.start_id, *self.vocab.encode(words)] for words in sentences]
        adapted, stats = adapt(self.base_model, ids, self.context_size, self.vocab.pad_id,
                               config, stop)
        if adapted is None:  # stopped
            return stats
        self._serve(adapted, adapted=True)
        # λ's evidence weighed the counts against the network before; it starts over
        # from ADAPTED_BLEND against this one.
        self.user_model.reset_weight()
        if self._adapted_path is not None:
            save_adapted(self._adapted_path, adapted, weights_fingerprint(self.base_model),
                         stats, config)
        return stats

    def forget(self) -> None:
        """Clear everything learned from the user, on disk too, and drop any adaptation."""
        self.user_model.forget()
        if self.adapted:
            self._serve(self.base_model, adapted=False)
        if self._adapted_path is not None:
            self._adapted_path.unlink(missing_ok=True)

    @property
    def learning(self) -> bool:
        """Whether :meth:`learn` learns (False: incognito)."""
        return self.user_model.learning

    @learning.setter
    def learning(self, on: bool) -> None:
        self.user_model.learning = on

    def tokenize(self, prefix: str) -> list[str]:
        """The words of the sentence being typed, start token first when it is in view."""
        truncated = len(prefix) > MAX_PREFIX_CHARS
        text, after_end_mark = current_sentence(clean_text(prefix[-MAX_PREFIX_CHARS:]))
        tokens = self.segmenter.tokens(text)
        if truncated and not after_end_mark:
            return tokens[1:]  # the sentence began before the tail; its first word may be cut
        return [self.vocab.itos[self.vocab.start_id], *tokens]

    def context_ids(self, prefix: str) -> list[int]:
        """The model input for ``prefix``: its last ``context_size`` ids (never padded)."""
        return self._context(prefix)[0]

    def _context(self, prefix: str) -> tuple[list[int], str]:
        """``context_ids(prefix)`` and the last word as typed (``<unk>`` shows only the ids)."""
        tokens = self.tokenize(prefix)
        ids = self.vocab.encode(tokens)[-self.context_size:]
        if not ids:
            return [self.vocab.start_id], self.vocab.itos[self.vocab.start_id]
        return ids, tokens[-1]

    def next_word_log_probs(self, context_ids: list[int], previous: str | None = None,
                            ) -> torch.Tensor:
        """log P(word | context) over the vocabulary, user model blended in: (V,).

        ``previous`` is the last word as typed (default: the word of the last id).
        """
        return self._next_word_rankings(context_ids, previous, first=False)[0]

    def _next_word_rankings(self, context_ids: list[int], previous: str | None, first: bool
                            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`next_word_log_probs`, and with ``first`` what the first suggestion is
        ranked by (:meth:`rankings`), the user model blended into both."""
        if previous is None:
            previous = self.vocab.itos[context_ids[-1]]
        with torch.inference_mode():
            model = self.model  # read once: adapt() may swap it from another thread
            features, _ = model.features(torch.tensor([context_ids]))  # (1, seq, hidden)
            last = features[:, -1]  # (1, hidden)
            contexts = [ngram_context_ids(context_ids, self.vocab.pad_id)]
            return self._blended(*self._mixtures(model.logits(last), contexts, last, first),
                                 previous)

    def _blended(self, log_probs: torch.Tensor, first: torch.Tensor | None, previous: str
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Row 0 of both rankings with the user model blended in."""
        return (self.user_model.blend(log_probs[0], previous),
                None if first is None else self.user_model.blend(first[0], previous))

    def distributions(self, logits: torch.Tensor, contexts: list[list[int]],
                      states: torch.Tensor | None = None) -> torch.Tensor:
        """The model's log-distributions from the network's ``logits`` (batch, V), each
        row's last context ids (``mixture.ngram_context_ids``) and the network's
        ``states`` (batch, hidden) they came from: the shipped n-gram and neighbour
        memory are mixed in here, nowhere else."""
        return self._mixtures(logits, contexts, states, first=False)[0]

    def rankings(self, logits: torch.Tensor, contexts: list[list[int]], states: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`distributions`, and the log-distributions the first suggestion is
        ranked by where the neighbour memory ranks it apart (its own κ and T,
        ``NeighbourSettings.first_weight``), else None."""
        return self._mixtures(logits, contexts, states, first=True)

    def _mixtures(self, logits: torch.Tensor, contexts: list[list[int]],
                  states: torch.Tensor | None, first: bool
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # (batch, V)
        if self.ngram is not None:
            log_probs = mix_log_probs(log_probs, self.ngram.probs(torch.tensor(contexts)),
                                      self.ngram_weight)
        if states is None or not self._neighbours_ready():
            return log_probs, None
        assert self.neighbours is not None
        if first:
            return self.neighbours.mix_first(log_probs, states)
        return self.neighbours.mix(log_probs, states), None

    def _neighbours_ready(self) -> bool:
        """Whether the neighbour memory is built and fits the network now served."""
        return (self.neighbours is not None and not self.adapted
                and self.neighbours.available())

    def predict(self, prefix: str, top_k: int = 5, pinyin: str | None = None) -> list[Suggestion]:
        """The ``top_k`` most likely next words after ``prefix``, best first, with probabilities.

        With ``pinyin`` (letters typed so far: ``"zg"``, ``"zhongguo"``, ``"zhong g"``)
        only words those letters spell are returned, still ranked by the model.
        """
        _check_top_k(top_k)
        log_probs, first = self._next_word_rankings(*self._context(prefix), first=True)
        return self.top_words(log_probs, top_k, pinyin, first)

    @functools.cached_property
    def pinyin_index(self) -> PinyinIndex:
        """Readings of the vocabulary, built on the first pinyin query (about a second)."""
        return PinyinIndex(self.vocab.itos)

    def top_words(self, log_probs: torch.Tensor, top_k: int, pinyin: str | None = None,
                  first: torch.Tensor | None = None) -> list[Suggestion]:
        """The best ``top_k`` words of a (V,) log-distribution, specials left out.

        ``first`` (V,): scores the first word is chosen by instead (:meth:`rankings`);
        the others follow in the order of ``log_probs``. Every probability shown is
        the one ``log_probs`` gives, so the first may show less than the second.
        """
        if pinyin is not None:
            return self._top_pinyin_words(log_probs, top_k, normalize_typed(pinyin), first)
        with torch.inference_mode():
            log_probs = log_probs.clone()
            log_probs[self._never] = -math.inf
            k = min(top_k, len(self.vocab) - len(self._never))
            indices = torch.topk(log_probs, k).indices.tolist()
            if first is not None:
                chosen = first.clone()
                chosen[self._never] = -math.inf
                best = int(chosen.argmax())
                indices = [best, *(i for i in indices if i != best)][:k]
        return [(self.vocab.itos[i], math.exp(float(log_probs[i]))) for i in indices]

    def _top_pinyin_words(self, log_probs: torch.Tensor, top_k: int, typed: str,
                          first: torch.Tensor | None) -> list[Suggestion]:
        candidates = self.pinyin_index.candidates(typed) if typed else []
        if not candidates:
            return []  # no letters, or letters no word starts with
        with torch.inference_mode():
            ids = torch.tensor(candidates)
            ranked = ids[torch.argsort(log_probs[ids], descending=True)].tolist()
            if first is not None:  # the best word ``typed`` spells, by ``first``, leads
                lead = self.pinyin_index.filter(
                    ids[torch.argsort(first[ids], descending=True)].tolist(), typed, 1)
                ranked = [*lead, *(i for i in ranked if i not in lead)]
        chosen = self.pinyin_index.filter(ranked, typed, top_k)
        return [(self.vocab.itos[i], math.exp(float(log_probs[i]))) for i in chosen]

    def complete(self, prefix: str, top_k: int = 5, max_words: int = 3,
                 beam_width: int = 0) -> list[Suggestion]:
        """Multi-word continuations (2 to ``max_words`` words) by beam search, best first.

        Each phrase's probability is the product of the model's probabilities
        of its words, one after the other; phrases are distinct.
        """
        _check_top_k(top_k)
        model = self.model
        ids = self.context_ids(prefix)
        with torch.inference_mode():
            features, state = model.features(torch.tensor([ids]))
        return self._phrases(model, features[:, -1], state, ids, top_k, max_words, beam_width)

    def _phrases(self, model: ServingModel, last: torch.Tensor, state: State,
                 context_ids: list[int], top_k: int, max_words: int,
                 beam_width: int) -> list[Suggestion]:
        """Beam search from the network's output ``last`` (1, hidden) and its ``state``
        after ``context_ids``."""
        if max_words < 2:
            raise ValueError("max_words must be at least 2 (single words: use predict)")
        width = beam_width or max(2 * top_k, 8)
        vocab_size = len(self.vocab)
        phrases: list[tuple[float, list[int]]] = []
        with torch.inference_mode():
            scores = torch.zeros(1)  # (beams,) joint log-probability so far
            paths: list[list[int]] = [[]]
            pad = self.vocab.pad_id
            for depth in range(max_words):
                before = [ngram_context_ids(context_ids + path, pad) for path in paths]
                log_probs = self.distributions(model.logits(last), before, last)  # (beams, V)
                log_probs[:, self._never] = -math.inf
                total = (scores[:, None] + log_probs).flatten()
                scores, flat = torch.topk(total, min(width, len(total)))
                rows, words = flat // vocab_size, flat % vocab_size
                paths = [paths[r] + [w] for r, w in zip(rows.tolist(), words.tolist(), strict=True)]
                if depth >= 1:
                    phrases.extend(zip(scores.tolist(), paths, strict=True))
                if depth == max_words - 1:
                    break
                state = _select_state(state, rows)
                features, state = model.features(words[:, None], state)  # (beams, 1, hidden)
                last = features[:, -1]
        phrases.sort(key=lambda item: -item[0])
        return [("".join(self.vocab.decode(path)), math.exp(score))
                for score, path in phrases[:top_k]]

    def session(self) -> TypingSession:
        """A new incremental session for one text box."""
        return TypingSession(self)


def _select_state(state: State, rows: torch.Tensor) -> State:
    """Keep the recurrent state of the beams in ``rows`` (batch is dimension 1)."""
    if isinstance(state, tuple):
        return (state[0][:, rows], state[1][:, rows])
    return state[:, rows]


def _check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, not {top_k!r}")


class TypingSession:
    """Suggestions while one text is typed, reusing the work done for the last call.

    It keeps the recurrent state after the words of the current context. On
    the next call only the words after the longest common prefix with the
    previous context are run, in one call of the network: one step per new
    word when typing on, a few after a backspace or an edit, all of them after
    a paste, a new sentence, or once the sentence is longer than the context
    (the window then slides by a word and starts from a fresh state, exactly
    as the stateless ``predict`` does).

        previous context   <s> 我 今天 去
        new context        <s> 我 今天 不 去     common prefix 3 -> run 不, 去

    States are kept at the last word of each run, so a backspace goes back to
    the nearest kept state and runs the few words after it again.
    The answer equals :meth:`Predictor.predict` for the same text.
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self._ids: list[int] = []
        self._states: list[State | None] = []  # None: inside a run, not kept
        self._last: torch.Tensor | None = None  # the network's output after all of _ids
        self._prefix: str | None = None  # the text _ids came from, and its last word
        self._previous = ""
        self._model = predictor.model  # the network the states came from

    def reset(self) -> None:
        """Forget the cached context."""
        self._ids, self._states, self._last, self._prefix = [], [], None, None

    def predict(self, prefix: str, top_k: int = 5, pinyin: str | None = None) -> list[Suggestion]:
        """The same suggestions as ``Predictor.predict(prefix, top_k, pinyin)``, incrementally."""
        _check_top_k(top_k)
        model, last, _, previous = self._advance(prefix)
        predictor = self.predictor
        with torch.inference_mode():
            before = ngram_context_ids(self._ids, predictor.vocab.pad_id)
            log_probs, first = predictor._blended(  # (V,) each
                *predictor.rankings(model.logits(last), [before], last), previous)
        return predictor.top_words(log_probs, top_k, pinyin, first)

    def complete(self, prefix: str, top_k: int = 5, max_words: int = 3,
                 beam_width: int = 0) -> list[Suggestion]:
        """The same phrases as ``Predictor.complete``, from the state kept for ``prefix``."""
        _check_top_k(top_k)
        model, last, state, _ = self._advance(prefix)
        return self.predictor._phrases(model, last, state, list(self._ids), top_k, max_words,
                                       beam_width)

    def _advance(self, prefix: str) -> tuple[ServingModel, torch.Tensor, State, str]:
        """Run the words of ``prefix`` not run before: the network, its last output
        (1, hidden), the state after the context, and the last word as typed."""
        model = self.predictor.model  # read once: adapt() may swap it from another thread
        if model is not self._model:  # adapted or forgotten since: the states are stale
            self.reset()
            self._model = model
        if prefix == self._prefix and self._last is not None:  # complete() after predict():
            return model, self._last, self._states[-1], self._previous  # no second jieba pass
        ids, previous = self.predictor._context(prefix)
        self._prefix, self._previous = prefix, previous
        if ids == self._ids and self._last is not None:  # same words, other text
            return model, self._last, self._states[-1], previous
        common = 0
        for cached, new in zip(self._ids, ids, strict=False):
            if cached != new:
                break
            common += 1
        if common == len(ids):  # same context as a longer one seen before: step back
            common -= 1
        del self._ids[common:], self._states[common:]
        while self._states and self._states[-1] is None:  # back to the last kept state
            self._ids.pop()
            self._states.pop()
        start = len(self._ids)
        state = self._states[-1] if self._states else None
        new_ids = ids[start:]
        with torch.inference_mode():
            features, state = model.features(torch.tensor([new_ids]), state)
        self._ids.extend(new_ids)  # features: (1, new words, hidden)
        self._states.extend([None] * (len(new_ids) - 1) + [state])
        self._last = features[:, -1]
        return model, self._last, state, previous


@functools.lru_cache(maxsize=1)
def _default_predictor() -> Predictor:
    return Predictor.load(cache_dir=default_cache_dir())


def predict_next_word(prefix: str, top_k: int = 5) -> list[Suggestion]:
    """Top-k next words for ``prefix`` from the default model (loaded on first use)."""
    return _default_predictor().predict(prefix, top_k)
