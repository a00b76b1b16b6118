"""Peak memory of a command and all its child processes (Linux, /proc), as JSON.

    python scripts/peak_rss.py -- ime process --output-dir /tmp/p1

``peak_tree_pss_mb`` is the largest sum of proportional resident memory (PSS:
a page shared by n processes counts 1/n in each, so fork's copy-on-write
sharing is not counted twice) over the command's process tree seen in any
sample (every 50 ms), so parallel workers count;
``peak_one_process_rss_mb`` is the kernel's high-water mark of the largest single process.
Used for the scale figures (bundled corpus vs the corpus repeated 4 times).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_pss_mb(root: int) -> float:
    """Proportional resident memory of ``root`` and its descendants now, in MiB."""
    tree, pending, total = _children(), [root], 0.0
    while pending:
        pid = pending.pop()
        pending.extend(tree.get(pid, []))
        try:
            total += _pss_mb(pid)
        except OSError:  # ended while we looked
            continue
    return total


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: peak_rss.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    while child.poll() is None:
        peak = max(peak, tree_pss_mb(child.pid))
        time.sleep(0.05)
    one_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"command": args, "returncode": child.returncode,
                      "seconds": round(time.perf_counter() - started, 1),
                      "peak_tree_pss_mb": round(peak, 1),
                      "peak_one_process_rss_mb": round(one_peak, 1)}))
    return child.returncode


if __name__ == "__main__":
    raise SystemExit(main())
