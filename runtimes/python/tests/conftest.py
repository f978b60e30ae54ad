"""Runtime unit tests: import gust_runtime from runtimes/python (this file's parent's parent)."""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))
