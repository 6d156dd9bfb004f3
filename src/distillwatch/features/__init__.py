"""Per-account features: one row per account, computed as Ibis expressions.

``build_features`` is the entry point; the modules below each own one family
(behaviour, infrastructure, content, registration) so a new feature lands next
to its relatives.
"""

from distillwatch.features.build import FeatureOptions, Features, build_features

__all__ = ["FeatureOptions", "Features", "build_features"]
