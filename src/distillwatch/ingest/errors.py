"""Errors and the stable quarantine reason codes of the ingest stage."""

from __future__ import annotations

from pathlib import Path


class UnreadableInputError(Exception):
    """A whole input file cannot be read (missing, empty, not the format its name says).

    Raised instead of quarantining because no record of it can be located.  The
    message always names the file; the CLI prints it on one line and exits 2.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# Quarantine reason codes.  They are a public, stable vocabulary (docs/schema.md):
# add new ones freely, never rename one.
MALFORMED_JSON = "malformed_json"
INVALID_UTF8 = "invalid_utf8"
BAD_CSV_ROW = "bad_csv_row"
MISSING_REQUIRED = "missing_required"
BAD_TIMESTAMP = "bad_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
BAD_IP = "bad_ip"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
BAD_VALUE = "bad_value"
DUPLICATE_REQUEST_ID = "duplicate_request_id"
DUPLICATE_ACCOUNT_ID = "duplicate_account_id"
UNMAPPABLE_RECORD = "unmappable_record"

REASONS: dict[str, str] = {
    MALFORMED_JSON: "the line is not valid JSON, or not a JSON object",
    INVALID_UTF8: "the bytes are not valid UTF-8",
    BAD_CSV_ROW: "the CSV record has a different number of fields than the header, or cannot be parsed",
    MISSING_REQUIRED: "a required field is absent, null or blank",
    BAD_TIMESTAMP: "a timestamp is not ISO 8601 (or a timestamp column)",
    TIMESTAMP_OUT_OF_RANGE: "a timestamp is outside IngestOptions.min_ts .. max_ts (epoch 0, far future)",
    BAD_IP: "an address is not IPv4 or IPv6",
    WRONG_TYPE: "a value has the wrong type (e.g. 12.5 or a list where an integer is expected)",
    OUT_OF_RANGE: "an integer is negative or does not fit in 64 bits",
    BAD_VALUE: "a value breaks its field's format (e.g. country not ISO 3166 alpha-2)",
    DUPLICATE_REQUEST_ID: "request_id seen before in this ingest; the first is kept",
    DUPLICATE_ACCOUNT_ID: "account_id seen before in the accounts table; the first is kept",
    UNMAPPABLE_RECORD: "an adapter (chat, otel) found no usable structure in the record",
}
