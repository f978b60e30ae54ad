"""The code bundle of a map: pickled function, extra_args and local modules in one
deterministic zip, addressed by its sha256 (docs/MAP.md, "Code").

Local modules are found from the pickles themselves: cloudpickle pickles a
function or class of an importable module by reference (module name + attribute)
and a module object as `subimport(name)`, so every module the sandbox will have to
import appears in the pickle as a string. Each such module that is neither in
the standard library nor installed (site-/dist-packages) is shipped, together
with the local modules its own source imports (found with `ast`), recursively.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import os
import pickletools
import site
import sys
import sysconfig
import warnings
import zipfile
from typing import Any, Iterable

import cloudpickle

JOB_DIR = "_gust_job"
FUNCTION_ENTRY = JOB_DIR + "/function.pkl"
EXTRA_ARGS_ENTRY = JOB_DIR + "/extra_args.pkl"

# Fixed metadata so the same content always gives the same bytes (and digest).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o644 << 16
_SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
_CODE_SUFFIXES = (".py", ".so", ".pyd")
MAX_DATA_FILE = 1 << 20  # data files of a shipped package above this stay behind
# Never shipped: the client itself (tasks must not need it) and the runtime.
_NEVER_SHIP = {"gust", "gust_runtime", "__main__", "__mp_main__"}
# ...except gust when a shipped local module's source imports it.
_SHIP_IF_IMPORTED = "gust"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _installed_roots() -> tuple[str, ...]:
    """Directories whose modules the sandbox is expected to have already."""
    roots = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(os.path.realpath(paths[key]))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # virtualenvs of old setuptools
        pass
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if user_site:
        roots.add(os.path.realpath(user_site))
    roots.add(os.path.realpath(os.path.dirname(os.__file__)))
    return tuple(r.rstrip(os.sep) + os.sep for r in roots)


_INSTALLED_ROOTS: tuple[str, ...] | None = None


def is_local_file(path: str) -> bool:
    """True if a module file is the user's own code (not stdlib, not installed)."""
    global _INSTALLED_ROOTS
    if _INSTALLED_ROOTS is None:
        _INSTALLED_ROOTS = _installed_roots()
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not real.startswith(_INSTALLED_ROOTS)


def _module_file(name: str) -> str | None:
    mod = sys.modules.get(name)
    if mod is None:
        try:
            import importlib.util
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        if spec is None or not spec.has_location:
            return None
        return spec.origin
    return getattr(mod, "__file__", None)


def _local_path_dirs() -> list[str]:
    """sys.path entries holding the user's own code (the script's dir, the cwd...)."""
    dirs = []
    for entry in sys.path:
        entry = os.path.abspath(entry or os.curdir)
        if os.path.isdir(entry) and is_local_file(os.path.join(entry, "x.py")):
            dirs.append(entry)
    return dirs


def _is_local_top_level(name: str, dirs: list[str]) -> bool:
    """True if `name` is a module or package in one of the local sys.path dirs."""
    return any(os.path.isfile(os.path.join(d, name + ".py"))
               or os.path.isfile(os.path.join(d, name, "__init__.py")) for d in dirs)


def pickle_module_names(data: bytes) -> set[str]:
    """Module names a pickle refers to: every GLOBAL's module, every string that
    names a module already imported in this process (STACK_GLOBAL and
    cloudpickle's subimport push module names as plain strings), and every
    identifier naming a local module not imported yet (an `import mod` inside the
    function's body leaves "mod" in its code object's names)."""
    names: set[str] = set()
    dirs = None
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                names.add(arg.split(" ", 1)[0])
            elif isinstance(arg, str) and arg in sys.modules:
                names.add(arg)
            elif isinstance(arg, str) and arg.isidentifier():
                if dirs is None:
                    dirs = _local_path_dirs()
                if _is_local_top_level(arg, dirs):
                    names.add(arg)
    except Exception:  # noqa: B902 -- a pickle pickletools cannot walk: ship nothing extra
        pass
    return names


def _source_imports(path: str, package: str) -> set[str]:
    """Absolute module names imported by one source file (relative imports resolved)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                if node.level > 1:
                    base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            if prefix:
                names.add(prefix)
                names.update(prefix + "." + a.name for a in node.names if a.name != "*")
    return names


def _package_files(pkg_dir: str) -> list[str]:
    """The files of a package directory (sorted): its Python sources and
    extension modules, plus data files up to MAX_DATA_FILE bytes (a warning
    names larger ones, which are left out); never caches or VCS dirs."""
    out = []
    for root, dirs, files in os.walk(pkg_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(_SKIP_SUFFIXES):
                continue
            path = os.path.join(root, name)
            if not name.endswith(_CODE_SUFFIXES):
                try:
                    size = os.path.getsize(path)
                except OSError:
                    continue
                if size > MAX_DATA_FILE:
                    warnings.warn("gust: not shipping %s (%d bytes, over %d): read large data "
                                  "from a shared path or pass it as an argument"
                                  % (path, size, MAX_DATA_FILE), stacklevel=4)
                    continue
            out.append(path)
    return out


def collect_local_modules(module_names: Iterable[str]) -> dict[str, str]:
    """{archive path: file path} of the local modules among `module_names` and
    the local modules they import, recursively. A module inside a package ships
    its whole top-level package (the import needs every parent)."""
    files: dict[str, str] = {}
    seen_tops: set[str] = set()
    queue = sorted(set(module_names) - {_SHIP_IF_IMPORTED})
    while queue:
        name = queue.pop()
        top = name.split(".")[0]
        if top == _SHIP_IF_IMPORTED and top not in seen_tops:
            # A shipped module imports gust itself (e.g. a helper module that also
            # drives maps): ship this pure-Python package so that import works.
            seen_tops.add(top)
            base = os.path.dirname(_PACKAGE_DIR)
            for src in _package_files(_PACKAGE_DIR):
                files[os.path.relpath(src, base).replace(os.sep, "/")] = src
            continue
        if not top or top in seen_tops or top in _NEVER_SHIP or top in sys.builtin_module_names:
            continue
        path = _module_file(top)
        if not path or not os.path.isfile(path) or not is_local_file(path):
            continue
        seen_tops.add(top)
        if os.path.basename(path).startswith("__init__."):
            pkg_dir = os.path.dirname(path)
            base = os.path.dirname(pkg_dir)
            sources = _package_files(pkg_dir)
        else:
            base = os.path.dirname(path)
            sources = [path]
        for src in sources:
            arcname = os.path.relpath(src, base).replace(os.sep, "/")
            files[arcname] = src
            if src.endswith(".py"):
                rel = arcname[:-3].split("/")
                is_init = rel[-1] == "__init__"
                modname = ".".join(rel[:-1] if is_init else rel)
                package = modname if is_init else ".".join(rel[:-1])
                queue.extend(n for n in _source_imports(src, package)
                             if n.split(".")[0] not in seen_tops)
    return files


def dumps_checked(obj: Any, what: str) -> bytes:
    """cloudpickle.dumps(obj), raising SerializationError that names `what`."""
    from .errors import SerializationError
    try:
        return cloudpickle.dumps(obj)
    except Exception as e:  # noqa: B902 -- pickling can raise anything
        raise SerializationError("cannot pickle %s: %s: %s" % (what, type(e).__name__, e)) from e


def build_zip(entries: dict[str, bytes]) -> bytes:
    """Deterministic zip bytes of {archive path: bytes}: sorted, fixed dates and modes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = _ZIP_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the host
            zf.writestr(info, entries[name], compresslevel=6)
    return buf.getvalue()


class CodeBundle:
    """The zip of one (function, extra_args) pair and its sha256 digest."""

    def __init__(self, data: bytes, modules: list[str]) -> None:
        self.data = data
        self.digest = hashlib.sha256(data).hexdigest()
        self.modules = modules  # archive paths of the shipped local modules

    def __repr__(self) -> str:
        return "CodeBundle(%s, %d bytes, modules=%s)" % (
            self.digest[:16], len(self.data), self.modules)


# (pickles, sys.path) -> (stat of each shipped file, CodeBundle): the last
# bundles built. Mapping the same function again re-pickles it (its globals or
# closure may have changed) but skips finding, reading and zipping its modules
# (~2 ms) while none of their files changed.
_FileStats = tuple[tuple[str, int, int], ...]
_bundle_cache: dict[tuple[bytes, bytes | None, tuple[str, ...]],
                    tuple[_FileStats, CodeBundle]] = {}
_BUNDLE_CACHE_SIZE = 16


def _file_stats(paths: Iterable[str]) -> _FileStats | None:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        out.append((path, st.st_size, st.st_mtime_ns))
    return tuple(out)


def build_bundle(func: Any, extra_args: Any = None) -> CodeBundle:
    """Pickles func (and extra_args) and zips them with the local modules they need."""
    name = getattr(func, "__qualname__", None) or type(func).__name__
    entries = {FUNCTION_ENTRY: dumps_checked(func, "the function %s" % name)}
    if extra_args is not None:
        entries[EXTRA_ARGS_ENTRY] = dumps_checked(extra_args, "extra_args")
    key = (entries[FUNCTION_ENTRY], entries.get(EXTRA_ARGS_ENTRY), tuple(sys.path))
    cached = _bundle_cache.get(key)
    if cached is not None and _file_stats(p for p, _, _ in cached[0]) == cached[0]:
        return cached[1]
    modules: set[str] = set()
    for data in entries.values():
        modules |= pickle_module_names(data)
    local = collect_local_modules(modules)
    stats = _file_stats(sorted(local.values()))
    for arcname, path in local.items():
        with open(path, "rb") as f:
            entries[arcname] = f.read()
        if arcname.endswith(".py"):
            pyc = compiled_module(path, arcname, entries[arcname])
            if pyc is not None:
                entries[importlib.util.cache_from_source(arcname)] = pyc
    bundle = CodeBundle(build_zip(entries), sorted(local))
    if stats is not None:
        if len(_bundle_cache) >= _BUNDLE_CACHE_SIZE:
            _bundle_cache.pop(next(iter(_bundle_cache)))
        _bundle_cache[key] = (stats, bundle)
    return bundle


_pyc_cache: dict[tuple[str, int, int], bytes] = {}  # (path, size, mtime_ns) -> pyc bytes


def compiled_module(path: str, arcname: str, source: bytes) -> bytes | None:
    """The bytecode of a shipped module as an unchecked hash-based .pyc (PEP 552),
    or None if it does not compile here (the sandbox then reports the error).

    A sandbox's /var/task is read-only, so without it every sandbox compiles
    every shipped module again (~1 ms per module on the machines gust targets);
    unchecked because a bundle never changes (it is content-addressed). Client
    and runtime run the same Python (checked before any task runs), so the
    bytecode is the runtime's."""
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
    except OSError:
        return None
    cached = _pyc_cache.get(key)
    if cached is not None:
        return cached
    try:
        import importlib._bootstrap_external as external  # type: ignore[import]
        code = compile(source, "/var/task/" + arcname, "exec", dont_inherit=True)
        data = external._code_to_hash_pyc(code, importlib.util.source_hash(source),
                                          checked=False)
    except Exception:  # noqa: B902 -- a syntax error, or an interpreter without these helpers
        return None
    _pyc_cache[key] = data
    return data
