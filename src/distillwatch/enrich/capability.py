"""Which capability a prompt exercises: a hashed n-gram linear model plus a structure rule.

The model (``data/capability_model.npz``) is a multinomial logistic regression
over hashed word unigrams and bigrams plus a few length features, trained by
``scripts/train_capability_model.py`` on MIT/Apache-2.0 prompt sets (see
``data/MODEL_CARD.md``).  It is stored as plain numpy arrays, loaded without
pickle, and applied as one sparse-by-dense matrix product per batch, so there
is no per-row Python.

``long_horizon`` has no public training data of its own; it is decided by a
transparent rule on prompt structure (a long, multi-part build or plan
request), applied on top of the model's label.  See ``is_long_horizon``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from distillwatch.enrich._text import as_strings, in_chunks, list_parent_indices, md5_64, mix64, valid_mask

CAPABILITIES = (
    "software_engineering",
    "agentic_tool_use",
    "long_horizon",
    "math_reasoning",
    "writing",
    "chat",
    "other",
)
MODEL_PATH = Path(__file__).parent / "data" / "capability_model.npz"

# Feature layout.  Changing any of these needs a retrained model; the model
# file records them and CapabilityModel refuses a mismatch.
FEATURE_VERSION = 2
HASH_BITS = 17
N_HASHED = 1 << HASH_BITS
LEN_BUCKETS = 14  # log2 of the character length, 0..13+
LINE_BUCKETS = 8  # log2 of the line count
# characters that mark code, markup, maths and structured input; their counts are features
MARK_CHARS = ("{", "}", ";", "=", "(", ")", "[", "]", "<", ">", "#", "_", "`", "$", "\\", "/", "+", "*", "|", ":", "?", '"')
N_FEATURES = N_HASHED + LEN_BUCKETS + LINE_BUCKETS + len(MARK_CHARS)
MAX_FEATURE_CHARS = 2000  # the head of a prompt says what it is about
_TRIM = ".,;:!?\"'()[]{}<>*`"
_BIGRAM_MULT = np.uint64(0x9E3779B97F4A7C15)


def _csr(rows_sorted: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR straight from row-sorted triplets (no COO sort; duplicate columns are fine for products)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    if len(rows_sorted):
        np.cumsum(np.bincount(rows_sorted, minlength=n), out=indptr[1:])
    return sp.csr_matrix((vals.astype(np.float32), cols.astype(np.int64), indptr), shape=(n, N_FEATURES))


_MARK_LUT = np.full(256, -1, dtype=np.int16)
for _k, _ch in enumerate(MARK_CHARS):
    _MARK_LUT[ord(_ch)] = _k


def _count_mark_chars(s: pa.Array) -> np.ndarray:
    """(n, len(MARK_CHARS)) counts of each mark character, from the raw UTF-8 bytes in one numpy pass.

    Mark characters are ASCII, and ASCII bytes never occur inside a multi-byte
    UTF-8 sequence, so counting bytes counts characters.
    """
    n = len(s)
    out = np.zeros((n, len(MARK_CHARS)), dtype=np.float32)
    if n == 0 or s.buffers()[2] is None:
        return out
    offsets = np.frombuffer(s.buffers()[1], dtype=np.int32)[s.offset : s.offset + n + 1].astype(np.int64)
    data = np.frombuffer(s.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    code = _MARK_LUT[data]
    pos = np.flatnonzero(code >= 0)
    row = np.searchsorted(offsets - offsets[0], pos, side="right") - 1
    flat = np.bincount(row * len(MARK_CHARS) + code[pos], minlength=n * len(MARK_CHARS))
    return flat.reshape(n, len(MARK_CHARS)).astype(np.float32)


def feature_parts(texts: pa.Array | pa.ChunkedArray) -> list[sp.csr_matrix]:
    """The feature matrix as a sum of three (n, N_FEATURES) CSR parts: unigrams, bigrams, dense extras.

    Text is lower-cased, digit runs become "0", and whitespace-split tokens
    lose surrounding punctuation.  Token weights are 1/sqrt(token count) so long
    and short prompts weigh alike.  Extras: log2 length and line-count buckets
    and log counts of code/markup characters (MARK_CHARS).  Null texts give
    empty rows.  Shared by training and inference.
    """
    raw = as_strings(texts)
    n = len(raw)
    head = pc.utf8_slice_codeunits(pc.fill_null(raw, ""), 0, MAX_FEATURE_CHARS)
    s = pc.replace_substring_regex(pc.utf8_lower(head), r"\d+", "0")
    words = pc.utf8_split_whitespace(s)
    row = list_parent_indices(words)
    flat = pc.utf8_trim(pc.list_flatten(words), _TRIM)
    keep = np.asarray(pc.not_equal(flat, "").to_numpy(zero_copy_only=False), dtype=bool)
    row = row[keep]
    tok = md5_64(flat.filter(pa.array(keep)))

    counts = np.bincount(row, minlength=n) if len(row) else np.zeros(n, dtype=np.int64)
    weight = (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)
    uni = _csr(row, (tok % np.uint64(N_HASHED)).astype(np.int64), weight[row], n)
    # bigram = a token and the next one in the same row
    same = np.zeros(len(tok), dtype=bool)
    if len(tok) > 1:
        same[:-1] = row[1:] == row[:-1]
    with np.errstate(over="ignore"):
        nxt = np.zeros_like(tok)
        nxt[:-1] = tok[1:]
        big = mix64(tok * _BIGRAM_MULT + nxt + np.uint64(1))[same]
    bi = _csr(row[same], (big % np.uint64(N_HASHED)).astype(np.int64), weight[row[same]], n)

    present = valid_mask(raw)
    length = np.asarray(pc.fill_null(pc.utf8_length(raw), 0).to_numpy(), dtype=np.float64)
    lines = np.asarray(pc.fill_null(pc.count_substring(head, "\n"), 0).to_numpy(), dtype=np.float64) + 1
    extra_cols = [
        N_HASHED + np.minimum(np.floor(np.log2(length + 1)), LEN_BUCKETS - 1).astype(np.int64),
        N_HASHED + LEN_BUCKETS + np.minimum(np.floor(np.log2(lines)), LINE_BUCKETS - 1).astype(np.int64),
    ]
    extra_vals = [np.ones(n, np.float32), np.ones(n, np.float32)]
    base = N_HASHED + LEN_BUCKETS + LINE_BUCKETS
    mark_counts = _count_mark_chars(head)
    for k in range(len(MARK_CHARS)):
        extra_cols.append(np.full(n, base + k, dtype=np.int64))
        extra_vals.append(np.log1p(mark_counts[:, k]) / 4.0)
    ecols = np.stack(extra_cols, axis=1)
    evals = np.stack(extra_vals, axis=1) * present[:, None]
    ext = sp.csr_matrix(
        (evals.ravel(), ecols.ravel(), np.arange(0, n * ecols.shape[1] + 1, ecols.shape[1])),
        shape=(n, N_FEATURES),
    )
    return [uni, bi, ext]


def features(texts: pa.Array | pa.ChunkedArray) -> sp.csr_matrix:
    """Sparse (n, N_FEATURES) feature matrix (the sum of ``feature_parts``); used for training."""
    uni, bi, ext = feature_parts(texts)
    m = (uni + bi + ext).tocsr()
    m.sum_duplicates()
    return m


class CapabilityModel:
    """Weights of the linear model, loaded from a pickle-free .npz."""

    def __init__(self, path: Path = MODEL_PATH):
        if not path.exists():
            raise FileNotFoundError(f"capability model not found: {path} (run scripts/train_capability_model.py)")
        with np.load(path, allow_pickle=False) as z:
            self.weights = z["weights"].astype(np.float32)  # (N_FEATURES, n_classes)
            self.bias = z["bias"].astype(np.float32)
            self.classes = tuple(str(c) for c in z["classes"])
            self.info: dict[str, Any] = json.loads(str(z["info"]))
        layout = self.info.get("features", {})
        if layout.get("version") != FEATURE_VERSION or self.weights.shape[0] != N_FEATURES:
            raise ValueError(
                f"{path}: model built for feature layout {layout}, this code uses version "
                f"{FEATURE_VERSION} with {N_FEATURES} features; retrain the model"
            )
        unknown = set(self.classes) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"{path}: unknown classes {sorted(unknown)}")

    def scores(self, texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """(n, n_classes) class probabilities (softmax of the linear scores)."""
        z = sum(np.asarray(part @ self.weights) for part in feature_parts(texts)) + self.bias
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


@lru_cache(maxsize=1)
def _model() -> CapabilityModel:
    return CapabilityModel()


# long_horizon rule: a long prompt, structured as many parts, asking to build or plan something.
LONG_HORIZON_MIN_CHARS = 1200
LONG_HORIZON_MIN_PARTS = 5
_LIST_ITEM = r"(?im)^\s*(?:[-*\x{2022}]|\d{1,2}[.)]|step \d+|phase \d+|milestone \d+|stage \d+)\s*\S"
_BUILD_VERB = (
    r"(?i)\b(?:build|implement|create|develop|design|architect|set up|migrate|refactor|deploy|"
    r"plan|roadmap|end[- ]to[- ]end|full[- ]stack|complete (?:application|system|project|app|pipeline))\b"
)


# ... or an explicit reference to a many-step undertaking, whatever the length.
_MULTI_STEP = (
    r"(?i)\b\d{1,3}[- ](?:step|phase|stage|milestone)s? (?:plan|migration|project|process|roadmap|refactor(?:ing)?|"
    r"rollout|implementation|pipeline|build|workflow)\b"
    r"|\b(?:step|phase|stage|milestone) \d{1,3} (?:of|/) \d{1,3}\b"
    r"|\bmulti[- ](?:step|stage|phase) (?:project|plan|task|migration|workflow|build|implementation)\b"
    r"|\bplan and execute\b"
    r"|\bcontinue (?:with|to|on) (?:the )?next (?:step|phase|stage|milestone)\b"
)


def is_long_horizon(texts: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
    """True for long multi-part build/plan requests: at least LONG_HORIZON_MIN_CHARS characters,
    at least LONG_HORIZON_MIN_PARTS list items / numbered steps / phases, and a build or plan verb.

    Or an explicit many-step undertaking at any length: "a 12-step migration",
    "step 4 of 9", "multi-step project", "plan and execute", "continue with the
    next phase".  Markdown headings are not counted: a "#" line is as often a
    code comment."""
    s = as_strings(texts)
    head = pc.utf8_slice_codeunits(s, 0, 20_000)
    long_enough = pc.greater_equal(pc.utf8_length(s), LONG_HORIZON_MIN_CHARS)
    parts = pc.count_substring_regex(head, _LIST_ITEM)
    many_parts = pc.greater_equal(parts, LONG_HORIZON_MIN_PARTS)
    builds = pc.match_substring_regex(head, _BUILD_VERB)
    structured = pc.and_(pc.and_(long_enough, many_parts), builds)
    return pc.or_(structured, pc.match_substring_regex(head, _MULTI_STEP))


# How much a system prompt counts next to the user turn (product of experts: the
# system's log-probabilities are added at this weight).  The user turn says what is
# asked now; the system prompt is context, and often a generic persona.
SYSTEM_WEIGHT = 0.5
# A user turn counts fully from this many words; shorter ones count less (down to a quarter).
FULL_WEIGHT_WORDS = 12


def _probs(model: CapabilityModel, texts: pa.Array) -> np.ndarray:
    return np.concatenate(in_chunks(model.scores, texts)) if len(texts) else np.zeros((0, len(model.classes)))


def classify(texts: pa.Array | pa.ChunkedArray, systems: pa.Array | pa.ChunkedArray | None = None) -> pa.Array:
    """Capability label per text (one of CAPABILITIES); null text gives null.

    With ``systems`` (the system prompts, same length), each label combines
    the user turn's and the system prompt's class probabilities:
    log p = w * log p(user) + SYSTEM_WEIGHT * log p(system), where w grows
    with the user turn's length (a quarter below 3 words, full from
    FULL_WEIGHT_WORDS).  A short follow-up ("do it now") then takes its label
    from the system prompt, while a clear user request is not overruled by a
    generic persona.  Software
    engineering, agentic or other prompts that are long-horizon requests
    (``is_long_horizon``, on user turn or system prompt) become ``long_horizon``.
    """
    s = as_strings(texts)
    model = _model()
    probs = _probs(model, s)
    lh = pc.fill_null(is_long_horizon(s), False)
    if systems is not None:
        sys_s = as_strings(systems)
        if len(sys_s) != len(s):
            raise ValueError(f"texts and systems differ in length: {len(s)} vs {len(sys_s)}")
        has_sys = valid_mask(sys_s) & (np.asarray(pc.fill_null(pc.utf8_length(sys_s), 0).to_numpy()) > 0)
        if has_sys.any():
            idx = np.flatnonzero(has_sys)
            sys_p = _probs(model, sys_s.take(pa.array(idx)))
            # a short user turn ("ok, do it") says little, whatever the model's confidence
            words = np.asarray(pc.fill_null(pc.count_substring_regex(s.take(pa.array(idx)), r"\S+"), 0).to_numpy())
            user_w = np.clip(words / FULL_WEIGHT_WORDS, 0.25, 1.0)[:, None]
            logp = user_w * np.log(np.maximum(probs[idx], 1e-9)) + SYSTEM_WEIGHT * np.log(np.maximum(sys_p, 1e-9))
            probs[idx] = logp  # only the argmax is used below
            lh = pc.or_(lh, pc.fill_null(is_long_horizon(sys_s), False))
    labels = pa.array(np.array(model.classes, dtype=object)[probs.argmax(axis=1)], pa.string())
    lh_ok = pc.is_in(labels, value_set=pa.array(["software_engineering", "agentic_tool_use", "other"]))
    labels = pc.if_else(pc.and_(lh, lh_ok), pa.scalar("long_horizon"), labels)
    return pc.if_else(pc.is_null(s), pa.scalar(None, pa.string()), labels)


def model_info() -> dict[str, Any]:
    """What the shipped model was trained on, its licences, and its held-out accuracy."""
    info = dict(_model().info)
    info["model_file"] = str(MODEL_PATH)
    info["system_weight"] = SYSTEM_WEIGHT
    info["long_horizon_rule"] = {
        "min_chars": LONG_HORIZON_MIN_CHARS,
        "min_parts": LONG_HORIZON_MIN_PARTS,
        "applies_to": ["software_engineering", "agentic_tool_use", "other"],
    }
    return info
