"""What ``fieldgen regenerate`` writes into generated/: one module spec per file."""

from __future__ import annotations

import string
from importlib import resources

import sympy as sp
from sympy.codegen.ast import Return

from ..derivations import (
    activations,
    closed_forms,
    continuum,
    continuum_one_loop,
    gauss,
    meanfield,
    model,
    one_loop,
    response,
)
from . import writer
from .builders import (
    array_function,
    grid_map_function,
    ode_path_function,
    packed_function,
    packed_outputs_function,
    recursion_function,
    scalar_function,
    tangent_recursion_function,
)
from .module import SHARED_HELPERS, ModuleSpec
from .nodes import JitFunction
from .quadrature import rule_module_source

PARAMS = (model.r, model.sigma_w2, model.sigma_b2)


def _kind(name: str) -> str:
    return "closed form" if closed_forms.has_closed_form(name) else "graded quadrature"


def _phi_function(name: str) -> JitFunction:
    x = sp.Symbol("x", real=True)
    phi = activations.get(name).phi(x)
    return JitFunction(
        "phi",
        (x,),
        "float64(float64)",
        (Return(phi if phi.has(x) else phi + 0 * x),),
        f"The activation {activations.get(name).description} (NumPy ufunc).",
        ufunc=True,
    )


def phi_module(name: str) -> ModuleSpec:
    """The activation alone, as a NumPy ufunc (what the simulator needs)."""
    return ModuleSpec(
        f"gauss_{name}",
        f"The activation phi = {name} as a NumPy ufunc.",
        functions=[_phi_function(name)],
    )


def gauss_module(name: str) -> ModuleSpec:
    """P(K), its mean, Jacobian and Hessian for one and two inputs."""
    K = model.K1
    spec = ModuleSpec(
        f"gauss_{name}",
        f"Gaussian expectations of phi = {name} ({_kind(name)}) and their derivatives.\n\n"
        "One input: P(K) = <phi(h)^2>, h ~ N(0, K); mean <phi(h)>.\n"
        "Two inputs, pair order (11, 22, 12): P_p(K) = <phi(h_a) phi(h_b)>,\n"
        "jacobian[p, s] = dP_p/dK_s, hessian[p, q, s] = d2 P_p / dK_q dK_s.",
    )
    lib = spec.library
    P = gauss.single(name, K)
    spec.functions += [
        _phi_function(name),
        scalar_function("expect_single", (K,), [P], "P(K) = <phi(h)^2>, h ~ N(0, K).", lib),
        scalar_function("mean_single", (K,), [gauss.mean(name, K)], "<phi(h)>, h ~ N(0, K).", lib),
        scalar_function("jacobian_single", (K,), [sp.diff(P, K)], "dP/dK.", lib),
        scalar_function("hessian_single", (K,), [sp.diff(P, K, 2)], "d2P/dK2.", lib),
    ]
    pair = gauss.pair(name)
    jac = sp.Matrix(pair).jacobian(model.K)
    spec.functions.append(
        scalar_function(
            "expect_pair",
            model.K,
            list(pair),
            "(P11, P22, P12) at the kernel (K11, K22, K12).",
            lib,
        )
    )
    spec.functions.append(
        array_function(
            "jacobian_pair",
            model.K,
            {(p, s): jac[p, s] for p in range(3) for s in range(3)},
            (3, 3),
            "out[p, s] = dP_p / dK_s.",
            lib,
        )
    )
    hess = {
        (p, q, s): sp.diff(jac[p, s], model.K[q])
        for p in range(3)
        for q in range(3)
        for s in range(3)
    }
    spec.functions.append(
        array_function(
            "hessian_pair", model.K, hess, (3, 3, 3), "out[p, q, s] = d2 P_p / dK_q dK_s.", lib
        )
    )
    return spec


def _initial(n_kernel: int):
    kernel = meanfield.kernel_symbols(1 if n_kernel == 1 else 2)

    def initial(symbol, k0_at):
        if symbol in kernel:
            return k0_at(kernel.index(symbol))
        return sp.Float(0.0)  # means of the reduced block start at zero

    return initial


def _blocks_text(blocks) -> str:
    return "both blocks" if tuple(blocks) == model.BLOCKS else " and ".join(blocks) + " block"


def meanfield_module(name: str, blocks=model.BLOCKS) -> ModuleSpec:
    spec = ModuleSpec(
        f"meanfield_{name}",
        f"Mean-field kernel recursion for phi = {name} ({_kind(name)}), {_blocks_text(blocks)}, "
        "one and two\ninputs, on a grid of (r, sigma_w2, sigma_b2) points. Layer maps (previous "
        "-> next):\n\n"
        + "\n".join(_describe(meanfield.layer_map(b, name, n)) for b in blocks for n in (1, 2)),
    )
    for block in blocks:
        for n_inputs in (1, 2):
            lm = meanfield.layer_map(block, name, n_inputs)
            which = "single" if n_inputs == 1 else "pair"
            shape = "(n, depth + 1)" if n_inputs == 1 else "(n, depth + 1, 2, 2)"
            spec.functions.append(
                recursion_function(
                    f"kernel_{which}_{block}",
                    params=PARAMS,
                    state=lm.state,
                    update=lm.update,
                    initial=_initial(lm.n_kernel),
                    n_kernel=lm.n_kernel,
                    library=spec.library,
                    doc=f"{block} block, {n_inputs} input(s): out{shape} = K^l for l = 0..depth at "
                    "each grid point; k0 is K^0, (n,) or (n, 3) in pair order (11, 22, 12).",
                )
            )
    return spec


def _response_function(
    tr: response.TangentRecursion, fn_name: str, outputs, doc: str, library
) -> JitFunction:
    seeds = [tr.entries.index(s) for s in tr.seeds]
    return tangent_recursion_function(
        fn_name,
        params=PARAMS,
        state=tr.layer.state,
        update=tr.layer.update,
        n_kernel=tr.layer.n_kernel,
        tangent=tr.tangent,
        tangent_update=tr.tangent_update,
        seeds=seeds,
        outputs=outputs,
        doc=doc,
        library=library,
    )


def response_module(name: str, blocks=model.BLOCKS) -> ModuleSpec:
    """chi^{L,0}, the sensitivity S(r) and the continuum flow with its first-order correction."""
    spec = ModuleSpec(
        f"response_{name}",
        f"Kernel response and sensitivity for phi = {name} ({_kind(name)}) on a grid of\n"
        "(r, sigma_w2, sigma_b2) points, and the continuum flow in tau = r^2 sigma_w^2 l.\n\n"
        "response_*: out[i, 3 p + s] = (chi^{L,0} V0)_{ps}, kernel rows, pair order (11, 22, 12);\n"
        "    v0[i, k] is V0 at the positions SEEDS_* (the input Jacobian dK^0/d input).\n"
        "sensitivity_*: out[i, 0] = S = dc^L/dc^0 for two inputs of equal norm;\n"
        "    k0[i] = (K^0, K^0_12), v0[i, 0] = dK^0_12/dc^0.\n"
        "continuum_*: RK4 path of the flow and its first-order correction; values columns\n"
        "    " + ", ".join(PATH_TERMS) + "; continuum_terms_*: " + ", ".join(POINT_TERMS) + ".",
    )
    for block in blocks:
        for n_inputs in (1, 2):
            tr = response.kernel_response(block, name, n_inputs)
            which = "single" if n_inputs == 1 else "pair"
            nk = tr.layer.n_kernel
            outputs = [tr.symbol(p, s) for p in range(nk) for s in range(nk)]
            spec.functions.append(
                _response_function(
                    tr,
                    f"response_{which}_{block}",
                    outputs,
                    library=spec.library,
                    doc=f"{block} block, {n_inputs} input(s): out = chi^(L,0) V0 (kernel rows).",
                )
            )
        spec.functions.append(
            _response_function(
                response.correlation_response(block, name),
                f"sensitivity_{block}",
                [response.sensitivity(block, name)],
                library=spec.library,
                doc=f"{block} block: S = dc^L/dc^0 for two inputs of equal norm.",
            )
        )
    for block in blocks:
        cf = continuum.corrected_flow(block, name)
        if cf is None:
            continue
        params = (model.sigma_w2, model.sigma_b2)
        spec.functions.append(
            ode_path_function(
                f"continuum_{block}",
                params=params,
                state=cf.state,
                rhs=cf.rhs,
                terms=[cf.terms[t] for t in PATH_TERMS],
                time=continuum.tau,
                library=spec.library,
                doc=f"{block} block: state (K, K12, yK, y12, A, B) and {PATH_TERMS} at each tau.",
            )
        )
        spec.functions.append(
            scalar_function(
                f"continuum_terms_{block}",
                params + (continuum.tau,) + cf.state,
                [cf.terms[t] for t in POINT_TERMS],
                f"{block} block: {POINT_TERMS} at (tau, state).",
                spec.library,
            )
        )
    seeds = {
        which: response.kernel_response(blocks[0], name, n).seeds
        for which, n in (("SINGLE", 1), ("PAIR", 2))
    }
    for which, positions in seeds.items():
        spec.constants.append((f"SEEDS_{which}", repr(positions)))
    spec.constants.append(("PATH_TERMS", repr(PATH_TERMS)))
    spec.constants.append(("POINT_TERMS", repr(POINT_TERMS)))
    spec.constants.append(
        (
            "CONTINUUM",
            repr(tuple(b for b in blocks if continuum.corrected_flow(b, name) is not None)),
        )
    )
    return spec


# Along the path only what locating the maximum needs; the rest at the maximum.
PATH_TERMS = ("rate", "log_sensitivity")
POINT_TERMS = ("rate", "curvature", "log_sensitivity", "l0")


def _describe(lm: meanfield.LayerMap) -> str:
    lines = [f"{lm.block} block, {lm.n_inputs} input(s):"]
    for s, u in zip(lm.state, lm.update):
        lines.append(f"    {s} -> {sp.sstr(u)}")
    return "\n".join(lines)


def oneloop_module(name: str) -> ModuleSpec:
    """Per-layer and two-layer coefficients of the one-loop theory and its O(L^2) accumulation."""
    spec = ModuleSpec(
        f"oneloop_{name}",
        f"One-loop (1/N) corrections for phi = {name}, full block: N Cov(Khat^l, Khat^l') and\n"
        "N (E Khat^l - K^l) with its three parts. Two-layer coefficients take the early and the\n"
        "late kernel of one neuron's walk (cross-covariance = early kernel):\n"
        "  four_point[p, q]       = Cov(phi phi_p(h^early), phi phi_q(h^late))\n"
        "  self_feedback[s, p, q] = Cov(D_s[phi phi_p](h^late), phi phi_q(h^early))\n"
        "  response_cross[p, q]   = Cov(phi phi_p(h), h' h'_q), Cov(h, h') = kc, from the Jacobian J\n"
        "  sampling_noise[p, q]   = Cov(h h_p, h' h'_q), Cov(h, h') = kc",
    )
    lib = spec.library
    for n_inputs, which in ((1, "single"), (2, "pair")):
        K = meanfield.kernel_symbols(n_inputs)
        d = len(K)
        early, late = one_loop.early_late_symbols(n_inputs)
        jac = one_loop._jacobian(name, n_inputs)
        hess = one_loop.hessian(name, n_inputs)
        A = one_loop.four_point(name, n_inputs)
        F = one_loop.self_feedback(name, n_inputs)
        B = one_loop.response_cross(n_inputs)
        X = one_loop.sampling_noise(n_inputs)
        grid2 = [(i, j) for i in range(d) for j in range(d)]
        grid3 = [(i, j, k) for i in range(d) for j in range(d) for k in range(d)]
        flow = continuum_one_loop.kernel_flow(name, n_inputs)
        spec.functions += [
            packed_function(
                f"flow_{which}",
                inputs=[("k", K), ("params", (model.sigma_w2, model.sigma_b2))],
                shape=(d,),
                library=lib,
                entries={(p,): flow[p] for p in range(d)},
                doc="out[p] = F_p(K), dK/dtau = F(K) at tau = r^2 sigma_w^2 l (continuum).",
            ),
            packed_function(
                f"jacobian_{which}",
                inputs=[("k", K)],
                shape=(d, d),
                library=lib,
                entries={ij: jac[ij] for ij in grid2},
                doc="out[p, s] = dP_p/dK_s.",
            ),
            packed_function(
                f"hessian_{which}",
                inputs=[("k", K)],
                shape=(d, d, d),
                library=lib,
                entries={(p, q, s): hess[p][q][s] for p, q, s in grid3},
                doc="out[p, q, s] = d2 P_p / dK_q dK_s.",
            ),
            packed_function(
                f"four_point_{which}",
                inputs=[("ke", early), ("kl", late)],
                fuse_paths=which == "pair",
                shape=(d, d),
                library=lib,
                entries={ij: A[ij] for ij in grid2},
                doc="out[p, q] = Cov(phi phi_p(h^early), phi phi_q(h^late)).",
            ),
            packed_function(
                f"self_feedback_{which}",
                inputs=[("ke", early), ("kl", late)],
                fuse_paths=which == "pair",
                shape=(d, d, d),
                library=lib,
                entries={(s_, p, q): F[s_][p][q] for s_, p, q in grid3},
                doc="out[s, p, q] = Cov(D_s[phi phi_p](h^late), phi phi_q(h^early)).",
            ),
            packed_outputs_function(
                f"four_point_self_feedback_{which}",
                inputs=[("ke", early), ("kl", late)],
                outputs=[
                    ("out_a", (d, d), {ij: A[ij] for ij in grid2}),
                    ("out_f", (d, d, d), {(s_, p, q): F[s_][p][q] for s_, p, q in grid3}),
                ],
                library=lib,
                fuse_paths=which == "pair",
                doc="out_a = four_point(ke, kl), out_f = self_feedback(ke, kl): one body.",
            ),
            packed_function(
                f"response_cross_{which}",
                inputs=[("kc", K)],
                shape=(d, d),
                library=lib,
                arrays=(one_loop.JACOBIAN_ARG[d],),
                entries={ij: B[ij].xreplace(one_loop.jacobian_arg_map(d)) for ij in grid2},
                doc="out[p, q] = Cov(phi phi_p(h), h' h'_q), Cov(h, h') = kc.",
            ),
            packed_function(
                f"sampling_noise_{which}",
                inputs=[("kc", K)],
                shape=(d, d),
                library=lib,
                entries={ij: X[ij] for ij in grid2},
                doc="out[p, q] = Cov(h h_p, h' h'_q), Cov(h, h') = kc.",
            ),
        ]
    # The accumulation, the pair interpolation and the continuum solver do not depend on the
    # activation: they are printed once (oneloop_shared) and specialised here to this module's
    # coefficient functions. Where the pairs' two-layer coefficients take 3-D/4-D quadrature
    # (no closed forms: the trapezoidal rule, tensor Gauss-Hermite for kinked integrands), they
    # are interpolated over the layer pairs (INTERPOLATE); closed forms and path integrals stay
    # exact.
    tensor_hermite = any(
        "GH3_NODES" in i or "GH4_NODES" in i or "trap_steps" in i for i in lib.imports
    )
    by_name = {fn.name: fn for fn in spec.functions}
    for stem, params in ONE_LOOP_COEFFICIENTS.items():
        for which in ("single", "pair"):
            got = [str(p) for p in by_name[f"{stem}_{which}"].params]
            assert got == list(params), (stem, which, got)
    names = [f"{stem}_{which}" for stem in ONE_LOOP_COEFFICIENTS for which in ("single", "pair")]
    spec.tail_text = (
        "\n\n"
        "# The one-loop accumulation and the continuum solver (oneloop_shared), specialised to the\n"
        "# coefficient functions above: one_loop, pair_grid, ... and their helpers.\n"
        "from .oneloop_shared import specialise as _specialise  # noqa: E402\n\n"
        "globals().update(\n"
        "    _specialise(\n"
        "        __name__,\n"
        "        __file__,\n"
        "        dict(\n" + "".join(f"            {n}={n},\n" for n in names) + "        ),\n"
        f"        interpolate={tensor_hermite},\n"
        "    )\n"
        ")\n"
    )
    spec.tail_names = [
        "one_loop",
        "pair_grid",
        "pair_interpolant",
        "interpolated_tables",
        "continuum_kernel",
        "continuum_one_loop",
    ]
    return spec


# The one-loop coefficient functions (<stem>_single and <stem>_pair) and their parameters.
ONE_LOOP_COEFFICIENTS = {
    "flow": ("k", "params", "out"),
    "jacobian": ("k", "out"),
    "hessian": ("k", "out"),
    "four_point": ("ke", "kl", "out"),
    "self_feedback": ("ke", "kl", "out"),
    "four_point_self_feedback": ("ke", "kl", "out_a", "out_f"),
    "response_cross": ("kc", "J", "out"),
    "sampling_noise": ("kc", "out"),
}


def oneloop_shared_module() -> ModuleSpec:
    """The activation-independent one-loop code (oneloop_shared.tmpl's specialise, then the
    accumulation printed for D = 3 pairs, the dispatchers and the continuum solver)."""
    files = resources.files("fieldgen.codegen").joinpath("templates")
    text = files.joinpath("oneloop_shared.tmpl").read_text()
    head, accumulation = files.joinpath("oneloop.tmpl").read_text().split("\n# @accumulation\n")
    text += "\n\n" + head + "\n\n" + string.Template(accumulation).substitute(WHICH="pair", D=3)
    text += "\n\n" + _dispatchers() + "\n\n" + files.joinpath("continuum_oneloop.tmpl").read_text()
    return ModuleSpec("oneloop_shared", "", raw_text=text)


def _dispatchers() -> str:
    """`_<stem>(args)`: `<stem>_single` for one input (first argument of length 1), else
    `<stem>_pair`; same signature as the coefficient functions it picks from."""
    out = []
    for stem, params in ONE_LOOP_COEFFICIENTS.items():
        args = ", ".join(params)
        out.append(
            '@_generic(cache=True, nogil=True, inline="always")\n'
            f"def _{stem}({args}):\n"
            f"    if {params[0]}.shape[0] == 1:\n"
            f"        {stem}_single({args})\n"
            f"    else:\n"
            f"        {stem}_pair({args})\n"
        )
    return "\n\n".join(out)


def inputs_module() -> ModuleSpec:
    spec = ModuleSpec(
        "inputs",
        "Input kernel K^0 of an input layer h^0 = W^0 x + b^0 from the Gram matrix G = x.x'/d\n"
        "(the saddle point of the input layer), on a grid of (sigma_w2, sigma_b2) points.",
    )
    params = (model.sigma_w2, model.sigma_b2)
    for n_inputs, gram in ((1, (model.G1,)), (2, model.G)):
        which = "single" if n_inputs == 1 else "pair"
        spec.functions.append(
            grid_map_function(
                f"input_kernel_{which}",
                params=params,
                inputs=gram,
                exprs=meanfield.input_kernel("layer", n_inputs),
                library=spec.library,
                doc="out = K^0 at each grid point; gram has the layout of out.",
            )
        )
        jac = response.input_jacobian("layer", n_inputs)
        spec.functions.append(
            grid_map_function(
                f"input_jacobian_{which}",
                params=params,
                inputs=gram,
                exprs=list(jac),
                library=spec.library,
                doc="out[i, 3 p + s] = dK^0_p/dG_s at each grid point (pair order); (n,) for one input.",
            )
        )
    return spec


def quadrature_module() -> ModuleSpec:
    return ModuleSpec("quadrature", "", raw_text=rule_module_source())


def shared_module() -> ModuleSpec:
    return ModuleSpec(
        "shared",
        "Helpers the other generated modules import: a vectorisable arcsin, the clamped\n"
        "correlation and its derivatives, the Cauchy-Schwarz clamp and the writer of two-input\n"
        "kernel paths.",
        functions=[SHARED_HELPERS[name]() for name in sorted(SHARED_HELPERS)],
    )


def streaming_module() -> ModuleSpec:
    text = resources.files("fieldgen.codegen").joinpath("templates/streaming.tmpl").read_text()
    return ModuleSpec("streaming", "", raw_text=text)


def package_init() -> ModuleSpec:
    names = tuple(sorted(activations.ACTIVATIONS))
    closed = tuple(n for n in names if closed_forms.has_closed_form(n))
    template = string.Template(
        resources.files("fieldgen.codegen").joinpath("templates/package_init.tmpl").read_text()
    )
    text = template.substitute(
        ACTIVATIONS=repr(names),
        CLOSED_FORMS=repr(closed),
        PRESETS=repr(tuple(activations.PRESETS)),
        BLOCKS=repr(model.BLOCKS),
        INPUT_MODES=repr(model.INPUT_MODES),
        KINDS=repr(tuple(BUILDERS)),
        CONTENT_KEY=writer.CONTENT_KEY,
    )
    # The package checks itself; the other modules call its checker (module.INTEGRITY_CHECK).
    return ModuleSpec("__init__", "", raw_text=text, integrity_check=False)


BUILDERS = {
    "gauss": gauss_module,
    "meanfield": meanfield_module,
    "oneloop": oneloop_module,
    "response": response_module,
}


def target_names() -> list[tuple[str, str | None]]:
    """(builder, activation) of every generated module, in a fixed order."""
    names = [
        ("package_init", None),
        ("quadrature", None),
        ("streaming", None),
        ("shared", None),
        ("oneloop_shared", None),
        ("inputs", None),
    ]
    for name in sorted(activations.ACTIVATIONS):
        names += [(kind, name) for kind in BUILDERS]
    return names


# Kinds whose modules hold one function set per block: the user cache derives them block by block.
PER_BLOCK = ("meanfield", "response")


def build_part(kind: str, activation: str, block: str | None) -> ModuleSpec:
    """The module of `kind` for `activation` restricted to one block (None: the whole module;
    "phi" for the gauss kind: the activation's ufunc alone)."""
    if block is None:
        return BUILDERS[kind](activation)
    if (kind, block) == ("gauss", "phi"):
        return phi_module(activation)
    per_block = {"meanfield": meanfield_module, "response": response_module}
    return per_block[kind](activation, blocks=(block,))


def build_target(target: tuple[str, str | None]) -> ModuleSpec:
    kind, activation = target
    if activation is None:
        return {
            "package_init": package_init,
            "quadrature": quadrature_module,
            "streaming": streaming_module,
            "shared": shared_module,
            "oneloop_shared": oneloop_shared_module,
            "inputs": inputs_module,
        }[kind]()
    return BUILDERS[kind](activation)


def all_modules() -> list[ModuleSpec]:
    return [build_target(t) for t in target_names()]


# ---- Gram matrices of whole data sets and the neural tangent kernel (issue 16) -------------


def _gram_split(pair_state, single_state, carried_names):
    """(carried indices, {symbol: (side, index)}, clamp) of a two-input state over one-input
    paths: entries named ...11 / ...1 belong to the first input, ...22 / ...2 to the second."""
    carried = [pair_state.index(s) for s in pair_state if s.name in carried_names]
    single_names = [s.name for s in single_state]
    diagonal = {}
    for s in pair_state:
        if s.name in carried_names:
            continue
        stem, tail = (
            (s.name[:-2], s.name[-2:]) if s.name[-2:] in ("11", "22") else (s.name[:-1], s.name[-1])
        )
        side = 0 if tail in ("11", "1") else 1
        diagonal[s] = (side, single_names.index(stem))
    k11, k22 = single_names.index(model.K1.name), single_names.index(model.K1.name)
    return carried, diagonal, {0: (k11, k22)}


def gram_module(name: str) -> ModuleSpec:
    """Kernel and NTK of whole data sets: one-input paths, then the pairs' recursion."""
    from ..derivations import ntk

    spec = ModuleSpec(
        f"gram_{name}",
        f"Gram matrices of many inputs for phi = {name} ({_kind(name)}) at one (r, sigma_w2,\n"
        "sigma_b2) point: the mean-field kernel (path_*, offdiag_*) and the neural tangent kernel\n"
        "(ntk_path_*, ntk_offdiag_*). path functions: out[l, :, i] = one-input state of input i\n"
        "at layer l; offdiag functions: out[k, a, b] = the pair entry at layer layers[k].\n"
        "NTK layer maps (previous -> next; K and m as in meanfield_"
        + name
        + "):\n\n"
        + "\n".join(_describe_ntk(ntk.layer_map(b, name, n)) for b in model.BLOCKS for n in (1, 2)),
    )
    for block in model.BLOCKS:
        for prefix, maps in (
            ("", lambda n: meanfield.layer_map(block, name, n)),
            ("ntk_", lambda n: ntk.layer_map(block, name, n)),
        ):
            single, pair = maps(1), maps(2)
            spec.functions.append(
                state_path_function(
                    f"{prefix}path_{block}",
                    params=PARAMS,
                    state=single.state,
                    update=single.update,
                    library=spec.library,
                    doc=f"{block} block: out[l, :, i] = ({', '.join(s.name for s in single.state)}) of "
                    "input i at layer l; s0[:, i] is that state at layer 0.",
                )
            )
            carried_names = {model.K[2].name} | ({ntk.THETA[2].name} if prefix else set())
            carried, diagonal, clamp = _gram_split(pair.state, single.state, carried_names)
            spec.functions.append(
                gram_offdiagonal_function(
                    f"{prefix}offdiag_{block}",
                    params=PARAMS,
                    state=pair.state,
                    update=pair.update,
                    carried=carried,
                    diagonal=diagonal,
                    clamp=clamp,
                    written=len(carried) - 1,
                    library=spec.library,
                    doc=f"{block} block: out[k, a, b] = {pair.state[carried[-1]].name} of inputs a, b "
                    "at layer layers[k], rows row_start..row_stop - 1; init = ("
                    + ", ".join(pair.state[c].name for c in carried)
                    + ") at layer 0 as n x n matrices; diag from "
                    + f"{prefix}path_{block}.",
                )
            )
    spec.constants.append(
        (
            "PATH_STATE",
            repr(
                {
                    f"{prefix}path_{block}": tuple(s.name for s in lm.state)
                    for block in model.BLOCKS
                    for prefix, lm in (
                        ("", meanfield.layer_map(block, name, 1)),
                        ("ntk_", ntk.layer_map(block, name, 1)),
                    )
                }
            ),
        )
    )
    params = (model.sigma_w2, model.sigma_b2)
    for n_inputs, gram in ((1, (model.G1,)), (2, model.G)):
        which = "single" if n_inputs == 1 else "pair"
        spec.functions.append(
            grid_map_function(
                f"ntk_input_{which}",
                params=params,
                inputs=gram,
                exprs=ntk.input_ntk("layer", n_inputs),
                library=spec.library,
                doc="out = Theta^0 of the input layer's own parameters at each grid point.",
            )
        )
    return spec


def _describe_ntk(lm) -> str:
    lines = [f"{lm.block} block, {lm.n_inputs} input(s):"]
    for s, u in zip(lm.theta_state, lm.update[len(lm.kernel_map.state) :]):
        lines.append(f"    {s} -> {sp.sstr(u)}")
    return "\n".join(lines)


from .builders import gram_offdiagonal_function, state_path_function  # noqa: E402

BUILDERS["gram"] = gram_module
