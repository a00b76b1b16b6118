"""Tests for the suggestion box, offscreen, with a fake engine and a tiny real model."""

from __future__ import annotations

import threading

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QInputMethodEvent, QTextCursor
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication

from gui.window import MainWindow


class FakeEngine:
    """Suggests the words 甲 乙 丙 … and the phrases 子丑 寅卯 …, tagged with the prefix
    length so staleness shows; it is its own session."""

    name = "fake"

    def __init__(self) -> None:
        self.prefixes: list[str] = []
        self.pinyin: list[str | None] = []
        self.learned: list[str] = []
        self.learning = True
        self.forgotten = 0
        self.adaptations = 0
        self.sessions = 0
        self.completed: list[str] = []

    def session(self) -> FakeEngine:
        self.sessions += 1
        return self

    def learn(self, text: str) -> None:
        self.learned.append(text)

    def forget(self) -> None:
        self.forgotten += 1

    def adapt(self, config=None, stop=None) -> dict:  # noqa: ANN001
        self.adaptations += 1
        self.adapt_thread = threading.get_ident()
        return {"targets": 1234, "seconds": 2.5}

    def predict(self, prefix: str, top_k: int = 5, pinyin: str | None = None) -> list[tuple[str, float]]:
        self.prefixes.append(prefix)
        self.pinyin.append(pinyin)
        words = "甲乙丙丁戊己庚辛壬"
        tag = f"{pinyin}" if pinyin else ""
        return [(f"{words[i]}{tag}{len(prefix)}", 0.5 / (i + 1)) for i in range(top_k)]

    def complete(self, prefix: str, top_k: int = 5, max_words: int = 3) -> list[tuple[str, float]]:
        self.completed.append(prefix)
        pairs = ["子丑", "寅卯", "辰巳", "午未", "申酉", "戌亥"]
        return [(f"{pairs[i]}{len(prefix)}", 0.1 / (i + 1)) for i in range(min(top_k, 6))]


class BrokenEngine:
    """An engine whose every prediction fails."""

    name = "broken"

    def session(self) -> BrokenEngine:
        return self

    def predict(self, prefix: str, top_k: int = 5, pinyin: str | None = None) -> list[tuple[str, float]]:
        raise RuntimeError("boom")


def _window(qtbot, engine, **kwargs) -> MainWindow:
    window = MainWindow(engine, **kwargs)
    qtbot.addWidget(window)
    window.show()
    return window


def commit(widget, text: str) -> None:
    """Deliver ``text`` the way a system input method does: a committed QInputMethodEvent.

    (QTest's key clicks only know ASCII keys; Chinese reaches a widget this way.)
    """
    for char in text:
        if char.isascii():
            QTest.keyClicks(widget, char)
            continue
        event = QInputMethodEvent("", [])
        event.setCommitString(char)
        QApplication.sendEvent(widget, event)


def _fresh(window: MainWindow):
    """A waitSignal check: the suggestions are for the current text before the cursor."""
    return lambda s: bool(s) and s[0][0][1:] == str(len(window.text_before_cursor()))


def _type(qtbot, window: MainWindow, text: str) -> list:
    """Type ``text`` and return the suggestions shown for it."""
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000, check_params_cb=_fresh(window)) as blocker:
        commit(window.editor, text)
    return blocker.args[0]


def test_typing_shows_k_suggestions_for_the_text_before_the_cursor(qtbot):
    """After typing, the bar shows top_k suggestions computed for the whole typed text."""
    engine = FakeEngine()
    window = _window(qtbot, engine, top_k=3)
    shown = _type(qtbot, window, "我今天")
    assert [w for w, _ in shown][:3] == ["甲3", "乙3", "丙3"]
    assert window.bar.isVisible() and window.bar.words[:3] == ["甲3", "乙3", "丙3"]
    assert engine.prefixes[-1] == "我今天"
    assert engine.sessions == 1  # one session for all key presses


def test_two_phrases_follow_the_words_and_are_accepted_whole(qtbot):
    """After the k words come two phrases, numbered on; Alt+n inserts the whole phrase;
    the menu switches them off; with all nine buttons taken by words there are none."""
    engine = FakeEngine()
    window = _window(qtbot, engine, top_k=3)
    shown = _type(qtbot, window, "我今天")
    assert [w for w, _ in shown] == ["甲3", "乙3", "丙3", "子丑3", "寅卯3"]
    assert window.bar.phrase_count == 2 and window.bar.buttons[3].text().startswith("4 子丑3")
    assert engine.completed[-1] == "我今天"
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000):
        qtbot.keyClick(window.editor, Qt.Key.Key_5, Qt.KeyboardModifier.AltModifier)
    assert window.editor.toPlainText() == "我今天寅卯3"
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000,
                          check_params_cb=lambda s: len(s) == 3):
        window.phrases_action.setChecked(False)
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000,
                          check_params_cb=lambda s: len(s) == 9):
        window.phrases_action.setChecked(True)
        window.k_actions[9].trigger()
    assert window.bar.phrase_count == 0


def test_a_phrase_equal_to_a_shown_word_is_left_out():
    """suggest() drops phrases already among the words or holding punctuation, and asks
    for none with pinyin."""
    from gui.engine import suggest

    class Session:
        def predict(self, prefix, top_k=5, pinyin=None):  # noqa: ANN001, ANN202
            return [("中国人", 0.2), ("的", 0.1)][:top_k]

        def complete(self, prefix, top_k=5, max_words=3):  # noqa: ANN001, ANN202
            return [("中国人", 0.05), ("的。”", 0.045), ("中国经济", 0.04), ("的时候", 0.03),
                    ("在这里", 0.02)][:top_k]

    words, phrases = suggest(Session(), "我是", "", 2, 2)
    assert words == [("中国人", 0.2), ("的", 0.1)]
    assert phrases == [("中国经济", 0.04), ("的时候", 0.03)]
    assert suggest(Session(), "我是", "zg", 2, 2)[1] == []
    assert suggest(Session(), "我是", "", 2, 0)[1] == []


def test_alt_2_inserts_the_second_suggestion_at_the_cursor(qtbot):
    """Alt+2 inserts the second word where the cursor is."""
    window = _window(qtbot, FakeEngine())
    _type(qtbot, window, "我们")
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000):
        qtbot.keyClick(window.editor, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)
    assert window.editor.toPlainText() == "我们乙2"


def test_tab_accepts_the_first_and_escape_hides_the_bar(qtbot):
    """Tab inserts the first suggestion; Esc hides the bar and Tab then types a tab."""
    window = _window(qtbot, FakeEngine())
    _type(qtbot, window, "好")
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000):
        qtbot.keyClick(window.editor, Qt.Key.Key_Tab)
    assert window.editor.toPlainText() == "好甲1"
    qtbot.waitUntil(lambda: window.bar.words and window.bar.words[0] == "甲3")
    qtbot.keyClick(window.editor, Qt.Key.Key_Escape)
    assert not window.bar.isVisible()
    qtbot.keyClick(window.editor, Qt.Key.Key_Tab)
    assert window.editor.toPlainText() == "好甲1\t"


def test_plain_digits_and_space_still_type(qtbot):
    """Digits and space are text, never suggestion keys."""
    window = _window(qtbot, FakeEngine())
    _type(qtbot, window, "我 2")
    assert window.editor.toPlainText() == "我 2"


def test_editing_in_the_middle_predicts_for_text_before_the_cursor(qtbot):
    """Moving the cursor back updates the suggestions for the text before it."""
    engine = FakeEngine()
    window = _window(qtbot, engine)
    _type(qtbot, window, "我今天去北京")
    cursor = window.editor.textCursor()
    cursor.setPosition(3)
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000,
                          check_params_cb=lambda s: s[0][0] == "甲3"):
        window.editor.setTextCursor(cursor)
    assert engine.prefixes[-1] == "我今天"
    assert window.bar.words[0] == "甲3"


def test_a_click_accepts_a_suggestion(qtbot):
    """Clicking the third button inserts the third word."""
    window = _window(qtbot, FakeEngine())
    _type(qtbot, window, "我")
    qtbot.mouseClick(window.bar.buttons[2], Qt.MouseButton.LeftButton)
    assert window.editor.toPlainText() == "我丙1"


def test_missing_model_shows_a_message_with_the_training_command(qtbot):
    """Without an engine the window opens and says how to train a model."""
    window = _window(qtbot, None, error="Could not load the model: no model at x")
    commit(window.editor, "我")
    assert window.message.isVisible() and "no model at x" in window.message.text()
    assert "make run" in window.message.text()
    assert not window.bar.isVisible()


def test_engine_errors_do_not_crash_the_window(qtbot):
    """A failing prediction becomes a status message."""
    window = _window(qtbot, BrokenEngine())
    with qtbot.waitSignal(window._worker.failed, timeout=5000):
        commit(window.editor, "我")
    assert window.editor.toPlainText() == "我"


def test_opening_a_broken_model_path_shows_the_message(qtbot, tmp_path):
    """File > Open with a directory holding no model shows the error, not a traceback."""
    from gui.app import load_engine

    window = _window(qtbot, FakeEngine(), loader=load_engine)
    window.open_model(str(tmp_path))
    assert window.message.isVisible() and "ime train" in window.message.text()


def test_k_can_be_changed(qtbot):
    """Choosing 'Show 7' shows seven words (and the two phrases after them)."""
    window = _window(qtbot, FakeEngine())
    _type(qtbot, window, "我")
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000,
                          check_params_cb=lambda s: len(s) == 9):
        window.k_actions[7].trigger()
    assert len(window.bar.words) == 9 and window.bar.phrase_count == 2
    assert window.bar.words[6] == "庚1" and window.bar.words[7] == "子丑1"


@pytest.fixture
def real_window(qtbot, tiny_model_dir):
    """The window on the tiny trained model."""
    from gui.app import load_engine

    return _window(qtbot, load_engine(str(tiny_model_dir)), top_k=4), load_engine(str(tiny_model_dir))


def test_real_model_suggestions_match_predictor(qtbot, real_window):
    """With a real model, the bar shows exactly Predictor.predict for the typed text, then
    the first phrases of Predictor.complete that are not words already and hold no
    punctuation."""
    window, predictor = real_window
    window.editor.setPlainText("我今天")
    with qtbot.waitSignal(window.suggestionsShown, timeout=10000):
        window.editor.moveCursor(QTextCursor.MoveOperation.End)
    assert window.bar.words[:4] == [w for w, _ in predictor.predict("我今天", 4)]
    phrases = [p for p, _ in predictor.complete("我今天", 4, max_words=3)
               if p not in window.bar.words[:4] and p.isalnum()][:2]
    assert window.bar.words[4:] == phrases


def test_real_model_adapts_from_the_menu_action(qtbot, real_window):
    """With a real model, Adapt fine-tunes on the learned sentences and the bar follows it."""
    window, _ = real_window
    engine = window._engine
    engine.learn("我喜欢物流。我喜欢物流。")
    with qtbot.waitSignal(window._adapter.adapted, timeout=60000) as blocker:
        window.adapt()
    assert "words of your writing" in blocker.args[0] and engine.adapted
    window.editor.setPlainText("我喜欢")
    with qtbot.waitSignal(window.suggestionsShown, timeout=10000):
        window.editor.moveCursor(QTextCursor.MoveOperation.End)
    assert window.bar.words[:4] == [w for w, _ in engine.predict("我喜欢", 4)]
    window.forget()  # the history directory is shared by the whole test session
    assert not engine.adapted


def test_screenshot_command_writes_a_png(tmp_path, tiny_model_dir, qapp):
    """`ime gui --screenshot` renders offscreen and saves a PNG."""
    from input_method.cli import main

    out = tmp_path / "shot.png"
    assert main(["gui", "--model", str(tiny_model_dir), "--text", "我今天", "--screenshot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pinyin_letters_after_chinese_filter_and_are_replaced_on_accept(qtbot):
    """Letters typed after Chinese go to the engine as pinyin; accepting replaces them."""
    engine = FakeEngine()
    window = _window(qtbot, engine)
    _type(qtbot, window, "我")
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000,
                          check_params_cb=lambda s: s[0][0] == "甲bj1"):
        commit(window.editor, "bj")
    assert engine.prefixes[-1] == "我" and engine.pinyin[-1] == "bj"
    assert window.bar.phrase_count == 0  # the letters choose one word: no phrases
    with qtbot.waitSignal(window.suggestionsShown, timeout=5000):
        qtbot.keyClick(window.editor, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert window.editor.toPlainText() == "我甲bj1"


def test_split_pinyin_only_takes_letters_after_chinese():
    """English words after a space are text, not pinyin."""
    from gui.engine import split_pinyin

    assert split_pinyin("我今天qu") == ("我今天", "qu")
    assert split_pinyin("zhongguo") == ("", "zhongguo")
    assert split_pinyin("hello world") == ("hello world", "")
    assert split_pinyin("我今天") == ("我今天", "")


def test_finished_sentences_are_learned_unless_incognito(qtbot):
    """Typing 。 hands the finished sentence to learn(); with learning off nothing is sent."""
    engine = FakeEngine()
    window = _window(qtbot, engine)
    commit(window.editor, "我今天去北京。")
    qtbot.waitUntil(lambda: engine.learned == ["我今天去北京。"])
    window.learn_action.setChecked(False)
    assert engine.learning is False
    commit(window.editor, "他也去。")
    qtbot.wait(50)
    assert engine.learned == ["我今天去北京。"]
    window.forget()
    assert engine.forgotten == 1


def test_adapt_runs_on_its_own_thread_and_reports_in_the_status_bar(qtbot):
    """Learning → Adapt calls engine.adapt() off the GUI and prediction threads; the result
    shows; incognito skips it."""
    engine = FakeEngine()
    window = _window(qtbot, engine)
    with qtbot.waitSignal(window._adapter.adapted, timeout=2000) as blocker:
        window.adapt()
    assert engine.adaptations == 1 and "1,234 words" in blocker.args[0]
    assert engine.adapt_thread != threading.get_ident()
    assert window._adapter.thread() is not window._worker.thread()
    assert "1,234 words" in window.statusBar().currentMessage()
    window.learn_action.setChecked(False)
    with qtbot.waitSignal(window._adapter.adapted, timeout=2000) as blocker:
        window.adapt()
    assert engine.adaptations == 1 and "off" in blocker.args[0]
