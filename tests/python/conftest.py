"""Client unit tests: import gust from python/ and the fake engine beside this file."""
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))
sys.path.insert(0, os.path.join(REPO, "runtimes", "python"))  # fake_engine runs the real map worker
sys.path.insert(0, os.path.dirname(__file__))
