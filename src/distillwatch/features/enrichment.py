"""The bridge between detection and ``distillwatch.enrich`` (per-address and per-text facts).

Detection calls enrichment only on *distinct* values (addresses, prompts,
system prompts) and on a bounded sample of prompts per account, then joins the
facts back in the engine: logs have far fewer distinct values than rows.

When the enrichment package is not importable (a partial install), the facts
degrade to what can be derived without it (address prefixes; an exact,
lower-cased template key) and the content signals report "no data" rather than
guessing.  ``available()`` says which case a run was in; run.json records it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

IP_FACTS_SCHEMA = pa.schema(
    [
        ("ip", pa.string()),
        ("prefix", pa.string()),
        ("is_datacenter", pa.bool_()),
        ("is_vpn", pa.bool_()),
        ("is_tor", pa.bool_()),
        ("provider", pa.string()),
    ]
)


def available() -> dict[str, bool]:
    """Which enrichment modules this installation has."""
    out: dict[str, bool] = {}
    for name in ("capability", "cot", "templates", "network", "email"):
        try:
            __import__(f"distillwatch.enrich.{name}")
            out[name] = True
        except ImportError:
            out[name] = False
    return out


@dataclass
class Lists:
    """User-supplied reputation lists (CIDR files, a MaxMind database, disposable domains)."""

    network_paths: list[Path] = field(default_factory=list)
    mmdb: Path | None = None
    email_paths: list[Path] = field(default_factory=list)
    use_defaults: bool = True


def _prefix_fallback(ips: pa.Array) -> pa.Array:
    # Only over distinct addresses, so a Python pass is bounded by the address count.
    out: list[str | None] = []
    for raw in ips.to_pylist():
        try:
            addr = ipaddress.ip_address(raw)
        except (ValueError, TypeError):
            out.append(None)
            continue
        bits = 24 if addr.version == 4 else 48
        out.append(str(ipaddress.ip_network(f"{addr}/{bits}", strict=False)))
    return pa.array(out, pa.string())


def ip_facts(ips: pa.Array, lists: Lists | None = None) -> pa.Table:
    """Prefix and datacenter/VPN/Tor flags for each distinct address."""
    lists = lists or Lists()
    try:
        from distillwatch.enrich import network
    except ImportError:
        network = None
    if network is not None:
        nl = network.NetworkLists.load(
            extra_paths=list(lists.network_paths) or None, mmdb=lists.mmdb, use_defaults=lists.use_defaults
        )
        table = nl.classify(ips)
        cols = {name: table.column(name) for name in IP_FACTS_SCHEMA.names if name in table.column_names}
        n = len(ips)
        for f in IP_FACTS_SCHEMA:
            if f.name not in cols:
                cols[f.name] = pa.nulls(n, f.type)
        return pa.table([cols[f.name].cast(f.type) for f in IP_FACTS_SCHEMA], schema=IP_FACTS_SCHEMA)
    n = len(ips)
    false = pa.array(np.zeros(n, dtype=bool))
    return pa.table(
        [ips.cast(pa.string()), _prefix_fallback(ips), false, false, false, pa.nulls(n, pa.string())],
        schema=IP_FACTS_SCHEMA,
    )


def _md5(texts: pa.Array) -> pa.Array:
    import duckdb

    con = duckdb.connect()
    try:
        con.register("texts", pa.table({"t": texts}))
        return con.sql("SELECT md5(t) FROM texts").to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()


def normalized_prompts(prompts: pa.Array) -> pa.Array | None:
    """The prompts' template strings (``templates.normalize``), or None without the templates module.

    Both the template hash and the MinHash bands are computed from them: a caller that needs both
    normalises once and passes the result to ``prompt_facts`` and ``prompt_band_keys``.
    """
    try:
        from distillwatch.enrich import templates
    except ImportError:
        return None
    return templates.normalize(prompts)


def prompt_facts(prompts: pa.Array, normalized: pa.Array | None = None) -> pa.Table:
    """Capability, chain-of-thought elicitation and template hash of each distinct prompt.

    ``normalized``: ``normalized_prompts(prompts)`` when the caller has it already.
    """
    n = len(prompts)
    try:
        from distillwatch.enrich import capability, cot, templates
    except ImportError:
        capability = cot = templates = None
    if capability is not None and cot is not None and templates is not None:
        cap = capability.classify(prompts)
        elicits = cot.elicits_cot(prompts)
        th = templates.template_hash(
            prompts if normalized is None else normalized, normalized=normalized is not None
        )
    else:
        cap = pa.nulls(n, pa.string())
        elicits = pa.nulls(n, pa.bool_())
        # Without the normaliser only exact (case- and space-folded) repeats are recognised.
        folded = pc.utf8_lower(pc.utf8_trim_whitespace(prompts))
        th = _md5(folded)
    return pa.table(
        {
            "prompt": prompts,
            "capability": cap.cast(pa.string()),
            "cot": elicits.cast(pa.bool_()),
            "template_hash": th.cast(pa.string()),
        }
    )


def system_cot(systems: pa.Array) -> pa.Array:
    """Whether each distinct system prompt asks for the model's reasoning (null without enrich)."""
    try:
        from distillwatch.enrich import cot
    except ImportError:
        return pa.nulls(len(systems), pa.bool_())
    return cot.elicits_cot(systems).cast(pa.bool_())


BAND_SLICE_ROWS = 100_000


def prompt_band_keys(
    prompts: pa.Array, num_perm: int = 64, bands: int = 16, normalized: pa.Array | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """LSH band keys of each prompt's MinHash: (row index, band key) pairs.

    Two prompts sharing a band key are near-duplicates with high probability
    (Jaccard of word shingles around (1/bands)^(bands/num_perm) and above).
    Empty when the templates module is missing.  ``normalized``: ``normalized_prompts(prompts)``
    when the caller has it already (the signatures are of the normalised texts either way).
    """
    try:
        from distillwatch.enrich import templates
    except ImportError:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(prompts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # A slice at a time: the signatures and their temporaries are several times num_perm x 8 bytes a prompt.
    texts = prompts if normalized is None else normalized
    parts = []
    for start in range(0, len(texts), BAND_SLICE_ROWS):
        piece = texts.slice(start, BAND_SLICE_ROWS)
        sigs = templates.minhash(piece, num_perm=num_perm, normalized=normalized is not None)
        part = np.asarray(templates.lsh_bands(sigs, bands, num_perm // bands))
        parts.append(part.reshape(len(piece), -1) if part.ndim == 1 else part)
    keys = np.concatenate(parts)
    rows = np.repeat(np.arange(len(prompts), dtype=np.int64), keys.shape[1])
    # Band index is mixed in so band 1 of one prompt never matches band 2 of another.
    band_idx = np.tile(np.arange(keys.shape[1], dtype=np.uint64), len(prompts))
    flat = keys.reshape(-1).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + band_idx
    return rows, flat.view(np.int64)


def email_facts(emails: pa.Array, lists: Lists | None = None) -> pa.Table:
    """E-mail domain, disposable flag and local-part shape for each account e-mail."""
    lists = lists or Lists()
    n = len(emails)
    try:
        from distillwatch.enrich import email as email_mod
    except ImportError:
        email_mod = None
    if email_mod is not None:
        el = email_mod.EmailLists.load(
            extra_paths=list(lists.email_paths) or None, use_defaults=lists.use_defaults
        )
        domain = el.domain(emails)
        disposable = el.is_disposable(emails)
        pattern = email_mod.local_part_pattern(emails)
    else:
        lowered = pc.utf8_lower(emails)
        domain = pc.if_else(
            pc.match_substring(lowered, "@"),
            pc.extract_regex(lowered, r"@(?P<d>[^@]*)$").field("d"),
            lowered,
        )
        disposable = pa.nulls(n, pa.bool_())
        pattern = pa.nulls(n, pa.string())
    return pa.table(
        {
            "email_domain": domain.cast(pa.string()),
            "email_disposable": disposable.cast(pa.bool_()),
            "email_pattern": pattern.cast(pa.string()),
        }
    )
