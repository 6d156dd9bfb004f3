"""Client addresses: real public prefixes with their ASN and country, and vectorised address drawing.

The table below is public routing knowledge (who announces which prefix).  It
is deliberately small and hand-written so the simulator does not depend on any
downloaded list: the detector uses public datacenter/VPN lists, and these
prefixes being the real ones is what makes that lookup meaningful on simulated
traffic.  Residential and mobile exits of residential-proxy networks are real
subscribers' lines, so attackers at evasion ``strong`` draw from the *same*
residential rows as ordinary users.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("residential", "mobile", "corporate", "datacenter", "vpn", "university")


@dataclass(frozen=True)
class Prefix:
    cidr: str
    asn: int
    country: str
    kind: str
    owner: str


# fmt: off
PREFIXES: tuple[Prefix, ...] = (
    # Residential broadband
    Prefix("73.0.0.0/8", 7922, "US", "residential", "Comcast"),
    Prefix("2601::/20", 7922, "US", "residential", "Comcast"),
    Prefix("70.112.0.0/12", 11427, "US", "residential", "Charter Spectrum"),
    Prefix("99.0.0.0/10", 7018, "US", "residential", "AT&T"),
    Prefix("71.160.0.0/11", 701, "US", "residential", "Verizon"),
    Prefix("99.224.0.0/11", 812, "CA", "residential", "Rogers"),
    Prefix("79.192.0.0/10", 3320, "DE", "residential", "Deutsche Telekom"),
    Prefix("2003::/19", 3320, "DE", "residential", "Deutsche Telekom"),
    Prefix("2a02:8108::/32", 3209, "DE", "residential", "Vodafone"),
    Prefix("86.128.0.0/10", 2856, "GB", "residential", "BT"),
    Prefix("82.0.0.0/13", 5089, "GB", "residential", "Virgin Media"),
    Prefix("90.0.0.0/9", 3215, "FR", "residential", "Orange"),
    Prefix("2a01:cb00::/24", 3215, "FR", "residential", "Orange"),
    Prefix("78.192.0.0/10", 12322, "FR", "residential", "Free"),
    Prefix("153.128.0.0/9", 4713, "JP", "residential", "NTT OCN"),
    Prefix("123.112.0.0/12", 4837, "CN", "residential", "China Unicom"),
    Prefix("113.64.0.0/11", 4134, "CN", "residential", "China Telecom"),
    Prefix("121.128.0.0/10", 4766, "KR", "residential", "Korea Telecom"),
    Prefix("101.160.0.0/11", 1221, "AU", "residential", "Telstra"),
    Prefix("177.32.0.0/12", 28573, "BR", "residential", "Claro"),
    Prefix("122.160.0.0/12", 24560, "IN", "residential", "Bharti Airtel"),
    Prefix("83.32.0.0/11", 3352, "ES", "residential", "Telefonica"),
    Prefix("151.64.0.0/12", 1267, "IT", "residential", "WIND Tre"),
    Prefix("77.160.0.0/12", 1136, "NL", "residential", "KPN"),
    # Mobile carriers (CGNAT: many subscribers per address)
    Prefix("172.32.0.0/11", 21928, "US", "mobile", "T-Mobile US"),
    Prefix("2607:fb90::/28", 21928, "US", "mobile", "T-Mobile US"),
    Prefix("49.32.0.0/12", 55836, "IN", "mobile", "Reliance Jio"),
    Prefix("2409:4000::/22", 55836, "IN", "mobile", "Reliance Jio"),
    Prefix("80.187.0.0/16", 3320, "DE", "mobile", "Telekom Mobile"),
    Prefix("92.40.0.0/14", 12576, "GB", "mobile", "EE"),
    Prefix("106.128.0.0/12", 2516, "JP", "mobile", "KDDI"),
    # Corporate egress: enterprise proxies (Zscaler) and company networks
    Prefix("165.225.0.0/17", 62044, "US", "corporate", "Zscaler"),
    Prefix("147.161.128.0/17", 62044, "DE", "corporate", "Zscaler"),
    Prefix("192.55.54.0/24", 4983, "US", "corporate", "Intel"),
    Prefix("129.42.0.0/16", 2686, "US", "corporate", "IBM"),
    Prefix("194.138.0.0/16", 15465, "DE", "corporate", "Siemens"),
    # Universities
    Prefix("128.32.0.0/16", 25, "US", "university", "UC Berkeley"),
    Prefix("171.64.0.0/14", 32, "US", "university", "Stanford"),
    Prefix("129.132.0.0/16", 559, "CH", "university", "ETH Zurich"),
    Prefix("166.111.0.0/16", 4538, "CN", "university", "Tsinghua (CERNET)"),
    Prefix("133.11.0.0/16", 2501, "JP", "university", "University of Tokyo"),
    # Cloud and hosting (datacenter egress)
    Prefix("3.208.0.0/12", 14618, "US", "datacenter", "AWS us-east-1"),
    Prefix("18.184.0.0/15", 16509, "DE", "datacenter", "AWS eu-central-1"),
    Prefix("13.112.0.0/14", 16509, "JP", "datacenter", "AWS ap-northeast-1"),
    Prefix("52.74.0.0/16", 16509, "SG", "datacenter", "AWS ap-southeast-1"),
    Prefix("34.64.0.0/10", 396982, "US", "datacenter", "Google Cloud"),
    Prefix("35.184.0.0/13", 396982, "US", "datacenter", "Google Cloud"),
    Prefix("20.36.0.0/14", 8075, "US", "datacenter", "Microsoft Azure"),
    Prefix("159.89.0.0/16", 14061, "US", "datacenter", "DigitalOcean"),
    Prefix("167.99.0.0/16", 14061, "US", "datacenter", "DigitalOcean"),
    Prefix("95.216.0.0/15", 24940, "FI", "datacenter", "Hetzner"),
    Prefix("88.198.0.0/16", 24940, "DE", "datacenter", "Hetzner"),
    Prefix("2a01:4f8::/32", 24940, "DE", "datacenter", "Hetzner"),
    Prefix("51.68.0.0/16", 16276, "FR", "datacenter", "OVH"),
    Prefix("2001:41d0::/32", 16276, "FR", "datacenter", "OVH"),
    Prefix("45.76.0.0/15", 20473, "US", "datacenter", "Vultr"),
    Prefix("172.104.0.0/15", 63949, "SG", "datacenter", "Linode/Akamai"),
    Prefix("47.88.0.0/14", 45102, "SG", "datacenter", "Alibaba Cloud"),
    Prefix("129.226.0.0/16", 132203, "HK", "datacenter", "Tencent Cloud"),
    Prefix("129.146.0.0/16", 31898, "US", "datacenter", "Oracle Cloud"),
    # VPN services and privacy relays
    Prefix("193.138.218.0/24", 39351, "SE", "vpn", "Mullvad"),
    Prefix("185.213.154.0/24", 39351, "SE", "vpn", "Mullvad"),
    Prefix("37.120.128.0/17", 9009, "GB", "vpn", "M247 (VPN exits)"),
    Prefix("89.187.160.0/19", 60068, "NL", "vpn", "Datacamp/CDN77 (VPN exits)"),
    Prefix("185.159.156.0/22", 209103, "CH", "vpn", "Proton VPN"),
    Prefix("104.28.0.0/16", 13335, "US", "vpn", "Cloudflare (private relay/WARP)"),
    Prefix("2a09:bac0::/29", 13335, "US", "vpn", "Cloudflare (private relay)"),
    Prefix("172.224.0.0/12", 36183, "US", "vpn", "Akamai (private relay)"),
)
# fmt: on


@dataclass(frozen=True)
class PrefixTable:
    """The prefix table as arrays: one entry per row of ``PREFIXES``."""

    version: np.ndarray  # 4 or 6
    base: np.ndarray  # object ints (IPv6 needs 128 bits)
    length: np.ndarray
    asn: np.ndarray
    country: np.ndarray
    kind: np.ndarray
    owner: np.ndarray

    def select(self, kind: str | None = None, country: str | None = None, version: int | None = None) -> np.ndarray:
        """Indices of rows matching all given filters."""
        mask = np.ones(len(self.asn), dtype=bool)
        if kind is not None:
            mask &= self.kind == kind
        if country is not None:
            mask &= self.country == country
        if version is not None:
            mask &= self.version == version
        return np.flatnonzero(mask)


@lru_cache(maxsize=1)
def table() -> PrefixTable:
    nets = [ipaddress.ip_network(p.cidr) for p in PREFIXES]
    return PrefixTable(
        version=np.array([n.version for n in nets]),
        base=np.array([int(n.network_address) for n in nets], dtype=object),
        length=np.array([n.prefixlen for n in nets]),
        asn=np.array([p.asn for p in PREFIXES], dtype=np.int64),
        country=np.array([p.country for p in PREFIXES]),
        kind=np.array([p.kind for p in PREFIXES]),
        owner=np.array([p.owner for p in PREFIXES]),
    )


@lru_cache(maxsize=1)
def _hex16() -> pa.Array:
    # Lower-case hex without leading zeros: RFC 5952 canonical group spelling.
    return pa.array([f"{i:x}" for i in range(65536)], type=pa.string())


def format_ipv4(addr: np.ndarray) -> pa.Array:
    """Dotted-quad strings for uint32 addresses, vectorised."""
    a = addr.astype(np.uint32)
    octets = [pc.cast(pa.array((a >> s) & 255), pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".")


def format_ipv6(groups: np.ndarray) -> pa.Array:
    """Canonical IPv6 strings for an (n, 8) array of 16-bit groups, vectorised.

    Callers guarantee no two adjacent zero groups, so the canonical form
    never needs ``::`` compression and is simply the groups joined by ``:``.
    """
    hexes = _hex16()
    cols = [hexes.take(pa.array(groups[:, i].astype(np.int64))) for i in range(8)]
    return pc.binary_join_element_wise(*cols, ":")


@dataclass
class Addresses:
    """A block of drawn addresses with what a GeoIP lookup would say about them."""

    ip: pa.Array
    asn: np.ndarray
    country: np.ndarray
    prefix_row: np.ndarray

    def __len__(self) -> int:
        return len(self.asn)


def draw(rng: np.random.Generator, rows: np.ndarray) -> Addresses:
    """Draw one address uniformly inside each given prefix row (rows may repeat)."""
    t = table()
    rows = np.asarray(rows, dtype=np.int64)
    n = len(rows)
    out = np.empty(n, dtype=object)
    v4 = np.flatnonzero(t.version[rows] == 4)
    v6 = np.flatnonzero(t.version[rows] == 6)
    if len(v4):
        r = rows[v4]
        base = t.base[r].astype(np.int64)
        host_bits = 32 - t.length[r]
        span = (np.int64(1) << host_bits.astype(np.int64)) - 2
        offs = (rng.random(len(r)) * span).astype(np.int64) + 1
        out_v4 = format_ipv4((base + offs).astype(np.uint32))
        out[v4] = np.asarray(out_v4.to_numpy(zero_copy_only=False), dtype=object)
    if len(v6):
        r = rows[v6]
        groups = rng.integers(1, 65536, size=(len(r), 8), dtype=np.int64)
        for row in np.unique(r):
            sel = r == row
            base = int(t.base[row])
            plen = int(t.length[row])
            fixed = [(base >> (112 - 16 * g)) & 0xFFFF for g in range(8)]
            for g in range(8):
                covered = min(max(plen - 16 * g, 0), 16)
                if covered == 0:
                    break
                mask = (0xFFFF << (16 - covered)) & 0xFFFF
                groups[sel, g] = fixed[g] | (groups[sel, g] & ~mask & 0xFFFF)
        # a random group can only be zero where the prefix fixes it; no zero runs remain
        out[v6] = np.asarray(format_ipv6(groups).to_numpy(zero_copy_only=False), dtype=object)
    return Addresses(
        ip=pa.array(out, type=pa.string()),
        asn=t.asn[rows],
        country=t.country[rows],
        prefix_row=rows,
    )


def draw_cluster(rng: np.random.Generator, row: int, k: int, host_bits: int = 4) -> Addresses:
    """``k`` addresses inside one small subnet (a /28 by default) of an IPv4 prefix row.

    Models one organisation's egress range or one proxy operator's rack: a
    handful of neighbouring addresses rather than draws scattered over the ISP.
    """
    t = table()
    if t.version[row] != 4:
        return draw(rng, np.full(k, row))
    base = int(t.base[row])
    span = 1 << (32 - int(t.length[row]))
    subnet = (int(rng.integers(0, span)) >> host_bits) << host_bits
    low = rng.choice(np.arange(1, (1 << host_bits) - 1), size=k, replace=k > (1 << host_bits) - 2)
    addr = (base + subnet + low).astype(np.uint32)
    rows = np.full(k, row, dtype=np.int64)
    return Addresses(ip=format_ipv4(addr), asn=t.asn[rows], country=t.country[rows], prefix_row=rows)


def concat(parts: list[Addresses]) -> Addresses:
    return Addresses(
        ip=pa.concat_arrays([p.ip for p in parts]),
        asn=np.concatenate([p.asn for p in parts]),
        country=np.concatenate([p.country for p in parts]),
        prefix_row=np.concatenate([p.prefix_row for p in parts]),
    )
