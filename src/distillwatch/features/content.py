"""Content features over a bounded, deterministic sample of each account's prompts.

Per-text work (capability, chain-of-thought elicitation, templates) runs on
distinct prompts of the sample only: up to ``per_account`` exchanges per account,
chosen by a hash of the request id, so the same input always gives the same
sample and heavy accounts cost no more than light ones.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from ibis import _

from distillwatch import engine
from distillwatch.features import enrichment

CAPABILITIES = (
    "software_engineering",
    "agentic_tool_use",
    "long_horizon",
    "math_reasoning",
    "writing",
    "chat",
    "other",
)


def sample_exchanges(ex: ir.Table, per_account: int, con=None) -> ir.Table:
    """Up to ``per_account`` exchanges per account, deterministic (ordered by a hash of request_id).

    The hash is MD5 because every engine computes it the same way (``hash()`` is engine-specific),
    so DuckDB and Spark sample the same exchanges and reach the same verdicts.  ``ex`` without text
    columns gives the sample without them (add them with ``with_texts``).

    Only the candidates of ``md5_candidates`` are ranked, not every exchange: the ranking is a
    per-account sort, and over a whole log it is the largest sort of the scan.  With ``con`` the
    candidates' small intermediate tables are materialised there (see ``md5_candidates``).
    """
    keep = [
        c
        for c in ("account_id", "request_id", "prompt", "system", "sec", "daynum", "n_tools")
        if c in ex.columns
    ]
    pool = md5_candidates(ex.select(*keep), per_account, con)  # row_number() counts from 0: keep per_account
    w = ibis.window(group_by="account_id", order_by=[pool.request_id.hexdigest("md5"), pool.request_id])
    ranked = pool.mutate(rank=ibis.row_number().over(w))
    return ranked.filter(ranked["rank"] < per_account).select(*keep)


# An account's candidates are the exchanges whose md5(request_id), read as a binary fraction, is below
# 2**-level: expected n / 2**level of its n exchanges.  The level is the highest that still expects
# ``CANDIDATE_MARGIN`` times the rows needed plus ``CANDIDATE_FLOOR``, so an account runs short about
# never (at 64 a sample, mean >= 144: a shortfall is a 5-sigma event).  At 90M exchanges this leaves
# 23M of them to rank (most accounts have too few exchanges to filter).
CANDIDATE_MARGIN = 2
CANDIDATE_FLOOR = 16
MAX_LEVEL = 28  # 7 hex digits


def md5_bound(level: int) -> str:
    """The lowercase hex string ``b`` with: md5 hex < ``b`` exactly when md5 / 2**128 < 2**-level."""
    digits = -(-level // 4)
    return format(2 ** (4 * digits - level), f"0{digits}x")


def md5_candidates(ex: ir.Table, need: int, con=None) -> ir.Table:
    """The rows of ``ex`` that can be among each account's ``need`` smallest by (md5(request_id), request_id).

    Exact, not an estimate: a row whose md5 is below the account's bound (``md5_bound``) sorts before
    every row whose md5 is not, so when an account has at least ``need`` such rows its ``need``
    smallest are all among them.  Accounts with fewer (or with at most ``need`` rows in all) keep
    every row; for them nothing is filtered.

    With ``con`` the per-account levels, the candidates and the short accounts are materialised as
    temp tables, so each query reads ``ex`` once: an expression that refers to ``ex`` in several
    places lets DuckDB materialise ``ex`` itself as a shared CTE (90M rows spilled 15 GB).
    """

    def stash(name: str, table: ir.Table) -> ir.Table:
        return table if con is None else con.create_table(name, table, temp=True, overwrite=True)

    counts = ex.group_by("account_id").aggregate(n=ex.count())
    target = max(1.0, float(CANDIDATE_MARGIN * max(need, 0) + CANDIDATE_FLOOR))
    level = (counts.n.cast("float64") / target).ln() / float(np.log(2.0))
    level = ibis.greatest(ibis.least(level.floor(), MAX_LEVEL), 0).cast("int64")
    # Each account's bound is looked up once here, not per exchange (a 28-way case over every row).
    bound = ibis.cases(*[(level == k, md5_bound(k)) for k in range(1, MAX_LEVEL + 1)])
    levels = stash("dw_sample_levels", counts.select("account_id", "n", level=level, bound=bound))

    cols = ex.columns
    j = ex.join(levels, "account_id")
    md5 = j.request_id.hexdigest("md5")
    # Compared as strings (lowercase hex of the same length order like the numbers), in any engine.
    filtered = stash("dw_sample_candidates", j.filter((j.level == 0) | (md5 < j.bound)).select(*cols))
    got = filtered.group_by("account_id").aggregate(c=filtered.count())
    short = levels.left_join(got, levels.account_id == got.account_id)
    short = short.filter((short.level > 0) & (short.c.fill_null(0) < ibis.least(short.n, need)))
    short = stash("dw_sample_short", short.select(account_id=short.account_id))
    kept = filtered.anti_join(short, "account_id").select(*cols)
    fallback = ex.semi_join(short, "account_id").select(*cols)
    return kept.union(fallback)


def with_texts(sample: ir.Table, texts: ir.Table) -> ir.Table:
    """The sampled rows with their prompt and system prompt read from ``texts`` (the exchanges' source,
    request ids unique per account as ingest guarantees): only the sampled rows' text is carried."""
    text = texts.select("account_id", "request_id", "prompt", "system")
    j = sample.join(text, [sample.account_id == text.account_id, sample.request_id == text.request_id])
    return j.select(
        account_id=sample.account_id, request_id=sample.request_id, prompt=text.prompt, system=text.system,
        sec=sample.sec, daynum=sample.daynum, n_tools=sample.n_tools,
    )  # fmt: skip


def text_facts(con, sample: ir.Table, num_perm: int = 64, bands: int = 16) -> tuple[ir.Table, ir.Table]:
    """Joins capability / CoT / template facts onto the sample; also returns near-duplicate band keys.

    Returns ``(facts, bands)``: facts has one row per sampled exchange
    (account_id, request_id, daynum, capability, cot, template_hash); bands has
    (account_id, band) for the prompt MinHash LSH bands.
    """
    keyed = sample.mutate(prompt_key=sample.prompt.hash(), system_key=sample.system.hash())
    if getattr(con, "name", "") == "pyspark":
        # Per-text work on the executors (mapInArrow), same functions as below.
        from distillwatch.spark.text import text_tables

        pf_t, sf_t, bt = text_tables(con, keyed, num_perm, bands)
    else:
        pf_t, sf_t, bt = _local_text_tables(con, keyed, num_perm, bands)
    return join_text_facts(keyed, pf_t, sf_t, bt)


def join_text_facts(
    keyed: ir.Table, pf_t: ir.Table, sf_t: ir.Table, bt: ir.Table
) -> tuple[ir.Table, ir.Table]:
    """(facts, bands) of sampled exchanges keyed by ``prompt_key``/``system_key``, from per-text fact tables.

    Shared by the batch scan and the incremental path (which keeps the fact tables in the store).
    """
    j = keyed.left_join(pf_t, keyed.prompt_key == pf_t.prompt_key).left_join(
        sf_t, keyed.system_key == sf_t.system_key
    )
    cot = ibis.ifelse(
        j.cot.isnull() & j.system_cot.isnull(),
        ibis.null("boolean"),
        j.cot.fill_null(False) | j.system_cot.fill_null(False),
    )
    # A request that defines tools exercises agentic tool use whatever its last user turn says
    # ("now write tests for it" reads as chat on its own).
    with_tools = j.n_tools.fill_null(0) > 0
    capability = ibis.ifelse(
        with_tools & j.capability.isin(["chat", "other", "writing"]),
        ibis.literal("agentic_tool_use"),
        j.capability,
    )
    facts = j.select(
        "account_id", "request_id", "daynum", "prompt_key", "template_hash", capability=capability, cot=cot
    )

    acc_bands = (
        keyed.select("account_id", "prompt_key")
        .join(bt, "prompt_key")
        .select("account_id", "band")
        .distinct()
    )
    return facts, acc_bands


# Distinct prompts enriched per batch in this process: MinHash alone holds num_perm 64-bit values per
# prompt and its temporaries several times that (17 GB for all 9M distinct sampled prompts at 90M rows).
TEXT_BATCH_ROWS = 250_000


def _local_text_tables(
    con, keyed: ir.Table, num_perm: int, bands: int
) -> tuple[ir.Table, ir.Table, ir.Table]:
    """(prompt facts, system facts, prompt bands) of the distinct texts, computed in this process.

    The distinct prompts are a working table, enriched a slice of at most ``TEXT_BATCH_ROWS`` at a
    time (slices by ``prompt_key`` modulo the number of slices, each in key order; one slice for
    small logs) and the facts appended to the engine's tables, so this process holds one slice.
    """
    prompts = keyed.filter(keyed.prompt.notnull()).select("prompt_key", "prompt").distinct(on="prompt_key")
    prompts = con.create_table("dw_distinct_prompts", prompts, temp=True, overwrite=True)
    n = int(prompts.count().to_pyarrow().as_py())
    slices = max(1, -(-n // TEXT_BATCH_ROWS))
    slot = ((prompts.prompt_key % slices) + slices) % slices  # non-negative for negative keys too
    pf_t = bt = None
    for i in range(slices):
        batch = prompts.filter(slot == i).order_by("prompt_key").to_pyarrow()
        pf, bands_pa = prompt_fact_arrays(batch, num_perm, bands)
        if pf_t is None:
            pf_t = con.create_table("dw_prompt_facts", pf, temp=True, overwrite=True)
            bt = con.create_table("dw_prompt_bands", bands_pa, temp=True, overwrite=True)
        else:
            # Not ``con.insert``: Ibis keeps every inserted batch referenced (0.72 GB by the end at 0.2).
            engine.insert_arrow(con, "dw_prompt_facts", pf)
            engine.insert_arrow(con, "dw_prompt_bands", bands_pa)
        # The slice's Arrow buffers go back to the OS, not to the allocator's cache (RSS crept up per slice).
        pa.default_memory_pool().release_unused()
    sf = system_fact_arrays(keyed)
    sf_t = con.create_table("dw_system_facts", sf, temp=True, overwrite=True)
    con.drop_table("dw_distinct_prompts", force=True)
    return pf_t, sf_t, bt


def text_fact_arrays(keyed: ir.Table, num_perm: int, bands: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Per-text facts of the distinct prompts and system prompts of ``keyed``, as Arrow tables.

    (prompt_key, capability, cot, template_hash), (system_key, system_cot) and
    (prompt_key, band).  Facts are per text, so computing them for a subset of
    texts gives the same values as for all of them.
    """
    prompts = keyed.filter(keyed.prompt.notnull()).select("prompt_key", "prompt").distinct(on="prompt_key")
    pf, bands_pa = prompt_fact_arrays(prompts.order_by("prompt_key").to_pyarrow(), num_perm, bands)
    return pf, system_fact_arrays(keyed), bands_pa


def prompt_fact_arrays(prompts_pa: pa.Table, num_perm: int, bands: int) -> tuple[pa.Table, pa.Table]:
    """(prompt_key, capability, cot, template_hash) and (prompt_key, band) of distinct (prompt_key, prompt) rows."""
    texts = prompts_pa.column("prompt").combine_chunks()
    # Normalised once: the template hash and the MinHash signatures are both of the template strings.
    normalized = enrichment.normalized_prompts(texts)
    pf = enrichment.prompt_facts(texts, normalized)
    pf = pf.drop_columns(["prompt"]).append_column("prompt_key", prompts_pa.column("prompt_key"))
    rows, band = enrichment.prompt_band_keys(texts, num_perm, bands, normalized)
    pk = prompts_pa.column("prompt_key").to_numpy()
    bands_pa = pa.table({"prompt_key": pk[rows] if len(rows) else np.zeros(0, dtype=pk.dtype), "band": band})
    return pf, bands_pa


def system_fact_arrays(keyed: ir.Table) -> pa.Table:
    """(system_key, system_cot) of the distinct system prompts of ``keyed``."""
    systems = keyed.filter(keyed.system.notnull()).select("system_key", "system").distinct(on="system_key")
    systems_pa = systems.order_by("system_key").to_pyarrow()
    return pa.table(
        {
            "system_key": systems_pa.column("system_key"),
            "system_cot": enrichment.system_cot(systems_pa.column("system").combine_chunks()),
        }
    )


def content(facts: ir.Table) -> ir.Table:
    """Per-account capability mix, chain-of-thought share and template diversity (over the sample)."""
    cap_cols = {f"cap_{c}": (facts.capability == c).cast("float64").mean() for c in CAPABILITIES}
    labelled = facts.capability.notnull().cast("int64").sum()
    template_accounts = (
        facts.filter(facts.template_hash.notnull())
        .group_by("template_hash")
        .aggregate(template_accounts=_.account_id.nunique())
    )
    j = facts.left_join(template_accounts, "template_hash")
    return j.group_by("account_id").aggregate(
        sample_n=j.count(),
        sample_labelled=labelled,
        cot_share=j.cot.cast("float64").mean(),
        template_distinct=j.template_hash.nunique(),
        template_shared_share=(j.template_accounts.fill_null(1) >= 2).cast("float64").mean(),
        **{k: (j.capability == k.removeprefix("cap_")).cast("float64").mean() for k in cap_cols},
    )
