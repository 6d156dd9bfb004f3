"""STIX 2.1 import: partners' indicators into the store, ready to be matched by the next scan.

Only indicators distillwatch can match on account traffic are kept: IPv4/IPv6
addresses and ranges, autonomous systems, e-mail domains (as `MATCHES` suffix
patterns or domain-name values) and distillwatch prompt-template hashes.  A
pattern is taken apart with stix2's own pattern parser; one that joins
comparisons with AND, FOLLOWEDBY or qualifiers cannot be matched value by value
and is skipped, as are revoked and expired indicators.  Every skip is counted
by reason and recorded with the import.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import stix2
from stix2 import patterns as sp
from stix2.pattern_visitor import create_pattern_object

from distillwatch.intel import attribution
from distillwatch.intel.fingerprint import MAX_ITEMS, Fingerprint
from distillwatch.intel.stix_export import DW_EXTENSION_ID, TEMPLATE_OBJECT, load_bundle

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
# e-mail suffix regexes partners write: '@x\.com$', '.*@x\.com$', '^[^@]+@x\.com$', '(?i)@x\.com$'
_EMAIL_SUFFIX = re.compile(
    r"^(?:\(\?i\))?(?:\^?(?:\.\*|\.\+|\[\^@\]\+|\[\^@\]\*)?)?@((?:[A-Za-z0-9-]+\\\.)+[A-Za-z0-9-]+)\$$"
)
_HASH = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
_COMPARISONS = (
    sp.EqualityComparisonExpression,
    sp.IsSubsetComparisonExpression,
    sp.MatchesComparisonExpression,
)
_PARTNER = re.compile(r"[^\w .,:'()+&/-]+", re.UNICODE)


@dataclass
class ImportResult:
    partner: str
    objects: int = 0
    indicators: int = 0
    stored: int = 0
    skipped: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    actors: Counter = field(
        default_factory=Counter
    )  # actor -> fingerprints taken from the partner's attributions


def clean_partner(name: str) -> str:
    """Partner names come from bundles (attacker-reachable if a feed is poisoned): keep them plain and short."""
    name = _PARTNER.sub("", name).strip()[:100]
    if not name:
        raise ValueError("partner name is empty after removing unsupported characters")
    return name


def _unescape(literal: str) -> str:
    # stix2's visitor keeps a string constant's escapes; undo \\ and \' as the STIX grammar defines them.
    return re.sub(r"\\([\\'])", r"\1", literal)


def _comparisons(expr) -> list | None:
    """The comparison leaves of a pattern made only of ORs, or None if it has an AND / FOLLOWEDBY / qualifier."""
    if isinstance(expr, sp.ObservationExpression):
        return _comparisons(expr.operand)
    if isinstance(expr, sp.OrObservationExpression | sp.OrBooleanExpression):
        out = []
        for op in expr.operands:
            sub = _comparisons(op)
            if sub is None:
                return None
            out.extend(sub)
        return out
    if isinstance(expr, sp.ParentheticalExpression):
        return _comparisons(expr.expression)
    if isinstance(expr, _COMPARISONS):
        return [expr]
    return None


def _leaf_value(cmp) -> tuple[str, str] | str:
    """(kind, value) for a comparison we can match, else the reason it is skipped."""
    if cmp.negated:
        return "negated comparison"
    obj = cmp.lhs.object_type_name
    path = ".".join(getattr(p, "property_name", "?") for p in cmp.lhs.property_path)
    raw = cmp.rhs.value
    value = _unescape(raw) if isinstance(raw, str) else raw
    op = cmp.operator
    if obj in ("ipv4-addr", "ipv6-addr") and path == "value" and op in ("=", "ISSUBSET"):
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            return "invalid address"
        if (net.version == 4) != (obj == "ipv4-addr"):
            return "address family mismatch"
        if net.prefixlen < (8 if net.version == 4 else 16):
            return "range too broad"  # a /4 would match half the internet
        return ("ipv4-prefix" if net.version == 4 else "ipv6-prefix", str(net))
    if obj == "autonomous-system" and path == "number" and op == "=":
        try:
            number = int(value)
        except (TypeError, ValueError):
            return "invalid ASN"
        return ("asn", str(number)) if 0 < number < 2**32 else "invalid ASN"
    if obj == "email-addr" and path == "value" and op == "MATCHES":
        m = _EMAIL_SUFFIX.match(str(value))
        if not m:
            return "e-mail regex is not a plain domain suffix"
        domain = m.group(1).replace("\\.", ".").lower()
        return ("email-domain", domain) if _DOMAIN.match(domain) else "invalid domain"
    if obj == "domain-name" and path == "value" and op == "=":
        domain = str(value).lower().rstrip(".")
        return ("email-domain", domain) if _DOMAIN.match(domain) else "invalid domain"
    if obj == TEMPLATE_OBJECT and path == "hash" and op == "=":
        return ("template-hash", str(value)) if _HASH.match(str(value)) else "invalid template hash"
    return f"unsupported comparison {obj}:{path} {op}"[:80]


def _partner_from_bundle(bundle: stix2.Bundle) -> str | None:
    identities = {o.id: o.name for o in bundle.objects if o.type == "identity"}
    creators = Counter(getattr(o, "created_by_ref", None) for o in bundle.objects if o.type == "indicator")
    for ref, _ in creators.most_common():
        if ref in identities:
            return identities[ref]
    return None


def _attributed_fingerprints(bundle: stix2.Bundle, res: ImportResult) -> list[tuple[str, Fingerprint]]:
    """(actor, fingerprint) for each partner campaign that carries a distillwatch fingerprint and an attribution."""
    names = {o.id: o.name for o in bundle.objects if o.type in ("intrusion-set", "threat-actor")}
    actor_of = {
        o.source_ref: names[o.target_ref]
        for o in bundle.objects
        if o.type == "relationship" and o.relationship_type == "attributed-to" and o.target_ref in names
    }
    out = []
    for obj in bundle.objects:
        ext = (getattr(obj, "extensions", None) or {}).get(DW_EXTENSION_ID)
        if obj.type != "campaign" or obj.id not in actor_of or not ext or "fingerprint" not in ext:
            continue
        try:
            actor = attribution.check_name(str(actor_of[obj.id]))
            fp = Fingerprint.model_validate(dict(ext["fingerprint"]))
        except ValueError:  # pydantic's ValidationError is a ValueError too
            res.skipped["attributed campaign with an invalid actor name or fingerprint"] += 1
            continue
        # A partner's fingerprint is bounded like ours, whatever it sent.
        bounded = {
            k: dict(sorted(v.items(), key=lambda kv: -kv[1])[:MAX_ITEMS])
            for k, v in fp.model_dump().items()
            if isinstance(v, dict)
        }
        cid = f"{res.partner}:{str(ext.get('campaign_id', obj.id))[:100]}"
        out.append((actor, fp.model_copy(update={**bounded, "campaign_id": cid})))
    return out


def import_bundle(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    partner: str | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Store the matchable indicators of a STIX bundle under `partner` (default: the bundle's producer)."""
    now = now or datetime.now(UTC)
    bundle = load_bundle(path)
    partner = clean_partner(partner or _partner_from_bundle(bundle) or Path(path).stem)
    res = ImportResult(partner=partner, objects=len(bundle.objects))
    rows = []
    # indicator -> the partner campaign it indicates (first one, when several)
    indicates: dict[str, str] = {}
    for o in bundle.objects:
        if (
            o.type == "relationship"
            and o.relationship_type == "indicates"
            and o.target_ref.startswith("campaign--")
        ):
            indicates.setdefault(o.source_ref, o.target_ref)
    for obj in bundle.objects:
        if obj.type != "indicator":
            continue
        res.indicators += 1
        if getattr(obj, "revoked", False):
            res.skipped["revoked"] += 1
            continue
        until = getattr(obj, "valid_until", None)
        if until is not None and until < now:
            res.skipped["expired"] += 1
            continue
        if obj.pattern_type != "stix":
            res.skipped[f"pattern type {obj.pattern_type}"[:60]] += 1
            continue
        try:
            leaves = _comparisons(create_pattern_object(obj.pattern, version="2.1"))
        except Exception:  # the stix2 pattern parser raises several types for patterns it rejects
            leaves = None
        if leaves is None:
            res.skipped["pattern is not an OR of =, ISSUBSET or MATCHES comparisons, or does not parse"] += 1
            continue
        values = []
        for leaf in leaves:
            got = _leaf_value(leaf)
            if isinstance(got, str):
                res.skipped[got] += 1
            else:
                values.append(got)
        name = (getattr(obj, "name", None) or "")[:200]
        for kind, value in dict.fromkeys(values):
            rows.append(
                [
                    partner,
                    obj.id,
                    kind,
                    value,
                    name,
                    getattr(obj, "confidence", None),
                    obj.valid_from,
                    until,
                    now,
                    indicates.get(obj.id),
                ]
            )
            res.kinds[kind] += 1
    con.execute("BEGIN")
    try:
        # A re-import of the partner's updated bundle replaces its earlier copy of each indicator.
        ids = sorted({r[1] for r in rows})
        if ids:
            con.execute(
                "DELETE FROM intel_partner_indicators WHERE partner = ? AND list_contains(?, indicator_id)",
                [partner, ids],
            )
            con.executemany(
                "INSERT OR REPLACE INTO intel_partner_indicators (partner, indicator_id, kind, value, name, confidence, "
                "valid_from, valid_until, imported_at, campaign_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        for actor, fp in _attributed_fingerprints(bundle, res):
            attribution.add_actor(con, actor, f"attributed by partner {partner}")
            con.execute(
                "DELETE FROM intel_actor_fingerprints WHERE source = ? AND campaign_id = ?",
                [f"partner:{partner}", fp.campaign_id],
            )
            attribution.add_fingerprints(con, actor, [fp], f"partner:{partner}")
            res.actors[actor] += 1
        con.execute(
            "INSERT INTO intel_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                partner,
                str(path)[:500],
                getattr(bundle, "id", None),
                now,
                res.objects,
                res.indicators,
                len(rows),
                json.dumps(dict(res.skipped)),
            ],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    res.stored = len(rows)
    return res
