"""The neural tangent kernel (NTK) recursion, derived from the layer map of one neuron.

Parameterisation (the NTK one, so that the infinite-width limit is finite): every layer has
trainable w^l_ij ~ N(0, 1) and beta^l_i ~ N(0, 1), and

    W^l = sigma_w w^l / sqrt(N),   b^l = sigma_b beta^l,

which gives the same network law as the model (W ~ N(0, sigma_w^2/N), b ~ N(0, sigma_b^2)). The NTK
of output neuron k is Theta^l_ab = sum_theta dh^l_{k,a}/dtheta dh^l_{k,b}/dtheta over all trainable
theta of layers 1..l (and of the input layer h^0 = sigma_w w^0 x / sqrt(d) + sigma_b beta^0 when
input="layer"; with input="kernel" there is no trainable input layer and Theta^0 = 0).

One neuron k of layer l is F(h_k, z_k): the identity path h_k plus the block, where
z_k = sigma_w s_k + sigma_b beta_k and s_k = sum_i w_ki g(h_i) / sqrt(N) is the weight sum
(full block: F = h + r z, g = phi; reduced block: F = h + r phi(z), g = identity). The chain rule
gives, per pair of inputs (a, b):

  * direct terms (parameters of layer l): d F_a/d w_ki = F_z sigma_w g(h_{i,a}) / sqrt(N) and
    d F_a/d beta_k = F_z sigma_b; summed over i and multiplied over a, b;
  * propagated terms (parameters of earlier layers, Theta^{l-1}_{ij} = delta_ij Theta^{l-1}):
    d F_a/d h_k = F_h (the identity path) and d F_a/d h_i = F_z sigma_w w_ki g'(h_{i,a}) / sqrt(N).

At infinite width the sum over the N neurons i of the layer below becomes N times a Gaussian
expectation over h ~ N(0, K^{l-1}), the field z is Gaussian with the saddle-point covariance
C^l, independent of that average, and E[w^2] = 1 (odd moments vanish). Everything below is
differentiated and averaged by SymPy; the results are

    full:     Theta^l = (1 + r^2 sigma_w^2 <phi' phi'>_K) Theta^{l-1} + r^2 C
    reduced:  Theta^l = (1 + r^2 sigma_w^2 <phi' phi'>_C) Theta^{l-1} + r^2 <phi' phi'>_C C

with C the saddle point (full: sigma_w^2 <phi phi>_K + sigma_b^2; reduced: sigma_w^2 K + sigma_b^2).
The "1" is the identity path's contribution; ``layer_map(..., identity_path=False)`` drops it
(used as a negative control by the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import activations, closed_forms, meanfield, model
from .expectation import expect, variables

# NTK entries: one input, and two inputs in pair order (11, 22, 12).
THETA1 = sp.Symbol("Theta", nonnegative=True)
THETA = model.pair_symbols("Theta", nonnegative=True)

# One neuron's symbols, per input a = 1, 2.
_h = sp.symbols("h1 h2", real=True)  # the neuron's own pre-activation h_k (identity path)
_u = sp.symbols("u1 u2", real=True)  # a neuron h_i of the layer below
_z = sp.symbols("z1 z2", real=True)  # the field z_k = sigma_w s_k + sigma_b beta_k
_rest = sp.symbols("s1 s2", real=True)  # the weight sum without neuron i
_w, _beta = sp.symbols("w beta", real=True)


def theta_symbols(n_inputs: int) -> tuple:
    return (THETA1,) if n_inputs == 1 else THETA


@dataclass(frozen=True)
class NeuronGradients:
    """d F_a / d(parameter or earlier pre-activation) of one neuron, for inputs a = 1, 2."""

    block: str
    d_weight: tuple  # d F_a / d w_ki
    d_bias: tuple  # d F_a / d beta_k
    d_identity: tuple  # d F_a / d h_k
    d_below: tuple  # d F_a / d h_i


def neuron(block: str, name: str, a: int, field=None) -> tuple[sp.Expr, sp.Expr]:
    """(F_a, z_a): one neuron's layer map written through one weight w = w_ki and one neuron u.

    With `field` (a symbol), F_a is written through it in place of the expression z_a.
    """
    phi = activations.get(name)
    g = phi if block == "full" else (lambda x: x)
    z = (
        sp.sqrt(model.sigma_w2) * (_w * g(_u[a]) / sp.sqrt(model.width) + _rest[a])
        + sp.sqrt(model.sigma_b2) * _beta
    )
    outer = z if field is None else field
    if block == "full":
        return _h[a] + model.r * outer, z
    if block == "reduced":
        return _h[a] + model.r * phi(outer), z
    if block == "input":  # h^0 = sigma_w w x / sqrt(d) + sigma_b beta: u plays the input x
        return outer, z
    raise ValueError(f"block must be one of {model.BLOCKS}; got {block!r}")


@lru_cache(maxsize=None)
def gradients(block: str, name: str) -> NeuronGradients:
    parts = {"d_weight": [], "d_bias": [], "d_identity": [], "d_below": []}
    for a in range(2):
        # The field enters through z only: differentiate F written through the symbol z_a and
        # apply the chain rule. (Replacing z in dF afterwards misses phi' at a rescaled z, as in
        # d Max(z, z/100)/dz = Heaviside(99 z/100)/100 + ..., whose argument SymPy distributes.)
        F, z = neuron(block, name, a, field=_z[a])
        for key, var in (
            ("d_weight", _w),
            ("d_bias", _beta),
            ("d_identity", _h[a]),
            ("d_below", _u[a]),
        ):
            parts[key].append(sp.diff(F, var) + sp.diff(F, _z[a]) * sp.diff(z, var))
    return NeuronGradients(block, *(tuple(v) for v in parts.values()))


def _gaussian_moment(power: int) -> int:
    """E[w^power] for w ~ N(0, 1)."""
    return 0 if power % 2 else int(sp.factorial2(power - 1))


# simplify() tidies the short averages of the package's activations (at most ~85 operations) in
# a second or two; on longer ones (GELU: up to ~280) it ran for minutes. The generated code
# eliminates common subexpressions either way.
SIMPLIFY_MAX_OPS = 100


def _tidy(expr: sp.Expr) -> sp.Expr:
    return sp.simplify(expr) if sp.count_ops(expr) <= SIMPLIFY_MAX_OPS else expr


def mean_field_average(expr: sp.Expr, a: int, b: int, below, field) -> sp.Expr:
    """Average a product of one neuron's derivatives over the infinite-width law.

    w ~ N(0, 1) independent of everything; (u_a, u_b) ~ N(0, `below`) (the layer below: K^{l-1},
    or the input Gram matrix); (z_a, z_b) ~ N(0, `field`) (the saddle point C^l). `below` and
    `field` are pair-space entries (11, 22, 12) of inputs (a, b) (a == b: one entry used).
    """
    total = sp.S.Zero
    for term in sp.Add.make_args(sp.expand(expr)):
        factors = {"w": sp.S.One, "u": sp.S.One, "z": sp.S.One, "const": sp.S.One}
        for f in sp.Mul.make_args(term):
            if f.has(_w):
                factors["w"] *= f
            elif f.has(*_u):
                factors["u"] *= f
            elif f.has(*_z):
                factors["z"] *= f
            else:
                factors["const"] *= f
        power = sp.degree(factors["w"], _w) if factors["w"] != 1 else 0
        if factors["w"] != _w**power:
            raise ValueError(f"unexpected weight dependence {factors['w']}")
        moment = _gaussian_moment(power)
        if moment == 0:
            continue
        total += (
            factors["const"]
            * moment
            * _expect(factors["u"], _u, a, b, below)
            * _expect(factors["z"], _z, a, b, field)
        )
    return _tidy(total)


def _expect(body, xs, a, b, entries):
    """<body> with (xs[a], xs[b]) ~ N(0, entries), closed where a closed form exists."""
    if not body.has(*xs):
        return body
    if a == b:
        (x1,) = variables(1)
        return closed_forms.close(expect(body.xreplace({xs[a]: x1}), (entries[0],)))
    x1, x2 = variables(2)
    return closed_forms.close(expect(body.xreplace({xs[a]: x1, xs[b]: x2}), tuple(entries)))


@dataclass(frozen=True)
class NTKTerms:
    """Theta^l_ab = propagation * Theta^{l-1}_ab + direct, for each pair entry."""

    propagation: tuple  # incl. the identity path
    identity: tuple  # the identity path's part of propagation
    direct: tuple  # parameters of layer l (weights and biases)


def _pair_entries(entries, a, b):
    """Pair-space entries (aa, bb, ab) of a two-input matrix given in pair order."""
    index = {(0, 0): 0, (1, 1): 1, (0, 1): 2}
    return (entries[index[(a, a)]], entries[index[(b, b)]], entries[index[(min(a, b), max(a, b))]])


def layer_terms(block: str, name: str, n_inputs: int, below, field) -> NTKTerms:
    """The NTK layer terms, given the layer below's second moments and the field's covariance."""
    grads = gradients(block, name)
    N = model.width
    prop, ident, direct = [], [], []
    for a, b in model.pair_positions(n_inputs):
        below_ab = _pair_entries(below, a, b) if n_inputs == 2 else (below[0],) * 3
        field_ab = _pair_entries(field, a, b) if n_inputs == 2 else (field[0],) * 3
        # Sums over the N neurons i of the layer below (and their N weights w_ki) give factor N.
        d = N * grads.d_weight[a] * grads.d_weight[b] + grads.d_bias[a] * grads.d_bias[b]
        i_path = grads.d_identity[a] * grads.d_identity[b]
        below_path = N * grads.d_below[a] * grads.d_below[b]
        avg = [mean_field_average(e, a, b, below_ab, field_ab) for e in (d, i_path, below_path)]
        direct.append(avg[0])
        ident.append(avg[1])
        prop.append(_tidy(avg[1] + avg[2]))
    return NTKTerms(tuple(prop), tuple(ident), tuple(direct))


def saddle_field(block: str, name: str, n_inputs: int) -> tuple:
    """C^l in pair order at the saddle point, activation expectations evaluated."""
    return meanfield.layer_map(block, name, n_inputs).fields


@lru_cache(maxsize=None)
def terms(block: str, name: str, n_inputs: int) -> NTKTerms:
    kernel = meanfield.kernel_symbols(n_inputs)
    return layer_terms(block, name, n_inputs, kernel, saddle_field(block, name, n_inputs))


@dataclass(frozen=True)
class NTKLayerMap:
    """The mean-field layer map extended by the NTK entries (state and update, same order)."""

    block: str
    activation: str
    n_inputs: int
    state: tuple
    update: tuple
    n_kernel: int
    kernel_map: meanfield.LayerMap

    @property
    def theta_state(self) -> tuple:
        return self.state[len(self.kernel_map.state) :]


@lru_cache(maxsize=None)
def layer_map(block: str, name: str, n_inputs: int, identity_path: bool = True) -> NTKLayerMap:
    lm = meanfield.layer_map(block, name, n_inputs)
    t = terms(block, name, n_inputs)
    theta = theta_symbols(n_inputs)
    prop = (
        t.propagation
        if identity_path
        else tuple(_tidy(p - i) for p, i in zip(t.propagation, t.identity))
    )
    new_theta = tuple(p * th + d for p, th, d in zip(prop, theta, t.direct))
    return NTKLayerMap(
        block, name, n_inputs, lm.state + theta, lm.update + new_theta, lm.n_kernel, lm
    )


@lru_cache(maxsize=None)
def input_ntk(mode: str, n_inputs: int) -> tuple:
    """Theta^0 in pair order: 0 for a given kernel; the input layer's own parameters otherwise."""
    if mode == "kernel":
        return (sp.S.Zero,) * len(meanfield.kernel_symbols(n_inputs))
    gram = (model.G1,) if n_inputs == 1 else model.G
    k0 = meanfield.input_kernel(mode, n_inputs)  # the input layer's field covariance
    # The input layer has no identity path and no layer below it: only its direct terms.
    return layer_terms("input", "linear", n_inputs, gram, k0).direct
