"""input_method: a Chinese next-word input-method engine.

    from input_method import Predictor, predict_next_word
    Predictor.load("models/default").predict("我今天", top_k=5)
"""

from input_method.errors import (
                                 CheckpointError,
                                 CorpusError,
                                 InputMethodError,
                                 ModelNotFoundError,
                                 TrainingError,
)
from input_method.predict import Predictor, predict_next_word

__all__ = ["CheckpointError", "CorpusError", "InputMethodError", "ModelNotFoundError",
           "Predictor", "TrainingError", "predict_next_word"]
__version__ = "0.1.0"
