"""Tests for adapting the network to the user's text (fine-tuning a copy)."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from input_method.adapt import weights_fingerprint
from input_method.checkpoint import load_model
from input_method.config import AdaptConfig
from input_method.learn import UserModel
from input_method.predict import Predictor

FAST = AdaptConfig(epochs=20, learning_rate=1e-2)  # a few pieces: many quick epochs
TEXT = "我喜欢物流。" * 3


@pytest.fixture
def history(tmp_path):
    """Where the user's counts and adapted weights go in these tests."""
    return tmp_path / "user" / "history.json"


def _network_probability(predictor: Predictor, prefix: str, word: str) -> float:
    """P_network(word | prefix) without the count model."""
    ids = predictor.context_ids(prefix)
    logits, _ = predictor.model(torch.tensor([ids]), last_only=True)
    return torch.softmax(logits[0].float(), -1)[predictor.vocab.stoi[word]].item()


def test_adapt_moves_the_network_towards_the_users_text(tiny_model_dir, history):
    """After adapt() the network itself gives the learned continuation more probability."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    base = {k: v.clone() for k, v in predictor.base_model.state_dict().items()}
    before = _network_probability(predictor, "我喜欢", "物流")
    predictor.learn(TEXT)
    stats = predictor.adapt(FAST)
    assert stats["targets"] > 0 and predictor.adapted
    assert _network_probability(predictor, "我喜欢", "物流") > 2 * before
    for name, tensor in predictor.base_model.state_dict().items():  # the base is untouched
        assert torch.equal(tensor, base[name])


def test_adapted_weights_persist_for_the_same_model_only(tiny_model_dir, history):
    """A new predictor with the same model and history loads the adaptation; another model not."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    predictor.learn(TEXT)
    predictor.adapt(FAST)
    assert history.with_name("history.adapted.pt").is_file()
    reloaded = Predictor.load(tiny_model_dir, history=history)
    assert reloaded.adapted
    saved, live = reloaded.predict("我喜欢", 5), predictor.predict("我喜欢", 5)
    assert [w for w, _ in saved] == [w for w, _ in live]  # weights are saved in float16
    assert [p for _, p in saved] == pytest.approx([p for _, p in live], abs=1e-3)

    model, vocab, payload = load_model(tiny_model_dir, "cpu")
    with torch.no_grad():
        model.embedding.weight.add_(0.01)  # a retrained model: other weights
    other = Predictor(model, vocab, int(payload["context_size"]),
                      user_model=UserModel(vocab, history))
    assert not other.adapted


def test_forget_drops_the_adaptation(tiny_model_dir, history):
    """forget() after adapt() restores the original suggestions exactly and deletes the weights."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    original = predictor.predict("我今天", 5)
    predictor.learn(TEXT)
    predictor.adapt(FAST)
    assert predictor.predict("我今天", 5) != original
    predictor.forget()
    assert predictor.predict("我今天", 5) == original and not predictor.adapted
    assert not history.with_name("history.adapted.pt").exists()


def test_incognito_adapts_nothing_and_writes_nothing(tiny_model_dir, history):
    """With learning off, adapt() changes nothing and no file appears."""
    predictor = Predictor.load(tiny_model_dir, history=history, learning=False)
    original = predictor.predict("我喜欢", 5)
    predictor.learn(TEXT)
    assert predictor.adapt(FAST)["targets"] == 0
    assert predictor.predict("我喜欢", 5) == original
    assert not history.parent.exists()


def test_a_session_started_before_adapt_follows_the_adapted_network(tiny_model_dir, history):
    """Cached recurrent states of the old network are dropped when the network changes."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    session = predictor.session()
    session.predict("我喜欢", 5)
    predictor.learn(TEXT)
    predictor.adapt(FAST)
    assert session.predict("我喜欢", 5) == predictor.predict("我喜欢", 5)


def test_unreadable_adapted_weights_are_set_aside(tiny_model_dir, history):
    """A broken weights file is moved aside; the base network serves."""
    history.parent.mkdir(parents=True)
    history.with_name("history.adapted.pt").write_bytes(b"not a checkpoint")
    predictor = Predictor.load(tiny_model_dir, history=history)
    assert not predictor.adapted
    assert predictor.predict("我", 3) == Predictor.load(tiny_model_dir).predict("我", 3)
    assert history.with_name("history.adapted.pt.corrupt").is_file()


def test_history_keeps_only_the_most_recent_sentences(tmp_path, tiny_model_dir):
    """Sentences for adaptation are bounded by max_words, oldest dropped, and persisted."""
    vocab = Predictor.load(tiny_model_dir).vocab
    model = UserModel(vocab, tmp_path / "h.json", max_words=5)
    model.learn([["a", "b"], ["c", "d"], ["e", "f", "g"]])
    assert list(model.sentences) == [["c", "d"], ["e", "f", "g"]]
    assert json.loads((tmp_path / "h.json").read_text())["sentences"] == [["c", "d"],
                                                                          ["e", "f", "g"]]
    assert list(UserModel(vocab, tmp_path / "h.json", max_words=5).sentences) == list(model.sentences)


def test_fingerprint_tells_weights_apart(tiny_model_dir):
    """Equal weights give equal fingerprints; a changed weight another one."""
    model, _, _ = load_model(tiny_model_dir, "cpu")
    again, _, _ = load_model(tiny_model_dir, "cpu")
    assert weights_fingerprint(model) == weights_fingerprint(again)
    with torch.no_grad():
        again.embedding.weight[3, 0] += 1e-3
    assert weights_fingerprint(model) != weights_fingerprint(again)


def test_a_stopped_adaptation_changes_nothing(tiny_model_dir, history):
    """Setting stop (as the GUI does when it closes) ends adapt() with no swap and no file."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    predictor.learn(TEXT)
    before = predictor.predict("我喜欢", 5)
    stop = threading.Event()
    stop.set()
    assert predictor.adapt(FAST, stop=stop)["stopped"]
    assert not predictor.adapted and predictor.predict("我喜欢", 5) == before
    assert not history.with_name("history.adapted.pt").exists()


def test_adapting_starts_the_learned_weight_over_from_its_prior(tiny_model_dir, history):
    """λ's evidence was about the network before adapt(): afterwards λ is ADAPTED_BLEND again,
    also after a reload."""
    from input_method.learn import ADAPTED_BLEND

    predictor = Predictor.load(tiny_model_dir, history=history)
    for _ in range(10):
        predictor.learn("物流喜欢老师考试。")
    assert predictor.user_model.weight != ADAPTED_BLEND
    predictor.adapt(FAST)
    assert predictor.user_model.weight == ADAPTED_BLEND
    assert Predictor.load(tiny_model_dir, history=history).user_model.weight == ADAPTED_BLEND
