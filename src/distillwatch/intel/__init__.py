"""distillwatch.intel"""
