"""Entry point of the suggestion box: load the model, open the window.

    ime gui [--model DIR] [--top-k K]
    ime gui --screenshot out.png --text "我今天"     # render offscreen, save, exit
    python -m gui ...                                 # the same
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from PyQt6.QtGui import QTextCursor
from PyQt6.QtWidgets import QApplication

from gui.engine import SuggestionEngine
from gui.options import add_arguments
from gui.window import MainWindow

log = logging.getLogger(__name__)


def load_engine(model_dir: str | None) -> SuggestionEngine:
    """The real engine; imported here so the window itself never imports it."""
    from input_method import Predictor
    from input_method.learn import default_history_path
    from input_method.neighbours import default_cache_dir

    return Predictor.load(model_dir, history=default_history_path(), threads=1,
                          cache_dir=default_cache_dir())


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the GUI (also used by ``ime gui``)."""
    parser = argparse.ArgumentParser(prog="ime gui", description="Open the next-word suggestion box.")
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace, argv0: str = "ime-gui") -> int:
    """Open the window (or take a screenshot) for parsed arguments."""
    app = QApplication.instance() or QApplication([argv0])
    engine: SuggestionEngine | None
    error = None
    try:
        engine = load_engine(args.model)
    except Exception as exc:  # noqa: BLE001 - any load failure is shown in the window
        engine, error = None, f"Could not load the model: {exc}"
        log.error("%s", error)
    window = MainWindow(engine, error, loader=load_engine, top_k=args.top_k or 5)
    if args.text:
        window.editor.setPlainText(args.text)
        window.editor.moveCursor(QTextCursor.MoveOperation.End)
    if args.screenshot:
        window.show()
        window.refresh_now()
        app.processEvents()
        ok = window.grab().save(args.screenshot)
        window.close()
        if not ok:
            print(f"ime gui: error: could not write {args.screenshot}", file=sys.stderr)
            return 1
        print(f"saved {args.screenshot}")
        return 0 if engine is not None else 1
    window.show()
    return app.exec()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gui``: parse ``argv`` and run."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(build_parser().parse_args(argv))
