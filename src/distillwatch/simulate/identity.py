"""Identifiers, e-mail addresses, user agents and payment fingerprints.

Every identifier comes from one generator for everybody: a keyed 64-bit mix
(splitmix64, a bijection, so ids never collide) of a running number, printed
as hex.  An attacker's account id is therefore indistinguishable from a
customer's; only the labels say who is who.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray, key: int) -> np.ndarray:
    """Bijective 64-bit mix of ``x`` under ``key`` (same input, same output)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(key & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def hex_ids(prefix: str, numbers: np.ndarray, key: int) -> pa.Array:
    """``prefix`` + 16 hex digits of the keyed mix of each number, vectorised."""
    if len(numbers) == 0:
        return pa.array([], pa.string())
    mixed = splitmix64(np.asarray(numbers), key).astype(">u8")
    digits = np.frombuffer(mixed.tobytes().hex().encode("ascii"), dtype="S16")
    body = pa.array(digits, type=pa.binary(16)).cast(pa.binary()).cast(pa.string())
    return pc.binary_join_element_wise(prefix, body, "")


# Keys separate the id spaces (accounts, requests, conversations ...), derived from the run seed.
def key(seed: int, space: str) -> int:
    h = 1469598103934665603
    for ch in f"{seed}:{space}".encode():
        h = ((h ^ ch) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


# fmt: off
FIRST = ["james", "maria", "wei", "ana", "li", "john", "sofia", "ahmed", "yuki", "david", "emma", "raj", "olga", "luis",
         "fatima", "chen", "anna", "mohammed", "laura", "kenji", "sara", "daniel", "ines", "tom", "mei", "lucas", "nina",
         "alex", "julia", "omar", "eva", "marco", "hana", "peter", "lea", "diego", "amir", "clara", "ivan", "zoe", "noah",
         "aisha", "felix", "rosa", "sam", "elena", "hugo", "priya", "max", "lina", "jonas", "carmen", "ben", "mila"]
LAST = ["smith", "garcia", "wang", "muller", "kim", "silva", "nguyen", "kowalski", "rossi", "tanaka", "johnson", "lopez",
        "schmidt", "martin", "li", "brown", "novak", "singh", "dubois", "sato", "jones", "fernandez", "chen", "ivanova",
        "patel", "khan", "murphy", "jensen", "costa", "weber", "park", "ali", "moreau", "larsen", "yilmaz", "suzuki",
        "hughes", "fischer", "santos", "kumar", "ng", "olsen", "bianchi", "meyer", "choi", "haddad", "reyes", "wood"]
WEBMAIL = [("gmail.com", 0.46), ("outlook.com", 0.11), ("yahoo.com", 0.06), ("icloud.com", 0.07), ("hotmail.com", 0.05),
           ("proton.me", 0.03), ("gmx.de", 0.03), ("web.de", 0.02), ("qq.com", 0.02), ("naver.com", 0.02),
           ("yahoo.co.jp", 0.02), ("mail.ru", 0.01), ("fastmail.com", 0.01), ("orange.fr", 0.02), ("btinternet.com", 0.01),
           ("163.com", 0.01), ("aol.com", 0.01), ("zoho.com", 0.01), ("live.com", 0.03)]
DISPOSABLE = ["mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com", "sharklasers.com",
              "temp-mail.org", "dispostable.com", "trashmail.com", "getnada.com", "maildrop.cc"]
# fmt: on

EMAIL_STYLES = 6  # first.last, firstlast+nn, flast, first_last+yyyy, first+nnn, handle


def emails(rng: np.random.Generator, n: int, *, domains: pa.Array, style: np.ndarray | None = None) -> pa.Array:
    """Addresses on the given per-row domains; local parts in the styles people use.

    ``style`` fixes the local-part style per row (a campaign's pattern);
    by default each row draws one, like any population.
    """
    first = pa.array(FIRST).take(pa.array(rng.integers(0, len(FIRST), n)))
    last = pa.array(LAST).take(pa.array(rng.integers(0, len(LAST), n)))
    s = rng.integers(0, EMAIL_STYLES, n) if style is None else style
    nn = pc.cast(pa.array(rng.integers(1, 100, n)), pa.string())
    yyyy = pc.cast(pa.array(rng.integers(1960, 2008, n)), pa.string())
    nnn = pc.cast(pa.array(rng.integers(100, 10000, n)), pa.string())
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    handle = hex_ids("", rng.integers(0, 2**62, n), 77)
    options = [
        pc.binary_join_element_wise(first, last, "."),
        pc.binary_join_element_wise(first, last, nn, ""),
        pc.binary_join_element_wise(initial, last, ""),
        pc.binary_join_element_wise(first, "_", last, yyyy, ""),
        pc.binary_join_element_wise(first, nnn, ""),
        pc.binary_join_element_wise(first, pc.utf8_slice_codeunits(handle, 0, 5), ""),
    ]
    local = options[0]
    for i in range(1, EMAIL_STYLES):
        local = pc.if_else(pa.array(s == i), options[i], local)
    return pc.binary_join_element_wise(local, domains, "@")


def webmail_domains(rng: np.random.Generator, n: int, disposable_share: float = 0.01) -> pa.Array:
    names = [d for d, _ in WEBMAIL]
    p = np.array([w for _, w in WEBMAIL], dtype=float)
    doms = pa.array(names).take(pa.array(rng.choice(len(names), size=n, p=p / p.sum())))
    disp = pa.array(DISPOSABLE).take(pa.array(rng.integers(0, len(DISPOSABLE), n)))
    return pc.if_else(pa.array(rng.random(n) < disposable_share), disp, doms)


@lru_cache(maxsize=1)
def user_agents() -> tuple[pa.Array, np.ndarray]:
    """The client population: (user agent strings, popularity weights).

    SDK versions spread the way real fleets lag behind releases.
    """
    uas: list[str] = []
    weights: list[float] = []

    def add(base: str, versions: list[str], total: float) -> None:
        w = np.array([0.5**i for i in range(len(versions))])
        w = w / w.sum() * total
        for v, wi in zip(versions, w, strict=True):
            uas.append(base.format(v=v))
            weights.append(float(wi))

    add("atlas-python/{v}", [f"2.{m}.{p}" for m in (6, 5, 4) for p in (3, 2, 1, 0)], 0.30)
    add("atlas-node/{v}", [f"1.{m}.{p}" for m in (9, 8, 7) for p in (2, 1, 0)], 0.12)
    add("python-requests/{v}", ["2.32.3", "2.31.0", "2.28.2", "2.25.1"], 0.08)
    add("python-httpx/{v}", ["0.27.2", "0.27.0", "0.26.0"], 0.06)
    add("curl/{v}", ["8.5.0", "8.9.1", "7.81.0", "7.68.0"], 0.03)
    add("axios/{v}", ["1.7.7", "1.6.8", "0.27.2"], 0.04)
    add("Go-http-client/{v}", ["2.0", "1.1"], 0.03)
    add("okhttp/{v}", ["4.12.0", "4.11.0"], 0.02)
    add("litellm/{v}", ["1.52.0", "1.51.3", "1.48.2"], 0.03)
    add("langchain-python/{v}", ["0.3.7", "0.3.1", "0.2.16"], 0.04)
    add("aider/{v}", ["0.65.1", "0.64.0"], 0.01)
    add("cline/{v}", ["3.1.0", "3.0.4"], 0.01)
    add(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36",
        ["131.0.0.0", "130.0.0.0", "129.0.0.0"], 0.10,
    )
    add(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15",
        ["18.1", "17.6"], 0.06,
    )
    add("Mozilla/5.0 (X11; Linux x86_64; rv:{v}) Gecko/20100101 Firefox/{v}", ["132.0", "131.0"], 0.03)
    add(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1",
        ["18.1", "17.6"], 0.04,
    )
    w = np.array(weights)
    return pa.array(uas, pa.string()), w / w.sum()


def draw_user_agents(rng: np.random.Generator, n: int) -> np.ndarray:
    ua, w = user_agents()
    return rng.choice(len(ua), size=n, p=w)
