"""distillwatch.evaluate"""
