"""The main window: a text editor, a bar of numbered suggestions, a status bar.

A sentence finished with 。！？ is handed to the engine to learn from (unless
learning is off: incognito); Learning → Adapt fine-tunes the model on what it
learned, on a thread of its own while suggestions go on. Latin letters typed
right after Chinese are pinyin: they filter the bar, and accepting a word
replaces them. After the words, the bar offers two phrases (multi-word
completions, in blue) unless pinyin is being typed. Keys never steal typing:
digits and space type as usual; Alt+1…Alt+9 accept suggestion n, Tab the
first, Esc hides the bar until the next word; a click accepts too.
Predictions run on a worker thread, in one engine session that keeps the
network's state of the text; while one runs, only the newest request waits,
and a result for text that has since changed is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot
from PyQt6.QtGui import QAction, QActionGroup, QFont, QKeyEvent, QTextCursor
from PyQt6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.engine import (
    Suggestion,
    SuggestionEngine,
    SuggestionSession,
    finished_sentence,
    split_pinyin,
    suggest,
)

log = logging.getLogger(__name__)

MAX_K = 9  # buttons in the bar: words and phrases together
PHRASES = 2  # phrases shown after the words, while the bar has room
PHRASE_STYLE = "color: #1f5fa8"  # phrases look different from single words
TRAIN_HINT = "Train one with `make run`, or `ime process && ime train --run-name NAME`."


class Editor(QPlainTextEdit):
    """A plain-text editor that turns the suggestion keys into signals."""

    acceptRequested = pyqtSignal(int)  # noqa: N815 - Qt naming
    dismissRequested = pyqtSignal()  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.suggestions_shown = False  # set by the window; Tab and Esc act only then

    def keyPressEvent(self, event: QKeyEvent | None) -> None:  # noqa: N802 - Qt override
        """Alt+1…9, Tab and Esc go to the suggestion bar; everything else types."""
        assert event is not None
        key = event.key()
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if alt and Qt.Key.Key_1.value <= key <= Qt.Key.Key_9.value:
            self.acceptRequested.emit(key - Qt.Key.Key_1.value)
            return
        if self.suggestions_shown and key == Qt.Key.Key_Tab and not event.modifiers():
            self.acceptRequested.emit(0)
            return
        if self.suggestions_shown and key == Qt.Key.Key_Escape:
            self.dismissRequested.emit()
            return
        super().keyPressEvent(event)


class SuggestionBar(QWidget):
    """A row of numbered suggestion buttons; a click emits ``clicked(index)``."""

    clicked = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.buttons: list[QPushButton] = []
        for index in range(MAX_K):
            button = QPushButton(self)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the editor
            button.clicked.connect(lambda _checked=False, i=index: self.clicked.emit(i))
            button.hide()
            layout.addWidget(button)
            self.buttons.append(button)
        layout.addStretch(1)
        hint = QLabel("Alt+1…9 or Tab: accept · Esc: hide", self)
        hint.setEnabled(False)  # drawn greyed: a reminder, not a control
        layout.addWidget(hint)
        font = self.font()
        font.setPointSize(font.pointSize() + 3)
        for button in self.buttons:
            button.setFont(font)
        self.words: list[str] = []  # what each shown button inserts: words, then phrases
        self.phrase_count = 0

    def show_suggestions(self, words: list[Suggestion], phrases: list[Suggestion],
                         with_probs: bool) -> None:
        """Fill the buttons: ``1 去 12%`` for the words, then the phrases in blue."""
        suggestions = (words + phrases)[: len(self.buttons)]
        self.words = [text for text, _ in suggestions]
        self.phrase_count = len(suggestions) - min(len(words), len(suggestions))
        for index, button in enumerate(self.buttons):
            if index < len(suggestions):
                text, prob = suggestions[index]
                phrase = index >= len(words)
                button.setText(f"{index + 1} {text}" + (f"  {_percent(prob)}" if with_probs else ""))
                button.setToolTip(("Phrase: " if phrase else "")
                                  + f"Alt+{index + 1}" + (" or Tab" if index == 0 else ""))
                button.setStyleSheet(PHRASE_STYLE if phrase else "")
                button.show()
            else:
                button.hide()


def _percent(prob: float) -> str:
    """``12%``, or ``0.4%`` below one percent (phrases are often there)."""
    return f"{prob:.0%}" if prob >= 0.0095 else f"{prob:.1%}"


class PredictionWorker(QObject):
    """Runs the engine's predictions on its own thread, in one session per engine (the
    session keeps the network's state of the text, so a key press runs only new words)."""

    finished = pyqtSignal(int, list, list, float)  # request id, words, phrases, milliseconds
    failed = pyqtSignal(int, str)

    def __init__(self, engine: SuggestionEngine | None) -> None:
        super().__init__()
        self.engine = engine
        self._session: SuggestionSession | None = None
        self._session_engine: SuggestionEngine | None = None  # the engine _session is from

    @pyqtSlot(str)
    def learn(self, text: str) -> None:
        """Learn a finished sentence (off the GUI thread: it writes the history file)."""
        engine = self.engine
        if engine is None or not getattr(engine, "learning", False):
            return
        try:
            engine.learn(text)
        except Exception:  # noqa: BLE001 - learning must never break typing
            log.exception("learning failed")

    @pyqtSlot(int, str, str, int, int)
    def run(self, request_id: int, prefix: str, pinyin: str, top_k: int, phrases: int) -> None:
        """Predict and report; an engine error is reported, never raised into Qt."""
        engine = self.engine  # read once: the window may switch engines meanwhile
        if engine is None:
            return
        started = time.perf_counter()
        try:
            if self._session is None or self._session_engine is not engine:
                self._session, self._session_engine = engine.session(), engine
            words, shown_phrases = suggest(self._session, prefix, pinyin, top_k, phrases)
        except Exception as exc:  # noqa: BLE001 - a GUI must survive any engine failure
            log.exception("prediction failed")
            self.failed.emit(request_id, f"prediction failed: {exc}")
            return
        self.finished.emit(request_id, words, shown_phrases,
                           (time.perf_counter() - started) * 1000)


class AdaptWorker(QObject):
    """Runs ``engine.adapt`` on a thread of its own, so suggestions go on meanwhile."""

    adapted = pyqtSignal(str)  # a line for the status bar

    def __init__(self, engine: SuggestionEngine | None) -> None:
        super().__init__()
        self.engine = engine
        self.stop = threading.Event()  # set when the window closes

    @pyqtSlot()
    def adapt(self) -> None:
        """Fine-tune the engine's network on what it learned (up to a minute)."""
        engine = self.engine
        if engine is None or not getattr(engine, "learning", False):
            self.adapted.emit("Learning is off: nothing to adapt to.")
            return
        try:
            stats = engine.adapt(stop=self.stop)
        except Exception as exc:  # noqa: BLE001 - a GUI must survive any engine failure
            log.exception("adaptation failed")
            self.adapted.emit(f"Adaptation failed: {exc}")
            return
        if stats.get("stopped"):
            self.adapted.emit("Adaptation stopped.")
        elif not stats.get("targets"):
            self.adapted.emit("Nothing learned yet: finish a few sentences with 。 first.")
        else:
            self.adapted.emit(f"Adapted to {stats['targets']:,} words of your writing "
                              f"in {stats.get('seconds', 0):.1f} s.")


class MainWindow(QMainWindow):
    """The suggestion box."""

    predictionRequested = pyqtSignal(int, str, str, int, int)  # noqa: N815 - to the worker thread
    learnRequested = pyqtSignal(str)  # noqa: N815 - to the worker thread
    adaptRequested = pyqtSignal()  # noqa: N815 - to the adaptation thread
    suggestionsShown = pyqtSignal(list)  # noqa: N815 - after the bar shows a fresh result

    def __init__(self, engine: SuggestionEngine | None, error: str | None = None,
                 loader: Callable[[str], SuggestionEngine] | None = None, top_k: int = 5) -> None:
        super().__init__()
        self.setWindowTitle("input_method — next-word suggestions")
        self.top_k = top_k
        self.show_probabilities = True
        self.show_phrases = True
        self._loader = loader
        self._engine = engine
        self._request_id = 0
        self._busy = False
        self._pending = False
        self._dismissed = False

        self.editor = Editor(self)
        self.editor.setFont(QFont(self.editor.font().family(), 16))
        self.editor.setPlaceholderText("Type Chinese here; suggestions for the next word appear below.")
        self.bar = SuggestionBar(self)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        self.setCentralWidget(central)
        self.model_label = QLabel(self)
        self.latency_label = QLabel(self)
        status = self.statusBar()
        assert status is not None
        status.addWidget(self.model_label, 1)
        status.addPermanentWidget(self.latency_label)
        self._build_menus()

        self._thread = QThread(self)
        self._worker = PredictionWorker(engine)
        self._worker.moveToThread(self._thread)
        self.predictionRequested.connect(self._worker.run)
        self.learnRequested.connect(self._worker.learn)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._thread.start()
        self._adapt_thread = QThread(self)
        self._adapter = AdaptWorker(engine)
        self._adapter.moveToThread(self._adapt_thread)
        self.adaptRequested.connect(self._adapter.adapt)
        self._adapter.adapted.connect(self._on_adapted)
        self._adapt_thread.start()

        self.editor.textChanged.connect(self._on_text_changed)
        self.editor.cursorPositionChanged.connect(self.request_suggestions)
        self.editor.acceptRequested.connect(self.accept)
        self.editor.dismissRequested.connect(self.dismiss)
        self.bar.clicked.connect(self.accept)
        self.set_engine(engine, error)
        self.resize(760, 420)

    # --- menus --------------------------------------------------------------
    def _build_menus(self) -> None:
        menu_bar = self.menuBar()
        assert menu_bar is not None
        file_menu = menu_bar.addMenu("&File")
        assert file_menu is not None
        open_action = QAction("&Open model directory…", self)
        open_action.triggered.connect(self._choose_model)
        open_action.setEnabled(self._loader is not None)
        file_menu.addAction(open_action)
        quit_action = QAction("&Quit", self)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        menu = menu_bar.addMenu("&Suggestions")
        assert menu is not None
        group = QActionGroup(self)
        self.k_actions: dict[int, QAction] = {}
        for k in range(1, MAX_K + 1):
            action = QAction(f"Show {k}", self, checkable=True)
            action.setChecked(k == self.top_k)
            action.triggered.connect(lambda _checked=False, k=k: self.set_top_k(k))
            group.addAction(action)
            menu.addAction(action)
            self.k_actions[k] = action
        menu.addSeparator()
        probs = QAction("Show &probabilities", self, checkable=True)
        probs.setChecked(True)
        probs.toggled.connect(self._set_show_probabilities)
        menu.addAction(probs)
        self.phrases_action = QAction("Show p&hrases after the words", self, checkable=True)
        self.phrases_action.setChecked(True)
        self.phrases_action.toggled.connect(self._set_show_phrases)
        menu.addAction(self.phrases_action)

        learning_menu = menu_bar.addMenu("&Learning")
        assert learning_menu is not None
        self.learn_action = QAction("&Learn from my typing (off: incognito)", self, checkable=True)
        self.learn_action.toggled.connect(self._set_learning)
        learning_menu.addAction(self.learn_action)
        adapt_action = QAction("&Adapt the model to my writing now", self)
        adapt_action.triggered.connect(self.adapt)
        learning_menu.addAction(adapt_action)
        forget_action = QAction("&Clear learned history", self)
        forget_action.triggered.connect(self.forget)
        learning_menu.addAction(forget_action)

    def _choose_model(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a model directory", "models")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        """Load another model through the loader given by ``main``."""
        assert self._loader is not None
        try:
            engine = self._loader(path)
        except Exception as exc:  # noqa: BLE001 - any load failure becomes a message
            self.set_engine(None, f"Could not open {path}: {exc}")
            return
        self.set_engine(engine)

    # --- state --------------------------------------------------------------
    def set_engine(self, engine: SuggestionEngine | None, error: str | None = None) -> None:
        """Use ``engine``; with none, show ``error`` where suggestions would be."""
        self._engine = engine
        self._worker.engine = engine
        self._adapter.engine = engine
        if engine is None:
            self.bar.show_suggestions([], [], self.show_probabilities)
            self._set_shown(False)
            text = error or "No model loaded."
            if "make run" not in text:
                text += f"\n{TRAIN_HINT}"
            self.message.setText(text)
            self.message.show()
            self.model_label.setText("no model")
            return
        self.message.hide()
        self.learn_action.setChecked(bool(getattr(engine, "learning", False)))
        self.model_label.setText(f"model: {engine.name}")
        self.request_suggestions()

    def set_top_k(self, k: int) -> None:
        """Show ``k`` suggestions (1 to 9)."""
        self.top_k = max(1, min(MAX_K, k))
        self.k_actions[self.top_k].setChecked(True)
        self.request_suggestions()

    def _set_show_probabilities(self, shown: bool) -> None:
        self.show_probabilities = shown
        self.request_suggestions()

    def _set_show_phrases(self, shown: bool) -> None:
        self.show_phrases = shown
        self.request_suggestions()

    def phrase_count(self) -> int:
        """How many phrases to ask for: none when off, and only while the bar has room."""
        return min(PHRASES, MAX_K - self.top_k) if self.show_phrases else 0

    def text_before_cursor(self) -> str:
        """What the next word continues: the text up to the cursor."""
        return self.editor.toPlainText()[: self.editor.textCursor().position()]

    # --- predictions ----------------------------------------------------------
    def _set_learning(self, on: bool) -> None:
        if self._engine is not None:
            self._engine.learning = on

    def adapt(self) -> None:
        """Fine-tune the engine on the sentences it learned, on the worker thread."""
        if self._engine is None:
            return
        status = self.statusBar()
        assert status is not None
        status.showMessage("Adapting the model to your writing… (suggestions go on meanwhile)")
        self.adaptRequested.emit()

    def _on_adapted(self, message: str) -> None:
        status = self.statusBar()
        assert status is not None
        status.showMessage(message, 10_000)
        self.request_suggestions()  # from the adapted network

    def forget(self) -> None:
        """Clear what the engine learned from the user."""
        if self._engine is not None:
            self._engine.forget()
            self.request_suggestions()

    def _on_text_changed(self) -> None:
        self._dismissed = False  # Esc hides the bar only until the next word
        sentence = finished_sentence(self.text_before_cursor())
        if sentence is not None and self._engine is not None:
            self.learnRequested.emit(sentence)

    def request_suggestions(self) -> None:
        """Ask the worker for suggestions for the text before the cursor (newest wins)."""
        if self._engine is None:
            return
        self._request_id += 1
        if self._busy:
            self._pending = True  # sent when the running prediction returns
            return
        self._send()

    def _send(self) -> None:
        self._busy, self._pending = True, False
        prefix, pinyin = split_pinyin(self.text_before_cursor())
        self.predictionRequested.emit(self._request_id, prefix, pinyin, self.top_k,
                                      self.phrase_count())

    def _on_finished(self, request_id: int, words: list, phrases: list,
                     milliseconds: float) -> None:
        self._busy = False
        if request_id != self._request_id or self._pending:
            if self._engine is not None:
                self._send()  # the text changed meanwhile: this result is stale
            return
        self.latency_label.setText(f"{milliseconds:.1f} ms")
        self.show_suggestions(words, phrases)

    def _on_failed(self, request_id: int, message: str) -> None:
        self._busy = False
        status = self.statusBar()
        assert status is not None
        status.showMessage(message, 5000)
        if self._pending:
            self._send()

    def show_suggestions(self, words: list[Suggestion], phrases: list[Suggestion]) -> None:
        """Put the words, then the phrases, in the bar (unless Esc hid it) and announce
        them (``suggestionsShown``: words and phrases in one list, as the bar numbers them)."""
        self.bar.show_suggestions(words, phrases, self.show_probabilities)
        self._set_shown(bool(words or phrases) and not self._dismissed)
        self.suggestionsShown.emit(words + phrases)

    def refresh_now(self) -> None:
        """Predict on this thread and show the result (for screenshots and scripts)."""
        if self._engine is not None:
            started = time.perf_counter()
            prefix, pinyin = split_pinyin(self.text_before_cursor())
            words, phrases = suggest(self._engine.session(), prefix, pinyin, self.top_k,
                                     self.phrase_count())
            self.latency_label.setText(f"{(time.perf_counter() - started) * 1000:.1f} ms")
            self.show_suggestions(words, phrases)

    def _set_shown(self, shown: bool) -> None:
        self.bar.setVisible(shown)
        self.editor.suggestions_shown = shown

    # --- accepting ------------------------------------------------------------
    def accept(self, index: int) -> None:
        """Insert suggestion ``index`` at the cursor, in place of the pinyin letters typed."""
        if not self.editor.suggestions_shown or index >= len(self.bar.words):
            return
        cursor = self.editor.textCursor()
        _, pinyin = split_pinyin(self.text_before_cursor())
        if pinyin:
            cursor.movePosition(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.KeepAnchor,
                                len(pinyin))
        cursor.insertText(self.bar.words[index])
        self.editor.setTextCursor(cursor)
        self.editor.setFocus()

    def dismiss(self) -> None:
        """Hide the bar until the next word is typed."""
        self._dismissed = True
        self._set_shown(False)

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
        """Stop the worker threads before the window goes (an adaptation ends early)."""
        self._adapter.stop.set()
        for thread in (self._thread, self._adapt_thread):
            thread.quit()
            thread.wait(5000)
        super().closeEvent(event)
