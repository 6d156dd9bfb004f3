"""A minimal MaxMind DB (.mmdb) writer for tests: IPv6 tree, 24-bit records, no overlapping networks.

Follows the MaxMind DB File Format Specification 2.0 (search tree, 16-byte
separator, data section, metadata after "\\xab\\xcd\\xefMaxMind.com").  Only the
types the tests need are encoded: maps, UTF-8 strings, uint16/32/64, arrays.
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any

_META_MARKER = b"\xab\xcd\xefMaxMind.com"


def _ctrl(type_id: int, size: int) -> bytes:
    if size < 29:
        size_bits, extra = size, b""
    elif size < 29 + 256:
        size_bits, extra = 29, bytes([size - 29])
    elif size < 285 + 65536:
        size_bits, extra = 30, struct.pack(">H", size - 285)
    else:
        size_bits, extra = 31, struct.pack(">I", size - 65821)[1:]
    if type_id <= 7:
        return bytes([(type_id << 5) | size_bits]) + extra
    return bytes([size_bits, type_id - 7]) + extra  # extended type: the type byte precedes size bytes


def _uint(type_id: int, value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _ctrl(type_id, len(raw)) + raw


def encode(value: Any) -> bytes:
    if isinstance(value, dict):
        return _ctrl(7, len(value)) + b"".join(encode(str(k)) + encode(v) for k, v in value.items())
    if isinstance(value, str):
        raw = value.encode()
        return _ctrl(2, len(raw)) + raw
    if isinstance(value, list):
        return _ctrl(11, len(value)) + b"".join(encode(v) for v in value)
    if isinstance(value, int):
        return _uint(6, value) if value < 2**32 else _uint(9, value)
    raise TypeError(type(value))


def write_mmdb(path: Path, records: dict[str, dict[str, Any]], database_type: str = "Test-ASN") -> Path:
    """records: CIDR (IPv4 or IPv6) -> data map."""
    data = b""
    nodes: list[list[Any]] = [[None, None]]
    for cidr, rec in records.items():
        net = ipaddress.ip_network(cidr)
        if net.version == 4:
            bits, plen = int(net.network_address), net.prefixlen + 96
        else:
            bits, plen = int(net.network_address), net.prefixlen
        offset = len(data)
        data += encode(rec)
        node = 0
        for depth in range(plen):
            bit = (bits >> (127 - depth)) & 1
            if depth == plen - 1:
                nodes[node][bit] = ("data", offset)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = ("node", len(nodes) - 1)
                node = nodes[node][bit][1]
    n = len(nodes)

    def rec_value(r: Any) -> int:
        if r is None:
            return n  # "no data"
        kind, v = r
        return v if kind == "node" else n + 16 + v

    tree = b"".join(rec_value(a).to_bytes(3, "big") + rec_value(b).to_bytes(3, "big") for a, b in nodes)
    meta_fields = [
        ("node_count", _uint(6, n)),
        ("record_size", _uint(5, 24)),
        ("ip_version", _uint(5, 6)),
        ("database_type", encode(database_type)),
        ("languages", encode(["en"])),
        ("binary_format_major_version", _uint(5, 2)),
        ("binary_format_minor_version", _uint(5, 0)),
        ("build_epoch", _uint(9, 1_700_000_000)),
        ("description", encode({"en": "distillwatch test database"})),
    ]
    meta_bytes = _META_MARKER + _ctrl(7, len(meta_fields)) + b"".join(encode(k) + v for k, v in meta_fields)
    path.write_bytes(tree + b"\x00" * 16 + data + meta_bytes)
    return path
