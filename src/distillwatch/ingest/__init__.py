"""distillwatch.ingest"""
