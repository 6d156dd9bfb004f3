"""Every enrichment function accepts empty and all-null batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distillwatch.enrich import capability, cot, email, network, templates


def test_empty_batches() -> None:
    empty = pa.array([], pa.string())
    assert len(capability.classify(empty)) == 0
    assert len(capability.classify(empty, empty)) == 0
    assert len(cot.elicits_cot(empty)) == 0
    assert len(templates.normalize(empty)) == 0
    assert len(templates.template_hash(empty)) == 0
    assert templates.minhash(empty).shape == (0, 64)
    assert templates.lsh_bands(np.zeros((0, 64), np.uint64), 16, 4).shape == (0, 16)
    assert network.NetworkLists.load().classify(empty).num_rows == 0
    assert len(email.EmailLists.load().is_disposable(empty)) == 0
    assert len(email.local_part_pattern(empty)) == 0


def test_all_null_batches() -> None:
    nulls = pa.nulls(3, pa.string())
    untyped = pa.nulls(3)
    for arr in (nulls, untyped):
        assert capability.classify(arr).to_pylist() == [None] * 3
        assert cot.elicits_cot(arr).to_pylist() == [None] * 3
        assert templates.template_hash(arr).to_pylist() == [None] * 3
        assert (templates.minhash(arr) == templates.EMPTY_SIGNATURE).all()
        assert network.NetworkLists.load().classify(arr).column("prefix").to_pylist() == [None] * 3
        assert email.EmailLists.load().is_disposable(arr).to_pylist() == [None] * 3


def test_chunked_batches_equal_whole_batches(monkeypatch) -> None:
    """Small chunk limits force the threaded, chunked path; results must not change."""
    from distillwatch.enrich import _text

    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(200)]  # distinct after normalising
    texts = pa.array([f"Write a Python function {words[i % 200]} that sorts a list. Think step by step." if i % 3 else
                      f"Tom has {i} apples and eats a {words[i % 200]}; how many are left?" if i % 2 else None
                      for i in range(300)])
    whole = (capability.classify(texts).to_pylist(), cot.elicits_cot(texts).to_pylist(),
             templates.normalize(texts).to_pylist(), templates.minhash(texts))
    monkeypatch.setattr(_text, "PARALLEL_MIN_ROWS", 10)
    monkeypatch.setattr(_text, "MAX_CHUNK_ROWS", 37)
    chunked = (capability.classify(texts).to_pylist(), cot.elicits_cot(texts).to_pylist(),
               templates.normalize(texts).to_pylist(), templates.minhash(texts))
    assert whole[:3] == chunked[:3]
    assert np.array_equal(whole[3], chunked[3])
