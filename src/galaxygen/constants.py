"""Physical constants, each defined once (units: Msun/h, Mpc/h, km/s, as everywhere in galaxygen).

``RHO_CRIT`` is the critical density today, rho_crit,0 = 3 H0^2 / (8 pi G) with H0 = 100 h km/s/Mpc,
in (Msun/h) / (Mpc/h)^3 = h^2 Msun / Mpc^3. Computed from G Msun = 1.32712440018e20 m^3 s^-2
(IAU 2015 Resolution B3; the product is known far better than G or Msun alone) and
1 Mpc = 3.0856775814913673e22 m (IAU 2012 Resolution B2 au, 1 pc = 648000/pi au):
3 (1e5 m/s / Mpc)^2 Mpc^3 / (8 pi G Msun) = 2.775366272e11. It is also the value of Pylians
(``rho_crit = 2.77536627e11``), with which CAMELS was analysed; rounded values such as
2.775e11 or 2.775366e11 differ from it in the fourth or seventh digit.
"""

from __future__ import annotations

#: Critical density today [(Msun/h) / (Mpc/h)^3] (see the module docstring for the derivation).
RHO_CRIT = 2.77536627e11
