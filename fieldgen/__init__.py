"""fieldgen: the finite-size field theory of residual networks as tested, fast numeric code.

    import fieldgen
    K = fieldgen.kernel("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1, .9], [.9, 1]])
    Khat = fieldgen.simulate("erf", r=0.3, sigma_w2=1.0, depth=100, K0=1.0, width=256, samples=100)
    chi = fieldgen.response("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1, .9], [.9, 1]])
    best = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=100, c0=0.9)   # best.r_star, r_lo, r_hi
    deep = fieldgen.continuum_one_loop("erf", tau=1.0, sigma_w2=1.0, K0=1.0)  # depth -> infinity
    swish = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")          # any activation
    fieldgen.kernel(swish, r=0.3, sigma_w2=1.0, depth=100, K0=1.0)

Two inputs are 2x2 matrices everywhere (``fieldgen.pairs`` describes the convention and converts
to the compact pair order 11, 22, 12). Importing fieldgen does not import SymPy; the evaluators
are the generated Numba modules in fieldgen.generated (regenerate them from the derivations with
`fieldgen regenerate`). ``fieldgen.latex(obj)`` prints a SymPy object or a derivation as LaTeX
(imports SymPy on first use). Documentation: docs/ (``make docs``).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import Any

from . import (
    jit_cache,  # noqa: F401  (before any generated module: Numba's cache fallbacks)
    pairs,
)
from .activations import Activation, activation
from .continuum_one_loop import ContinuumOneLoop, continuum_one_loop, r_for_tau
from .generated import ACTIVATIONS, BLOCKS, INPUT_MODES, PRESETS
from .meanfield import kernel
from .ntk import ntk
from .oneloop import MeanShiftTerms, kernel_covariance, kernel_mean_shift, mean_shift_terms
from .optimum import OptimalR, optimal_r
from .response import response, response_one_loop, sensitivity
from .simulate import METHODS, simulate

try:
    # The version lives in pyproject.toml only; the installed metadata carries it.
    __version__ = _version("fieldgen")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "activation",
    "Activation",
    "kernel",
    "ntk",
    "simulate",
    "kernel_covariance",
    "kernel_mean_shift",
    "mean_shift_terms",
    "MeanShiftTerms",
    "continuum_one_loop",
    "ContinuumOneLoop",
    "r_for_tau",
    "response",
    "response_one_loop",
    "sensitivity",
    "optimal_r",
    "OptimalR",
    "latex",
    "pairs",
    "ACTIVATIONS",
    "PRESETS",
    "BLOCKS",
    "INPUT_MODES",
    "METHODS",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # fieldgen.latex needs SymPy: import it on first use so `import fieldgen` stays light.
    if name == "latex":
        from .tex import latex

        return latex
    raise AttributeError(f"module 'fieldgen' has no attribute {name!r}")
