"""MinHash and LSH banding of integer sets, as engine expressions (no pairwise comparison).

Used for sets an account has (its active hours); prompt text MinHash lives in
``distillwatch.enrich.templates``.  Two accounts whose sets have Jaccard
similarity J share at least one of the ``num_perm / rows`` band keys with
probability 1 - (1 - J^rows)^(num_perm / rows).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def set_band_keys(con, tokens: ir.Table, name: str, num_perm: int = 48, rows: int = 4) -> ir.Table:
    """(account_id, token: int64) -> (account_id, key: string) LSH band keys, materialised as ``name``."""
    if num_perm % rows:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of rows ({rows})")
    # One hash function per permutation: the engine's hash of an affine transform of the token.
    mins = {f"h{p}": (tokens.token * 1_000_003 + (p + 1) * 7_919).hash().min() for p in range(num_perm)}
    sig = tokens.group_by("account_id").aggregate(**mins)
    parts = []
    for band in range(num_perm // rows):
        cols = [sig[f"h{band * rows + r}"].cast("string") for r in range(rows)]
        key = ibis.literal(f"{band}|").concat(*[c.concat("|") for c in cols]).hash().cast("string")
        parts.append(sig.select("account_id", key=key))
    keys = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    return con.create_table(name, keys, temp=True, overwrite=True)
