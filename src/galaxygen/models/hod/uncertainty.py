"""Uncertainties of fitted HOD parameters: finite-difference Hessians of −ln L, their inverse with
the directions the data do not constrain, the delta method for a derived parameter, and the
parameters left at an edge of their search range (used by the likelihood fit,
`galaxygen.models.hod.fit`, and the P(k) fit, `galaxygen.models.hod.fit_pk`).
"""

from __future__ import annotations

import numpy as np


def hessian(f, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Central finite-difference Hessian of scalar f at x with steps h."""
    n = len(x)
    hess = np.zeros((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            if i == j:
                e = np.zeros(n)
                e[i] = h[i]
                hess[i, i] = (f(x + e) - 2 * f0 + f(x - e)) / h[i] ** 2
            else:
                ei, ej = np.zeros(n), np.zeros(n)
                ei[i], ej[j] = h[i], h[j]
                hess[i, j] = hess[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                           + f(x - ei - ej)) / (4 * h[i] * h[j])
    return hess


def covariance_from_hessian(hess: np.ndarray) -> tuple[np.ndarray, bool]:
    """Inverse of the Hessian of −ln L; (cov, singular). Directions the data do not constrain
    (non-positive or non-finite curvature) give infinite variance to the parameters in them."""
    n = len(hess)
    if not np.all(np.isfinite(hess)):
        return np.full((n, n), np.inf), True
    lam, vec = np.linalg.eigh(0.5 * (hess + hess.T))
    good = lam > 1e-10 * max(abs(lam).max(), 1e-300)
    cov = (vec[:, good] / lam[good]) @ vec[:, good].T
    if good.all():
        return cov, False
    flat = (np.abs(vec[:, ~good]) > 0.1).any(axis=1)
    cov[flat, :] = cov[:, flat] = np.nan
    cov[flat, flat] = np.inf
    return cov, True


def add_derived(cov_free: np.ndarray, jac: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Covariance of (derived, free...) from that of the free parameters and the derived one's
    gradient `jac` (delta method); a flat direction the derived parameter does not depend on
    (|jac| × step below 1e-6) leaves it finite."""
    n = len(jac)
    flat = ~np.isfinite(np.diag(cov_free))
    finite = np.where(np.isfinite(cov_free), cov_free, 0.0)
    out = np.zeros((n + 1, n + 1))
    out[1:, 1:] = cov_free
    out[0, 1:] = out[1:, 0] = jac @ finite
    out[0, 0] = jac @ finite @ jac
    if (flat & (np.abs(jac) * step > 1e-6)).any():
        out[0, 0] = np.inf
        out[0, 1:] = out[1:, 0] = np.nan
    return out


def derivative(f, x: np.ndarray, step: np.ndarray, h: float) -> float:
    """df/dx along `step` (length h): central, or one-sided where f is undefined (None) on one side
    (the edge of the feasible region); NaN when undefined on both."""
    hi, lo = f(x + step), f(x - step)
    if hi is not None and lo is not None:
        return (hi - lo) / (2 * h)
    mid = f(x)
    if hi is not None:
        return (hi - mid) / h
    if lo is not None:
        return (mid - lo) / h
    return float("nan")


BOUND_TOL = 1e-3  # a parameter within this fraction of its range from an edge is "at the bound"


def at_bounds(params: dict[str, float], bounds: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """The parameters within BOUND_TOL × (high − low) of an edge of their range, with the range."""
    out = {}
    for name, (lo, hi) in bounds.items():
        v, tol = params.get(name), BOUND_TOL * (hi - lo)
        if v is not None and (abs(v - lo) <= tol or abs(v - hi) <= tol):
            out[name] = (float(lo), float(hi))
    return out
