"""Drawing: one function per figure, each saving `<name>.png` and `<name>.pdf`.

Conventions shared by every figure: theory as lines, simulations as markers with error bars
(standard errors), colours for the swept parameter. matplotlib's object interface with the Agg
canvas (no pyplot state, no display needed); imported only by the report.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

STYLE = {"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
DPI = 150
ERRORBAR = dict(linestyle="none", capsize=2, markersize=4, elinewidth=1)
BAND = dict(color="0.85", zorder=0)


def _styled(draw):
    """Draw under the report's font sizes without touching the caller's matplotlib settings."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float, rows: int, cols: int):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _save(fig, folder: Path, name: str) -> list[Path]:
    """PNG and PDF; PDF without a creation date so that re-runs give the same file."""
    paths = [folder / f"{name}.png", folder / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=DPI)
    fig.savefig(paths[1], metadata={"CreationDate": None})
    return paths


def _simulated_handle(label: str, marker: str = "o", color: str = "k", filled: bool = True):
    return Line2D(
        [],
        [],
        color=color,
        marker=marker,
        linestyle="none",
        markersize=4,
        markerfacecolor=color if filled else "none",
        label=label,
    )


def _theory_handle(label: str, color: str = "k", linestyle: str = "-"):
    return Line2D([], [], color=color, linestyle=linestyle, label=label)


def _plain_log_axes(ax, which: str = "both") -> None:
    """Log axes labelled with plain numbers (0.3, 1, 2) at the decades and, on axes spanning
    few decades, at some minor ticks (call after plotting: it reads the data limits)."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for name in ("x", "y") if which == "both" else (which,):
        lo, hi = getattr(ax, f"get_{name}lim")()
        decades = np.log10(hi / lo)
        minor = "235" if decades < 1.2 else "3" if decades < 2.5 else ""
        axis = getattr(ax, f"{name}axis")
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(
            FuncFormatter(lambda v, _, digits=minor: f"{v:g}" if f"{v:.0e}"[0] in digits else "")
        )


def _legend_below(ax, handles) -> None:
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=2,
        fontsize=7,
        frameon=False,
    )


def _errorbar(ax, points, offset: float = 0.0, **style):
    return ax.errorbar(points.x + offset, points.y, yerr=points.err, **{**ERRORBAR, **style})


# ---- figure 1 --------------------------------------------------------------------------------


@_styled
def kernel(data: dict, p: dict, folder: Path) -> list[Path]:
    activations = list(data)
    fig, axes = _figure(3.3 * len(activations), 5.6, 2, len(activations))
    colors = {r: f"C{i}" for i, r in enumerate(p["r"])}
    for j, activation in enumerate(activations):
        for r, panels in data[activation].items():
            for i, key in enumerate(("norm", "corr")):
                line, points = panels[key]
                axes[i, j].plot(line.x, line.y, color=colors[r], linewidth=1.2)
                _errorbar(axes[i, j], points, color=colors[r], marker="o", markerfacecolor="none")
        axes[0, j].set_title(activation)
        axes[0, j].set_yscale("log")
        _plain_log_axes(axes[0, j], "y")
        axes[0, j].set_ylabel(r"norm $K^l_{11}/K^0$")
        axes[1, j].set_ylabel(r"correlation $c^l$")
        for ax in axes[:, j]:
            ax.set_xlabel("layer $l$")
            ax.grid(alpha=0.3)
    handles = [_theory_handle(f"$r = {r:g}$", colors[r]) for r in p["r"]]
    handles += [
        _theory_handle(r"theory (mean field, $N\to\infty$)"),
        _simulated_handle(f"simulation, $N = {p['width']}$: mean $\\pm$ s.e.", filled=False),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    return _save(fig, folder, "fig1_kernel")


# ---- figure 2 --------------------------------------------------------------------------------


WIDTH_STYLE = (
    {"marker": "s", "markerfacecolor": "none", "color": "C0"},
    {"marker": "o", "color": "C3"},
)


@_styled
def fluctuations(data: dict, p: dict, folder: Path) -> list[Path]:
    activations = list(data)
    fig, axes = _figure(8.0, 3.0 * len(activations), len(activations), 2)
    ref = p["reference_layer"]
    labels = {
        "var": r"$N\,\mathrm{Var}(\hat K^l)\,/\,(K^l)^2$",
        "cov": rf"$N\,\mathrm{{Cov}}(\hat K^l, \hat K^{{{ref}}})\,/\,(K^l K^{{{ref}}})$",
    }
    shifts = np.linspace(-0.15, 0.15, len(p["widths"]))
    for i, activation in enumerate(activations):
        for j, key in enumerate(("var", "cov")):
            ax = axes[i, j]
            line, simulated = data[activation][key]
            ax.plot(line.x, line.y, color="k", linewidth=1.2, zorder=3)
            for points, style, dx in zip(simulated.values(), WIDTH_STYLE, shifts):
                _errorbar(ax, points, offset=dx, **style)
            if key == "cov":
                ax.axvline(ref, color="0.6", linestyle=":", linewidth=1)
            ax.set_title(
                f"{activation}: "
                + ("variance" if key == "var" else f"covariance with layer $l' = {ref}$")
            )
            ax.set_xlabel("layer $l$")
            ax.set_ylabel(labels[key])
            ax.grid(alpha=0.3)
    handles = [_theory_handle(r"one-loop theory ($N\to\infty$ limit)")]
    handles += [
        _simulated_handle(
            f"simulation, $N = {N}$",
            style["marker"],
            style["color"],
            "markerfacecolor" not in style,
        )
        for N, style in zip(p["widths"], WIDTH_STYLE)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    return _save(fig, folder, "fig2_fluctuations")


# ---- figure 3 --------------------------------------------------------------------------------


TERM_STYLE = {
    "total": dict(color="k", linewidth=2.0),
    "propagated": dict(color="C0", linestyle="--"),
    "tadpole": dict(color="C1", linestyle=":", linewidth=1.8),
    "self-feedback": dict(color="C2", linestyle="-."),
}


@_styled
def mean_shift(data: dict, p: dict, folder: Path) -> list[Path]:
    activations = list(data)
    fig, axes = _figure(4.0 * len(activations), 3.9, 1, len(activations))
    for ax, activation in zip(axes[0], activations):
        for name, line in data[activation]["terms"].items():
            ax.plot(line.x, line.y, **TERM_STYLE[name])
        if data[activation]["shown"]:
            _errorbar(
                ax,
                data[activation]["simulated"],
                color="k",
                marker="o",
                markerfacecolor="none",
                zorder=5,
            )
        else:
            ax.text(
                0.04,
                0.06,
                "simulation not shown:\nerror bar too large (see report)",
                transform=ax.transAxes,
                fontsize=8,
            )
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_title(activation)
        ax.set_xlabel("layer $l$")
        ax.set_ylabel(r"$N\,(\mathrm{E}\,\hat K^l - K^l)$")
        ax.grid(alpha=0.3)
    handles = [
        _theory_handle(f"theory: {name}", style["color"], style.get("linestyle", "-"))
        for name, style in TERM_STYLE.items()
    ]
    handles.append(
        _simulated_handle(f"simulation, $N = {p['width']}$: mean $\\pm$ s.e.", filled=False)
    )
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    return _save(fig, folder, "fig3_mean_shift")


# ---- figure 4 --------------------------------------------------------------------------------


@_styled
def sensitivity(data: dict, p: dict, folder: Path) -> list[Path]:
    curves = data["curves"]
    fig, axes = _figure(3.6 * len(curves), 3.8, 1, len(curves))
    colors = {L: f"C{i}" for i, L in enumerate(p["depths"])}
    lo, hi = p["band"]
    for ax, (activation, by_depth) in zip(axes[0], curves.items()):
        ax.axvspan(lo, hi, **BAND)
        ax.axhline(1.0, color="0.5", linewidth=0.8)
        for L, (line, best) in by_depth.items():
            ax.plot(line.x, line.y, color=colors[L], linewidth=1.2)
            if best:
                ax.plot(
                    best.r_star,
                    best.S_max,
                    marker="*",
                    markersize=10,
                    color=colors[L],
                    markeredgecolor="k",
                    markeredgewidth=0.5,
                    zorder=4,
                )
        if activation == p["check_activation"] and data["check"] is not None:
            _errorbar(ax, data["check"], color="k", marker="o", markerfacecolor="none", zorder=5)
        if not any(best for _, best in by_depth.values()):
            ax.text(
                0.04,
                0.06,
                "no interior maximum:\n$S(r) \\leq S(0) = 1$ for every $r$",
                transform=ax.transAxes,
                fontsize=8,
            )
        ax.set_xscale("log")
        _plain_log_axes(ax, "x")
        ax.set_title(activation)
        ax.set_xlabel("residual scale $r$")
        ax.set_ylabel(r"sensitivity $S = dc^L/dc^0$")
        ax.grid(alpha=0.3)
    handles = [_theory_handle(f"$L = {L}$", colors[L]) for L in p["depths"]]
    handles += [
        Line2D(
            [],
            [],
            marker="*",
            linestyle="none",
            color="0.4",
            markeredgecolor="k",
            markersize=9,
            label=r"$r^*$ (maximum)",
        ),
        Patch(label=f"customary $r$ = {lo:g}-{hi:g}", **BAND),
        _simulated_handle(
            f"simulation ({p['check_activation']}, $L = {p['check_depth']}$, "
            f"$N = {p['check_width']}$): mean $\\pm$ s.e.",
            filled=False,
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4)
    return _save(fig, folder, "fig4_sensitivity")


# ---- figure 5 --------------------------------------------------------------------------------


ACTIVATION_MARKER = ("o", "s", "^", "D")


@_styled
def optimum(data: dict, p: dict, folder: Path) -> list[Path]:
    fig, axes = _figure(9.0, 5.0, 1, 2)
    _r_star_by_depth(axes[0, 0], data["by_depth"], p)
    _r_star_by_weight(axes[0, 1], data["by_weight"], list(data["by_depth"]), p)
    for ax in axes[0]:
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_axes(ax)
        ax.set_ylabel("optimal residual scale $r^*$")
        ax.grid(alpha=0.3, which="both")
    return _save(fig, folder, "fig5_optimum")


def _r_star_by_depth(ax, by_depth: dict, p: dict) -> None:
    handles = []
    for i, (activation, d) in enumerate(by_depth.items()):
        color, marker = f"C{i}", ACTIVATION_MARKER[i]
        ax.plot(d["analytic"].x, d["analytic"].y, color=color)
        ax.plot(d["leading"].x, d["leading"].y, color=color, linestyle=":")
        ax.plot(
            d["numeric"].x,
            d["numeric"].y,
            color=color,
            marker=marker,
            linestyle="none",
            markerfacecolor="none",
        )
        handles.append(
            Line2D(
                [],
                [],
                color=color,
                marker=marker,
                markerfacecolor="none",
                label=f"{activation}: $\\tau^* = {d['tau_star']:.3g}$, $L_0 = {d['L0']:.3g}$",
            )
        )
    lo, hi = p["band"]
    ax.axhspan(lo, hi, **BAND)
    handles += [
        _theory_handle(r"analytic $\sqrt{\tau^*/(\sigma_w^2 (L - L_0))}$", "0.3"),
        _theory_handle(
            r"leading order $\sqrt{\tau^*/(\sigma_w^2 L)} \propto L^{-1/2}$", "0.3", ":"
        ),
        _simulated_handle("numeric (discrete network)", "o", "0.3", False),
        Patch(label=f"customary $r$ = {lo:g}-{hi:g}", **BAND),
    ]
    ax.set_xlabel("depth $L$")
    ax.set_title(rf"$r^*$ against depth ($\sigma_w^2 = {p['sigma_w2']:g}$)")
    _legend_below(ax, handles)


def _r_star_by_weight(ax, by_weight: dict, activations: list, p: dict) -> None:
    handles = []
    for (activation, sigma_b2), d in by_weight.items():
        i = activations.index(activation)
        style = dict(color=f"C{i}", linestyle="--" if sigma_b2 > 0 else "-")
        marker = dict(
            marker=ACTIVATION_MARKER[i], markerfacecolor="none" if sigma_b2 > 0 else f"C{i}"
        )
        ax.plot(d["analytic"].x, d["analytic"].y, **style)
        ax.plot(d["numeric"].x, d["numeric"].y, linestyle="none", color=style["color"], **marker)
        slope = "no fit" if d["exponent"] is None else f"exponent {d['exponent']:+.3f}"
        handles.append(
            Line2D(
                [],
                [],
                **style,
                **marker,
                label=f"{activation}, $\\sigma_b^2 = {sigma_b2:g}$: {slope}",
            )
        )
    # A slope -1/2 guide below the lowest curve, so that it does not hide the data.
    x = np.array(p["sigma_w2s"], dtype=float)
    lowest = np.nanmin([d["numeric"].y for d in by_weight.values()])
    ax.plot(x, 0.8 * lowest * np.sqrt(x[-1] / x), color="0.5", linestyle=":")
    handles += [
        _theory_handle(r"guide: slope $-1/2$", "0.5", ":"),
        _theory_handle("analytic (continuum)", "0.3"),
        _simulated_handle("numeric (discrete network)", "o", "0.3", False),
    ]
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_title(f"$r^*$ against $\\sigma_w^2$ ($L = {p['sweep_depth']}$)")
    _legend_below(ax, handles)
