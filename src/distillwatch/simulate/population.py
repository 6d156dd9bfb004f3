"""Who sends traffic: every account's behaviour as arrays, built once per run.

One row per account in a struct of numpy arrays (``Accounts``).  Benign groups
and campaign accounts are built by separate functions but land in the same
arrays with the same meaning, so the exchange engine treats them alike: the
difference between an attacker and a customer is only in the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.contract import ACCOUNTS_SCHEMA, LABELS_SCHEMA
from distillwatch.simulate import identity, network, text, vocab
from distillwatch.simulate.config import FAMILIES, CampaignConfig, SimulationConfig, window_start

GROUPS: tuple[str, ...] = ("ordinary", "university", "coding_agents", "batch_eval", "vpn_relay", "reseller", "campaign")
G = {g: i for i, g in enumerate(GROUPS)}

# Timing patterns (how conversation start times fall in a day)
HUMAN, FLAT, OPERATOR, BUSINESS, BATCH = range(5)
# Address rotation
STICKY, PER_REQUEST, PER_SESSION = range(3)
# Prompt sources
SRC_BENIGN, SRC_BENCH, SRC_ATTACK = range(3)

# Local-hour activity of people (peaks late morning and evening) and of offices.
HUMAN_HOURS = np.array([1.2, .7, .4, .3, .3, .5, 1.2, 2.5, 4, 5.5, 6.2, 6.3, 5.6, 6, 6.2, 6, 5.6, 5, 4.6, 4.8, 5, 4.6, 3.5, 2.2])
BUSINESS_HOURS = np.array([.1, .05, .05, .05, .05, .1, .3, 1.5, 5, 8, 9, 8.5, 6, 8, 9, 8.5, 7.5, 5, 2, 1, .6, .4, .3, .2])
# A harvest operation's shifts: long working day in the operator's zone, thin overnight.
OPERATOR_HOURS = np.array([3, 2, 1, 1, 1, 1, 1, 2, 5, 7, 7, 7, 6, 7, 7, 7, 7, 7, 6, 6, 6, 6, 5, 4], dtype=float)

# Typical UTC offsets per country (summer time where the presets run).
TZ = {"US": -6.0, "CA": -5.0, "GB": 1.0, "DE": 2.0, "FR": 2.0, "ES": 2.0, "IT": 2.0, "NL": 2.0, "CH": 2.0, "SE": 2.0,
      "FI": 3.0, "JP": 9.0, "KR": 9.0, "CN": 8.0, "SG": 8.0, "HK": 8.0, "AU": 10.0, "BR": -3.0, "IN": 5.5}
# Where the provider's ordinary customers are (it does not serve every country).
CUSTOMER_COUNTRIES = {"US": .34, "IN": .09, "GB": .07, "DE": .07, "FR": .05, "JP": .06, "BR": .05, "CA": .05, "KR": .04,
                      "AU": .03, "ES": .03, "IT": .03, "NL": .03}
TIERS = ("free", "build", "scale", "enterprise", "education")

# Task-family mix per profile; campaigns append their own rows.
_P = {
    "ordinary": {"chat": .22, "writing": .15, "coding": .17, "debugging": .08, "math": .07, "analysis": .1,
                 "translation": .07, "roleplay": .06, "agentic": .05, "long_horizon": .03},
    "student": {"chat": .1, "writing": .2, "coding": .2, "debugging": .12, "math": .2, "analysis": .1, "translation": .04,
                "long_horizon": .04},
    "agent": {"coding": .35, "debugging": .22, "agentic": .33, "long_horizon": .1},
    "developer": {"coding": .3, "debugging": .15, "agentic": .17, "long_horizon": .1, "analysis": .1, "math": .06,
                  "chat": .06, "writing": .06},
    "bench": {"math": .3, "coding": .3, "analysis": .2, "translation": .1, "writing": .1},
}
PROFILES = tuple(_P)


def _pmf(mix: dict[str, float]) -> np.ndarray:
    v = np.array([mix.get(f, 0.0) for f in FAMILIES])
    return v / v.sum()


@dataclass
class Accounts:
    """Per-account behaviour.  All arrays have one entry per account."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, n: int, **cols: np.ndarray | float | int) -> None:
        for k, v in cols.items():
            arr = np.broadcast_to(np.asarray(v), (n,)).copy() if np.ndim(v) == 0 else np.asarray(v)
            if len(arr) != n:
                raise ValueError(f"column {k}: {len(arr)} values for {n} accounts")
            self.parts.setdefault(k, []).append(arr)

    def finish(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.parts.items()}


@dataclass
class World:
    """Everything the engine needs that does not change from day to day."""

    cfg: SimulationConfig
    acc: dict[str, np.ndarray]
    n: int
    account_id: pa.Array
    addresses: network.Addresses
    ua: pa.Array
    org_id: pa.Array  # per org index
    org_system: pa.Array  # per org index: the org's own system prompt
    profile_cdf: np.ndarray  # profiles x families, cumulative
    attack_templates: list[list[text.AttackTemplate]]
    cot_system_of_campaign: list[int]
    cot_phrase_of_campaign: list[int]
    benchmark: pa.Array  # replayed by batch-eval customers
    benchmark_family: np.ndarray
    batch_runs: dict[int, list[tuple[int, float, float]]]  # account -> [(day, start_s, duration_s)]
    accounts_table: pa.Table
    labels: pa.Table
    deadline_days: set[int]
    models: list[str]
    release_s: float  # seconds after window start when the new model ships


class Builder:
    """Accumulates accounts, their addresses and registration records."""

    def __init__(self, cfg: SimulationConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, 0])
        self.acc = Accounts()
        self.addr_parts: list[network.Addresses] = []
        self.n_addr = 0
        self.n = 0
        self.reg: dict[str, list] = {k: [] for k in ("created_s", "email", "signup_addr", "payment", "country", "org", "tier")}
        self.orgs = 0
        self.org_names: list[str] = []
        self.payments = 0
        self.profiles = [_pmf(_P[p]) for p in PROFILES]
        self.batch_runs: dict[int, list[tuple[int, float, float]]] = {}
        self.university_deadlines: set[int] = set()

    # -- helpers ---------------------------------------------------------------------------------
    def addresses(self, parts: network.Addresses) -> int:
        start = self.n_addr
        self.addr_parts.append(parts)
        self.n_addr += len(parts)
        return start

    def new_org(self, name: str) -> int:
        self.org_names.append(name)
        self.orgs += 1
        return self.orgs - 1

    def new_payments(self, k: int) -> np.ndarray:
        out = np.arange(self.payments, self.payments + k)
        self.payments += k
        return out

    def residential_rows(self, countries: np.ndarray, mobile_share: float) -> np.ndarray:
        """A residential (or mobile) prefix row in each account's country."""
        t = network.table()
        out = np.empty(len(countries), dtype=np.int64)
        for c in np.unique(countries):
            sel = np.flatnonzero(countries == c)
            home = t.select(kind="residential", country=str(c))
            mob = t.select(kind="mobile", country=str(c))
            if len(home) == 0:
                home = t.select(kind="residential", country="US")
            pick_mobile = (self.rng.random(len(sel)) < mobile_share) & (len(mob) > 0)
            out[sel] = home[self.rng.integers(0, len(home), len(sel))]
            if len(mob):
                out[sel[pick_mobile]] = mob[self.rng.integers(0, len(mob), int(pick_mobile.sum()))]
        return out

    def countries(self, n: int) -> np.ndarray:
        names = list(CUSTOMER_COUNTRIES)
        p = np.array(list(CUSTOMER_COUNTRIES.values()))
        return np.array(names)[self.rng.choice(len(names), size=n, p=p / p.sum())]

    def register(self, n: int, *, created_s: np.ndarray, email: pa.Array, signup_addr: np.ndarray,
                 payment: np.ndarray, country: np.ndarray, org: np.ndarray | int, tier: np.ndarray | str) -> None:
        self.reg["created_s"].append(np.asarray(created_s, dtype=np.float64))
        self.reg["email"].append(email)
        self.reg["signup_addr"].append(np.asarray(signup_addr, dtype=np.int64))
        self.reg["payment"].append(np.asarray(payment, dtype=np.int64))
        self.reg["country"].append(np.broadcast_to(np.asarray(country), (n,)).astype(object))
        self.reg["org"].append(np.broadcast_to(np.asarray(org), (n,)).astype(np.int64))
        self.reg["tier"].append(np.broadcast_to(np.asarray(tier), (n,)).astype(object))

    def push(self, n: int, group: str, **cols: np.ndarray | float | int) -> np.ndarray:
        """Add ``n`` accounts; unspecified behaviour gets the ordinary defaults."""
        days = self.cfg.days
        defaults: dict[str, np.ndarray | float | int] = dict(
            campaign=-1, rate=1.0, p_active=0.2, life0=0, life1=days - 1, tz=0.0, timing=HUMAN, profile=0,
            turns=1.6, gap=90.0, rot=STICKY, change_days=14, ua0=0, ua1=0, ua_p=0.0, nkeys=1, org=-1,
            sys_p=0.2, org_sys=0, tools=0, tools_p=0.0, cot_p=0.03, cot_sys_p=0.0, genuine_p=0.0,
            mini_p=0.3, adopt_s=np.inf, weekend=0.6, src=SRC_BENIGN, phase=0, leak0=0, leak_p=0.0,
        )
        defaults.update(cols)
        defaults["group"] = G[group]
        self.acc.add(n, **defaults)
        idx = np.arange(self.n, self.n + n)
        self.n += n
        return idx

    def adopt(self, n: int, mean_days: float, never: float) -> np.ndarray:
        """When each account starts using the newest model (seconds after its release)."""
        s = self.rng.exponential(mean_days * 86400, n)
        return np.where(self.rng.random(n) < never, np.inf, s)

    def ages(self, n: int, mean_days: float) -> np.ndarray:
        """Creation times (seconds from window start) of accounts that existed before the window."""
        return -np.minimum(self.rng.exponential(mean_days, n) + 1, 3 * 365) * 86400 - self.rng.random(n) * 86400


def _ordinary(b: Builder, n: int, group: str = "ordinary") -> None:
    rng, days = b.rng, b.cfg.days
    country = b.countries(n)
    vpn = group == "vpn_relay"
    t = network.table()
    if vpn:
        rows = t.select(kind="vpn")
        rows = rows[rng.integers(0, len(rows), n * 6)]
        start = b.addresses(network.draw(rng, rows))
        addr0, naddr, rot = start + 6 * np.arange(n), 6, PER_SESSION
    else:
        corp = rng.random(n) < 0.1
        rows = b.residential_rows(country, mobile_share=0.25)
        # office workers exit through their employer's proxy, in their own country where one exists here
        for c in np.unique(country[corp]):
            sel = np.flatnonzero(corp & (country == c))
            corp_rows = t.select(kind="corporate", country=str(c))
            corp_rows = corp_rows if len(corp_rows) else t.select(kind="corporate")
            rows[sel] = corp_rows[rng.integers(0, len(corp_rows), len(sel))]
        k = 3  # a home line's address changes a few times over weeks (DHCP, reboots)
        start = b.addresses(network.draw(rng, np.repeat(rows, k)))
        addr0, naddr, rot = start + k * np.arange(n), k, STICKY
    # Usage segments.  Most accounts are occasional; a quarter use the API most weekdays; about one in
    # ten is a developer or product calling it every day (tens of requests: "26 a day is ordinary");
    # a few are apps sending thousands a day.  Rates are rescaled to the preset's total afterwards.
    seg = rng.choice(4, size=n, p=[0.645, 0.25, 0.101, 0.004])  # casual, regular, daily, power
    rate = np.select(
        [seg == 0, seg == 1, seg == 2],
        [rng.lognormal(np.log(3.0), 0.9, n), rng.lognormal(np.log(12), 0.8, n), rng.lognormal(np.log(30), 0.8, n)],
        np.minimum(rng.lognormal(np.log(400), 0.7, n), 3000),
    )
    p_active = np.select([seg == 0, seg == 1, seg == 2], [rng.beta(0.6, 3.5, n), rng.beta(3, 2.2, n), rng.beta(9, 1.2, n)], 0.9)
    # Heavy users are mostly developers: their mix leans to code, agents and multi-step work.
    dev = (seg >= 1) & (rng.random(n) < 0.5)
    profile = np.where(dev, PROFILES.index("developer"), 0)
    cot_p = np.where(rng.random(n) < np.where(dev, 0.25, 0.08), 0.3, 0.01)
    # Products call the API from their backends: cloud addresses, often around the clock.
    backend = ~np.asarray(vpn) & (seg >= 2) & (rng.random(n) < 0.45)
    timing = np.where(backend & (rng.random(n) < 0.6), FLAT, HUMAN)
    if backend.any():
        dc_rows = t.select(kind="datacenter")
        k_dc = 3
        dc_start = b.addresses(network.draw(rng, np.repeat(dc_rows[rng.integers(0, len(dc_rows), int(backend.sum()))], k_dc)))
        addr0 = np.broadcast_to(addr0, (n,)).copy()
        addr0[backend] = dc_start + k_dc * np.arange(int(backend.sum()))
        rot = np.where(backend, PER_REQUEST, rot)
        naddr = np.where(backend, k_dc, naddr)
    created = b.ages(n, 320)
    newcomers = rng.random(n) < 0.08
    created[newcomers] = rng.random(int(newcomers.sum())) * days * 86400
    life0 = np.maximum(0, np.floor(created / 86400)).astype(np.int64)
    ua0 = identity.draw_user_agents(rng, n)
    ua1 = identity.draw_user_agents(rng, n)
    tz = np.array([TZ[c] for c in country]) + rng.normal(0, 0.7, n)
    b.push(
        n, group, rate=rate, p_active=p_active, life0=life0, tz=tz, timing=timing, profile=profile,
        turns=rng.uniform(1.2, 3.5, n), gap=rng.uniform(30, 180, n), rot=rot, naddr=naddr, addr0=addr0,
        change_days=rng.integers(4, 30, n), ua0=ua0, ua1=ua1, ua_p=np.where(rng.random(n) < 0.3, 0.3, 0.0),
        nkeys=rng.integers(1, 4, n), sys_p=np.where(rng.random(n) < 0.3, 0.8, 0.02), tools=rng.integers(2, 9, n),
        tools_p=0.0, cot_p=cot_p, cot_sys_p=0.15, mini_p=rng.beta(1, 3, n),
        adopt_s=b.adopt(n, 6, 0.4), phase=rng.integers(0, 30, n),
    )
    paid = rng.random(n) < 0.65
    payment = np.where(paid, b.new_payments(n), -1)
    tier = np.where(paid, np.where(rng.random(n) < 0.8, "build", "scale"), "free")
    signup = addr0.copy()
    b.register(n, created_s=created, email=identity.emails(rng, n, domains=identity.webmail_domains(rng, n)),
               signup_addr=signup, payment=payment, country=country, org=-1, tier=tier)


def _university(b: Builder, k: int, n: int, term_day: int, deadlines: list[int]) -> None:
    rng = b.rng
    t = network.table()
    rows = t.select(kind="university")
    rows = rows[t.country[rows] != "CN"]
    row = int(rows[k % len(rows)])
    nat = b.addresses(network.draw_cluster(rng, row, 4))  # campus NAT: a few addresses for everyone
    country = str(t.country[row])
    owner = str(t.owner[row]).split(" (")[0].lower()
    domain = "student." + "".join(ch for ch in owner if ch.isalnum())[:12] + ".edu"
    # Registered in a burst at term start: most on the first day, during class hours.
    created = (term_day + np.minimum(rng.exponential(0.8, n), 6)) * 86400 + rng.normal(11, 2.5, n).clip(7, 22) * 3600 - TZ[country] * 3600
    life0 = np.maximum(0, np.floor(created / 86400)).astype(np.int64)
    org = b.new_org(f"university-{k}")
    b.push(
        n, "university", rate=rng.lognormal(np.log(6), 0.8, n), p_active=rng.beta(1.5, 2.5, n), life0=life0,
        tz=TZ[country], timing=HUMAN, profile=PROFILES.index("student"), turns=rng.uniform(1.5, 4, n),
        gap=rng.uniform(40, 160, n), rot=PER_SESSION, addr0=nat, naddr=4, ua0=identity.draw_user_agents(rng, n),
        ua1=identity.draw_user_agents(rng, n), ua_p=0.2, org=np.where(rng.random(n) < 0.5, org, -1),
        sys_p=0.1, cot_p=0.06, mini_p=rng.beta(2, 2, n), adopt_s=b.adopt(n, 10, 0.5), weekend=0.8,
    )
    emails = identity.emails(rng, n, domains=pa.array([domain] * n))
    b.register(n, created_s=created, email=emails, signup_addr=nat + rng.integers(0, 4, n),
               payment=np.full(n, -1), country=country, org=org, tier="education")
    b.university_deadlines |= set(deadlines)


def _coding_company(b: Builder, k: int, n: int) -> None:
    rng = b.rng
    t = network.table()
    cloud = rng.random() < 0.5  # agents run on CI runners in the cloud, or on laptops behind the office proxy
    rows = t.select(kind="datacenter", version=4) if cloud else t.select(kind="corporate")
    row = int(rows[rng.integers(0, len(rows))])
    egress = b.addresses(network.draw_cluster(rng, row, 6))
    country = str(t.country[row])
    name = identity.hex_ids("", np.array([k]), identity.key(b.cfg.seed, "company")).to_pylist()[0][:6]
    org = b.new_org(f"{name.capitalize()} Systems")
    tools = int(rng.integers(10, 30))
    agent_ua = int(identity.draw_user_agents(rng, 1)[0])
    b.push(
        n, "coding_agents", rate=rng.lognormal(np.log(60), 0.6, n), p_active=0.92, tz=TZ[country], timing=BUSINESS,
        profile=PROFILES.index("agent"), turns=rng.uniform(6, 14, n), gap=rng.uniform(4, 15, n), rot=PER_REQUEST,
        addr0=egress, naddr=6, ua0=agent_ua, ua1=identity.draw_user_agents(rng, n), ua_p=0.1, org=org, sys_p=1.0,
        org_sys=1, tools=tools, tools_p=0.9, cot_p=0.02, mini_p=0.15, adopt_s=b.adopt(n, 1.5, 0.0), weekend=0.08,
    )
    # An admin invited the whole team in two batches long ago; the company card pays for all.
    created = np.where(rng.random(n) < 0.6, -400.0, -90.0) * 86400 + rng.random(n) * 1800
    emails = identity.emails(rng, n, domains=pa.array([f"{name}systems.com"] * n))
    b.register(n, created_s=created, email=emails, signup_addr=np.full(n, egress), payment=np.full(n, b.new_payments(1)[0]),
               country=country, org=org, tier="enterprise")


def _batch_eval(b: Builder, n: int) -> None:
    rng, days = b.rng, b.cfg.days
    t = network.table()
    rows = t.select(kind="datacenter", version=4)
    idx = b.push(
        n, "batch_eval", rate=0.0, p_active=0.0, timing=BATCH, profile=PROFILES.index("bench"), turns=1.0, gap=1.0,
        rot=PER_REQUEST, addr0=b.addresses(network.draw(rng, np.repeat(rows[rng.integers(0, len(rows), n)], 2))) + 2 * np.arange(n),
        naddr=2, ua0=identity.draw_user_agents(rng, n), sys_p=1.0, cot_p=0.0, mini_p=0.2, adopt_s=b.adopt(n, 2, 0.2),
        src=SRC_BENCH,
    )
    runs: dict[int, list[tuple[int, float, float]]] = {}
    for a in idx:
        k = int(rng.integers(1, 4))
        ds = rng.choice(days, size=min(k, days), replace=False)
        # one run: thousands of prompts in a few hours, starting any time (jobs are scheduled)
        durations = rng.uniform(1.5, 5, len(ds)) * 3600
        runs[int(a)] = [(int(d), float(rng.uniform(0, 86400 - dur)), float(dur)) for d, dur in zip(sorted(ds), durations, strict=True)]
    b.batch_runs.update(runs)
    country = t.country[rows[0]]
    paid = b.new_payments(n)
    b.register(n, created_s=b.ages(n, 200), email=identity.emails(rng, n, domains=identity.webmail_domains(rng, n, 0)),
               signup_addr=np.full(n, -1), payment=paid, country=country, org=-1, tier="scale")


def _reseller(b: Builder, k: int, n: int) -> None:
    rng = b.rng
    t = network.table()
    rows = t.select(kind="datacenter", version=4)
    row = int(rows[rng.integers(0, len(rows))])
    gw = b.addresses(network.draw_cluster(rng, row, 8))
    name = identity.hex_ids("", np.array([k]), identity.key(b.cfg.seed, "gateway")).to_pylist()[0][:5]
    org = b.new_org(f"{name}-gateway")
    country = b.countries(n)
    b.push(
        n, "reseller", rate=rng.lognormal(np.log(8), 1.0, n), p_active=rng.beta(0.8, 1.6, n),
        tz=np.array([TZ[c] for c in country]), timing=HUMAN, profile=0, turns=rng.uniform(1.2, 3, n),
        gap=rng.uniform(20, 120, n), rot=PER_REQUEST, addr0=gw, naddr=8, ua0=identity.draw_user_agents(rng, 1)[0],
        org=org, sys_p=0.3, cot_p=0.03, mini_p=rng.beta(2, 2, n), adopt_s=b.adopt(n, 3, 0.3), weekend=0.8,
    )
    created = -rng.uniform(5, 500, n) * 86400
    b.register(n, created_s=created, email=identity.emails(rng, n, domains=pa.array([f"users.{name}-gateway.io"] * n)),
               signup_addr=np.full(n, gw), payment=np.full(n, b.new_payments(1)[0]), country=country, org=org, tier="scale")


def _campaign(b: Builder, ci: int, c: CampaignConfig) -> list[text.AttackTemplate]:
    rng = np.random.default_rng([b.cfg.seed, 10, ci])
    n = c.accounts
    t = network.table()
    reg, inf, pr, tm = c.registration, c.infrastructure, c.prompting, c.timing
    c0 = (c.start - b.cfg.start).days
    c1 = (c.end - b.cfg.start).days
    # Lifetimes: all accounts for the whole run, or joining and leaving over it (hydra: banned heads replaced).
    if tm.staggered:
        span = c1 - c0 + 1
        life0 = c0 + np.floor(rng.random(n) ** 2 * 0.35 * span).astype(np.int64)
        life1 = c1 - np.floor(rng.random(n) ** 2 * 0.35 * span).astype(np.int64)
        life1 = np.maximum(life1, life0)
    else:
        life0, life1 = np.full(n, c0), np.full(n, c1)
    country = np.array(inf.countries)[rng.integers(0, len(inf.countries), n)]
    # Exit addresses
    if inf.kind == "datacenter":
        rows = np.concatenate([t.select(kind="datacenter", country=x) for x in inf.countries])
        if len(rows) == 0:
            rows = t.select(kind="datacenter")
    else:
        rows = np.concatenate([t.select(kind=k, country=x) for x in inf.countries for k in ("residential", "mobile")])
        if len(rows) == 0:
            rows = t.select(kind="residential", country="US")
    v6 = rows[t.version[rows] == 6]
    v4 = rows[t.version[rows] == 4]

    def exits(k: int) -> np.ndarray:
        use6 = (rng.random(k) < inf.ipv6_share) & (len(v6) > 0)
        out = v4[rng.integers(0, len(v4), k)]
        if len(v6):
            out[use6] = v6[rng.integers(0, len(v6), int(use6.sum()))]
        return out

    if inf.rotation == "sticky":
        # One home line per account in its own exit country (same ISP when the exit changes), so the
        # declared country, time zone and address agree the way a real subscriber's do.
        k = int(np.ceil(c.days / inf.sticky_days)) + 1
        homes = b.residential_rows(country, mobile_share=0.2)
        country = t.country[homes]
        start = b.addresses(network.draw(rng, np.repeat(homes, k)))
        addr0, naddr, rot = start + k * np.arange(n), k, STICKY
    else:
        start = b.addresses(network.draw(rng, exits(inf.pool_size)))
        addr0, naddr = np.full(n, start), inf.pool_size
        rot = PER_REQUEST if inf.rotation == "per_request" else PER_SESSION
    # The operator's own lines: the occasional request sent without the proxy (a real operational slip).
    home_rows = t.select(kind="residential", country=inf.home_country)
    if len(home_rows) == 0:
        home_rows = t.select(kind="residential")
    leak0 = b.addresses(network.draw(rng, home_rows[rng.integers(0, len(home_rows), 3)]))
    # Per-account volume: the campaign's exchanges spread over its accounts' active days.
    spread = rng.lognormal(0, tm.rate_sigma, n)
    spread /= spread.mean()
    if tm.pattern == "human":
        tz = np.array([TZ.get(str(x), 0.0) for x in country]) + rng.normal(0, 0.7, n)
        timing, weekend = HUMAN, 0.6
    elif tm.pattern == "operator":
        tz, timing, weekend = np.full(n, tm.operator_utc_offset), OPERATOR, 1.0
    else:
        tz, timing, weekend = np.zeros(n), FLAT, 1.0
    if inf.shared_client:
        ua0 = np.full(n, identity.draw_user_agents(rng, 1)[0])
        ua1, ua_p = ua0, 0.0
    else:
        ua0, ua1, ua_p = identity.draw_user_agents(rng, n), identity.draw_user_agents(rng, n), np.where(rng.random(n) < 0.3, 0.3, 0.0)
    # Expected active days per account (weekends are quieter for human-like timing), then the
    # daily rate that makes the campaign's exchanges come out at its configured total.
    is_weekend = np.array([(b.cfg.start + timedelta(days=d)).weekday() >= 5 for d in range(b.cfg.days)])
    cum_wkend = np.concatenate([[0], np.cumsum(is_weekend)])
    wk = cum_wkend[life1 + 1] - cum_wkend[life0]
    active_days = tm.active_day_share * ((life1 - life0 + 1 - wk) + np.minimum(1.0, weekend) * wk)
    rate = spread * c.exchanges / float((active_days * spread).sum())
    # Low-effort operations run every account identically; careful ones vary each head a little.
    humanlike = pr.paraphrase != "none"

    def jitter() -> np.ndarray | float:
        return rng.uniform(0.6, 1.4, n) if humanlike else 1.0

    # careful operations switch head by head over the day after release, not all at one instant
    release_pivot = (c.pivot.delay_hours * 3600 * (rng.uniform(0.5, 2.0, n) if humanlike else 1.0)) if c.pivot.enabled else np.inf
    profile = len(b.profiles)
    b.profiles.append(_pmf(pr.capabilities))
    b.push(
        n, "campaign", campaign=ci, rate=rate, p_active=tm.active_day_share, life0=life0, life1=life1, tz=tz,
        timing=timing, profile=profile, turns=pr.turns * jitter(), gap=rng.exponential(tm.turn_gap_seconds, n) + 1,
        rot=rot, addr0=addr0, naddr=naddr, change_days=np.maximum(1, np.round(inf.sticky_days * jitter())).astype(np.int64),
        ua0=ua0, ua1=ua1, ua_p=ua_p, nkeys=rng.integers(1, 4, n),
        sys_p=np.where(rng.random(n) < 0.3, 0.8, 0.02) if humanlike else 0.2, cot_p=pr.cot_share,
        cot_sys_p=pr.cot_in_system, genuine_p=c.mixing.genuine_share, mini_p=0.0, adopt_s=release_pivot,
        weekend=weekend, src=SRC_ATTACK, leak0=leak0, leak_p=inf.leak_share,
        tools=pr.tools, tools_p=1.0 if (pr.tools and pr.tools_always) else 0.0, phase=rng.integers(0, 30, n),
    )
    # Registration records
    if reg.pattern == "burst":
        # Accounts are made in waves, each shortly before its accounts go to work: group accounts by
        # first day of use; a wave registers within wave_hours, lead_days ahead, waves at least a day apart.
        wave = np.minimum((np.argsort(np.argsort(life0, kind="stable")) * reg.waves) // n, reg.waves - 1)
        first_use = np.array([life0[wave == w].min() if (wave == w).any() else c0 for w in range(reg.waves)])
        wave_day = first_use - reg.lead_days - (reg.waves - 1 - np.arange(reg.waves)) * (first_use == c0)
        wave_t = wave_day * 86400.0 + rng.uniform(0, 24 - reg.wave_hours, reg.waves) * 3600
        created = wave_t[wave] + rng.random(n) * reg.wave_hours * 3600
        created = np.minimum(created, life0 * 86400.0)
    else:
        created = b.ages(n, 420)  # aged accounts: bought or farmed long before
    if reg.email_style == "disposable":
        doms = pa.array(identity.DISPOSABLE).take(pa.array(rng.integers(0, len(identity.DISPOSABLE), n)))
        email = identity.emails(rng, n, domains=doms, style=np.full(n, int(rng.integers(0, identity.EMAIL_STYLES))))
    elif reg.email_style == "patterned":
        email = identity.emails(rng, n, domains=identity.webmail_domains(rng, n, 0.0),
                                style=np.full(n, int(rng.integers(0, identity.EMAIL_STYLES))))
    else:
        email = identity.emails(rng, n, domains=identity.webmail_domains(rng, n))
    pay = b.new_payments(int(np.ceil(n / reg.accounts_per_payment)))
    payment = pay[np.arange(n) // reg.accounts_per_payment]
    if reg.signup_from_egress:
        signup = addr0 + rng.integers(0, naddr, n) if np.ndim(naddr) == 0 else addr0
    else:
        # bought accounts were registered by someone else, from a home line in the declared country
        signup = b.addresses(network.draw(rng, b.residential_rows(country, 0.2))) + np.arange(n)
    declared = country if inf.kind == "residential" else np.array(inf.countries)[rng.integers(0, len(inf.countries), n)]
    tier = np.where(rng.random(n) < (0.8 if reg.pattern == "aged" else 0.97), "build", "scale")
    b.register(n, created_s=created, email=email, signup_addr=signup, payment=payment, country=declared, org=-1, tier=tier)
    return text.attack_library(rng, pr.capabilities, pr.templates)


def _scale_ordinary_rates(b: Builder, acc: dict[str, np.ndarray], target: int) -> None:
    """Scale ordinary-like accounts' rates so benign exchanges land near ``target``."""
    days = b.cfg.days
    benign = acc["campaign"] < 0
    flexible = benign & np.isin(acc["group"], [G["ordinary"], G["vpn_relay"]])
    life = np.clip(np.minimum(acc["life1"], days - 1) - acc["life0"] + 1, 0, None)
    weekend_factor = (5 + 2 * acc["weekend"]) / 7
    expected = np.maximum(acc["rate"], 1.0) * np.minimum(acc["p_active"] * weekend_factor, 1.0) * life
    fixed = expected[benign & ~flexible].sum() + sum(
        len(r) * b.cfg.benign.batch_eval_prompts for r in b.batch_runs.values()
    )
    room = max(target - fixed, 0.2 * target)
    for _ in range(4):  # rates below 1 still send one exchange on an active day: iterate to the fixed point
        cur = (np.maximum(acc["rate"], 1.0) * np.minimum(acc["p_active"] * weekend_factor, 1.0) * life)[flexible].sum()
        acc["rate"][flexible] *= room / max(cur, 1.0)


def build(cfg: SimulationConfig) -> World:
    b = Builder(cfg)
    bc = cfg.benign
    days = cfg.days
    n_vpn = int(round(bc.accounts * bc.vpn_share))
    _ordinary(b, bc.accounts - n_vpn)
    _ordinary(b, n_vpn, "vpn_relay")
    for k in range(bc.universities):
        term = int(b.rng.integers(0, max(1, days // 5)))
        deadlines = sorted({int(d) for d in b.rng.integers(term + 5, max(term + 6, days), 2)})
        _university(b, k, bc.university_accounts, term, deadlines)
    for k in range(bc.coding_companies):
        _coding_company(b, k, bc.coding_accounts)
    _batch_eval(b, bc.batch_eval_accounts)
    for k in range(bc.resellers):
        _reseller(b, k, bc.reseller_accounts)
    templates = [_campaign(b, ci, c) for ci, c in enumerate(cfg.campaigns)]
    acc = b.acc.finish()
    _scale_ordinary_rates(b, acc, bc.exchanges)
    n = b.n
    rng = b.rng

    addresses = network.concat(b.addr_parts)
    # Account ids: one generator for all, numbered in a shuffled order so position tells nothing.
    order = rng.permutation(n)
    account_id = identity.hex_ids("acct_", order, identity.key(cfg.seed, "account"))
    org_names = b.org_names or ["-"]
    org_id = identity.hex_ids("org_", np.arange(len(org_names)), identity.key(cfg.seed, "org"))
    repos = text.idents(rng, len(org_names)).to_pylist()
    org_system = pa.array([
        f"You are {name}'s internal coding agent working in the {repo} repository. Follow CONTRIBUTING.md, "
        "prefer small diffs, and run the test suite before proposing a change."
        for name, repo in zip(org_names, repos, strict=True)
    ])
    # The benchmark batch-eval customers replay (a public test set: identical for everyone who runs it).
    bench_rng = np.random.default_rng([cfg.seed, 3])
    bench_n = bc.batch_eval_prompts
    bench_family = np.array([FAMILIES.index(f) for f in ("math", "coding", "analysis", "translation", "writing")])[
        bench_rng.choice(5, size=bench_n, p=[.3, .3, .2, .1, .1])
    ]
    bench_body = text.benign_prompts(bench_family, np.zeros(bench_n, np.int64), bench_rng)
    benchmark = pc.binary_join_element_wise(
        pc.binary_join_element_wise("Question ", pc.cast(pa.array(np.arange(1, bench_n + 1)), pa.string()), ""),
        bench_body, "Answer with the final result only.", " ")

    accounts_table, labels = _records(cfg, b, acc, account_id, addresses, org_id, rng)
    cot_sys = [int(np.random.default_rng([cfg.seed, 11, i]).integers(0, len(vocab.COT_SYSTEMS))) for i in range(len(cfg.campaigns))]
    cot_phr = [int(np.random.default_rng([cfg.seed, 12, i]).integers(0, len(vocab.COT_PHRASES))) for i in range(len(cfg.campaigns))]
    cdf = np.cumsum(np.array(b.profiles), axis=1)
    cdf[:, -1] = 1.0
    release = cfg.models[0].released if cfg.models else None
    release_s = (release - window_start(cfg)).total_seconds() if release else np.inf
    return World(
        cfg=cfg, acc=acc, n=n, account_id=account_id, addresses=addresses, ua=identity.user_agents()[0], org_id=org_id,
        org_system=org_system, profile_cdf=cdf, attack_templates=templates, cot_system_of_campaign=cot_sys,
        cot_phrase_of_campaign=cot_phr, benchmark=benchmark, benchmark_family=bench_family,
        batch_runs=b.batch_runs, accounts_table=accounts_table, labels=labels,
        deadline_days=b.university_deadlines, models=["atlas-3", "atlas-3-mini"] + [m.name for m in cfg.models],
        release_s=release_s,
    )


def _records(cfg: SimulationConfig, b: Builder, acc: dict[str, np.ndarray], account_id: pa.Array,
             addresses: network.Addresses, org_id: pa.Array, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    reg = {k: v for k, v in b.reg.items()}
    created_s = np.concatenate(reg["created_s"])
    created = pa.array((np.datetime64(window_start(cfg).replace(tzinfo=None), "us")
                        + (created_s * 1e6).astype("timedelta64[us]")), type=pa.timestamp("us", tz="UTC"))
    signup = np.concatenate(reg["signup_addr"])
    signup_ip = addresses.ip.take(pa.array(np.where(signup >= 0, signup, 0)))
    signup_ip = pc.if_else(pa.array(signup >= 0), signup_ip, pa.nulls(len(signup), pa.string()))
    payment = np.concatenate(reg["payment"])
    pay_id = identity.hex_ids("pf_", np.maximum(payment, 0), identity.key(cfg.seed, "payment"))
    pay_id = pc.if_else(pa.array(payment >= 0), pay_id, pa.nulls(len(payment), pa.string()))
    org = np.concatenate(reg["org"])
    orgs = org_id.take(pa.array(np.maximum(org, 0)))
    orgs = pc.if_else(pa.array(org >= 0), orgs, pa.nulls(len(org), pa.string()))
    email = pa.concat_arrays([e.cast(pa.string()) for e in reg["email"]])
    table = pa.table(
        {
            "account_id": account_id,
            "created_at": created,
            "email": email,
            "signup_ip": signup_ip,
            "payment_fingerprint": pay_id,
            "country": pa.array(np.concatenate(reg["country"]).astype(str)),
            "org_id": orgs,
            "tier": pa.array(np.concatenate(reg["tier"]).astype(str)),
        },
        schema=ACCOUNTS_SCHEMA,
    )
    # A few ordinary customers have no account record, as in real exports (deleted, other region's database).
    missing = (acc["group"] == G["ordinary"]) & (rng.random(len(org)) < cfg.benign.missing_account_records)
    table = table.filter(pa.array(~missing))
    table = table.take(pc.sort_indices(table, sort_keys=[("created_at", "ascending"), ("account_id", "ascending")]))
    camp_names = np.array([c.campaign_id for c in cfg.campaigns] + [""], dtype=object)
    is_attack = acc["campaign"] >= 0
    labels = pa.table(
        {
            "account_id": account_id,
            "is_attack": pa.array(is_attack),
            "campaign_id": pa.array(np.where(is_attack, camp_names[acc["campaign"]], None), type=pa.string()),
            "group": pa.array(np.array(GROUPS, dtype=object)[acc["group"]], type=pa.string()),
        },
        schema=LABELS_SCHEMA,
    )
    labels = labels.take(pc.sort_indices(labels, sort_keys=[("account_id", "ascending")]))
    return table, labels


def day_timestamp(cfg: SimulationConfig, day: int) -> np.datetime64:
    return np.datetime64((window_start(cfg) + timedelta(days=day)).replace(tzinfo=None), "us")
