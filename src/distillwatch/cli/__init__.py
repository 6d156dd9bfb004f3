"""The `distillwatch` command line. Each stage registers its commands from its own module."""
