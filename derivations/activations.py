"""The activation functions phi, as SymPy expressions of one variable.

``ACTIVATIONS`` are the activations whose modules are generated into the package (``fieldgen
regenerate``). ``PRESETS`` are further built-in names (GELU, SiLU, leaky relu, ...), and
``define(name, text)`` makes an activation from a user's expression; the modules of both are
generated on first use into a per-user cache (``fieldgen.activation``), so neither needs a source
edit. Every activation is written in a *stable form* (``stable_form``): logistic and softplus
pieces become tanh and ``Softplus``, which generated code evaluates without overflow for any real
argument, and kinks become steps (``distributions``), which differentiate exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .distributions import derivative
from .expectation import variables

_x = variables(1)[0]


class Softplus(sp.Function):
    """log(1 + exp(u)), evaluated stably (max(u, 0) + log1p(exp(-|u|))) by generated code."""

    nargs = 1

    def fdiff(self, argindex=1):
        return (1 + sp.tanh(self.args[0] / 2)) / 2  # the logistic function, in tanh form

    def _eval_rewrite_as_log(self, u, **kwargs):
        return sp.log(1 + sp.exp(u))

    def _eval_is_real(self):
        return self.args[0].is_real


def logistic(u: sp.Expr) -> sp.Expr:
    """1 / (1 + exp(-u)) in tanh form: finite for every real u, and so are its derivatives."""
    return (1 + sp.tanh(u / 2)) / 2


def normal_cdf(u: sp.Expr) -> sp.Expr:
    return (1 + sp.erf(u / sp.sqrt(2))) / 2


def stable_form(expr: sp.Expr) -> sp.Expr:
    """Rewrite the pieces that overflow in floating point: 1/(1 + exp(u)) -> (1 - tanh(u/2))/2 and
    log(1 + exp(u)) -> Softplus(u). The value is the same real function."""

    def one_plus_exp(base):
        rest = base - 1
        return rest if isinstance(rest, sp.exp) else None

    def reciprocal(e):
        return e.is_Pow and e.exp == -1 and one_plus_exp(e.base) is not None

    expr = expr.replace(reciprocal, lambda e: (1 - sp.tanh(one_plus_exp(e.base).args[0] / 2)) / 2)
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and one_plus_exp(e.args[0]) is not None,
        lambda e: Softplus(one_plus_exp(e.args[0]).args[0]),
    )
    return expr


class Opaque(sp.Function):
    """phi^(k)(u) of a smooth activation without closed forms, kept as a symbol in the derivations.

    Price's theorem differentiates the activation inside every expectation; with phi written out
    (tanh forms of SiLU or Mish) each derivative expands into many terms and deriving a module
    takes minutes. As an opaque function, d/du phi^(k) is just phi^(k+1); the code printer writes
    the explicit derivative (``explicit``) only where the integrand is evaluated.
    """

    nargs = 1
    activation: str = ""
    order: int = 0

    def fdiff(self, argindex=1):
        return opaque(self.activation, self.order + 1)(self.args[0])

    def _eval_is_real(self):
        return self.args[0].is_real

    def _numbacode(self, printer):
        # fieldgen's code printer (printmethod "_numbacode") writes the derivative out.
        return "(" + printer._print(self.explicit()) + ")"

    def _latex(self, printer, exp=None):
        arg = printer._print(self.args[0])
        primes = "'" * self.order if self.order <= 3 else f"^{{({self.order})}}"
        tex = f"\\phi_{{\\mathrm{{{self.activation}}}}}{primes}\\left({arg}\\right)"
        return tex if exp is None else f"{tex}^{{{exp}}}"

    def explicit(self) -> sp.Expr:
        """phi^(k) at the argument, written out."""
        d = get(self.activation).derivative(self.order)
        return d(self.args[0])


_OPAQUE: dict[tuple[str, int], type] = {}


def opaque(name: str, order: int) -> type:
    """The Opaque subclass for phi^(order) of the activation `name` (one class per pair)."""
    key = (name, order)
    if key not in _OPAQUE:
        _OPAQUE[key] = type(
            f"{name}_d{order}" if order else name, (Opaque,), {"activation": name, "order": order}
        )
    return _OPAQUE[key]


@lru_cache(maxsize=None)
def _smooth_generic(phi: sp.Lambda) -> bool:
    from .closed_forms import closable
    from .distributions import simplify_distributions

    expr = phi(_x)
    return not simplify_distributions(expr, (_x,)).has(sp.Heaviside) and not closable(expr, _x)


@lru_cache(maxsize=None)
def _has_steps(phi: sp.Lambda) -> bool:
    from .distributions import simplify_distributions

    return simplify_distributions(phi(_x), (_x,)).has(sp.Heaviside)


@lru_cache(maxsize=None)
def _explicit_derivative(phi: sp.Lambda, order: int) -> sp.Lambda:
    return sp.Lambda(_x, derivative(phi(_x), _x, order))


@dataclass(frozen=True)
class Activation:
    name: str
    phi: sp.Lambda
    description: str

    def __call__(self, arg):
        """phi(arg) as the derivations use it: opaque for smooth activations without closed forms
        that are not generated into the package (see Opaque), else the expression itself."""
        if self.name not in ACTIVATIONS and _smooth_generic(self.phi):
            return opaque(self.name, 0)(arg)
        return self.phi(arg)

    def numeric(self, arg):
        """phi(arg) for the one-loop moments (three and four points): opaque for every smooth
        activation outside the package, closed forms or not. Searching closed forms of GELU's
        four-point moments takes SymPy many minutes; the generic quadrature takes seconds."""
        if self.name not in ACTIVATIONS and not _has_steps(self.phi):
            return opaque(self.name, 0)(arg)
        return self(arg)

    def derivative(self, order: int = 1) -> sp.Lambda:
        """phi^(order) in the sense of distributions (relu' = step, relu'' = delta)."""
        # Apply phi rather than read phi.expr: SymPy turns Lambda(x, x) into IdentityFunction.
        return _explicit_derivative(self.phi, order)

    @property
    def expr(self) -> sp.Expr:
        return self.phi(_x)


def _make(name: str, expr: sp.Expr, description: str) -> Activation:
    return Activation(name, sp.Lambda(_x, stable_form(expr)), description)


# Generated into the package (generated/): the activations of the paper and the report.
ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        _make("erf", sp.erf(_x), "error function erf(x)"),
        _make("linear", _x, "identity phi(x) = x"),
        _make("relu", sp.Max(0, _x), "rectifier max(0, x)"),
        _make("tanh", sp.tanh(_x), "hyperbolic tangent"),
    )
}

_half = sp.Rational(1, 2)
# Built-in names generated on first use into the user cache. Parameters (leaky relu's slope, the
# scaled erf) take common defaults; other values are one `fieldgen.activation` call away.
PRESETS: dict[str, Activation] = {
    a.name: a
    for a in (
        _make("gelu", _x * normal_cdf(_x), "GELU x Phi(x), Phi the standard normal CDF"),
        _make("leaky_relu", sp.Max(_x, _x / 100), "leaky rectifier max(x, x/100)"),
        _make(
            "abrelu",
            sp.Max(0, _x) - _half * sp.Max(0, -_x),
            "asymmetric rectifier: slope 1 for x > 0, 1/2 for x < 0",
        ),
        _make("abs", sp.Abs(_x), "absolute value |x|"),
        _make("sign", sp.sign(_x), "sign(x)"),
        _make("step", sp.Heaviside(_x), "Heaviside step (0 for x < 0, 1 for x > 0)"),
        _make("sin", sp.sin(_x), "sine"),
        _make("cos", sp.cos(_x), "cosine"),
        _make("exp", sp.exp(_x), "exponential"),
        _make("gaussian", sp.exp(-(_x**2) / 2), "Gaussian bump exp(-x^2/2)"),
        _make("quadratic", _x**2, "square x^2"),
        _make("cubic", _x**3, "cube x^3"),
        _make("quartic", _x**4, "fourth power x^4"),
        _make(
            "erf2",
            sp.erf(_x * sp.sqrt(sp.pi) / 2),
            "erf with the argument scaled to unit slope at 0, erf(sqrt(pi) x / 2)",
        ),
        _make("silu", _x * logistic(_x), "SiLU (swish) x / (1 + exp(-x))"),
        _make("softplus", Softplus(_x), "softplus log(1 + exp(x))"),
        _make("sigmoid", logistic(_x), "logistic sigmoid 1 / (1 + exp(-x))"),
        _make(
            "elu", sp.Max(0, _x) + sp.Min(0, sp.exp(_x) - 1), "ELU: x for x > 0, exp(x) - 1 below"
        ),
        _make("mish", _x * sp.tanh(Softplus(_x)), "Mish x tanh(softplus(x))"),
    )
}

# Run-time activations registered by `register` (user definitions), by name.
_REGISTERED: dict[str, Activation] = {}


def register(activation: Activation) -> Activation:
    """Make `activation` known to `get` (the derivations look activations up by name)."""
    known = ACTIVATIONS.get(activation.name) or PRESETS.get(activation.name)
    if known is not None and known != activation:
        raise ValueError(f"activation name {activation.name!r} is a built-in activation")
    _REGISTERED[activation.name] = activation
    return activation


def get(name: str) -> Activation:
    for table in (ACTIVATIONS, PRESETS, _REGISTERED):
        if name in table:
            return table[name]
    raise ValueError(
        f"activation must be one of {', '.join(sorted(ACTIVATIONS) + sorted(PRESETS))} "
        f"or defined with fieldgen.activation(name, expr); got {name!r}"
    )


def builtin_names() -> tuple[str, ...]:
    return tuple(sorted(ACTIVATIONS)) + tuple(sorted(PRESETS))
