"""Choosing the torch device: from a config string, or automatically."""

from __future__ import annotations

import os

import torch

from galaxygen.errors import ConfigError


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity, which container limits narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return a torch.device for `name` ('auto', 'cpu', 'cuda', 'cuda:1', ...).

    'auto' (or None) is CUDA when available, else CPU.
    """
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device: {name!r} is not a torch device (expected auto, cpu or cuda[:i])") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available on this machine")
    return dev
