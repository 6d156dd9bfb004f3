"""The link stage's partitions: the operator partition of harvesting accounts (link/stage.py)."""

from __future__ import annotations

import itertools

import numpy as np

from distillwatch.link.graph import Edges
from distillwatch.link.partition import account_graph, find_communities, merge_dense_neighbours
from distillwatch.link.stage import _operator_graph, link_edges, operator_pairs
from distillwatch.signals import load_config

KINDS = ["link_shared_template", "link_coordinated_onset", "link_synchronised"]
FAMILIES = ["content", "registration", "coordination"]
WEIGHTS = [1.0, 0.6, 0.6]


def _edges(typed: list[tuple[int, int, int, float]], min_pair_weight: float = 0.05) -> Edges:
    """Edges as build_edges returns them: typed (src, dst, kind code, strength) sorted by (src, dst, kind)."""
    typed = sorted(typed)
    src = np.array([t[0] for t in typed], dtype=np.int32)
    dst = np.array([t[1] for t in typed], dtype=np.int32)
    kind = np.array([t[2] for t in typed], dtype=np.int8)
    strength = np.array([t[3] for t in typed], dtype=np.float64)
    weighted = strength * np.array(WEIGHTS)[kind]
    pairs: dict[tuple[int, int], float] = {}
    for s, d, w in zip(src.tolist(), dst.tolist(), weighted.tolist(), strict=True):
        pairs[(s, d)] = pairs.get((s, d), 0.0) + w
    kept = sorted((k, w) for k, w in pairs.items() if w >= min_pair_weight)
    return Edges(
        src=src,
        dst=dst,
        kind=kind,
        strength=strength,
        weighted=weighted,
        pair_src=np.array([k[0] for k, _ in kept], dtype=np.int32),
        pair_dst=np.array([k[1] for k, _ in kept], dtype=np.int32),
        pair_weight=np.array([w for _, w in kept], dtype=np.float64),
        kinds=KINDS,
        families=FAMILIES,
    )


def test_operator_pairs_sum_every_family_but_content_among_kept_accounts() -> None:
    edges = _edges(
        [
            (0, 1, 0, 0.9),  # content only: not an operator link
            (0, 2, 1, 0.5),
            (0, 2, 2, 0.5),  # registration + coordination: 0.3 + 0.3
            (1, 2, 0, 0.9),
            (1, 2, 1, 1.0),  # content dropped, registration 0.6 kept
            (2, 3, 1, 1.0),  # account 3 is not kept
            (0, 4, 2, 0.05),  # 0.03 < min weight 0.05
        ]
    )
    keep = np.array([True, True, True, False, True])
    src, dst, weight = operator_pairs(edges, keep, 0.05)
    assert src.tolist() == [0, 1]
    assert dst.tolist() == [2, 2]
    np.testing.assert_allclose(weight, [0.6, 0.6])


def test_operator_pairs_of_no_edges_are_empty() -> None:
    src, dst, weight = operator_pairs(_edges([]), np.ones(3, dtype=bool), 0.05)
    assert len(src) == len(dst) == len(weight) == 0


def test_operator_partition_separates_a_fleet_that_prompt_links_tie_to_customers() -> None:
    # Accounts 0-5 are one operator's (brought online together: registration links among them), 6-11 customers
    # asking the same things; prompt (content) links tie all twelve alike, so the partitions of the combined
    # weights cannot tell the two groups apart, the operator partition can.  Account 12 does not harvest.
    fleet, customers = range(6), range(6, 12)
    typed = [(a, b, 0, 0.8) for a, b in itertools.combinations(range(12), 2)]
    typed += [(a, b, 1, 0.9) for a, b in itertools.combinations(fleet, 2)]
    typed += [(a, b, 2, 0.6) for a, b in itertools.combinations(customers[:2], 2)]  # two colleagues' hours
    typed += [(a, 12, 1, 0.9) for a in fleet]
    edges = _edges(typed)
    cfg = load_config(None)
    content = np.r_[np.full(12, 0.6), 0.0]
    graph = link_edges(edges, 13, cfg, {"content": content, "behaviour": np.zeros(13)})
    op = graph.operator_membership
    assert op is not None
    assert len(set(op[list(fleet)].tolist())) == 1 and op[0] >= 0
    assert op[12] == -1  # not harvesting: outside the partition
    assert op[6] == op[7] != op[0]  # the colleagues are linked, but not to the fleet
    assert (op[8:12] == -1).all()  # customers with no operator link
    # Seeded: the same partition on every run.
    assert np.array_equal(link_edges(edges, 13, cfg, {"content": content, "behaviour": np.zeros(13)}).operator_membership, op)
    # The operator graph is cut from the harvesting accounts' graph: the partition of the operator pairs themselves.
    src, dst, weight = operator_pairs(edges, content > 0, cfg.link.min_edge_weight)
    from_pairs = merge_dense_neighbours(find_communities(13, src, dst, weight), src, dst, weight, cfg.link.merge_ratio)
    assert np.array_equal(op, from_pairs)


def test_operator_graph_is_built_from_the_pairs_when_one_is_not_in_the_harvesting_graph() -> None:
    sub_src, sub_dst = np.array([0, 0, 1]), np.array([1, 2, 2])
    sub_graph = account_graph(4, sub_src, sub_dst)
    cut = _operator_graph(sub_graph, sub_src, sub_dst, np.array([0, 1]), np.array([2, 2]), 4)
    assert cut.get_edgelist() == [(0, 2), (1, 2)]
    built = _operator_graph(sub_graph, sub_src, sub_dst, np.array([0, 2]), np.array([2, 3]), 4)
    assert built.get_edgelist() == [(0, 2), (2, 3)]
