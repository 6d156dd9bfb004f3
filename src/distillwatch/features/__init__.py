"""distillwatch.features"""
