"""Friends-of-friends (FoF) halo finder for periodic boxes, and the halo catalogue it writes.

Linking (Davis et al. 1985): two particles are friends when closer than the linking length
``b * L / N^(1/3)`` (b = 0.2 by default); halos are the connected groups of at least
``min_members`` particles.

Algorithm (after Creasey 2018, "hfof", arXiv:1712.06917): particles are binned on a grid of cells
of side ``c <= ll / sqrt(3)``, so the members of one cell are always friends and only *cells* need
linking. Occupied cells are sorted by key, a row table finds the neighbouring cells of the
(at most 5x5x5) stencil, and a union-find over cells joins two cells as soon as one pair of
their particles is closer than ``ll``; cells already in one group are never compared. No pair list
is ever built: memory is O(n) (about 100 bytes per particle at the peak of `find_halos`) and the
time is nearly linear.

Halo properties (centre, radius, concentration, environment) are in `halo_properties`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from galaxygen.errors import GalaxygenError
from galaxygen.halos.properties import (group_members, halo_shapes, mean_member_vel,
                                                smoothed_overdensity)


def _as_numpy(a, dtype) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(a, dtype=dtype)


# --------------------------------------------------------------------------------------- linking
@numba.njit(cache=True)
def _bin_cells(pos, box_size, m):
    """Cell key per particle for an m^3 grid of cells on [0, L)."""
    n = pos.shape[0]
    keys = np.empty(n, dtype=np.int64)
    scale = m / box_size
    for p in range(n):
        k = np.int64(0)
        for d in range(3):
            i = np.int64(math.floor(pos[p, d] * scale)) % m
            k = k * m + i
        keys[p] = k
    return keys


@numba.njit(cache=True)
def _cell_tables(keys, order, pos, m):
    """Sorted positions, occupied cells (start offsets and keys) and the (ix, iy) row table."""
    n = order.shape[0]
    spos = np.empty((n, 3), dtype=np.float32)
    for k in range(n):
        p = order[k]
        spos[k, 0] = pos[p, 0]
        spos[k, 1] = pos[p, 1]
        spos[k, 2] = pos[p, 2]
    n_cells = 0
    for k in range(n):
        if k == 0 or keys[order[k]] != keys[order[k - 1]]:
            n_cells += 1
    cell_start = np.empty(n_cells + 1, dtype=np.int64)
    cell_key = np.empty(n_cells, dtype=np.int64)
    c = 0
    for k in range(n):
        if k == 0 or keys[order[k]] != keys[order[k - 1]]:
            cell_start[c] = k
            cell_key[c] = keys[order[k]]
            c += 1
    cell_start[n_cells] = n
    row_start = np.zeros(m * m + 1, dtype=np.int64)
    for c in range(n_cells):
        row_start[cell_key[c] // m + 1] += 1
    for r in range(m * m):
        row_start[r + 1] += row_start[r]
    return spos, cell_start, cell_key, row_start


@numba.njit(cache=True)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@numba.njit(cache=True)
def _cells_touch(spos, s0, e0, s1, e1, box_size, ll2):
    half = 0.5 * box_size
    for i in range(s0, e0):
        xi, yi, zi = spos[i, 0], spos[i, 1], spos[i, 2]
        for j in range(s1, e1):
            dx = abs(xi - spos[j, 0])
            dy = abs(yi - spos[j, 1])
            dz = abs(zi - spos[j, 2])
            if dx > half:
                dx = box_size - dx
            if dy > half:
                dy = box_size - dy
            if dz > half:
                dz = box_size - dz
            if dx * dx + dy * dy + dz * dz <= ll2:
                return True
    return False


@numba.njit(cache=True)
def _link_range(spos, cell_start, cell_key, parent, a, ra, lo, hi, klo, khi, box_size, ll2):
    """Link cell a (root ra) with the cells of keys in [klo, khi] among cell_key[lo:hi]; new root."""
    while lo < hi:  # first cell with key >= klo
        mid = (lo + hi) // 2
        if cell_key[mid] < klo:
            lo = mid + 1
        else:
            hi = mid
    b = lo
    while b < cell_key.shape[0] and cell_key[b] <= khi:
        if b != a:
            rb = _find(parent, b)
            if rb != ra and _cells_touch(spos, cell_start[a], cell_start[a + 1], cell_start[b],
                                         cell_start[b + 1], box_size, ll2):
                if ra < rb:
                    parent[rb] = ra
                else:
                    parent[ra] = rb
                    ra = rb
        b += 1
    return ra


@numba.njit(cache=True)
def _link_cells(spos, cell_start, cell_key, row_start, m, rows, box_size, ll2):
    """Union-find over occupied cells; returns the root cell of every cell.

    rows : (r, 4) int64, stencil rows (dx, dy, dz_lo, dz_hi) of the half stencil.
    """
    n_cells = cell_key.shape[0]
    parent = np.arange(n_cells)
    for a in range(n_cells):
        key = cell_key[a]
        ix = key // (m * m)
        iy = (key // m) % m
        iz = key % m
        ra = _find(parent, a)
        for s in range(rows.shape[0]):
            row = ((ix + rows[s, 0]) % m) * m + (iy + rows[s, 1]) % m
            lo = row_start[row]
            hi = row_start[row + 1]
            if lo == hi:
                continue
            zlo = iz + rows[s, 2]
            zhi = iz + rows[s, 3]
            if zhi - zlo + 1 >= m:  # the row wraps onto itself: every cell of it
                ra = _link_range(spos, cell_start, cell_key, parent, a, ra, lo, hi, row * m,
                                 row * m + m - 1, box_size, ll2)
            elif zlo < 0 or zhi >= m:  # two pieces across the periodic boundary
                zl = zlo % m
                zh = zhi % m
                ra = _link_range(spos, cell_start, cell_key, parent, a, ra, lo, hi, row * m + zl,
                                 row * m + m - 1, box_size, ll2)
                ra = _link_range(spos, cell_start, cell_key, parent, a, ra, lo, hi, row * m,
                                 row * m + zh, box_size, ll2)
            else:
                ra = _link_range(spos, cell_start, cell_key, parent, a, ra, lo, hi, row * m + zlo,
                                 row * m + zhi, box_size, ll2)
    for a in range(n_cells):
        parent[a] = _find(parent, a)
    return parent


@numba.njit(cache=True)
def _group_labels(parent, cell_start, order, min_members):
    """Particle labels (original order) numbered by group size, descending; -1 below min_members."""
    n_cells = parent.shape[0]
    n = order.shape[0]
    size = np.zeros(n_cells, dtype=np.int64)
    first = np.full(n_cells, n, dtype=np.int64)  # smallest original index, for a stable order
    for c in range(n_cells):
        r = parent[c]
        size[r] += cell_start[c + 1] - cell_start[c]
        for k in range(cell_start[c], cell_start[c + 1]):
            if order[k] < first[r]:
                first[r] = order[k]
    roots = np.flatnonzero(size >= min_members)
    rank = np.empty(roots.shape[0], dtype=np.int64)
    # sort by (-size, first member)
    keyed = np.empty(roots.shape[0], dtype=np.float64)
    for i in range(roots.shape[0]):
        keyed[i] = -size[roots[i]] * float(n + 1) + first[roots[i]]
    idx = np.argsort(keyed)
    new_label = np.full(n_cells, -1, dtype=np.int64)
    for i in range(idx.shape[0]):
        new_label[roots[idx[i]]] = i
        rank[i] = roots[idx[i]]
    labels = np.full(n, -1, dtype=np.int64)
    for c in range(n_cells):
        lab = new_label[parent[c]]
        if lab >= 0:
            for k in range(cell_start[c], cell_start[c + 1]):
                labels[order[k]] = lab
    return labels


def _stencil_rows(cell: float, ll: float) -> np.ndarray:
    """Half of the cell offsets whose closest points are within ll, as rows (dx, dy, dz_lo, dz_hi).

    Offsets (dx, dy, dz) > (0, 0, 0) lexicographically, so each pair of cells is visited once.
    """
    reach = int(math.ceil(ll / cell))
    gap = lambda d: max(abs(d) - 1, 0) ** 2  # noqa: E731  (closest distance, in cells, squared)
    out = []
    for dx in range(0, reach + 1):
        for dy in range(-reach if dx > 0 else 0, reach + 1):
            dzs = [dz for dz in range(-reach, reach + 1)
                   if (dx, dy, dz) > (0, 0, 0) and (gap(dx) + gap(dy) + gap(dz)) * cell * cell <= ll * ll]
            if dzs:
                out.append((dx, dy, min(dzs), max(dzs)))
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def fof_labels(pos, box_size: float, link_length: float, min_members: int = 20) -> np.ndarray:
    """Friends-of-friends group label of every particle in a periodic box.

    Parameters
    ----------
    pos : array (n, 3), numpy or torch
        Positions [Mpc/h] in [0, box_size) (wrapped periodically if not).
    box_size : float
        Side of the periodic box [Mpc/h].
    link_length : float
        Absolute linking length [Mpc/h] (b times the mean interparticle separation).
    min_members : int
        Smallest group kept.

    Returns
    -------
    labels : ndarray int64 (n,)
        Group of each particle: 0 for the largest group, 1 for the next, ... (ties by the smallest
        particle index); -1 for particles in groups of fewer than `min_members`.
    """
    pos = _as_numpy(pos, np.float32)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise GalaxygenError(f"fof: pos: expected shape (n, 3), got {pos.shape}")
    if not (box_size > 0 and 0 < link_length < box_size / 2):
        raise GalaxygenError(f"fof: expected 0 < link_length < box_size/2, got {link_length} and {box_size}")
    if min_members < 1:
        raise GalaxygenError(f"fof: min_members must be >= 1, got {min_members}")
    n = pos.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    m = max(1, int(math.ceil(box_size * math.sqrt(3.0) / link_length)))
    cell = box_size / m
    keys = _bin_cells(pos, float(box_size), m)
    order = np.argsort(keys, kind="stable")
    spos, cell_start, cell_key, row_start = _cell_tables(keys, order, pos, m)
    del keys
    rows = _stencil_rows(cell, link_length)
    parent = _link_cells(spos, cell_start, cell_key, row_start, m, rows, float(box_size),
                         float(link_length) ** 2)
    return _group_labels(parent, cell_start, order, int(min_members))


def find_halos(pos, box_size: float, particle_mass: float, *, vel=None, linking_length: float = 0.2,
               min_members: int = 20, environment_smoothing: float = 1.5,
               max_members_stored: int | None = None, return_labels: bool = False):
    """FoF halo catalogue of a periodic particle set, sorted by mass (descending).

    Parameters
    ----------
    pos : array (n, 3) [Mpc/h], numpy or torch
    box_size : float [Mpc/h]
    particle_mass : float [Msun/h]
    vel : array (n, 3) [km/s], optional
        Gives the halo column ``vel`` (mean member velocity).
    linking_length : float
        b, in units of the mean interparticle separation L / n^(1/3).
    min_members : int
    environment_smoothing : float
        Gaussian radius [Mpc/h] of the environment overdensity (0 or None: no column).
    max_members_stored : int, optional
        Keep at most this many members per halo in ``member_pos`` (an even stride through the
        members in particle order); None keeps all.
    return_labels : bool
        Also return the per-particle labels (as `fof_labels`).

    Returns
    -------
    dict of columns (box-file conventions): ``pos`` (h,3) float32 [Mpc/h], ``mass`` (h,) [Msun/h],
    ``n_particles`` int64, ``vel`` (h,3) float32 [km/s] when `vel` is given, ``radius`` (h,)
    R200m-like [Mpc/h], ``concentration`` (h,) NFW-equivalent (NaN below 4 members inside R200),
    ``environment`` (h,) smoothed overdensity, ``member_offset`` (h+1,) int64, ``member_pos``
    (m,3) float32 [Mpc/h]; and the labels (n,) if `return_labels`.
    """
    pos = _as_numpy(pos, np.float32)
    n = pos.shape[0]
    if n == 0:
        raise GalaxygenError("find_halos: no particles")
    if pos.min() < 0 or pos.max() >= box_size:
        pos = np.mod(pos, np.float32(box_size)).astype(np.float32) % np.float32(box_size)
    ll = linking_length * box_size / n ** (1.0 / 3.0)
    labels = fof_labels(pos, box_size, ll, min_members)
    n_halos = int(labels.max()) + 1 if n else 0
    offsets, index = group_members(labels, n_halos)
    n_mean = n / box_size**3
    centre, radius, conc = halo_shapes(pos, offsets, index, float(box_size), n_mean, 200.0)
    counts = np.diff(offsets)
    cat = {"pos": centre.astype(np.float32), "mass": counts * float(particle_mass),
           "n_particles": counts.astype(np.int64)}
    if vel is not None:
        vel = _as_numpy(vel, np.float32)
        if vel.shape != pos.shape:
            raise GalaxygenError(f"find_halos: vel: expected shape {pos.shape}, got {vel.shape}")
        cat["vel"] = mean_member_vel(vel, offsets, index).astype(np.float32)
    cat["radius"] = radius
    cat["concentration"] = conc
    if environment_smoothing:
        cat["environment"] = (smoothed_overdensity(pos, box_size, environment_smoothing, centre)
                              if n_halos else np.zeros(0))
    if max_members_stored is not None:
        keep = np.minimum(counts, int(max_members_stored))
        sel_off = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        sel = np.concatenate([offsets[h] + (np.arange(keep[h]) * counts[h]) // keep[h]
                              for h in range(n_halos)]) if n_halos else np.zeros(0, np.int64)
        cat["member_offset"], cat["member_pos"] = sel_off, pos[index[sel]]
    else:
        cat["member_offset"], cat["member_pos"] = offsets.astype(np.int64), pos[index]
    return (cat, labels) if return_labels else cat
