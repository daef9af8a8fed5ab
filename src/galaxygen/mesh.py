"""Mass assignment on a periodic mesh: paint particles onto a grid, read a grid back at particles.

Schemes NGP, CIC and TSC (Hockney & Eastwood 1988, ch. 5). Voxel ``i`` covers [i h, (i+1) h) with
``h = box_size / grid`` and its node sits at its centre (i + 1/2) h, so NGP painting gives the
number of particles per voxel. (Pylians puts nodes at i h: ``paint(pos)`` equals Pylians'
``MA(pos - h/2)``.) Positions outside [0, L) wrap periodically.

On the CPU the kernels are numba-compiled and threaded over slabs of x-planes, with the particles
counting-sorted by their first x-plane: every voxel receives its contributions in the same order
whatever the thread count, so results are bit-identical for 1 or many threads. On other devices the
same stencils run as torch scatter/gather. All arithmetic on positions is float64.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

from galaxygen.errors import GalaxygenError

#: Stencil width (and window exponent) of each scheme.
SCHEMES = {"ngp": 1, "cic": 2, "tsc": 3}


def scheme_order(scheme: str) -> int:
    """Stencil width p of `scheme` (1 NGP, 2 CIC, 3 TSC); a clear error for an unknown name."""
    try:
        return SCHEMES[scheme.lower()]
    except (KeyError, AttributeError):
        raise GalaxygenError(f"mass-assignment scheme {scheme!r} unknown; expected one of {list(SCHEMES)}")


# --------------------------------------------------------------------------------------------
# 1-D stencils, shared by the numba and torch paths.  u = x / h in voxel units.
#   NGP: first = floor(u);          w0 = 1
#   CIC: first = floor(u - 1/2);    d = u - 1/2 - first in [0, 1):  w = (1 - d, d)
#   TSC: j = floor(u), first = j-1; d = u - 1/2 - j in [-1/2, 1/2):
#        w = (1/2 (1/2 - d)^2, 3/4 - d^2, 1/2 (1/2 + d)^2)
# --------------------------------------------------------------------------------------------

@numba.njit(cache=True, inline="always")
def _stencil(u, p):
    """(first index, w0, w1, w2) of the 1-D stencil at u = x / h, u already wrapped into [0, N)."""
    if p == 1:
        return int(math.floor(u)), 1.0, 0.0, 0.0
    if p == 2:
        f = math.floor(u - 0.5)
        d = u - 0.5 - f
        return int(f), 1.0 - d, d, 0.0
    j = math.floor(u)
    d = u - 0.5 - j
    return int(j) - 1, 0.5 * (0.5 - d) ** 2, 0.75 - d * d, 0.5 * (0.5 + d) ** 2


@numba.njit(cache=True, inline="always")
def _pick(o, v0, v1, v2):
    return v0 if o == 0 else (v1 if o == 1 else v2)


@numba.njit(cache=True, inline="always")
def _wrap_index(i, n):
    """i in [-n, 2n) -> [0, n)."""
    return i + n if i < 0 else (i - n if i >= n else i)


@numba.njit(cache=True, inline="always")
def _wrap_u(x, inv_h, n):
    """Position in voxel units wrapped into [0, n)."""
    u = x * inv_h
    if u < 0.0 or u >= n:
        u -= n * math.floor(u / n)
        if u >= n:  # rounding of a tiny negative u
            u = 0.0
    return u


@numba.njit(cache=True, parallel=True)
def _first_plane(pos, inv_h, p, n_grid, out):
    for i in numba.prange(pos.shape[0]):
        out[i] = _wrap_index(_stencil(_wrap_u(pos[i, 0], inv_h, n_grid), p)[0], n_grid)
    return out


@numba.njit(cache=True)
def _counting_sort(keys, n_keys, order):
    """Stable order of `keys` (ints in [0, n_keys)), written into `order`, and each key's start."""
    start = np.zeros(n_keys + 1, dtype=np.int64)
    for k in keys:
        start[k + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    fill = start[:-1].copy()
    for i in range(keys.shape[0]):
        k = keys[i]
        order[fill[k]] = i
        fill[k] += 1
    return order, start


@numba.njit(cache=True, parallel=True)
def _gather(pos, weights, use_weights, order):
    """Positions (and weights) in `order`: the paint loop then streams through memory."""
    out = np.empty((order.shape[0], 3), dtype=pos.dtype)
    w = np.empty(order.shape[0] if use_weights else 1, dtype=weights.dtype)
    for t in numba.prange(order.shape[0]):
        i = order[t]
        out[t, 0] = pos[i, 0]
        out[t, 1] = pos[i, 1]
        out[t, 2] = pos[i, 2]
        if use_weights:
            w[t] = weights[i]
    return out, w


@functools.lru_cache(maxsize=None)
def _kernels(p: int):
    """Paint and readout kernels for stencil width p (a compile-time constant: loops unroll)."""

    @numba.njit(cache=True, nogil=True)
    def paint_slab(pos, weights, use_weights, inv_h, start, out, a, b):
        """Paint into x-planes [a, b) the particles (sorted by first x-plane) that reach them."""
        n = out.shape[0]
        # source planes whose stencils reach [a, b): a-p+1 .. b-1, visited in cyclic order, so
        # every voxel gets its contributions in the same order whatever the slab partition
        for s in range(a - p + 1, b):
            plane = _wrap_index(s, n)
            for i in range(start[plane], start[plane + 1]):
                m = weights[i] if use_weights else 1.0
                _, wx0, wx1, wx2 = _stencil(_wrap_u(pos[i, 0], inv_h, n), p)
                fy, wy0, wy1, wy2 = _stencil(_wrap_u(pos[i, 1], inv_h, n), p)
                fz, wz0, wz1, wz2 = _stencil(_wrap_u(pos[i, 2], inv_h, n), p)
                iy0, iy1, iy2 = _wrap_index(fy, n), _wrap_index(fy + 1, n), _wrap_index(fy + 2, n)
                iz0, iz1, iz2 = _wrap_index(fz, n), _wrap_index(fz + 1, n), _wrap_index(fz + 2, n)
                for ox in range(p):
                    gx = s + ox  # the particle's first plane is s (mod n): s + ox is unwrapped
                    if gx < a or gx >= b:
                        continue
                    ix = _wrap_index(gx, n)
                    wxo = m * _pick(ox, wx0, wx1, wx2)
                    for oy in range(p):
                        iy = _pick(oy, iy0, iy1, iy2)
                        wxy = wxo * _pick(oy, wy0, wy1, wy2)
                        for oz in range(p):
                            out[ix, iy, _pick(oz, iz0, iz1, iz2)] += wxy * _pick(oz, wz0, wz1, wz2)
        return out

    @numba.njit(cache=True, nogil=True)
    def readout_range(field, pos, inv_h, out, lo, hi):
        """Interpolate `field` (C, N, N, N) at particles lo..hi-1 into out[lo:hi] (n, C)."""
        n = field.shape[1]
        for i in range(lo, hi):
            fx, wx0, wx1, wx2 = _stencil(_wrap_u(pos[i, 0], inv_h, n), p)
            fy, wy0, wy1, wy2 = _stencil(_wrap_u(pos[i, 1], inv_h, n), p)
            fz, wz0, wz1, wz2 = _stencil(_wrap_u(pos[i, 2], inv_h, n), p)
            for c in range(field.shape[0]):
                acc = 0.0
                for ox in range(p):
                    ix = _wrap_index(fx + ox, n)
                    wx = _pick(ox, wx0, wx1, wx2)
                    for oy in range(p):
                        iy = _wrap_index(fy + oy, n)
                        wxy = wx * _pick(oy, wy0, wy1, wy2)
                        for oz in range(p):
                            acc += wxy * _pick(oz, wz0, wz1, wz2) * field[c, ix, iy, _wrap_index(fz + oz, n)]
                out[i, c] = acc
        return out

    return paint_slab, readout_range


def _threads() -> int:
    return max(1, numba.get_num_threads())


def _in_threads(fn, n_tasks: int, bounds) -> None:
    """Run fn(lo, hi) over `n_tasks` ranges from `bounds(t)`, in threads (the kernels drop the GIL)."""
    if n_tasks == 1:
        fn(*bounds(0))
        return
    with ThreadPoolExecutor(max_workers=n_tasks) as pool:
        for f in [pool.submit(fn, *bounds(t)) for t in range(n_tasks)]:
            f.result()


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _check_pos(pos: torch.Tensor) -> None:
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise GalaxygenError(f"positions: expected shape (n, 3) in Mpc/h, got {tuple(pos.shape)}")


def paint(pos, grid: int, box_size: float, *, scheme: str = "cic", weights=None,
          backend: str = "auto") -> torch.Tensor:
    """Paint particles onto a periodic grid.

    Parameters
    ----------
    pos : tensor or ndarray, (n, 3)
        Positions [Mpc/h]; any real values, wrapped into [0, box_size).
    grid : int
        Voxels per side N.
    box_size : float
        Side of the periodic box [Mpc/h].
    scheme : {"ngp", "cic", "tsc"}
    weights : tensor or ndarray, (n,), optional
        Mass per particle (default 1).
    backend : {"auto", "numba", "torch"}
        "auto": numba on the CPU, torch scatter elsewhere.

    Returns
    -------
    torch.Tensor, float32 (N, N, N) on the device of `pos`; its sum equals the total weight.
    """
    p = scheme_order(scheme)
    pos_t = _as_tensor(pos)
    _check_pos(pos_t)
    w_t = None if weights is None else _as_tensor(weights)
    if w_t is not None and w_t.shape != (pos_t.shape[0],):
        raise GalaxygenError(f"weights: expected shape ({pos_t.shape[0]},), got {tuple(w_t.shape)}")
    inv_h = grid / float(box_size)
    if backend == "numba" or (backend == "auto" and pos_t.device.type == "cpu"):
        pos_np = pos_t.detach().cpu().numpy()
        if pos_np.dtype not in (np.float32, np.float64):
            pos_np = pos_np.astype(np.float64)
        w_np = (np.ones(1, np.float32) if w_t is None
                else w_t.detach().cpu().numpy().astype(np.float32, copy=False))
        out = np.zeros((grid,) * 3, dtype=np.float32)
        if len(pos_np):
            first = _first_plane(pos_np, inv_h, p, grid, np.empty(len(pos_np), dtype=np.int32))
            order = np.empty(len(pos_np), dtype=np.int32 if len(pos_np) < 2**31 else np.int64)
            order, start = _counting_sort(first, grid, order)
            pos_np, w_np = _gather(pos_np, w_np, w_t is not None, order)
            del order
            n_blocks = min(grid, _threads())
            paint_slab = _kernels(p)[0]
            _in_threads(lambda a, b: paint_slab(pos_np, w_np, w_t is not None, inv_h, start, out, a, b),
                        n_blocks, lambda t: (t * grid // n_blocks, (t + 1) * grid // n_blocks))
        return torch.from_numpy(out).to(pos_t.device)
    if backend not in ("auto", "torch"):
        raise GalaxygenError(f"paint backend {backend!r} unknown; expected auto, numba or torch")
    return _paint_torch(pos_t, grid, inv_h, p, w_t)


def _stencil_torch(u: torch.Tensor, p: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """First stencil index (n,) int64 and the p weights (n,) each, for u = x / h (float64)."""
    if p == 1:
        f = torch.floor(u)
        return f.long(), [torch.ones_like(u)]
    if p == 2:
        f = torch.floor(u - 0.5)
        d = u - 0.5 - f
        return f.long(), [1.0 - d, d]
    j = torch.floor(u)
    d = u - 0.5 - j
    return j.long() - 1, [0.5 * (0.5 - d) ** 2, 0.75 - d * d, 0.5 * (0.5 + d) ** 2]


def _stencils(pos: torch.Tensor, inv_h: float, p: int, grid: int):
    u = pos.to(torch.float64) * inv_h
    return [(f % grid, w) for f, w in (_stencil_torch(u[:, a], p) for a in range(3))]


def _paint_torch(pos, grid, inv_h, p, weights) -> torch.Tensor:
    out = torch.zeros(grid ** 3, dtype=torch.float64, device=pos.device)
    (fx, wx), (fy, wy), (fz, wz) = _stencils(pos, inv_h, p, grid)
    m = None if weights is None else weights.to(torch.float64)
    for ox in range(p):
        ix = (fx + ox) % grid
        for oy in range(p):
            iy = (fy + oy) % grid
            wxy = wx[ox] * wy[oy] if m is None else m * wx[ox] * wy[oy]
            for oz in range(p):
                idx = (ix * grid + iy) * grid + (fz + oz) % grid
                out.index_add_(0, idx, wxy * wz[oz])
    return out.view(grid, grid, grid).to(torch.float32)


def readout(field, pos, box_size: float, *, scheme: str = "cic", backend: str = "auto") -> torch.Tensor:
    """Interpolate a periodic grid at particle positions (the adjoint of `paint`).

    Parameters
    ----------
    field : tensor or ndarray, (N, N, N) or (C, N, N, N)
    pos : tensor or ndarray, (n, 3) [Mpc/h]
    box_size : float [Mpc/h]
    scheme : {"ngp", "cic", "tsc"}

    Returns
    -------
    torch.Tensor (n,) or (n, C), dtype of `field`, on the device of `field`.
    """
    p = scheme_order(scheme)
    f_t = _as_tensor(field)
    squeeze = f_t.ndim == 3
    if squeeze:
        f_t = f_t[None]
    if f_t.ndim != 4 or len(set(f_t.shape[1:])) != 1:
        raise GalaxygenError(f"field: expected shape (N,N,N) or (C,N,N,N), got {tuple(f_t.shape)}")
    grid = f_t.shape[-1]
    pos_t = _as_tensor(pos).to(f_t.device)
    _check_pos(pos_t)
    inv_h = grid / float(box_size)
    if backend == "numba" or (backend == "auto" and f_t.device.type == "cpu"):
        f_np = np.ascontiguousarray(f_t.detach().cpu().numpy())
        pos_np = pos_t.detach().cpu().numpy()
        if pos_np.dtype not in (np.float32, np.float64):
            pos_np = pos_np.astype(np.float64)
        out = np.empty((len(pos_np), f_np.shape[0]), dtype=f_np.dtype)
        if len(pos_np):
            n_part, n_tasks = len(pos_np), min(len(pos_np), _threads())
            readout_range = _kernels(p)[1]
            _in_threads(lambda lo, hi: readout_range(f_np, pos_np, inv_h, out, lo, hi),
                        n_tasks, lambda t: (t * n_part // n_tasks, (t + 1) * n_part // n_tasks))
        res = torch.from_numpy(out)
    else:
        res = _readout_torch(f_t, pos_t, inv_h, p, grid)
    return res[:, 0] if squeeze else res


def _readout_torch(field, pos, inv_h, p, grid) -> torch.Tensor:
    flat = field.reshape(field.shape[0], -1)
    out = torch.zeros(pos.shape[0], field.shape[0], dtype=torch.float64, device=field.device)
    (fx, wx), (fy, wy), (fz, wz) = _stencils(pos, inv_h, p, grid)
    for ox in range(p):
        ix = (fx + ox) % grid
        for oy in range(p):
            iy = (fy + oy) % grid
            for oz in range(p):
                idx = (ix * grid + iy) * grid + (fz + oz) % grid
                w = wx[ox] * wy[oy] * wz[oz]
                out += w[:, None] * flat[:, idx].T.to(torch.float64)
    return out.to(field.dtype)


# --------------------------------------------------------------------------------------------
# Fourier space helpers (rfftn layout: last axis has N//2 + 1 entries)
# --------------------------------------------------------------------------------------------

def rfft3(field: torch.Tensor) -> torch.Tensor:
    """3-D real-to-complex FFT of the last three axes, unnormalised: the same as ``torch.fft.rfftn``
    over them, (..., N0, N1, N2) -> (..., N0, N1, N2//2+1).

    On the CPU it is composed of batched 1-D transforms (r2c along the last axis, then c2c along
    the other two): MKL's multi-dimensional transform splits its work by thread and its results
    differ with the thread count (about 1 float32 ulp in most modes, measured on AVX-512 Xeons),
    while batched 1-D transforms compute each line the same way whatever the threads. Results on
    the CPU are therefore bit-identical for any thread count; elsewhere (CUDA) the native
    multi-dimensional transform is used.
    """
    if field.device.type != "cpu":
        return torch.fft.rfftn(field, dim=(-3, -2, -1))
    out = torch.fft.rfft(field, dim=-1)
    out = torch.fft.fft(out, dim=-2)
    return torch.fft.fft(out, dim=-3)


def irfft3(modes: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of `rfft3`: ``torch.fft.irfftn(modes, s=shape)`` over the last three axes (1/N³
    normalised), composed of 1-D transforms on the CPU for thread-count-independent results."""
    if modes.device.type != "cpu":
        return torch.fft.irfftn(modes, s=shape, dim=(-3, -2, -1))
    out = torch.fft.ifft(modes, n=shape[0], dim=-3)
    out = torch.fft.ifft(out, n=shape[1], dim=-2)
    return torch.fft.irfft(out, n=shape[2], dim=-1)


def integer_frequencies(grid: int, *, device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer wavenumbers (kx, ky, kz) on the rfftn grid, broadcastable to (N, N, N//2+1).

    Index j > N/2 maps to j - N; the Nyquist index N/2 stays +N/2 (as in Pylians).
    """
    j = torch.arange(grid, device=device)
    full = torch.where(j > grid // 2, j - grid, j)
    half = torch.arange(grid // 2 + 1, device=device)
    return full.view(-1, 1, 1), full.view(1, -1, 1), half.view(1, 1, -1)


def wavenumbers(grid: int, box_size: float, *, device=None,
                dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Physical wavenumbers (kx, ky, kz) [h/Mpc] on the rfftn grid, k = 2π j / L."""
    k_f = 2 * math.pi / box_size
    return tuple(k.to(dtype) * k_f for k in integer_frequencies(grid, device=device))


def window(grid: int, scheme: str, *, device=None, dtype=torch.float64) -> torch.Tensor:
    """Fourier window of a scheme on the rfftn grid, (N, N, N//2+1).

    W(k) = prod_i [sinc(pi j_i / N)]^p with p = 1, 2, 3 for NGP, CIC, TSC (Hockney & Eastwood;
    Jing 2005, astro-ph/0409240). Divide a painted field's Fourier modes by W to deconvolve.
    """
    p = scheme_order(scheme)
    out = torch.ones((grid, grid, grid // 2 + 1), dtype=dtype, device=device)
    for j in integer_frequencies(grid, device=device):
        x = j.to(dtype) / grid
        out = out * torch.sinc(x) ** p  # torch.sinc(x) = sin(pi x) / (pi x)
    return out
