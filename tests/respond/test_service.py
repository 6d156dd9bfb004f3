import hashlib
import threading

import httpx
import pytest

from distillwatch.respond import records
from distillwatch.respond.decide import decide
from distillwatch.respond.policy import load_policy
from distillwatch.respond.results import read_results
from distillwatch.respond.service import create_app, load_tokens
from tests.respond.helpers import BASE_ACCOUNTS, BASE_ROWS, NOW, write_accounts, write_results
from tests.respond.server import running, wait_until

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _serve(tmp_path):
    results = write_results(tmp_path / "r", BASE_ROWS)
    accounts = write_accounts(tmp_path / "accounts.parquet", BASE_ACCOUNTS)
    db = tmp_path / "store.duckdb"
    decide(read_results(results), load_policy(), db, accounts_path=accounts, now=NOW)
    app = create_app(
        db, load_policy(), [TOKEN, "second-token-abcdefghijkl"], poll_interval_s=0.05, freeze_gc=False
    )
    with running(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        yield client, app, db, results, accounts


@pytest.fixture
def served(tmp_path):
    """A server of one's own, for tests that change the store."""
    yield from _serve(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only read, or touch only their own accounts."""
    yield from _serve(tmp_path_factory.mktemp("shared"))


def _decide(client, account, ip="192.0.2.10", **kw):
    return client.post("/v1/decision", json={"account_id": account, "ip": ip, **kw}, headers=AUTH)


def test_auth_is_required_everywhere_but_healthz(shared):
    client, *_ = shared
    assert client.get("/healthz").status_code == 200
    for method, path, body in [
        ("POST", "/v1/decision", {"account_id": "a", "ip": "192.0.2.1"}),
        ("GET", "/v1/accounts/atk-1", None),
        ("GET", "/docs", None),
        ("POST", "/v1/accounts/atk-1/review", {"kind": "clear", "note": "n", "analyst": "a"}),
    ]:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-wrong-token"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            r = client.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
    assert (
        client.post(
            "/v1/decision",
            json={"account_id": "a", "ip": "192.0.2.1"},
            headers={"Authorization": "Bearer second-token-abcdefghijkl"},
        ).status_code
        == 200
    )


def test_decisions_for_flagged_and_clean_accounts(shared):
    client, *_ = shared
    r = _decide(client, "atk-1", api_key_id="k1", model="m")
    assert r.status_code == 200
    body = r.json()
    assert body["action"] == "block" and body["campaign_id"] == "C1" and body["ttl_seconds"] == 86400
    assert body["reason_codes"][0] == "CAMPAIGN-BLOCK"
    ent = _decide(client, "ent-1").json()
    assert ent["action"] == "flag" and "EXEMPT-ENTERPRISE" in ent["reason_codes"]
    clean = _decide(client, "clean-1").json()
    assert clean == {**clean, "action": "allow", "reason_codes": [], "campaign_id": None, "ttl_seconds": 300}
    # an account never seen, calling from a campaign's prefix, is flagged for review
    newcomer = _decide(client, "brand-new", ip="203.0.113.77").json()
    assert newcomer["action"] == "flag" and newcomer["reason_codes"] == ["CAMPAIGN-PREFIX"]
    assert newcomer["campaign_id"] == "C1"
    assert _decide(client, "brand-new", ip="2001:db8::1").json()["action"] == "allow"
    detail = client.get("/v1/accounts/atk-1", headers=AUTH).json()
    assert detail["detail"]["verdict"] == "attack" and detail["detail"]["policy_action"] == "block"


def test_openapi_docs_behind_the_token(shared):
    client, *_ = shared
    assert client.get("/openapi.json").status_code == 401
    spec = client.get("/openapi.json", headers=AUTH).json()
    assert {"/v1/decision", "/v1/accounts/{account_id}", "/healthz"} <= set(spec["paths"])
    assert client.get("/docs", headers=AUTH).status_code == 200


def test_review_clears_and_forces_and_is_audited(served):
    client, app, db, *_ = served
    r = client.post(
        "/v1/accounts/atk-1/review",
        json={"kind": "clear", "note": "false positive", "analyst": "alice"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert r.json()["decision"]["action"] == "allow"
    assert _decide(client, "atk-1").json()["reason_codes"][-1] == "ANALYST-CLEARED"
    r = client.post(
        "/v1/accounts/clean-2/review",
        json={"kind": "set", "action": "degrade", "note": "watch", "analyst": "bob"},
        headers=AUTH,
    )
    assert r.status_code == 201
    d = _decide(client, "clean-2").json()
    assert d["action"] == "degrade" and d["degrade"]["withhold_reasoning"] is True
    bad = client.post(
        "/v1/accounts/x/review", json={"kind": "set", "note": "n", "analyst": "a"}, headers=AUTH
    )
    assert bad.status_code == 422
    with records.short_connection(db, read_only=True) as con:
        audit = records.query_audit(con, kind="override").to_pylist()
    tid = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert {(a["account_id"], a["actor"], a["why"]) for a in audit} == {
        ("atk-1", f"alice (token {tid})", "false positive"),
        ("clean-2", f"bob (token {tid})", "watch"),
    }


@pytest.mark.parametrize(
    "payload, field",
    [
        (b'{"account_id": "a", "ip": ', "body"),
        (b"[1, 2, 3]", "body"),
        (b'{"account_id": 5, "ip": "192.0.2.1"}', "account_id"),
        (b'{"account_id": "a", "ip": "999.1.1.1"}', "ip"),
        (b'{"account_id": "a", "ip": "192.0.2.1; DROP TABLE x"}', "ip"),
        (b'{"ip": "192.0.2.1"}', "account_id"),
        (b'{"account_id": "", "ip": "192.0.2.1"}', "account_id"),
        (b'{"account_id": "' + b"a" * 300 + b'", "ip": "192.0.2.1"}', "account_id"),
        (b"\xff\xfe\x00garbage", "body"),
    ],
)
def test_malformed_input_is_4xx_with_a_clear_message(shared, payload, field):
    client, *_ = shared
    r = client.post("/v1/decision", content=payload, headers={**AUTH, "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    problems = r.json().get("problems", [])
    assert any(p["field"].startswith(field) for p in problems) or field == "body"


def test_oversized_body_is_refused(shared):
    client, *_ = shared
    big = b'{"account_id": "' + b"a" * 200_000 + b'", "ip": "192.0.2.1"}'
    r = client.post("/v1/decision", content=big, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413

    def chunks():  # no Content-Length: chunked transfer
        for _ in range(100):
            yield b"x" * 1024

    r = client.post("/v1/decision", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


HOSTILE = [
    "a'b\"c",
    "../../etc/passwd",
    "x/y/z",
    "'; DROP TABLE respond_decisions; --",
    "%2e%2e%2f",
    "ünïcødé‮evil",
    "a\\b",
    "a?b=c#d",
    "   ",
]


@pytest.mark.parametrize("account", HOSTILE)
def test_hostile_account_ids_are_data(shared, account):
    client, app, db, *_ = shared
    r = _decide(client, account)
    assert r.status_code == 200 and r.json()["action"] == "allow"
    r = client.post(
        "/v1/accounts/" + _quote(account) + "/review",
        json={"kind": "set", "action": "block", "note": "hostile id test", "analyst": "eve"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    assert r.json()["account_id"] == account
    assert _decide(client, account).json()["action"] == "block"
    got = client.get("/v1/accounts/" + _quote(account), headers=AUTH)
    assert got.status_code == 200 and got.json()["account_id"] == account
    with records.short_connection(db, read_only=True) as con:  # tables intact
        assert records.fetch_one(con, "SELECT count(*) FROM respond_decisions")[0] > 0


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def test_hot_reload_under_load_drops_nothing(served):
    client, app, db, results, accounts = served
    errors, answers = [], []
    stop = threading.Event()

    def hammer():
        with httpx.Client(base_url=str(client.base_url), timeout=5) as c:
            while not stop.is_set():
                try:
                    r = _decide(c, "sus-1")
                    if r.status_code != 200:
                        errors.append(r.status_code)
                    else:
                        answers.append(r.json()["action"])
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        first = app.holder.current.run_id
        rows = [dict(r) for r in BASE_ROWS]
        rows[3] = {"account_id": "sus-1", "score": 0.99, "verdict": "attack", "campaign_id": "C1"}
        write_results(results, rows)
        out = decide(read_results(results), load_policy(), db, accounts_path=accounts, now=NOW)
        assert wait_until(lambda: app.holder.current.run_id == out.run_id)
        assert out.run_id != first
        n_before = len(answers)
        assert wait_until(lambda: len(answers) > n_before + 20)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert answers[0] == "throttle" and answers[-1] == "block"
    assert set(answers) == {"throttle", "block"}


def test_tokens_from_env_and_file(tmp_path, monkeypatch):
    f = tmp_path / "tokens"
    f.write_text("# ops\nfile-token-0123456789abc\n\n", encoding="utf-8")
    monkeypatch.setenv("DISTILLWATCH_API_TOKENS", "env-token-0123456789abc, ,")
    assert load_tokens(f) == ["env-token-0123456789abc", "file-token-0123456789abc"]
    monkeypatch.setenv("DISTILLWATCH_API_TOKENS", "short")
    with pytest.raises(ValueError, match="shorter"):
        load_tokens()
    with pytest.raises(ValueError, match="no API tokens"):
        create_app(tmp_path / "db", load_policy(), [])


def test_signup_endpoint(served, tmp_path):
    client, app, *_ = served
    r = client.post("/v1/signup", json={"email": "a@x.example", "signup_ip": "198.51.100.1"})
    assert r.status_code == 401
    r = client.post("/v1/signup", json={"email": "a@x.example", "signup_ip": "not-an-ip"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "signup_ip"
    # the payment fingerprint of blocked atk-1/atk-2 (from the decision run)
    r = client.post(
        "/v1/signup",
        json={
            "account_id": "n1",
            "email": "n1@x.example",
            "signup_ip": "2001:db8:7::1",
            "payment_fingerprint": "pay-x",
        },
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "deny" and r.json()["reason_codes"] == ["SIGNUP-FLAGGED-PAYMENT"]
    # the campaign's e-mail domain is an indicator
    r = client.post("/v1/signup", json={"email": "someone@mailbox.example"}, headers=AUTH).json()
    assert r["action"] == "deny" and r["reason_codes"] == ["SIGNUP-CAMPAIGN-INDICATOR"]
    # the service remembers its own sign-ups: the sixth from one address is shared
    for i in range(5):
        r = client.post(
            "/v1/signup", json={"email": f"u{i}@uni{i}.example", "signup_ip": "2001:db8:5::99"}, headers=AUTH
        ).json()
    assert r["facts"]["shared_address"] == 4 and r["action"] == "allow"
    r = client.post(
        "/v1/signup", json={"email": "u9@uni9.example", "signup_ip": "2001:db8:5::99"}, headers=AUTH
    )
    assert r.json()["action"] == "verify" and "SIGNUP-SHARED-ADDRESS" in r.json()["reason_codes"]
    assert client.post("/v1/signup", json={}, headers=AUTH).json()["action"] == "allow"


def test_review_answers_503_while_the_store_is_busy(served, monkeypatch):
    client, *_ = served

    def busy(*args, **kwargs):
        raise records.StoreBusy("store.duckdb: the store is busy")

    monkeypatch.setattr(records, "add_override", busy)
    r = client.post(
        "/v1/accounts/atk-1/review", json={"kind": "clear", "note": "n", "analyst": "a"}, headers=AUTH
    )
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert _decide(client, "atk-1").json()["action"] == "block"  # nothing changed
