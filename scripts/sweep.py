"""One change at a time against the default recipe, each scored on the validation split.

    python scripts/sweep.py                      # all variants, 2 epochs each
    python scripts/sweep.py --only gru layers2   # some of them
    tensorboard --logdir logs/sweep              # HPARAMS tab: the runs in one table

Every variant is ``ime train`` with the defaults of ``input_method/config.py``
and one flag changed, for the same number of epochs (the learning-rate
schedule depends only on validation loss, so a short run is the start of a
long one). Runs go to models/sweep/ and logs/sweep/; a finished run is not
trained again, so the sweep can be stopped and restarted. Prints one JSON
object and a Markdown table of the best validation figures of each run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

VARIANTS: dict[str, list[str]] = {
    "default": [],  # LSTM, 128-dim embeddings, one layer of 384, dropout 0.25, context 16
    "gru": ["--cell", "gru"],
    "layers2": ["--layers", "2"],
    "dropout0.4": ["--dropout", "0.4"],
    "hidden512": ["--hidden-size", "512"],
    "embedding256": ["--embedding-dim", "256"],
    "context5": ["--context-limit", "5"],
}


def run(name: str, flags: list[str], epochs: int, root: Path) -> dict:
    """Train one variant (unless it already finished) and return its best validation figures."""
    models, logs = root / "models" / "sweep", root / "logs" / "sweep"
    best = models / f"sweep-{name}" / "best.pt"
    last = best.with_name("last.pt")
    done = last.is_file() and torch.load(last, weights_only=True)["metrics"]["epochs_done"] >= epochs
    if not done:
        command = [sys.executable, "-m", "input_method", "train", "--run-name", f"sweep-{name}",
                   "--epochs", str(epochs), "--models-root", str(models),
                   "--logs-root", str(logs), *flags]
        if last.is_file():
            command.append("--resume")
        subprocess.run(command, check=True)
    metrics = torch.load(best, weights_only=True)["metrics"]
    finished = torch.load(last, weights_only=True)["metrics"]
    valid = metrics["valid"]
    return {"flags": " ".join(flags) or "(defaults)", "valid_hit@1": round(valid["hit@1"], 4),
            "valid_hit@5": round(valid["hit@5"], 4), "valid_perplexity": round(valid["perplexity"], 1),
            "steps": finished["steps"], "train_seconds": finished["train_seconds"],
            "words_per_s": finished["train_tokens_per_second"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--root", default=".", help="models/sweep and logs/sweep go under it")
    args = parser.parse_args(argv)
    root = Path(args.root)
    results = {name: run(name, VARIANTS[name], args.epochs, root)
               for name in (args.only or VARIANTS)}
    print(json.dumps(results))
    print("| variant | flags | valid hit@1 | valid hit@5 | valid perplexity | words/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | `{r['flags']}` | {r['valid_hit@1']:.4f} | {r['valid_hit@5']:.4f} | "
              f"{r['valid_perplexity']:.1f} | {r['words_per_s']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
