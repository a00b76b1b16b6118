"""Choosing where torch runs."""

from __future__ import annotations

import logging

import torch

from input_method.errors import InputMethodError

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; other names are checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputMethodError("--device cuda was asked for but no CUDA GPU is available")
    return device


def set_threads(num_threads: int) -> None:
    """Set torch's intra-op threads when asked (0 keeps torch's default)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
