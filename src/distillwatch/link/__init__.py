"""distillwatch.link"""
