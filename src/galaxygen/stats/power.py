"""Power spectra of periodic fields: auto P(k), cross P_ab(k), r(k) and transfer functions.

Conventions (as Pylians' ``Pk_library``, so results agree bin by bin):

- δ = field / mean − 1; δ_k = FFT[δ] (unnormalised, torch ``rfftn``), P(k) = (L³ / N⁶) |δ_k|².
- The mass-assignment window is deconvolved: δ_k / W(k), W = Π_i sinc(π j_i / N)^p
  (p = 1, 2, 3 for NGP, CIC, TSC; Jing 2005, astro-ph/0409240).
- Spherical bins of width `bin_width` (default the fundamental k_F = 2π/L): mode j (integer units)
  goes to bin floor(|j| k_F / bin_width); the mean |k| of a bin's modes is its k. Only independent
  modes are counted: on the kz = 0 and kz = N/2 planes of the rfft half space half of the modes
  are conjugates of the others and are left out (Pylians' rule). The k = 0 mode is left out.
- Shot noise of a count field, 1/n̄ = L³ / Σ counts [(Mpc/h)³], is reported, not subtracted.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from galaxygen.errors import GalaxygenError
from galaxygen.mesh import integer_frequencies, rfft3, window


@dataclass(frozen=True, eq=False)
class PowerSpectrum:
    """Binned auto power spectrum.

    Attributes
    ----------
    k : ndarray (nbins,)  mean |k| of the modes in each bin [h/Mpc]
    power : ndarray (nbins,)  P(k) [(Mpc/h)^3], shot noise included
    n_modes : ndarray (nbins,)  independent modes per bin
    shot_noise : float or None  1/n̄ [(Mpc/h)^3] for count fields
    """

    k: np.ndarray
    power: np.ndarray
    n_modes: np.ndarray
    shot_noise: float | None
    box_size: float
    grid: int

    def as_dict(self) -> dict:
        return {"k": self.k.tolist(), "power": self.power.tolist(), "n_modes": self.n_modes.tolist(),
                "shot_noise": self.shot_noise, "box_size": self.box_size, "grid": self.grid,
                "k_nyquist": nyquist(self.grid, self.box_size)}


@dataclass(frozen=True, eq=False)
class CrossPower:
    """Binned cross power of fields a and b with both autos.

    r = P_ab / sqrt(P_aa P_bb) (cross-correlation coefficient); transfer = sqrt(P_aa / P_bb).
    """

    k: np.ndarray
    p_ab: np.ndarray
    p_aa: np.ndarray
    p_bb: np.ndarray
    n_modes: np.ndarray
    shot_noise_a: float | None
    shot_noise_b: float | None
    box_size: float
    grid: int

    @property
    def r(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.p_ab / np.sqrt(self.p_aa * self.p_bb)

    @property
    def transfer(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.p_aa / self.p_bb)

    def as_dict(self) -> dict:
        return {"k": self.k.tolist(), "p_ab": self.p_ab.tolist(), "p_aa": self.p_aa.tolist(),
                "p_bb": self.p_bb.tolist(), "r": self.r.tolist(), "transfer": self.transfer.tolist(),
                "n_modes": self.n_modes.tolist(), "shot_noise_a": self.shot_noise_a,
                "shot_noise_b": self.shot_noise_b, "box_size": self.box_size, "grid": self.grid,
                "k_nyquist": nyquist(self.grid, self.box_size)}


def nyquist(grid: int, box_size: float) -> float:
    """Nyquist wavenumber π N / L [h/Mpc]."""
    return math.pi * grid / box_size


def _as_field(field, name: str) -> torch.Tensor:
    t = field if isinstance(field, torch.Tensor) else torch.as_tensor(np.asarray(field))
    if t.ndim != 3 or len(set(t.shape)) != 1:
        raise GalaxygenError(f"{name}: expected a cubic grid (N, N, N), got shape {tuple(t.shape)}")
    return t


def overdensity(field) -> torch.Tensor:
    """δ = field / mean − 1 (float32 tensor; the mean in float64); an error for a zero mean."""
    t = _as_field(field, "field")
    mean = float(t.sum(dtype=torch.float64)) / t.numel()
    if not math.isfinite(mean) or mean == 0:
        raise GalaxygenError(f"field: mean is {mean}; δ = field/mean − 1 needs a positive mean "
                             "(an empty galaxy field has no power spectrum)")
    delta = t.to(torch.float32) / mean if t.dtype != torch.float32 else t / mean
    return delta.sub_(1.0)


@functools.lru_cache(maxsize=8)
def _window32(grid: int, scheme: str, device: torch.device) -> torch.Tensor:
    return window(grid, scheme, device=device).to(torch.float32)


def _fourier(field, scheme: str | None) -> torch.Tensor:
    """Window-deconvolved FFT of δ, (N, N, N//2+1) complex64 (Pylians also works in float32)."""
    delta = overdensity(field)
    dk = rfft3(delta)
    if scheme is not None:
        dk /= _window32(delta.shape[0], scheme, delta.device)
    return dk


@dataclass(frozen=True, eq=False)
class _Layout:
    index: torch.Tensor   # (N*N*(N//2+1),) bin of each rfft mode; left-out modes in the last bin
    k: np.ndarray         # mean |k| of each kept bin [h/Mpc]
    n_modes: np.ndarray   # independent modes of each kept bin
    keep: torch.Tensor    # which bins are returned (non-empty, not the overflow bin)


@functools.lru_cache(maxsize=4)
def _layout(grid: int, box_size: float, bin_width: float | None, k_max: float | None,
            device: torch.device) -> _Layout:
    """Bins of every rfft mode (cached: it depends only on the grid and the binning)."""
    kx, ky, kz = integer_frequencies(grid, device=device)
    k_int = torch.sqrt((kx * kx + ky * ky + kz * kz).to(torch.float64))  # |k| in units of k_F
    k_f = 2 * math.pi / box_size
    width = 1.0 if bin_width is None else bin_width / k_f
    if not width > 0:
        raise GalaxygenError(f"bin_width: expected a positive width in h/Mpc, got {bin_width}")
    idx = torch.floor(k_int / width + 1e-9).to(torch.int64)
    drop = torch.zeros(idx.shape, dtype=torch.bool, device=device)
    mid = grid // 2
    for plane in ({0, mid} if grid % 2 == 0 else {0}):
        # self-conjugate planes: keep kx > 0, and for kx in {0, N/2} keep ky >= 0 (Pylians' rule)
        kx2, ky2 = kx[:, :, 0].expand(grid, grid), ky[:, :, 0].expand(grid, grid)
        edge = (kx2 == 0) | ((kx2 == mid) & (grid % 2 == 0))
        drop[:, :, plane] = (kx2 < 0) | (edge & (ky2 < 0))
    drop[0, 0, 0] = True  # the mean
    if k_max is not None:
        drop |= k_int * k_f > k_max
    overflow = int(idx.max()) + 1
    idx = torch.where(drop, overflow, idx).flatten()
    n_modes = torch.bincount(idx, minlength=overflow + 1).to(torch.float64)
    k_sum = torch.bincount(idx, weights=k_int.flatten() * k_f, minlength=overflow + 1)
    keep = n_modes > 0
    keep[overflow] = False
    return _Layout(index=idx, k=(k_sum[keep] / n_modes[keep]).cpu().numpy(),
                   n_modes=n_modes[keep].cpu().numpy(), keep=keep)


def _abs2(dk: torch.Tensor) -> torch.Tensor:
    """|δ_k|^2 of a complex tensor, real."""
    return torch.view_as_real(dk).square().sum(-1)


def _binned(values: list[torch.Tensor], layout: _Layout) -> list[np.ndarray]:
    """Mean of each (N, N, N//2+1) mode array over the bins of `layout`."""
    n = torch.as_tensor(layout.n_modes, device=layout.keep.device)
    out = []
    for v in values:
        sums = torch.bincount(layout.index, weights=v.flatten().to(torch.float64),
                              minlength=len(layout.keep))
        out.append((sums[layout.keep] / n).cpu().numpy())
    return out


def _shot_noise(field, box_size: float, counts: bool) -> float | None:
    if not counts:
        return None
    total = float(_as_field(field, "field").sum(dtype=torch.float64))
    return box_size ** 3 / total if total > 0 else None


def power_spectrum(field, box_size: float, *, scheme: str | None = "ngp", bin_width: float | None = None,
                   k_max: float | None = None, counts: bool = True) -> PowerSpectrum:
    """Auto power spectrum of δ = field/mean − 1.

    Parameters
    ----------
    field : ndarray or tensor (N, N, N)
        A density or count field (not δ). Box files hold NGP counts: the default scheme.
    box_size : float  [Mpc/h]
    scheme : {"ngp", "cic", "tsc"} or None
        Mass-assignment window to deconvolve (None: none).
    bin_width : float, optional
        Bin width [h/Mpc]; default the fundamental 2π/L.
    k_max : float, optional
        Leave out modes with |k| > k_max [h/Mpc].
    counts : bool
        The field holds counts: report the shot noise 1/n̄.
    """
    f = _as_field(field, "field")
    dk = _fourier(f, scheme)
    grid = f.shape[0]
    norm = box_size ** 3 / float(grid) ** 6
    layout = _layout(grid, float(box_size), bin_width, k_max, dk.device)
    (pk,) = _binned([_abs2(dk)], layout)
    return PowerSpectrum(k=layout.k, power=pk * norm, n_modes=layout.n_modes,
                         shot_noise=_shot_noise(f, box_size, counts),
                         box_size=float(box_size), grid=grid)


def cross_power(a, b, box_size: float, *, scheme: str | None = "ngp", scheme_b: str | None = "same",
                bin_width: float | None = None, k_max: float | None = None,
                counts: bool = True) -> CrossPower:
    """Cross power P_ab(k) = <Re(δ_a δ_b*)> with both autos, r(k) and transfer (see CrossPower).

    `scheme_b` defaults to `scheme`; other parameters as `power_spectrum`.
    """
    fa, fb = _as_field(a, "a"), _as_field(b, "b")
    if fa.shape != fb.shape:
        raise GalaxygenError(f"cross power: grids differ, {tuple(fa.shape)} vs {tuple(fb.shape)}")
    da = _fourier(fa, scheme)
    db = _fourier(fb, scheme if scheme_b == "same" else scheme_b)
    grid = fa.shape[0]
    norm = box_size ** 3 / float(grid) ** 6
    layout = _layout(grid, float(box_size), bin_width, k_max, da.device)
    pab, paa, pbb = _binned([da.real * db.real + da.imag * db.imag, _abs2(da), _abs2(db)], layout)
    return CrossPower(k=layout.k, p_ab=pab * norm, p_aa=paa * norm, p_bb=pbb * norm, n_modes=layout.n_modes,
                      shot_noise_a=_shot_noise(fa, box_size, counts),
                      shot_noise_b=_shot_noise(fb, box_size, counts), box_size=float(box_size), grid=grid)
