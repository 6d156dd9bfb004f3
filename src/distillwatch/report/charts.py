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
        fig = _figure(7.5, 3.2 if stacked else 2.8)
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
            fig.legend(loc="outside lower center", fontsize=8, frameon=False, ncols=min(4, len(series) + 1))
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


@dataclass
class SignupBins:
    unit: str  # hour | day | week
    bins: list[tuple[datetime, int]]  # start of each period and accounts created in it, empty ones included
    before: int  # sign-ups earlier than the first bin (stragglers, outside the burst)
    after: int


def signup_bins(times: list[datetime]) -> SignupBins:
    """Sign-ups per period around where most of them happened.

    The window is the middle half of the sign-ups widened by its own width
    (at least 6 hours) each side, so one account created two years earlier
    does not stretch a one-morning burst into 700 empty days.  The unit
    follows the window: hours up to 4 days, days up to 120, else weeks.
    """
    if not times:
        return SignupBins("hour", [], 0, 0)
    seconds = np.sort(np.array([t.timestamp() for t in times]))
    q1, q3 = np.percentile(seconds, [25, 75])
    pad = max(q3 - q1, 6 * 3600.0)
    lo, hi = max(seconds[0], q1 - pad), min(seconds[-1], q3 + pad)
    span = timedelta(seconds=float(hi - lo))
    unit, step = (
        ("hour", 3600)
        if span <= timedelta(days=4)
        else ("day", 86400)
        if span <= timedelta(days=120)
        else ("week", 7 * 86400)
    )
    offset = 4 * 86400 if unit == "week" else 0  # weeks start on Monday (1970-01-01 was a Thursday)
    start = np.floor((lo - offset) / step) * step + offset
    edges = np.arange(start, hi + step, step)
    inside = seconds[(seconds >= edges[0]) & (seconds < edges[-1])]
    counts, _ = np.histogram(inside, bins=edges)
    tz = times[0].tzinfo
    bins = [(datetime.fromtimestamp(float(e), tz), int(n)) for e, n in zip(edges[:-1], counts, strict=True)]
    return SignupBins(unit, bins, int((seconds < edges[0]).sum()), int((seconds >= edges[-1]).sum()))


def signup_histogram(title: str, b: SignupBins) -> Chart:
    with matplotlib.rc_context(_RC):
        fig = _figure(7.5, 2.4)
        ax = fig.add_subplot()
        x = np.array([t.replace(tzinfo=None) for t, _ in b.bins], dtype="datetime64[m]")
        width = {"hour": 1 / 24, "day": 1.0, "week": 7.0}[b.unit]
        ax.bar(x, [n for _, n in b.bins], width=width * 0.9, align="edge", color=CAMPAIGN_COLOURS[0])
        ax.set_ylabel(f"accounts created per {b.unit}")
        ax.set_title(label(title, 80), loc="left")
        fig.autofmt_xdate()
        alt = f"{clean(title, 80)}: accounts created per {b.unit}"
        return Chart(clean(title, 80), alt, _to_uri(fig))


@dataclass
class GraphDrawing:
    chart: Chart
    nodes_total: int
    nodes_drawn: int
    links_drawn: int
    components_drawn: int


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
    """The campaign's accounts as dots coloured by score, a line where signals tie two together.

    Thicker lines are stronger links (summed signal weights).  Large campaigns
    are sampled breadth-first from their best-connected accounts.
    """
    names = sorted({p[0] for p in data.pairs} | {p[1] for p in data.pairs})
    index = {n: i for i, n in enumerate(names)}
    g = ig.Graph(n=len(names), edges=[(index[a], index[b]) for a, b, _, _ in data.pairs])
    g.es["weight"] = [p[3] for p in data.pairs]
    keep = _sample_nodes(g, GRAPH_MAX_NODES)
    sub = g.induced_subgraph(keep)
    if sub.ecount() > GRAPH_MAX_EDGES:  # strongest links only; the drawing is a picture, not the data
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
    scores = [data.scores.get(names[keep[v]]) or 0.0 for v in range(sub.vcount())]
    with matplotlib.rc_context(_RC):
        fig = _figure(7.5, 6.0)
        ax = fig.add_subplot()
        if sub.ecount():
            ends = np.asarray(sub.get_edgelist())
            weights = np.asarray(sub.es["weight"], dtype=float)
            widths = 0.3 + 1.7 * weights / (weights.max() or 1.0)
            ax.add_collection(
                LineCollection(coords[ends], colors="#2e86c1", linewidths=widths, alpha=0.35, zorder=1)
            )
        if sub.vcount():
            dots = ax.scatter(
                coords[:, 0],
                coords[:, 1],
                c=scores,
                cmap="Reds",
                vmin=0,
                vmax=1,
                s=16,
                edgecolors="#333",
                linewidths=0.3,
                zorder=3,
            )
            fig.colorbar(dots, ax=ax, shrink=0.6, label="account score")
        ax.set_axis_off()
        ax.set_title(label(title, 80), loc="left")
        alt = f"{clean(title, 80)}: {sub.vcount()} accounts and {sub.ecount()} links drawn"
        chart = Chart(clean(title, 80), alt, _to_uri(fig))
    return GraphDrawing(
        chart=chart,
        nodes_total=accounts_total,
        nodes_drawn=sub.vcount(),
        links_drawn=sub.ecount(),
        components_drawn=len(sub.connected_components()) if sub.vcount() else 0,
    )
