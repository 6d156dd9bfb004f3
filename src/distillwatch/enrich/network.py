"""Facts about client addresses: /24 or /48 prefix, datacenter, VPN, Tor, provider.

Lists are CIDR files (one CIDR, single address or ``start-end`` range per
line, ``#`` comments, an optional provider name after the address).  A file
says what it lists with a ``# category: datacenter|vpn|tor`` line, or by one
of those words in its file name.  Defaults shipped in ``enrich/data/`` come
from MIT/CC0 sources only (see ``data/SOURCES.md``); there is deliberately no
default Tor list (the public ones carry no licence), so Tor detection needs a
list the user supplies.

Lookups are vectorised: IPv4 addresses become integers (Arrow regex
extraction) and are located with ``np.searchsorted`` over a partition of the
address space into segments, each carrying a flag bitmask and a provider.
IPv6 addresses are parsed per distinct value (``socket.inet_pton``) and
searched as 16-byte big-endian keys.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.enrich._text import as_strings, file_stamps

DATA_DIR = Path(__file__).parent / "data"
CATEGORIES = ("datacenter", "vpn", "tor")
_BIT = {"datacenter": 1, "vpn": 2, "tor": 4}

# Default files: (file name, category).  The ASN lists serve `classify_asn`
# and the ASN a MaxMind database reports.
DEFAULT_CIDR_FILES = (
    "x4bnet_datacenter.txt.gz",
    "x4bnet_vpn.txt.gz",
    "ipranges_providers.txt.gz",
    "ipranges_vpn.txt.gz",
    "ipcat_datacenter.txt.gz",
)
DEFAULT_ASN_FILES = ("x4bnet_datacenter_asn.txt.gz", "x4bnet_vpn_asn.txt.gz")

_V4_RE = r"^(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})$"
_CATEGORY_LINE = re.compile(r"^#\s*category\s*:\s*(\w+)", re.IGNORECASE)
_MAX_SHOWN = 80  # characters of a bad line quoted in an error message


class ListFormatError(ValueError):
    """A list file has a line that is not an address, CIDR or range."""


def _open_text(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read().splitlines()


def _category_of(path: Path, lines: list[str]) -> str:
    for line in lines[:20]:
        m = _CATEGORY_LINE.match(line.strip())
        if m:
            cat = m.group(1).lower()
            if cat not in _BIT:
                raise ListFormatError(f"{path}: unknown category {cat!r}; use one of {', '.join(CATEGORIES)}")
            return cat
    name = path.name.lower()
    for cat, words in (("tor", ("tor",)), ("vpn", ("vpn", "proxy", "relay")), ("datacenter", ("datacenter", "hosting", "cloud", "dc"))):
        if any(re.search(rf"(^|[^a-z]){w}([^a-z]|$)", name) for w in words):
            return cat
    raise ListFormatError(
        f"{path}: cannot tell what this list holds; add a line '# category: datacenter' (or vpn, tor) "
        "or put one of those words in the file name"
    )


def _v4_ints(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Dotted-quad strings -> (uint64 value, valid mask).  Vectorised."""
    parts = pc.extract_regex(strings, _V4_RE)
    valid = np.asarray(pc.is_valid(parts).to_numpy(zero_copy_only=False), dtype=bool)
    value = np.zeros(len(strings), dtype=np.uint64)
    if not valid.any():
        return value, valid
    ok = True
    for name, shift in (("a", 24), ("b", 16), ("c", 8), ("d", 0)):
        col = pc.struct_field(parts, name)
        octet = np.asarray(pc.cast(pc.if_else(pc.is_valid(parts), col, "0"), pa.int64()).to_numpy(), dtype=np.int64)
        ok = ok & (octet <= 255)
        value |= octet.astype(np.uint64) << np.uint64(shift)
    valid &= ok
    value[~valid] = 0
    return value, valid


@dataclass
class _Ranges:
    """Inclusive address ranges gathered from list files, before partitioning."""

    v4: list[tuple[int, int, int, int]] = field(default_factory=list)  # start, end, bit, provider id
    v6: list[tuple[int, int, int, int]] = field(default_factory=list)


def _parse_list(path: Path, lines: list[str], bit: int, providers: dict[str, int], into: _Ranges) -> None:
    """Parse one CIDR list.  IPv4 CIDRs (the bulk) are parsed vectorised; the rest via ipaddress."""
    addr_col: list[str] = []
    prov_col: list[str | None] = []
    line_no: list[int] = []
    for i, raw in enumerate(lines, 1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        # "CIDR provider name" or "CIDR,provider name"
        tokens = re.split(r"[,\s]+", body, maxsplit=1)
        addr_col.append(tokens[0])
        prov_col.append(tokens[1].strip() if len(tokens) > 1 and tokens[1].strip() else None)
        line_no.append(i)
    if not addr_col:
        return
    arr = pa.array(addr_col, pa.string())
    cidr = pc.extract_regex(arr, r"^(?P<ip>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:/(?P<len>\d{1,2}))?$")
    is_v4 = np.asarray(pc.is_valid(cidr).to_numpy(zero_copy_only=False), dtype=bool)
    ips = pc.struct_field(cidr, "ip")
    start, ok = _v4_ints(pc.if_else(pc.is_valid(cidr), ips, "0.0.0.0"))
    plen_s = pc.if_else(pc.equal(pc.struct_field(cidr, "len"), ""), "32", pc.struct_field(cidr, "len"))
    plen = np.asarray(pc.cast(pc.fill_null(plen_s, "32"), pa.int64()).to_numpy(), dtype=np.int64)
    bad_v4 = is_v4 & (~ok | (plen > 32))
    if bad_v4.any():
        j = int(np.flatnonzero(bad_v4)[0])
        raise ListFormatError(f"{path}, line {line_no[j]}: not a valid IPv4 CIDR: {addr_col[j][:_MAX_SHOWN]!r}")
    host_bits = (np.uint64(1) << (np.uint64(32) - plen.astype(np.uint64))) - np.uint64(1)
    start = start & ~host_bits  # lists often write "1.2.3.4/24"; treat it as its network
    end = start | host_bits
    pid = [providers.setdefault(p, len(providers)) if p else -1 for p in prov_col]
    for j in np.flatnonzero(is_v4):
        into.v4.append((int(start[j]), int(end[j]), bit, pid[j]))
    for j in np.flatnonzero(~is_v4):
        text = addr_col[j]
        try:
            if "-" in text:
                lo_s, hi_s = text.split("-", 1)
                lo, hi = ipaddress.ip_address(lo_s.strip()), ipaddress.ip_address(hi_s.strip())
                if lo.version != hi.version or int(hi) < int(lo):
                    raise ValueError("bad range")
                rng = (lo.version, int(lo), int(hi))
            else:
                net = ipaddress.ip_network(text, strict=False)
                rng = (net.version, int(net.network_address), int(net.broadcast_address))
        except ValueError:
            raise ListFormatError(
                f"{path}, line {line_no[j]}: not an address, CIDR or range: {text[:_MAX_SHOWN]!r}"
            ) from None
        target = into.v4 if rng[0] == 4 else into.v6
        target.append((rng[1], rng[2], bit, pid[j]))


class _SegmentTable:
    """A partition of one address family into segments with a flag mask and a provider.

    ``bounds[i]`` starts segment i, which ends before ``bounds[i+1]``.  Where
    provider ranges overlap the narrowest wins (a cloud region inside a big
    hosting block names the more specific provider).
    """

    def __init__(self, ranges: list[tuple[int, int, int, int]], width: int):
        self.width = width
        top = (1 << width) - 1
        if not ranges:
            self.bounds = self._keys([0])
            self.flags = np.zeros(1, dtype=np.uint8)
            self.provider = np.full(1, -1, dtype=np.int32)
            return
        cut = {0}
        for s, e, _, _ in ranges:
            cut.add(s)
            if e < top:
                cut.add(e + 1)
        points = sorted(cut)
        self.bounds = self._keys(points)
        n = len(points)
        starts = self._keys([r[0] for r in ranges])
        ends1 = self._keys([r[1] + 1 if r[1] < top else 0 for r in ranges])
        si = np.searchsorted(self.bounds, starts)
        ei = np.where(np.array([r[1] >= top for r in ranges]), n, np.searchsorted(self.bounds, ends1))
        bits = np.array([r[2] for r in ranges], dtype=np.uint8)
        flags = np.zeros(n, dtype=np.uint8)
        for bit in (1, 2, 4):
            sel = bits == bit
            if not sel.any():
                continue
            # difference array: +1 where a range starts, -1 after it ends
            diff = np.zeros(n + 1, dtype=np.int64)
            np.add.at(diff, si[sel], 1)
            np.add.at(diff, ei[sel], -1)
            flags[np.cumsum(diff[:n]) > 0] |= bit
        self.flags = flags
        self.provider = np.full(n, -1, dtype=np.int32)
        pids = np.array([r[3] for r in ranges], dtype=np.int64)
        has = np.flatnonzero(pids >= 0)
        # paint widest first so narrower ranges overwrite them
        sizes = np.array([ranges[k][1] - ranges[k][0] for k in has], dtype=np.float64)
        for k in has[np.argsort(-sizes, kind="stable")]:
            self.provider[si[k] : ei[k]] = pids[k]

    def _keys(self, values: list[int]) -> np.ndarray:
        if self.width == 32:
            return np.array(values, dtype=np.uint64)
        # 16-byte big-endian keys sort like the 128-bit numbers they encode
        return np.array([v.to_bytes(16, "big") for v in values], dtype="S16")

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seg = np.searchsorted(self.bounds, keys, side="right") - 1
        seg = np.clip(seg, 0, None)
        return self.flags[seg], self.provider[seg]


@dataclass
class NetworkLists:
    """Loaded address lists, ready to classify arrays of addresses."""

    v4: _SegmentTable
    v6: _SegmentTable
    provider_names: list[str]
    asn_flags: dict[int, int]
    asn_provider: dict[int, str]
    sources: list[str]
    has_tor_list: bool
    mmdb: Any = None  # a maxminddb.Reader when given

    @classmethod
    def load(
        cls,
        extra_paths: list[Path] | None = None,
        mmdb: Path | None = None,
        use_defaults: bool = True,
    ) -> NetworkLists:
        """Load the shipped defaults (unless use_defaults=False) plus user CIDR files and an optional .mmdb.

        ASN lists (lines ``AS1234 # provider``) are recognised by their content.
        """
        paths: list[Path] = []
        if use_defaults:
            paths += [DATA_DIR / name for name in DEFAULT_CIDR_FILES + DEFAULT_ASN_FILES]
        paths += [Path(p) for p in (extra_paths or [])]
        mm = Path(mmdb) if mmdb else None
        return _load_cached(file_stamps(paths), file_stamps([mm])[0] if mm else None)

    def classify(self, ips: pa.Array | pa.ChunkedArray) -> pa.Table:
        """One row per input address: ip, version, prefix, is_datacenter, is_vpn, is_tor, provider.

        ``prefix`` is the /24 (IPv4) or /48 (IPv6) network in CIDR text.
        Unparseable addresses give null version, prefix and flags.  With an
        mmdb, also ``asn``, ``as_org`` and ``country``; an ASN on a shipped or
        supplied ASN list also sets ``is_datacenter``/``is_vpn``.  Work is done
        once per distinct address.
        """
        ips = as_strings(ips)
        enc = pc.dictionary_encode(ips)
        uniq = pc.utf8_trim_whitespace(enc.dictionary)
        facts = self._classify_distinct(uniq)
        indices = enc.indices
        cols = {"ip": ips}
        for name in facts.column_names:
            cols[name] = pc.take(facts.column(name), indices)
        return pa.table(cols)

    def _classify_distinct(self, uniq: pa.Array) -> pa.Table:
        n = len(uniq)
        v4_key, is_v4 = _v4_ints(uniq)
        flags = np.zeros(n, dtype=np.uint8)
        prov = np.full(n, -1, dtype=np.int32)
        f4, p4 = self.v4.lookup(v4_key[is_v4])
        flags[is_v4], prov[is_v4] = f4, p4

        # IPv4 prefix text from the integer, vectorised
        a = pc.cast(pa.array((v4_key >> np.uint64(24)) & np.uint64(255)), pa.string())
        b = pc.cast(pa.array((v4_key >> np.uint64(16)) & np.uint64(255)), pa.string())
        c = pc.cast(pa.array((v4_key >> np.uint64(8)) & np.uint64(255)), pa.string())
        prefix4 = pc.binary_join_element_wise(a, b, c, "0/24", ".")

        version = np.where(is_v4, 4, 0).astype(np.int8)
        prefix: list[str | None] = [None] * n
        # Anything with a colon is a candidate IPv6 (few per scan, parsed per distinct value)
        maybe_v6 = np.flatnonzero(~is_v4 & np.asarray(
            pc.fill_null(pc.match_substring(uniq, ":"), False).to_numpy(zero_copy_only=False), dtype=bool))
        v6_rows: list[int] = []
        v6_keys: list[bytes] = []
        mapped_rows: list[int] = []
        mapped_vals: list[int] = []
        texts = uniq.take(pa.array(maybe_v6, pa.int64())).to_pylist() if len(maybe_v6) else []
        for row, text in zip(maybe_v6.tolist(), texts, strict=True):
            try:
                packed = socket.inet_pton(socket.AF_INET6, text)
            except (OSError, ValueError):
                continue
            if packed[:12] == b"\x00" * 10 + b"\xff\xff":  # IPv4-mapped: judge as the IPv4 address
                mapped_rows.append(row)
                mapped_vals.append(int.from_bytes(packed[12:], "big"))
                continue
            v6_rows.append(row)
            v6_keys.append(packed)
            prefix[row] = socket.inet_ntop(socket.AF_INET6, packed[:6] + b"\x00" * 10) + "/48"
        if mapped_rows:
            rows = np.array(mapped_rows)
            keys = np.array(mapped_vals, dtype=np.uint64)
            f, p = self.v4.lookup(keys)
            flags[rows], prov[rows], version[rows] = f, p, 4
            for r, k in zip(mapped_rows, mapped_vals, strict=True):
                prefix[r] = f"{k >> 24}.{(k >> 16) & 255}.{(k >> 8) & 255}.0/24"
        if v6_rows:
            rows = np.array(v6_rows)
            f, p = self.v6.lookup(np.array(v6_keys, dtype="S16"))
            flags[rows], prov[rows], version[rows] = f, p, 6

        prefix_arr = pc.if_else(pa.array(is_v4), prefix4, pa.array(prefix, pa.string()))
        parsed = version > 0
        asn_col = country_col = org_col = None
        fallback_provider: list[str | None] = [None] * n
        if self.mmdb is not None:
            asn_col, org_col, country_col = self._mmdb_facts(uniq, parsed)
            asn_np = np.array([x if x is not None else -1 for x in asn_col], dtype=np.int64)
            flags |= _asn_flag_array(asn_np, self.asn_flags)
            # no CIDR list names the provider: use the ASN list's name, then the AS organisation
            for i in np.flatnonzero(prov < 0):
                named = self.asn_provider.get(int(asn_np[i]))
                fallback_provider[i] = named or org_col[i]

        def flag(bit: int) -> pa.Array:
            return pa.array((flags & bit) > 0, mask=~parsed)

        names_arr = pa.array(self.provider_names + [None], pa.string())
        provider = pc.take(names_arr, pa.array(np.where(prov >= 0, prov, len(self.provider_names))))
        if self.mmdb is not None:
            provider = pc.coalesce(provider, pa.array(fallback_provider, pa.string()))
        cols: dict[str, pa.Array] = {
            "version": pa.array(version, mask=~parsed, type=pa.int8()),
            "prefix": pc.if_else(pa.array(parsed), prefix_arr, pa.scalar(None, pa.string())),
            "is_datacenter": flag(1),
            "is_vpn": flag(2),
            "is_tor": pa.array((flags & 4) > 0, mask=~parsed) if self.has_tor_list else pa.nulls(n, pa.bool_()),
            "provider": provider,
        }
        if self.mmdb is not None:
            cols["asn"] = pa.array(asn_col, pa.int64())
            cols["as_org"] = pa.array(org_col, pa.string())
            cols["country"] = pa.array(country_col, pa.string())
        return pa.table(cols)

    def _mmdb_facts(self, uniq: pa.Array, parsed: np.ndarray) -> tuple[list, list, list]:
        """ASN, AS organisation and country per distinct address from a MaxMind-format database.

        Understands GeoLite2/GeoIP2 (ASN, Country, City) and ipinfo-style layouts.
        """
        asn: list[int | None] = [None] * len(uniq)
        org: list[str | None] = [None] * len(uniq)
        country: list[str | None] = [None] * len(uniq)
        values = uniq.to_pylist()
        for i in np.flatnonzero(parsed):
            try:
                rec = self.mmdb.get(values[i])
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            a = rec.get("autonomous_system_number", rec.get("asn"))
            if isinstance(a, str) and a.upper().startswith("AS") and a[2:].isdigit():
                a = int(a[2:])
            asn[i] = a if isinstance(a, int) else None
            o = rec.get("autonomous_system_organization", rec.get("as_name"))
            org[i] = str(o)[:200] if o else None
            cty = rec.get("country")
            if isinstance(cty, dict):
                cty = cty.get("iso_code")
            country[i] = str(cty)[:2].upper() if cty else None
        return asn, org, country

    def classify_asn(self, asns: pa.Array | pa.ChunkedArray) -> pa.Table:
        """For an array of AS numbers (e.g. the exchanges' ``asn``): asn, is_datacenter, is_vpn, provider."""
        if isinstance(asns, pa.ChunkedArray):
            asns = asns.combine_chunks()
        if not isinstance(asns, pa.Array):
            asns = pa.array(list(asns), pa.int64())
        asns = pc.cast(asns, pa.int64())
        valid = np.asarray(pc.is_valid(asns).to_numpy(zero_copy_only=False), dtype=bool)
        vals = np.asarray(pc.fill_null(asns, -1).to_numpy(), dtype=np.int64)
        f = _asn_flag_array(vals, self.asn_flags)
        known = np.array(sorted(self.asn_provider), dtype=np.int64)
        names = pa.array([self.asn_provider[k] for k in known.tolist()] + [None], pa.string())
        pos = np.searchsorted(known, vals)
        hit = (pos < len(known)) & (known[np.clip(pos, 0, max(len(known) - 1, 0))] == vals) if len(known) else np.zeros(len(vals), bool)
        provider = pc.take(names, pa.array(np.where(hit, pos, len(known))))
        return pa.table({
            "asn": asns,
            "is_datacenter": pa.array((f & 1) > 0, mask=~valid),
            "is_vpn": pa.array((f & 2) > 0, mask=~valid),
            "provider": provider,
        })


def _asn_flag_array(asns: np.ndarray, asn_flags: dict[int, int]) -> np.ndarray:
    if not asn_flags:
        return np.zeros(len(asns), dtype=np.uint8)
    keys = np.array(sorted(asn_flags), dtype=np.int64)
    vals = np.array([asn_flags[k] for k in keys.tolist()], dtype=np.uint8)
    pos = np.clip(np.searchsorted(keys, asns), 0, len(keys) - 1)
    return np.where(keys[pos] == asns, vals[pos], 0).astype(np.uint8)


_ASN_LINE = re.compile(r"^\s*AS(\d+)\b\s*(?:#\s*(.*))?$", re.IGNORECASE)


@lru_cache(maxsize=8)
def _load_cached(stamps: tuple[tuple[Path, int, int], ...], mmdb_stamp: tuple[Path, int, int] | None) -> NetworkLists:
    # keyed by (path, mtime, size) so an edited list is re-read
    paths = [s[0] for s in stamps]
    mmdb = mmdb_stamp[0] if mmdb_stamp else None
    providers: dict[str, int] = {}
    ranges = _Ranges()
    asn_flags: dict[int, int] = {}
    asn_provider: dict[int, str] = {}
    has_tor = False
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"network list not found: {path}")
        lines = _open_text(path)
        cat = _category_of(path, lines)
        has_tor |= cat == "tor"
        body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if body and all(_ASN_LINE.match(ln) for ln in body[:50]):
            for i, ln in enumerate(lines, 1):
                if not ln.strip() or ln.lstrip().startswith("#"):
                    continue
                m = _ASN_LINE.match(ln)
                if not m:
                    raise ListFormatError(f"{path}, line {i}: not an 'AS<number> # provider' line: {ln[:_MAX_SHOWN]!r}")
                a = int(m.group(1))
                asn_flags[a] = asn_flags.get(a, 0) | _BIT[cat]
                if m.group(2):
                    asn_provider.setdefault(a, m.group(2).strip()[:120])
            continue
        _parse_list(path, lines, _BIT[cat], providers, ranges)
    reader = None
    if mmdb is not None:
        try:
            import maxminddb
        except ImportError as exc:  # optional dependency
            raise RuntimeError("reading a .mmdb needs the 'maxminddb' package: pip install maxminddb") from exc
        reader = maxminddb.open_database(str(mmdb))
    names = [""] * len(providers)
    for name, i in providers.items():
        names[i] = name
    return NetworkLists(
        v4=_SegmentTable(ranges.v4, 32),
        v6=_SegmentTable(ranges.v6, 128),
        provider_names=names,
        asn_flags=asn_flags,
        asn_provider=asn_provider,
        sources=[str(p) for p in paths] + ([str(mmdb)] if mmdb else []),
        has_tor_list=has_tor,
        mmdb=reader,
    )
