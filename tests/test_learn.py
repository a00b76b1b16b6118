"""Tests for learning from the user."""

from __future__ import annotations

import json

import pytest

from input_method.learn import UserModel
from input_method.predict import Predictor


@pytest.fixture
def history(tmp_path):
    """Where the user's counts go in these tests."""
    return tmp_path / "user" / "history.json"


def test_learning_raises_the_users_words_and_persists(tiny_model_dir, history):
    """After learning a phrase, its next word ranks first; a new predictor reads the file."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    before = predictor.predict("我喜欢", 5)
    for _ in range(3):
        predictor.learn("我喜欢物流。")
    after = predictor.predict("我喜欢", 5)
    assert after[0][0] == "物流" and after != before
    assert history.is_file()
    reloaded = Predictor.load(tiny_model_dir, history=history)
    assert reloaded.predict("我喜欢", 5) == after
    assert reloaded.session().predict("我喜欢", 5)[0][0] == "物流"


def test_forget_restores_the_original_suggestions_exactly(tiny_model_dir, history):
    """forget() clears memory and disk; suggestions are bit-for-bit the untrained ones."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    original = predictor.predict("我今天", 5)
    predictor.learn("我今天物流物流。")
    assert predictor.predict("我今天", 5) != original
    predictor.forget()
    assert predictor.predict("我今天", 5) == original
    assert not history.exists()


def test_incognito_learns_and_writes_nothing(tiny_model_dir, history):
    """With learning off nothing changes and no file appears."""
    predictor = Predictor.load(tiny_model_dir, history=history, learning=False)
    original = predictor.predict("我喜欢", 5)
    predictor.learn("我喜欢物流。我喜欢物流。")
    assert predictor.predict("我喜欢", 5) == original
    assert not history.exists() and not history.parent.exists()


def test_corrupted_history_is_set_aside(tiny_model_dir, history):
    """A broken history file is moved aside with a warning; start-up goes on."""
    history.parent.mkdir(parents=True)
    history.write_text("{not json", encoding="utf-8")
    predictor = Predictor.load(tiny_model_dir, history=history)
    assert len(predictor.predict("我", 3)) == 3
    assert history.with_name("history.json.corrupt").is_file()


def test_history_size_is_bounded(tmp_path, tiny_model_dir):
    """Beyond max_entries bigrams the rarest are dropped."""
    vocab = Predictor.load(tiny_model_dir).vocab
    model = UserModel(vocab, tmp_path / "h.json", max_entries=5)
    model.learn([[f"词{i}" for i in range(40)]])
    assert len(model.bigrams) == 5
    assert len(json.loads((tmp_path / "h.json").read_text())["bigrams"]) == 5


def test_history_of_an_older_format_is_set_aside(tiny_model_dir, history):
    """A history of vocabulary ids (format 1) is not misread as words: it is moved aside."""
    history.parent.mkdir(parents=True)
    history.write_text(json.dumps({"bigrams": [[2, 5, 3]], "unigrams": [[5, 3]]}), encoding="utf-8")
    predictor = Predictor.load(tiny_model_dir, history=history)
    assert predictor.predict("我", 3) == Predictor.load(tiny_model_dir).predict("我", 3)
    assert history.with_name("history.json.corrupt").is_file()


def test_the_previous_word_counts_even_when_the_network_does_not_know_it(tiny_model_dir, history):
    """After a word outside the vocabulary the network sees <unk>; the user model sees the word."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    followers = {"犇犇犇": "今天", "骉骉骉": "物流"}  # both are <unk> to the network
    assert not set(followers) & set(predictor.vocab.stoi)
    for _ in range(3):
        for unknown, word in followers.items():
            predictor.learn(f"我{unknown}{word}。")
    for unknown, word in followers.items():
        assert predictor.predict(f"我{unknown}", 1)[0][0] == word
        assert predictor.session().predict(f"我{unknown}", 1)[0][0] == word


def test_a_short_history_does_not_flood_other_contexts(tiny_model_dir, history):
    """One learned sentence changes its own word pairs, not every context's suggestions."""
    predictor = Predictor.load(tiny_model_dir, history=history)
    before = predictor.predict("他们", 5)
    predictor.learn("我喜欢物流。")
    after = predictor.predict("他们", 5)
    assert "物流" not in {w for w, _ in before}
    assert {w for w, _ in after} == {w for w, _ in before}  # 物流 did not push in


def test_blended_probabilities_still_sum_to_one(tiny_model_dir, history):
    """The mixture is a distribution whatever the history holds."""
    import torch

    predictor = Predictor.load(tiny_model_dir, history=history)
    for text in ("我喜欢物流。", "我今天去北京。" * 5):
        predictor.learn(text)
        for prefix in ("我喜欢", "他们", "我今天去"):
            log_probs = predictor.next_word_log_probs(*predictor._context(prefix))
            assert abs(float(torch.logsumexp(log_probs, 0).exp()) - 1) < 1e-4
