"""The mean-field (saddle-point) kernel recursion, derived from the action.

At the saddle C~ = 0 and C^l = sigma_w^2 <g g> + sigma_b^2 (``action.saddle_point``). Given C, the
single-neuron increment Delta = h^l - h^{l-1} is independent of h^{l-1} with known moments
(``action.*_increment``), so the second moments K^l_ab = E[h^l_a h^l_b] and means m^l_a follow by
expanding E[(h_a + Delta_a)(h_b + Delta_b)]:

    full block:     K^l = K^{l-1} + r^2 [sigma_w^2 P(K^{l-1}) + sigma_b^2],  m = 0
    reduced block:  C = sigma_w^2 K^{l-1} + sigma_b^2,   mu_a = <phi>_{C_aa},
                    K^l_ab = K^{l-1}_ab + r (m_a mu_b + mu_a m_b) + r^2 P_ab(C),   m^l = m^{l-1} + r mu.

The reduced block's mean terms vanish only for odd activations: for relu the pre-activations
acquire a common mean that the kernel (a second moment) must carry. The usual statement of the
reduced block omits them; the simulation tests show they are needed (docs/theory, "The reduced
block carries a mean").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from . import action, activations, closed_forms, gauss, model


@dataclass(frozen=True)
class LayerMap:
    """One layer of the mean-field recursion: state of layer l-1 -> state of layer l."""

    block: str
    activation: str
    n_inputs: int
    state: tuple  # symbols of the previous layer's state
    update: tuple  # expressions for the next layer's state, same order
    n_kernel: int  # the first n_kernel state entries are the kernel in pair order
    saddle: action.SaddlePoint
    fields: tuple  # C at the saddle in pair order, the activation's expectations evaluated

    @property
    def kernel_state(self) -> tuple:
        return self.state[: self.n_kernel]


def kernel_symbols(n_inputs: int) -> tuple:
    return (model.K1,) if n_inputs == 1 else model.K


def mean_symbols(n_inputs: int) -> tuple:
    return (model.m1,) if n_inputs == 1 else model.m


# <phi(h_a) phi(h_b)> of the layer below in pair order, as unknowns of the full block's saddle.
PHI_MOMENTS = model.pair_symbols("P")


def _phi_second_moments(name: str, kernel: tuple) -> tuple:
    """<phi phi> of the layer below in pair order: closed forms or expectation nodes."""
    if len(kernel) == 1:
        return (gauss.single(name, kernel[0]),)
    return gauss.pair(name, kernel)


def _propagate(kernel, means, increment: action.Increment, n_inputs: int):
    """E[(h_a + D_a)(h_b + D_b)] and E[h_a + D_a] with D independent of h."""
    new_kernel = tuple(
        kernel[p]
        + means[a] * increment.mean[b]
        + increment.mean[a] * means[b]
        + increment.second[p]
        for p, (a, b) in enumerate(model.pair_positions(n_inputs))
    )
    new_means = tuple(means[a] + increment.mean[a] for a in range(n_inputs))
    return new_kernel, new_means


@lru_cache(maxsize=None)
def layer_map(block: str, name: str, n_inputs: int) -> LayerMap:
    if block not in model.BLOCKS:
        raise ValueError(f"block must be one of {model.BLOCKS}; got {block!r}")
    kernel = kernel_symbols(n_inputs)
    means = mean_symbols(n_inputs)
    phi = activations.get(name)
    C, _ = action.pair_fields(n_inputs)
    if block == "full":
        # The saddle in terms of the moments P = <phi(h_a) phi(h_b)>, then P from gauss (closed
        # forms where derived). Solving with the expectations inside would split them by
        # linearity (GELU's x Phi(x): <x1 x2> + <x1 x2 erf erf>) into nodes no closed form
        # recognises, and expand the closed forms into one rational function.
        moments = PHI_MOMENTS[:1] if n_inputs == 1 else PHI_MOMENTS
        saddle = action.saddle_point(n_inputs, action.second_moment_source(moments, n_inputs))
        values = dict(zip(moments, _phi_second_moments(name, kernel)))
        fields = tuple(saddle.fields[c].xreplace(values) for c in C)
    else:
        saddle = action.saddle_point(n_inputs, action.second_moment_source(kernel, n_inputs))
        fields = tuple(saddle.fields[c] for c in C)
    if block == "full":
        increment = action.full_block_increment(fields, n_inputs)
    else:
        if n_inputs == 1:
            pair_at_c = (gauss.single(name, fields[0]),)
        else:
            pair_at_c = gauss.pair(name, fields)
        increment = action.reduced_block_increment(
            phi, fields, n_inputs, pair_at_c, lambda v: gauss.mean(name, v)
        )
    new_kernel, new_means = _propagate(kernel, means, increment, n_inputs)
    if all(sp.simplify(mu) == 0 for mu in increment.mean):
        # The means start at zero and never move: they are not part of the state.
        new_kernel = tuple(k.xreplace({m: 0 for m in means}) for k in new_kernel)
        return LayerMap(block, name, n_inputs, kernel, new_kernel, len(kernel), saddle, fields)
    return LayerMap(
        block,
        name,
        n_inputs,
        kernel + means,
        new_kernel + new_means,
        len(kernel),
        saddle,
        fields,
    )


@lru_cache(maxsize=None)
def input_kernel(mode: str, n_inputs: int) -> tuple:
    """K^0 in pair order: the given kernel, or the input layer's saddle sigma_w^2 G + sigma_b^2."""
    if mode == "kernel":
        return kernel_symbols(n_inputs)
    if mode != "layer":
        raise ValueError(f"input must be one of {model.INPUT_MODES}; got {mode!r}")
    gram = (model.G1,) if n_inputs == 1 else model.G
    saddle = action.saddle_point(n_inputs, action.second_moment_source(gram, n_inputs))
    C, _ = action.pair_fields(n_inputs)
    fields = tuple(saddle.fields[c] for c in C)
    # h^0 = W^0 x + b^0 is one increment of unit scale from zero.
    increment = action.full_block_increment(fields, n_inputs)
    return tuple(sp.simplify(s.xreplace({model.r: 1})) for s in increment.second)


def has_closed_form(name: str) -> bool:
    return closed_forms.has_closed_form(name)
