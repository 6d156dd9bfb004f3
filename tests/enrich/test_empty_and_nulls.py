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
