"""gust's Python runtime: runs Lambda-style handlers inside a gust sandbox.

Modules: protocol (frame codec), bootstrap (the entry points: run(),
prepare(), preset_zygote()) and what it is made of: codec (JSON, error
documents), logs (logging, output), loader (environment, handler import),
invoke (the invoke loop), warmup (work done before a function is assigned);
context (LambdaContext), zygote (preload before forking), map_worker (map
jobs), stage and wsgi (web apps).
"""
