"""fieldgen: the finite-size field theory of residual networks as tested, fast numeric code.

    import fieldgen
    K = fieldgen.kernel("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1, .9], [.9, 1]])
    Khat = fieldgen.simulate("erf", r=0.3, sigma_w2=1.0, depth=100, K0=1.0, width=256, samples=100)
    chi = fieldgen.response("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1, .9], [.9, 1]])
    best = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=100, c0=0.9)   # best.r_star, r_lo, r_hi
    swish = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")          # any activation
    fieldgen.kernel(swish, r=0.3, sigma_w2=1.0, depth=100, K0=1.0)

Two inputs are 2x2 matrices everywhere (``fieldgen.pairs`` describes the convention and converts
to the compact pair order 11, 22, 12). Importing fieldgen does not import SymPy; the evaluators
are the generated Numba modules in fieldgen.generated (regenerate them from the derivations with
`fieldgen regenerate`). ``fieldgen.latex(obj)`` prints a SymPy object or a derivation as LaTeX
(imports SymPy on first use). Documentation: docs/ (``make docs``).
"""

# Every public name is imported on first use (PEP 562): `import fieldgen` loads neither NumPy nor
# Numba, and a first call imports only the modules it needs (a new process's cold start). Numba's
# cache fallbacks (fieldgen.jit_cache) are installed by the generated package before any
# generated module is compiled or loaded.
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from . import pairs
    from .activations import Activation, activation
    from .continuum_one_loop import ContinuumOneLoop, continuum_one_loop, r_for_tau
    from .generated import ACTIVATIONS, BLOCKS, INPUT_MODES, PRESETS
    from .meanfield import kernel
    from .ntk import ntk
    from .oneloop import MeanShiftTerms, kernel_covariance, kernel_mean_shift, mean_shift_terms
    from .optimum import OptimalR, optimal_r
    from .response import response, response_one_loop, sensitivity
    from .simulate import METHODS, simulate
    from .tex import latex

    __version__: str

# name -> the module defining it (relative to fieldgen)
_LAZY = {
    "activation": ".activations",
    "Activation": ".activations",
    "kernel": ".meanfield",
    "continuum_one_loop": ".continuum_one_loop",
    "ContinuumOneLoop": ".continuum_one_loop",
    "r_for_tau": ".continuum_one_loop",
    "ntk": ".ntk",
    "simulate": ".simulate",
    "METHODS": ".simulate",
    "kernel_covariance": ".oneloop",
    "kernel_mean_shift": ".oneloop",
    "mean_shift_terms": ".oneloop",
    "MeanShiftTerms": ".oneloop",
    "response": ".response",
    "response_one_loop": ".response",
    "sensitivity": ".response",
    "optimal_r": ".optimum",
    "OptimalR": ".optimum",
    "latex": ".tex",  # imports SymPy
    "ACTIVATIONS": ".generated",
    "PRESETS": ".generated",
    "BLOCKS": ".generated",
    "INPUT_MODES": ".generated",
}

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
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name == "pairs":
        value = importlib.import_module(".pairs", __name__)
    elif name == "__version__":
        # The version lives in pyproject.toml only; the installed metadata carries it.
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("fieldgen")
        except PackageNotFoundError:  # pragma: no cover - a tree that was never installed
            value = "0+unknown"
    else:
        raise AttributeError(f"module 'fieldgen' has no attribute {name!r}")
    globals()[name] = value  # found once; later look-ups are plain attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """fieldgen.simulate, .response and .ntk are functions named like their modules: importing the
    module (``from .simulate import ...`` anywhere) must not make ``fieldgen.simulate`` the
    module. The import system's binding of such a submodule is dropped; the name is then found
    by __getattr__ (the function), as when it was imported eagerly here."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
