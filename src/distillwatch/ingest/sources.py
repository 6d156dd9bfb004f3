"""Finding the files behind an input path and recognising their format.

A format is decided by the file name and then confirmed by the first bytes, so a
Parquet file renamed ``.jsonl`` (or an HTML error page saved as ``.csv``) is a
clear error naming the file, not a stream of nonsense quarantine rows.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from distillwatch.ingest.errors import UnreadableInputError

Format = Literal["parquet", "jsonl", "json", "csv"]

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Source:
    path: Path
    format: Format
    gzipped: bool

    @property
    def name(self) -> str:
        return str(self.path)


def _format_from_name(path: Path) -> tuple[Format, bool] | None:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    last = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
    table: dict[str, Format] = {
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "json",
        ".csv": "csv",
    }
    fmt = table.get(last)
    if fmt is None or (gz and fmt == "parquet"):
        return None
    return fmt, gz


def head_bytes(source: Source, n: int = SNIFF_BYTES) -> bytes:
    """The first ``n`` decompressed bytes of a text source."""
    try:
        if source.gzipped:
            with gzip.open(source.path, "rb") as f:
                return f.read(n)
        with open(source.path, "rb") as f:
            return f.read(n)
    except (OSError, EOFError, zlib.error) as e:
        raise UnreadableInputError(source.path, f"cannot read ({e})") from None


def _check_content(source: Source) -> None:
    path = source.path
    if path.stat().st_size == 0:
        raise UnreadableInputError(path, "the file is empty")
    with open(path, "rb") as f:
        magic = f.read(4)
    if source.format == "parquet":
        if magic != PARQUET_MAGIC:
            raise UnreadableInputError(path, "named .parquet but is not a Parquet file (no PAR1 header)")
        return
    if source.gzipped and not magic.startswith(GZIP_MAGIC):
        raise UnreadableInputError(path, "named .gz but is not gzip-compressed")
    if not source.gzipped and magic.startswith(GZIP_MAGIC):
        raise UnreadableInputError(path, "is gzip-compressed but not named .gz")
    if magic == PARQUET_MAGIC:
        raise UnreadableInputError(
            path, f"is a Parquet file but named as {source.format}; rename it .parquet"
        )
    head = head_bytes(source)
    if not head.strip():
        raise UnreadableInputError(path, "the file holds no records (only whitespace)")
    if source.format in ("jsonl", "json"):
        first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        if first not in (b"{", b"["):
            raise UnreadableInputError(path, f"named .{source.format} but does not start with a JSON object")
    if source.format == "csv" and head.count(b"\x00") > len(head) // 10:
        raise UnreadableInputError(path, "named .csv but looks binary (many NUL bytes)")


def _inside(path: Path, others: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == o or o in resolved.parents for o in others)


def resolve(path: str | Path, exclude: list[Path] | None = None) -> list[Source]:
    """The files behind ``path``: one file, or every Parquet file under a directory (sorted).

    ``exclude`` holds ingest's own outputs, so re-running on a directory that also
    holds the results never reads them back as input.
    """
    p = Path(path)
    exclude = exclude or []
    if not p.exists():
        raise UnreadableInputError(p, "no such file or directory")
    if p.is_dir():
        files = sorted(
            f
            for f in p.rglob("*")
            if f.is_file() and f.suffix.lower() in (".parquet", ".pq") and not _inside(f, exclude)
        )
        if not files:
            raise UnreadableInputError(p, "directory holds no .parquet files")
        sources = [Source(f, "parquet", False) for f in files]
    else:
        guess = _format_from_name(p)
        if guess is None:
            raise UnreadableInputError(
                p,
                "unsupported file type; expected .parquet, a directory of them, .jsonl[.gz], .json[.gz] or .csv[.gz]",
            )
        sources = [Source(p, guess[0], guess[1])]
    for s in sources:
        _check_content(s)
    return sources


def sniff_adapter(source: Source) -> Literal["contract", "chat", "otel"]:
    """Which log shape a JSON source holds, from its first parseable object."""
    if source.format not in ("jsonl", "json"):
        return "contract"
    head = head_bytes(source, 4 << 20)
    candidates: list[object] = []
    if source.format == "json":
        try:
            candidates.append(json.loads(head))
        except ValueError:
            pass
    for line in head.splitlines()[:50]:
        try:
            candidates.append(json.loads(line))
        except ValueError:
            continue
    for obj in candidates:
        if isinstance(obj, dict):
            return shape_of(obj)
    return "contract"


def shape_of(obj: dict) -> Literal["contract", "chat", "otel"]:
    if "resourceSpans" in obj:
        return "otel"
    request = obj.get("request")
    if "messages" in obj or (isinstance(request, dict) and "messages" in request):
        return "chat"
    return "contract"
