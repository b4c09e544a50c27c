"""The pair self-feedback where the walk takes no step (Kl_ii = Ke_ii).

A delta of the late layer, delta(h^late_i), conditions h^early_i on h^late_i = 0 with the variance
V_i = Ke_ii (Kl_ii - Ke_ii) / Kl_ii, by which the general closed form divides: 0/0 at V_i = 0.
The derivation adds the stalled value (h^late_i = h^early_i, a 3-D expectation) as a second
branch. Checked here against the limit of the general form in 40-digit arithmetic: near the stall
it is stalled + c sqrt(t) + O(t) in the step t, so the two-point extrapolation
(10 v(t / 100) - v(t)) / 9 removes the sqrt(t) term and must give the stalled value to O(t).
"""

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from fieldgen.derivations import one_loop
from fieldgen.derivations.expectation import explicit_correlation
from fieldgen.generated import module

KE = ((1.3, 0.8, 0.5), (1.0, 1.0, 0.3), (2.0, 0.7, -0.9), (0.37, 1.9, -0.1))
STEP = (0.7, 0.4, 0.3)  # Kl - Ke off the stall: positive definite
# (entry index s, p, q) of the pair self-feedback whose general form divides by V_1 (s = 11)
# and V_2 (s = 22): D_ii[phi phi_12] = (1/2) phi''(y_i) phi(y_j) against phi phi_12 early.
STALLED = ((0, 2, 2), (1, 2, 2))


def _branches(name):
    """{(s, p, q): (general, stalled)} as mpmath functions of (Ke, Kl), for the entries with the
    stalled branch; the whole entry (the -J P_early term included) in both."""
    F = one_loop.self_feedback(name, 2)
    early, late = one_loop.early_late_symbols(2)
    out = {}
    for s in range(3):
        for p in range(3):
            for q in range(3):
                entry = F[s][p][q]
                pieces = [e for e in sp.preorder_traversal(entry) if isinstance(e, sp.Piecewise)]
                if not pieces:
                    continue
                (pw,) = pieces
                general, stalled = (
                    sp.lambdify(
                        early + late,
                        explicit_correlation(entry.xreplace({pw: branch.expr})),
                        modules="mpmath",
                    )
                    for branch in pw.args
                )
                out[(s, p, q)] = (general, stalled)
    return out


def _mp(values):
    return [mp.mpf(v) for v in values]


def _steps(s):
    """Kl - Ke as a function of t: every entry to 0 with t (the whole walk stalls), or only the
    stalled component's variance (the other component keeps stepping; Kl - Ke stays PSD)."""
    other = [0.0, 0.0, 0.0]
    other[1 - s] = STEP[1 - s]
    return (
        lambda t: [t * d for d in STEP],
        lambda t: [t * STEP[k] if k == s else other[k] for k in range(3)],
    )


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu", "abrelu"])
def test_stalled_branch_is_the_limit_of_the_general_closed_form(name):
    branches = _branches(name)
    assert sorted(branches) == list(STALLED)  # only where the general form divides by V_i
    with mp.workdps(40):
        for ke in KE:
            Ke = _mp(ke)
            for (s, _, _), (general, stalled) in branches.items():
                for step in _steps(s):

                    def at(t, general=general, step=step):
                        return general(*Ke, *[a + d for a, d in zip(Ke, step(t))])

                    Kl0 = [a + d for a, d in zip(Ke, step(0))]
                    limit = stalled(*Ke, *Kl0)
                    t = mp.mpf(10) ** -10
                    extrapolated = (10 * at(t / 100) - at(t)) / 9
                    assert abs(extrapolated - limit) < 1e-9 * abs(limit), (ke, s)
                    # continuity: the general form approaches it like sqrt(t)
                    gap = [abs(at(mp.mpf(10) ** -k) - limit) for k in (8, 10, 12)]
                    assert 9 < gap[0] / gap[1] < 11 and 9 < gap[1] / gap[2] < 11, gap
                    # negative control: the general form alone is 0/0 at the stall
                    with pytest.raises(ZeroDivisionError):
                        general(*Ke, *Kl0)


def test_generated_relu_pair_self_feedback_at_and_near_the_stall():
    """The printed branches: at Kl == Ke bitwise the stalled value, and at Kl = Ke + t STEP
    (t = 1e-15 .. 1e-6) the general form evaluated in 40 digits at the same float arguments, to
    1e-12 (V_i is printed as Ke_ii (Kl_ii - Ke_ii) / Kl_ii: exactly 0 at the stall, and without
    cancellation near it). Both printed bodies (self_feedback_pair, four_point_self_feedback_pair).
    Control: at t = 1e-15 the general value is > 1e-10 away from the stalled one, so the test
    tells the branches apart."""
    branches = _branches("relu")
    gen = module("oneloop", "relu")

    def printed(ke, kl):
        F, A, F2 = np.empty((3, 3, 3)), np.empty((3, 3)), np.empty((3, 3, 3))
        gen.self_feedback_pair(ke, kl, F)
        gen.four_point_self_feedback_pair(ke, kl, A, F2)
        assert np.isfinite(F).all() and np.isfinite(F2).all()
        return F, F2

    with mp.workdps(40):
        for ke in map(np.array, KE):
            for t in (0.0, 1e-15, 1e-12, 1e-9, 1e-6):
                kl = ke + t * np.array(STEP)
                for F in printed(ke, kl):
                    for idx, (general, stalled) in branches.items():
                        ref = (general if t else stalled)(*_mp(ke), *_mp(kl))
                        assert abs(F[idx] - ref) < 1e-12 * abs(ref), (ke, t, idx)
                        if t == 1e-15:
                            limit = stalled(*_mp(ke), *_mp(ke))
                            assert abs(F[idx] - limit) > 1e-10 * abs(limit)
