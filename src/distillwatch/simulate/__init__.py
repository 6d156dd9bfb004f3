"""distillwatch.simulate"""
