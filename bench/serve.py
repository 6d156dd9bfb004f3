"""Benchmark the decision service: `distillwatch serve` on 127.0.0.1 and a bounded load generator.

    .venv/bin/python bench/serve.py                      # 1,000 req/s for 60 s, 100,000 accounts
    .venv/bin/python bench/serve.py --rate 2000 --seconds 20 --accounts 1000000

The server runs as its own process (the real CLI), the load generator in a second process:
an open-loop asyncio client on keep-alive HTTP/1.1 connections that sends each request at
its scheduled time and measures latency from that time (so a stalled server shows up as
latency, not as a quietly lower rate).  During the run, new decision runs are written to the
store (``--reloads``, default 1, evenly spaced), so the figures include hot reloads under load.  Prints throughput, p50 / p99 /
p99.9 latency, errors, and the server's memory (RSS) at start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TOKEN = "bench-token-" + "x" * 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_results(directory: Path, n_accounts: int, attack_share: float, seed: int) -> list[str]:
    """A synthetic results directory: attack accounts in a few campaigns, the rest benign."""
    from distillwatch.campaigns.model import Campaign, Indicator, Infrastructure, write_campaigns

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    ids = np.array([f"acct-{i:08d}" for i in range(n_accounts)], dtype=object)
    attack = rng.random(n_accounts) < attack_share
    suspect = ~attack & (rng.random(n_accounts) < attack_share)
    score = np.where(
        attack,
        rng.uniform(0.9, 1.0, n_accounts),
        np.where(suspect, rng.uniform(0.5, 0.9, n_accounts), rng.uniform(0, 0.3, n_accounts)),
    )
    verdict = np.where(attack, "attack", np.where(suspect, "suspect", "benign"))
    campaign = np.where(attack, np.char.add("C", (rng.integers(0, 5, n_accounts)).astype(str)), None)
    pq.write_table(
        pa.table(
            {
                "account_id": pa.array(ids, pa.string()),
                "score": score,
                "verdict": pa.array(verdict, pa.string()),
                "campaign_id": pa.array(campaign, pa.string()),
                "reasons": pa.array([""] * n_accounts, pa.string()),
            }
        ),
        directory / "accounts.parquet",
    )
    now = datetime.now(UTC)
    write_campaigns(
        directory / "campaigns.json",
        [
            Campaign(
                campaign_id=f"C{i}",
                accounts=1,
                exchanges=1,
                first_seen=now - timedelta(days=2),
                last_seen=now,
                days=3,
                exchanges_per_account=1.0,
                capabilities={},
                infrastructure=Infrastructure(addresses=1, prefixes=1),
                confidence=0.9,
                indicators=[Indicator(type="ipv4-prefix", value=f"203.0.{i}.0/24")],
            )
            for i in range(5)
        ],
    )
    (directory / "run.json").write_text(json.dumps({"run_id": f"bench-{seed}"}))
    return list(ids)


async def _client(
    port: int, rate: float, seconds: float, accounts: list[str], conns: int, out: mp.Queue
) -> None:
    total = int(rate * seconds)
    rng = random.Random(7)
    # Pre-built requests: flagged, clean and never-seen accounts.
    bodies = []
    for _ in range(4096):
        r = rng.random()
        acct = rng.choice(accounts) if r < 0.9 else f"unknown-{rng.randrange(10**9)}"
        body = json.dumps(
            {"account_id": acct, "ip": f"198.51.100.{rng.randrange(256)}", "model": "m"}
        ).encode()
        bodies.append(
            b"POST /v1/decision HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies = np.zeros(total)
    statuses = np.zeros(total, dtype=np.int32)
    errors: list[str] = []

    async def one(i: int, scheduled: float) -> None:
        reader, writer = await pool.get()
        try:
            writer.write(bodies[i % len(bodies)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            statuses[i] = int(head[9:12])
            latencies[i] = time.perf_counter() - scheduled
            pool.put_nowait((reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(repr(exc)[:200])
            latencies[i] = np.nan
            pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))

    start = time.perf_counter()
    pending: set[asyncio.Task] = set()  # O(1) bookkeeping: a backlog must not slow the generator down
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    out.put(
        {
            "sent": total,
            "elapsed": elapsed,
            "latencies": latencies.tolist(),
            "statuses": statuses.tolist(),
            "errors": errors[:10],
            "n_errors": len(errors),
        }
    )


def _client_process(
    port: int, rate: float, seconds: float, accounts: list[str], conns: int, out: mp.Queue
) -> None:
    import gc

    gc.freeze()  # keep the generator's own GC pauses out of the measured latency
    asyncio.run(_client(port, rate, seconds, accounts, conns, out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second (open loop)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--attack-share", type=float, default=0.05)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--reloads", type=int, default=1, help="decision runs written during the load, evenly spaced"
    )
    args = ap.parse_args()
    if args.rate * args.seconds > 1_000_000:
        sys.exit("bounded: at most 1,000,000 requests per run")

    from distillwatch.respond.decide import decide
    from distillwatch.respond.policy import load_policy
    from distillwatch.respond.results import read_results

    work = Path(tempfile.mkdtemp(prefix="dw-bench-serve-"))
    db = work / "store.duckdb"
    t = time.perf_counter()
    accounts = write_results(work / "results", args.accounts, args.attack_share, seed=1)
    first = decide(read_results(work / "results"), load_policy(), db)
    print(
        f"setup: {args.accounts:,} accounts, {first.actions.num_rows:,} under action, "
        f"decide took {time.perf_counter() - t:.1f}s"
    )

    port = _free_port()
    env = {**os.environ, "DISTILLWATCH_API_TOKENS": TOKEN}
    exe = Path(sys.executable).with_name("distillwatch")
    server = subprocess.Popen(
        [str(exe), "serve", "--db", str(db), "--port", str(port), "--poll-interval", "0.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["decision_run_id"]
                    == first.run_id
                ):
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(
                    f"server did not start: {server.stderr.read().decode()[-2000:] if server.stderr else ''}"
                )
            time.sleep(0.1)
        rss_start = _rss_mb(server.pid)
        cpu_start = _cpu_s(server.pid)
        load_start = os.getloadavg()[0]
        queue: mp.Queue = mp.get_context("spawn").Queue()
        client = mp.get_context("spawn").Process(
            target=_client_process, args=(port, args.rate, args.seconds, accounts, args.connections, queue)
        )
        client.start()
        reload_times: list[float] = []
        rss_after_reload: list[float] = []
        started = time.monotonic()
        for k in range(args.reloads):
            # Each run decides different accounts (another seed), so the snapshot really changes.
            time.sleep(max(0.0, started + args.seconds * (k + 1) / (args.reloads + 1) - time.monotonic()))
            write_results(work / "results", args.accounts, args.attack_share, seed=2 + k)
            t = time.perf_counter()
            run = decide(read_results(work / "results"), load_policy(), db)
            while (
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["decision_run_id"]
                != run.run_id
            ):
                time.sleep(0.05)
            reload_times.append(time.perf_counter() - t)
            rss_after_reload.append(_rss_mb(server.pid))
        result = queue.get(timeout=args.seconds + 120)
        client.join()
        rss_end = _rss_mb(server.pid)
        cpu_used = _cpu_s(server.pid) - cpu_start
        load_end = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=10)

    lat = np.array(result["latencies"], dtype=float) * 1000
    ok = np.array(result["statuses"]) == 200
    good = lat[~np.isnan(lat)]
    print(
        f"requests: {result['sent']:,} at {args.rate:,.0f}/s target over {args.seconds:.0f}s, "
        f"{args.connections} keep-alive connections"
    )
    print(f"throughput: {result['sent'] / result['elapsed']:,.0f} req/s")
    print(
        f"latency ms: p50 {np.percentile(good, 50):.2f}  p99 {np.percentile(good, 99):.2f}  "
        f"p99.9 {np.percentile(good, 99.9):.2f}  max {good.max():.2f}"
    )
    per_second = [
        np.nanmax(lat[int(i * args.rate) : int((i + 1) * args.rate)]) for i in range(int(args.seconds))
    ]
    print("worst latency per second (ms): " + " ".join(f"{v:.0f}" for v in per_second))
    print(f"errors: {result['n_errors']} transport, {int((~ok).sum()) - result['n_errors']} non-200")
    if reload_times:
        print(
            f"hot reloads: {len(reload_times)} decision runs written under load, each served "
            f"{min(reload_times):.2f}-{max(reload_times):.2f}s after its decide started; server RSS after each: "
            + ", ".join(f"{v:.0f}" for v in rss_after_reload)
            + " MB"
        )
    print(f"server memory (RSS): start {rss_start:.0f} MB, end {rss_end:.0f} MB")
    print(
        f"server CPU: {cpu_used:.1f}s, {cpu_used / result['sent'] * 1000:.3f} ms per request (reload included)"
    )
    print(
        f"machine load average (1 min): {load_start:.1f} at start, {load_end:.1f} at end, on {os.cpu_count()} cores"
    )
    for e in result["errors"]:
        print("  error:", e)


if __name__ == "__main__":
    main()
