"""Ingest: read request logs as they are, validate and normalise them, lose nothing.

>>> from distillwatch.ingest import ingest, IngestOptions
>>> result = ingest("logs/exchanges.jsonl.gz", accounts="logs/accounts.csv", work_dir="out")  # doctest: +SKIP
>>> result.counts["exchanges"]  # {"read", "accepted", "quarantined", "by_reason", ...}  # doctest: +SKIP

See docs/schema.md for the formats, adapters and quarantine reasons.
"""

from distillwatch.ingest.errors import REASONS, UnreadableInputError
from distillwatch.ingest.options import IngestOptions
from distillwatch.ingest.pipeline import QUARANTINE_SCHEMA, IngestResult, ingest
from distillwatch.ingest.validate import canonical_ip

__all__ = [
    "QUARANTINE_SCHEMA",
    "REASONS",
    "IngestOptions",
    "IngestResult",
    "UnreadableInputError",
    "canonical_ip",
    "ingest",
]
