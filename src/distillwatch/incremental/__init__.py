"""Incremental scans: partitions processed as they arrive, account and campaign state kept in the store.

``run_increment`` processes one partition (a file, or a ``[since, until)`` slice);
``watch`` runs an increment for every new file dropped into a directory.
docs/incremental.md explains what is stored, what is recomputed and why it is bounded.
"""

from distillwatch.incremental.run import IncrementError, IncrementResult, run_increment

__all__ = ["IncrementError", "IncrementResult", "run_increment"]
