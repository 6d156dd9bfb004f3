"""A small hand-built traffic set: one coordinated cluster among ordinary and hard-case customers.

Written out deterministically (seeded) so tests do not depend on the simulator.
The cluster has what a real harvesting operation leaves in logs: fresh accounts
registered minutes apart with a throwaway domain, datacenter addresses in two
/24s, templated coding and math prompts asking for step-by-step reasoning, and
flat round-the-clock timing.  The hard cases: a university behind one NAT
address (registered in a burst, diverse prompts, daytime) and one batch
evaluation account (many benchmark prompts from a cloud address in hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch.contract import ACCOUNTS_SCHEMA, EXCHANGES_SCHEMA

START = datetime(2026, 4, 22, tzinfo=UTC)
TOPICS = ["poem about autumn", "email to my landlord", "recipe with lentils", "summary of the french revolution",
          "cover letter for a nurse job", "joke about cats", "plan for a birthday party", "explanation of tides",
          "review of a sci-fi novel", "translation of 'good morning' to spanish", "workout for beginners",
          "story about a dragon", "advice on learning guitar", "comparison of tea and coffee"]
VERBS = ["Write", "Draft", "Give me", "Can you write", "Help me with", "I need"]
LANGS = ["Python", "Rust", "Go", "TypeScript", "Java"]
TASKS = ["an LRU cache", "a rate limiter", "a trie", "a JSON parser", "a thread pool", "a B-tree", "a diff tool"]


WORDS = (
    "river garden budget violin winter office station history recipe planet market travel letter museum lesson "
    "doctor bicycle kitchen novel festival harbour village engine forest island camera window teacher neighbour "
    "weekend holiday concert library marathon painting puzzle coffee sunrise mountain ocean autumn spring castle "
    "dragon robot wizard pirate detective astronaut gardener baker farmer sailor poet singer dancer climber"
).split()


def _benign_prompt(rng: np.random.Generator, i: int) -> str:
    # People write varied text: a frame plus several free words, so templates rarely repeat by chance.
    extra = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 7))))
    return f"{rng.choice(VERBS)} a {rng.choice(TOPICS)} about {extra}, {rng.choice(['please', 'thanks', 'quickly', 'in detail'])}"


def build(out: Path, seed: int = 7) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    ex: list[dict] = []
    acc: list[dict] = []
    labels: list[dict] = []
    rid = 0

    def add(account: str, ts: datetime, ip: str, prompt: str, **kw) -> None:
        nonlocal rid
        rid += 1
        ex.append({"request_id": f"r{rid:06d}", "account_id": account, "ts": ts, "ip": ip, "prompt": prompt,
                   "model": kw.get("model", "m-large"), "input_tokens": int(kw.get("inp", 200)),
                   "output_tokens": int(kw.get("out", 300)), "n_tools": int(kw.get("tools", 0)),
                   "conversation_id": kw.get("conv"), "user_agent": kw.get("ua", "python-httpx/0.27"),
                   "system": kw.get("system"), "asn": kw.get("asn"), "country": kw.get("country")})

    # Ordinary customers: residential addresses, daytime, diverse prompts, weeks-old accounts.
    for a in range(40):
        aid = f"acct-{rng.integers(1e9):09d}"
        tz = int(rng.integers(-8, 9))
        acc.append({"account_id": aid, "created_at": START - timedelta(days=int(rng.integers(30, 400))),
                    "email": f"user{a}@{rng.choice(['gmail.com', 'outlook.com', 'proton.me', 'yahoo.com'])}",
                    "payment_fingerprint": f"pay-{a:04d}"})
        labels.append({"account_id": aid, "is_attack": False, "campaign_id": None, "group": "ordinary"})
        for d in range(int(rng.integers(2, 12))):
            for _k in range(int(rng.integers(1, 8))):
                hour = int(rng.integers(8, 23)) - tz
                ts = START + timedelta(days=d * 2, hours=hour, minutes=int(rng.integers(0, 60)))
                add(aid, ts, f"81.{a}.{int(rng.integers(0, 3))}.{int(rng.integers(1, 250))}", _benign_prompt(rng, rid),
                    conv=f"c-{aid}-{d}", ua=str(rng.choice(["Mozilla/5.0", "curl/8.5", "openai-python/1.30", "python-httpx/0.27"])))

    # University: 25 accounts behind one NAT address, sign-up burst, diverse daytime prompts.
    for a in range(25):
        aid = f"acct-{rng.integers(1e9):09d}"
        acc.append({"account_id": aid, "created_at": START - timedelta(days=20, minutes=int(rng.integers(0, 90))),
                    "email": f"student{a}@uni.example.edu", "payment_fingerprint": f"uni-{a:04d}"})
        labels.append({"account_id": aid, "is_attack": False, "campaign_id": None, "group": "university"})
        for d in range(int(rng.integers(3, 10))):
            for _k in range(int(rng.integers(2, 6))):
                ts = START + timedelta(days=d, hours=int(rng.integers(9, 18)), minutes=int(rng.integers(0, 60)))
                add(aid, ts, "130.89.1.1", _benign_prompt(rng, rid), ua="Mozilla/5.0", conv=f"u-{aid}-{d}")

    # Batch evaluation: one account, 400 benchmark prompts from a cloud address within 3 hours.
    aid = f"acct-{rng.integers(1e9):09d}"
    acc.append({"account_id": aid, "created_at": START - timedelta(days=90), "email": "ml@evalco.example",
                "payment_fingerprint": "pay-eval"})
    labels.append({"account_id": aid, "is_attack": False, "campaign_id": None, "group": "batch_eval"})
    for k in range(400):
        add(aid, START + timedelta(days=3, seconds=27 * k), "3.5.140.2",
            f"Question {k}: Natalia sold clips to {k + 3} friends. How many clips did she sell altogether?")

    # The campaign: 12 fresh accounts, flat 24h, datacenter /24s, templated coding+math with CoT.
    created = START - timedelta(hours=3)
    for a in range(12):
        aid = f"acct-{rng.integers(1e9):09d}"
        acc.append({"account_id": aid, "created_at": created + timedelta(minutes=int(rng.integers(0, 20))),
                    "email": f"{rng.choice(['mark', 'anna', 'li'])}{int(rng.integers(10, 99))}@mailinator.com",
                    "payment_fingerprint": f"pay-x{a % 3}"})
        labels.append({"account_id": aid, "is_attack": True, "campaign_id": "C1", "group": "campaign"})
        for d in range(10):
            for _k in range(26):
                ts = START + timedelta(days=d, seconds=int(rng.integers(0, 86400)))
                if rng.random() < 0.5:
                    p = (f"Implement {rng.choice(TASKS)} in {rng.choice(LANGS)}. Think step by step and show your "
                         f"reasoning before the final code. Include tests for case {int(rng.integers(1000))}.")
                else:
                    p = (f"Solve: a train travels {int(rng.integers(20, 200))} km in {int(rng.integers(1, 9))} hours. "
                         "Explain your reasoning step by step, then give the final answer.")
                add(aid, ts, f"45.77.{10 + a % 2}.{int(rng.integers(2, 250))}", p, ua="python-httpx/0.27",
                    inp=120, out=900, model="m-large" if d < 5 else "m-new")

    exchanges = pa.Table.from_pylist(sorted(ex, key=lambda r: r["ts"]), schema=EXCHANGES_SCHEMA)
    accounts = pa.Table.from_pylist(acc, schema=ACCOUNTS_SCHEMA)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"exchanges": out / "exchanges.parquet", "accounts": out / "accounts.parquet", "labels": out / "labels.parquet"}
    pq.write_table(exchanges, paths["exchanges"])
    pq.write_table(accounts, paths["accounts"])
    pq.write_table(pa.Table.from_pylist(labels), paths["labels"])
    return paths


@pytest.fixture(scope="session")
def handmade(tmp_path_factory) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("handmade"))
