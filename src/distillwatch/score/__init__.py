"""distillwatch.score"""
