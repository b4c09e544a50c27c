"""A user's activation, given as text in one variable x, made into a checked SymPy expression.

The text is parsed by Python's ``ast`` module and the tree is walked node by node into SymPy:
nothing of the user's text is evaluated, so ``__import__('os')`` is a name outside the
whitelist, not a call. Allowed: numbers, x, pi, E, + - * / ** (also ^), and the functions in
``FUNCTIONS``. Decimal numbers become exact rationals (0.1 -> 1/10), so the derivations simplify.

``check`` then rejects what has no Gaussian expectation to compute: a second free symbol, a
function that is not real and finite on the real line, growth like exp(x^2) or faster (whose
Gaussian expectations diverge), and kinks anywhere but x = 0.
"""

from __future__ import annotations

import ast

import mpmath
import sympy as sp

from .activations import Softplus, logistic, normal_cdf
from .distributions import simplify_distributions
from .expectation import variables

X = variables(1)[0]

FUNCTIONS = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "atan": sp.atan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "asinh": sp.asinh,
    "erf": sp.erf,
    "erfc": sp.erfc,
    "abs": sp.Abs,
    "Abs": sp.Abs,
    "sign": sp.sign,
    "Heaviside": sp.Heaviside,
    "step": sp.Heaviside,
    "max": sp.Max,
    "Max": sp.Max,
    "min": sp.Min,
    "Min": sp.Min,
    "relu": lambda u: sp.Max(0, u),
    "sigmoid": logistic,
    "softplus": Softplus,
    "Phi": normal_cdf,
}
CONSTANTS = {"pi": sp.pi, "E": sp.E, "e": sp.E}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
    ast.BitXor: lambda a, b: a**b,
}
_MAX_LENGTH = 2000
# Growth test: phi^2 must be integrable against the widest Gaussian the API allows (K ~ 1e8
# after many layers is still fine): log|phi| must grow slower than x^2 / GROWTH_SCALE.
_GROWTH_POINTS = (20, 40, 80)
_SAMPLES = [mpmath.mpf(v) / 8 for v in range(-400, 401, 7)] + [
    mpmath.mpf(0),
    mpmath.mpf(200),
    mpmath.mpf(-200),
    mpmath.mpf(1000),
    mpmath.mpf(-1000),
]


def parse(text: str) -> sp.Expr:
    """SymPy expression in x (the canonical variable x1) from the user's text; ValueError if the
    text is not an expression of the allowed form."""
    if not isinstance(text, str):
        raise ValueError(f"expr must be a string or a SymPy expression; got {type(text).__name__}")
    if len(text) > _MAX_LENGTH:
        raise ValueError(f"expr is longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expr {text!r} is not a valid expression: {exc.msg}") from None
    return _convert(tree.body, text)


def _convert(node: ast.AST, text: str) -> sp.Expr:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(
                f"expr {text!r}: only numbers are allowed as constants; got {node.value!r}"
            )
        return (
            sp.Integer(node.value) if isinstance(node.value, int) else sp.Rational(repr(node.value))
        )
    if isinstance(node, ast.Name):
        if node.id == "x":
            return X
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise ValueError(f"expr {text!r}: {node.id} is a function; call it, e.g. {node.id}(x)")
        raise ValueError(
            f"expr {text!r}: unknown name {node.id!r} (the variable is x; a second "
            f"free symbol or an unknown constant is not allowed)"
        )
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_convert(node.left, text), _convert(node.right, text))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _convert(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            shown = name if name is not None else ast.unparse(node.func)
            raise ValueError(
                f"expr {text!r}: unknown function {shown!r}; allowed: "
                f"{', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords or not node.args:
            raise ValueError(f"expr {text!r}: call {name} with positional arguments only")
        return FUNCTIONS[name](*[_convert(a, text) for a in node.args])
    raise ValueError(
        f"expr {text!r}: {type(node).__name__} is not allowed in an activation "
        "(numbers, x, + - * / **, and function calls only)"
    )


def check(expr: sp.Expr) -> sp.Expr:
    """The expression if it is a usable activation; otherwise a ValueError saying why."""
    if not isinstance(expr, sp.Expr):
        raise ValueError(f"expr must be a SymPy expression or a string; got {type(expr).__name__}")
    free = expr.free_symbols
    named_x = [s for s in free if s.name == "x"]
    if named_x:  # a SymPy expression in the user's own Symbol("x")
        expr = expr.xreplace({s: X for s in named_x})
        free = expr.free_symbols
    if free - {X}:
        extra = ", ".join(sorted(str(s) for s in free - {X}))
        raise ValueError(f"expr must depend on the one variable x only; it also has {extra}")
    if X not in free:
        raise ValueError("expr must depend on x (a constant activation has no kernel to compute)")
    try:
        simplify_distributions(expr, (X,))
    except ValueError as exc:
        raise ValueError(f"expr {sp.sstr(expr)}: {exc}") from None
    f = sp.lambdify(X, expr.rewrite(sp.log) if expr.has(Softplus) else expr, modules="mpmath")
    with mpmath.workdps(30):
        for v in _SAMPLES:
            try:
                y = mpmath.mpmathify(f(v))
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                y = None
            if y is None or not isinstance(y, mpmath.mpf) or not mpmath.isfinite(y):
                raise ValueError(
                    f"expr {sp.sstr(expr)} must be real and finite for every real x; "
                    f"it is not at x = {mpmath.nstr(v, 6)}"
                )
        for point in _GROWTH_POINTS:
            for sign in (1, -1):
                y = abs(mpmath.mpmathify(f(sign * mpmath.mpf(point))))
                if y > 0 and mpmath.log(y) > point**2 / 8:
                    raise ValueError(
                        f"expr {sp.sstr(expr)} grows like exp(x^2) or faster (at x = {sign * point}: "
                        f"|phi| = {mpmath.nstr(y, 3)}), so its Gaussian expectations diverge"
                    )
    return expr
