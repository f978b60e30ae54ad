"""Code bundle: deterministic zip, local module collection, pickling errors."""

import hashlib
import importlib.util
import io
import marshal
import os
import sys
import textwrap
import threading
import zipfile

import cloudpickle
import pytest

from gust import packaging
from gust.errors import SerializationError


@pytest.fixture
def local_modules(tmp_path, monkeypatch):
    """A local module, a local package importing a sibling module, on sys.path."""
    (tmp_path / "pk_helper.py").write_text("import pk_sibling\n\ndef triple(x):\n"
                                           "    return 3 * pk_sibling.one() * x\n")
    (tmp_path / "pk_sibling.py").write_text("def one():\n    return 1\n")
    pkg = tmp_path / "pk_pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .sub import inner\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "inner.py").write_text("def f(x):\n    return x + 1\n")
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in list(sys.modules):
        if name.split(".")[0] in ("pk_helper", "pk_sibling", "pk_pkg", "pk_lazy", "pk_bc",
                                  "pk_broken"):
            del sys.modules[name]


def entries(bundle):
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def test_zip_is_deterministic_and_sorted():
    a = packaging.build_zip({"b.py": b"2", "a.py": b"1", "_gust_job/function.pkl": b"f"})
    b = packaging.build_zip({"_gust_job/function.pkl": b"f", "a.py": b"1", "b.py": b"2"})
    assert a == b
    with zipfile.ZipFile(io.BytesIO(a)) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_same_function_same_digest():
    def f(x):
        return x + 1
    one = packaging.build_bundle(f, (1, 2))
    two = packaging.build_bundle(f, (1, 2))
    assert one.digest == two.digest == hashlib.sha256(one.data).hexdigest()
    assert packaging.build_bundle(f, (1, 3)).digest != one.digest


def test_bundle_holds_function_and_extra_args():
    bundle = packaging.build_bundle(lambda x, y: x * y, (4,))
    files = entries(bundle)
    assert cloudpickle.loads(files["_gust_job/function.pkl"])(2, 3) == 6
    assert cloudpickle.loads(files["_gust_job/extra_args.pkl"]) == (4,)
    assert "_gust_job/extra_args.pkl" not in entries(packaging.build_bundle(len))


def test_local_module_and_its_imports_are_shipped(local_modules):
    import pk_helper
    bundle = packaging.build_bundle(pk_helper.triple)
    files = entries(bundle)
    assert "pk_helper.py" in files and "pk_sibling.py" in files
    assert not any("site-packages" in n or "dist-packages" in n for n in files)


def test_an_edited_local_module_is_shipped_again(local_modules):
    """The same function maps again from a cached bundle, until a shipped file changes."""
    import pk_helper
    first = packaging.build_bundle(pk_helper.triple)
    assert packaging.build_bundle(pk_helper.triple) is first  # nothing changed: reused
    sibling = local_modules / "pk_sibling.py"
    sibling.write_text("def one():\n    return 2  # edited\n")
    os.utime(sibling, ns=(sibling.stat().st_atime_ns, sibling.stat().st_mtime_ns + 10**9))
    second = packaging.build_bundle(pk_helper.triple)
    assert second.digest != first.digest
    assert b"return 2" in entries(second)["pk_sibling.py"]


def test_closure_referencing_a_local_package(local_modules):
    import pk_pkg
    factor = 2
    bundle = packaging.build_bundle(lambda x: pk_pkg.inner.f(x) * factor)
    files = entries(bundle)
    assert {"pk_pkg/__init__.py", "pk_pkg/sub/__init__.py", "pk_pkg/sub/inner.py"} <= set(files)
    # The only bytecode shipped is ours: one .pyc per shipped source, none of the
    # local __pycache__ dirs.
    pycs = {n for n in files if "__pycache__" in n}
    assert pycs == {importlib.util.cache_from_source(n) for n in files if n.endswith(".py")}


def test_shipped_bytecode_is_unchecked_and_loads(local_modules):
    (local_modules / "pk_bc.py").write_text("def triple(x):\n    return 3 * x\n")
    import pk_bc
    files = entries(packaging.build_bundle(lambda x: pk_bc.triple(x)))
    pyc = files[importlib.util.cache_from_source("pk_bc.py")]
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked (PEP 552)
    namespace = {}
    exec(marshal.loads(pyc[16:]), namespace)
    assert namespace["triple"](2) == 6
    # The same source gives the same bytes (the bundle's digest is stable).
    assert packaging.build_bundle(lambda x: pk_bc.triple(x)).digest == \
        packaging.build_bundle(lambda x: pk_bc.triple(x)).digest


def test_module_with_a_syntax_error_ships_without_bytecode(local_modules):
    (local_modules / "pk_broken.py").write_text("def f(:\n")
    files = entries(packaging.build_bundle(lambda x: __import__("pk_broken")))
    assert "pk_broken.py" in files
    assert not any("pk_broken" in n and n.endswith(".pyc") for n in files)


def test_import_inside_function_body_is_found(local_modules):
    (local_modules / "pk_lazy.py").write_text("X = 5\n")

    def f(x):
        import pk_lazy
        return pk_lazy.X + x
    assert "pk_lazy.py" in entries(packaging.build_bundle(f))


def test_stdlib_and_installed_modules_are_not_shipped():
    import json
    import numpy
    bundle = packaging.build_bundle(lambda x: (json.dumps(x), numpy.zeros(1)))
    # the lambda's own (local) module may ship (with gust, which it imports);
    # nothing installed does
    shipped = {n for n in entries(bundle) if not n.startswith("gust/") and "__pycache__" not in n}
    assert shipped - {"test_packaging.py"} == {"_gust_job/function.pkl"}


def test_is_local_file():
    import json
    import numpy
    assert not packaging.is_local_file(json.__file__)
    assert not packaging.is_local_file(numpy.__file__)
    assert packaging.is_local_file(__file__)


def test_unpicklable_function_names_it():
    lock = threading.Lock()

    def uses_lock(x):
        with lock:
            return x
    with pytest.raises(SerializationError, match="function .*uses_lock.*lock"):
        packaging.build_bundle(uses_lock)


def test_unpicklable_extra_args():
    with pytest.raises(SerializationError, match="extra_args"):
        packaging.build_bundle(len, (threading.Lock(),))


def test_source_imports_resolves_relative_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(textwrap.dedent("""
        import a.b
        from . import sib
        from ..up import thing
        from x import y
    """))
    names = packaging._source_imports(str(src), "pkg.sub")
    assert {"a.b", "pkg.sub", "pkg.sub.sib", "pkg.up", "pkg.up.thing", "x", "x.y"} <= names


def test_gust_ships_only_when_a_shipped_module_imports_it(local_modules):
    (local_modules / "pk_driver.py").write_text("import gust\n\ndef f(x):\n    return x\n")
    import pk_driver
    files = entries(packaging.build_bundle(pk_driver.f))
    assert "pk_driver.py" in files and "gust/__init__.py" in files and "gust/wire.py" in files
    import gust
    # a __main__ lambda that merely uses gust does not ship it
    namespace = {"__name__": "__main__", "gust": gust}
    exec("f = lambda x: gust.__version__", namespace)
    assert not any(n.startswith("gust/") for n in entries(packaging.build_bundle(namespace["f"])))
    del sys.modules["pk_driver"]


def test_large_data_files_of_a_package_stay_behind(local_modules):
    (local_modules / "pk_pkg" / "small.json").write_text("{}")
    (local_modules / "pk_pkg" / "huge.bin").write_bytes(b"\0" * (packaging.MAX_DATA_FILE + 1))
    import pk_pkg
    with pytest.warns(UserWarning, match="huge.bin"):
        files = entries(packaging.build_bundle(lambda x: pk_pkg.inner.f(x)))
    assert "pk_pkg/small.json" in files and "pk_pkg/huge.bin" not in files


def test_client_installs_with_pip_without_an_index(tmp_path):
    """`pip install ./python` into a virtualenv that sees the Debian packages,
    with no package index (the machines gust targets have none)."""
    import subprocess
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    py = str(venv / "bin" / "python")
    # From a copy: setuptools writes build/ and *.egg-info next to setup.py.
    import shutil
    src = tmp_path / "src"
    shutil.copytree(os.path.join(repo, "python"), src,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    out = subprocess.run([py, "-m", "pip", "install", "--no-index", "--no-deps", str(src)],
                         capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    where = subprocess.run([py, "-c", "import gust, os; print(os.path.realpath(gust.__file__))"],
                           capture_output=True, text=True, check=True, cwd=str(tmp_path))
    assert where.stdout.strip().startswith(os.path.realpath(str(venv)))
