"""Progress bars (tqdm on stderr); GALAXYGEN_NO_PROGRESS=1 silences them."""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
NO_PROGRESS = "GALAXYGEN_NO_PROGRESS"  # the environment variable that silences the bars


def enabled() -> bool:
    """Whether progress bars are shown."""
    return os.environ.get(NO_PROGRESS, "") in ("", "0")


def progress(iterable: Iterable[T] | None = None, *, desc: str = "", total: int | None = None,
             leave: bool = True, unit: str = "it", position: int | None = None) -> tqdm:
    """A tqdm bar over `iterable` (or a manual bar when None)."""
    return tqdm(iterable, desc=desc, total=total, leave=leave, unit=unit, position=position,
                disable=not enabled(), dynamic_ncols=True)
