"""Conditioning parameters of the learned models: which ones, and their standardisation.

A model conditioned on box parameters (the diffusion model, the conditioned two-phase network)
takes a subset of (Ωm, σ8, A_SN1, A_AGN1, A_SN2, A_AGN2), chosen by the config key
``condition_params``: ``auto``, ``none`` or a list of names. The parameters are standardised by the
training boxes' mean and standard deviation, after a log10 for the astrophysical amplitudes A_SN1,
A_AGN1, A_SN2, A_AGN2 (CAMELS samples them logarithmically); a parameter that does not vary keeps
scale 1. The standardisation is saved in the run (``transform.json``, key ``params``) and applied at
prediction, which refuses a box lacking a needed parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch

from galaxygen.box import PARAM_NAMES
from galaxygen.config import require
from galaxygen.errors import ConfigError

LOG_PARAMS = ("a_sn1", "a_agn1", "a_sn2", "a_agn2")
CONDITION_PARAMS = ("omega_m", "sigma_8", "a_sn1", "a_agn1", "a_sn2", "a_agn2")
VARYING_RTOL = 1e-6  # a parameter varies when its values differ by more than this (relative)

ConditionChoice = Literal["auto", "none"] | tuple[str, ...]


@dataclass(frozen=True)
class ParamTransform:
    """Standardised conditioning parameters (log10 for the A_* amplitudes)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @staticmethod
    def _raw(params: Mapping[str, float], names: Sequence[str], where: str = "box") -> np.ndarray:
        missing = [k for k in names if k not in params]
        if missing:
            raise ConfigError(f"{where}: parameters {missing} are needed for conditioning but missing")
        return np.array([math.log10(params[k]) if k in LOG_PARAMS else params[k] for k in names], dtype=np.float64)

    @classmethod
    def fit(cls, names: Sequence[str], params_list: Sequence[Mapping[str, float]]) -> "ParamTransform":
        names = tuple(names)
        if not names:
            return cls((), (), ())
        raw = np.stack([cls._raw(p, names) for p in params_list])
        std = raw.std(axis=0)
        return cls(names, tuple(float(v) for v in raw.mean(axis=0)),
                   tuple(float(s) if s > 1e-8 else 1.0 for s in std))

    def forward(self, params: Mapping[str, float], where: str = "box") -> torch.Tensor:
        """(n_params,) float32 tensor."""
        raw = self._raw(params, self.names, where)
        return torch.as_tensor((raw - np.array(self.mean)) / np.array(self.std), dtype=torch.float32)

    def forward_batch(self, raw: torch.Tensor) -> torch.Tensor | None:
        """(B, n_params) from crops' raw (B, 7) parameter vectors in PARAM_NAMES order (None if no names)."""
        if not self.names:
            return None
        dev = raw.device
        p = raw[:, torch.tensor([PARAM_NAMES.index(k) for k in self.names], device=dev)].double()
        log = torch.tensor([k in LOG_PARAMS for k in self.names], device=dev)
        p = torch.where(log, torch.log10(p), p)
        mean = torch.tensor(self.mean, dtype=torch.float64, device=dev)
        std = torch.tensor(self.std, dtype=torch.float64, device=dev)
        return ((p - mean) / std).float()

    def as_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ParamTransform":
        return cls(tuple(d["names"]), tuple(d["mean"]), tuple(d["std"]))


def auto_param_names(params_list: Sequence[Mapping[str, float]]) -> tuple[str, ...]:
    """The conditioning parameters every box carries (in the canonical order)."""
    return tuple(k for k in CONDITION_PARAMS if params_list and all(k in p for p in params_list))


def varying_param_names(params_list: Sequence[Mapping[str, float]]) -> tuple[str, ...]:
    """The conditioning parameters every box carries and whose values differ across the boxes."""
    def varies(k: str) -> bool:
        v = np.array([p[k] for p in params_list], dtype=np.float64)
        return bool(np.ptp(v) > VARYING_RTOL * max(float(np.abs(v).max()), 1e-300))
    return tuple(k for k in auto_param_names(params_list) if varies(k))


def check_condition_params(choice: ConditionChoice) -> None:
    """Refuse (ConfigError) a ``condition_params`` list naming an unknown parameter."""
    if isinstance(choice, tuple):
        bad = [p for p in choice if p not in CONDITION_PARAMS]
        require(not bad, f"condition_params: unknown {bad}; allowed: {list(CONDITION_PARAMS)}")


def condition_names(choice: ConditionChoice, params_list: Sequence[Mapping[str, float]],
                    auto: Callable[[Sequence[Mapping[str, float]]], tuple[str, ...]] = auto_param_names
                    ) -> tuple[str, ...]:
    """The parameters a model conditions on: `auto(params_list)` for 'auto', none for 'none', else
    the listed names (`params_list`: the training boxes' parameters)."""
    if choice == "auto":
        return auto(params_list)
    if choice == "none":
        return ()
    return tuple(choice)
