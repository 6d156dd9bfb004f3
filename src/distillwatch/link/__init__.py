"""Linking accounts into campaigns: typed weighted edges from shared keys, communities with igraph."""

from distillwatch.link.graph import EdgeOptions, Edges, PairSource, build_edges
from distillwatch.link.partition import find_communities, merge_dense_neighbours

__all__ = ["EdgeOptions", "Edges", "PairSource", "build_edges", "find_communities", "merge_dense_neighbours"]
