"""Throughput of every enrichment function.

    .venv/bin/python bench/enrich.py [--rows 200000] [--ips 1000000] [--shared /work/shared/data]

Texts are real prompts from the shared data when present (synthetic
otherwise), each made distinct with a few random words so nothing is
deduplicated away (the worst case; real traffic repeats templates).
Addresses are distinct random IPv4 plus 5% IPv6.  Prints rows per second by
wall clock and by process CPU time: on a shared machine the CPU figure is the
steadier one, and the multi-threaded normaliser counts all its threads.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from distillwatch.enrich import capability, cot, email, network, templates


def real_prompts(shared: Path) -> list[str]:
    out: list[str] = []
    for line in (shared / "human/arena-hard/arena-hard-v0.1_question.jsonl").read_text().splitlines():
        out.append(json.loads(line)["prompt"])
    for line in (shared / "distill/gsm8k/gsm8k_train.jsonl").read_text().splitlines():
        out.append(json.loads(line)["question"])
    for r in json.loads((shared / "distill/gpteacher/codegen-instruct.json").read_text()):
        out.append(r["instruction"] + "\n" + r["input"])
    for line in (shared / "human/hh-rlhf/harmless-base_test.jsonl").read_text().splitlines():
        out.append(json.loads(line)["chosen"].split("\n\nHuman: ")[1].split("\n\nAssistant:")[0])
    return out


def synthetic_prompts(rng: np.random.Generator, n: int) -> list[str]:
    vocab = np.array("write a function that returns the sum of two numbers explain why sky is blue python code list "
                     "solve for x in equation story about dragon please help me with my essay on history".split())
    return [" ".join(rng.choice(vocab, int(rng.integers(8, 60)))) for _ in range(n)]


def timed(name: str, n: int, fn: Callable[[], object], unit: str = "rows") -> None:
    fn_small = fn  # warm caches (model and list loading) outside the timing
    w0, c0 = time.perf_counter(), time.process_time()
    fn_small()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"{name:<34} {n:>9,} {unit:<9} wall {wall:7.2f}s {n / wall:>11,.0f}/s   cpu {cpu:7.2f}s {n / max(cpu, 1e-9):>11,.0f}/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--ips", type=int, default=1_000_000)
    ap.add_argument("--shared", type=Path, default=Path("/work/shared/data"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    base = real_prompts(args.shared) if args.shared.exists() else synthetic_prompts(rng, 5000)
    filler = np.array(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"])
    picks = rng.integers(0, len(base), args.rows)
    extra = rng.choice(filler, size=(args.rows, 4))
    texts = pa.array([base[p] + " " + " ".join(e) for p, e in zip(picks, extra, strict=True)])
    avg = np.mean([len(base[p]) for p in picks[:10000]])
    print(f"texts: {args.rows:,} distinct, mean {avg:.0f} characters ({'real prompts' if args.shared.exists() else 'synthetic'})")

    # warm-up: load the model and the lists once
    capability.classify(texts[:10])
    nl = network.NetworkLists.load()
    el = email.EmailLists.load()

    timed("capability.classify", args.rows, lambda: capability.classify(texts))
    timed("cot.elicits_cot", args.rows, lambda: cot.elicits_cot(texts))
    timed("templates.normalize", args.rows, lambda: templates.normalize(texts))
    timed("templates.template_hash", args.rows, lambda: templates.template_hash(texts))
    norm = templates.normalize(texts)
    timed("templates.minhash (normalised in)", args.rows, lambda: templates.minhash(norm, normalized=True))
    sigs = templates.minhash(norm, normalized=True)
    timed("templates.lsh_bands 16x4", args.rows, lambda: templates.lsh_bands(sigs, 16, 4))

    v4 = rng.choice(2**32, size=int(args.ips * 0.95), replace=False).astype(np.uint64)
    ips = [f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in v4.tolist()]
    ips += [f"2a0{int(a) % 10}:{int(a):x}::{int(b):x}" for a, b in rng.integers(0, 65535, size=(args.ips - len(ips), 2))]
    ip_arr = pa.array(ips)
    timed("network.classify (distinct IPs)", len(ips), lambda: nl.classify(ip_arr), "addresses")

    mails = pa.array([f"user{i}.{int(rng.integers(1e6))}@{['gmail.com', 'mailinator.com', 'corp.example'][i % 3]}"
                      for i in range(args.ips)])
    timed("email.is_disposable", args.ips, lambda: el.is_disposable(mails), "addresses")
    timed("email.local_part_pattern", args.ips, lambda: email.local_part_pattern(mails), "addresses")


if __name__ == "__main__":
    main()
