"""`distillwatch serve`: the decision service a gateway asks before each call to the model.

Hot path: ``POST /v1/decision`` is a dictionary lookup in the in-memory snapshot and
returns pre-serialised JSON.  A background thread polls the store's version marker and
swaps in a new snapshot when `decide` or a review changed the store, so requests keep
being answered during a reload.  Every route but ``/healthz`` needs a bearer token.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import ipaddress
import json
import os
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from distillwatch import __version__
from distillwatch.respond import records
from distillwatch.respond.policy import ACTIONS, Policy
from distillwatch.respond.signup import HISTORY_COLUMNS, SignupContext, score_signups
from distillwatch.respond.snapshot import SnapshotHolder

# One registration as the sign-up scorer reads it (the accounts table's fields).
SIGNUP_INPUT = pa.schema(
    [
        ("account_id", pa.string()),
        ("email", pa.string()),
        ("signup_ip", pa.string()),
        ("payment_fingerprint", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)

TOKENS_ENV = "DISTILLWATCH_API_TOKENS"
TOKENS_FILE_ENV = "DISTILLWATCH_API_TOKENS_FILE"
MAX_BODY_BYTES = 64 * 1024
MAX_ID = 256
# Module level: FastAPI resolves the (string) annotations below against module globals.
_bearer = HTTPBearer(auto_error=False, description="A token from $DISTILLWATCH_API_TOKENS or the token file")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    account_id: str = Field(
        min_length=1, max_length=MAX_ID, description="the account making the call (any characters)"
    )
    ip: str = Field(min_length=2, max_length=64, description="client address, IPv4 or IPv6")
    api_key_id: str | None = Field(None, max_length=MAX_ID)
    model: str | None = Field(None, max_length=MAX_ID)

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise ValueError("not an IPv4 or IPv6 address") from None


class ThrottleOut(BaseModel):
    requests_per_minute: float
    burst: int | None = None


class DegradeOut(BaseModel):
    withhold_reasoning: bool
    max_output_tokens: int | None = None


class DecisionResponse(BaseModel):
    action: Literal["allow", "flag", "throttle", "degrade", "verify", "block"]
    reason_codes: list[str]
    campaign_id: str | None
    ttl_seconds: int = Field(description="how long the gateway may cache this answer")
    throttle: ThrottleOut | None = None
    degrade: DegradeOut | None = None
    decision_run_id: str | None = None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["clear", "set", "revoke"] = Field(
        description="clear: allow until new evidence; set: force `action`"
    )
    action: Literal["allow", "flag", "throttle", "degrade", "verify", "block"] | None = None
    note: str = Field(min_length=1, max_length=2000)
    analyst: str = Field(min_length=1, max_length=200)
    expires_in_seconds: int | None = Field(None, ge=60, le=365 * 86400)


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    account_id: str | None = Field(None, max_length=MAX_ID)
    email: str | None = Field(None, max_length=320, description="address, or only its domain")
    signup_ip: str | None = Field(None, max_length=64)
    payment_fingerprint: str | None = Field(None, max_length=MAX_ID)
    created_at: datetime | None = Field(None, description="registration time; default now")

    @field_validator("signup_ip")
    @classmethod
    def _valid_ip(cls, v: str | None) -> str | None:
        return None if v is None else DecisionRequest._valid_ip(v)

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return v if v is None or v.tzinfo is not None else v.replace(tzinfo=UTC)


class SignupResponse(BaseModel):
    action: Literal["allow", "verify", "deny"]
    reason_codes: list[str]
    facts: dict[str, Any] = Field(description="what the rules were tested on")


class RecentSignups:
    """Sign-ups this service scored, kept in memory (bounded) so the next ones are compared with them.

    The store holds batch-scored sign-ups; the service only reads the store, so its own
    sign-ups live here until restart.
    """

    def __init__(self, max_rows: int = 100_000) -> None:
        self.max_rows = max_rows
        self._tables: list[pa.Table] = []
        self._rows = 0
        self._lock = threading.Lock()

    def add(self, rows: pa.Table) -> None:
        with self._lock:
            self._tables.append(rows)
            self._rows += rows.num_rows
            while self._rows > self.max_rows and len(self._tables) > 1:
                self._rows -= self._tables.pop(0).num_rows

    def table(self, since: datetime) -> pa.Table:
        with self._lock:
            tables = list(self._tables)
        if not tables:
            return HISTORY_COLUMNS.empty_table()
        t = pa.concat_tables(tables)
        return t.filter(
            pc.greater_equal(t["created_at"], pa.scalar(since, t.schema.field("created_at").type))
        )


def load_tokens(tokens_file: str | Path | None = None) -> list[str]:
    """Tokens from $DISTILLWATCH_API_TOKENS (comma-separated) and a file (one per line, # comments)."""
    tokens = [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",")]
    path = tokens_file or os.environ.get(TOKENS_FILE_ENV)
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the token file: {exc.strerror or exc}") from exc
        tokens += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    tokens = [t for t in tokens if t]
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise ValueError(f"{len(short)} API token(s) shorter than 16 characters; use long random tokens")
    return tokens


class DecisionService:
    """The ASGI application `serve` runs: a bounded body reader and a fast path in front of FastAPI.

    Every request body is read first, bounded (413 above the limit, whatever Content-Length
    claims).  ``POST /v1/decision`` with a valid token and a valid body is answered here,
    straight from the snapshot: the gateway asks before every model call, so this path must
    cost well under a millisecond.  Anything else, including every error case, goes to the
    FastAPI application, which owns the error messages, the other routes and the OpenAPI docs.
    """

    def __init__(
        self,
        api: FastAPI,
        holder: SnapshotHolder,
        token_ok: Callable[[bytes], bool],
        limit: int = MAX_BODY_BYTES,
    ) -> None:
        self.api = api
        self.holder = holder
        self.token_ok = token_ok
        self.limit = limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.api(scope, receive, send)
            return
        auth = b""
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _send_413(send, self.limit)
                return
            if name == b"authorization":
                auth = value
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                await _send_413(send, self.limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if (
            scope["path"] == "/v1/decision"
            and auth[:7].lower() == b"bearer "
            and self.token_ok(auth[7:].strip())
        ):
            try:
                req = DecisionRequest.model_validate_json(body)
            except ValidationError:
                pass  # FastAPI answers with the field-by-field message
            else:
                answer = self.holder.current.answer(req.account_id, req.ip)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(answer)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": answer})
                return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.api(scope, replay, send)


async def _send_413(send: Callable, limit: int) -> None:
    body = f'{{"error":"request body larger than {limit} bytes"}}'.encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def create_app(
    db: str | Path,
    policy: Policy,
    tokens: list[str],
    poll_interval_s: float = 0.5,
    max_body_bytes: int = MAX_BODY_BYTES,
    freeze_gc: bool = True,
    network_lists: list[Path] | None = None,
    email_lists: list[Path] | None = None,
    mmdb: Path | None = None,
) -> DecisionService:
    """The service as an ASGI application (``.api`` is the FastAPI app); ``tokens`` must not be empty."""
    if not tokens:
        raise ValueError(
            f"no API tokens: set {TOKENS_ENV} (comma-separated) or {TOKENS_FILE_ENV} / --tokens-file"
        )
    holder = SnapshotHolder(db, policy)
    token_bytes = [t.encode() for t in tokens]
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(holder.refresh, True)
        # Everything imported and loaded so far lives as long as the process: take it out of
        # the cyclic garbage collector's scans, whose full passes otherwise stall requests.
        if freeze_gc:
            gc.collect()
            gc.freeze()
        poller = threading.Thread(
            target=holder.poll_forever,
            args=(poll_interval_s, stop),
            daemon=True,
            name="distillwatch-snapshot-poller",
        )
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join(timeout=5)
            if freeze_gc:
                gc.unfreeze()  # let interpreter shutdown free everything normally

    app = FastAPI(
        title="distillwatch decision service",
        version=__version__,
        description="Decisions for API gateways: allow, flag, throttle, degrade, verify or block an account, "
        "from the latest distillwatch decision run and analysts' overrides.",
        lifespan=lifespan,
        # The docs are served below, behind the token like everything but /healthz.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.holder = holder

    def token_ok(given: bytes) -> bool:
        # Compare against every token, always, so the time taken says nothing about which one nearly matched.
        ok = False
        for t in token_bytes:
            ok |= hmac.compare_digest(given, t)
        return ok

    def require_token(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
        """Refuse without a valid token; else a short, non-secret id of the token (for the audit trail)."""
        given = creds.credentials.encode() if creds is not None and creds.scheme.lower() == "bearer" else b""
        if not token_ok(given):
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return hashlib.sha256(given).hexdigest()[:8]

    auth = [Depends(require_token)]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Say which field is wrong and why, without echoing the (attacker-controlled) input back.
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                "problem": str(e.get("msg", "invalid"))[:200],
            }
            for e in exc.errors()[:20]
        ]
        return JSONResponse(status_code=422, content={"error": "invalid request", "problems": problems})

    @app.get("/healthz", summary="Liveness and which decision run is served (no token needed)")
    async def healthz() -> dict[str, Any]:
        snap = holder.current
        return {
            "status": "ok",
            "decision_run_id": snap.run_id,
            "store_version": snap.version,
            "accounts_under_action": len(snap.answers),
            "loaded_at": snap.loaded_at.isoformat(),
            "reloads": holder.reloads,
            "last_reload_error": holder.last_error,
        }

    @app.post(
        "/v1/decision",
        response_model=DecisionResponse,
        dependencies=auth,
        summary="What to do with a call from this account",
    )
    async def decision(req: DecisionRequest) -> Response:
        return Response(holder.current.answer(req.account_id, req.ip), media_type="application/json")

    recent = RecentSignups()
    lists: dict[str, Any] = {}

    def _lists() -> tuple[Any, Any]:
        # Loaded on first use (a few seconds); shared by every later sign-up.
        with lists_lock:
            if not lists:
                from distillwatch.enrich.email import EmailLists
                from distillwatch.enrich.network import NetworkLists

                lists["net"] = NetworkLists.load(extra_paths=network_lists or None, mmdb=mmdb)
                lists["mail"] = EmailLists.load(extra_paths=email_lists or None)
        return lists["net"], lists["mail"]

    lists_lock = threading.Lock()

    def _score_signup(body: SignupRequest) -> dict[str, Any]:
        snap = holder.current
        now = datetime.now(UTC)
        since = now - timedelta(hours=policy.signup.window_hours)
        ctx = snap.signup_context
        history = pa.concat_tables([ctx.history, recent.table(since)])
        ctx = SignupContext(history, ctx.flagged_payments, ctx.indicator_prefixes, ctx.indicator_domains)
        row = pa.Table.from_pylist([body.model_dump()], schema=SIGNUP_INPUT)
        net, mail = _lists()
        scored = score_signups(row, policy, ctx, net, mail, now)
        recent.add(
            scored.select(HISTORY_COLUMNS.names)
            .cast(HISTORY_COLUMNS)
            .set_column(
                0,
                "created_at",
                pc.fill_null(scored["created_at"], pa.scalar(now, HISTORY_COLUMNS.field(0).type)),
            )
        )
        (out,) = scored.to_pylist()
        facts = {
            k: v
            for k, v in out.items()
            if k
            not in ("action", "reason_codes", "account_id", "signup_ip", "payment_fingerprint", "created_at")
        }
        return {"action": out["action"], "reason_codes": out["reason_codes"], "facts": facts}

    @app.post(
        "/v1/signup",
        response_model=SignupResponse,
        dependencies=auth,
        summary="Risk of a registration, before the account sends anything: allow, verify or deny",
    )
    async def signup_risk(body: SignupRequest) -> dict[str, Any]:
        return await asyncio.to_thread(_score_signup, body)

    @app.get("/v1/accounts/{account_id:path}", dependencies=auth, summary="An account's decision and why")
    async def account(account_id: str) -> dict[str, Any]:
        if not account_id or len(account_id) > MAX_ID:
            raise HTTPException(status_code=422, detail=f"account id must be 1 to {MAX_ID} characters")
        snap = holder.current
        return {
            "account_id": account_id,
            "decision": json.loads(snap.answer(account_id)),
            "detail": snap.detail(account_id),
            "decision_run_id": snap.run_id,
        }

    @app.post(
        "/v1/accounts/{account_id:path}/review",
        status_code=201,
        summary="An analyst's override: clear, force an action, or revoke",
    )
    async def review(
        account_id: str,
        body: ReviewRequest,
        # A default, not Annotated: the string annotation could not see this local dependency.
        token_id: str = Depends(require_token),  # noqa: B008
    ) -> dict[str, Any]:
        if not account_id or len(account_id) > MAX_ID:
            raise HTTPException(status_code=422, detail=f"account id must be 1 to {MAX_ID} characters")
        if body.kind == "set" and body.action not in ACTIONS:
            raise HTTPException(status_code=422, detail="kind `set` needs `action`")
        expires = (
            datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds)
            if body.expires_in_seconds
            else None
        )
        try:
            out = await asyncio.to_thread(
                records.add_override,
                db,
                account_id,
                body.kind,
                # The analyst's name is what the caller says; the token it used is what we know.
                f"{body.analyst} (token {token_id})",
                body.note,
                body.action,
                expires,
            )
        except records.StoreBusy:
            raise HTTPException(
                status_code=503,
                detail="the store is busy (a decision run is writing); retry",
                headers={"Retry-After": "2"},
            ) from None
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        await asyncio.to_thread(holder.refresh, True)
        out["decision"] = json.loads(holder.current.answer(account_id))
        return out

    @app.get("/openapi.json", dependencies=auth, include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", dependencies=auth, include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    return DecisionService(app, holder, token_ok, max_body_bytes)


def serve(
    db: str | Path,
    policy: Policy,
    host: str,
    port: int,
    tokens: list[str],
    access_log: bool = False,
    poll_interval_s: float = 0.5,
    network_lists: list[Path] | None = None,
    email_lists: list[Path] | None = None,
    mmdb: Path | None = None,
) -> None:
    import uvicorn

    app = create_app(
        db,
        policy,
        tokens,
        poll_interval_s=poll_interval_s,
        network_lists=network_lists,
        email_lists=email_lists,
        mmdb=mmdb,
    )
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info", lifespan="on")
