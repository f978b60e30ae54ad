"""Progress bars in Jupyter (issue 14): the detection runs in process against a
stand-in for IPython's module (Debian has no ipykernel here), shaped as the
real one: IPython.get_ipython() returning the kernel's ZMQInteractiveShell."""
import concurrent.futures as cf
import subprocess
import sys
import types

import pytest
from tqdm import tqdm

from gust import progress


class ZMQInteractiveShell:  # ipykernel's shell class, by name
    kernel = object()


class TerminalInteractiveShell:  # plain `ipython` in a terminal
    pass


@pytest.fixture
def ipython(monkeypatch):
    """Installs a fake IPython module; returns a setter for its shell."""
    module = types.ModuleType("IPython")
    shell = {"value": None}
    module.get_ipython = lambda: shell["value"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", module)

    def use(cls):
        shell["value"] = cls() if cls is not None else None
    return use


def test_not_jupyter_without_ipython_and_never_imports_it():
    # A fresh interpreter: deciding must not import IPython (slow, and not ours to load).
    code = ("import sys; sys.path.insert(0, %r); from gust import progress; "
            "print(progress.in_jupyter(), progress.interactive(), 'IPython' in sys.modules)"
            % (progress.__file__.rsplit("/gust/", 1)[0],))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL)
    assert out.stdout.split() == ["False", "False", "False"]


def test_jupyter_kernel_is_interactive(ipython):
    ipython(ZMQInteractiveShell)
    assert progress.in_jupyter()
    assert progress.interactive()  # pytest's captured streams are not terminals
    # No ipywidgets on this machine: tqdm's text bar, which the notebook draws too.
    assert progress.bar_class() is tqdm


def test_ipython_in_a_terminal_or_no_shell_is_not_jupyter(ipython):
    ipython(TerminalInteractiveShell)
    assert not progress.in_jupyter()
    ipython(None)  # IPython imported, but not running a shell
    assert not progress.in_jupyter()


def test_bar_drawn_in_jupyter_by_default(ipython, capsys):
    ipython(ZMQInteractiveShell)
    f: cf.Future = cf.Future()
    with progress.Progress([f]) as p:
        assert p.active
        f.set_result(1)
    assert "task" in capsys.readouterr().err


def test_no_bar_by_default_outside_jupyter(ipython, capsys):
    ipython(TerminalInteractiveShell)
    f: cf.Future = cf.Future()
    with progress.Progress([f]) as p:
        assert not p.active
        f.set_result(1)
    assert capsys.readouterr().err == ""
