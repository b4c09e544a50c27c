"""Activations defined at run time: ``fieldgen.activation(name, expr)``.

    silu = fieldgen.activation("silu2", "x / (1 + exp(-x))")
    fieldgen.kernel(silu, r=0.3, sigma_w2=1.0, depth=100, K0=1.0)

The result is accepted wherever a built-in activation name is. Its evaluators are derived from the
expression (closed forms where the rules reach them, the generic path otherwise) and generated on
first use, kind by kind, into a per-user cache (``fieldgen.usercache``); other processes reuse
them. Built-in names that are not generated into the package (``gelu``, ``silu``, ...) go the same
way: ``fieldgen.activation("gelu")`` is the preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .generated import ACTIVATIONS, PRESETS

# What the public functions accept as an activation: a built-in name or an Activation.
ActivationLike = Union[str, "Activation"]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True)
class Activation:
    """An activation function phi(x) with generated evaluators in the user cache.

    Attributes: ``name``; ``expression``, phi as text (SymPy's string form); ``digest``, the
    cache key (expression and generator version); ``builtin``, True for the preset names.
    """

    name: str
    expression: str
    digest: str
    builtin: bool = False
    _expr: object = field(default=None, repr=False, compare=False, hash=False)

    @property
    def expr(self):
        """phi as a SymPy expression in x."""
        import sympy as sp

        return self._expr.xreplace({s: sp.Symbol("x", real=True) for s in self._expr.free_symbols})

    @property
    def closed_form(self) -> bool:
        """Whether the Gaussian expectations of phi close (structural test of the derivations)."""
        from .derivations.closed_forms import closable
        from .derivations.expectation import variables

        return closable(self._expr, variables(1)[0])

    def register(self) -> None:
        """Make the expression known to the derivations under this name (for generation)."""
        if self.builtin:
            return  # a preset: the derivations know it by name
        import sympy as sp

        from .derivations import activations
        from .derivations.expectation import variables

        activations.register(
            activations.Activation(
                self.name,
                sp.Lambda(variables(1)[0], self._expr),
                f"{self.name}(x) = {self.expression}",
            )
        )

    def module(self, kind: str):
        from . import usercache

        return usercache.load(kind, self)

    def __str__(self) -> str:
        return self.name


def _check_name(name) -> str:
    if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS or name[0].isdigit():
        raise ValueError(f"name must be an identifier (letters, digits, _); got {name!r}")
    return name


def _make(name: str, expr, builtin: bool) -> Activation:
    import sympy as sp

    from . import usercache
    from .derivations.activations import stable_form

    expr = stable_form(expr)
    text = sp.sstr(expr).replace("x1", "x")
    return Activation(name, text, usercache.activation_digest(sp.srepr(expr)), builtin, expr)


_DEFINED: dict[str, Activation] = {}


def activation(name: str, expr: object = None) -> Activation:
    """An activation usable by every public function, from a SymPy expression or a string in x.

    Parameters
    ----------
    name : str
        An identifier; must not be a built-in name unless `expr` is omitted.
    expr : str or sympy.Expr, optional
        phi(x). Strings are parsed against a whitelist (numbers, ``x``, ``pi``, ``E``, the
        operators ``+ - * / **``, and ``exp``, ``log``, ``sqrt``, ``sin``, ``cos``, ``tan``,
        ``atan``, ``sinh``, ``cosh``, ``tanh``, ``asinh``, ``erf``, ``erfc``, ``abs``, ``sign``,
        ``Heaviside``, ``max``, ``min``, ``relu``, ``sigmoid``, ``softplus``, ``Phi``); nothing is
        evaluated by Python. Omitted: the built-in activation `name` (e.g. ``"gelu"``).

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        A syntax error, an unknown function or name, a second free symbol, an expression that is
        not real and finite on the real line or whose Gaussian expectations diverge, kinks away
        from x = 0, or a name that is taken (a built-in, or another expression in this process).

    Examples
    --------
    >>> import fieldgen
    >>> a = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")
    >>> fieldgen.kernel(a, r=0.3, sigma_w2=1.0, depth=10, K0=1.0).shape
    (11,)
    """
    name = _check_name(name)
    if expr is None:
        return builtin(name)
    if name in ACTIVATIONS or name in PRESETS:
        raise ValueError(
            f"name {name!r} is a built-in activation; choose another name "
            f"(or call fieldgen.activation({name!r}) for the built-in)"
        )
    from .derivations import activation_text

    parsed = activation_text.parse(expr) if isinstance(expr, str) else expr
    made = _make(name, activation_text.check(parsed), builtin=False)
    known = _DEFINED.get(name)
    if known is not None and known != made:
        raise ValueError(
            f"activation {name!r} is already defined in this process as "
            f"{known.expression}; choose another name"
        )
    _DEFINED[name] = made
    return made


def builtin(name: str) -> Activation:
    """The preset `name` (gelu, silu, ...) as an Activation."""
    if name not in PRESETS:
        raise ValueError(f"{name!r} is not a built-in preset; presets: {', '.join(PRESETS)}")
    if name not in _DEFINED:
        from .derivations.activations import PRESETS as definitions

        _DEFINED[name] = _make(name, definitions[name].expr, builtin=True)
    return _DEFINED[name]


def resolve(value):
    """A built-in name generated into the package (str), or an Activation; ValueError otherwise."""
    if isinstance(value, Activation):
        return value
    if isinstance(value, str):
        if value in ACTIVATIONS:
            return value
        if value in PRESETS:
            return builtin(value)
        if value in _DEFINED:
            return _DEFINED[value]
    raise ValueError(
        f"activation must be one of {', '.join(ACTIVATIONS + PRESETS)}, or an "
        f"activation made by fieldgen.activation(name, expr); got {value!r}"
    )


def parse_definition(text: str) -> ActivationLike:
    """'name=expr' (command line) -> Activation; a bare name is a built-in."""
    if "=" in text:
        name, expr = text.split("=", 1)
        return activation(name.strip(), expr)
    return resolve(text.strip()) if text.strip() not in ACTIVATIONS else text.strip()


def listing() -> list[dict]:
    """Built-in and cached activations: name, expression, closed form, where its modules are."""
    from . import usercache
    from .generated import CLOSED_FORMS

    rows = []
    for name in ACTIVATIONS:
        rows.append(
            dict(
                name=name,
                expression=_package_expression(name),
                closed_form=name in CLOSED_FORMS,
                where="package",
            )
        )
    for name in PRESETS:
        a = builtin(name)
        rows.append(
            dict(
                name=name,
                expression=a.expression,
                closed_form=a.closed_form,
                where="built-in, generated on first use",
            )
        )
    for meta in usercache.cached_activations():
        if meta["name"] in PRESETS:
            continue
        rows.append(
            dict(
                name=meta["name"],
                expression=meta["expression"],
                closed_form=meta["closed_form"],
                where=f"cache ({', '.join(meta['kinds'])})",
            )
        )
    return rows


def _package_expression(name: str) -> str:
    import sympy as sp

    from .derivations.activations import ACTIVATIONS as definitions

    return sp.sstr(definitions[name].expr).replace("x1", "x")
