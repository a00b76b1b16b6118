"""What the GUI needs from a prediction engine, and nothing more."""

from __future__ import annotations

from typing import Protocol


class SuggestionEngine(Protocol):
    """Anything that suggests next words; ``input_method.Predictor`` is one."""

    name: str

    def predict(self, prefix: str, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most likely next words after ``prefix``, best first."""
        ...
