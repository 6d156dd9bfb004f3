"""distillwatch.respond"""
