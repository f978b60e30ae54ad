"""Lithops' configuration functions (lithops.config) over gust.

A Lithops config is a dict of sections: "lithops" (backend, storage, mode,
log_level, execution_timeout, retries, ...), one section per backend name
("aws_lambda", "localhost", ...) and one per storage. gust.lithops reads
what has a meaning on gust (see executors.options_from_config) and keeps
the rest untouched, so a Lithops config file loads as it is. The backend
and storage default to "gust"; a "gust" section may hold gust's own
executor options (url, memory, timeout, network, ...).

No function here touches the network or the engine; thread-safe as far as
the dicts passed in are not shared.
"""

from __future__ import annotations

import copy
import os
from typing import Any

# Where Lithops looks for a config file, in its order (after config_file=).
CONFIG_ENV = "LITHOPS_CONFIG_FILE"
CONFIG_PATHS = (".lithops_config", os.path.join("~", ".lithops", "config"))
BACKEND = STORAGE = "gust"
MODE = "serverless"


def load_yaml_config(config_filename: str) -> dict[str, Any]:
    """The YAML file config_filename as a dict ({} when the file does not
    exist, as Lithops). Raises ImportError without PyYAML and yaml.YAMLError
    for a malformed file."""
    import yaml  # type: ignore[import]
    try:
        with open(config_filename) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        return {}
    return data or {}


def get_default_config_filename() -> str | None:
    """The config file Lithops would read: ./.lithops_config,
    $LITHOPS_CONFIG_FILE, then ~/.lithops/config; None when none exists."""
    candidates = [CONFIG_PATHS[0], os.environ.get(CONFIG_ENV), CONFIG_PATHS[1]]
    for path in candidates:
        if path and os.path.isfile(os.path.expanduser(path)):
            return os.path.expanduser(path)
    return None


def load_config(config_file: str | None = None) -> dict[str, Any]:
    """The config file config_file (default: get_default_config_filename()),
    or {} when there is none."""
    path = config_file or get_default_config_filename()
    return load_yaml_config(path) if path else {}


def default_config(config_file: str | None = None, config_data: dict[str, Any] | None = None,
                   config_overwrite: dict[str, Any] | None = None,
                   load_storage_config: bool = True) -> dict[str, Any]:
    """Lithops' complete config: config_data (a dict, deep-copied; default
    None: the file config_file, else the file Lithops finds), with the
    "lithops" and "backend" sections of config_overwrite (default None)
    merged in, and the defaults filled: lithops.backend and lithops.storage
    "gust", lithops.mode "serverless", an empty section for the backend and
    the storage. load_storage_config is accepted for Lithops' signature (the
    storage section is always filled). Returns a new dict; raises TypeError
    when a section is not a dict."""
    data = copy.deepcopy(config_data) if config_data else load_config(config_file)
    overwrite = config_overwrite or {}
    lithops = _section(data, "lithops")
    lithops.update(overwrite.get("lithops") or {})
    lithops.setdefault("backend", BACKEND)
    lithops.setdefault("mode", MODE)
    lithops.setdefault("storage", STORAGE)
    _section(data, lithops["backend"]).update(overwrite.get("backend") or {})
    _section(data, lithops["storage"])
    return data


def default_storage_config(config_file: str | None = None,
                           config_data: dict[str, Any] | None = None,
                           backend: str | None = None) -> dict[str, Any]:
    """default_config's result, with lithops.storage set to backend when given."""
    data = default_config(config_file, config_data)
    if backend:
        data["lithops"]["storage"] = backend
        _section(data, backend)
    return data


def extract_storage_config(config: dict[str, Any]) -> dict[str, Any]:
    """The storage part of a config, as Lithops gives it to Storage():
    {"backend": name, name: that section}."""
    lithops = config.get("lithops") or {}
    backend = lithops.get("storage", STORAGE)
    return {"backend": backend, backend: dict(config.get(backend) or {})}


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    """data[name], made an empty dict when missing or None."""
    value = data.get(name)
    if value is None:
        value = data[name] = {}
    if not isinstance(value, dict):
        raise TypeError("the config's %r section must be a dict, not %s"
                        % (name, type(value).__name__))
    return value
