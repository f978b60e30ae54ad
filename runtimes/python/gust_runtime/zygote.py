"""Zygote preloading: runs once in gust-sandbox-init before any fork.

`preload(modules)` imports the function's heavy dependencies (numpy, pandas...)
and everything the runtime itself needs, then freezes the GC so the imported
objects are never touched by collections in the children, which keeps their
pages shared copy-on-write.

Constraints: nothing here may start a thread or leave an fd open, since both
would leak into (or break) every forked child.
"""

import gc
import importlib
import sys

# What bootstrap.run() needs, imported up front so a child pays nothing for it.
_RUNTIME_MODULES = (
    "json", "json.decoder", "json.encoder", "traceback", "logging", "importlib",
    "socket", "struct", "time", "random", "pickle",
    "gust_runtime.protocol", "gust_runtime.context", "gust_runtime.codec", "gust_runtime.logs",
    "gust_runtime.loader", "gust_runtime.invoke", "gust_runtime.warmup", "gust_runtime.bootstrap",
    # Map jobs: every map sandbox unpickles its function with cloudpickle.
    "cloudpickle", "gust_runtime.map_worker",
    # The stage handler's WSGI adapter (standard library only). Never
    # gust_runtime.stage itself: importing it is a stage app's init phase.
    "gust_runtime.wsgi",
)


def preload(modules):
    """Imports `modules` and the runtime; returns {module: error} for those that failed.

    A failure (a missing optional dependency, an exception at import) is
    reported, not raised, so one bad module does not take the zygote down.
    """
    errors = {}
    for name in list(modules) + [m for m in _RUNTIME_MODULES if m not in modules]:
        try:
            importlib.import_module(name)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: B902 -- incl. SystemExit from a module's top level
            errors[name] = "%s: %s" % (type(e).__name__, e)
    try:
        sys.modules["gust_runtime.bootstrap"].preset_zygote()
    except Exception as e:  # noqa: B902 -- only a speed-up: sandboxes redo it themselves
        errors["gust_runtime.bootstrap.preset_zygote"] = "%s: %s" % (type(e).__name__, e)
    # Objects allocated so far become permanent: the collector never scans
    # (and so never writes to) them again, in the zygote or its children.
    gc.collect()
    gc.freeze()
    return errors


def runtime_modules_loaded():
    """True if the runtime's own modules are in sys.modules (a health check)."""
    return all(m in sys.modules for m in _RUNTIME_MODULES)
