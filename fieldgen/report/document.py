"""report.md: the figures with captions, the numbers behind them and every parameter used.

Captions and tables are formatted from the parameter dicts and the analysis results, so no value
is typed twice.
"""

from __future__ import annotations

import numpy as np

from .params import MEANING

MODEL = (
    "Model: a residual network of width N and depth L, "
    "`h^l = h^{l-1} + r (W^l phi(h^{l-1}) + b^l)` (the full, pre-activation block), "
    "`W_ij ~ N(0, sigma_w^2/N)`, `b_i ~ N(0, sigma_b^2)`, inputs with a fixed kernel K^0; "
    "`Khat^l = (1/N) sum_i h^l_i h^l_i` is the empirical kernel and K^l its mean-field "
    "(N -> infinity) value. Theory: lines; simulations of finite networks: markers with error "
    "bars of one standard error (fixed seeds)."
)


def _value(v) -> str:
    if isinstance(v, (tuple, list)):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    return str(v)


def parameter_table(p: dict) -> str:
    rows = ["| parameter | value | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{k}` | {_value(v)} | {MEANING.get(k, '')} |" for k, v in p.items()]
    return "\n".join(rows)


def _z(line, points) -> np.ndarray:
    """(simulation - theory)/s.e. at the simulated points (theory sampled at the same x)."""
    theory = np.interp(points.x, line.x, line.y)
    return (points.y - theory) / points.err


def _figure(number: int, name: str, title: str) -> str:
    return (
        f"## {number}. {title}\n\n![Figure {number}: {title}]({name}.png)\n\n"
        f"Figure {number} as PDF: [{name}.pdf]({name}.pdf).\n"
    )


def kernel_section(data: dict, p: dict) -> str:
    z = np.concatenate(
        [
            _z(*panels[key])
            for by_r in data.values()
            for panels in by_r.values()
            for key in ("norm", "corr")
        ]
    )
    return "\n".join(
        [
            _figure(1, "fig1_kernel", "Mean-field kernel across layers"),
            f"Top: the norm K^l_11/K^0 (log scale); bottom: the correlation c^l of two inputs with "
            f"correlation c^0 = {p['c0']:g}, for {', '.join(p['activations'])} and r = "
            f"{_value(p['r'])}. Lines: the mean-field recursion (`fieldgen.kernel`); markers: "
            f"{p['samples']} networks of width N = {p['width']} simulated with "
            f'`method="{p["method"]}"`. The kernel grows geometrically for relu and sub-linearly '
            "for the saturating activations; the correlation moves towards 1 for relu and away from "
            "it for erf and tanh, faster for larger r.",
            "",
            f"Agreement: largest |simulation - theory|/s.e. = {np.max(np.abs(z)):.2f} over "
            f"{z.size} simulated points (finite-width corrections are O(1/N)). The points of one "
            "curve come from the same networks, so their deviations are correlated: a curve lying "
            "one to three s.e. off over many layers is one fluctuation, not many.",
            "",
            parameter_table(p),
            "",
        ]
    )


def fluctuations_section(data: dict, p: dict) -> str:
    L, ref = p["depth"], p["reference_layer"]
    rows = [
        "| activation | quantity at l = L | theory | "
        + " | ".join(f"simulation N = {N}" for N in p["widths"])
        + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in p["widths"]) + " |",
    ]
    for activation, d in data.items():
        for key, label in (
            ("var", "N Var(Khat^L)/(K^L)^2"),
            ("cov", f"N Cov(Khat^L, Khat^{ref})/(K^L K^{ref})"),
        ):
            line, simulated = d[key]
            sims = " | ".join(f"{pts.y[L]:.3f} +- {pts.err[L]:.3f}" for pts in simulated.values())
            rows.append(f"| {activation} | {label} | {line.y[L]:.3f} | {sims} |")
    return "\n".join(
        [
            _figure(
                2, "fig2_fluctuations", "Kernel fluctuations: variance and cross-layer covariance"
            ),
            f"Left: N Var(Khat^l); right: N Cov(Khat^l, Khat^l') with l' = {ref}, both divided by the "
            "mean-field kernels so that the scale is the same at every layer. Line: the one-loop "
            "theory (`fieldgen.kernel_covariance`), which is the N -> infinity limit of these scaled "
            f"moments; markers: {p['samples']:,} networks at each width N = "
            f'{_value(p["widths"])} (`method="{p["method"]}"`), error bars from the sample (fourth '
            "moments). The simulations approach the line as N grows, with an O(1/N) correction "
            f"(relative size about L r^2 sigma_w^2/N = {L * p['r'] ** 2 * p['sigma_w2']:g}/N). The "
            "covariance does not vanish away from l' = l: a neuron's walk remembers its past "
            "(Cov(h^m, h^m') = K^min(m,m')), which a feed-forward theory would not have.",
            "",
            "\n".join(rows),
            "",
            parameter_table(p),
            "",
        ]
    )


def mean_shift_section(data: dict, p: dict) -> str:
    L = p["depth"]
    lines, hidden = [], []
    for activation, d in data.items():
        total, sim = d["terms"]["total"].y[L], d["simulated"]
        if not d["shown"]:
            hidden.append(
                f"{activation} (theory {total:.3f} at l = {L}, standard error of the "
                f"simulation {sim.err[L]:.3f})"
            )
            continue
        lines.append(
            f"- {activation}, l = L = {L}: theory {total:.3f}, simulation "
            f"{sim.y[L]:.3f} +- {sim.err[L]:.3f} (z = {(sim.y[L] - total) / sim.err[L]:+.2f}); "
            f"the simulation is {sim.y[L] / sim.err[L]:+.1f} standard errors from 0 (no shift)."
        )
    not_shown = ""
    if hidden:
        not_shown = (
            f" Simulated points are not shown for {'; '.join(hidden)}: their error bars "
            f"would be larger than 1/{p['min_signal']:g} of the shift. The shift is a "
            "difference of two means, O(1/N) against a spread of O(1/sqrt N) per network, "
            "so resolving it needs far more networks than this run's budget; "
            "`tests/test_one_loop.py` checks it by extrapolation in 1/N instead."
        )
    return "\n".join(
        [
            _figure(3, "fig3_mean_shift", "Mean shift of the kernel and its three parts"),
            "N (E Khat^l - K^l) from `fieldgen.mean_shift_terms`: the total and its "
            "parts, propagated (earlier shifts carried through the layer map), tadpole (curvature of "
            "the layer map times kernel noise) and self-feedback (a neuron's own past phi phi in its "
            "later step variance, present only with skip connections). For relu the layer map is "
            "linear in the kernel of one input (P = K/2), so the tadpole vanishes and the shift is "
            "driven entirely by self-feedback (the propagated part carries earlier self-feedback "
            "forward); a feed-forward-style theory would predict no shift at all. Markers: "
            f'{p["samples"]:,} networks of width N = {p["width"]} (`method="{p["method"]}"`), error '
            "bars one standard error of the mean, times N; the next order is O(L r^2 sigma_w^2/N) = "
            f"{L * p['r'] ** 2 * p['sigma_w2'] / p['width']:.2g} relative." + not_shown,
            "",
            "\n".join(lines),
            "",
            parameter_table(p),
            "",
        ]
    )


def sensitivity_section(data: dict, p: dict) -> str:
    lo, hi = p["band"]
    rows = [
        f"| activation | L | r* | S(r*) | range of maximal sensitivity | {lo:g}-{hi:g} inside |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for activation, by_depth in data["curves"].items():
        for L, (_, best) in by_depth.items():
            if not best:
                rows.append(f"| {activation} | {L} | none | - | - | - |")
                continue
            r_hi = "inf" if best.r_hi is None else f"{best.r_hi:.3g}"
            rows.append(
                f"| {activation} | {L} | {best.r_star:.4g} | {best.S_max:.4f} | "
                f"[{best.r_lo:.3g}, {r_hi}] | {'yes' if best.contains(lo, hi) else 'no'} |"
            )
    check = data["check"]
    check_text = ""
    if check is not None:
        z = (check.y - data["check_theory"]) / check.err
        check_text = (
            f"Simulated check ({p['check_activation']}, L = {p['check_depth']}, "
            f"r/r* = {_value(p['check_r_factors'])}): {p['check_samples']} networks of width "
            f"N = {p['check_width']} at c^0 +- {p['check_dc0']:g} with common random numbers, "
            "S estimated per network by the central difference of its output correlation; "
            f"|simulation - theory|/s.e. <= {np.max(np.abs(z)):.2f}."
        )
    no_max = [
        a
        for a, by_depth in data["curves"].items()
        if not any(best for _, best in by_depth.values())
    ]
    return "\n".join(
        [
            _figure(4, "fig4_sensitivity", "Sensitivity S(r) and the optimal residual scale"),
            f"S = dc^L/dc^0 of two inputs with norm K^0 = {p['K0']:g} and correlation c^0 = "
            f"{p['c0']:g} (`fieldgen.sensitivity`; an identity network has S = 1) against r for depths "
            f"L = {_value(p['depths'])}; stars: r* from `fieldgen.optimal_r`; shaded: the customary "
            f"r = {lo:g}-{hi:g}. The maximum is broad and moves to smaller r as L grows."
            + (
                f" {', '.join(no_max)} has no interior maximum: S(r) <= S(0) = 1 for every r."
                if no_max
                else ""
            ),
            "",
            check_text,
            "",
            "\n".join(rows),
            "",
            parameter_table(p),
            "",
        ]
    )


def optimum_section(data: dict, p: dict) -> str:
    rows = [
        "| activation | L | r* numeric | r* analytic | difference |",
        "| --- | --- | --- | --- | --- |",
    ]
    for activation, d in data["by_depth"].items():
        for L, r_num, r_an in zip(d["numeric"].x, d["numeric"].y, d["analytic_at"].y):
            rows.append(
                f"| {activation} | {L} | {r_num:.5g} | {r_an:.5g} | "
                f"{100 * (r_an / r_num - 1):+.2f} % |"
            )
    exps = []
    for (activation, sigma_b2), d in data["by_weight"].items():
        slope = "-" if d["exponent"] is None else f"{d['exponent']:+.4f}"
        missing = d["numeric"].x[np.isnan(d["numeric"].y)]
        none = (
            f" (no interior maximum at sigma_w^2 = {_value(list(missing))}: the bias keeps "
            "S(r) <= 1)"
            if missing.size
            else ""
        )
        exps.append(
            f"- {activation}, sigma_b^2 = {sigma_b2:g}: d ln r*/d ln sigma_w^2 = {slope}" + none
        )
    return "\n".join(
        [
            _figure(5, "fig5_optimum", "Optimal residual scale against depth and weight variance"),
            "Left: r* against depth L (log-log). Markers: the numeric maximum of S for the discrete "
            "network; solid lines: the analytic continuum result r* = sqrt(tau*/(sigma_w^2 (L - L0))) "
            '(`optimal_r(..., method="analytic")`); dotted: its leading order sqrt(tau*/(sigma_w^2 L)), '
            "the 1/sqrt(L) law; shaded: the customary r. Right: r* against sigma_w^2 at L = "
            f"{p['sweep_depth']}, without bias (filled, solid) and with bias (open, dashed), with the "
            "fitted exponent d ln r*/d ln sigma_w^2 in the legend. Without bias and with a fixed input "
            "kernel the network depends on (r, sigma_w) only through r sigma_w, so the exponent is "
            "exactly -1/2; a bias breaks that invariance and the exponent moves away from -1/2. relu "
            "is not shown: it has no interior maximum (figure 4).",
            "",
            "\n".join(rows),
            "",
            "\n".join(exps),
            "",
            parameter_table(p),
            "",
        ]
    )


SECTIONS = {
    "kernel": kernel_section,
    "fluctuations": fluctuations_section,
    "mean_shift": mean_shift_section,
    "sensitivity": sensitivity_section,
    "optimum": optimum_section,
}


def render(results: dict, params: dict, run: dict) -> str:
    """The whole report: a header with how it was made, then one section per figure."""
    timing = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in run["seconds"].items())
    header = [
        "# fieldgen report: the field theory of residual networks against simulation",
        "",
        f"Made by `{run['command']}` with fieldgen {run['version']} ({run['mode']} settings) in "
        f"{run['total']:.0f} s ({timing}). Simulations: {run['misses']} computed, {run['hits']} "
        "read from the cache (`.cache/`, keyed by function, activation, every parameter, seed, "
        "fieldgen version and a digest of the simulator's code; every entry is checked against "
        "its key and recomputed if damaged or mismatched).",
        "",
        MODEL,
        "",
        "Source: K. Fischer, D. Dahmen, M. Helias, *Field theory for optimal signal propagation "
        "in ResNets*, arXiv:2305.07715.",
        "",
    ]
    body = [SECTIONS[name](results[name], params[name]) for name in SECTIONS]
    return "\n".join(header + body)
