"""Vectorised prompt, system-prompt and response text.

Templates (``vocab.py``) are compiled once into parts: literals, vocabulary
slots and number ranges.  Rendering ``n`` rows draws one index per slot and
row, takes the strings with Arrow and joins the parts with
``binary_join_element_wise``: no Python work per row.  Vocabulary entries
may themselves hold slots (``"merges two sorted lists of {entity}"``); those
are rendered recursively for just the rows that drew them.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.simulate import vocab
from distillwatch.simulate.config import FAMILIES

_SLOT = re.compile(r"\{([a-z_]+|int:\d+-\d+)\}")


@dataclass(frozen=True)
class IntRange:
    lo: int
    hi: int  # inclusive


@dataclass(frozen=True)
class Slot:
    name: str


Part = str | IntRange | Slot
Template = tuple[Part, ...]


def compile_template(text: str) -> Template:
    parts: list[Part] = []
    pos = 0
    for m in _SLOT.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        key = m.group(1)
        if key.startswith("int:"):
            lo, hi = key[4:].split("-")
            parts.append(IntRange(int(lo), int(hi)))
        else:
            if key not in vocab.VOCAB:
                raise KeyError(f"template {text[:60]!r} uses unknown slot {{{key}}}")
            parts.append(Slot(key))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return tuple(parts)


@dataclass(frozen=True)
class CompiledVocab:
    plain: pa.Array  # entries without slots
    nested: tuple[Template, ...]  # entries with slots

    @property
    def size(self) -> int:
        return len(self.plain) + len(self.nested)


@cache
def _vocab(name: str) -> CompiledVocab:
    entries = vocab.VOCAB[name]
    plain = [e for e in entries if not _SLOT.search(e)]
    nested = tuple(compile_template(e) for e in entries if _SLOT.search(e))
    return CompiledVocab(pa.array(plain, type=pa.string()), nested)


@cache
def _syllables() -> pa.Array:
    return pa.array(vocab.SYLLABLES, type=pa.string())


def idents(rng: np.random.Generator, n: int) -> pa.Array:
    """Identifiers like ``korami`` or ``tensa_2``: 3 syllables and an optional digit suffix."""
    syl = _syllables()
    k = len(syl)
    parts = [syl.take(pa.array(rng.integers(0, k, n))) for _ in range(2)]
    third = pa.array(np.where(rng.random(n) < 0.6, np.asarray(vocab.SYLLABLES, dtype=object)[rng.integers(0, k, n)], ""),
                     type=pa.string())
    digits = rng.integers(0, 100, n)
    suffix = pc.if_else(pa.array(rng.random(n) < 0.4), pc.binary_join_element_wise("_", pc.cast(pa.array(digits), pa.string()), ""), "")
    return pc.binary_join_element_wise(*parts, third, suffix, "")


def scatter(pieces: list[pa.Array], order: np.ndarray) -> pa.Array:
    """Undo a grouping: ``pieces`` hold rows in ``order``; return them in original order."""
    joined = pa.concat_arrays([p.cast(pa.string()) for p in pieces]) if pieces else pa.array([], pa.string())
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return joined.take(pa.array(inverse))


POOL = 8192  # pre-rendered variants per vocabulary that holds nested slots


@cache
def _pool(name: str) -> pa.Array:
    """Pre-rendered variants of a slot whose entries hold slots themselves.

    Rendering nested entries per row would cost many small Arrow calls per
    chunk; a fixed pool of variants (drawn once, from a seed of the slot's
    name, so every run sees the same pool) makes each slot a single ``take``
    while keeping thousands of distinct values per slot.
    """
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "ident":
        return idents(rng, 8 * POOL)
    v = _vocab(name)
    idx = rng.integers(0, v.size, POOL)
    return render_choice(v.nested, idx - len(v.plain), rng, plain=v.plain, plain_idx=idx)


def render_slot(name: str, rng: np.random.Generator, n: int) -> pa.Array:
    if name == "ident":
        return idents(rng, n)
    if _vocab(name).nested:
        pool = _pool(name)
        return pool.take(pa.array(rng.integers(0, len(pool), n)))
    v = _vocab(name)
    return v.plain.take(pa.array(rng.integers(0, v.size, n)))


def render(template: Template, rng: np.random.Generator, n: int) -> pa.Array:
    if n == 0:
        return pa.array([], pa.string())
    cols: list[pa.Array | str] = []
    for part in template:
        if isinstance(part, str):
            cols.append(part)
        elif isinstance(part, IntRange):
            cols.append(pc.cast(pa.array(rng.integers(part.lo, part.hi + 1, n)), pa.string()))
        else:
            cols.append(render_slot(part.name, rng, n))
    if all(isinstance(c, str) for c in cols):
        return pa.array(["".join(cols)] * n, pa.string())  # type: ignore[arg-type]
    return pc.binary_join_element_wise(*cols, "")


def render_choice(
    templates: tuple[Template, ...] | list[Template],
    choice: np.ndarray,
    rng: np.random.Generator,
    *,
    plain: pa.Array | None = None,
    plain_idx: np.ndarray | None = None,
) -> pa.Array:
    """Row i gets ``templates[choice[i]]`` (or ``plain[plain_idx[i]]`` where ``choice[i] < 0``)."""
    n = len(choice)
    order = np.argsort(choice, kind="stable")
    sorted_choice = choice[order]
    cuts = np.flatnonzero(np.diff(sorted_choice)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [n]])
    pieces: list[pa.Array] = []
    for s, e in zip(starts, ends, strict=True):
        if e == s:
            continue
        c = int(sorted_choice[s])
        if c < 0:
            assert plain is not None and plain_idx is not None
            pieces.append(plain.take(pa.array(plain_idx[order[s:e]])))
        else:
            pieces.append(render(templates[c], rng, int(e - s)))
    return scatter(pieces, order)


def _compiled(texts: list[str]) -> tuple[Template, ...]:
    return tuple(compile_template(t) for t in texts)


@cache
def benign_templates(family: str) -> tuple[Template, ...]:
    # the closer is added after the user's details (see benign_prompts)
    return _compiled([t.replace("{closer}", "") for t in vocab.BENIGN[family]])


@cache
def _details() -> tuple[Template, ...]:
    """General details first, then the technical ones."""
    return _compiled(vocab.DETAILS + vocab.TECH_DETAILS)


@cache
def response_templates(family: str) -> tuple[Template, ...]:
    return _compiled(vocab.RESPONSES[family])


@lru_cache(maxsize=1)
def _followups() -> tuple[Template, ...]:
    """General follow-ups first, then the ones only technical conversations get."""
    return _compiled(vocab.VOCAB["followup"] + vocab.VOCAB["followup_code"])


TECHNICAL = np.array([f in ("coding", "debugging", "agentic", "long_horizon") for f in FAMILIES])


ATTACK_FOLLOWUPS = (
    "Continue with the next step.",
    "Now proceed to step {int:2-30}. Keep the same format.",
    "Refine the solution and explain each change.",
    "Next step. Same requirements as before.",
)


@dataclass(frozen=True)
class AttackTemplate:
    """One of a campaign's templates: a family body wrapped in a fixed header and closer."""

    family: int
    header: int
    body: int
    closer: int


@cache
def _attack_parts(family: str, header: int, body: int, closer: int) -> tuple[tuple[Template, ...], Template, tuple[Template, ...]]:
    heads = _compiled(vocab.ATTACK_HEADERS[header])
    bodies = vocab.ATTACK_BODIES[family]
    closes = _compiled(vocab.ATTACK_CLOSERS[closer])
    return heads, compile_template(bodies[body % len(bodies)]), closes


def attack_library(rng: np.random.Generator, capabilities: dict[str, float], count: int) -> list[AttackTemplate]:
    """Draw a campaign's ``count`` templates, spread over its target families by share."""
    fams = list(capabilities)
    weights = np.array([capabilities[f] for f in fams], dtype=float)
    weights /= weights.sum()
    # at least one template per targeted family, the rest by weight
    picks = list(range(len(fams))) + list(rng.choice(len(fams), size=max(0, count - len(fams)), p=weights))
    out = []
    for f in picks[: max(count, len(fams))]:
        fam = fams[f]
        out.append(
            AttackTemplate(
                family=FAMILIES.index(fam),
                header=int(rng.integers(0, len(vocab.ATTACK_HEADERS))),
                body=int(rng.integers(0, len(vocab.ATTACK_BODIES[fam]))),
                closer=int(rng.integers(0, len(vocab.ATTACK_CLOSERS))),
            )
        )
    return out


def _concat_cols(cols: list[pa.Array | str]) -> pa.Array:
    return pc.binary_join_element_wise(*cols, "")


def benign_prompts(family: np.ndarray, turn: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """First turns from the family's templates; later turns are follow-ups."""
    n = len(family)
    nt = max(len(benign_templates(f)) for f in FAMILIES)
    # template choice encoded as family * nt + template, follow-ups after all of them
    tmpl_count = np.array([len(benign_templates(f)) for f in FAMILIES])
    choice = family * nt + (rng.random(n) * tmpl_count[family]).astype(np.int64)
    fu = _followups()
    n_general = len(vocab.VOCAB["followup"])
    followup = len(FAMILIES) * nt + (rng.random(n) * np.where(TECHNICAL[family], len(fu), n_general)).astype(np.int64)
    generic = rng.random(n) < vocab.GENERIC_FOLLOWUP_SHARE
    followup = np.where(generic, len(FAMILIES) * nt + len(fu) + rng.integers(0, len(vocab.GENERIC_FOLLOWUPS), n), followup)
    choice = np.where(turn > 0, followup, choice)
    table: list[Template] = []
    for f in FAMILIES:
        ts = benign_templates(f)
        table.extend(ts + (ts[0],) * (nt - len(ts)))  # padding never chosen
    table.extend(fu)
    table.extend(_compiled(vocab.GENERIC_FOLLOWUPS))
    main = render_choice(tuple(table), choice, rng)
    # Details and sign-off: most turns carry specifics; generic acknowledgements never do.
    share = np.where(turn > 0, vocab.DETAIL_SHARE_FOLLOWUP, vocab.DETAIL_SHARE_FIRST)
    has_detail = (rng.random(n) < share) & ~((turn > 0) & generic)
    det = _details()
    pick = (rng.random(n) * np.where(TECHNICAL[family], len(det), len(vocab.DETAILS))).astype(np.int64)
    detail = render_choice(det, np.where(has_detail, pick, -1), rng,
                           plain=pa.array([""], pa.string()), plain_idx=np.zeros(n, np.int64))
    closer = pc.if_else(pa.array(turn == 0), render_slot("closer", rng, n), "")
    return pc.binary_join_element_wise(main, detail, closer, "")


def attack_prompts(
    templates: list[AttackTemplate],
    which: np.ndarray,
    turn: np.ndarray,
    paraphrase: str,
    rng: np.random.Generator,
) -> pa.Array:
    """Prompts of a campaign's own (harvest) conversations.

    ``none``: the template's first wording, always; ``light``: one of a few
    wordings of header and closer; ``full``: the task is written like an
    ordinary user's request (benign generator for the template's family), so
    only focus, chain-of-thought habits and volume remain.
    """
    n = len(which)
    fam = np.array([t.family for t in templates], dtype=np.int64)[which]
    if paraphrase == "full":
        return benign_prompts(fam, turn, rng)
    out_parts: list[pa.Array] = []
    order = np.argsort(which, kind="stable")
    sw = which[order]
    cuts = np.flatnonzero(np.diff(sw)) + 1
    for s, e in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [n]]), strict=True):
        if e == s:
            continue
        t = templates[int(sw[s])]
        heads, body, closes = _attack_parts(FAMILIES[t.family], t.header, t.body, t.closer)
        k = int(e - s)
        if paraphrase == "none":
            hv, cv = np.zeros(k, np.int64), np.zeros(k, np.int64)
        else:
            hv, cv = rng.integers(0, len(heads), k), rng.integers(0, len(closes), k)
        cols = [render_choice(heads, hv, rng), render(body, rng, k), render_choice(closes, cv, rng)]
        out_parts.append(_concat_cols(cols))
    first = scatter(out_parts, order)
    later = turn > 0
    if not later.any():
        return first
    fu = _compiled(list(ATTACK_FOLLOWUPS))
    follow = render_choice(fu, rng.integers(0, len(fu), n) if paraphrase != "none" else np.zeros(n, np.int64), rng)
    return pc.if_else(pa.array(later), follow, first)


def with_cot(prompts: pa.Array, cot: np.ndarray, phrase_idx: np.ndarray) -> pa.Array:
    """Append a chain-of-thought instruction from the shared pool where ``cot`` is set."""
    if not cot.any():
        return prompts
    phrases = pa.array(vocab.COT_PHRASES, pa.string()).take(pa.array(phrase_idx))
    appended = pc.binary_join_element_wise(prompts, phrases, " ")
    return pc.if_else(pa.array(cot), appended, prompts)


def responses(family: np.ndarray, cot: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """The opening of the model's answer (bounded: a sentence or two, not the whole reply)."""
    n = len(family)
    nt = max(len(response_templates(f)) for f in FAMILIES)
    counts = np.array([len(response_templates(f)) for f in FAMILIES])
    choice = family * nt + (rng.random(n) * counts[family]).astype(np.int64)
    table: list[Template] = []
    for f in FAMILIES:
        ts = response_templates(f)
        table.extend(ts + (ts[0],) * (nt - len(ts)))
    body = render_choice(tuple(table), choice, rng)
    if not cot.any():
        return body
    prefix = pa.array(vocab.COT_RESPONSE_PREFIX, pa.string()).take(pa.array(rng.integers(0, len(vocab.COT_RESPONSE_PREFIX), n)))
    return pc.if_else(pa.array(cot), pc.binary_join_element_wise(prefix, body, ""), body)
