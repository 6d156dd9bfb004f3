"""distillwatch.campaigns"""
