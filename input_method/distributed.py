"""Several processes, one run: PyTorch's own DistributedDataParallel, nothing home-made.

``torchrun --nproc_per_node N -m input_method train ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous address; :func:`setup` sees them and joins the
group (gloo on CPU, nccl on GPU). Without them everything is one process.

Each rank takes every N-th batch of the same seeded order, so no window is
used twice in an epoch; gradients are averaged by DDP; only rank 0 logs and
writes checkpoints (the same format as one process); every rank validates on
the same data with the same weights, so all take the same early-stopping
decision without talking.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Group:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and writes checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def setup(device: torch.device) -> tuple[Group, torch.device]:
    """Join the process group that torchrun described, if any; pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Group(), device
    group = Group(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    log.info("rank %d of %d on %s", group.rank, group.world_size, device)
    return group, device


def teardown(group: Group) -> None:
    """Leave the process group, all ranks together.

    The barrier keeps a rank from tearing its connections down while another
    still uses them (a gloo rank then aborts on exit, seen once in the tests).
    """
    if group.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_rank(flag: bool, group: Group, device: torch.device) -> bool:
    """True on every rank if it is true on one (stop signals must agree, or ranks hang)."""
    if not group.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def lockstep(items: Iterable[T], group: Group, device: torch.device) -> Iterator[T]:
    """``items`` until any rank runs out: ranks of a stream may hold unequal shares,
    and a rank that steps alone would wait forever in DDP's gradient all-reduce."""
    iterator = iter(items)
    while True:
        item = next(iterator, None)
        if any_rank(item is None, group, device):
            return
        yield item  # type: ignore[misc]


def total(count: int, group: Group, device: torch.device) -> int:
    """The sum of ``count`` over all ranks."""
    if not group.active:
        return count
    value = torch.tensor([float(count)], device=device, dtype=torch.float64)
    dist.all_reduce(value)
    return int(value.item())


def wrap(module: nn.Module, group: Group, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes."""
    if not group.active:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
