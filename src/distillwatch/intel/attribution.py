"""Known actors and attribution: which actor's fingerprints a campaign resembles, and how surely.

An actor is a name an analyst gives to whoever runs a set of campaigns, with the
fingerprints of those campaigns (added from a results directory, by labelling a
tracked campaign, or imported).  A campaign's similarity to an actor is its best
similarity to any of the actor's fingerprints; candidates are ranked by that.
Below the threshold the campaign is "unattributed", whatever the ranking says.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import duckdb

from distillwatch.campaigns.model import ActorCandidate, Attribution, Campaign
from distillwatch.intel.fingerprint import EVIDENCE_WEIGHTS, Fingerprint, compare

DEFAULT_THRESHOLD = 0.6
MAX_CANDIDATES = 5
# Actor names end up in reports, STIX intrusion sets and partner bundles.
_NAME = re.compile(r"^[\w][\w .,:'()+&/-]{0,99}$", re.UNICODE)


class IntelError(ValueError):
    """A user error in intel commands (unknown actor or campaign, bad name, bad file)."""


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise IntelError(
            f"actor name {name[:40]!r} must be 1-100 letters, digits, spaces or .,:'()+&/- and start with a letter or digit"
        )
    return name


def add_actor(con: duckdb.DuckDBPyConnection, name: str, description: str | None = None) -> str:
    """Create the actor if it does not exist (an existing one keeps its description unless a new one is given)."""
    name = check_name(name)
    now = datetime.now(UTC)
    con.execute(
        "INSERT INTO intel_actors VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET description = "
        "coalesce(excluded.description, intel_actors.description)",
        [name, description[:500] if description else None, now],
    )
    return name


def actor_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM intel_actors WHERE name = ?", [name]).fetchone()[0] > 0


def add_fingerprints(
    con: duckdb.DuckDBPyConnection, actor: str, fingerprints: list[Fingerprint], source: str
) -> int:
    if not actor_exists(con, actor):
        raise IntelError(f"unknown actor {actor[:100]!r}: add it first with `distillwatch actors add`")
    now = datetime.now(UTC)
    rows = [[actor, source[:300], fp.campaign_id, now, fp.model_dump_json()] for fp in fingerprints]
    if rows:
        con.executemany("INSERT INTO intel_actor_fingerprints VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def latest_fingerprint(con: duckdb.DuckDBPyConnection, campaign_id: str) -> Fingerprint | None:
    row = con.execute(
        "SELECT fingerprint FROM intel_campaign_runs WHERE campaign_id = ? ORDER BY recorded_at DESC LIMIT 1",
        [campaign_id],
    ).fetchone()
    return Fingerprint.model_validate_json(row[0]) if row else None


def label_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str, actor: str) -> Fingerprint:
    """Record an analyst's verdict: this tracked campaign is the actor's.  Its fingerprint joins the actor's set."""
    fp = latest_fingerprint(con, campaign_id)
    if fp is None:
        raise IntelError(
            f"campaign {campaign_id[:100]!r} is not in the store's history (scan with this --db first)"
        )
    # A campaign has one label: relabelling moves it.
    con.execute(
        "DELETE FROM intel_actor_fingerprints WHERE source = 'label' AND campaign_id = ?", [campaign_id]
    )
    add_fingerprints(con, actor, [fp], "label")
    return fp


def labels(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute(
        "SELECT campaign_id, actor FROM intel_actor_fingerprints WHERE source = 'label'"
    ).fetchall()
    return {cid: actor for cid, actor in rows}


def load_actors(con: duckdb.DuckDBPyConnection) -> dict[str, list[Fingerprint]]:
    out: dict[str, list[Fingerprint]] = {
        name: [] for (name,) in con.execute("SELECT name FROM intel_actors ORDER BY name").fetchall()
    }
    for actor, fp in con.execute(
        "SELECT actor, fingerprint FROM intel_actor_fingerprints ORDER BY added_at"
    ).fetchall():
        out.setdefault(actor, []).append(Fingerprint.model_validate_json(fp))
    return out


def list_actors(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rows = con.execute(
        """
        SELECT a.name, a.description, a.created_at, count(f.fingerprint) AS fingerprints,
               list(DISTINCT f.campaign_id ORDER BY f.campaign_id) FILTER (WHERE f.campaign_id IS NOT NULL) AS campaigns
        FROM intel_actors a LEFT JOIN intel_actor_fingerprints f ON f.actor = a.name
        GROUP BY ALL ORDER BY a.name
        """
    ).fetchall()
    return [
        {"name": r[0], "description": r[1], "created_at": r[2], "fingerprints": r[3], "campaigns": r[4] or []}
        for r in rows
    ]


def attribute(
    fp: Fingerprint,
    actors: dict[str, list[Fingerprint]],
    threshold: float = DEFAULT_THRESHOLD,
    labelled_actor: str | None = None,
) -> Attribution:
    """Rank the actors by similarity to `fp` and decide, with an explanation in words."""
    candidates: list[ActorCandidate] = []
    for actor, fps in actors.items():
        if not fps:
            continue
        best = max((compare(fp, other) for other in fps), key=lambda s: s.overall)
        sims = {k: round(v, 3) for k, v in best.by_type.items() if v is not None}
        candidates.append(
            ActorCandidate(
                actor=actor, confidence=round(best.overall, 3), similarity=sims, explanation=best.explain()
            )
        )
    candidates.sort(key=lambda c: (-c.confidence, c.actor))
    candidates = candidates[:MAX_CANDIDATES]

    if labelled_actor is not None:
        return Attribution(
            actor=labelled_actor,
            confidence=1.0,
            threshold=threshold,
            labelled=True,
            candidates=candidates,
            explanation=f"An analyst labelled this campaign as {labelled_actor}.",
        )
    if not candidates:
        return Attribution(
            threshold=threshold,
            explanation="Unattributed: the store holds no actor fingerprints to compare with.",
        )
    top = candidates[0]
    strongest = max(top.similarity.items(), key=lambda kv: kv[1] * EVIDENCE_WEIGHTS[kv[0]], default=None)
    if top.confidence < threshold:
        return Attribution(
            threshold=threshold,
            confidence=top.confidence,
            candidates=candidates,
            explanation=(
                f"Unattributed: the closest known actor, {top.actor}, scores {top.confidence:.2f}, "
                f"below the attribution threshold {threshold:.2f}. {top.explanation}."
            ),
        )
    runner_up = (
        f" The next candidate, {candidates[1].actor}, scores {candidates[1].confidence:.2f}."
        if len(candidates) > 1
        else ""
    )
    lead = f" The strongest evidence is {strongest[0]} ({strongest[1]:.2f})." if strongest else ""
    return Attribution(
        actor=top.actor,
        confidence=top.confidence,
        threshold=threshold,
        candidates=candidates,
        explanation=(
            f"Most likely {top.actor}: fingerprint similarity {top.confidence:.2f} "
            f"(threshold {threshold:.2f}).{lead} {top.explanation}.{runner_up}"
        ),
    )


def attribute_campaigns(
    con: duckdb.DuckDBPyConnection,
    campaigns: list[Campaign],
    fingerprints: dict[str, Fingerprint],
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Campaign]:
    """Attribution for every campaign (fingerprints keyed by campaign_id)."""
    actors = load_actors(con)
    by_label = labels(con)
    out = []
    for c in campaigns:
        # An actor's fingerprint of an earlier sighting of this same campaign counts: that is how a
        # returning campaign is recognised as the actor's.
        attr = attribute(fingerprints[c.campaign_id], actors, threshold, by_label.get(c.campaign_id))
        out.append(c.model_copy(update={"attribution": attr}))
    return out
