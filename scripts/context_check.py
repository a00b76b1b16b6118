"""Would the sentences typed before help? The same network trained twice, compared (a diagnostic).

    python scripts/context_check.py --minutes 8 --windows 30000

Every window the project makes today holds the current sentence only: the
first word of a sentence is predicted from ``<s>`` alone, whatever came before.
In a text box the earlier sentences are there. This check trains one small
GRU on each of two views of the same training sentences, for the same
wall-clock time, and scores both on the same validation targets:

- ``sentence``: pieces cut inside each sentence (what ``ime train`` does);
- ``text``: the sentences in order, each still opening with ``<s>``, cut into
  pieces that run across sentence ends, so a piece's words see the end of
  the sentence before. ``<s>`` is never a target.

Validation: every word of the first ``--windows`` targets (in sentence order)
is scored from its last ``--context`` ids, taken from the sentence alone or
from the running text. Figures are hit@1 / hit@5 as ``ime evaluate`` counts
them (specials never suggested, ``<unk>`` targets missed), overall and by the
word's position in its sentence. Nothing here reads the test split.

    sentence 1     sentence 2
    <s> a b c 。   <s> d e 。
    sentence view: [<s> a b c 。] [<s> d e 。]         d sees <s>
    text view:     [<s> a b c 。 <s> d e 。 ...]       d sees ... b c 。 <s>
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from input_method.config import ModelConfig
from input_method.metrics import RankingTotals
from input_method.model import NextWordModel, window_logits
from input_method.vocab import Vocab
from input_method.windows import left_pad

# Position bands of the word in its sentence (1: right after <s>).
BANDS = ((1, 1), (2, 5), (6, 10_000))


def read_sentences(path: Path, vocab: Vocab) -> list[list[int]]:
    """Each line of a tokens file as ids, opening with the start id."""
    with path.open(encoding="utf-8") as handle:
        return [[vocab.start_id, *vocab.encode(line.split())] for line in handle if line.strip()]


def pieces(sentences: list[list[int]], view: str, width: int, pad_id: int, start_id: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets (pieces, width); unscored targets are ``pad_id``.

    A piece of ``width + 1`` ids gives ``width`` (input, target) pairs; the next
    piece starts at this one's last id, so every word is a target once.
    """
    streams = sentences if view == "sentence" else [[i for s in sentences for i in s]]
    rows_in: list[list[int]] = []
    rows_out: list[list[int]] = []
    for ids in streams:
        for begin in range(0, len(ids) - 1, width):
            chunk = ids[begin:begin + width + 1]
            inputs, targets = chunk[:-1], [pad_id if t == start_id else t for t in chunk[1:]]
            fill = width - len(inputs)
            rows_in.append(inputs + [pad_id] * fill)
            rows_out.append(targets + [pad_id] * fill)
    return torch.tensor(rows_in), torch.tensor(rows_out)


def windows(sentences: list[list[int]], view: str, context: int, limit: int, pad_id: int
            ) -> Iterator[tuple[list[int], int, int]]:
    """(left-padded context, target, position in sentence) for the first ``limit`` targets."""
    running: list[int] = []
    count = 0
    for ids in sentences:
        for i in range(1, len(ids)):
            before = ids[:i] if view == "sentence" else running + ids[:i]
            yield left_pad(before, context, pad_id), ids[i], i
            count += 1
            if count >= limit:
                return
        running = (running + ids)[-context:]


def train(model: NextWordModel, inputs: torch.Tensor, targets: torch.Tensor, pad_id: int,
          minutes: float, batch_size: int, seed: int) -> dict[str, float]:
    """Adam at a fixed rate for ``minutes``; returns steps and targets seen."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = list(range(len(inputs)))
    rng = random.Random(seed)
    start, steps, seen = time.monotonic(), 0, 0
    model.train()
    while time.monotonic() - start < minutes * 60:
        rng.shuffle(order)
        for begin in range(0, len(order), batch_size):
            batch = torch.tensor(order[begin:begin + batch_size])
            x, y = inputs[batch], targets[batch]
            features, _ = model.features(x)  # (batch, width, hidden)
            scored = y != pad_id
            loss = model.loss(features[scored], y[scored])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            optimizer.step()
            steps += 1
            seen += int(scored.sum())
            if time.monotonic() - start >= minutes * 60:
                break
    return {"steps": steps, "targets_seen": seen, "seconds": round(time.monotonic() - start)}


def score(model: NextWordModel, vocab: Vocab, sentences: list[list[int]], view: str,
          context: int, limit: int) -> dict[str, dict[str, float]]:
    """hit@1 / hit@5 overall and per position band."""
    model.eval()
    totals = {"all": RankingTotals(), **{f"{a}-{b}": RankingTotals() for a, b in BANDS}}
    rows = list(windows(sentences, view, context, limit, vocab.pad_id))
    with torch.inference_mode():
        for begin in range(0, len(rows), 1000):
            chunk = rows[begin:begin + 1000]
            x = torch.tensor([r[0] for r in chunk])
            y = torch.tensor([r[1] for r in chunk])
            position = torch.tensor([r[2] for r in chunk])
            log_probs = torch.log_softmax(window_logits(model, x, vocab.pad_id).float(), -1)
            totals["all"].add(log_probs, y, vocab.special_ids)
            for a, b in BANDS:
                band = (position >= a) & (position <= b)
                if band.any():
                    totals[f"{a}-{b}"].add(log_probs[band], y[band], vocab.special_ids)
    return {name: {k: round(v, 4) for k, v in t.summary().items()
                   if k in ("hit@1", "hit@5", "perplexity", "windows")}
            for name, t in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--views", nargs="+", default=["sentence", "text"])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--windows", type=int, default=30000)
    parser.add_argument("--context", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden-size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data = Path(args.data_dir)
    vocab = Vocab.load(data / "vocab.json")
    train_sentences = read_sentences(data / "train.tokens.txt", vocab)
    valid_sentences = read_sentences(data / "valid.tokens.txt", vocab)
    results = {}
    for view in args.views:
        torch.manual_seed(args.seed)
        model = NextWordModel(ModelConfig(vocab_size=len(vocab), hidden_size=args.hidden_size))
        inputs, targets = pieces(train_sentences, view, args.context, vocab.pad_id,
                                 vocab.start_id)
        run = train(model, inputs, targets, vocab.pad_id, args.minutes, args.batch_size,
                    args.seed)
        results[view] = {"training": run, "pieces": len(inputs),
                         "valid": score(model, vocab, valid_sentences, view, args.context,
                                        args.windows)}
        print(view, json.dumps(results[view]), flush=True)


if __name__ == "__main__":
    main()
