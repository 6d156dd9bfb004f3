"""The report's charts: matplotlib figures rendered to SVG and embedded as ``data:`` URIs.

Why ``data:`` images rather than inline ``<svg>``: a browser treats an SVG
loaded as an image as inert (no scripts, no external loads), so even a label
that slipped through escaping could not act.  Labels are still cleaned and
their ``$`` escaped (matplotlib would otherwise parse ``$...$`` as mathtext),
and ``svg.fonttype = none`` keeps text as searchable ``<text>`` that matplotlib
XML-escapes.  No pyplot: figures are drawn on their own canvas, so rendering a
report never touches the process-wide backend.
"""

from __future__ import annotations

import base64
import io
import random
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import igraph as ig
import matplotlib
import numpy as np
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from distillwatch.report.figures import GraphEdges
from distillwatch.report.text import clean

GRAPH_MAX_NODES = 300  # a drawing with more dots than this is not readable
GRAPH_MAX_EDGES = 1500
BENIGN_COLOUR = "#9aa5b1"
CAMPAIGN_COLOURS = ["#c0392b", "#2e86c1", "#d68910", "#7d3c98", "#17a589", "#b7950b", "#566573"]
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "distillwatch-report",  # stable ids: the same results give the same file
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass
class Chart:
    title: str
    alt: str
    uri: str  # data:image/svg+xml;base64,...


def label(value: object, limit: int = 28) -> str:
    """A chart label: cleaned, bounded, with ``$`` escaped so matplotlib never parses mathtext."""
    return clean(value, limit).replace("$", r"\$")


def _to_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def timeline(
    title: str,
    days: list[date],
    benign: list[int] | None,
    series: dict[str, list[int]],
    *,
    stacked: bool,
) -> Chart:
    """Exchanges per day: benign traffic against one or more campaigns.

    ``stacked`` draws all traffic as layers (the overview); otherwise the
    campaign and the benign traffic are two lines, on a log scale when their
    sizes differ by more than 20 times, so the smaller stays visible.
    """
    with matplotlib.rc_context(_RC):
        fig = _figure(9.0 if stacked else 7.5, 2.8)
        ax = fig.add_subplot()
        x = np.array(days, dtype="datetime64[D]")
        names = [label(n) for n in series]
        values = [np.asarray(v, dtype=float) for v in series.values()]
        colours = [CAMPAIGN_COLOURS[i % len(CAMPAIGN_COLOURS)] for i in range(len(values))]
        if stacked:
            layers = ([np.asarray(benign, dtype=float)] if benign is not None else []) + values
            layer_names = (["benign traffic"] if benign is not None else []) + names
            layer_colours = ([BENIGN_COLOUR] if benign is not None else []) + colours
            if layers:
                ax.stackplot(x, *layers, labels=layer_names, colors=layer_colours, step="mid")
        else:
            if benign is not None:
                ax.plot(x, benign, color=BENIGN_COLOUR, label="benign traffic", drawstyle="steps-mid")
            for name, v, colour in zip(names, values, colours, strict=True):
                ax.plot(x, v, color=colour, label=name, drawstyle="steps-mid", linewidth=1.8)
            peaks = [float(v.max()) for v in values if v.size] + ([max(benign)] if benign else [])
            positive = [p for p in peaks if p > 0]
            if len(positive) > 1 and max(positive) > 20 * min(positive):
                ax.set_yscale("log")
                ax.set_ylabel("exchanges per day (log scale)")
        if not ax.get_ylabel():
            ax.set_ylabel("exchanges per day")
        ax.set_title(label(title, 80), loc="left")
        fig.autofmt_xdate()
        if stacked and (series or benign is not None):
            # Outside the plot: a stack fills its whole area, so an inside legend would hide data.
            fig.legend(loc="outside right upper", fontsize=8, frameon=False, reverse=True)
        elif series or benign is not None:
            ax.legend(loc="best", fontsize=8, frameon=False)
        if ax.get_yscale() == "linear":
            ax.set_ylim(bottom=0)
        alt = (
            f"{clean(title, 80)}: exchanges per day from {days[0]} to {days[-1]}"
            if days
            else clean(title, 80)
        )
        return Chart(clean(title, 80), alt, _to_uri(fig))


def capability_bars(title: str, campaign: dict[str, float], population: dict[str, float]) -> Chart:
    """Share of exchanges per capability: the campaign against the benign population."""
    names = sorted(set(campaign) | set(population), key=lambda n: (-campaign.get(n, 0.0), n))[:12]
    with matplotlib.rc_context(_RC):
        fig = _figure(7.5, 0.35 * len(names) + 1.0)
        ax = fig.add_subplot()
        y = np.arange(len(names))
        ax.barh(
            y - 0.2,
            [100 * campaign.get(n, 0.0) for n in names],
            0.4,
            color=CAMPAIGN_COLOURS[0],
            label="campaign",
        )
        ax.barh(
            y + 0.2,
            [100 * population.get(n, 0.0) for n in names],
            0.4,
            color=BENIGN_COLOUR,
            label="population",
        )
        ax.set_yticks(y, [label(n.replace("_", " ")) for n in names])
        ax.invert_yaxis()
        ax.set_xlabel("share of exchanges (%)")
        ax.set_title(label(title, 80), loc="left")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
        alt = f"{clean(title, 80)}: share of exchanges per capability, campaign against population"
        return Chart(clean(title, 80), alt, _to_uri(fig))


def signup_bins(times: list[datetime]) -> tuple[str, list[tuple[datetime, int]]]:
    """Sign-ups per hour (per day when they span more than a week), empty bins included."""
    if not times:
        return "hour", []
    first, last = min(times), max(times)
    unit = "hour" if last - first <= timedelta(days=7) else "day"
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)

    def floor(t: datetime) -> datetime:
        return (
            t.replace(minute=0, second=0, microsecond=0)
            if unit == "hour"
            else t.replace(hour=0, minute=0, second=0, microsecond=0)
        )

    counts: dict[datetime, int] = {}
    for t in times:
        counts[floor(t)] = counts.get(floor(t), 0) + 1
    bins, t = [], floor(first)
    while t <= last:
        bins.append((t, counts.get(t, 0)))
        t += step
    return unit, bins


def signup_histogram(title: str, unit: str, bins: list[tuple[datetime, int]]) -> Chart:
    with matplotlib.rc_context(_RC):
        fig = _figure(7.5, 2.4)
        ax = fig.add_subplot()
        x = np.array([b[0].replace(tzinfo=None) for b in bins], dtype="datetime64[m]")
        width = 1 / 24 if unit == "hour" else 1.0
        ax.bar(x, [b[1] for b in bins], width=width * 0.9, align="edge", color=CAMPAIGN_COLOURS[0])
        ax.set_ylabel(f"accounts created per {unit}")
        ax.set_title(label(title, 80), loc="left")
        fig.autofmt_xdate()
        alt = f"{clean(title, 80)}: accounts created per {unit}"
        return Chart(clean(title, 80), alt, _to_uri(fig))


@dataclass
class GraphDrawing:
    chart: Chart
    nodes_total: int
    nodes_drawn: int
    edges_total: int
    edges_drawn: int
    components_drawn: int
    kinds_drawn: dict[str, int]


def _sample_nodes(g: ig.Graph, limit: int) -> list[int]:
    """Up to ``limit`` vertices grown breadth-first from the best-connected ones, so the sample stays connected."""
    if g.vcount() <= limit:
        return list(range(g.vcount()))
    degree = g.degree()
    order = sorted(range(g.vcount()), key=lambda v: (-degree[v], v))
    chosen: set[int] = set()
    for start in order:  # next component's hub once one is exhausted
        if len(chosen) >= limit:
            break
        if start in chosen:
            continue
        queue = deque([start])
        chosen.add(start)
        while queue and len(chosen) < limit:
            for nb in sorted(g.neighbors(queue.popleft()), key=lambda v: (-degree[v], v)):
                if nb not in chosen and len(chosen) < limit:
                    chosen.add(nb)
                    queue.append(nb)
    return sorted(chosen)


def account_graph(title: str, data: GraphEdges, accounts_total: int) -> GraphDrawing:
    """The campaign's accounts as dots, linked where a signal ties two together (sampled if large)."""
    names = sorted({e[0] for e in data.edges} | {e[1] for e in data.edges})
    index = {n: i for i, n in enumerate(names)}
    g = ig.Graph(n=len(names), edges=[(index[s], index[d]) for s, d, _, _ in data.edges])
    g.es["kind"] = [e[2] for e in data.edges]
    g.es["weight"] = [e[3] for e in data.edges]
    keep = _sample_nodes(g, GRAPH_MAX_NODES)
    sub = g.induced_subgraph(keep)
    if sub.ecount() > GRAPH_MAX_EDGES:  # strongest edges only; the drawing is a picture, not the data
        weights = np.asarray(sub.es["weight"])
        drop = np.argsort(-weights, kind="stable")[GRAPH_MAX_EDGES:]
        sub.delete_edges(sorted(int(i) for i in drop))
    rng = np.random.default_rng(7)  # deterministic start positions -> deterministic layout
    seed = rng.uniform(-1, 1, size=(sub.vcount(), 2)).tolist()
    ig.set_random_number_generator(random.Random(7))  # igraph's default generator is the global `random`
    try:
        coords = (
            np.asarray(sub.layout_fruchterman_reingold(seed=seed, niter=300).coords)
            if sub.vcount()
            else np.zeros((0, 2))
        )
    finally:
        ig.set_random_number_generator(random)
    kinds = sorted(set(sub.es["kind"])) if sub.ecount() else []
    scores = [data.scores.get(names[keep[v]], 0.0) for v in range(sub.vcount())]
    with matplotlib.rc_context(_RC):
        fig = _figure(7.5, 6.0)
        ax = fig.add_subplot()
        for i, kind in enumerate(kinds):
            segs = [coords[[e.source, e.target]] for e in sub.es if e["kind"] == kind]
            ax.add_collection(
                LineCollection(
                    segs,
                    colors=CAMPAIGN_COLOURS[(i + 1) % len(CAMPAIGN_COLOURS)],
                    linewidths=0.6,
                    alpha=0.5,
                    label=label(kind),
                )
            )
        if sub.vcount():
            dots = ax.scatter(
                coords[:, 0],
                coords[:, 1],
                c=scores,
                cmap="Reds",
                vmin=0,
                vmax=1,
                s=14,
                edgecolors="#333",
                linewidths=0.3,
                zorder=3,
            )
            fig.colorbar(dots, ax=ax, shrink=0.6, label="account score")
        ax.set_axis_off()
        ax.set_title(label(title, 80), loc="left")
        if kinds:
            ax.legend(loc="lower left", fontsize=8, frameon=False, title="link kind")
        alt = f"{clean(title, 80)}: {sub.vcount()} accounts and {sub.ecount()} links drawn"
        chart = Chart(clean(title, 80), alt, _to_uri(fig))
    kinds_drawn: dict[str, int] = {}
    for kind in sub.es["kind"] if sub.ecount() else []:
        kinds_drawn[kind] = kinds_drawn.get(kind, 0) + 1
    return GraphDrawing(
        chart=chart,
        nodes_total=accounts_total,
        nodes_drawn=sub.vcount(),
        edges_total=data.total_edges,
        edges_drawn=sub.ecount(),
        components_drawn=len(sub.connected_components()) if sub.vcount() else 0,
        kinds_drawn=kinds_drawn,
    )
