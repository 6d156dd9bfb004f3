"""Prompt templates: normalisation, exact template hashes, MinHash/LSH near-duplicates.

A harvesting campaign fills a few hundred prompt templates with varying slot
values (numbers, names, code, quoted inputs).  ``normalize`` replaces the slot
values with placeholders and folds case and spacing, so every filled copy of
a template maps to one string; ``template_hash`` is a stable 64-bit hash of
it.  Templates that were paraphrased a little are caught by ``minhash`` over
word 3-shingles of the normalised text plus ``lsh_bands`` keys.

Everything runs over whole Arrow arrays (RE2 regex kernels) and numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.enrich._text import (
    MAX_CHARS,
    as_strings,
    bounded,
    in_chunks,
    list_parent_indices,
    md5_64,
    mix64,
    valid_mask,
)

# Bumped whenever normalisation changes what a template looks like, so stored
# template hashes and signatures can be told apart from ones made by other rules.
NORMALIZE_VERSION = 2

# Placeholders are wrapped in U+27EA/U+27EB (mathematical angle brackets) so a
# prompt that itself contains "<num>" cannot forge or break a placeholder.
NUM, STR, CODE, URL, EMAIL, NAME, PATH = (
    f"\u27ea{t}\u27eb" for t in ("num", "str", "code", "url", "email", "name", "path")
)



@dataclass(frozen=True)
class _Step:
    """One regex replacement (RE2 syntax).  `common` steps match most prompts, so the
    match pre-scan that saves work for rare patterns would only add a pass."""

    pattern: str
    repl: str
    common: bool = False


# Control characters (not tab/newline), zero-width and bidi-override characters:
# no template meaning, and they can hide or reorder text.  ASCII controls are
# checked on every row; the Unicode ones only on rows that are not pure ASCII.
_ASCII_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_UNICODE_INVISIBLE = r"[\x{200b}-\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}\x{feff}]"

# Applied in order, before lower-casing.
_CASE_SENSITIVE_STEPS: tuple[_Step, ...] = (
    # fenced code blocks (closed, or running to the end of the bounded text)
    _Step(r"```[\s\S]*?(?:```|$)|~~~[\s\S]*?(?:~~~|$)", f" {CODE} "),
    _Step(r"`[^`\n]{1,200}`", f" {CODE} "),
    _Step(r"(?i)\b(?:https?|ftp)://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", f" {URL} "),
    _Step(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", f" {EMAIL} "),
    # quoted strings (straight and typographic quotes), bounded so a stray quote cannot eat the prompt
    _Step(r"\"[^\"\n]{1,300}\"|\x{201c}[^\x{201d}\n]{1,300}\x{201d}|\x{00ab}[^\x{00bb}\n]{1,300}\x{00bb}",
          f" {STR} "),
    # file paths such as src/app/main.py or C:\Users\x\a.txt
    _Step(r"(?:[A-Za-z]:\\|\.{0,2}/)?(?:[\w.-]+[/\\])+[\w.-]+\.\w{1,5}\b", f" {PATH} "),
    # capitalised word runs (two letters or more, so not "I") after a lower-case word or punctuation:
    # names, places, products
    # (ASCII letters only: a Unicode class costs 3x, and caseless scripts have no such cue)
    _Step(r"([a-z0-9,;:)\]][ \t]+)[A-Z][A-Za-z'-]+(?: [A-Z][A-Za-z'-]+)*", f"\\1{NAME}"),
)
_CASE_FOLDED_STEPS: tuple[_Step, ...] = (
    # any token holding a digit is a slot value: numbers, versions, ids, hashes, uuids, "user42"
    _Step(r"[\w.+-]*\d(?:[\w.,:+%-]*[\w%])?", NUM, common=True),
    # whitespace runs (and any tab or newline) -> one space
    _Step(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]", " ", common=True),
)


def _replace(s: pa.Array, pattern: str, repl: str, candidates: pa.Array | None = None) -> pa.Array:
    """Regex replace on the rows that match (a match scan costs about half a replace).

    `candidates` optionally restricts the rows considered at all.
    """
    if candidates is not None:
        if not pc.any(candidates).as_py():
            return s
        sub = s.filter(candidates)
        return pc.replace_with_mask(s, candidates, _replace(sub, pattern, repl))
    hit = pc.fill_null(pc.match_substring_regex(s, pattern), False)
    n_hit = pc.sum(hit).as_py() or 0
    if n_hit == 0:
        return s
    if n_hit > len(s) // 2:
        return pc.replace_substring_regex(s, pattern, repl)
    return pc.replace_with_mask(s, hit, pc.replace_substring_regex(s.filter(hit), pattern, repl))


def _apply(s: pa.Array, step: _Step) -> pa.Array:
    if step.common:
        return pc.replace_substring_regex(s, step.pattern, step.repl)
    return _replace(s, step.pattern, step.repl)


def _normalize_chunk(s: pa.Array) -> pa.Array:
    s = _replace(s, _ASCII_CONTROL, "")
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(s), True))
    s = _replace(s, _UNICODE_INVISIBLE, "", non_ascii)
    for step in _CASE_SENSITIVE_STEPS:
        s = _apply(s, step)
    s = pc.utf8_lower(s)
    for step in _CASE_FOLDED_STEPS:
        s = _apply(s, step)
    return pc.utf8_trim_whitespace(s)


def normalize(texts: pa.Array | pa.ChunkedArray, max_chars: int = MAX_CHARS) -> pa.Array:
    """Prompt -> template string.  Null stays null; only the first max_chars characters count.

    Code, URLs, e-mails, quoted strings, file paths, capitalised names,
    identifiers and numbers become placeholders; case and whitespace are
    folded; control and bidi-override characters are dropped.  Example:
    'Write a Python function "fizz" for N=15' ->
    'write a ⟪name⟫ function ⟪str⟫ for n=⟪num⟫'.
    Large batches are split across threads (Arrow kernels release the GIL).
    """
    s = bounded(as_strings(texts), max_chars)
    n = len(s)
    out = pa.concat_arrays(in_chunks(_normalize_chunk, s)) if n else _normalize_chunk(s)
    # placeholders can be longer than what they replace: keep the bound
    return pc.utf8_slice_codeunits(out, 0, max_chars)


def template_hash(
    texts: pa.Array | pa.ChunkedArray, max_chars: int = MAX_CHARS, normalized: bool = False
) -> pa.Array:
    """int64 hash of each normalised template (null text -> null).

    The value is the first 8 bytes of MD5 of the UTF-8 template, little-endian,
    reinterpreted as signed int64: stable across runs and machines, so hashes
    stored with a campaign can be matched in later scans.  ``normalized``: the
    texts are already ``normalize``'s output (a caller that also needs ``minhash``
    normalises once).
    """
    norm = as_strings(texts) if normalized else normalize(texts, max_chars)
    h = md5_64(norm).view(np.int64)
    return pa.array(h, type=pa.int64(), mask=~np.asarray(pc.is_valid(norm).to_numpy(zero_copy_only=False), dtype=bool))


EMPTY_SIGNATURE = np.iinfo(np.uint64).max  # every slot of a null / empty text's signature
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_POSITION_MULT = mix64(np.arange(1, 9, dtype=np.uint64)) | np.uint64(1)


def shingle_hashes(texts: pa.Array | pa.ChunkedArray, k: int = 3, normalized: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(row index, uint64 hash) of every word k-shingle of each (normalised) text.

    Texts with fewer than k words contribute one shingle of all their words.
    """
    norm = as_strings(texts) if normalized else normalize(texts)
    words = pc.split_pattern(pc.fill_null(norm, ""), " ")
    row = list_parent_indices(words)
    flat = pc.list_flatten(words)
    tok = md5_64(flat)
    nonempty = np.asarray(pc.not_equal(flat, "").to_numpy(zero_copy_only=False), dtype=bool)
    row, tok = row[nonempty], tok[nonempty]
    if len(tok) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    # shingle = sum of its tokens' hashes times a distinct odd constant per position
    # (tokens are MD5-random, so this is as good as hashing the concatenation; mixed
    # once at the end).  Windows stop at the end of their row; `full` marks whole ones.
    with np.errstate(over="ignore"):
        h = tok * _POSITION_MULT[0]
        full = np.ones(len(tok), dtype=bool)
        for j in range(1, k):
            ok = np.zeros(len(tok), dtype=bool)
            ok[:-j] = row[j:] == row[:-j]
            nxt = np.zeros_like(tok)
            nxt[:-j] = tok[j:]
            h += np.where(ok, nxt * _POSITION_MULT[j % len(_POSITION_MULT)], np.uint64(0))
            full &= ok
        h = mix64(h)
    # a row shorter than k words keeps one shingle: its first word folded with the rest
    counts = np.bincount(row)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    short_first = np.zeros(len(tok), dtype=bool)
    short_first[starts[(counts > 0) & (counts < k)]] = True
    keep = full | short_first
    return row[keep], h[keep]


def minhash(
    texts: pa.Array | pa.ChunkedArray, num_perm: int = 64, k: int = 3, normalized: bool = False, densify: bool = True
) -> np.ndarray:
    """(n, num_perm) uint64 MinHash signatures of word k-shingles of the normalised texts.

    Uses one-permutation hashing with densification (Shrivastava & Li, 2014):
    each shingle hash goes to one of num_perm bins and each bin keeps its
    minimum; an empty bin borrows the next non-empty bin's value (circularly),
    offset by the distance, so that equal slots still estimate Jaccard
    similarity.  This costs O(shingles) instead of O(shingles x num_perm), and
    the fixed hash makes signatures comparable across scans.  Null or empty
    texts get a signature of all ``EMPTY_SIGNATURE``.

    To sketch a *union* of texts (e.g. all templates of a campaign), take
    ``densify=False`` signatures, combine them with an element-wise minimum,
    then call ``densify_signatures`` once: the minimum of raw bins is exactly
    the union's raw bins, whereas the minimum of densified signatures is only
    approximately the union's signature.
    """
    norm = as_strings(texts) if normalized else normalize(texts)
    # filled copies of one template normalise to the same string: sign each distinct one once
    enc = pc.dictionary_encode(norm)
    uniq = enc.dictionary
    n = len(uniq)

    def sign(part: pa.Array) -> np.ndarray:
        row, sh = shingle_hashes(part, k=k, normalized=True)
        raw = np.full(len(part) * num_perm, EMPTY_SIGNATURE, dtype=np.uint64)
        if len(sh):
            bins = ((sh >> np.uint64(32)) % np.uint64(num_perm)).astype(np.int64)
            np.minimum.at(raw, row * num_perm + bins, sh)
        raw = raw.reshape(len(part), num_perm)
        return densify_signatures(raw) if densify else raw

    sig = np.concatenate(in_chunks(sign, uniq)) if n else np.zeros((0, num_perm), dtype=np.uint64)
    out = np.full((len(norm), num_perm), EMPTY_SIGNATURE, dtype=np.uint64)
    valid = valid_mask(enc.indices)
    if valid.any():
        out[valid] = sig[enc.indices.filter(pc.is_valid(enc.indices)).to_numpy()]
    return out


def densify_signatures(sig: np.ndarray) -> np.ndarray:
    """Fill empty bins (``EMPTY_SIGNATURE``) from the next non-empty bin to the right (circular), offset by the distance.

    An empty bin j whose next non-empty bin is k (k > j, or k + p after wrapping past the row's end)
    becomes ``mix64(sig[k] + (k - j) * golden)``, golden = 0x9E3779B97F4A7C15, all mod 2**64.
    Rows with no non-empty bin stay all ``EMPTY_SIGNATURE``.
    """
    sig = np.asarray(sig, dtype=np.uint64)
    n, p = sig.shape
    empty = sig == EMPTY_SIGNATURE
    if not empty.any():
        return sig
    # Bin positions in the narrowest integer type that holds 3p (a quarter of the bytes of int64 for the
    # running minimum, the bulk of the work); a non-empty bin is its own position, an empty one 2p.
    index = np.int16 if 3 * p <= np.iinfo(np.int16).max else np.int64
    pos = np.where(empty, index(2 * p), np.arange(p, dtype=index))
    # The next non-empty bin at or after each position in the row (reverse running minimum); 2p where
    # there is none, and then the circular wrap gives the row's first non-empty bin, p further on.
    nxt = np.minimum.accumulate(pos[:, ::-1], axis=1)[:, ::-1]
    first = nxt[:, 0]
    # Only empty bins of rows with a non-empty bin are filled (all-empty rows stay EMPTY_SIGNATURE).
    row, col = np.nonzero(empty & (first < 2 * p)[:, None])
    src = nxt[row, col].astype(np.int64)
    wrap = src >= 2 * p
    src[wrap] = first[row[wrap]].astype(np.int64) + p
    out = sig.copy()
    with np.errstate(over="ignore"):
        out[row, col] = mix64(sig[row, src % p] + (src - col).astype(np.uint64) * _GOLDEN)
    return out


def lsh_bands(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 band keys.  Two texts sharing any key are near-duplicate candidates.

    With b bands of r rows, texts of Jaccard similarity s collide in at least
    one band with probability 1 - (1 - s^r)^b.  Key 0 means "no key" (empty
    text); callers should skip it.  The band index is mixed in, so equal keys
    in different bands never collide.
    """
    sigs = np.asarray(sigs, dtype=np.uint64)
    if sigs.ndim != 2 or bands * rows > sigs.shape[1]:
        raise ValueError(f"need a 2-d signature array with at least bands*rows={bands * rows} columns, got shape {sigs.shape}")
    n = sigs.shape[0]
    keys = np.zeros((n, bands), dtype=np.uint64)
    empty = np.all(sigs == EMPTY_SIGNATURE, axis=1)
    with np.errstate(over="ignore"):
        for b in range(bands):
            h = np.full(n, np.uint64(b + 1) * _GOLDEN, dtype=np.uint64)
            for r in range(rows):
                h = mix64(h ^ sigs[:, b * rows + r])
            h[h == 0] = 1
            keys[:, b] = h
    keys[empty] = 0
    return keys


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of row pairs a[i], b[i] (share of equal signature slots)."""
    return np.mean(np.asarray(a) == np.asarray(b), axis=-1)


__all__ = [
    "NORMALIZE_VERSION",
    "normalize",
    "template_hash",
    "minhash",
    "lsh_bands",
    "shingle_hashes",
    "densify_signatures",
    "jaccard_estimate",
    "EMPTY_SIGNATURE",
]
