"""Day-by-day exchange generation, streamed to Parquet.

For each simulated day the engine draws a compact *skeleton* (integer arrays:
account, time, conversation, turn, task family, address ...) for every
exchange of that day, sorts it by time, and then materialises text and ids
in slices of ``rows_per_group`` rows, each written as a Parquet row group.
Memory is bounded by one day's skeleton plus one slice of text, whatever
the run's length.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distillwatch.contract import EXCHANGES_SCHEMA, TS
from distillwatch.simulate import identity, text, vocab
from distillwatch.simulate.config import FAMILIES, SimulationConfig, window_start
from distillwatch.simulate.population import (
    BUSINESS,
    BUSINESS_HOURS,
    FLAT,
    GROUPS,
    HUMAN,
    HUMAN_HOURS,
    OPERATOR,
    OPERATOR_HOURS,
    PER_SESSION,
    SRC_ATTACK,
    SRC_BENCH,
    SRC_BENIGN,
    STICKY,
    G,
    World,
    build,
)

# System prompt kinds
SYS_NONE, SYS_GENERIC, SYS_ORG, SYS_COT, SYS_BENCH = range(5)
BENCH_SYSTEM = "You are being evaluated on a benchmark. Answer each question directly."
# Median output tokens per family (a reply's typical size).
OUT_TOKENS = np.array([180, 450, 700, 500, 400, 500, 120, 220, 260, 900], dtype=float)
assert len(OUT_TOKENS) == len(FAMILIES)

Progress = Callable[[int, int, int], None]  # (rows written so far, day index, days)


@dataclass
class Summary:
    preset: str
    seed: int
    evasion: str
    out: Path
    exchanges: int = 0
    accounts: int = 0
    account_records: int = 0
    seconds: float = 0.0
    by_group: Counter = field(default_factory=Counter)  # group -> (accounts)
    exchanges_by_group: Counter = field(default_factory=Counter)
    exchanges_by_campaign: Counter = field(default_factory=Counter)
    accounts_by_campaign: Counter = field(default_factory=Counter)


def _hours(rng: np.random.Generator, pmf: np.ndarray, k: int) -> np.ndarray:
    """Seconds into a local day, hour drawn from ``pmf`` and uniform within it."""
    cdf = np.cumsum(pmf / pmf.sum())
    h = np.searchsorted(cdf, rng.random(k), side="right")
    return (np.minimum(h, 23) + rng.random(k)) * 3600.0


def _segment_pos(starts: np.ndarray) -> np.ndarray:
    """Position of each row within its segment; ``starts`` marks segment beginnings."""
    idx = np.arange(len(starts))
    begin = np.maximum.accumulate(np.where(starts, idx, 0))
    return idx - begin


@dataclass
class Day:
    """One day's skeleton: parallel arrays, one entry per exchange."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["acct"])

    def take(self, idx: np.ndarray) -> Day:
        return Day({k: v[idx] for k, v in self.cols.items()})


class Engine:
    def __init__(self, world: World) -> None:
        self.w = world
        self.cfg = world.cfg
        self.conv_counter = 0
        self.row_counter = 0
        self.keys = {s: identity.key(self.cfg.seed, s) for s in ("request", "conversation", "apikey")}
        self.t0_us = np.datetime64(window_start(self.cfg).replace(tzinfo=None), "us").astype(np.int64)
        org = world.acc["org"]
        # String tables the skeleton indexes into.
        self.systems = pa.concat_arrays([
            pa.array(vocab.GENERIC_SYSTEMS, pa.string()),
            pa.array(vocab.COT_SYSTEMS, pa.string()),
            world.org_system.cast(pa.string()),
            pa.array([BENCH_SYSTEM], pa.string()),
        ])
        self.sys_offset = {SYS_GENERIC: 0, SYS_COT: len(vocab.GENERIC_SYSTEMS),
                           SYS_ORG: len(vocab.GENERIC_SYSTEMS) + len(vocab.COT_SYSTEMS),
                           SYS_BENCH: len(self.systems) - 1}
        self.acct_org = pc.if_else(pa.array(org >= 0), world.org_id.take(pa.array(np.maximum(org, 0))),
                                   pa.nulls(len(org), pa.string()))
        self.models = pa.array(world.models, pa.string())

    # -- skeleton ------------------------------------------------------------------------------------
    def day(self, d: int) -> Day:
        w, a, cfg = self.w, self.w.acc, self.cfg
        rng = np.random.default_rng([cfg.seed, 1, d])
        n = w.n
        weekday = (cfg.start + timedelta(days=d)).weekday()
        alive = (a["life0"] <= d) & (d <= a["life1"])
        p = a["p_active"] * (a["weekend"] if weekday >= 5 else 1.0)
        rate = a["rate"].copy()
        if d in w.deadline_days:  # students cram before a deadline
            uni = a["group"] == G["university"]
            p = np.where(uni, np.minimum(1.0, p * 2.2), p)
            rate = np.where(uni, rate * 2.5, rate)
        active = alive & (rng.random(n) < p) & (a["src"] != SRC_BENCH)
        counts = np.where(active, 1 + rng.poisson(np.maximum(rate - 1.0, 0.0)), 0)
        acct = np.repeat(np.arange(n), counts)
        m = len(acct)
        pos = _segment_pos(np.r_[True, acct[1:] != acct[:-1]] if m else np.zeros(0, bool))
        start = (pos == 0) | (rng.random(m) < 1.0 / a["turns"][acct])
        conv = np.cumsum(start) - 1
        conv_acct = acct[start]
        c = len(conv_acct)
        turn = _segment_pos(start)
        # Conversation start times in each account's rhythm, shifted from local time to UTC.
        local = np.empty(c)
        timing = a["timing"][conv_acct]
        for code, pmf in ((HUMAN, HUMAN_HOURS), (BUSINESS, BUSINESS_HOURS), (OPERATOR, OPERATOR_HOURS)):
            sel = np.flatnonzero(timing == code)
            local[sel] = _hours(rng, pmf, len(sel))
        sel = np.flatnonzero(timing == FLAT)
        local[sel] = rng.random(len(sel)) * 86400.0
        conv_start = np.mod(local - a["tz"][conv_acct] * 3600.0, 86400.0)
        gaps = np.where(start, 0.0, rng.exponential(a["gap"][acct]))
        csum = np.cumsum(gaps)
        offset = csum - (csum[start])[conv]
        # A conversation that would run past midnight starts earlier instead, so each day's rows stay
        # inside the day (the output is globally time-ordered) without piling turns up at 23:59:59.
        duration = np.maximum.reduceat(offset, np.flatnonzero(start)) if m else np.zeros(0)
        conv_start = np.clip(np.minimum(conv_start, 86400.0 - duration - rng.uniform(1, 900, c)), 0.0, None)
        secs = np.minimum(conv_start[conv] + offset, 86400.0 - 1e-3)
        cols = self._conversation_attrs(rng, d, acct, conv, conv_acct, turn, secs)
        batch = self._batch_rows(rng, d)
        if batch is not None:
            cols = {k: np.concatenate([cols[k], batch[k]]) for k in cols}
        order = np.argsort(cols["ts"], kind="stable")
        return Day({k: v[order] for k, v in cols.items()})

    def _conversation_attrs(self, rng: np.random.Generator, d: int, acct: np.ndarray, conv: np.ndarray,
                            conv_acct: np.ndarray, turn: np.ndarray, secs: np.ndarray) -> dict[str, np.ndarray]:
        w, a = self.w, self.w.acc
        c, m = len(conv_acct), len(acct)
        src = a["src"][conv_acct].copy()
        camp = a["campaign"][conv_acct]
        # Resold genuine customers' conversations on harvest accounts look like anyone else's.
        genuine = (src == SRC_ATTACK) & (rng.random(c) < a["genuine_p"][conv_acct])
        src[genuine] = SRC_BENIGN
        profile = np.where(genuine, 0, a["profile"][conv_acct])
        u = rng.random(c)
        family = (u[:, None] > w.profile_cdf[profile]).sum(axis=1)
        family = np.minimum(family, len(FAMILIES) - 1)
        # which of its campaign's templates a harvest conversation fills (benign rows index the trailing 1)
        n_t = np.array([len(t) for t in w.attack_templates] + [1])
        tmpl = (rng.random(c) * n_t[np.where(camp >= 0, camp, -1)]).astype(np.int64)
        attack_conv = src == SRC_ATTACK
        if attack_conv.any():
            fam_of = [np.array([t.family for t in ts], dtype=np.int64) for ts in w.attack_templates]
            for ci, fams in enumerate(fam_of):
                sel = attack_conv & (camp == ci)
                family[sel] = fams[tmpl[sel]]
        # Addresses
        rot = a["rot"][conv_acct]
        naddr = a["naddr"][acct]
        per_conv = a["addr0"][conv_acct] + (rng.random(c) * a["naddr"][conv_acct]).astype(np.int64)
        sticky = a["addr0"][acct] + ((d + a["phase"][acct]) // np.maximum(a["change_days"][acct], 1)) % naddr
        per_req = a["addr0"][acct] + (rng.random(m) * naddr).astype(np.int64)
        addr = np.where(rot[conv] == STICKY, sticky, np.where(rot[conv] == PER_SESSION, per_conv[conv], per_req))
        leak = (src[conv] == SRC_ATTACK) & (rng.random(m) < a["leak_p"][acct])
        addr = np.where(leak, a["leak0"][acct] + rng.integers(0, 3, m), addr)
        # System prompt, chain-of-thought, tools
        cot_p = np.where(genuine, 0.02, a["cot_p"][conv_acct])
        cot_sys_p = np.where(genuine, 0.0, a["cot_sys_p"][conv_acct])
        r = rng.random(c)
        sys_kind = np.where(a["org_sys"][conv_acct] == 1, SYS_ORG, SYS_NONE)
        generic = (sys_kind == SYS_NONE) & (rng.random(c) < np.where(genuine, 0.2, a["sys_p"][conv_acct]))
        sys_kind = np.where(generic, SYS_GENERIC, sys_kind)
        cot_system = r < cot_p * cot_sys_p
        sys_kind = np.where(cot_system, SYS_COT, sys_kind)
        ci_safe = np.maximum(camp, 0)
        camp_cot_sys = np.array(w.cot_system_of_campaign + [0])[ci_safe]
        sys_idx = np.where(
            sys_kind == SYS_GENERIC, rng.integers(0, len(vocab.GENERIC_SYSTEMS), c),
            np.where(sys_kind == SYS_ORG, a["org"][conv_acct],
                     np.where(src == SRC_ATTACK, self._variant(camp_cot_sys, ci_safe, len(vocab.COT_SYSTEMS), rng),
                              rng.integers(0, len(vocab.COT_SYSTEMS), c))))
        cot_user = (rng.random(m) < (cot_p * (1 - cot_sys_p))[conv]) & ~cot_system[conv]
        camp_phr = np.array(w.cot_phrase_of_campaign + [0])[ci_safe]
        phrase = np.where(src == SRC_ATTACK, self._variant(camp_phr, ci_safe, len(vocab.COT_PHRASES), rng),
                          rng.integers(0, len(vocab.COT_PHRASES), c))
        tools_on = (rng.random(c) < a["tools_p"][conv_acct]) | (family == FAMILIES.index("agentic"))
        n_tools = np.where(tools_on, a["tools"][conv_acct], 0)
        vary = np.array([p.prompting.tools_vary for p in self.cfg.campaigns] + [True])[np.where(camp >= 0, camp, -1)]
        n_tools = np.where(vary & (n_tools > 0), np.maximum(1, n_tools + rng.integers(-4, 5, c)), n_tools)
        # Model: the current default, the cheap one, or the new release once the account adopts it
        ts_abs = d * 86400.0 + secs
        adopted = ts_abs >= (w.release_s + a["adopt_s"][acct])
        own = (src == SRC_ATTACK)[conv]
        newest = adopted & (own | (rng.random(m) < 0.7))
        # resold customers on harvest accounts pick the cheap model as often as anyone
        mini_p = np.where(genuine[conv], 0.25, a["mini_p"][acct])
        model = np.where(newest, 2, np.where(rng.random(m) < mini_p, 1, 0))
        model = np.where(own & ~adopted, 0, model)
        if len(w.models) < 3:
            model = np.minimum(model, 1)
        ua = np.where(rng.random(c) < a["ua_p"][conv_acct], a["ua1"][conv_acct], a["ua0"][conv_acct])
        key = a["nkeys"][conv_acct]
        key = (rng.random(c) * key).astype(np.int64)
        conv_global = self.conv_counter + conv
        self.conv_counter += c
        return {
            "acct": acct, "ts": (self.t0_us + d * 86_400_000_000 + (secs * 1e6).astype(np.int64)), "conv": conv_global,
            "turn": turn, "family": family[conv], "src": src[conv], "camp": camp[conv], "tmpl": tmpl[conv],
            "cot_user": cot_user, "cot_any": cot_user | cot_system[conv], "phrase": phrase[conv],
            "sys_kind": sys_kind[conv], "sys_idx": sys_idx[conv], "n_tools": n_tools[conv], "model": model, "addr": addr,
            "ua": ua[conv], "key": key[conv],
        }

    def _variant(self, fixed: np.ndarray, camp: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        """A campaign's habitual phrasing, varied as much as its paraphrase level allows."""
        para = np.array([c.prompting.paraphrase for c in self.cfg.campaigns] + ["none"])[camp]
        k = len(fixed)
        light = (fixed + rng.integers(0, 2, k)) % size
        full = rng.integers(0, size, k)
        return np.where(para == "full", full, np.where(para == "light", light, fixed))

    def _batch_rows(self, rng: np.random.Generator, d: int) -> dict[str, np.ndarray] | None:
        """Benchmark runs: one account replays the test set from a cloud VM within a few hours."""
        w, a = self.w, self.w.acc
        parts = []
        for acct, runs in w.batch_runs.items():
            for day, start_s, dur in runs:
                if day != d:
                    continue
                k = len(w.benchmark)
                secs = np.minimum(start_s + np.sort(rng.random(k)) * dur, 86400.0 - 1e-3)
                conv = self.conv_counter + np.arange(k)
                self.conv_counter += k
                model = np.where(rng.random(k) < a["mini_p"][acct], 1, 0)
                parts.append({
                    "acct": np.full(k, acct), "ts": self.t0_us + d * 86_400_000_000 + (secs * 1e6).astype(np.int64),
                    "conv": conv, "turn": np.zeros(k, np.int64), "family": w.benchmark_family,
                    "src": np.full(k, SRC_BENCH), "camp": np.full(k, -1), "tmpl": np.arange(k),
                    "cot_user": np.zeros(k, bool), "cot_any": np.zeros(k, bool), "phrase": np.zeros(k, np.int64),
                    "sys_kind": np.full(k, SYS_BENCH), "sys_idx": np.zeros(k, np.int64), "n_tools": np.zeros(k, np.int64),
                    "model": model, "addr": a["addr0"][acct] + rng.integers(0, a["naddr"][acct], k),
                    "ua": np.full(k, a["ua0"][acct]), "key": np.zeros(k, np.int64),
                })
        if not parts:
            return None
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    # -- materialisation -----------------------------------------------------------------------------
    def prompts(self, s: Day, rng: np.random.Generator) -> pa.Array:
        c = s.cols
        n = len(s)
        group = np.where(c["src"] == SRC_ATTACK, 2 + c["camp"], c["src"])  # 0 benign, 1 bench, 2+ campaigns
        order = np.argsort(group, kind="stable")
        sg = group[order]
        cuts = np.flatnonzero(np.diff(sg)) + 1
        pieces = []
        for b, e in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True):
            if e == b:
                continue
            rows = order[b:e]
            g = int(sg[b])
            if g == SRC_BENIGN:
                pieces.append(text.benign_prompts(c["family"][rows], c["turn"][rows], rng))
            elif g == SRC_BENCH:
                pieces.append(self.w.benchmark.take(pa.array(c["tmpl"][rows])))
            else:
                ci = g - 2
                para = self.cfg.campaigns[ci].prompting.paraphrase
                pieces.append(text.attack_prompts(self.w.attack_templates[ci], c["tmpl"][rows], c["turn"][rows], para, rng))
        prompts = text.scatter(pieces, order)
        return text.with_cot(prompts, c["cot_user"], c["phrase"])

    def materialise(self, s: Day, rng: np.random.Generator) -> pa.Table:
        w, c = self.w, s.cols
        n = len(s)
        prompt = self.prompts(s, rng)
        offsets = np.array([self.sys_offset.get(k, 0) for k in range(5)])
        sys_row = offsets[c["sys_kind"]] + c["sys_idx"]
        system = pc.if_else(pa.array(c["sys_kind"] == SYS_NONE), pa.nulls(n, pa.string()),
                            self.systems.take(pa.array(np.where(c["sys_kind"] == SYS_NONE, 0, sys_row))))
        response = text.responses(c["family"], c["cot_any"], rng)
        p_len = pc.utf8_length(prompt).to_numpy(zero_copy_only=False)
        s_len = pc.fill_null(pc.utf8_length(system), 0).to_numpy(zero_copy_only=False)
        input_tokens = (p_len + s_len) // 4 + 4 + c["turn"] * rng.integers(150, 700, n) + c["n_tools"] * 110
        out = rng.lognormal(np.log(OUT_TOKENS[c["family"]]), 0.55)
        out = np.where(c["cot_any"], out * 1.9, out)
        out = np.where(c["src"] == SRC_BENCH, out * 0.15, out)
        output_tokens = np.maximum(1, out).astype(np.int64)
        ids = np.arange(self.row_counter, self.row_counter + n)
        self.row_counter += n
        acct = c["acct"]
        addr = pa.array(c["addr"])
        table = pa.table(
            {
                "request_id": identity.hex_ids("req_", ids, self.keys["request"]),
                "account_id": w.account_id.take(pa.array(acct)),
                "ts": pa.array(c["ts"], type=pa.int64()).cast(TS),
                "ip": w.addresses.ip.take(addr),
                "prompt": prompt,
                "system": system,
                "response": response,
                "model": self.models.take(pa.array(c["model"])),
                "input_tokens": pa.array(input_tokens, pa.int64()),
                "output_tokens": pa.array(output_tokens, pa.int64()),
                "n_tools": pa.array(c["n_tools"], pa.int64()),
                "conversation_id": identity.hex_ids("conv_", c["conv"], self.keys["conversation"]),
                "user_agent": w.ua.take(pa.array(c["ua"])),
                "api_key_id": identity.hex_ids("key_", acct * 4 + c["key"], self.keys["apikey"]),
                "org_id": self.acct_org.take(pa.array(acct)),
                "asn": pa.array(w.addresses.asn[c["addr"]], pa.int64()),
                "country": pa.array(w.addresses.country[c["addr"]].astype(object), pa.string()),
            },
            schema=EXCHANGES_SCHEMA,
        )
        return table


def run(cfg: SimulationConfig, out: Path, progress: Progress | None = None) -> Summary:
    """Simulate ``cfg`` into ``out``: exchanges.parquet, accounts.parquet, labels.parquet."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    world = build(cfg)
    engine = Engine(world)
    summary = Summary(preset=cfg.preset, seed=cfg.seed, evasion=cfg.evasion, out=out)
    a = world.acc
    camp_names = [c.campaign_id for c in cfg.campaigns]
    counts_acct = np.zeros(world.n, dtype=np.int64)
    tmp = out / "exchanges.parquet.partial"
    # Strings with few distinct values are dictionary-encoded; unique ones (ids, prompts) are not.
    dict_cols = ["account_id", "ip", "system", "model", "user_agent", "api_key_id", "org_id", "country"]
    # Parquet encoding releases the GIL: one writer thread overlaps it with generating the next slice.
    # At most one write is in flight, so memory holds at most two slices of text.
    pool = ThreadPoolExecutor(max_workers=1)
    in_flight: list[Future] = []
    with pq.ParquetWriter(tmp, EXCHANGES_SCHEMA, compression="zstd", use_dictionary=dict_cols) as writer:
        # Small days are pooled until a full row group is ready: Arrow work is cheaper in big slices.
        pending: list[Day] = []
        pending_rows = 0
        slices = 0

        def flush(final: bool) -> None:
            nonlocal pending, pending_rows, slices
            if not pending:
                return
            buf = Day({k: np.concatenate([p.cols[k] for p in pending]) for k in pending[0].cols})
            size = cfg.rows_per_group
            stop = len(buf) if final else len(buf) - len(buf) % size
            for b in range(0, stop, size):
                piece = buf.take(np.arange(b, min(b + size, stop)))
                rng = np.random.default_rng([cfg.seed, 2, slices])
                slices += 1
                table = engine.materialise(piece, rng)
                for f in in_flight:
                    f.result()
                in_flight[:] = [pool.submit(writer.write_table, table, row_group_size=size)]
                summary.exchanges += len(piece)
            rest = buf.take(np.arange(stop, len(buf)))
            pending, pending_rows = ([rest], len(rest)) if len(rest) else ([], 0)

        for d in range(cfg.days):
            day = engine.day(d)
            counts_acct += np.bincount(day.cols["acct"], minlength=world.n)
            pending.append(day)
            pending_rows += len(day)
            if pending_rows >= cfg.rows_per_group:
                flush(final=False)
            if progress:
                progress(summary.exchanges, d + 1, cfg.days)
        flush(final=True)
        for f in in_flight:
            f.result()
    pool.shutdown()
    tmp.replace(out / "exchanges.parquet")
    pq.write_table(world.accounts_table, out / "accounts.parquet", compression="zstd")
    pq.write_table(world.labels, out / "labels.parquet", compression="zstd")
    summary.accounts = world.n
    summary.account_records = world.accounts_table.num_rows
    for gi, name in enumerate(GROUPS):
        sel = a["group"] == gi
        summary.by_group[name] = int(sel.sum())
        summary.exchanges_by_group[name] = int(counts_acct[sel].sum())
    for ci, name in enumerate(camp_names):
        sel = a["campaign"] == ci
        summary.accounts_by_campaign[name] = int(sel.sum())
        summary.exchanges_by_campaign[name] = int(counts_acct[sel].sum())
    summary.seconds = time.perf_counter() - t_start
    return summary
