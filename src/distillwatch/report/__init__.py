"""The analyst's report: each campaign measured as in a letter to a regulator, safe against hostile text.

``render(results_dir, redact=False)`` writes ``report.html`` (self-contained,
no script, charts as inline SVG images) and ``report.md`` from a results
directory written by ``scan``; ``distillwatch report DIR`` calls it again.
"""

from distillwatch.report.render import render

__all__ = ["render"]
