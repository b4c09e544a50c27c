"""fieldgen: the finite-size field theory of residual networks as tested, fast numeric code.

    import fieldgen
    K = fieldgen.kernel("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1, .9], [.9, 1]])
    Khat = fieldgen.simulate("erf", r=0.3, sigma_w2=1.0, depth=100, K0=1.0, width=256, samples=100)
    chi = fieldgen.response("erf", r=0.3, sigma_w2=1.0, depth=100, K0=[[1, .9], [.9, 1]])
    best = fieldgen.optimal_r("erf", sigma_w2=1.0, depth=100, c0=0.9)   # best.r_star, r_lo, r_hi

Importing fieldgen does not import SymPy; the evaluators are the generated Numba modules in
fieldgen.generated (regenerate them from the derivations with `fieldgen regenerate`).
``fieldgen.latex(obj)`` prints a SymPy object or a derivation as LaTeX (imports SymPy on first use).
"""
from . import jit_cache  # noqa: F401  (before any generated module: Numba's cache fallbacks)
from .generated import ACTIVATIONS, BLOCKS, INPUT_MODES
from .meanfield import kernel
from .oneloop import MeanShiftTerms, kernel_covariance, kernel_mean_shift
from .optimum import OptimalR, optimal_r
from .response import response, sensitivity
from .simulate import METHODS, simulate

__version__ = "0.1.0"
__all__ = ["kernel", "simulate", "kernel_covariance", "kernel_mean_shift", "MeanShiftTerms",
           "response", "sensitivity", "optimal_r", "OptimalR", "latex",
           "ACTIVATIONS", "BLOCKS", "INPUT_MODES", "METHODS", "__version__"]


def __getattr__(name):
    # fieldgen.latex needs SymPy: import it on first use so `import fieldgen` stays light.
    if name == "latex":
        from .tex import latex
        return latex
    raise AttributeError(f"module 'fieldgen' has no attribute {name!r}")
