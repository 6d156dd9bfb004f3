"""The per-text bridge gives the same facts whether the prompts' template strings are passed in
(normalised once for the template hash and the MinHash bands) or normalised by each function."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distillwatch.features import enrichment

PROMPTS = pa.array(
    [
        'Write a Python function "fizz" for N=15, see https://example.com/a?b=1',
        'Write a Python function "buzz" for N=21, see https://example.org/x',
        None,
        "",
        "Solve for x: 3x + 4 = 5. Show every step of your reasoning.",
        "Please review src/app/main.py:\n```python\ndef f(x):\n    return x\n```\nmail bob@corp.io",
        "короткий запрос без шаблона",
        "word " * 2000,
    ]
)


def test_facts_and_bands_from_template_strings_equal_those_from_the_prompts() -> None:
    normalized = enrichment.normalized_prompts(PROMPTS)
    assert normalized is not None and len(normalized) == len(PROMPTS)
    assert enrichment.prompt_facts(PROMPTS, normalized).equals(enrichment.prompt_facts(PROMPTS))
    for num_perm, bands in ((64, 8), (16, 4)):
        rows, keys = enrichment.prompt_band_keys(PROMPTS, num_perm, bands, normalized)
        rows_plain, keys_plain = enrichment.prompt_band_keys(PROMPTS, num_perm, bands)
        assert np.array_equal(rows, rows_plain) and np.array_equal(keys, keys_plain)
        assert len(keys) == len(PROMPTS) * bands


def test_band_keys_in_slices_equal_all_at_once(monkeypatch) -> None:
    normalized = enrichment.normalized_prompts(PROMPTS)
    whole = enrichment.prompt_band_keys(PROMPTS, 64, 8, normalized)
    monkeypatch.setattr(enrichment, "BAND_SLICE_ROWS", 3)
    sliced = enrichment.prompt_band_keys(PROMPTS, 64, 8, normalized)
    assert all(np.array_equal(a, b) for a, b in zip(whole, sliced, strict=True))
