"""Window files as torch tensors, and batches over them.

The whole split is held as two tensors (a few bytes per window), so a batch
is one fancy-index instead of ``batch_size`` Python ``__getitem__`` calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset

from input_method.errors import CorpusError
from input_method.windows import WindowReadStats, read_windows


class WindowDataset(Dataset):
    """Windows of one split: ``inputs`` (N, context) and ``targets`` (N,), both int64."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, skipped: int = 0) -> None:
        assert inputs.dim() == 2 and targets.dim() == 1 and len(inputs) == len(targets)
        self.inputs = inputs
        self.targets = targets
        self.skipped = skipped  # broken lines left out when reading

    @classmethod
    def from_jsonl(cls, path: Path | str, context_size: int, vocab_size: int | None = None,
                   limit: int = 0) -> WindowDataset:
        """Read a window file; broken lines and out-of-range ids are skipped and counted."""
        path = Path(path)
        if not path.is_file():
            raise CorpusError(f"window file not found: {path}; run `ime process` first")
        stats = WindowReadStats()
        inputs: list[list[int]] = []
        targets: list[int] = []
        out_of_range = 0
        for window, target in read_windows(path, context_size, stats):
            if vocab_size is not None and not all(0 <= i < vocab_size for i in (*window, target)):
                out_of_range += 1
                continue
            inputs.append(window)
            targets.append(target)
            if limit and len(targets) >= limit:
                break
        if not targets:
            raise CorpusError(f"{path} has no usable windows")
        return cls(torch.tensor(inputs, dtype=torch.long).view(-1, context_size),
                   torch.tensor(targets, dtype=torch.long), stats.skipped + out_of_range)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int | list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.targets[index]

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(inputs, targets)`` batches, optionally in a seeded order.

        The order depends only on ``seed`` (the training loop passes seed+epoch),
        so a resumed run can skip the first ``start_batch`` batches and see the
        same data as an uninterrupted one::

            order = randperm(N, seed)      e.g. [7 2 9 | 0 4 1 | 8 3 6 | 5]
            batch b = order[b*B:(b+1)*B]          batch 0  batch 1  ...
        """
        n = len(self)
        if shuffle:
            generator = torch.Generator().manual_seed(seed)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        for begin in range(start_batch * batch_size, n, batch_size):
            index = order[begin:begin + batch_size]
            yield self.inputs[index], self.targets[index]

    def num_batches(self, batch_size: int) -> int:
        """How many batches one pass yields."""
        return (len(self) + batch_size - 1) // batch_size
