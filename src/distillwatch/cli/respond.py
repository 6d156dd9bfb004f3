"""`distillwatch decide | audit | review | signup-risk | serve` (owned by the respond stage)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(highlight=False)

DB_HELP = "The store (DuckDB file); default $DISTILLWATCH_DB or ./distillwatch.duckdb."


def _db(db: Path | None) -> Path:
    from distillwatch import store

    return db if db is not None else store.default_db_path()


def _fail(message: str) -> None:
    from distillwatch.respond.text import safe

    console.print(f"[red]error:[/red] {safe(message, 2000)}")
    raise typer.Exit(2)


def _actor(given: str | None) -> str:
    return given or os.environ.get("USER") or "distillwatch"


def decide_command(
    results: Annotated[
        Path, typer.Option("--results", help="The results directory written by `distillwatch scan`.")
    ],
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy YAML (default: the shipped policy).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help=DB_HELP)] = None,
    accounts: Annotated[
        Path | None,
        typer.Option(
            "--accounts",
            help="Accounts table (tier, org_id, created_at, payment_fingerprint) for policy conditions.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and record, but do not serve the decisions.")
    ] = False,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who runs this (audit trail); default $USER.")
    ] = None,
    show: Annotated[int, typer.Option("--show", min=0, help="How many changed accounts to list.")] = 20,
) -> None:
    """Turn verdicts into actions: write DIR/actions.parquet and print what is new, changed or expired.

    Example:

      distillwatch decide --results demo/results --policy examples/policy.yaml --db demo/distillwatch.duckdb
    """
    from distillwatch.respond.decide import decide
    from distillwatch.respond.policy import PolicyError, load_policy
    from distillwatch.respond.records import StoreBusy
    from distillwatch.respond.results import ResultsError, read_results
    from distillwatch.respond.text import safe

    try:
        pol = load_policy(policy)
        res = read_results(results)
        acc = accounts
        if acc is None and isinstance(res.run.get("inputs"), dict) and res.run["inputs"].get("accounts"):
            candidate = Path(str(res.run["inputs"]["accounts"]))
            acc = candidate if candidate.exists() else None
        if acc is None:
            console.print(
                "[yellow]note:[/yellow] no accounts table (--accounts, or the one scan read): conditions on tier, "
                "org and account age cannot hold, and sign-up scoring will not know flagged payments"
            )
        out = decide(res, pol, _db(db), accounts_path=acc, dry_run=dry_run, actor=_actor(actor))
    except (PolicyError, ResultsError, StoreBusy) as exc:
        _fail(str(exc))
        return
    mode = "[yellow]DRY RUN (not served)[/yellow] " if out.dry_run else ""
    c = out.counts
    console.print(f"{mode}decision run {out.run_id}: {c['accounts']} accounts, policy {safe(pol.name)}")
    actions = ", ".join(f"{k.removeprefix('action_')} {v}" for k, v in c.items() if k.startswith("action_"))
    console.print(f"actions: {actions or 'none'}")
    console.print(
        f"since the last decision: {c['new']} new, {c['changed']} changed, {c['expired']} expired;"
        f" {c['clearings_superseded']} clearing(s) ended by new evidence"
    )
    if out.changes.num_rows and show:
        table = Table("change", "account", "was", "now", "reasons")
        for row in out.changes.slice(0, show).to_pylist():
            table.add_row(
                row["change"],
                safe(row["account_id"], 60),
                row["previous_action"] or "-",
                row["action"] or "allow",
                safe(", ".join(row["reason_codes"] or []), 80),
            )
        console.print(table)
        if out.changes.num_rows > show:
            console.print(
                f"... and {out.changes.num_rows - show} more (see `distillwatch audit --kind decision`)"
            )
    for row in out.superseded.to_pylist()[:show]:
        console.print(
            f"clearing of {safe(row['account_id'], 60)} ended: new evidence: {safe(row['why_new'], 200)}"
        )
    console.print(f"wrote {safe(out.actions_path, 300)}")


def audit_command(
    db: Annotated[Path | None, typer.Option("--db", help=DB_HELP)] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only entries by this actor (analyst or process).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO date/time, or a duration like 24h, 7d.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="decision | decide-run | override | clear-superseded | signup"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100,
) -> None:
    """List the audit trail: every action and override, who, when and why (newest first).

    Example:

      distillwatch audit --db demo/distillwatch.duckdb --since 24h --kind review
    """
    from distillwatch.respond.records import StoreBusy, query_audit, short_connection
    from distillwatch.respond.text import safe

    try:
        since_ts = _parse_since(since)
        with short_connection(_db(db), read_only=True) as con:
            rows = query_audit(con, account=account, actor=actor, since=since_ts, kind=kind, limit=limit)
    except (ValueError, StoreBusy, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    table = Table("when (UTC)", "kind")
    table.add_column("actor", max_width=24)
    table.add_column("account", max_width=28)
    table.add_column("action", no_wrap=True)
    table.add_column("reasons / why", ratio=1)
    for r in rows.to_pylist():
        # "block -> allow (expired)": what it was, what it is, and the kind of change, in one cell.
        action = r["action"] or ""
        if r["previous_action"]:
            action = f"{r['previous_action']} -> {action or 'allow'}"
        if r["change"]:
            action = f"{action} ({r['change']})" if action else r["change"]
        why = "; ".join(p for p in (", ".join(r["reason_codes"] or []), r["why"] or "") if p)
        table.add_row(
            r["at_time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            r["kind"],
            safe(r["actor"], 30),
            safe(r["account_id"], 40),
            action,
            safe(why, 160),
        )
    console.print(table)
    console.print(f"{rows.num_rows} entr{'y' if rows.num_rows == 1 else 'ies'}")


def _parse_since(since: str | None) -> datetime | None:
    if since is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if since[-1:] in units and since[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[since[-1]]: int(since[:-1])})
    try:
        ts = datetime.fromisoformat(since)
    except ValueError as exc:
        raise ValueError(
            f"--since: {since!r} is neither an ISO date/time nor a duration like 24h or 7d"
        ) from exc
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def review_command(
    account: Annotated[str, typer.Argument(help="The account id.")],
    note: Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")],
    analyst: Annotated[str, typer.Option("--analyst", help="Who decides (kept in the audit trail).")],
    clear: Annotated[
        bool, typer.Option("--clear", help="Clear the account: allow it until there is new evidence.")
    ] = False,
    set_action: Annotated[
        str | None, typer.Option("--set", help="Force an action (allow|flag|throttle|degrade|verify|block).")
    ] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="End the account's overrides; the policy decides again.")
    ] = False,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="For --set: end after e.g. 24h or 7d.")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help=DB_HELP)] = None,
) -> None:
    """An analyst's override: clear (the unblock path), force an action, or revoke.

    Example:

      distillwatch review acct-123 --clear --note "verified university lab" --analyst alice --db demo/distillwatch.duckdb
    """
    from distillwatch.respond.records import StoreBusy, add_override
    from distillwatch.respond.text import safe

    chosen = [k for k, on in (("clear", clear), ("set", set_action is not None), ("revoke", revoke)) if on]
    if len(chosen) != 1:
        _fail("give exactly one of --clear, --set ACTION, --revoke")
    expires = None
    if expires_in is not None:
        try:
            expires = datetime.now(UTC) + (datetime.now(UTC) - _parse_since(expires_in))  # type: ignore[operator]
        except ValueError as exc:
            _fail(str(exc).replace("--since", "--expires-in"))
    try:
        out = add_override(_db(db), account, chosen[0], analyst, note, action=set_action, expires_at=expires)
    except (ValueError, StoreBusy) as exc:
        _fail(str(exc))
        return
    console.print(
        f"{out['kind']} recorded for {safe(account, 80)} by {safe(analyst, 40)} "
        f"(was {out['previous_action'] or 'no action'}; now {out['action'] or 'policy decides'}); "
        f"id {out['override_id']}"
    )


def serve_command(
    db: Annotated[Path | None, typer.Option("--db", help=DB_HELP)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8087,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy YAML (service settings, defaults).")
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option("--tokens-file", help="Bearer tokens, one per line (also $DISTILLWATCH_API_TOKENS)."),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, help="Seconds between store checks.")
    ] = 0.5,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    network_list: Annotated[
        list[Path] | None, typer.Option("--network-list", help="Extra CIDR list for /v1/signup; repeatable.")
    ] = None,
    email_list: Annotated[
        list[Path] | None,
        typer.Option("--email-list", help="Extra disposable/patterned domains; repeatable."),
    ] = None,
    mmdb: Annotated[Path | None, typer.Option("--mmdb", help="A MaxMind-format database (optional).")] = None,
) -> None:
    """Serve decisions to gateways over HTTP (FastAPI + uvicorn); OpenAPI docs at /docs.

    Example:

      DISTILLWATCH_API_TOKENS=change-me distillwatch serve --db demo/distillwatch.duckdb --port 8087
    """
    from distillwatch.respond.policy import PolicyError, load_policy
    from distillwatch.respond.service import load_tokens, serve

    try:
        pol = load_policy(policy)
        tokens = load_tokens(tokens_file)
        if not tokens:
            raise ValueError(
                "no API tokens: set DISTILLWATCH_API_TOKENS (comma-separated) or pass --tokens-file"
            )
    except (PolicyError, ValueError) as exc:
        _fail(str(exc))
        return
    serve(
        _db(db),
        pol,
        host,
        port,
        tokens,
        access_log=access_log,
        poll_interval_s=poll_interval,
        network_lists=network_list,
        email_lists=email_list,
        mmdb=mmdb,
    )


def signup_risk_command(
    accounts: Annotated[
        Path,
        typer.Argument(help="Registrations: account_id, created_at, email, signup_ip, payment_fingerprint."),
    ],
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy YAML (its `signup` section).")
    ] = None,
    db: Annotated[Path | None, typer.Option("--db", help=DB_HELP)] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write one row per registration (Parquet).")
    ] = Path("signup_risk.parquet"),
    network_list: Annotated[
        list[Path] | None,
        typer.Option("--network-list", help="Extra CIDR list (datacenter/vpn/tor); repeatable."),
    ] = None,
    mmdb: Annotated[Path | None, typer.Option("--mmdb", help="A MaxMind-format database (optional).")] = None,
    email_list: Annotated[
        list[Path] | None,
        typer.Option("--email-list", help="Extra disposable/patterned domain list; repeatable."),
    ] = None,
    record: Annotated[
        bool, typer.Option("--record/--no-record", help="Remember them for later sign-ups.")
    ] = True,
    actor: Annotated[str | None, typer.Option("--actor", help="Who runs this (audit trail).")] = None,
    show: Annotated[int, typer.Option("--show", min=0)] = 20,
) -> None:
    """Score registrations before the accounts send anything: allow, verify or deny, with reasons.

    Example:

      distillwatch signup-risk new_accounts.parquet --db demo/distillwatch.duckdb --out signup_risk.parquet
    """
    from datetime import timedelta as _td

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from distillwatch.enrich.email import EmailLists
    from distillwatch.enrich.network import ListFormatError, NetworkLists
    from distillwatch.respond import signup
    from distillwatch.respond.policy import PolicyError, load_policy
    from distillwatch.respond.records import StoreBusy, short_connection
    from distillwatch.respond.results import ResultsError, read_account_attributes
    from distillwatch.respond.text import safe

    try:
        pol = load_policy(policy)
        table = read_account_attributes(accounts)
        net = NetworkLists.load(extra_paths=network_list or None, mmdb=mmdb)
        mail = EmailLists.load(extra_paths=email_list or None)
        now = datetime.now(UTC)
        earliest = pc.min(table["created_at"]).as_py() or now
        store_path = _db(db)
        context = signup.SignupContext.empty()
        if store_path.exists():
            with short_connection(store_path) as con:
                context = signup.load_context(con, earliest - _td(hours=pol.signup.window_hours))
        scored = signup.score_signups(table, pol, context, net, mail, now)
        pq.write_table(scored, out)
        if record:
            signup.record_signups(store_path, scored, _actor(actor), now)
    except (PolicyError, ResultsError, StoreBusy, ListFormatError, OSError) as exc:
        _fail(str(exc))
        return
    counts = {a: int(pc.sum(pc.equal(scored["action"], a)).as_py() or 0) for a in ("allow", "verify", "deny")}
    console.print(f"{scored.num_rows} registrations: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    flagged = scored.filter(pc.not_equal(scored["action"], "allow"))
    if flagged.num_rows and show:
        tbl = Table("account", "action", "reasons", "e-mail domain", "prefix")
        for r in flagged.slice(0, show).to_pylist():
            tbl.add_row(
                safe(r["account_id"], 40),
                r["action"],
                safe(", ".join(r["reason_codes"]), 80),
                safe(r["email_domain"], 40),
                safe(r["ip_prefix"], 45),
            )
        console.print(tbl)
    console.print(f"wrote {safe(out, 300)}")


def register(app: typer.Typer) -> None:
    app.command("decide")(decide_command)
    app.command("audit")(audit_command)
    app.command("review")(review_command)
    app.command("serve")(serve_command)
    app.command("signup-risk")(signup_risk_command)
