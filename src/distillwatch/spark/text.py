"""Per-text facts on Spark executors (``mapInArrow``), the distributed twin of the local path in features/content.py.

The three tables are the same as the local path builds, from the same
functions (``features.enrichment``) applied to Arrow batches of distinct texts,
so both engines give the same facts for the same texts:

* ``dw_prompt_facts``: prompt_key, capability, cot, template_hash;
* ``dw_system_facts``: system_key, system_cot;
* ``dw_prompt_bands``: prompt_key, band (MinHash LSH keys of near-duplicates).

The batch functions are module-level so Spark pickles them by reference; the
executors import distillwatch (install it there, see docs/scale.md).
"""

from __future__ import annotations

from functools import partial

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from distillwatch.spark import SparkBackend, map_arrow

PROMPT_FACTS_SCHEMA = pa.schema(
    [("prompt_key", pa.int64()), ("capability", pa.string()), ("cot", pa.bool_()), ("template_hash", pa.string())]
)
SYSTEM_FACTS_SCHEMA = pa.schema([("system_key", pa.int64()), ("system_cot", pa.bool_())])
BANDS_SCHEMA = pa.schema([("prompt_key", pa.int64()), ("band", pa.int64())])


def _prompt_facts(batch: pa.RecordBatch) -> pa.Table:
    from distillwatch.features import enrichment

    pf = enrichment.prompt_facts(batch.column("prompt"))
    return pa.table(
        {
            "prompt_key": batch.column("prompt_key"),
            "capability": pf.column("capability"),
            "cot": pf.column("cot"),
            "template_hash": pf.column("template_hash"),
        }
    )


def _system_facts(batch: pa.RecordBatch) -> pa.Table:
    from distillwatch.features import enrichment

    return pa.table({"system_key": batch.column("system_key"), "system_cot": enrichment.system_cot(batch.column("system"))})


def _bands(batch: pa.RecordBatch, num_perm: int, bands: int) -> pa.Table:
    from distillwatch.features import enrichment

    rows, band = enrichment.prompt_band_keys(batch.column("prompt"), num_perm, bands)
    keys = batch.column("prompt_key").to_numpy(zero_copy_only=False)
    return pa.table({"prompt_key": keys[rows] if len(rows) else np.zeros(0, dtype=np.int64), "band": band})


def text_tables(con: SparkBackend, keyed: ir.Table, num_perm: int, bands: int) -> tuple[ir.Table, ir.Table, ir.Table]:
    """(prompt facts, system facts, prompt bands) for the distinct texts of ``keyed``, computed on the executors.

    ``keyed`` has prompt, prompt_key, system, system_key (as in content.text_facts).
    """
    prompts = keyed.filter(keyed.prompt.notnull()).select("prompt_key", "prompt").distinct(on="prompt_key")
    # Persist the distinct prompts once: both the facts and the bands read them.
    prompts = con.create_table("dw_distinct_prompts", prompts, temp=True, overwrite=True)
    pf = map_arrow(con, prompts, _prompt_facts, PROMPT_FACTS_SCHEMA, "dw_prompt_facts")
    bt = map_arrow(con, prompts, partial(_bands, num_perm=num_perm, bands=bands), BANDS_SCHEMA, "dw_prompt_bands")
    systems = keyed.filter(keyed.system.notnull()).select("system_key", "system").distinct(on="system_key")
    sf = map_arrow(con, systems, _system_facts, SYSTEM_FACTS_SCHEMA, "dw_system_facts")
    return pf, sf, bt
