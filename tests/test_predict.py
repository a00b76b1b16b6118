"""Tests for the prediction engine."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from input_method.config import SPECIAL_TOKENS
from input_method.predict import MAX_PREFIX_CHARS, Predictor
from input_method.vocab import is_punctuation


@pytest.fixture(scope="module", params=["network", "mixed"])
def predictor(request, tiny_model_dir, tiny_mixed_model_dir):
    """The tiny model, loaded once: the network alone, then exported with a trigram mixed in
    (every test here holds for both)."""
    return Predictor.load(tiny_model_dir if request.param == "network" else tiny_mixed_model_dir)


def test_a_shipped_trigram_is_mixed_into_the_suggested_probabilities(tiny_mixed_model_dir):
    """With a trigram in the checkpoint, P(w) = (1 - λ) P_network(w) + λ P_trigram(w | last
    two ids), recomputed here from the two parts."""
    mixed = Predictor.load(tiny_mixed_model_dir)
    assert mixed.ngram is not None and mixed.ngram_weight == pytest.approx(0.3)
    ids = mixed.context_ids("我们喜欢")
    with torch.inference_mode():
        logits, _ = mixed.model(torch.tensor([ids]), last_only=True)
        network = torch.softmax(logits[0].float(), -1)
        trigram = mixed.ngram.log_probs(torch.tensor([ids[-2:]]))[0].exp()
    expected = 0.7 * network + 0.3 * trigram
    for word, prob in mixed.predict("我们喜欢", top_k=5):
        assert prob == pytest.approx(expected[mixed.vocab.stoi[word]].item(), rel=1e-4)
    assert not torch.allclose(expected, network)  # the trigram does change the distribution


@pytest.mark.parametrize("top_k", [1, 5, 9])
def test_predict_returns_exactly_top_k_sorted_probabilities(predictor, top_k):
    """top_k pairs, best first, probabilities in (0, 1], never a special token."""
    suggestions = predictor.predict("我今天", top_k=top_k)
    assert len(suggestions) == top_k
    probs = [p for _, p in suggestions]
    assert probs == sorted(probs, reverse=True)
    assert all(0 < p <= 1 for p in probs)
    assert not {w for w, _ in suggestions} & set(SPECIAL_TOKENS)


def test_punctuation_is_predicted_but_never_suggested(predictor):
    """After 我今天去北京 the model's likeliest next token is punctuation (。), yet the
    words, the session's words and the phrases offered hold none: it has its own keys."""
    prefix = "我今天去北京"
    log_probs = predictor.next_word_log_probs(predictor.context_ids(prefix))
    assert is_punctuation(predictor.vocab.itos[int(log_probs.argmax())])
    offered = [w for w, _ in predictor.predict(prefix, 9)]
    offered += [w for w, _ in predictor.session().predict(prefix, 9)]
    phrases = [w for w, _ in predictor.complete(prefix, 5)]
    assert len(offered) == 18 and phrases
    assert not any(is_punctuation(w) for w in offered)
    assert not any(is_punctuation(piece) for phrase in phrases
                   for piece in predictor.tokenize(phrase))


def test_probabilities_are_the_models_next_word_distribution(predictor):
    """The suggested probabilities are exp of the model's log-softmax for that context."""
    suggestions = predictor.predict("我们喜欢", top_k=3)
    log_probs = predictor.next_word_log_probs(predictor.context_ids("我们喜欢"))
    for word, prob in suggestions:
        assert prob == pytest.approx(log_probs[predictor.vocab.stoi[word]].exp().item())


def test_only_the_last_context_size_words_matter(predictor):
    """Text before the current sentence, or far back in it, does not change the answer."""
    assert predictor.predict("他说好。我今天", 5) == predictor.predict("我今天", 5)
    assert predictor.context_ids("我今天")[-3:] == predictor.context_ids("他说好。我今天")[-3:]


def test_sentence_start_after_end_mark(predictor):
    """After 。 the context is the start token, the same as an empty prefix."""
    assert predictor.context_ids("我今天去北京。") == predictor.context_ids("")


def test_odd_prefixes_do_not_raise(predictor):
    """Empty, spaces, punctuation, emoji, Latin and very long prefixes all get suggestions."""
    for prefix in ["", "   ", "。！？", "😀", "hello world", "\ud800我\udfff", "\x00\x1b[0m\t", "我們說繁體",
                   "ＡＢＣ１２３", "我" * (MAX_PREFIX_CHARS * 50)]:
        assert len(predictor.predict(prefix, 3)) == 3


def test_bad_top_k_is_a_value_error(predictor):
    """top_k must be a positive integer."""
    with pytest.raises(ValueError):
        predictor.predict("我", top_k=0)


def _same(a, b):
    assert [w for w, _ in a] == [w for w, _ in b]
    assert all(abs(p - q) < 1e-5 for (_, p), (_, q) in zip(a, b, strict=True))


def test_session_matches_stateless_predict_through_appends_backspaces_and_pastes(predictor):
    """Typing on, deleting, pasting and editing mid-text: the session equals predict() each time."""
    session = predictor.session()
    texts = ["", "我", "我今天", "我今天去", "我今天去北京", "我今天去北", "我今天",  # type, backspace
             "我今天去北京。他喜欢上海的天气", "他喜欢", "我们明天一起去公园吧！你今天",  # paste, cut
             "我们明天不去公园吧！你今天", "我" * 300 + "今天去北京"]  # edit in the middle, long
    for text in texts:
        _same(session.predict(text, 5), predictor.predict(text, 5))


def test_session_runs_only_the_new_words(predictor, monkeypatch):
    """After the first call, typing one more word runs the network on one new id."""
    session = predictor.session()
    session.predict("我", 3)  # <s> 我: the tiny model's context holds 3 ids
    calls = []
    original = predictor.model.features
    monkeypatch.setattr(predictor.model, "features",
                        lambda ids, state=None: calls.append(ids.shape[1]) or original(ids, state))
    session.predict("我今天", 3)
    assert calls == [1]


def test_session_runs_the_network_once_per_key_press_even_when_the_window_slides(
        predictor, monkeypatch):
    """Past the context size every word slides the window; the ids are run in one call, and
    a backspace after a pasted run goes back to the last kept state: still equal to predict()."""
    session = predictor.session()
    calls = []
    original = predictor.model.features
    monkeypatch.setattr(predictor.model, "features",
                        lambda ids, state=None: calls.append(ids.shape[1]) or original(ids, state))
    words = ["我", "今天", "去", "北京", "他", "喜欢", "上海"]

    def check(text: str) -> list[int]:
        expected = predictor.predict(text, 5)
        calls.clear()
        _same(session.predict(text, 5), expected)
        return list(calls)

    for end in range(1, len(words) + 1):
        assert len(check("".join(words[:end]))) == 1
    session.reset()
    assert check("".join(words[:2])) == [3]  # pasted: <s> 我 今天 in one run
    assert check("".join(words[:1])) == [2]  # no state kept inside that run: <s> 我 again


def test_pinyin_filter_returns_only_matching_words_ranked_by_the_model(predictor):
    """Every word returned is spelled by the letters, and in the model's order."""
    from input_method.pinyin import spells

    suggestions = predictor.predict("我今天", 5, pinyin="bj")
    assert suggestions and all(spells("bj", predictor.pinyin_index.readings[predictor.vocab.stoi[w]])
                               for w, _ in suggestions)
    assert "北京" in [w for w, _ in suggestions]
    probs = [p for _, p in suggestions]
    assert probs == sorted(probs, reverse=True)
    assert predictor.predict("我今天", 5, pinyin="xyz1") == []
    session = predictor.session()
    _same(session.predict("我今天", 5, pinyin="bj"), suggestions)


def test_a_first_ranking_picks_the_first_word_and_the_rest_keep_their_order(predictor):
    """top_words(first=...) puts the best word by ``first`` first (the best one the
    letters spell, with pinyin) and the others in the order of the distribution, every
    probability the distribution's."""
    log_probs = predictor.next_word_log_probs(predictor.context_ids("我今天"))
    plain = predictor.top_words(log_probs, 5)
    first = torch.full_like(log_probs, -math.inf)
    first[predictor.vocab.stoi[plain[3][0]]] = 0.0
    first[predictor.vocab.special_ids] = 1.0  # never suggested, so never first
    apart = predictor.top_words(log_probs, 5, first=first)
    assert apart == [plain[3], *plain[:3], plain[4]]

    spelled = predictor.top_words(log_probs, 5, pinyin="w")  # 我, 玩
    assert len(spelled) >= 2
    first[predictor.vocab.stoi[spelled[-1][0]]] = 0.5  # above plain[3], which "w" may not spell
    assert predictor.top_words(log_probs, 5, pinyin="w", first=first) == [
        spelled[-1], *spelled[:-1]]


def test_complete_returns_sorted_distinct_phrases_with_product_probabilities(predictor):
    """Each phrase's probability is the product of the step probabilities, recomputed here."""
    phrases = predictor.complete("我", top_k=5, max_words=2)
    assert len(phrases) == 5
    assert len({p for p, _ in phrases}) == 5
    probs = [p for _, p in phrases]
    assert probs == sorted(probs, reverse=True)
    for _text, prob in phrases:
        # Find the word split the beam used: the candidates whose product matches.
        context = predictor.context_ids("我")
        first_log_probs = predictor.next_word_log_probs(context)
        best = max(
            (first_log_probs[a].item() + predictor.next_word_log_probs([*context, a])[b].item())
            for a in range(3, len(predictor.vocab)) for b in range(3, len(predictor.vocab))
            if predictor.vocab.itos[a] + predictor.vocab.itos[b] == _text
        )
        assert abs(math.exp(best) - prob) < 1e-5


def test_session_complete_equals_complete_and_reuses_the_state_of_predict(predictor, monkeypatch):
    """The session's phrases equal Predictor.complete; after predict() on the same text the
    prefix is neither segmented nor run again (only the beam's steps, one word per beam,
    reach the network)."""
    session = predictor.session()
    for text in ["", "我", "我今天", "我今", "我今天去北京。他"]:
        assert session.complete(text, 4, max_words=3) == predictor.complete(text, 4, max_words=3)
    session.predict("我今天去", 3)
    calls = []
    original = predictor.model.features
    monkeypatch.setattr(predictor.model, "features",
                        lambda ids, state=None: calls.append(tuple(ids.shape)) or original(ids, state))
    segmented = []
    original_context = predictor._context
    monkeypatch.setattr(predictor, "_context",
                        lambda text: segmented.append(text) or original_context(text))
    phrases = session.complete("我今天去", 3, max_words=3)
    assert all(steps == 1 for _beams, steps in calls) and len(calls) == 2
    assert segmented == []  # the text predict() just segmented is not segmented again
    monkeypatch.undo()
    assert phrases == predictor.complete("我今天去", 3, max_words=3)


def test_complete_rejects_single_words(predictor):
    """max_words below 2 is a ValueError: single words come from predict."""
    with pytest.raises(ValueError):
        predictor.complete("我", max_words=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300), top_k=st.integers(1, 9))
def test_predict_never_raises_on_arbitrary_text(predictor, text, top_k):
    """Any text (control characters, surrogates, emoji, mixed scripts) gets top_k suggestions."""
    suggestions = predictor.predict(text, top_k)
    assert len(suggestions) == top_k
    assert all(0 < p <= 1 for _, p in suggestions)
