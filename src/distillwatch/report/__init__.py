"""distillwatch.report"""
