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
    predictor.learn("我今天物流。")  # a journal line beside the file
    predictor.forget()
    assert predictor.predict("我今天", 5) == original
    assert not history.exists()
    assert not history.with_name("history.json.journal").exists()


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


# Sentences over a small vocabulary, so that pairs repeat and the bound is reached.
LEARNED = [["我", "喜欢", "物流"], ["我", "今天", "去", "北京"], ["他", "喜欢", "北京"],
           ["我们", "今天", "去", "上海"], ["物流", "很快"], ["我", "喜欢", "上海", "的", "天气"]]


def _blends(model: UserModel, vocab_size: int) -> list:
    """The user model's mixture for a fixed network distribution after several previous words."""
    import torch

    log_probs = torch.log_softmax(torch.linspace(-2, 2, vocab_size), 0)
    previous_words = ["<s>", "无", *sorted({word for words in LEARNED for word in words})]
    return [model.blend(log_probs, previous) for previous in previous_words]


def test_learning_sentence_by_sentence_equals_reading_the_history_afresh(tmp_path, tiny_model_dir):
    """Re-indexing only the touched words (pruning included) gives what a full rebuild gives."""
    import torch

    vocab = Predictor.load(tiny_model_dir).vocab
    model = UserModel(vocab, tmp_path / "h.json", max_entries=8)
    # The first sentences' pairs are dropped later, while the later ones are learned:
    # the words before them are re-indexed although no new sentence touched them.
    for i in range(30):
        model.learn([LEARNED[i % 2 + (3 if i >= 10 else 0)]])
        assert len(model.bigrams) <= 8 + 8 // 10
    model.save()  # a snapshot alone: reading it re-indexes everything at once
    fresh = UserModel(vocab, tmp_path / "h.json", max_entries=8)
    assert fresh.bigrams == model.bigrams and fresh.unigrams == model.unigrams
    for incremental, rebuilt in zip(_blends(model, len(vocab)), _blends(fresh, len(vocab)), strict=True):
        assert torch.allclose(incremental, rebuilt, atol=1e-6)


def test_a_learned_sentence_is_a_journal_line_not_a_new_snapshot(tmp_path, tiny_model_dir):
    """After the first learn() the snapshot stays as it is; reading folds the journal in."""
    vocab = Predictor.load(tiny_model_dir).vocab
    path = tmp_path / "h.json"
    model = UserModel(vocab, path)
    model.learn([LEARNED[0]])
    snapshot = path.read_bytes()
    model.learn([LEARNED[1]])
    model.learn([LEARNED[2]])
    journal = path.with_name("h.json.journal")
    assert path.read_bytes() == snapshot
    assert len(journal.read_text(encoding="utf-8").splitlines()) == 2
    reread = UserModel(vocab, path)
    assert reread.bigrams == model.bigrams and list(reread.sentences) == list(model.sentences)
    assert not journal.exists() and json.loads(path.read_text())["generation"] == 2


def test_journal_lines_already_in_the_snapshot_are_not_counted_twice(tmp_path, tiny_model_dir):
    """A crash between writing the new snapshot and removing the journal double-counts nothing."""
    vocab = Predictor.load(tiny_model_dir).vocab
    path = tmp_path / "h.json"
    model = UserModel(vocab, path)
    for words in LEARNED:
        model.learn([words])
    journal = path.with_name("h.json.journal")
    leftover = journal.read_text(encoding="utf-8")
    UserModel(vocab, path)  # folds the journal into a new snapshot
    journal.write_text(leftover, encoding="utf-8")  # as if the unlink never happened
    assert UserModel(vocab, path).bigrams == model.bigrams


def test_a_torn_journal_line_is_skipped(tmp_path, tiny_model_dir, caplog):
    """A line cut short by a crash is skipped with a warning; the others count."""
    vocab = Predictor.load(tiny_model_dir).vocab
    path = tmp_path / "h.json"
    model = UserModel(vocab, path)
    model.learn([LEARNED[0]])
    model.learn([LEARNED[1]])
    journal = path.with_name("h.json.journal")
    with open(journal, "a", encoding="utf-8") as handle:
        handle.write('{"generation": 1, "sentences": [["我", "喜')
    reread = UserModel(vocab, path)
    assert reread.bigrams == model.bigrams
    assert "unreadable line skipped" in caplog.text


def test_a_full_history_still_learns_a_new_phrase(tmp_path, tiny_model_dir):
    """With the bound reached by pairs seen many times, a phrase typed once is kept, not dropped."""
    vocab = Predictor.load(tiny_model_dir).vocab
    model = UserModel(vocab, tmp_path / "h.json", max_entries=10)
    for _ in range(5):
        for words in LEARNED[:4]:
            model.learn([words])
    assert len(model.bigrams) >= 10  # full of pairs counted five times
    model.learn([["物流", "很快"]])
    assert model.bigrams["物流", "很快"] == 1
    model.learn([["物流", "很快"]])
    assert model.bigrams["物流", "很快"] == 2 and len(model.bigrams) <= 11


def test_a_character_cut_in_two_loses_only_its_line(tmp_path, tiny_model_dir):
    """A journal ending in half a UTF-8 character still loads; the whole lines count."""
    vocab = Predictor.load(tiny_model_dir).vocab
    path = tmp_path / "h.json"
    model = UserModel(vocab, path)
    model.learn([LEARNED[0]])
    model.learn([LEARNED[1]])
    with open(path.with_name("h.json.journal"), "ab") as handle:
        handle.write('{"generation": 1, "sentences": [["物'.encode()[:-1])
    assert UserModel(vocab, path).bigrams == model.bigrams


def test_the_weight_follows_what_the_users_typing_shows(tmp_path, tiny_model_dir):
    """λ falls when the network already gives the user's words more than the counts do, and
    rises when the counts explain them better; it stays within WEIGHT_RANGE."""
    from input_method.learn import BLEND, WEIGHT_RANGE

    vocab = Predictor.load(tiny_model_dir).vocab
    own_domain, new_domain = UserModel(vocab), UserModel(vocab)
    for _ in range(50):
        own_domain.observe([0.5] * 20, [(0.01, 0.9)] * 20)
        new_domain.observe([0.001] * 20, [(0.5, 0.9)] * 20)
    assert WEIGHT_RANGE[0] <= own_domain.weight < BLEND / 2
    assert BLEND < new_domain.weight <= WEIGHT_RANGE[1]


def test_the_learned_weight_is_kept_with_the_history_and_forgotten_with_it(tmp_path, tiny_model_dir):
    """λ's evidence survives a reload (journal, then snapshot); forget() returns to the prior."""
    from input_method.learn import BLEND

    vocab = Predictor.load(tiny_model_dir).vocab
    path = tmp_path / "h.json"
    model = UserModel(vocab, path)
    model.learn([LEARNED[0]])
    model.observe([0.5] * 40, [(0.01, 0.9)] * 40)
    model.learn([LEARNED[1]])  # the journal line carries the evidence
    assert model.weight < BLEND
    assert UserModel(vocab, path).weight == model.weight  # from the journal
    assert UserModel(vocab, path).weight == model.weight  # from the snapshot it was folded into
    model.forget()
    assert model.weight == BLEND


def test_learning_a_phrase_the_network_does_not_expect_raises_the_weight(tiny_model_dir, history):
    """Predictor.learn scores each sentence before counting it: repeating a phrase the
    network finds unlikely shows the counts are worth more, and λ rises."""
    from input_method.learn import BLEND

    predictor = Predictor.load(tiny_model_dir, history=history)
    for _ in range(30):
        predictor.learn("物流喜欢老师考试。")
    assert predictor.user_model.weight > BLEND
