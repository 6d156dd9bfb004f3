"""Facts about account e-mail addresses: domain, disposable provider, local-part shape.

All functions take Arrow string arrays (full addresses or bare domains) and are
vectorised with Arrow compute.  The shipped disposable-domain list merges two
permissive sources (CC0 and MIT, see ``data/SOURCES.md``); users add their own
lists, one domain per line, ``#`` comments.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.enrich._text import as_strings, file_stamps

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_FILES = ("disposable_domains.txt.gz",)

# How many parent levels are also checked: "a.b.mailinator.com" matches "mailinator.com".
_PARENT_LEVELS = 3
# Longest local part and domain kept (RFC 5321 limits are 64 and 255).
_MAX_LOCAL = 64
_MAX_DOMAIN = 255


def domain(emails: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lower-cased domain of each address ("User@X.com" -> "x.com"); a bare domain is returned as is.

    Surrounding whitespace, angle brackets and a trailing dot are removed.
    Null, empty, or a value ending in "@" gives null.
    """
    s = pc.utf8_lower(pc.utf8_trim(as_strings(emails), " \t\r\n<>\"'"))
    # the domain is whatever follows the last "@"
    d = pc.replace_substring_regex(s, r"^.*@", "")
    d = pc.utf8_rtrim(d, ".")
    d = pc.utf8_slice_codeunits(d, 0, _MAX_DOMAIN)
    return pc.if_else(pc.equal(d, ""), pa.scalar(None, pa.string()), d)


def local_part(emails: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The part before the last "@", lower-cased and bounded; null when there is none."""
    s = pc.utf8_lower(pc.utf8_trim(as_strings(emails), " \t\r\n<>\"'"))
    has_at = pc.match_substring(s, "@")
    loc = pc.replace_substring_regex(s, r"@[^@]*$", "")
    loc = pc.utf8_slice_codeunits(loc, 0, _MAX_LOCAL)
    return pc.if_else(pc.and_(has_at, pc.not_equal(loc, "")), loc, pa.scalar(None, pa.string()))


def local_part_pattern(emails: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Shape of the local part: letter runs -> "a", digit runs -> "9", other characters kept.

    "john.smith83@x.com" -> "a.a9"; "user_4821" -> "a_9"; "x7k2q9" -> "a9a9a9".
    Accounts farmed by one script share a shape.  Null when there is no local part.
    """
    loc = local_part(emails)
    shape = pc.replace_substring_regex(loc, r"\p{L}+", "a")
    return pc.replace_substring_regex(shape, r"\p{N}+", "9")


@dataclass(frozen=True)
class EmailLists:
    """A set of disposable / throw-away e-mail domains."""

    disposable: pa.Array  # sorted distinct lower-case domains
    sources: tuple[str, ...]

    @classmethod
    def load(cls, extra_paths: list[Path] | None = None, use_defaults: bool = True) -> EmailLists:
        """Shipped defaults (unless use_defaults=False) plus user files, one domain per line."""
        paths = [DATA_DIR / n for n in DEFAULT_FILES] if use_defaults else []
        paths += [Path(p) for p in (extra_paths or [])]
        return _load_cached(file_stamps(paths))

    def domain(self, emails: pa.Array | pa.ChunkedArray) -> pa.Array:
        return domain(emails)

    def is_disposable(self, emails: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
        """True when the domain, or one of its parent domains, is on a disposable list; null for null input."""
        d = domain(emails)
        hit = pc.is_in(d, value_set=self.disposable)
        parent = d
        for _ in range(_PARENT_LEVELS):
            # drop the first label; stop once only a top-level domain would remain
            parent = pc.replace_substring_regex(parent, r"^[^.]*\.", "")
            parent = pc.if_else(pc.match_substring(parent, "."), parent, pa.scalar(None, pa.string()))
            hit = pc.or_(hit, pc.fill_null(pc.is_in(parent, value_set=self.disposable), False))
        return pc.if_else(pc.is_null(d), pa.scalar(None, pa.bool_()), hit)


@lru_cache(maxsize=8)
def _load_cached(stamps: tuple[tuple[Path, int, int], ...]) -> EmailLists:
    # keyed by (path, mtime, size) so an edited list is re-read
    paths = [s[0] for s in stamps]
    domains: set[str] = set()
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"e-mail domain list not found: {path}")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for i, raw in enumerate(fh, 1):
                line = raw.split("#", 1)[0].strip().lower().lstrip("@").rstrip(".")
                if not line:
                    continue
                if " " in line or "@" in line or "." not in line or len(line) > _MAX_DOMAIN:
                    raise ValueError(f"{path}, line {i}: not a domain name: {raw.strip()[:80]!r}")
                domains.add(line)
    return EmailLists(disposable=pa.array(sorted(domains), pa.string()), sources=tuple(str(p) for p in paths))
