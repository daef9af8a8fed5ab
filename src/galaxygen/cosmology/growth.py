"""Linear and second-order growth in flat ΛCDM (matter + Λ) from the growth ODEs, in float64.

With primes for d/d ln a and E(a) = H/H0 = sqrt(Ωm a^-3 + 1 − Ωm):

    D1'' + (2 + dlnE/dlna) D1' = 3/2 Ωm(a) D1
    D2'' + (2 + dlnE/dlna) D2' = 3/2 Ωm(a) (D2 − D1²)

(Bouchet et al. 1995, astro-ph/9406013; Scoccimarro 1998, astro-ph/9711187), started deep in matter
domination on the growing modes D1 = a, D2 = −3/7 a². Normalisation: D1(a=1) = 1 and D2 divided
by the same constant squared, so D2 ≈ −3/7 D1² Ωm(a)^(−1/143) (negative) at all times.

The FastPM factors (Feng et al. 2016, arXiv:1603.00476) follow from these: with the canonical
momentum p = a³ E dx/da [Mpc/h] and the time variable a,

    G_p(a) = a³ E dD/da = a² E D'          (p of a linear mode per unit displacement)
    G_f(a) = a E dG_p/da                   (force of a linear mode per unit displacement)
           = 3/2 Ωm D1 / a                 for D1, and 3/2 Ωm (D2 − D1²) / a for D2.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.integrate import quad, solve_ivp

_LNA_START = math.log(1e-5)
_LNA_END = math.log(4.0)


class Growth:
    """Growth functions of flat ΛCDM with matter density `omega_m` (today).

    All methods take a scale factor `a` (scalar or array, 1e-5 <= a <= 4) and return float64.
    """

    def __init__(self, omega_m: float):
        self.omega_m = float(omega_m)
        om = self.omega_m

        def rhs(lna, y):
            a3 = math.exp(3 * lna)
            e2 = om / a3 + 1 - om
            om_a = om / a3 / e2
            dlne = -1.5 * om_a
            d1, d1p, d2, d2p = y
            return [d1p, -(2 + dlne) * d1p + 1.5 * om_a * d1,
                    d2p, -(2 + dlne) * d2p + 1.5 * om_a * (d2 - d1 * d1)]

        a0 = math.exp(_LNA_START)
        # Λ is negligible at a0 = 1e-5 (Ω_Λ(a0)/Ωm(a0) ~ 1e-15): EdS growing modes are exact here.
        y0 = [a0, a0, -3 / 7 * a0 * a0, -6 / 7 * a0 * a0]
        self._sol = solve_ivp(rhs, (_LNA_START, _LNA_END), y0, method="DOP853", rtol=1e-11,
                              atol=1e-30, dense_output=True)
        if not self._sol.success:  # pragma: no cover - scipy failure
            raise RuntimeError(f"growth ODE failed: {self._sol.message}")
        self._norm = float(self._sol.sol(0.0)[0])

    def _y(self, a):
        a = np.asarray(a, dtype=np.float64)
        if np.any(a < 0.99e-5) or np.any(a > 4.0):
            raise ValueError(f"scale factor outside the tabulated range [1e-5, 4]: {a}")
        y = self._sol.sol(np.log(a).ravel())
        n = self._norm
        scale = np.array([1 / n, 1 / n, 1 / n ** 2, 1 / n ** 2])[:, None]
        return (y * scale).reshape((4,) + a.shape)

    def efunc(self, a):
        """E(a) = H(a)/H0."""
        a = np.asarray(a, dtype=np.float64)
        return np.sqrt(self.omega_m * a ** -3 + 1 - self.omega_m)

    def d1(self, a):
        """Linear growth factor D1(a), D1(1) = 1."""
        return self._y(a)[0]

    def d2(self, a):
        """Second-order growth factor D2(a) (negative, ≈ −3/7 D1²)."""
        return self._y(a)[2]

    def f1(self, a):
        """Linear growth rate f1 = dlnD1/dlna."""
        y = self._y(a)
        return y[1] / y[0]

    def f2(self, a):
        """Second-order growth rate f2 = dlnD2/dlna (≈ 2 Ωm(a)^(6/11))."""
        y = self._y(a)
        return y[3] / y[2]

    def gp(self, a, order: int = 1):
        """FastPM G_p(a) = a² E dD/dlna for D1 (order 1) or D2 (order 2)."""
        y = self._y(a)
        a = np.asarray(a, dtype=np.float64)
        return a * a * self.efunc(a) * (y[1] if order == 1 else y[3])

    def gf(self, a, order: int = 1):
        """FastPM G_f(a) = a E dG_p/da: 3/2 Ωm D1/a (order 1) or 3/2 Ωm (D2 − D1²)/a (order 2)."""
        y = self._y(a)
        a = np.asarray(a, dtype=np.float64)
        src = y[0] if order == 1 else y[2] - y[0] ** 2
        return 1.5 * self.omega_m * src / a

    def kick_integral(self, a0: float, a1: float) -> float:
        """∫ da / (a² E) from a0 to a1: dp = 3/2 Ωm g · this, for g = −∇∇⁻²δ constant in time."""
        return quad(lambda a: 1.0 / (a * a * float(self.efunc(a))), a0, a1, epsabs=0, epsrel=1e-12)[0]

    def drift_integral(self, a0: float, a1: float) -> float:
        """∫ da / (a³ E) from a0 to a1: dx = p · this, for a momentum p constant in time."""
        return quad(lambda a: 1.0 / (a ** 3 * float(self.efunc(a))), a0, a1, epsabs=0, epsrel=1e-12)[0]


@functools.lru_cache(maxsize=32)
def growth(omega_m: float) -> Growth:
    """Cached `Growth` for a matter density `omega_m`."""
    return Growth(omega_m)
