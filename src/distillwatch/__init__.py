"""distillwatch: find distillation campaigns in model API traffic."""

__version__ = "0.1.0"
