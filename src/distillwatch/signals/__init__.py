"""distillwatch.signals"""
