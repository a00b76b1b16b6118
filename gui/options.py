"""The GUI's command-line flags, free of Qt so ``ime --help`` stays fast."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``ime gui`` and ``python -m gui``."""
    parser.add_argument("--model", help="model directory (default: models/default)")
    parser.add_argument("--top-k", type=int, default=None, help="suggestions shown, 1-9 (default 5)")
    parser.add_argument("--text", default="", help="text to start with")
    parser.add_argument("--screenshot", metavar="PNG", help="render the window to PNG and exit")
