"""gust's Python runtime: runs Lambda-style handlers inside a gust sandbox.

Modules: protocol (frame codec), bootstrap (init + invoke loop, run()),
zygote (preload before forking).
"""
