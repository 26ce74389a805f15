"""Figures from evaluation rows (pipelines.evaluation.evaluate): pass@k against k on a log2 axis.

Figures are drawn on a bare matplotlib Figure rendered by the Agg canvas, never through pyplot, so
plotting neither needs a display nor changes the backend of a notebook that imports us.
Outcome pass@k is drawn solid, process-verified pass@k dashed, 95 % bootstrap CIs as shaded bands.
"""
from __future__ import annotations

import io
from pathlib import Path

from gsm_synth.atomic import write_atomic
from pipelines.evaluation.metrics import metric_key

STYLES = {"outcome": "-", "process": "--"}


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4, columns: int | None = None):
    from matplotlib.figure import Figure

    columns = min(columns or n_panels, n_panels)
    rows = -(-n_panels // columns)
    fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False).flat)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _draw(ax, row: dict, color, label: str, flavours=tuple(STYLES)) -> None:
    ks = row["ks"]
    for flavour in flavours:
        keys = [metric_key(flavour, k) for k in ks]
        means = [row[key] for key in keys]
        lo = [row[key + "_ci"][0] for key in keys]
        hi = [row[key + "_ci"][1] for key in keys]
        ax.plot(ks, means, STYLES[flavour], color=color, marker="o", markersize=3,
                label=f"{label} ({flavour})")
        ax.fill_between(ks, lo, hi, color=color, alpha=0.15, linewidth=0)


def _style(ax, title: str, ks: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_title(title)
    ax.grid(alpha=0.3)


def _save(fig, path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    write_atomic(Path(path), buf.getvalue())
    return Path(path)


def _totals(rows: list[dict]) -> dict[str, dict]:
    return {r["bin"]: r for r in rows if r["context"] == "all"}


def plot_bins(rows: list[dict], path) -> Path:
    """One model: one panel, one colour per bin."""
    fig, (ax,) = _figure(1, width=5.5)
    totals = _totals(rows)
    colors = _colors(len(totals))
    for color, (name, row) in zip(colors, totals.items()):
        _draw(ax, row, color, f"{name} (op {row['ops']})")
    _style(ax, "pass@k by op bin", max((r["ks"] for r in totals.values()), key=len, default=[1]))
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_pass_at_k(rows_by_label: dict[str, list[dict]], path, flavours=tuple(STYLES)) -> Path:
    """Several models (label -> rows from evaluate) overlaid, one panel per bin."""
    totals = {label: _totals(rows) for label, rows in rows_by_label.items()}
    bins = list(dict.fromkeys(b for t in totals.values() for b in t))
    if not bins:
        raise ValueError("no bin totals (context 'all') to plot")
    fig, axes = _figure(len(bins))
    colors = _colors(len(totals))
    for ax, name in zip(axes, bins):
        ks = [1]
        for color, (label, by_bin) in zip(colors, totals.items()):
            if name in by_bin:
                _draw(ax, by_bin[name], color, label, flavours)
                ks = max(ks, by_bin[name]["ks"], key=len)
        ops = next(t[name]["ops"] for t in totals.values() if name in t)
        _style(ax, f"{name} (op {ops})", ks)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def plot_lines(panels: dict[str, dict[str, tuple]], path, xlabel: str, ylabel: str,
               ylim: tuple[float, float] | None = (-0.02, 1.02), columns: int | None = None) -> Path:
    """Generic line panels: panel title -> {label: (xs, ys)} (RL curves by step, a metric by op), or
    {label: (xs, ys, lo, hi)} to shade a CI band; `columns` wraps the panels into rows."""
    if not panels:
        raise ValueError("nothing to plot")
    fig, axes = _figure(len(panels), columns=columns)
    labels = list(dict.fromkeys(label for series in panels.values() for label in series))
    colors = dict(zip(labels, _colors(len(labels))))
    for ax, (title, series) in zip(axes, panels.items()):
        for label, (xs, ys, *band) in series.items():
            ax.plot(xs, ys, "-", color=colors[label], marker="o" if len(xs) <= 24 else None, markersize=3,
                    label=label)
            if band:
                ax.fill_between(xs, band[0], band[1], color=colors[label], alpha=0.15, linewidth=0)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)
