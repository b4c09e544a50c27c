"""Every parameter of the report in one place: the analyses read them and report.md prints them.

One dict per figure. `parameters(quick)` returns the full set or the quick one (fewer samples,
depths and grid points; the same figures).
"""

from __future__ import annotations

import copy

from ..optimum import TYPICAL

FULL = {
    "kernel": {
        "activations": ("relu", "erf", "tanh"),
        "r": (0.1, 0.3, 0.5),
        "sigma_w2": 1.0,
        "sigma_b2": 0.0,
        "K0": 1.0,
        "c0": 0.5,
        "depth": 100,
        "width": 256,
        "samples": 100,
        "method": "weights",
        "seed": 1,
        "markers": 11,
    },
    "fluctuations": {
        "activations": ("relu", "erf"),
        "r": 0.5,
        "sigma_w2": 1.5,
        "sigma_b2": 0.0,
        "K0": 1.0,
        "depth": 20,
        "reference_layer": 10,
        "widths": (128, 512),
        "samples": 4000,
        "method": "walk",
        "seed": 2,
    },
    "mean_shift": {
        "activations": ("relu", "erf"),
        "r": 0.5,
        "sigma_w2": 2.0,
        "sigma_b2": 0.0,
        "K0": 1.0,
        "depth": 10,
        "width": 64,
        "samples": 200_000,
        "min_signal": 3.0,
        "method": "walk",
        "seed": 3,
    },
    "sensitivity": {
        "activations": ("erf", "tanh", "relu"),
        "depths": (30, 100, 300, 1000),
        "sigma_w2": 2.0,
        "sigma_b2": 0.0,
        "K0": 1.0,
        "c0": 0.9,
        "r_range": (0.01, 3.0),
        "r_points": 101,
        "band": TYPICAL,
        "check_activation": "erf",
        "check_depth": 30,
        "check_r_factors": (0.4, 0.7, 1.0, 1.4, 2.0),
        "check_width": 1024,
        "check_samples": 200,
        "check_dc0": 1e-4,
        "method": "walk",
        "seed": 4,
    },
    "optimum": {
        "activations": ("erf", "tanh"),
        "depths": (10, 20, 30, 50, 100, 200, 300, 500, 1000),
        "sigma_w2": 2.0,
        "K0": 1.0,
        "c0": 0.9,
        "sweep_depth": 100,
        "sigma_w2s": (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0),
        "sigma_b2s": (0.0, 0.1),
        "band": TYPICAL,
    },
}

# The setting the one-loop theory is derived for; every figure uses it.
COMMON = {"block": "full", "input": "kernel"}

QUICK = {
    "kernel": {"depth": 50, "samples": 20, "markers": 6},
    "fluctuations": {"samples": 1000},
    "mean_shift": {"samples": 40_000},
    "sensitivity": {
        "depths": (30, 100),
        "r_points": 31,
        "check_r_factors": (0.5, 1.0, 2.0),
        "check_samples": 60,
    },
    "optimum": {"depths": (10, 30, 100), "sigma_w2s": (1.0, 2.0), "sweep_depth": 30},
}

# What each key means (report.md prints it beside the value).
MEANING = {
    "activations": "activations phi",
    "r": "residual scale r",
    "sigma_w2": "weight variance sigma_w^2",
    "sigma_w2s": "weight variances sigma_w^2 (r* against sigma_w^2)",
    "sigma_b2": "bias variance sigma_b^2",
    "sigma_b2s": "bias variances sigma_b^2 (r* against sigma_w^2)",
    "K0": "input variance K^0 (both inputs)",
    "c0": "input correlation c^0",
    "depth": "depth L (number of residual blocks)",
    "depths": "depths L",
    "sweep_depth": "depth L of r* against sigma_w^2",
    "reference_layer": "layer l' of the cross-layer covariance",
    "width": "width N",
    "widths": "widths N",
    "samples": "simulated networks per setting",
    "method": "simulator (`weights`: real weight matrices; `walk`: exact conditional-Gaussian walk)",
    "seed": "seed of the simulations",
    "markers": "simulated layers shown per curve",
    "min_signal": "simulated points shown when the theory's shift at l = L is at least this many standard errors",
    "r_range": "range of r (log grid)",
    "r_points": "points of the r grid",
    "band": "customary range of r (shaded)",
    "check_activation": "simulated check: activation",
    "check_depth": "simulated check: depth L",
    "check_r_factors": "simulated check: r / r*",
    "check_width": "simulated check: width N",
    "check_samples": "simulated check: networks per point",
    "check_dc0": "simulated check: step in c^0 of the central difference",
    "block": "residual block (`full`: h + r (W phi(h) + b))",
    "input": "input mode (`kernel`: h^0 ~ N(0, K^0) given)",
}


def parameters(quick: bool = False) -> dict:
    """The parameters of every figure (a deep copy: callers may not change the tables)."""
    out = copy.deepcopy(FULL)
    if quick:
        for figure, changes in QUICK.items():
            out[figure].update(copy.deepcopy(changes))
    for figure in out.values():
        figure.update(COMMON)
    return out
