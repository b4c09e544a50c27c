"""Three- and four-dimensional Gaussian expectations without a closed form.

x = L z (Cholesky). Analytic integrands: the trapezoidal rule in whitened coordinates
(``tensor_trapezoid_helper``), 1e-9; kinked ones (Heaviside, Abs, Piecewise): tensor Gauss-Hermite
on a grid of GH{n}_NODES (generated/quadrature.py). Loop level j fixes z_j and x_j, and factors
of an integrand that depend on x_0..x_j only are multiplied in at level j. A two-input one-loop
coefficient of an activation without closed forms takes several such moments of the same two
layers (the self-feedback of a layer pair: four 4-D moments with one and the same covariance, the
walk's early and late kernels, and pairs of 3-D ones with another), so the moments of one
covariance are summed over one grid (``fused_hermite_moments``): at each level the factors of
every integrand are computed together (one CSE, so tanh(x4) is evaluated once per node whatever
the number of moments) and each moment keeps its own running product and sum. A moment alone
with its covariance is the same helper with one integrand (``lower_expectations``).
"""

from __future__ import annotations

import hashlib

import sympy as sp

from ..derivations.expectation import GaussianExpectation, entry_positions, variables
from .folding import fold_kinked_expectations
from .nodes import TupleAssign, helper_call
from .quadrature import HERMITE_ORDER, HelperLibrary, TextHelper, _kinked

INDENT = "    "


def fused_hermite_moments(exprs, library: HelperLibrary):
    """(statements, exprs): the 3-D/4-D expectations of `exprs` that share their covariance
    entries with another one replaced by outputs of one helper per covariance.

    Expectations alone with their covariance, and those of lower dimension, are left to
    ``lower_expectations`` (the same helper, one integrand). Kinked terms are folded first (``fold_kinked_expectations``), as
    ``cse_block`` would, so that the nodes replaced are those it would lower.
    """
    exprs = [fold_kinked_expectations(sp.sympify(e)) for e in exprs]
    groups: dict = {}
    for e in exprs:
        for node in e.atoms(GaussianExpectation):
            if node.dimension >= 3:
                groups.setdefault((node.dimension, node.entries), set()).add(node)
    statements, at = [], {}
    keys = sorted(
        (k for k, nodes in groups.items() if len(nodes) > 1),
        key=lambda k: (k[0], sp.default_sort_key(sp.Tuple(*k[1]))),
    )
    for g, key in enumerate(keys):
        n, entries = key
        nodes = sorted(groups[key], key=lambda node: sp.srepr(node.integrand))
        name = tensor_hermite_helper([node.integrand for node in nodes], library)
        targets = sp.symbols(f"gh{g}_0:{len(nodes)}", real=True)
        statements.append(TupleAssign(tuple(targets), helper_call(name, *entries)))
        at.update(zip(nodes, targets))
    return statements, [e.xreplace(at) for e in exprs]


def _whitened(j: int) -> str:
    """x_j = sum_{i <= j} z_i low[j, i] (text)."""
    return " + ".join(f"z{i}*low[{j}, {i}]" for i in range(j + 1))


def _cholesky_lines(n: int, params) -> list:
    """Lines filling cov (n x n) from the packed entries `params` and its lower factor low."""
    lines = [f"    cov = np.empty(({n}, {n}))", f"    low = np.empty(({n}, {n}))"]
    for (a, b), k in zip(entry_positions(n), params):
        lines.append(f"    cov[{a}, {b}] = {k}")
        if a != b:
            lines.append(f"    cov[{b}, {a}] = {k}")
    return lines + ["    cholesky_psd(cov, low)"]


def _shared_terms(exprs, prefix: str, indent: str, lines: list, texts: list) -> list:
    """Append the common subexpressions of `exprs` as assignments (markers into `texts`); return
    the reduced expressions."""
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(prefix), order="canonical")
    for a, b in replacements:
        lines.append(f"{indent}{a} = @{len(texts)}@")
        texts.append(b)
    return reduced


def _by_level(body: sp.Expr, xs) -> list:
    """The factors of `body` grouped by the last variable they depend on (loop level)."""
    levels = [sp.S.One] * len(xs)
    for f in sp.Mul.make_args(body):
        level = max((j for j, x in enumerate(xs) if f.has(x)), default=0)
        levels[level] *= f
    return levels


def tensor_hermite_helper(integrands, library: HelperLibrary) -> str:
    """Print the helper summing every integrand (Lambdas of n variables, one covariance) over one
    n-D grid; its name. It returns a tuple, or a float for one integrand.

    Analytic integrands whose last variable enters through factors of its own get the
    trapezoidal rule in whitened coordinates (``tensor_trapezoid_helper``); kinked ones keep
    tensor Gauss-Hermite."""
    n = len(integrands[0].variables)
    xs = variables(n)
    bodies = [lam.expr.xreplace(dict(zip(lam.variables, xs))) for lam in integrands]
    if not any(_kinked(b) for b in bodies) and all(
        lv[n - 1].free_symbols <= {xs[n - 1]} for lv in (_by_level(b, xs) for b in bodies)
    ):
        return tensor_trapezoid_helper(bodies, xs, library)
    digest = hashlib.sha256(sp.srepr(sp.Tuple(*bodies)).encode()).hexdigest()[:12]
    name = f"_moments{n}_{digest}"
    if name in library.functions:
        return name
    order = HERMITE_ORDER[n]
    params = [f"k{i}" for i in range(len(entry_positions(n)))]
    count = len(bodies)
    what = f"<{bodies[0]}>" if count == 1 else f"{count} moments <f_j(x)>"
    lines = [
        '@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)',
        f"def {name}({', '.join(params)}):",
        f'    """{what} for x ~ N(0, K), {n}-D: tensor Gauss-Hermite, {order} nodes per axis."""',
    ]
    lines += _cholesky_lines(n, params)
    lines += [f"    acc{m} = 0.0" for m in range(count)]
    levels = [_by_level(body, xs) for body in bodies]
    texts: list = []
    indent = INDENT
    for j in range(n):
        lines.append(f"{indent}for i{j} in range({order}):")
        indent += INDENT
        lines.append(f"{indent}z{j} = GH{n}_NODES[i{j}]")
        lines.append(f"{indent}{xs[j]} = {_whitened(j)}")
        lines.append(f"{indent}w{j} = GH{n}_WEIGHTS[i{j}]")
        factors = _shared_terms([lv[j] for lv in levels], f"u{j}_", indent, lines, texts)
        for m, factor in enumerate(factors):
            before = "" if j == 0 else f"p{j}_{m}*"
            value = f"{before}w{j}" if factor == 1 else f"{before}w{j}*(@{len(texts)}@)"
            if factor != 1:
                texts.append(factor)
            if j == n - 1:
                lines.append(f"{indent}acc{m} += {value}")
            else:
                lines.append(f"{indent}p{j + 1}_{m} = {value}")
    if count == 1:
        lines.append("    return acc0")
    else:
        lines.append("    return ({},)".format(", ".join(f"acc{m}" for m in range(count))))
    library.imports.add(f"from .quadrature import GH{n}_NODES, GH{n}_WEIGHTS")
    library.add(TextHelper(name, "\n".join(lines), tuple(texts), ("cholesky_psd",)))
    return name


def tensor_trapezoid_helper(bodies, xs, library: HelperLibrary) -> str:
    """The helper of ``tensor_hermite_helper`` on the trapezoidal rule in whitened coordinates.

    x = L z (Cholesky); z on a lattice of step h_j per axis (``trap_steps``: h_j resolves the
    fastest argument along z_j) inside the ball |z| <= TRAP_Z. The last variable x_{n-1} =
    mu + L[n-1, n-1] z_{n-1} enters only through factors of its own, so the sum over z_{n-1} is
    done once: each distinct last-level factor f, smoothed, S_f(mu) = <f(mu + sigma t)>, is
    tabulated on a uniform grid in mu and read at the mu of every outer node by local
    interpolation. Work n^(d-1) + (table) instead of n^d.

    Two functions are printed: ``{name}_lattice`` sums on the lattice of one refinement level
    (halving a table's spacing until ``trap_table_error`` accepts it) and returns the sums and
    the sums of |integrand|; ``{name}`` runs the levels from the coarsest until the error of the
    last one, extrapolated from the changes between the last three (``trap_converged``), is
    below TRAP_TOL (quadrature.py).
    """
    n = len(xs)
    digest = hashlib.sha256(sp.srepr(sp.Tuple(*bodies)).encode()).hexdigest()[:12]
    name = f"_moments{n}_{digest}"
    if name in library.functions:
        return name
    params = [f"k{i}" for i in range(len(entry_positions(n)))]
    count = len(bodies)
    levels = [_by_level(body, xs) for body in bodies]
    last = n - 1
    radius = "TRAP_Z_GROWING" if _unbounded(bodies, xs) else "TRAP_Z"
    tabulated = sorted({lv[last] for lv in levels if lv[last] != 1}, key=sp.default_sort_key)
    slot = {f: i for i, f in enumerate(tabulated)}
    what = f"<{bodies[0]}>" if count == 1 else f"{count} moments <f_j(x)>"
    texts: list = []
    lines = [
        '@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)',
        f"def {name}_lattice(low, steps, halves):",
        f'    """{what} for x = low z, {n}-D, on one lattice of the trapezoidal rule: the',
        "    sums and the sums of |integrand|, the last axis summed into tables of the smoothed",
        '    last-level factors."""',
        f"    sigma = low[{last}, {last}]",
        "    spread = math.sqrt({})".format(
            " + ".join(f"low[{last}, {i}]**2" for i in range(last))
        ),
        f"    span = {radius}*spread + (TRAP_DEGREE + 2)*TRAP_DELTA*max(1.0, sigma)",
        "    lo = -span",
        f"    h = steps[{last}]",
    ]
    lines += [f"    weights{j} = trap_weights(steps[{j}], halves[{j}])" for j in range(n)]
    lines += [
        "    npts = min(int(2.0*span/(TRAP_DELTA*max(1.0, sigma))) + TRAP_DEGREE + 2, TRAP_MAX_TABLE)",
        "    while True:",
        "        delta = 2.0*span/(npts - TRAP_DEGREE - 2)",
        f"        table = np.zeros(({max(len(tabulated), 1)}, npts))",
        "        for i in range(npts):",
        "            mu = lo + i*delta",
        f"            for k in range(-halves[{last}], halves[{last}] + 1):",
        f"                w = weights{last}[k + halves[{last}]]",
        f"                {xs[last]} = mu + sigma*(k*h)",
    ]
    if tabulated:
        factors = _shared_terms(tabulated, "s_", 4 * INDENT, lines, texts)
        for i, factor in enumerate(factors):
            lines.append(f"                table[{i}, i] += w*(@{len(texts)}@)")
            texts.append(factor)
    lines += [
        "        if 2*npts > TRAP_MAX_TABLE or trap_table_error(table, npts) <= TRAP_TABLE_TOL:",
        "            break",
        "        npts = 2*npts - 1",
    ]
    lines += ["    bw = np.empty(TRAP_DEGREE + 1)"]
    lines += [f"    acc{m} = 0.0" for m in range(count)]
    lines += [f"    abs{m} = 0.0" for m in range(count)]
    indent = "    "
    for j in range(last):
        left = f"{radius}**2" if j == 0 else f"{radius}**2 - r{j - 1}"
        lines += [
            f"{indent}m{j} = halves[{j}]",
            f"{indent}if steps[{j}] > 0.0:",
            f"{indent}    m{j} = min(m{j}, int(math.sqrt(max(0.0, {left}))/steps[{j}]))",
            f"{indent}for i{j} in range(-m{j}, m{j} + 1):",
        ]
        indent += INDENT
        lines.append(f"{indent}z{j} = i{j}*steps[{j}]")
        lines.append(f"{indent}r{j} = " + (f"z{j}*z{j}" if j == 0 else f"r{j - 1} + z{j}*z{j}"))
        lines.append(f"{indent}{xs[j]} = {_whitened(j)}")
        lines.append(f"{indent}w{j} = weights{j}[i{j} + halves[{j}]]")
        factors = _shared_terms([lv[j] for lv in levels], f"u{j}_", indent, lines, texts)
        values = []
        for m, factor in enumerate(factors):
            before = "" if j == 0 else f"p{j}_{m}*"
            value = f"{before}w{j}" if factor == 1 else f"{before}w{j}*(@{len(texts)}@)"
            if factor != 1:
                texts.append(factor)
            values.append(value)
        if j < last - 1:
            lines += [f"{indent}p{j + 1}_{m} = {v}" for m, v in enumerate(values)]
            continue
        mu = " + ".join(f"z{i}*low[{last}, {i}]" for i in range(last))
        lines.append(f"{indent}at = trap_interpolation(({mu} - lo)/delta, npts, bw)")
        for i in slot.values():
            lines.append(f"{indent}g{i} = 0.0")
            lines.append(f"{indent}for a in range(TRAP_DEGREE + 1):")
            lines.append(f"{indent}    g{i} += bw[a]*table[{i}, at + a]")
        for m, v in enumerate(values):
            g = levels[m][last]
            lines.append(f"{indent}term = {v}" + ("" if g == 1 else f"*g{slot[g]}"))
            lines.append(f"{indent}acc{m} += term")
            lines.append(f"{indent}abs{m} += abs(term)")
    sums = ", ".join([f"acc{m}" for m in range(count)] + [f"abs{m}" for m in range(count)])
    lines += [f"    return ({sums})", "", ""]
    lines += [
        '@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)',
        f"def {name}({', '.join(params)}):",
        f'    """{what} for x ~ N(0, K), {n}-D: trapezoidal rule in whitened coordinates,',
        '    refined until its extrapolated error is below quadrature.TRAP_TOL."""',
    ]
    lines += _cholesky_lines(n, params)
    lines += [
        f"    steps = np.empty({n})",
        f"    halves = np.empty({n}, np.int64)",
        f"    seen = np.full({n}, -1.0)",
    ]
    lines += [
        f"    out = np.zeros({count})",
        f"    gap = np.zeros({count})",
        f"    ok = np.zeros({count}, np.bool_)",
        "    for level in range(TRAP_LEVELS):",
        f"        trap_steps(low, {radius}, level, steps, halves)",
        "        if trap_same_lattice(steps, seen):",
        "            break  # no axis refines further: the last level is the rule's answer",
        f"        sums = {name}_lattice(low, steps, halves)",
        "        seen[:] = steps",
        "        if trap_accept(sums, level, out, gap, ok):",
        "            break",
    ]
    if count == 1:
        lines.append("    return out[0]")
    else:
        lines.append("    return ({},)".format(", ".join(f"out[{m}]" for m in range(count))))
    library.imports.add(
        "from .quadrature import TRAP_DEGREE, TRAP_DELTA, TRAP_LEVELS, TRAP_MAX_TABLE, "
        "TRAP_TABLE_TOL, TRAP_Z, TRAP_Z_GROWING, trap_accept, trap_interpolation, "
        "trap_same_lattice, trap_steps, trap_table_error, trap_weights"
    )
    library.add(TextHelper(name, "\n".join(lines), tuple(texts), ("cholesky_psd",)))
    return name


def _unbounded(bodies, xs) -> bool:
    """Whether a factor of one variable grows without bound (|f(+-1e4)| >= 100: relu-like
    activations, polynomials), which takes the wider ball TRAP_Z_GROWING."""
    from .quadrature import _growth

    (x1,) = variables(1)
    for body in bodies:
        for factor in sp.Mul.make_args(body):
            free = factor.free_symbols & set(xs)
            if len(free) == 1 and _growth(factor.xreplace({free.pop(): x1})) >= 100:
                return True
    return False
