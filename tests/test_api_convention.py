"""One two-input convention across the public API: every result of two inputs is indexed like
the kernel, one trailing (2, 2) group per kernel index, symmetric in each group; no argument
changes a return type; the old spellings warn (DeprecationWarning) for one minor version."""

import inspect
import warnings

import numpy as np
import pytest

import fieldgen
from fieldgen.pairs import PAIR_ORDER, PAIR_POSITIONS, to_matrix, to_pairs

PAIR = [[1.0, 0.4], [0.4, 1.3]]
NET = dict(r=0.4, sigma_w2=1.5, depth=3, sigma_b2=0.1)

# Every public function taking K0, with the number of (2, 2) groups its two-input result carries
# after the leading (layer) axes: kernel K[l, a, b]; covariance C[l, m, a, b, c, d]; ...
TWO_INPUT = {
    "kernel": (dict(), (NET["depth"] + 1,), 1),
    "ntk": (dict(), (NET["depth"] + 1,), 1),
    "kernel_mean_shift": (dict(), (NET["depth"] + 1,), 1),
    "kernel_covariance": (dict(), (NET["depth"] + 1,) * 2, 2),
    "response": (dict(), (), 2),
    "response_one_loop": (dict(width=64), (), 2),
    "simulate": (dict(width=8, samples=3, seed=0), (3, NET["depth"] + 1), 1),
}


def _public_functions():
    return {
        name: getattr(fieldgen, name)
        for name in fieldgen.__all__
        if inspect.isfunction(getattr(fieldgen, name))
    }


def test_every_public_function_taking_K0_is_covered():
    """A new public function that takes K0 must be added to TWO_INPUT (or answer to this test)."""
    takes_K0 = {
        name for name, fn in _public_functions().items() if "K0" in inspect.signature(fn).parameters
    }
    # sensitivity and optimal_r take a norm K0 and a correlation c0: scalars, no pair result;
    # continuum_one_loop returns named arrays (tests/test_continuum_one_loop.py checks them).
    exempt = {"sensitivity", "optimal_r", "mean_shift_terms", "continuum_one_loop"}
    assert takes_K0 - exempt == set(TWO_INPUT)


@pytest.mark.parametrize("name", sorted(TWO_INPUT))
def test_two_input_results_are_2x2_groups_indexed_like_the_kernel(name):
    extra, lead, groups = TWO_INPUT[name]
    out = getattr(fieldgen, name)("erf", K0=PAIR, **NET, **extra)
    assert out.shape == lead + (2, 2) * groups
    for g in range(groups):
        # symmetric in every (2, 2) group: swap axes a <-> b of that group
        axis = len(lead) + 2 * g
        np.testing.assert_array_equal(out, np.swapaxes(out, axis, axis + 1))


@pytest.mark.parametrize("name", sorted(TWO_INPUT))
def test_one_input_results_carry_no_pair_axes(name):
    extra, lead, _ = TWO_INPUT[name]
    out = getattr(fieldgen, name)("erf", K0=1.2, **NET, **extra)
    assert np.shape(out) == lead


def test_mean_shift_terms_have_the_shape_of_the_total():
    parts = fieldgen.mean_shift_terms("erf", K0=PAIR, **NET)
    total = fieldgen.kernel_mean_shift("erf", K0=PAIR, **NET)
    for part in parts:
        assert part.shape == total.shape == (NET["depth"] + 1, 2, 2)
    np.testing.assert_allclose(parts.total, total, rtol=1e-14, atol=1e-300)


def test_response_entries_are_derivatives_with_respect_to_the_entries_of_K0():
    """chi[a, b, c, d] = dK^L_ab/dK0_cd with K0_cd = K0_dc one variable: compare one column with
    a central difference of the kernel (an independent route)."""
    chi = fieldgen.response("erf", K0=PAIR, **NET)
    h = 1e-6
    step = np.array([[0.0, h], [h, 0.0]])
    up = fieldgen.kernel("erf", K0=np.array(PAIR) + step, **NET)[-1]
    down = fieldgen.kernel("erf", K0=np.array(PAIR) - step, **NET)[-1]
    np.testing.assert_allclose(chi[:, :, 0, 1], (up - down) / (2 * h), rtol=1e-7)
    np.testing.assert_array_equal(chi[:, :, 0, 1], chi[:, :, 1, 0])


def test_pair_helpers_round_trip_and_name_the_order():
    assert PAIR_ORDER == ("11", "22", "12") and PAIR_POSITIONS == ((0, 0), (1, 1), (0, 1))
    C = fieldgen.kernel_covariance("erf", K0=PAIR, **NET)
    compact = to_pairs(C, groups=2)
    assert compact.shape == (4, 4, 3, 3)
    np.testing.assert_array_equal(to_matrix(compact, groups=2), C)
    assert compact[2, 1, 2, 0] == C[2, 1, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="^x must end in"):
        to_pairs(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="^groups"):
        to_pairs(C, groups=0)


def test_old_spellings_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match="mean_shift_terms"):
        parts = fieldgen.kernel_mean_shift("erf", K0=PAIR, terms=True, **NET)
    np.testing.assert_array_equal(parts.total, fieldgen.kernel_mean_shift("erf", K0=PAIR, **NET))
    with pytest.warns(DeprecationWarning, match="response_one_loop"):
        old = fieldgen.response("erf", K0=PAIR, width=64, **NET)
    np.testing.assert_array_equal(old, fieldgen.response_one_loop("erf", K0=PAIR, width=64, **NET))


def test_the_new_spellings_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fieldgen.kernel_mean_shift("erf", K0=PAIR, **NET)
        fieldgen.response("erf", K0=PAIR, **NET)


@pytest.mark.parametrize("name", sorted(_public_functions()))
def test_public_functions_have_numpydoc_sections_and_type_hints(name):
    """The API reference is built from these docstrings: each needs its sections and an example."""
    fn = _public_functions()[name]
    doc = inspect.getdoc(fn) or ""
    for section in ("Parameters", "Returns", "Examples"):
        assert f"\n{section}\n" in doc, (name, section)
    if name != "latex":
        assert "Raises\n" in doc, name
    hints = inspect.signature(fn)
    assert all(p.annotation is not inspect.Parameter.empty for p in hints.parameters.values()), name
    assert hints.return_annotation is not inspect.Signature.empty, name


@pytest.mark.parametrize("name", sorted(_public_functions()) + ["pairs"])
def test_docstring_examples_run_and_print_what_they_show(name):
    """Every Examples section is a doctest: the reference shows what the code prints."""
    import doctest

    obj = getattr(fieldgen, name)
    finder = doctest.DocTestFinder(recurse=name == "pairs")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(obj, name, globs={}) if t.examples]
    assert tests, f"{name} has no example"
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} failing example(s) in {name}'s docstring"
