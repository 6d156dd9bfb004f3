"""The data contract (shared/SCHEMA.md) as Arrow schemas.

This module is the single place that names the input fields and their types.
Readers, the simulator and detection all import these, so a field is never
spelled twice.  Add optional fields freely; never rename or drop one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Field:
    name: str
    type: pa.DataType
    required: bool
    meaning: str


EXCHANGE_FIELDS: tuple[Field, ...] = (
    Field("request_id", pa.string(), True, "unique per exchange"),
    Field("account_id", pa.string(), True, "the account that sent it"),
    Field("ts", TS, True, "when the request arrived (UTC)"),
    Field("ip", pa.string(), True, "client address, IPv4 or IPv6, canonical form"),
    Field("prompt", pa.string(), False, "text of the last user turn"),
    Field("system", pa.string(), False, "system prompt text"),
    Field("response", pa.string(), False, "the model's answer text"),
    Field("model", pa.string(), False, "model name"),
    Field("input_tokens", pa.int64(), False, ""),
    Field("output_tokens", pa.int64(), False, ""),
    Field("n_tools", pa.int64(), False, "tool definitions sent with the request"),
    Field("conversation_id", pa.string(), False, "groups the turns of one conversation"),
    Field("user_agent", pa.string(), False, ""),
    Field("api_key_id", pa.string(), False, ""),
    Field("org_id", pa.string(), False, ""),
    Field("asn", pa.int64(), False, "autonomous system of ip, when already known"),
    Field("country", pa.string(), False, "ISO 3166 alpha-2 of ip, when already known"),
)

ACCOUNT_FIELDS: tuple[Field, ...] = (
    Field("account_id", pa.string(), True, ""),
    Field("created_at", TS, False, "registration time (UTC)"),
    Field("email", pa.string(), False, "address or only its domain"),
    Field("signup_ip", pa.string(), False, ""),
    Field("payment_fingerprint", pa.string(), False, "a hash of the payment instrument"),
    Field("country", pa.string(), False, "declared country"),
    Field("org_id", pa.string(), False, ""),
    Field("tier", pa.string(), False, "plan or tier"),
)

LABEL_FIELDS: tuple[Field, ...] = (
    Field("account_id", pa.string(), True, ""),
    Field("is_attack", pa.bool_(), True, "the account belongs to a distillation campaign"),
    Field("campaign_id", pa.string(), False, "null for benign accounts"),
    # Optional, added by distillwatch's simulator: the benign group an account
    # belongs to (university, coding_agents, batch_eval, vpn_relay, reseller, ...).
    Field("group", pa.string(), False, "benign population group, when known"),
)


def schema(fields: tuple[Field, ...]) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.type, nullable=not f.required) for f in fields])


EXCHANGES_SCHEMA = schema(EXCHANGE_FIELDS)
ACCOUNTS_SCHEMA = schema(ACCOUNT_FIELDS)
LABELS_SCHEMA = schema(LABEL_FIELDS)

VERDICTS = ("attack", "suspect", "benign")

# Output of `scan`: DIR/accounts.parquet
ACCOUNT_RESULTS_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("verdict", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string()),
        pa.field("reasons", pa.string(), nullable=False),
    ]
)
