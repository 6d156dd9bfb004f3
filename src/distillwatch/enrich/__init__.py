"""distillwatch.enrich"""
