"""Nothing but the labels marks an attacker: ids, e-mails, user agents and text come from shared generators."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from distillwatch.simulate import identity, vocab
from distillwatch.simulate.config import preset
from distillwatch.simulate.population import G, build

ID = re.compile(r"^acct_[0-9a-f]{16}$")


def _world(evasion: str):  # noqa: ANN202 - a population World
    cfg = preset("demo", seed=3, evasion=evasion)  # type: ignore[arg-type]
    big = cfg.campaigns[0].model_copy(update={"accounts": 2500})
    return build(cfg.model_copy(update={"campaigns": [big]}))


def _tvd(a: list[str], b: list[str]) -> float:
    ca, cb = Counter(a), Counter(b)
    return 0.5 * sum(abs(ca[k] / len(a) - cb[k] / len(b)) for k in set(ca) | set(cb))


@pytest.fixture(scope="module", params=["none", "moderate", "strong"])
def world(request: pytest.FixtureRequest):  # noqa: ANN201
    return request.param, _world(request.param)


def _split(world) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    acc = world.acc
    return np.flatnonzero(acc["campaign"] >= 0), np.flatnonzero(acc["group"] == G["ordinary"])


def test_ids_come_from_one_generator(world) -> None:
    _, w = world
    attack, ordinary = _split(w)
    ids = np.array(w.account_id.to_pylist())
    assert all(ID.match(i) for i in ids)
    # hex digits are uniform for both populations (no prefix, no counter)
    for sel in (attack, ordinary):
        digits = [int(i[5 + k], 16) for i in ids[sel] for k in range(4)]
        assert abs(np.mean(digits) - 7.5) < 0.5


def test_user_agents_and_email_domains_are_everyone_s(world) -> None:
    level, w = world
    attack, ordinary = _split(w)
    all_uas = set(identity.user_agents()[0].to_pylist())
    ua = np.array(w.ua.to_pylist())
    assert set(ua[w.acc["ua0"][attack]]) <= all_uas
    rec = w.accounts_table.to_pydict()
    by_id = dict(zip(rec["account_id"], rec["email"], strict=True))
    ids = w.account_id.to_pylist()
    domains = {d for d, _ in identity.WEBMAIL} | set(identity.DISPOSABLE)
    att_dom = [by_id[ids[i]].split("@")[1] for i in attack if ids[i] in by_id]
    assert set(att_dom) <= domains
    if level == "strong":
        ord_dom = [by_id[ids[i]].split("@")[1] for i in ordinary if ids[i] in by_id]
        assert _tvd(att_dom, ord_dom) < 0.1
        fam = lambda idx: [s.split("/")[0].split(" ")[0] for s in ua[w.acc["ua0"][idx]]]  # noqa: E731
        assert _tvd(fam(attack), fam(ordinary)) < 0.1
        # local-part styles: the same mix as everyone's
        style = lambda e: re.sub(r"[a-z]+", "a", re.sub(r"\d+", "9", e.split("@")[0]))  # noqa: E731
        ord_local = [style(by_id[ids[i]]) for i in ordinary if ids[i] in by_id]
        att_local = [style(by_id[ids[i]]) for i in attack if ids[i] in by_id]
        assert _tvd(att_local, ord_local) < 0.1


def test_strong_accounts_are_aged_with_unique_payment() -> None:
    w = _world("strong")
    attack, _ = _split(w)
    t = w.accounts_table
    att = t.filter(pc.is_in(t["account_id"], value_set=w.account_id.take(pa.array(attack))))
    pay = att["payment_fingerprint"].to_pylist()
    assert len(set(pay)) == len(pay) == len(attack)
    start = np.datetime64("2026-05-04")
    age = (start - att["created_at"].cast(pa.timestamp("us")).to_numpy()).astype("timedelta64[D]").astype(int)
    assert np.median(age) > 90, "aged accounts, not a registration burst"


def test_strong_prompts_carry_no_template_frame(reported_strong) -> None:
    ex = reported_strong.exchanges
    lab = reported_strong.labels
    attackers = lab.filter(lab["is_attack"])["account_id"]
    prompts = ex.filter(pc.is_in(ex["account_id"], value_set=attackers))["prompt"].to_pylist()
    frames = [h for variants in vocab.ATTACK_HEADERS for h in variants if h and "{" not in h]
    frames += [c.strip() for variants in vocab.ATTACK_CLOSERS for c in variants]
    assert not [p for p in prompts if any(f in p for f in frames)]
