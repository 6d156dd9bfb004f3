"""Network lists: CIDR parsing, lookups against a brute-force reference, defaults, errors."""

from __future__ import annotations

import gzip
import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.enrich.network import ListFormatError, NetworkLists


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def defaults() -> NetworkLists:
    return NetworkLists.load()


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def test_default_lists_know_cloud_and_private_space(defaults: NetworkLists) -> None:
    out = rows(defaults.classify(pa.array(["3.5.140.2", "192.168.1.1", "2001:310::1", "10.0.0.1"])))
    aws, private, v6dc, ten = out
    assert aws["is_datacenter"] is True and aws["provider"] == "Amazon AWS"
    assert aws["prefix"] == "3.5.140.0/24" and aws["version"] == 4
    assert private["is_datacenter"] is False and private["is_vpn"] is False and private["provider"] is None
    assert v6dc["version"] == 6 and v6dc["is_datacenter"] is True and v6dc["prefix"] == "2001:310::/48"
    assert ten["is_datacenter"] is False


def test_no_tor_default_means_unknown(defaults: NetworkLists) -> None:
    # The public Tor lists carry no licence, so none ships: Tor is unknown (null), not False.
    out = defaults.classify(pa.array(["8.8.8.8"]))
    assert out.column("is_tor").to_pylist() == [None]


def test_user_lists_by_header_and_name(tmp_path: Path) -> None:
    tor = write(tmp_path / "exits.txt", "# category: tor\n185.220.101.5\n2a0b:f4c2::/32\n")
    vpn = write(tmp_path / "my_vpn_ranges.txt", "# from our vendor\n198.51.100.0/24 AcmeVPN\n")
    nl = NetworkLists.load([tor, vpn], use_defaults=False)
    out = rows(nl.classify(pa.array(["185.220.101.5", "185.220.101.6", "2a0b:f4c2:1::9", "198.51.100.77", "198.51.101.1"])))
    assert [r["is_tor"] for r in out] == [True, False, True, False, False]
    assert [r["is_vpn"] for r in out] == [False, False, False, True, False]
    assert out[3]["provider"] == "AcmeVPN"
    assert out[2]["prefix"] == "2a0b:f4c2:1::/48"


def test_gzip_and_range_and_host_bits(tmp_path: Path) -> None:
    p = tmp_path / "hosting.txt.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("# category: datacenter\n10.1.2.3/24,Rack A\n172.16.0.10-172.16.0.20\n2001:db8::1-2001:db8::ff\n")
    nl = NetworkLists.load([p], use_defaults=False)
    out = rows(nl.classify(pa.array(["10.1.2.255", "10.1.3.0", "172.16.0.9", "172.16.0.10", "172.16.0.20",
                                     "172.16.0.21", "2001:db8::ff", "2001:db8::100"])))
    assert [r["is_datacenter"] for r in out] == [True, False, False, True, True, False, True, False]
    assert out[0]["provider"] == "Rack A"


def test_narrowest_provider_wins(tmp_path: Path) -> None:
    p = write(tmp_path / "dc.txt", "# category: datacenter\n20.0.0.0/8 BigCloud\n20.1.0.0/16 Region\n20.1.2.0/24 Rack\n")
    nl = NetworkLists.load([p], use_defaults=False)
    out = nl.classify(pa.array(["20.9.9.9", "20.1.9.9", "20.1.2.3", "21.0.0.0"])).column("provider").to_pylist()
    assert out == ["BigCloud", "Region", "Rack", None]


def test_address_space_edges(tmp_path: Path) -> None:
    p = write(tmp_path / "all_dc.txt", "# category: datacenter\n0.0.0.0/0\n::/0\n")
    nl = NetworkLists.load([p], use_defaults=False)
    out = nl.classify(pa.array(["0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]))
    assert out.column("is_datacenter").to_pylist() == [True] * 4
    p2 = write(tmp_path / "top_dc.txt", "# category: datacenter\n255.255.255.255\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n")
    nl2 = NetworkLists.load([p2], use_defaults=False)
    out2 = nl2.classify(pa.array(["255.255.255.254", "255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0"]))
    assert out2.column("is_datacenter").to_pylist() == [False, True, False, True, False]


def test_matches_bruteforce_reference(tmp_path: Path) -> None:
    """Random nested/overlapping CIDRs; every lookup agrees with ipaddress membership."""
    rng = np.random.default_rng(7)
    nets4 = [ipaddress.ip_network((int(rng.integers(0, 2**32)), int(rng.integers(8, 31))), strict=False) for _ in range(300)]
    nets6 = [ipaddress.ip_network((int(rng.integers(0, 2**62)) << 66, int(rng.integers(16, 64))), strict=False) for _ in range(100)]
    p = write(tmp_path / "dc_random.txt", "# category: datacenter\n" + "\n".join(map(str, nets4 + nets6)) + "\n")
    nl = NetworkLists.load([p], use_defaults=False)
    probes: list[str] = []
    for net in nets4[:100] + nets6[:50]:  # inside, and just outside, each network
        probes += [str(net.network_address), str(net.broadcast_address)]
        if int(net.broadcast_address) + 1 < 2 ** net.max_prefixlen:
            probes.append(str(ipaddress.ip_address(int(net.broadcast_address) + 1) if net.version == 6
                              else ipaddress.IPv4Address(int(net.broadcast_address) + 1)))
    probes += [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, 2000)]
    got = nl.classify(pa.array(probes)).column("is_datacenter").to_pylist()
    want = [any(ipaddress.ip_address(a) in n for n in (nets4 if ":" not in a else nets6)) for a in probes]
    assert got == want


def test_bad_input_addresses_are_null_not_errors(defaults: NetworkLists) -> None:
    weird = ["", "bad", "256.1.1.1", "1.2.3", "1.2.3.4.5", None, "fe80::1%eth0", "1.2.3.4\x00", "\u202e1.2.3.4",
             "::ffff:3.5.140.2", " 3.5.140.2 "]
    out = rows(defaults.classify(pa.array(weird)))
    assert all(r["version"] is None and r["prefix"] is None and r["is_datacenter"] is None for r in out[:9])
    assert out[9]["version"] == 4 and out[9]["prefix"] == "3.5.140.0/24" and out[9]["is_datacenter"] is True
    assert out[10]["prefix"] == "3.5.140.0/24"  # surrounding whitespace is tolerated
    assert out[10]["ip"] == " 3.5.140.2 "  # the input is echoed unchanged


def test_accepts_chunked_dictionary_and_large_string(defaults: NetworkLists) -> None:
    base = ["3.5.140.2", "10.0.0.1", "3.5.140.2"]
    want = defaults.classify(pa.array(base)).column("prefix").to_pylist()
    for arr in (pa.chunked_array([base[:1], base[1:]]), pa.array(base).dictionary_encode(), pa.array(base, pa.large_string())):
        assert defaults.classify(arr).column("prefix").to_pylist() == want
    assert defaults.classify(pa.array([], pa.string())).num_rows == 0


def test_list_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "dc_bad.txt", "# category: datacenter\n1.2.3.0/24\n1.2.3.999/24\n")
    with pytest.raises(ListFormatError, match=r"dc_bad.txt, line 3"):
        NetworkLists.load([bad], use_defaults=False)
    junk = write(tmp_path / "vpn_junk.txt", "hello world\n")
    with pytest.raises(ListFormatError, match=r"vpn_junk.txt, line 1"):
        NetworkLists.load([junk], use_defaults=False)
    unknown = write(tmp_path / "addresses.txt", "1.2.3.4\n")
    with pytest.raises(ListFormatError, match="cannot tell"):
        NetworkLists.load([unknown], use_defaults=False)
    with pytest.raises(FileNotFoundError):
        NetworkLists.load([tmp_path / "missing_tor.txt"], use_defaults=False)


def test_asn_lists(defaults: NetworkLists, tmp_path: Path) -> None:
    out = rows(defaults.classify_asn(pa.array([16509, 9009, None, 1], pa.int64())))
    assert out[0]["is_datacenter"] is True and "amazon" in out[0]["provider"].lower()
    assert out[1]["is_vpn"] is True
    assert out[2]["is_datacenter"] is None
    assert out[3]["is_datacenter"] is False and out[3]["provider"] is None
    mine = write(tmp_path / "vpn_asns.txt", "AS64500 # TestVPN\nAS64501\n")
    nl = NetworkLists.load([mine], use_defaults=False)
    assert nl.classify_asn(pa.array([64500, 64501, 64502])).column("is_vpn").to_pylist() == [True, True, False]


def test_deterministic(defaults: NetworkLists) -> None:
    ips = pa.array([f"3.5.{i}.{j}" for i in range(4) for j in range(0, 256, 37)])
    assert defaults.classify(ips).equals(defaults.classify(ips))


def test_maxmind_database(tmp_path: Path) -> None:
    pytest.importorskip("maxminddb")
    from tests.enrich.mmdb_writer import write_mmdb

    db = write_mmdb(tmp_path / "asn.mmdb", {
        "203.0.113.0/24": {"autonomous_system_number": 16509, "autonomous_system_organization": "AMAZON-02",
                           "country": {"iso_code": "US"}},
        "198.51.100.0/24": {"autonomous_system_number": 64999, "autonomous_system_organization": "Small ISP"},
        "2001:db8:abcd::/48": {"asn": "AS64500", "as_name": "TestNet", "country": "DE"},
    })
    vpn_asn = write(tmp_path / "vpn_asns.txt", "AS64500 # TestVPN\n")
    nl = NetworkLists.load([vpn_asn], mmdb=db, use_defaults=False)
    out = rows(nl.classify(pa.array(["203.0.113.9", "198.51.100.1", "2001:db8:abcd::1", "192.0.2.1", "bad"])))
    assert [r["asn"] for r in out] == [16509, 64999, 64500, None, None]
    assert [r["country"] for r in out] == ["US", None, "DE", None, None]
    assert out[2]["is_vpn"] is True and out[2]["provider"] == "TestVPN"  # ASN list names it
    assert out[1]["is_vpn"] is False and out[1]["provider"] == "Small ISP"  # falls back to the AS organisation
    assert out[0]["as_org"] == "AMAZON-02"


def test_edited_list_is_reread(tmp_path: Path) -> None:
    p = write(tmp_path / "dc_edit.txt", "# category: datacenter\n192.0.2.0/24\n")
    assert NetworkLists.load([p], use_defaults=False).classify(pa.array(["198.51.100.1"])).column("is_datacenter").to_pylist() == [False]
    write(p, "# category: datacenter\n192.0.2.0/24\n198.51.100.0/24\n")
    assert NetworkLists.load([p], use_defaults=False).classify(pa.array(["198.51.100.1"])).column("is_datacenter").to_pylist() == [True]
