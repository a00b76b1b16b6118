"""How learning on a worker thread delays suggestions, with a full history.

    python scripts/learn_stall.py --model models/default --sentences 1200

Fills a history in a temporary directory with 20,000 training sentences (the
50,000-pair bound is reached), then learns ``--sentences`` more one by one on
a thread, 5 ms apart, as the suggestion box's worker does, while the main
thread asks a session for suggestions as fast as it can. Prints one JSON
object: the time per learn() and the suggestions' latency meanwhile.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from input_method import Predictor
from input_method.neighbours import default_cache_dir


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--sentences", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    lines = (Path(args.data_dir) / "train.tokens.txt").read_text(encoding="utf-8").splitlines()
    random.Random(args.seed).shuffle(lines)
    texts = ["".join(line.split()) for line in lines]
    with tempfile.TemporaryDirectory() as tmp:
        predictor = Predictor.load(args.model, history=Path(tmp) / "history.json", threads=1,
                                   cache_dir=default_cache_dir())
        predictor.wait_until_ready()  # measure the settled engine
        started = time.perf_counter()
        predictor.learn_texts(texts[:20_000])
        fill_seconds = time.perf_counter() - started
        learns: list[float] = []

        def worker() -> None:
            for text in texts[20_000:20_000 + args.sentences]:
                begin = time.perf_counter()
                predictor.learn(text)
                learns.append(time.perf_counter() - begin)
                time.sleep(0.005)

        session, suggestions = predictor.session(), []
        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            begin = time.perf_counter()
            session.predict("我们今天去", 5)
            suggestions.append(time.perf_counter() - begin)
        pairs = len(predictor.user_model.bigrams)
    print(json.dumps({"fill_seconds": round(fill_seconds, 1), "pairs": pairs,
                      "learns": len(learns), "learn_p50_ms": _percentile(learns, 0.5),
                      "learn_max_ms": _percentile(learns, 1.0), "suggestions": len(suggestions),
                      "suggest_p50_ms": _percentile(suggestions, 0.5),
                      "suggest_p99_ms": _percentile(suggestions, 0.99),
                      "suggest_max_ms": _percentile(suggestions, 1.0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
