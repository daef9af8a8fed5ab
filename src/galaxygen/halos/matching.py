"""Matching objects (galaxies, or the halos of another run) to the halos of a catalogue, by position.

One function, `match_hosts`, with the rule as an option:

* ``rule="inside"`` (a galaxy and the halo that contains it): the candidate halo must hold the
  object within its own radius, distance < R_halo;
* ``rule="overlap"`` (a halo and its counterpart in another run): the two spheres must overlap,
  distance <= r_object + R_halo.

Of the candidates passing the rule, the nearest centre wins. The candidates are the `k` nearest
halo centres, or every centre within reach when `k` is None. Distances are periodic in a box of
side `box_size`; all lengths in Mpc/h.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from galaxygen.errors import GalaxygenError

RULES = ("inside", "overlap")


def _wrap(pos, box_size: float) -> np.ndarray:
    """Positions (n, 3) as float64 in [0, L) (np.mod can round a tiny negative value up to L)."""
    p = np.mod(np.asarray(pos, dtype=np.float64).reshape(-1, 3), box_size)
    p[p >= box_size] = 0.0
    return p


def _candidates(tree: cKDTree, centres: np.ndarray, pos: np.ndarray, box_size: float, k: int | None,
                reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, halo, distance) of the candidate pairs, each row's candidates by increasing distance
    (ties in index order): its `k` nearest of the halo `centres` (in `tree`), or all within `reach`
    when k is None."""
    n = len(pos)
    if k is not None:
        k = min(k, len(centres))
        dist, idx = tree.query(pos, k=k)
        return np.repeat(np.arange(n), k), idx.reshape(-1), dist.reshape(-1)
    lists = tree.query_ball_point(pos, r=reach)
    counts = np.fromiter((len(c) for c in lists), dtype=np.int64, count=n)
    rows = np.repeat(np.arange(n), counts)
    idx = np.concatenate([np.asarray(c, dtype=np.int64) for c in lists]) if counts.sum() else np.zeros(0, np.int64)
    d = pos[rows] - centres[idx]
    d -= box_size * np.round(d / box_size)
    dist = np.sqrt((d**2).sum(axis=1))
    order = np.lexsort((dist, rows))  # stable: equal distances keep the order found
    return rows[order], idx[order], dist[order]


def match_hosts(pos: np.ndarray, halo_pos: np.ndarray, halo_radius: np.ndarray | None, box_size: float, *,
                rule: Literal["inside", "overlap"] = "inside", radius: np.ndarray | None = None,
                k: int | None = 8) -> np.ndarray:
    """Row of the matching halo for each object at `pos`, else -1.

    Parameters
    ----------
    pos : (n, 3) [Mpc/h] positions of the objects (any real values; wrapped into the box)
    halo_pos : (m, 3) [Mpc/h] halo centres
    halo_radius : (m,) [Mpc/h] halo radii; None counts as 0 (only with rule "overlap")
    box_size : side of the periodic box [Mpc/h]
    rule : "inside" (distance < halo_radius) or "overlap" (distance <= radius + halo_radius)
    radius : (n,) [Mpc/h] radii of the objects, required by rule "overlap"
    k : candidates per object: its k nearest halo centres; None: every centre within reach

    Returns
    -------
    ndarray int64 (n,): the row in the halo catalogue of the nearest candidate passing the rule.
    """
    if rule not in RULES:
        raise GalaxygenError(f"match_hosts: rule {rule!r} unknown; expected one of {RULES}")
    if rule == "overlap" and radius is None:
        raise GalaxygenError("match_hosts: rule 'overlap' needs the objects' radius")
    n, m = len(pos), len(halo_pos)
    host = np.full(n, -1, dtype=np.int64)
    halo_r = np.zeros(m) if halo_radius is None else np.asarray(halo_radius, dtype=np.float64)
    own_r = np.zeros(n) if radius is None else np.asarray(radius, dtype=np.float64)
    if n == 0 or m == 0 or (k is None and rule == "inside" and not (halo_r > 0).any()):
        return host
    centres = _wrap(halo_pos, box_size)
    reach = float(halo_r.max()) + (float(own_r.max()) if rule == "overlap" else 0.0)
    rows, idx, dist = _candidates(cKDTree(centres, boxsize=box_size), centres, _wrap(pos, box_size), box_size,
                                  k, reach)
    ok = dist < halo_r[idx] if rule == "inside" else dist <= own_r[rows] + halo_r[idx]
    rows, idx = rows[ok], idx[ok]
    first = np.ones(len(rows), dtype=bool)  # each row's candidates come nearest first
    first[1:] = rows[1:] != rows[:-1]
    host[rows[first]] = idx[first]
    return host
