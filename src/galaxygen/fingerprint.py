"""Content hashes: what a prediction was made from, what a run was trained on.

SHA-256 (hex) of exactly the content, so two boxes hash alike only if their data are equal:
``array_hash`` (dtype, shape and bytes of an array), ``params_hash`` (a parameter mapping),
``fingerprint`` (several named parts combined).
"""

from __future__ import annotations

import hashlib
import json
from typing import Mapping

import numpy as np


def array_hash(arr: np.ndarray) -> str:
    """Content hash of an array: sha256 (hex) of its dtype, shape and C-ordered bytes."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.data)
    return h.hexdigest()


def params_hash(params: Mapping[str, float]) -> str:
    """Content hash of a params mapping (sorted names, float values as exact JSON reprs)."""
    text = json.dumps({k: float(v) for k, v in sorted(params.items())}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(parts: Mapping[str, str]) -> str:
    """One hash of named part hashes (or exact reprs), independent of the mapping's order."""
    return hashlib.sha256(json.dumps(dict(sorted(parts.items()))).encode()).hexdigest()
