"""distillwatch.integrations"""
