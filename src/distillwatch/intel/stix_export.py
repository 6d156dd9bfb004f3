"""STIX 2.1 export of campaigns, built with the `stix2` library.

One bundle holds: the producer Identity; the TLP 2.0 marking (FIRST TLP 2.0 as
the OASIS common marking-definition objects, default TLP:AMBER); the
distillwatch property-extension definition; one Attack-Pattern (capability
extraction by distillation, with MITRE ATLAS references); and per campaign a
Campaign, an Infrastructure, Indicators (network prefixes, ASNs, e-mail domain
patterns, prompt-template hashes), Relationships, Sightings with counts and
first/last seen, and an Intrusion-Set when the campaign is attributed.

Object ids are deterministic (UUIDv5 of the producer and what the object
describes), so exporting the same campaign again updates the partner's copy
instead of duplicating it.

Privacy: no account ids, e-mail addresses, user agents or prompt text leave
unless `include_raw=True` (then account ids and the bounded sample prompts go
in the distillwatch extension of the Campaign).
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import stix2

from distillwatch import __version__
from distillwatch.campaigns.model import Campaign, Indicator, read_campaigns
from distillwatch.intel.fingerprint import COMMON_MAIL, Fingerprint

# FIRST TLP 2.0 as published by OASIS (cti-stix-common-objects, extension-definition-specifications/tlp-2.0).
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATOR = "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP_LEVELS = tuple(TLP2_IDS)

# The distillwatch property extension: campaign figures, the fingerprint and the
# template-hash algorithm.  Its id is fixed so every producer's bundles share it.
DW_EXTENSION_ID = "extension-definition--3f0b5c8e-5d2a-5b6e-9d43-6c1f1e0a7d21"
DW_EXTENSION_SCHEMA = "https://github.com/distillwatch/distillwatch/blob/main/docs/intel.md#stix-extension"
TEMPLATE_OBJECT = "x-distillwatch-prompt-template"
TEMPLATE_ALGORITHM = "distillwatch-template-v1"

NS = uuid.UUID("6b0f0d8e-2a57-4d1c-8f59-0d1f6c3a9e11")

ATLAS = [
    ("AML.T0024.002", "Extract AI Model", "https://atlas.mitre.org/techniques/AML.T0024.002"),
    ("AML.T0024", "Exfiltration via AI Inference API", "https://atlas.mitre.org/techniques/AML.T0024"),
    ("AML.T0040", "AI Model Inference API Access", "https://atlas.mitre.org/techniques/AML.T0040"),
    ("AML.T0005", "Create Proxy AI Model", "https://atlas.mitre.org/techniques/AML.T0005"),
]

MAX_INDICATORS_PER_KIND = 500
# An indicator is shared only if at least this share of the accounts carrying it are the campaign's.
MIN_SPECIFICITY = 0.9
# ...and only if several of the campaign's accounts carry it: a value one member
# carries says little about the operation (and may be a wrongly included customer's).
MIN_CARRIERS = 2
STIX_MAX_COUNT = 999_999_999
# stix2 holds a whole bundle in memory as Python objects (~10 KB each): refuse what would not fit.
MAX_BUNDLE_BYTES = 200_000_000
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_HASH = re.compile(r"^[0-9A-Za-z_-]{1,128}$")


def stix_id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(NS, '|'.join((kind, *parts)))}"


def quote(value: str) -> str:
    """A STIX pattern string literal: backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class PatternSpec:
    pattern: str
    kind: str
    value: str
    weak: bool  # an ASN or e-mail domain alone also covers honest users


def indicator_pattern(ind: Indicator) -> PatternSpec | None:
    """The STIX pattern for one campaign indicator, or None when it is not shareable or not valid."""
    value = ind.value.strip()
    try:
        if ind.type in ("ipv4-prefix", "ipv6-prefix", "ip"):
            net = ipaddress.ip_network(value, strict=False)
            obj = "ipv4-addr" if net.version == 4 else "ipv6-addr"
            kind = "ipv4-prefix" if net.version == 4 else "ipv6-prefix"
            if net.num_addresses == 1:
                return PatternSpec(
                    f"[{obj}:value = {quote(str(net.network_address))}]", kind, str(net), False
                )
            return PatternSpec(f"[{obj}:value ISSUBSET {quote(str(net))}]", kind, str(net), False)
        if ind.type == "asn":
            number = int(value.upper().removeprefix("AS"))
            if not 0 < number < 2**32:
                return None
            return PatternSpec(f"[autonomous-system:number = {number}]", "asn", str(number), True)
    except ValueError:
        return None
    if ind.type == "email-domain":
        domain = value.lower().rsplit("@", 1)[-1]
        if not _DOMAIN.match(domain) or domain in COMMON_MAIL:
            return None
        regex = "@" + re.escape(domain) + "$"
        return PatternSpec(f"[email-addr:value MATCHES {quote(regex)}]", "email-domain", domain, True)
    if ind.type == "template-hash" and _HASH.match(value):
        return PatternSpec(f"[{TEMPLATE_OBJECT}:hash = {quote(value)}]", "template-hash", value, False)
    return None  # user agents and anything unknown stay home


def tlp_marking(level: str) -> stix2.MarkingDefinition:
    if level not in TLP2_IDS:
        raise ValueError(f"TLP level must be one of {', '.join(TLP_LEVELS)}, not {level!r}")
    return stix2.MarkingDefinition(
        id=TLP2_IDS[level],
        created=TLP2_CREATED,
        name=f"TLP:{level.upper()}",
        extensions={TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level}},
    )


def _tlp_extension_definition() -> stix2.ExtensionDefinition:
    return stix2.ExtensionDefinition(
        id=TLP2_EXTENSION_ID,
        created_by_ref=TLP2_CREATOR,
        created=TLP2_CREATED,
        modified=TLP2_CREATED,
        name="TLP 2.0",
        description="This defines TLP 2.0 as a STIX extension",
        schema="https://github.com/oasis-open/cti-stix-common-objects/tree/main/extension-definition-specifications/tlp-2.0",
        version="1.0.0",
        extension_types=["property-extension"],
    )


@dataclass
class ExportResult:
    bundle: stix2.Bundle
    campaigns: int = 0
    indicators: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def build_bundle(
    campaigns: list[Campaign],
    fingerprints: dict[str, Fingerprint] | None = None,
    tlp: str = "amber",
    include_raw: bool = False,
    account_ids: dict[str, list[str]] | None = None,
    producer: str = "distillwatch",
    now: datetime | None = None,
    specificity: dict[tuple[str, str, str], tuple[int, int]] | None = None,
    min_specificity: float = MIN_SPECIFICITY,
) -> ExportResult:
    """A STIX 2.1 bundle describing `campaigns` (see the module docstring).

    `specificity` maps (campaign_id, indicator type, value) to (accounts of the
    campaign, accounts in no campaign) carrying it; an indicator whose share of
    campaign accounts is below `min_specificity` is left out (honest customers carry it).
    """
    now = now or datetime.now(UTC)
    marking = tlp_marking(tlp)
    marks = [marking.id]
    identity = stix2.Identity(
        id=stix_id("identity", producer),
        name=producer,
        identity_class="organization",
        description=f"Producer of this bundle (distillwatch {__version__}).",
        created=now,
        modified=now,
    )
    common = {"created_by_ref": identity.id, "object_marking_refs": marks, "created": now, "modified": now}
    extension = stix2.ExtensionDefinition(
        id=DW_EXTENSION_ID,
        created_by_ref=identity.id,
        created=now,
        modified=now,
        name="distillwatch campaign fingerprint",
        description=(
            "Properties added by distillwatch: on Campaign, figures (accounts, exchanges, days, rates, capability "
            "shares) and the shareable fingerprint (template hashes, MinHash sketch, prefixes, ASNs, registration "
            f"and timing profiles; never raw text); on Indicator, the algorithm of `{TEMPLATE_OBJECT}:hash`."
        ),
        schema=DW_EXTENSION_SCHEMA,
        version="1.0.0",
        extension_types=["property-extension"],
        object_marking_refs=marks,
    )
    attack = stix2.AttackPattern(
        id=stix_id("attack-pattern", "distillation"),
        name="Model capability extraction by distillation",
        description=(
            "Many accounts, often behind proxy networks, send a model a systematic stream of prompts targeting chosen "
            "capabilities and keep the answers as training data for a rival model."
        ),
        external_references=[
            {"source_name": "mitre-atlas", "external_id": i, "description": n, "url": u} for i, n, u in ATLAS
        ],
        kill_chain_phases=[{"kill_chain_name": "mitre-atlas", "phase_name": "exfiltration"}],
        **common,
    )
    objects: list = [marking, _tlp_extension_definition(), identity, extension, attack]
    result = ExportResult(bundle=None)  # type: ignore[arg-type]
    ctx = _Ctx(attack, identity, common, include_raw, result, specificity or {}, min_specificity)
    for c in campaigns:
        fp = (fingerprints or {}).get(c.campaign_id)
        objects.extend(_campaign_objects(c, fp, (account_ids or {}).get(c.campaign_id, []), ctx))
        result.campaigns += 1
    result.bundle = stix2.Bundle(objects=objects)
    return result


@dataclass
class _Ctx:
    attack: stix2.AttackPattern
    identity: stix2.Identity
    common: dict
    include_raw: bool
    result: ExportResult
    specificity: dict[tuple[str, str, str], tuple[int, int]]
    min_specificity: float


def _campaign_objects(c: Campaign, fp: Fingerprint | None, account_ids: list[str], ctx: _Ctx) -> list:
    attack, identity, common, include_raw, result = (
        ctx.attack,
        ctx.identity,
        ctx.common,
        ctx.include_raw,
        ctx.result,
    )
    producer = identity.name
    ext_props: dict = {
        "extension_type": "property-extension",
        "campaign_id": c.campaign_id,
        "accounts": c.accounts,
        "exchanges": c.exchanges,
        "days": c.days,
        "exchanges_per_account": round(c.exchanges_per_account, 3),
        "exchanges_per_account_per_day": round(c.exchanges_per_account_per_day, 3),
        "capabilities": {k: round(v, 4) for k, v in c.capabilities.items()},
        "cot_share": round(c.cot_share, 4),
    }
    if fp is not None:
        ext_props["fingerprint"] = fp.model_dump(mode="json", exclude={"campaign_id"})
    if include_raw:
        ext_props["account_ids"] = account_ids
        ext_props["sample_prompts"] = [p[:500] for p in c.sample_prompts]
    campaign = stix2.Campaign(
        id=stix_id("campaign", producer, c.campaign_id),
        name=f"Distillation campaign {c.campaign_id}",
        description=(
            f"{c.accounts:,} accounts, {c.exchanges:,} exchanges over {c.days} days "
            f"({c.exchanges_per_account_per_day:.1f} per account-day). Top capabilities: "
            + ", ".join(f"{k} {v:.0%}" for k, v in sorted(c.capabilities.items(), key=lambda kv: -kv[1])[:3])
            + (f". {c.history.summary}" if c.history else "")
        ),
        first_seen=c.first_seen,
        last_seen=c.last_seen,
        objective="Harvest the model's answers to train a rival model (distillation).",
        confidence=round(c.confidence * 100),
        extensions={DW_EXTENSION_ID: ext_props},
        **common,
    )
    infra = c.infrastructure
    infrastructure = stix2.Infrastructure(
        id=stix_id("infrastructure", producer, c.campaign_id),
        name=f"Egress network of campaign {c.campaign_id}",
        infrastructure_types=["anonymization"]
        if (infra.datacenter_share + infra.vpn_share + infra.tor_share) > 0.3
        else ["unknown"],
        description=(
            f"{infra.addresses:,} addresses in {infra.prefixes:,} prefixes and {infra.asns:,} autonomous systems; "
            f"datacenter {infra.datacenter_share:.0%}, VPN {infra.vpn_share:.0%}, Tor {infra.tor_share:.0%}."
        ),
        first_seen=c.first_seen,
        last_seen=c.last_seen,
        **common,
    )
    rel = _relationships(producer, common)
    out = [campaign, infrastructure, rel(campaign, "uses", attack), rel(campaign, "uses", infrastructure)]
    out.append(
        stix2.Sighting(
            id=stix_id("sighting", producer, c.campaign_id, "campaign"),
            sighting_of_ref=campaign.id,
            count=min(c.exchanges, STIX_MAX_COUNT),
            first_seen=c.first_seen,
            last_seen=c.last_seen,
            where_sighted_refs=[identity.id],
            description=f"{c.exchanges:,} exchanges from {c.accounts:,} accounts.",
            **common,
        )
    )
    per_kind: dict[str, int] = {}
    seen: set[str] = set()
    for ind in sorted(c.indicators, key=lambda i: -i.count):
        spec = indicator_pattern(ind)
        if spec is None:
            result.skipped[ind.type] = result.skipped.get(ind.type, 0) + 1
            continue
        if spec.pattern in seen or per_kind.get(spec.kind, 0) >= MAX_INDICATORS_PER_KIND:
            continue
        inside, outside = ctx.specificity.get((c.campaign_id, ind.type, ind.value), (None, None))
        reason = None
        if inside is not None and inside < MIN_CARRIERS:
            reason = f"{ind.type} carried by fewer than {MIN_CARRIERS} of the campaign's accounts"
        elif inside is not None and outside and inside / (inside + outside) < ctx.min_specificity:
            reason = f"{ind.type} also carried by accounts outside any campaign"
        if reason:
            result.skipped[reason] = result.skipped.get(reason, 0) + 1
            continue
        seen_on = f" Seen on {inside:,} of its accounts and {outside:,} others." if inside is not None else ""
        seen.add(spec.pattern)
        per_kind[spec.kind] = per_kind.get(spec.kind, 0) + 1
        first = ind.first_seen or c.first_seen
        last = max(ind.last_seen or c.last_seen, first)
        extra = {}
        if spec.kind == "template-hash":
            extra["extensions"] = {
                DW_EXTENSION_ID: {
                    "extension_type": "property-extension",
                    "template_algorithm": TEMPLATE_ALGORITHM,
                }
            }
        indicator = stix2.Indicator(
            id=stix_id("indicator", producer, c.campaign_id, spec.pattern),
            name=f"{spec.kind} {spec.value} (campaign {c.campaign_id})",
            description=(
                "Weak alone: honest users share it; combine with other evidence."
                if spec.weak
                else f"Used by distillation campaign {c.campaign_id}."
            )
            + seen_on,
            indicator_types=["anomalous-activity" if spec.weak else "malicious-activity"],
            pattern=spec.pattern,
            pattern_type="stix",
            pattern_version="2.1",
            valid_from=first,
            confidence=round(c.confidence * (50 if spec.weak else 100)),
            **extra,
            **common,
        )
        out.append(indicator)
        out.append(rel(indicator, "indicates", campaign))
        if spec.kind in ("ipv4-prefix", "ipv6-prefix", "asn"):
            out.append(rel(indicator, "indicates", infrastructure))
        out.append(
            stix2.Sighting(
                id=stix_id("sighting", producer, c.campaign_id, spec.pattern),
                sighting_of_ref=indicator.id,
                count=min(max(ind.count, 1), STIX_MAX_COUNT),
                first_seen=first,
                last_seen=last,
                where_sighted_refs=[identity.id],
                **common,
            )
        )
        result.indicators += 1
    attr = c.attribution
    if attr is not None and attr.actor:
        intrusion = stix2.IntrusionSet(
            id=stix_id("intrusion-set", producer, attr.actor),
            name=attr.actor,
            description="Actor an analyst of the producer tracks; see the attributed-to relationship's confidence.",
            **common,
        )
        out.append(intrusion)
        out.append(
            rel(
                campaign,
                "attributed-to",
                intrusion,
                confidence=round(attr.confidence * 100),
                description=attr.explanation[:1000],
            )
        )
    return out


def _relationships(producer: str, common: dict):
    def rel(src, kind: str, dst, **kw) -> stix2.Relationship:
        return stix2.Relationship(
            id=stix_id("relationship", producer, src.id, kind, dst.id),
            source_ref=src.id,
            relationship_type=kind,
            target_ref=dst.id,
            **kw,
            **common,
        )

    return rel


def export_results(
    results_dir: str | Path,
    out: str | Path,
    campaign_id: str | None = None,
    tlp: str = "amber",
    include_raw: bool = False,
    producer: str = "distillwatch",
    now: datetime | None = None,
    min_specificity: float = MIN_SPECIFICITY,
) -> ExportResult:
    """Read a results directory and write a STIX 2.1 bundle to `out`."""
    from distillwatch.intel.track import INDICATORS_FILE, read_fingerprints

    results_dir = Path(results_dir)
    path = results_dir / "campaigns.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no campaigns.json (is {results_dir} a `distillwatch scan --out` directory?)"
        )
    campaigns = read_campaigns(path)
    if campaign_id is not None:
        campaigns = [c for c in campaigns if c.campaign_id == campaign_id]
        if not campaigns:
            raise KeyError(f"{path}: no campaign {campaign_id[:100]!r}")
    account_ids: dict[str, list[str]] = {}
    if include_raw and (results_dir / "accounts.parquet").exists():
        t = pq.read_table(results_dir / "accounts.parquet", columns=["account_id", "campaign_id"])
        wanted = {c.campaign_id for c in campaigns}
        t = t.filter(pc.is_in(t["campaign_id"], value_set=pa.array(sorted(wanted), pa.string())))
        grouped = t.group_by("campaign_id").aggregate([("account_id", "list")])
        account_ids = dict(
            zip(grouped["campaign_id"].to_pylist(), grouped["account_id_list"].to_pylist(), strict=True)
        )
    specificity = {}
    if (results_dir / INDICATORS_FILE).exists():
        # Values the scan's tables show two or more of a campaign's accounts carry (bounded per kind at
        # export): the campaign record lists only its top values.
        rows = pq.read_table(results_dir / INDICATORS_FILE).to_pylist()
        specificity = {
            (r["campaign_id"], r["type"], r["value"]): (r["campaign_accounts"], r["other_accounts"])
            for r in rows
        }
        extra: dict[str, list[Indicator]] = {}
        for r in rows:
            ind = Indicator(
                type=r["type"],
                value=r["value"],
                count=r["count"],
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
            )
            extra.setdefault(r["campaign_id"], []).append(ind)
        campaigns = [_with_indicators(c, extra.get(c.campaign_id, [])) for c in campaigns]
    result = build_bundle(
        campaigns,
        read_fingerprints(results_dir),
        tlp,
        include_raw,
        account_ids,
        producer,
        now,
        specificity,
        min_specificity,
    )
    # stix2's pretty printer looks objects up in the bundle for each reference: quadratic on large
    # bundles.  Its plain serialisation is linear; indent it with json instead.
    Path(out).write_text(json.dumps(json.loads(result.bundle.serialize()), indent=1), encoding="utf-8")
    return result


def _with_indicators(c: Campaign, more: list[Indicator]) -> Campaign:
    """The campaign with `more` indicators added (the record's own entry wins for a value listed twice)."""
    have = {(i.type, i.value) for i in c.indicators}
    return c.model_copy(
        update={"indicators": c.indicators + [i for i in more if (i.type, i.value) not in have]}
    )


def load_bundle(path: str | Path) -> stix2.Bundle:
    """Parse a bundle file with stix2 (custom content allowed: partners add their own)."""
    size = Path(path).stat().st_size
    if size > MAX_BUNDLE_BYTES:
        raise ValueError(
            f"{path}: {size:,} bytes, more than the {MAX_BUNDLE_BYTES:,} a bundle may have; split it"
        )
    text = Path(path).read_text(encoding="utf-8")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    return stix2.parse(text, allow_custom=True)
