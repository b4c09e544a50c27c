"""NumbaPrinter: SymPy's Python printer extended for nopython Numba code.

Following pystencils, every project-specific construct gets a ``_print_<Node>`` method instead of
string surgery on printed code:

- floats print with ``repr`` (round-trip exact, deterministic);
- ``asin`` prints as a call to a generated polynomial version (``mathlib``) that LLVM can
  vectorise across grid points; libm's scalar call cannot be vectorised;
- ``Correlation`` prints as a call to a helper that clamps rho to [-1, 1];
- calls to generated helpers (undefined SymPy functions) are recorded in
  ``required`` so the module writer can emit their definitions;
- statements: ``For`` over ranges, ``JitFunction`` (decorated definitions), ``Allocate``,
  ``Comment``, ``TupleReturn``, ``TupleAssign``, ``ArrayShape``, ``Evaluate`` (a void call),
  ``StreamStore`` and ``StoreFence`` (calls of generated/streaming.py).
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

# Value-safe LLVM fast-math flags: contraction into FMA, reciprocal division and ignoring the sign
# of zero let loops vectorise; no flag assumes the absence of NaN or inf, so NaN still propagates.
FASTMATH = ("arcp", "contract", "nsz")


class NumbaPrinter(PythonCodePrinter):
    printmethod = "_numbacode"
    language = "Python (Numba nopython)"
    _default_settings = dict(
        PythonCodePrinter._default_settings,
        fully_qualified_modules=True,
        allow_unknown_functions=True,
        vector_math=True,
    )

    def __init__(self, settings=None):
        super().__init__(settings or {})
        self.required: set[str] = set()
        self._not_supported = set()  # filled by _print_not_supported; set up by doprint upstream

    # ---- numbers ---------------------------------------------------------------------------

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Max(self, expr):
        return self._min_max("max", expr)

    def _print_Min(self, expr):
        return self._min_max("min", expr)

    def _min_max(self, name, expr):
        # Nested two-argument calls; integer literals become floats unless every argument is an
        # integer (loop bounds), so that the result type is stable in nopython mode.
        integral = all(a.is_integer for a in expr.args)
        args = [self._print(sp.Float(a) if a.is_Integer and not integral else a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"{name}({out}, {a})"
        return out

    def _print_Pow(self, expr, rational=False):
        # Numba raises ZeroDivisionError for 0.0 ** -n with an integer n, whatever the error
        # model; 1/x**n gives inf there like every other division, so the API can diagnose it.
        if expr.exp.is_Integer and expr.exp < -1:
            return f"(1/{self._print(sp.Pow(expr.base, -expr.exp))})"
        # Every radicand the derivations produce is a variance, a conditional variance or a
        # determinant (>= 0 on the domain); round-off can make one slightly negative, e.g.
        # Ke (1 - Ke/Kl) when two layers have the same kernel (r = 0). Clamp it at 0, not NaN.
        if expr.exp in (sp.S.Half, -sp.S.Half) and not expr.base.is_nonnegative:
            root = f"math.sqrt(max(0.0, {self._print(expr.base)}))"
            return root if expr.exp > 0 else f"(1/{root})"
        return super()._print_Pow(expr, rational=rational)

    # ---- functions -------------------------------------------------------------------------

    def _print_asin(self, expr):
        if self._settings["vector_math"]:
            return self._call("_asin", expr.args)
        return self._print_known_func(expr)

    def _print_Correlation(self, expr):
        return self._call("_correlation", expr.args)

    def _print_SqrtProduct(self, expr):
        return f"math.sqrt({self._print(sp.Mul(*expr.args))})"

    def _print_CopySign(self, expr):
        return "math.copysign({}, {})".format(*(self._print(a) for a in expr.args))

    def _print_Softplus(self, expr):
        # log(1 + exp(u)) without overflow for large u and without log(1) round-off for small.
        u = self._print(expr.args[0])
        return f"(max({u}, 0.0) + math.log1p(math.exp(-abs({u}))))"

    def _print_Heaviside(self, expr):
        u = self._print(expr.args[0])
        return f"(1.0 if {u} > 0 else (0.5 if {u} == 0 else 0.0))"

    def _print_Add(self, expr, order=None):
        branched = self._branches(expr)
        return self._print(branched) if branched is not None else super()._print_Add(expr, order)

    def _print_Mul(self, expr):
        branched = self._branches(expr)
        return self._print(branched) if branched is not None else super()._print_Mul(expr)

    @staticmethod
    def _branches(expr):
        """A + B Theta(x) as a conditional on x, so that only the branch that applies is
        evaluated (ELU's exp(x) Theta(-x) would otherwise give inf * 0 = NaN at large x)."""
        steps = [h.args[0] for h in expr.atoms(sp.Heaviside) if h.args[0].is_Symbol]
        if not steps:
            return None
        from ..derivations.distributions import piecewise_form

        branched = piecewise_form(expr, sorted(set(steps), key=sp.default_sort_key))
        return branched if isinstance(branched, sp.Piecewise) else None

    def _print_Function(self, expr):
        if isinstance(expr, sp.core.function.AppliedUndef):
            # A call of another generated function (helper or quadrature rule).
            return self._call(expr.func.__name__, expr.args)
        return super()._print_Function(expr)

    def _print_GaussianExpectation(self, expr):
        raise ValueError(
            "GaussianExpectation must be lowered to a quadrature helper before printing"
        )

    def _print_ArrayShape(self, expr):
        array, axis = expr.args
        return f"{self._print(array)}.shape[{int(axis)}]"

    def _call(self, name, args):
        self.required.add(name)
        return "{}({})".format(name, ", ".join(self._print(a) for a in args))

    # ---- statements ------------------------------------------------------------------------

    def _print_Assignment(self, node):
        # SymPy splits a Piecewise right-hand side into branch assignments; in Python a
        # conditional expression is the select LLVM can vectorise.
        return f"{self._print(node.lhs)} = {self._print(node.rhs)}"

    def _print_For(self, node):
        rng = node.iterable
        if not isinstance(rng, sp.Range) or not (rng.step.is_Integer and rng.step > 0):
            raise ValueError("generated loops run over ranges with a positive integer step")
        body = "\n".join(self._print(s) for s in node.body.args)
        step = "" if rng.step == 1 else f", {self._print(rng.step)}"
        return f"for {self._print(node.target)} in range({self._print(rng.start)}, {self._print(rng.stop)}{step}):\n{self._indent_codestring(body)}"

    def _print_Allocate(self, node):
        shape = ", ".join(self._print(s) for s in node.shape)
        if len(node.shape) > 1:
            shape = f"({shape})"
        return f"{self._print(node.target)} = np.empty({shape})"

    def _print_StreamStore(self, node):
        self.required.add("stream_store")

        def tuple_text(items):
            texts = [self._print(x) for x in items]
            return f"({texts[0]},)" if len(texts) == 1 else "({})".format(", ".join(texts))

        return f"stream_store({self._print(node.target.base)}, {tuple_text(node.target.indices)}, {tuple_text(node.values)})"

    def _print_Evaluate(self, node):
        return self._print(node.value)

    def _print_StoreFence(self, node):
        self.required.add("store_fence")
        return "store_fence()"

    def _print_Comment(self, node):
        return f"# {node.text}"

    def _print_Raw(self, node):
        return node.text

    def _print_TupleAssign(self, node):
        return "({},) = {}".format(
            ", ".join(self._print(t) for t in node.targets), self._print(node.value)
        )

    def _print_TupleReturn(self, node):
        return (
            "return ({},)".format(", ".join(self._print(v) for v in node.values))
            if len(node.values) == 1
            else "return ({})".format(", ".join(self._print(v) for v in node.values))
        )

    def _print_JitFunction(self, fn):
        if fn.ufunc:
            decorator = f'@vectorize(["{fn.signature}"], cache=True)'
            return self._function_text(fn, decorator)
        # Compiled lazily, on the first call, for the argument types of that call (float64 and
        # C-contiguous float64 arrays from the public API): a process compiles, or loads from
        # Numba's cache, only the functions it uses, not every function of the module at import.
        options = ["cache=True", "nogil=True", 'error_model="numpy"']
        if fn.fastmath:
            options.append("fastmath=FASTMATH")
        if fn.inline:
            options.append('inline="always"')
        return self._function_text(fn, f"@njit({', '.join(options)})")

    def _function_text(self, fn, decorator):
        lines = [
            decorator,
            "def {}({}):".format(fn.name, ", ".join(self._print(p) for p in fn.params)),
        ]
        body = []
        if fn.doc:
            body.append('"""' + fn.doc.strip() + '"""')
        body.extend(self._print(s) for s in fn.body)
        lines.append(self._indent_codestring("\n".join(body)))
        return "\n".join(lines)


class CopySign(sp.Function):
    """copysign(magnitude, sign_source), printed as math.copysign."""

    nargs = 2
