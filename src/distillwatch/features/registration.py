"""Registration features from the accounts table: account age at first use, e-mail domain,
disposable addresses, shared payment fingerprints."""

from __future__ import annotations

import ibis.expr.types as ir
import pyarrow as pa
from ibis import _

from distillwatch.features import enrichment


def account_facts(con, accounts: ir.Table, lists: enrichment.Lists) -> ir.Table:
    """Accounts joined with their e-mail facts (domain, disposable, local-part shape)."""
    emails = (
        accounts.filter(accounts.email.notnull()).select("email").distinct().order_by("email").to_pyarrow()
    )
    ef = enrichment.email_facts(emails.column("email").combine_chunks(), lists)
    ef = ef.append_column("email", emails.column("email"))
    et = con.create_table("dw_email_facts", ef, temp=True, overwrite=True)
    pay = (
        accounts.filter(accounts.payment_fingerprint.notnull())
        .group_by("payment_fingerprint")
        .aggregate(payment_accounts=_.account_id.nunique())
    )
    j = accounts.left_join(et, "email").left_join(pay, "payment_fingerprint")
    return j.select(
        "account_id",
        "created_at",
        "payment_fingerprint",
        "email_domain",
        "email_disposable",
        "email_pattern",
        "tier",
        declared_org=j.org_id,
        payment_accounts=j.payment_accounts.fill_null(0),
        signup_ip=j.signup_ip,
    )


def registration(per_account: ir.Table) -> ir.Table:
    """Registration features of the per-account table once the account records are joined in."""
    age_h = (
        per_account.first_ts.epoch_seconds().cast("float64")
        - per_account.created_at.epoch_seconds().cast("float64")
    ) / 3600.0
    has_record = (
        per_account.created_at.notnull()
        | per_account.email_domain.notnull()
        | per_account.payment_fingerprint.notnull()
    )
    # The customer organisation: the account record's, else the one its requests name most.
    org = per_account.declared_org.fill_null(per_account.request_org)
    return per_account.mutate(age_at_first_use_hours=age_h, has_record=has_record, org=org)


def empty_accounts(con) -> ir.Table:
    """An empty accounts table in the contract's shape (when the user gives none)."""
    from distillwatch.contract import ACCOUNTS_SCHEMA

    return con.create_table(
        "dw_accounts_empty", pa.Table.from_pylist([], schema=ACCOUNTS_SCHEMA), temp=True, overwrite=True
    )
