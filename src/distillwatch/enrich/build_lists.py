"""Rebuild the default network and e-mail lists shipped in ``enrich/data/``.

    python -m distillwatch.enrich.build_lists /path/to/shared/data

Only MIT and CC0 sources are used (see ``data/SOURCES.md``).  The Tor lists in
the shared data carry no licence and are never shipped.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import sys
from pathlib import Path

OUT = Path(__file__).parent / "data"

# lord-alfred/ipranges providers that are VPN-like exits rather than hosting
_VPN_PROVIDERS = {"protonvpn": "Proton VPN", "apple-proxy": "iCloud Private Relay"}
_PROVIDER_NAMES = {
    "amazon": "Amazon AWS", "bing": "Bing crawler", "cloudflare": "Cloudflare", "digitalocean": "DigitalOcean",
    "duckassistbot": "DuckDuckGo crawler", "duckduckbot": "DuckDuckGo crawler", "facebook": "Facebook",
    "github": "GitHub", "google": "Google Cloud", "googlebot": "Google crawler", "linode": "Linode",
    "microsoft": "Microsoft Azure", "openai": "OpenAI", "oracle": "Oracle Cloud", "perplexity": "Perplexity",
    "pingdom": "Pingdom", "statuscake": "StatusCake", "telegram": "Telegram", "twitter": "Twitter",
    "vultr": "Vultr",
}


def _write(name: str, header: list[str], lines: list[str]) -> None:
    # mtime=0 keeps the gzip bytes identical across rebuilds
    with open(OUT / name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(("\n".join(["# " + h for h in header] + lines) + "\n").encode())
    print(f"{name}: {len(lines)} lines")


def _read(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def build(shared: Path) -> None:
    net = shared / "network"
    x4b = "X4BNet/lists_vpn @ 167937a76d424a1a176eccda7d929e40cedd6b40, MIT"
    _write("x4bnet_datacenter.txt.gz", ["category: datacenter", f"source: {x4b}"],
           _read(net / "x4bnet/datacenter_ipv4.txt") + _read(net / "x4bnet/datacenter_ipv6.txt"))
    _write("x4bnet_vpn.txt.gz", ["category: vpn", f"source: {x4b}"], _read(net / "x4bnet/vpn_ipv4.txt"))
    _write("x4bnet_datacenter_asn.txt.gz", ["category: datacenter", f"source: {x4b}"],
           _read(net / "x4bnet/datacenter_ASN.txt"))
    _write("x4bnet_vpn_asn.txt.gz", ["category: vpn", f"source: {x4b}"], _read(net / "x4bnet/vpn_ASN.txt"))

    # Provider-named ranges.  VPN-like providers go to a separate file so the category header stays true.
    dc_lines: list[str] = []
    vpn_lines: list[str] = []
    for f in sorted((net / "ipranges").glob("*_ipv4_merged.txt")):
        key = f.name.removesuffix("_ipv4_merged.txt")
        if key == "all":
            continue
        if key in _VPN_PROVIDERS:
            vpn_lines += [f"{c} {_VPN_PROVIDERS[key]}" for c in _read(f)]
        else:
            dc_lines += [f"{c} {_PROVIDER_NAMES.get(key, key)}" for c in _read(f)]
    src = "lord-alfred/ipranges @ 14dd971b18758c856dd47b2fc51c9376d2413c6a, CC0-1.0"
    _write("ipranges_providers.txt.gz", ["category: datacenter", f"source: {src}"], dc_lines)
    _write("ipranges_vpn.txt.gz", ["category: vpn", f"source: {src}"], vpn_lines)

    ipcat_lines: list[str] = []
    with open(net / "ipcat/datacenters.csv", newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) < 3:
                continue
            lo, hi = ipaddress.ip_address(row[0]), ipaddress.ip_address(row[1])
            name = " ".join(row[2].split())[:80]
            ipcat_lines += [f"{n} {name}" for n in ipaddress.summarize_address_range(lo, hi)]
    _write("ipcat_datacenter.txt.gz",
           ["category: datacenter", "source: client9/ipcat @ a26c906069861bcfb9d63372ccdb92941eb80d78, MIT"],
           ipcat_lines)

    mail = net / "disposable-email"
    domains = sorted({d.lower() for d in _read(mail / "disposable_email_blocklist.conf") + _read(mail / "burner_emails_wesbos.txt")})
    _write("disposable_domains.txt.gz", [
        "source: disposable-email-domains/disposable-email-domains @ a6458931ee3eee7fbacc867bd43133be0bca6c30, CC0-1.0",
        "source: wesbos/burner-email-providers @ d676e736ceca59de826b1457878661d7f899c97e, MIT",
    ], domains)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m distillwatch.enrich.build_lists SHARED_DATA_DIR")
    build(Path(sys.argv[1]))
