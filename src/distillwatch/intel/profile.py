"""Fingerprint parts that need the raw tables: hour-of-day profile, template sketch,
sign-up hours and e-mail local-part shapes.

Counting is Ibis (runs on whatever backend holds the exchanges); the per-text
part (normalising a bounded, deterministic sample of each campaign's prompts and
MinHashing them) is batched over Arrow arrays through `distillwatch.enrich.templates`.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _

from distillwatch.intel.fingerprint import Fingerprint

# Prompts per campaign that go into the template sketch.  The sketch is a union
# of shingle sets, so a few thousand distinct prompts already cover a campaign's
# templates; the cap keeps a 28M-exchange campaign as cheap as a small one.
SKETCH_SAMPLE = 2000
NUM_PERM = 64


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [round(float(x), 6) for x in counts / total] if total > 0 else []


def _hour_profiles(table: ibis.Table, ts_col: str) -> dict[str, list[float]]:
    """campaign_id -> 24 shares of rows by UTC hour of `ts_col`."""
    counts = (
        table.filter(table[ts_col].notnull())
        .group_by(campaign_id=_.campaign_id, hour=table[ts_col].hour())
        .aggregate(n=_.count())
        .to_pyarrow()
    )
    out: dict[str, list[float]] = {}
    cids = counts["campaign_id"].to_numpy(zero_copy_only=False)
    hours = counts["hour"].to_numpy()
    ns = counts["n"].to_numpy()
    for cid in np.unique(cids):
        rows = cids == cid
        hist = np.zeros(24)
        np.add.at(hist, hours[rows].astype(int), ns[rows])
        out[str(cid)] = _shares(hist)
    return out


def _template_sketches(
    joined: ibis.Table, sample: int, num_perm: int
) -> dict[str, tuple[list[int], dict[str, float]]]:
    """campaign_id -> (MinHash of the union of its templates' shingles, template hash -> share in the sample)."""
    try:
        from distillwatch.enrich import templates
    except ImportError:  # enrichment not installed in this build: the sketch is optional evidence
        return {}
    prompts = joined.filter(joined.prompt.notnull()).select("campaign_id", "prompt")
    prompts = prompts.mutate(text_hash=prompts.prompt.hash())
    # A deterministic sample: the distinct texts with the smallest hashes, not the first to arrive.  Chosen on
    # the hashes alone, then the chosen texts are read: distinct texts over every campaign exchange (29M at
    # the reported campaign's scale) held the text of each in a hash table.
    hashes = prompts.select("campaign_id", "text_hash").distinct()
    ranked = hashes.mutate(rk=ibis.row_number().over(group_by="campaign_id", order_by=hashes.text_hash))
    chosen = ranked.filter(ranked.rk < sample).select("campaign_id", "text_hash")
    rows = (
        prompts.semi_join(chosen, ["campaign_id", "text_hash"])
        .select("campaign_id", "prompt")
        .distinct()
        .order_by(["campaign_id", "prompt"])
        .to_pyarrow()
    )
    if rows.num_rows == 0:
        return {}
    normal = templates.normalize(rows["prompt"].combine_chunks())
    sigs = np.asarray(templates.minhash(normal, num_perm=num_perm, normalized=True))
    hashes = pc.cast(templates.template_hash(rows["prompt"].combine_chunks()), pa.string()).to_numpy(
        zero_copy_only=False
    )
    cids = rows["campaign_id"].to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, cids[1:] != cids[:-1]])
    # MinHash of a union of sets = element-wise minimum of the members' signatures.
    union = np.minimum.reduceat(sigs, starts, axis=0)
    out: dict[str, tuple[list[int], dict[str, float]]] = {}
    bounds = list(starts) + [len(cids)]
    for i, start in enumerate(starts):
        values, counts = np.unique(hashes[start : bounds[i + 1]], return_counts=True)
        dist = {str(v): float(c) / counts.sum() for v, c in zip(values, counts, strict=True)}
        out[str(cids[start])] = ([int(x) for x in union[i]], dist)
    return out


def _email_patterns(joined: ibis.Table) -> dict[str, dict[str, float]]:
    """campaign_id -> local-part shape -> share of its accounts with an e-mail on record.

    Uses the `email_pattern` column when detection already computed it, else
    derives the shapes from `email` (addresses never leave this function).
    """
    if "email_pattern" in joined.columns:
        shapes = joined.filter(joined.email_pattern.notnull()).select(
            "campaign_id", shape=joined.email_pattern
        )
    else:
        try:
            from distillwatch.enrich import email
        except ImportError:
            return {}
        rows = joined.filter(joined.email.notnull()).select("campaign_id", "email").to_pyarrow()
        if rows.num_rows == 0:
            return {}
        shape = email.local_part_pattern(rows["email"].combine_chunks())
        shapes = ibis.memtable(pa.table({"campaign_id": rows["campaign_id"], "shape": shape}))
    counts = shapes.group_by(["campaign_id", "shape"]).aggregate(n=_.count()).to_pyarrow().to_pylist()
    totals: dict[str, int] = {}
    for r in counts:
        totals[r["campaign_id"]] = totals.get(r["campaign_id"], 0) + r["n"]
    out: dict[str, dict[str, float]] = {}
    for r in counts:
        if r["shape"] is not None:
            out.setdefault(r["campaign_id"], {})[r["shape"]] = r["n"] / totals[r["campaign_id"]]
    return out


def enrich_fingerprints(
    fingerprints: Iterable[Fingerprint],
    members: pa.Table,
    exchanges: ibis.Table | None = None,
    accounts: ibis.Table | None = None,
    sample: int = SKETCH_SAMPLE,
    num_perm: int = NUM_PERM,
) -> list[Fingerprint]:
    """Add the table-derived parts to each fingerprint.

    `members` has `account_id` and `campaign_id` (the scan's accounts.parquet);
    `exchanges` and `accounts` follow the data contract (either may be None).
    """
    fps = list(fingerprints)
    members = members.select(["account_id", "campaign_id"]).filter(pc.is_valid(members["campaign_id"]))
    if members.num_rows == 0:
        return fps
    member_t = ibis.memtable(members)
    updates: dict[str, dict] = {fp.campaign_id or "": {} for fp in fps}

    if exchanges is not None:
        cols = [c for c in ("account_id", "ts", "prompt") if c in exchanges.columns]
        joined = exchanges.select(*cols).join(member_t, "account_id")
        for cid, prof in _hour_profiles(joined, "ts").items():
            updates.setdefault(cid, {})["hour_profile"] = prof
        if "prompt" in cols:
            for cid, (sketch, dist) in _template_sketches(joined, sample, num_perm).items():
                updates.setdefault(cid, {})["template_sketch"] = sketch
                updates[cid]["_sample_templates"] = dist

    if accounts is not None:
        cols = [c for c in ("account_id", "created_at", "email", "email_pattern") if c in accounts.columns]
        joined = accounts.select(*cols).join(member_t, "account_id")
        if "created_at" in cols:
            for cid, prof in _hour_profiles(joined, "created_at").items():
                updates.setdefault(cid, {})["signup_hours"] = prof
        if "email" in cols or "email_pattern" in cols:
            for cid, dist in _email_patterns(joined).items():
                updates.setdefault(cid, {})["email_patterns"] = dist

    out = []
    for fp in fps:
        upd = dict(updates.get(fp.campaign_id or "", {}))
        sample_templates = upd.pop("_sample_templates", None)
        if sample_templates and not fp.templates:
            # The scan did not list template hashes: use the sample's.
            upd["templates"] = dict(sorted(sample_templates.items(), key=lambda kv: -kv[1])[:200])
        out.append(fp.model_copy(update=upd))
    return out


# indicator kind -> (source table, column); prefixes split into ipv4/ipv6 by their text
_INDICATOR_SOURCES = {
    "prefix": ("exchanges", "prefix"),
    "asn": ("exchanges", "asn"),
    "template-hash": ("facts", "template_hash"),
    "email-domain": ("accounts", "email_domain"),
}
INDICATOR_SCHEMA = pa.schema(
    [
        ("campaign_id", pa.string()),
        ("type", pa.string()),
        ("value", pa.string()),
        ("campaign_accounts", pa.int64()),
        ("other_accounts", pa.int64()),
        ("count", pa.int64()),
        ("first_seen", pa.timestamp("us", tz="UTC")),
        ("last_seen", pa.timestamp("us", tz="UTC")),
    ]
)


def campaign_indicators(
    members: pa.Table,
    exchanges: ibis.Table | None = None,
    facts: ibis.Table | None = None,
    accounts: ibis.Table | None = None,
    min_carriers: int = 2,
) -> pa.Table:
    """Every value at least `min_carriers` accounts of a campaign carry, with how specific it is.

    For network prefixes, ASNs, template hashes and e-mail domains: per campaign,
    the accounts of the campaign that carry the value, the accounts in no campaign
    that carry it, the campaign's rows with it, and first/last seen.  The scan's
    campaign record lists only its top values; a partner needs them all to match
    a campaign whose proxies rotate over hundreds of networks.  Honest customers'
    values (a cloud ASN, a popular template, a university NAT) show up with many
    `other_accounts`, and the export leaves them out.
    """
    tables = {"exchanges": exchanges, "facts": facts, "accounts": accounts}
    member_t = ibis.memtable(members.select(["account_id", "campaign_id"]))
    out = []
    for kind, (source, column) in _INDICATOR_SOURCES.items():
        table = tables[source]
        if table is None or column not in table.columns:
            continue
        has_ts = "ts" in table.columns
        rows = table.filter(table[column].notnull()).select(
            "account_id",
            value=table[column].cast("string"),
            ts=table.ts if has_ts else ibis.null("timestamp"),
        )
        tagged = rows.left_join(member_t, "account_id").select(
            rows.account_id, rows.value, rows.ts, member_t.campaign_id
        )
        inside = (
            tagged.filter(tagged.campaign_id.notnull())
            .group_by(["campaign_id", "value"])
            .aggregate(
                campaign_accounts=_.account_id.nunique(),
                count=_.count(),
                first_seen=_.ts.min(),
                last_seen=_.ts.max(),
            )
        )
        inside = inside.filter(inside.campaign_accounts >= min_carriers)
        outside = (
            tagged.filter(tagged.campaign_id.isnull())
            .join(inside.select("value").distinct(), "value")
            .group_by("value")
            .aggregate(other_accounts=_.account_id.nunique())
        )
        got = (
            inside.left_join(outside, "value")
            .select(
                "campaign_id",
                inside.value,
                "campaign_accounts",
                other_accounts=outside.other_accounts.fill_null(0),
                count="count",
                first_seen="first_seen",
                last_seen="last_seen",
            )
            .to_pyarrow()
        )
        if kind == "prefix":
            kinds = pc.if_else(pc.match_substring(got["value"], ":"), "ipv6-prefix", "ipv4-prefix")
        else:
            kinds = pa.array([kind] * got.num_rows, pa.string())
        out.append(got.add_column(1, "type", kinds))
    if not out:
        return INDICATOR_SCHEMA.empty_table()
    return pa.concat_tables([t.select(INDICATOR_SCHEMA.names).cast(INDICATOR_SCHEMA) for t in out]).sort_by(
        [("campaign_id", "ascending"), ("type", "ascending"), ("count", "descending"), ("value", "ascending")]
    )
