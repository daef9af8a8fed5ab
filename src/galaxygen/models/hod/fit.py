"""Maximum-likelihood HOD fits on per-halo occupation counts, with the number density imposed.

Data: halo masses M_i [Msun/h] (all halos of all training boxes) and the galaxies matched to each,
N_i; the target count N_t = n̄ V (all galaxies of the training boxes, matched or not). Each halo's
count is split as c_i = min(N_i, 1) (its "central") and s_i = N_i − c_i (satellites).

The density constraint Σ_i ⟨N|M_i⟩ = N_t is imposed exactly:

* zheng07: for every (M1, α, σ_logM, M0) the threshold M_min is solved from the density on the
  erf occupation (Brent's method), and the likelihood is maximised over the four others.
* seed3 / central-satellite: a step's expected count is piecewise constant in M_min, so the
  threshold is placed between two distinct halo masses (the k most massive halos occupied) and the
  constraint is solved for M1 in closed form, N_t = Σ_{i<k} [c + (M_i/M1)^α] (c = 1 for
  central-satellite, 0 for seed3); the profile likelihood over k and α is maximised.

Likelihood (Poisson / Bernoulli per halo) with a small background rate ε = `EPS` so that galaxies
the model cannot host (in a halo below M_min) cost ln ε each instead of making the fit impossible:

* seed3: N_i ~ Poisson(λ_i + ε), λ_i = (M_i/M1)^α [M_i > M_min].
* central-satellite / zheng07: c_i ~ Bernoulli(clip(⟨Ncen⟩, ε, 1 − ε)); s_i ~ Poisson(λ_i + ε)
  with λ_i = ((M_i − M0)/M1)^α (M0 = 0 for central-satellite) in halos with c_i = 1 (and, for
  central-satellite, in every halo above M_min).

Uncertainties: zheng07 from the inverse Hessian of −ln L (finite differences) in the free
parameters, M_min propagated through the constraint (delta method). Step models: σ(log M_min)
from the profile likelihood (the widest side of the Δ ln L = ½ interval over thresholds), the
conditional variance of α from −∂² ln L/∂α², correlations from the slope of the profile's α and
log M1 along log M_min (exact for a Gaussian likelihood).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.special import erf

from galaxygen.errors import GalaxygenError
from galaxygen.models.hod.occupation import make_model, model_class
from galaxygen.models.hod.uncertainty import add_derived, at_bounds, covariance_from_hessian, derivative, hessian

EPS = 1e-3  # background occupation rate of the likelihood
ALPHA_BOUNDS = (1e-3, 4.0)


@dataclass(frozen=True)
class LikelihoodFit:
    """Result of a fit: parameters (model's names), their covariance, max ln L and notes."""

    model: str
    params: dict[str, float]
    names: tuple[str, ...]
    covariance: np.ndarray
    log_likelihood: float
    expected_count: float
    extra: dict = field(default_factory=dict)
    bounds: dict = field(default_factory=dict)  # name -> (low, high): the range the fit searched

    @property
    def errors(self) -> dict[str, float]:
        d = np.sqrt(np.clip(np.diag(self.covariance), 0, None))
        return {n: float(e) for n, e in zip(self.names, d)}

    def warnings(self) -> list[str]:
        """Degenerate results: one line per parameter that ended at an edge of its search range
        (`at_bounds`), and one naming the parameters without a finite error."""
        out = [f"HOD fit ({self.model}): {name} = {self.params[name]:.4g} is at the edge of its search "
               f"range [{lo:.4g}, {hi:.4g}]: the data do not constrain it there; value and error are not "
               f"a measurement" for name, (lo, hi) in at_bounds(self.params, self.bounds).items()]
        loose = [n for n, e in self.errors.items() if not np.isfinite(e)]
        if loose:
            out.append(f"HOD fit ({self.model}): no finite error for {', '.join(loose)} (the likelihood is flat "
                       f"in some direction: these parameters are not constrained by the data)")
        return out


def _check(mass: np.ndarray, n_gal: np.ndarray, n_target: float) -> tuple[np.ndarray, np.ndarray]:
    mass = np.asarray(mass, dtype=np.float64)
    n_gal = np.asarray(n_gal, dtype=np.int64)
    if mass.shape != n_gal.shape or mass.ndim != 1 or len(mass) == 0:
        raise GalaxygenError(f"HOD fit: need equal-length 1-D halo masses and counts, got {mass.shape} "
                             f"and {n_gal.shape}")
    if not (mass > 0).all():
        raise GalaxygenError("HOD fit: halo masses must be positive [Msun/h]")
    if not n_target > 0:
        raise GalaxygenError("HOD fit: the training boxes hold no galaxies (target number density 0)")
    return mass, n_gal


# --------------------------------------------------------------------------------------------
# step models: seed3, central-satellite
# --------------------------------------------------------------------------------------------
class _StepProfile:
    """Profile likelihood of the step models over the threshold index k and α."""

    def __init__(self, model: str, mass, n_gal, n_target: float):
        order = np.argsort(-mass, kind="stable")
        self.model, self.n_t = model, float(n_target)
        self.m = mass[order]
        self.x = np.log(self.m / self.m[0])          # ln(M / M_max) <= 0, for stable powers
        self.n = n_gal[order].astype(np.float64)
        self.c = np.minimum(self.n, 1.0)
        self.s = self.n - self.c
        nh = len(self.m)
        # suffix sums for the halos outside the occupied set
        tail = lambda a: np.concatenate([np.cumsum(a[::-1])[::-1], [0.0]])  # noqa: E731
        self.tail_n, self.tail_c, self.tail_s = tail(self.n), tail(self.c), tail(self.s)
        self.tail_count = np.arange(nh, -1, -1, dtype=np.float64)
        # thresholds can only sit between distinct masses
        ks = np.flatnonzero(self.m[:-1] > self.m[1:]) + 1
        ks = np.append(ks, nh)
        if model == "central-satellite":
            ks = ks[ks < self.n_t]
        if len(ks) == 0:
            raise GalaxygenError(f"HOD fit ({model}): fewer galaxies ({self.n_t:g}) than the most "
                                 "massive halo group needs for one central each; cannot meet the density")
        self.ks = ks
        self.cache: dict[int, tuple[float, float, float]] = {}

    def log10_m_min(self, k: int) -> float:
        lo = np.log10(self.m[k - 1])
        return float(0.5 * (lo + np.log10(self.m[k]))) if k < len(self.m) else float(lo - 0.01)

    def rates(self, k: int, alpha: float) -> tuple[np.ndarray, float]:
        """Satellite (or seed3 total) means λ_i of the k occupied halos and log10 M1."""
        w = np.exp(alpha * self.x[:k])
        budget = self.n_t - (k if self.model == "central-satellite" else 0.0)
        lam = budget * w / w.sum()
        log10_m1 = float(np.log10(self.m[0]) - np.log10(budget / w.sum()) / max(alpha, 1e-12))
        return lam, log10_m1

    def loglike(self, k: int, alpha: float) -> float:
        lam, _ = self.rates(k, alpha)
        le = np.log(EPS)
        if self.model == "seed3":
            n = self.n[:k]
            inside = float(np.sum(n * np.log(lam + EPS) - lam - EPS))
            return inside + self.tail_n[k] * le - EPS * self.tail_count[k]
        c, s = self.c[:k], self.s[:k]
        l1 = np.log1p(-EPS)
        cen = float(np.sum(np.where(c > 0, l1, le))) + self.tail_c[k] * le + (self.tail_count[k] - self.tail_c[k]) * l1
        sat = float(np.sum(s * np.log(lam + EPS) - lam - EPS)) + self.tail_s[k] * le - EPS * self.tail_count[k]
        return cen + sat

    def best_alpha(self, k: int) -> tuple[float, float, float]:
        """(max ln L, α*, log10 M1*) at threshold index k."""
        if k not in self.cache:
            r = minimize_scalar(lambda a: -self.loglike(k, a), bounds=ALPHA_BOUNDS, method="bounded",
                                options={"xatol": 1e-6})
            a = float(r.x)
            self.cache[k] = (-float(r.fun), a, self.rates(k, a)[1])
        return self.cache[k]

    def search(self) -> int:
        """Position in `ks` of the profile maximum (coarse-to-fine)."""
        idx = np.unique(np.round(np.geomspace(1, len(self.ks), 48)).astype(int) - 1)
        while True:
            vals = [self.best_alpha(int(self.ks[i]))[0] for i in idx]
            b = int(np.argmax(vals))
            lo, hi = idx[max(b - 1, 0)], idx[min(b + 1, len(idx) - 1)]
            if hi - lo <= 24:
                full = np.arange(lo, hi + 1)
                vals = [self.best_alpha(int(self.ks[i]))[0] for i in full]
                return int(full[int(np.argmax(vals))])
            idx = np.unique(np.linspace(lo, hi, 17).round().astype(int))

    def scan(self, best: int, drop: float = 2.0) -> list[int]:
        """Positions in `ks` around `best` out to Δ ln L > `drop` on each side (or the ends)."""
        top = self.best_alpha(int(self.ks[best]))[0]
        out = {best}
        for sign in (-1, 1):
            step, edge = 1, best
            while True:
                j = best + sign * step
                if j < 0 or j >= len(self.ks):
                    edge = 0 if sign < 0 else len(self.ks) - 1
                    break
                edge = j
                if top - self.best_alpha(int(self.ks[j]))[0] > drop:
                    break
                step *= 2
            out.update(np.unique(np.linspace(best, edge, 16).round().astype(int)).tolist())
        return sorted(out)


def _fit_step(model: str, mass, n_gal, n_target: float) -> LikelihoodFit:
    prof = _StepProfile(model, mass, n_gal, n_target)
    best = prof.search()
    k = int(prof.ks[best])
    top, alpha, log10_m1 = prof.best_alpha(k)
    m_star = prof.log10_m_min(k)
    pts = prof.scan(best)
    ll = np.array([prof.best_alpha(int(prof.ks[j]))[0] for j in pts])
    lm = np.array([prof.log10_m_min(int(prof.ks[j])) for j in pts])
    al = np.array([prof.best_alpha(int(prof.ks[j]))[1] for j in pts])
    l1 = np.array([prof.best_alpha(int(prof.ks[j]))[2] for j in pts])
    # Δ ln L = 1/2 interval; at least half the gap to the neighbouring thresholds
    within = top - ll <= 0.5
    gaps = [abs(prof.log10_m_min(int(prof.ks[j])) - m_star) / 2 for j in (best - 1, best + 1)
            if 0 <= j < len(prof.ks)] or [0.05]
    lo, hi = float(lm[within].min()), float(lm[within].max())
    sig_m = max(m_star - lo, hi - m_star, min(gaps))
    # conditional variance of α at fixed threshold: -1 / d² lnL / dα²
    h = 1e-3 * max(alpha, 0.1)
    d2 = (prof.loglike(k, alpha + h) - 2 * prof.loglike(k, alpha) + prof.loglike(k, alpha - h)) / h ** 2
    var_a = 1.0 / -d2 if d2 < 0 else np.inf
    g = (prof.rates(k, alpha + h)[1] - prof.rates(k, alpha - h)[1]) / (2 * h)  # ∂ log10 M1 / ∂α
    near = top - ll <= 2.0
    if near.sum() >= 3 and np.ptp(lm[near]) > 0:
        b_a = float(np.polyfit(lm[near], al[near], 1)[0])
        b_m1 = float(np.polyfit(lm[near], l1[near], 1)[0])
    else:
        b_a = b_m1 = 0.0
    vm = sig_m ** 2
    names = ("log10_m_min", "log10_m1", "alpha")
    cov = np.array([
        [vm, b_m1 * vm, b_a * vm],
        [b_m1 * vm, b_m1 ** 2 * vm + g ** 2 * var_a, b_m1 * b_a * vm + g * var_a],
        [b_a * vm, b_m1 * b_a * vm + g * var_a, b_a ** 2 * vm + var_a],
    ])
    params = {"log10_m_min": m_star, "log10_m1": log10_m1, "alpha": alpha}
    expected = float(model_class(model)(**params).mean_occupation(prof.m).sum())
    # M_min ranges from just above the most massive halo group to below the lightest halo
    bounds = {"log10_m_min": (prof.log10_m_min(int(prof.ks[-1])), prof.log10_m_min(int(prof.ks[0]))),
              "alpha": ALPHA_BOUNDS}
    return LikelihoodFit(model, params, names, cov, top, expected,
                         extra={"log10_m_min_interval": [lo, hi], "n_occupied_halos": k}, bounds=bounds)


# --------------------------------------------------------------------------------------------
# zheng07
# --------------------------------------------------------------------------------------------
class _Zheng07:
    free = ("log10_m1", "alpha", "sigma_log_m", "log10_m0")

    def __init__(self, mass, n_gal, n_target: float):
        # halos of equal mass (FoF: n_particles x particle mass) are summed into one group
        c = np.minimum(n_gal, 1).astype(np.float64)
        s = (n_gal - c) * c
        self.m, inv, self.w = np.unique(mass, return_inverse=True, return_counts=True)
        self.w = self.w.astype(np.float64)                      # halos per group
        self.c = np.bincount(inv, weights=c, minlength=len(self.m))  # halos with a central
        self.s = np.bincount(inv, weights=s, minlength=len(self.m))  # satellites in those
        self.n_t = float(n_target)
        self.lm = np.log10(self.m)
        self._t = None
        lo, hi = float(self.lm.min()), float(self.lm.max())
        self.bounds = [(lo - 1.0, hi + 2.0), ALPHA_BOUNDS, (0.01, 2.0), (lo - 3.0, hi)]

    def sat_rate(self, phi) -> np.ndarray:
        log10_m1, alpha, _, log10_m0 = phi
        r = (self.m - 10.0 ** log10_m0) / 10.0 ** log10_m1
        out = np.zeros_like(r)
        out[r > 0] = np.exp(alpha * np.log(r[r > 0]))
        return out

    def log10_m_min(self, phi) -> float | None:
        """M_min solving Σ ⟨Ncen⟩ (1 + λ) = N_t, or None when no M_min can reach N_t.

        Newton's method from the last solution, Brent's method as the fallback.
        """
        sigma = phi[2]
        load = self.w * (1.0 + self.sat_rate(phi))
        f = lambda t: float(np.sum(0.5 * (1 + erf((self.lm - t) / sigma)) * load)) - self.n_t  # noqa: E731
        lo, hi = self.lm.min() - 6 * sigma - 2, self.lm.max() + 6 * sigma + 2
        if f(lo) <= 0:
            return None
        t = self._t if self._t is not None and lo < self._t < hi else None
        for _ in range(8 if t is not None else 0):
            u = (self.lm - t) / sigma
            val = float(np.sum(0.5 * (1 + erf(u)) * load)) - self.n_t
            der = -float(np.sum(np.exp(-u * u) * load)) / (sigma * np.sqrt(np.pi))
            if der >= 0:
                break
            step = val / der
            t = t - step
            if not lo < t < hi:
                break
            if abs(step) < 1e-11:
                self._t = t
                return float(t)
        t = float(brentq(f, lo, hi, xtol=1e-12, rtol=1e-14))
        self._t = t
        return t

    def loglike(self, phi, bounded: bool = True) -> float:
        """ln L at free parameters `phi`; outside the search box −inf when `bounded` (the
        function itself only needs σ > 0 and α ≥ 0, which the Hessian stencil keeps)."""
        if bounded and any(not a <= v <= b for v, (a, b) in zip(phi, self.bounds)):
            return -np.inf
        if phi[2] <= 0 or phi[1] < 0:
            return -np.inf
        t = self.log10_m_min(phi)
        if t is None:
            return -np.inf
        p = np.clip(0.5 * (1 + erf((self.lm - t) / phi[2])), EPS, 1 - EPS)
        lam = self.sat_rate(phi)
        cen = np.sum(self.c * np.log(p) + (self.w - self.c) * np.log1p(-p))
        sat = np.sum(self.s * np.log(lam + EPS) - self.c * (lam + EPS))
        return float(cen + sat)


def _fit_zheng07(mass, n_gal, n_target: float) -> LikelihoodFit:
    z = _Zheng07(mass, n_gal, n_target)
    try:  # start from the central-satellite fit (its σ → 0, M0 → 0 limit)
        cs = _fit_step("central-satellite", mass, n_gal, n_target)
    except GalaxygenError:
        cs = None
    starts = []
    if cs is not None:
        starts.append([cs.params["log10_m1"], cs.params["alpha"], 0.3, cs.params["log10_m_min"] - 1.0])
    lo, hi = z.lm.min(), z.lm.max()
    starts.append([hi - 0.5, 1.0, 0.3, lo - 1.0])
    best = None
    nll = lambda p: -z.loglike(p)  # noqa: E731
    for x0 in starts:
        if best is not None and np.isfinite(best.fun):
            break
        x0 = np.clip(x0, [b[0] for b in z.bounds], [b[1] for b in z.bounds])
        f0 = nll(x0)
        try:  # Powell is fast on this smooth problem but can stall on infeasible (infinite) regions
            r = minimize(nll, x0, method="Powell", bounds=z.bounds,
                         options={"xtol": 1e-5, "ftol": 1e-9, "maxfev": 6000})
            ok = np.isfinite(r.fun) and r.fun <= f0
        except ValueError:
            ok = False
        if not ok:
            r = minimize(nll, x0, method="Nelder-Mead", bounds=z.bounds,
                         options={"xatol": 1e-5, "fatol": 1e-7, "maxiter": 4000, "adaptive": True})
        if best is None or r.fun < best.fun:
            best = r
    if not np.isfinite(best.fun):
        raise GalaxygenError("HOD fit (zheng07): no parameters reach the target number density")
    phi = best.x
    h = np.array([1e-2, 1e-2, 5e-3, 2e-2])
    h[1] = min(h[1], phi[1] / 2.1)   # keep α >= 0 and σ > 0 inside the stencil
    h[2] = min(h[2], phi[2] / 2.1)
    for _ in range(4):  # near the edge of the feasible region (density out of reach), shrink
        hess = hessian(lambda p: -z.loglike(p, bounded=False), phi, h)
        if np.all(np.isfinite(hess)):
            break
        h = h / 4
    cov_phi, singular = covariance_from_hessian(hess)
    jac = np.array([derivative(z.log10_m_min, phi, e, e[i]) for i, e in enumerate(np.diag(h))])
    names = ("log10_m_min",) + _Zheng07.free
    cov = add_derived(cov_phi, jac, h)
    params = {"log10_m_min": z.log10_m_min(phi), **dict(zip(_Zheng07.free, map(float, phi)))}
    expected = float(model_class("zheng07")(**params).mean_occupation(mass).sum())
    extra = {"hessian_singular": bool(singular), "evaluations": int(best.nfev)}
    return LikelihoodFit("zheng07", params, names, cov, -float(best.fun), expected,
                         extra=extra, bounds=dict(zip(_Zheng07.free, z.bounds)))


def solve_log_m_min(model: str, params: dict[str, float], mass, n_target: float) -> float:
    """log10 M_min [Msun/h] that gives `n_target` galaxies in expectation in halos `mass`.

    `params` holds the model's other parameters. zheng07: exact root of Σ ⟨N|M_i⟩ = n_target on
    the erf occupation. Step models: the expected count only changes where M_min crosses a halo
    mass, so the threshold is put midway (in log) between the two distinct masses whose cut comes
    closest to n_target (the remaining mismatch is at most half the occupation of one mass group).
    """
    model_class(model)
    mass = np.asarray(mass, dtype=np.float64)
    if model == "zheng07":
        z = _Zheng07(mass, np.zeros(len(mass), dtype=np.int64), n_target)
        t = z.log10_m_min(np.array([params[k] for k in _Zheng07.free], dtype=np.float64))
        if t is None:
            raise GalaxygenError(f"zheng07: these halos cannot reach {n_target:g} galaxies at any M_min")
        return t
    m = np.unique(mass)[::-1]                                   # distinct masses, descending
    probe = make_model(model, {**params, "log10_m_min": -np.inf})
    per = np.bincount(np.searchsorted(-m, -mass), weights=probe.mean_occupation(mass), minlength=len(m))
    cum = np.cumsum(per)                                        # expected count with M_min just below m[j]
    if cum[-1] < n_target * (1 - 5e-3):
        raise GalaxygenError(f"{model}: these halos give at most {cum[-1]:.6g} galaxies with these "
                             f"parameters; cannot reach {n_target:g} at any M_min")
    j = int(np.argmin(np.abs(cum - n_target)))
    lo = np.log10(m[j])
    return float(0.5 * (lo + np.log10(m[j + 1]))) if j + 1 < len(m) else float(lo - 0.01)


def fit_occupation(model: str, mass, n_gal, n_target: float) -> LikelihoodFit:
    """Maximum-likelihood fit of HOD `model` to per-halo counts under the density constraint.

    Parameters
    ----------
    model : str
        ``seed3``, ``central-satellite`` or ``zheng07``.
    mass : (n,) halo masses [Msun/h]; n_gal : (n,) galaxies matched to each halo.
    n_target : float
        Galaxies the model must give in expectation over these halos (n̄ × total volume).
    """
    model_class(model)
    mass, n_gal = _check(mass, n_gal, n_target)
    if model == "zheng07":
        return _fit_zheng07(mass, n_gal, n_target)
    return _fit_step(model, mass, n_gal, n_target)
