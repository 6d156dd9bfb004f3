"""The account graph: typed weighted edges from shared keys (their communities: ``partition``).

No all-pairs comparison anywhere.  For each pair signal, accounts are grouped
by key in the engine.  A group of at most ``max_group`` accounts links all its
members; a larger group links each member to ``neighbours`` others only (a
circulant over a key-specific shuffle), so a university NAT or a popular user
agent becomes sparse, weak evidence instead of a clique.  A key's weight falls
with its group size like an inverse document frequency: ln(N/size)/ln(N/2) for
N accounts, 1 for a key two accounts share, near 0 for a key everyone has.

Everything up to the combined, thresholded pair list runs in the engine on
integer ids: each account is its position in the scan's account list (accounts
that only the registration records know get ids past the end and are dropped
once their keys have counted towards group sizes), each key group a 64-bit
group number, each signal a small integer code.  Only the typed edges (one per
account pair and signal, already combined over the keys the pair shares) and
the combined pairs reach Python, as int32/float64 numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from ibis import _

from distillwatch import engine as engines


@dataclass
class EdgeOptions:
    max_group: int = 40
    neighbours: int = 6
    key_scale: float = 1.0
    # Keys a pair must share before it is linked by this signal at all (near-duplicate prompts: one
    # shared LSH band between two accounts is what a single common short prompt gives).
    min_shared: int = 1
    # Each account keeps its ``max_partners`` strongest edges of this kind (an edge stays when either end
    # keeps it; 0 keeps all): edges grow with accounts, not with accounts x group sizes x keys.
    max_partners: int = 60
    # Each account keeps only its ``max_keys`` rarest shared keys of this kind (0 keeps all): bounds the pair
    # rows a key-rich account (64 sampled prompts x 16 LSH bands) makes before they are combined.
    max_keys: int = 0
    # Pair rows (before they are summed per account pair) one engine query may make: a signal expected to
    # make more has its pairs made in slices of accounts (see ``key_edges``).  0: always one query.
    pair_rows_per_slice: int = 20_000_000


@dataclass
class PairSource:
    """One pair signal's keys and how they become edges."""

    kind: str  # the signal id
    family: str
    weight: float  # the signal's weight in the combined pair weight
    keys: ir.Table  # (account_id, key)
    opts: EdgeOptions


@dataclass
class Edges:
    """Typed edges and combined pairs, by account position (0..n-1).

    Typed: one per account pair and signal, ``src < dst``, sorted by
    (src, dst, kind); ``kind`` is a code into ``kinds`` (and ``families``,
    the family of each kind).  Combined: one per account pair whose summed
    weighted strength is at least the threshold, sorted by (src, dst).
    """

    src: np.ndarray  # int32
    dst: np.ndarray  # int32
    kind: np.ndarray  # int8 code into kinds
    strength: np.ndarray  # float64, 0..1
    weighted: np.ndarray  # float64, strength x the kind's weight
    pair_src: np.ndarray  # int32
    pair_dst: np.ndarray  # int32
    pair_weight: np.ndarray  # float64
    kinds: list[str]
    families: list[str]


def account_index(con, account_ids: pa.Array, name: str = "dw_link_ids") -> ir.Table:
    """(account_id, idx int32): each scanned account's position in ``account_ids``."""
    t = pa.table(
        {
            "account_id": pa.array(account_ids, pa.string()),
            "idx": pa.array(np.arange(len(account_ids), dtype=np.int32)),
        }
    )
    return con.create_table(name, t, temp=True, overwrite=True)


# Sums of weights are taken in fixed point (2^-32 steps): an integer sum is the same in any order, so
# the engine's parallel aggregation gives the same edges, ranks and threshold decisions on every run.
FIXED_POINT = float(2**32)


def _fixed_sum(x: ir.FloatingValue) -> ir.FloatingScalar:
    return (x * FIXED_POINT).round().cast("int64").sum().cast("float64") / FIXED_POINT


def _ranked_keys(keys: ir.Table, ids: ir.Table, n_accounts: int, opts: EdgeOptions) -> ir.Table:
    """(account_id, key) -> (gid, idx, size, w, wf, rank): one row per account and key shared by two or more.

    ``idx`` is the account's position in ``ids`` (accounts outside it, known
    only from registration records, get distinct positions from
    ``n_accounts`` on), ``gid`` numbers the key groups, ``size`` counts the
    group, ``w`` is its weight (``wf`` in fixed point) and ``rank`` the
    account's place in a key-specific shuffle of a group bigger than
    ``max_group`` (null in smaller groups, which link all their members).  Group sizes come from a group-by and
    numbers from sorts over the distinct keys and accounts only: windows over
    every (account, key) row, one of them a global sort, spilled tens of GB at
    90M exchanges.
    """
    # Keys keep their own type (a 64-bit LSH band is grouped and joined as an integer, not as its decimal
    # string); the string form is made only where it is hashed, for the shuffle of big groups below.
    keys = keys.select("account_id", "key").distinct()
    # Accounts outside ``ids`` (registration records only) are numbered over the distinct accounts, then
    # every (account, key) row takes its position in one join.
    seen = keys.select("account_id").distinct()
    unseen = seen.filter(~seen.account_id.isin(ids.account_id))
    # ibis' row_number() and dense_rank() count from 0.
    unseen = unseen.select(
        "account_id", idx=(ibis.row_number().over(order_by="account_id") + n_accounts).cast("int32")
    )
    # Cast alike: the keys of an incremental scan come from stored tables whose account_id is NOT NULL, and a
    # set operation needs equal schemas, nullability included.
    positions = ids.select(account_id=ids.account_id.cast("string"), idx=ids.idx).union(
        unseen.select(account_id=unseen.account_id.cast("string"), idx=unseen.idx), distinct=False
    )
    j = keys.join(positions, keys.account_id == positions.account_id)
    k = j.select(account_id=keys.account_id, key=keys.key, idx=positions.idx)
    groups = k.group_by("key").aggregate(size=_.count())
    groups = groups.filter(groups.size >= 2)
    # Numbered in the order of the keys' string form (only their order matters: it breaks ties in the key
    # cap below; without the cap any numbering does, so the cheaper order of the key itself is used).
    order_key = groups.key.cast("string") if opts.max_keys > 0 else groups.key
    groups = groups.select(gkey=groups.key, size=groups.size, gid=ibis.row_number().over(order_by=order_key))
    j = k.join(groups, k.key == groups.gkey)
    k = j.select(account_id=j.account_id, key=j.key, idx=j.idx, size=j.size, gid=j.gid)
    n = max(n_accounts, 3)
    idf = ((n / k.size.cast("float64")).ln() / float(np.log(n / 2.0))).clip(lower=0.0, upper=1.0)
    # The weight in fixed point once per (account, key) row, not once per pair row (see ``FIXED_POINT``).
    k = k.mutate(w=idf, wf=(idf * FIXED_POINT).round().cast("int64"))
    if opts.max_keys > 0:
        rarest = ibis.window(group_by="idx", order_by=["size", "gid"])
        k = k.filter(ibis.row_number().over(rarest) < opts.max_keys)
        # The group's size for linking is who kept the key; its weight stays that of its full size.
        k = k.mutate(size=k.idx.count().over(ibis.window(group_by="gid")))
        k = k.filter(k.size >= 2)
    # Shuffle within a key by a key-specific hash, so big groups link different neighbours per key.  Only
    # groups bigger than ``max_group`` are linked by their shuffle (a circulant); smaller ones link all
    # their members, so their rows skip the sort.
    big = k.filter(k.size > opts.max_group)
    order = ibis.window(
        group_by="gid", order_by=[(big.account_id.concat("|", big.key.cast("string"))).hash(), big.account_id]
    )
    big = big.select("gid", "idx", "size", "w", "wf", rank=ibis.row_number().over(order))
    small = k.filter(k.size <= opts.max_group)
    small = small.select("gid", "idx", "size", "w", "wf", rank=ibis.null("int64"))
    return big.union(small, distinct=False)


def _expected_pair_rows(k: ir.Table, opts: EdgeOptions) -> int:
    """Pair rows ``key_edges`` makes from the ranked keys ``k`` (one per key and unordered pair, before filters).

    Each (account, key) row of a group of at most ``max_group`` pairs with the group's other members;
    each row of a bigger group with its 2 x ``neighbours`` circulant neighbours; each pair is made once.
    """
    per_row = ibis.ifelse(k.size <= opts.max_group, k.size - 1, 2 * opts.neighbours).cast("int64")
    total = per_row.sum().to_pyarrow().as_py()
    return int(total or 0) // 2


def _slice_count(expected_pair_rows: int, opts: EdgeOptions) -> int:
    if opts.pair_rows_per_slice <= 0:
        return 1
    return max(1, -(-expected_pair_rows // opts.pair_rows_per_slice))


def key_edges(
    con,
    keys: ir.Table,
    ids: ir.Table,
    n_accounts: int,
    opts: EdgeOptions,
    name: str = "keys",
    working: list[str] | None = None,
) -> ir.Table:
    """(account_id, key) -> (src, dst, strength): src < dst account positions, strength 0..1.

    Strength is 1 - exp(-key_scale x sum of the shared keys' weights), the
    noisy-or of the keys a pair shares; pairs sharing fewer than
    ``opts.min_shared`` keys are dropped, and each account keeps its
    ``opts.max_partners`` strongest pairs (a pair stays when either end keeps
    it).  Only pairs of scanned accounts (positions below ``n_accounts``) are
    returned.

    Each pair is made once per shared key, smaller position first (half the
    rows of making it from both ends), and summed; the sums are then read from
    both ends for each account's ranking of its partners.  A signal expected to
    make more than ``opts.pair_rows_per_slice`` pair rows makes them in slices
    (the smaller position modulo the number of slices), each slice a query of
    its own: at 90M exchanges one query holding all of a signal's pair rows ran
    DuckDB out of its memory cap.  The sums are complete in a slice, because
    every row of a pair falls in the slice of its smaller end; the rankings run
    in the same slices over the summed pairs, by the ranking account.

    The names of the tables it makes are appended to ``working`` (when given): the
    returned expression reads them, so they may be dropped once it is materialised.
    """
    made = working if working is not None else []
    ranked = _ranked_keys(keys, ids, n_accounts, opts)
    k = con.create_table(f"dw_keyrank_{name}", ranked, temp=True, overwrite=True)
    made.append(f"dw_keyrank_{name}")
    slices = _slice_count(_expected_pair_rows(k, opts), opts)
    if slices == 1:
        totals = _pair_strengths(k, n_accounts, opts)
        if opts.max_partners <= 0:
            return totals.select(src=totals.a, dst=totals.b, strength=totals.strength)
        ends = _strongest_ends(totals, opts)
    else:
        made.extend(f"dw_link_pairs_{name}_{s}" for s in range(slices))
        totals = _union(
            [
                con.create_table(
                    f"dw_link_pairs_{name}_{s}",
                    _pair_strengths(k, n_accounts, opts, slices, s),
                    temp=True,
                    overwrite=True,
                )
                for s in range(slices)
            ]
        )
        if opts.max_partners <= 0:
            return totals.select(src=totals.a, dst=totals.b, strength=totals.strength)
        made.extend(f"dw_link_ends_{name}_{s}" for s in range(slices))
        ends = _union(
            [
                con.create_table(
                    f"dw_link_ends_{name}_{s}",
                    _strongest_ends(totals, opts, slices, s),
                    temp=True,
                    overwrite=True,
                )
                for s in range(slices)
            ]
        )
    edges = ends.select(
        src=ibis.least(ends.a, ends.b), dst=ibis.greatest(ends.a, ends.b), strength=ends.strength
    )
    # A pair both ends keep appears twice, with the same strength.
    return edges.group_by(["src", "dst"]).aggregate(strength=edges.strength.max())


def _union(parts: list[ir.Table]) -> ir.Table:
    return parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]


def _pair_strengths(
    k: ir.Table, n_accounts: int, opts: EdgeOptions, slices: int = 1, part: int = 0
) -> ir.Table:
    """(a, b, strength), a < b: every pair of scanned accounts sharing keys whose smaller end is in slice ``part``."""
    small = k.filter(k.size <= opts.max_group)
    a, b = small.view(), small.view()
    if slices > 1:
        a = a.filter(a.idx % slices == part)
    small_pairs = a.join(b, [a.gid == b.gid, a.idx < b.idx]).select(a=a.idx, b=b.idx, wf=a.wf)
    big = k.filter(k.size > opts.max_group)
    # Member i reaches i+1..i+neighbours and i-1..i-neighbours of the shuffle, so every circulant pair is
    # reached from both its ends (the offsets are symmetric); it is kept from its smaller end only.
    steps = [o for o in range(-opts.neighbours, opts.neighbours + 1) if o != 0]
    own = big.filter(big.idx % slices == part) if slices > 1 else big
    reach = own.cross_join(ibis.memtable({"off": steps}))
    reach = reach.mutate(target=(reach["rank"] + reach.off + reach.size) % reach.size)
    other = big.view()
    big_pairs = reach.join(
        other, [reach.gid == other.gid, reach.target == other["rank"], reach.idx < other.idx]
    ).select(a=reach.idx, b=other.idx, wf=reach.wf)
    pairs = small_pairs.union(big_pairs, distinct=False)
    # Positions past the scan's accounts belong to registration-only accounts: they counted in group sizes
    # above.  a < b, so b below n_accounts is enough.
    pairs = pairs.filter(pairs.b < n_accounts)
    agg = pairs.group_by(["a", "b"]).aggregate(total=pairs.wf.sum(), shared=_.count())
    if opts.min_shared > 1:
        agg = agg.filter(agg.shared >= opts.min_shared)
    total = agg.total.cast("float64") / FIXED_POINT
    return agg.select("a", "b", strength=1.0 - (-opts.key_scale * total).exp())


def _strongest_ends(totals: ir.Table, opts: EdgeOptions, slices: int = 1, part: int = 0) -> ir.Table:
    """(a, b, strength): each account ``a`` of slice ``part`` and its ``max_partners`` strongest partners ``b``."""
    forward = totals.select("a", "b", "strength")
    backward = totals.select(a=totals.b, b=totals.a, strength=totals.strength)
    if slices > 1:
        forward = forward.filter(forward.a % slices == part)
        backward = backward.filter(backward.a % slices == part)
    ends = forward.union(backward, distinct=False)
    strongest = ibis.window(group_by="a", order_by=[ibis.desc("strength"), "b"])
    return ends.filter(ibis.row_number().over(strongest) < opts.max_partners)


def build_edges(con, sources: list[PairSource], account_ids: pa.Array, min_pair_weight: float = 0.0) -> Edges:
    """Typed edges of every pair signal and the combined pairs, computed in the engine."""
    n = len(account_ids)
    kinds = [s.kind for s in sources]
    families = [s.family for s in sources]
    if not sources:
        return _empty_edges(kinds, families)
    ids = account_index(con, account_ids)
    parts = []
    for code, s in enumerate(sources):
        working: list[str] = []
        e = key_edges(con, s.keys, ids, n, s.opts, name=s.kind, working=working)
        typed_kind = e.select(
            src=e.src.cast("int32"),
            dst=e.dst.cast("int32"),
            kind=ibis.literal(code, "int8"),
            strength=e.strength.cast("float64"),
            weighted=(e.strength * float(s.weight)).cast("float64"),
        )
        # One table per kind: the union below then has a short plan (Spark renders a cached plan as text,
        # and nine kinds' joins and windows in one plan ran its driver out of heap).
        parts.append(con.create_table(f"dw_link_edges_{code}", typed_kind, temp=True, overwrite=True))
        # The kind's keys, ranks and pair slices are in its edge table now; at 90M exchanges they are GBs.
        _drop(con, working)
    typed = parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]
    typed = con.create_table("dw_link_typed", typed, temp=True, overwrite=True)
    _drop(con, [f"dw_link_edges_{code}" for code in range(len(sources))])
    combined = typed.group_by(["src", "dst"]).aggregate(weight=_fixed_sum(typed.weighted))
    combined = combined.filter(combined.weight >= min_pair_weight)
    # One result table in Python at a time: its columns become numpy arrays before the next is fetched.
    t = typed.order_by(["src", "dst", "kind"]).to_pyarrow()
    typed_cols = {c: _np(t, c, dtype) for c, dtype in TYPED_COLUMNS.items()}
    del t
    c = combined.order_by(["src", "dst"]).to_pyarrow()
    pair_cols = {c_: _np(c, c_, dtype) for c_, dtype in PAIR_COLUMNS.items()}
    del c
    edges = Edges(
        src=typed_cols["src"],
        dst=typed_cols["dst"],
        kind=typed_cols["kind"],
        strength=typed_cols["strength"],
        weighted=typed_cols["weighted"],
        pair_src=pair_cols["src"],
        pair_dst=pair_cols["dst"],
        pair_weight=pair_cols["weight"],
        kinds=kinds,
        families=families,
    )
    _drop(con, ["dw_link_typed", "dw_link_ids"])
    # What follows (Leiden, scoring) is Python's: DuckDB's pool, full to its limit after these queries,
    # goes back to the operating system instead of sitting beside the graph.
    engines.release_memory(con)
    return edges


def _drop(con, names: list[str]) -> None:
    """Drops the link stage's own working tables (DuckDB only: on Spark ``distillwatch.spark`` manages them)."""
    if not engines.is_duckdb(con):
        return
    for name in names:
        con.drop_table(name, force=True)


TYPED_COLUMNS = {"src": np.int32, "dst": np.int32, "kind": np.int8, "strength": np.float64, "weighted": np.float64}
PAIR_COLUMNS = {"src": np.int32, "dst": np.int32, "weight": np.float64}


def _np(t: pa.Table, column: str, dtype: type) -> np.ndarray:
    return t.column(column).to_numpy().astype(dtype, copy=False)


def _empty_edges(kinds: list[str], families: list[str]) -> Edges:
    i, f = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64)
    return Edges(i, i, np.zeros(0, dtype=np.int8), f, f, i, i, f, kinds, families)
