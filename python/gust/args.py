"""How one item of `iterdata` becomes the call `func(*args, **kwargs)` (Lithops' rules).

- a dict is keyword arguments when its keys name the function's parameters;
  a key naming its `*args` parameter gives the positional arguments and one
  naming its `**kwargs` parameter more keyword arguments (`{"args": (1, 2),
  "d": 3}` calls `f(*args, d)` as `f(1, 2, d=3)`);
- a tuple or list is positional arguments when they bind to the signature;
- anything else (and a dict/tuple/list that does not bind, for a function of
  one parameter) is the single argument — so Pywren's `map(train_model,
  [{"n_neighbors": 1}, ...])` with `def train_model(hyperparams)` passes each
  dict whole, as in the article.

`extra_args` are not merged here: they travel once per map in the code bundle
and the map worker appends them (a tuple/list extends the positional
arguments, a dict updates the keyword arguments), as Lithops does.

An internal module: executor.py uses `signature`, `takes_one_argument` and
`short_repr` below to pickle a map's items in one pass.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional, Union

Call = tuple[tuple[Any, ...], dict[str, Any]]  # (args, kwargs) of one call
# Optional[Union[...]], not X | Y: a runtime expression, and the client runs on 3.9.
ExtraArgs = Optional[Union[tuple[Any, ...], list[Any], dict[str, Any]]]


def signature(func: Callable[..., Any]) -> inspect.Signature | None:
    """func's signature, or None when it has none (some builtins)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None  # builtins without a signature: fall back to the plain rules


def takes_one_argument(sig: inspect.Signature | None) -> bool:
    """True if the function can be called with exactly one positional argument."""
    if sig is None:
        return True
    try:
        sig.bind(None)
        return True
    except TypeError:
        return False


def _binds(sig: inspect.Signature | None, args: tuple[Any, ...],
           kwargs: dict[str, Any]) -> bool:
    if sig is None:
        return True
    try:
        sig.bind(*args, **kwargs)
        return True
    except TypeError:
        return False


def _unpack_var_parameters(sig: inspect.Signature | None,
                           item: dict[str, Any]) -> Call:
    """(args, kwargs) of a dict item: the value of the key naming func's
    `*args` parameter (a tuple or list) becomes the positional arguments,
    that of the key naming its `**kwargs` (a dict) is merged into the
    keyword arguments, as Lithops' worker does; other keys stay keywords."""
    if sig is None:
        return (), dict(item)
    kwargs = dict(item)
    args: tuple[Any, ...] = ()
    for param in sig.parameters.values():
        if param.name not in kwargs:
            continue
        value = kwargs[param.name]
        if param.kind is param.VAR_POSITIONAL and isinstance(value, (tuple, list)):
            args = tuple(kwargs.pop(param.name))
        elif param.kind is param.VAR_KEYWORD and isinstance(value, dict):
            kwargs.pop(param.name)
            kwargs.update(value)
    return args, kwargs


def normalize_item(func: Callable[..., Any], item: Any, sig: inspect.Signature | None = None,
                   extra_args: ExtraArgs = None) -> Call:
    """(args tuple, kwargs dict) for one item; raises TypeError naming the item
    when it fits none of the rules. `extra_args` (already validated) is only used
    to check that the final call would bind."""
    if sig is None:
        sig = signature(func)
    extra_pos: tuple[Any, ...] = (tuple(extra_args) if isinstance(extra_args, (tuple, list))
                                  else ())
    extra_kw: dict[str, Any] = extra_args if isinstance(extra_args, dict) else {}
    if isinstance(item, dict) and all(isinstance(k, str) for k in item):
        args, kwargs = _unpack_var_parameters(sig, item)
        if _binds(sig, args + extra_pos, dict(kwargs, **extra_kw)):
            return args, kwargs
    elif isinstance(item, (tuple, list)):
        if _binds(sig, tuple(item) + extra_pos, extra_kw):
            return tuple(item), {}
    if _binds(sig, (item,) + extra_pos, extra_kw):
        return (item,), {}
    params = "(%s)" % ", ".join(sig.parameters) if sig is not None else "(?)"
    raise TypeError("cannot call %s%s with the item %s: a tuple/list is passed as positional "
                    "arguments, a dict as keyword arguments, anything else as the single "
                    "argument" % (getattr(func, "__qualname__", repr(func)), params,
                                  short_repr(item)))


def check_extra_args(extra_args: object) -> None:
    """extra_args must be None, a tuple/list (positional) or a dict (keyword);
    TypeError otherwise."""
    if extra_args is None or isinstance(extra_args, (tuple, list, dict)):
        return
    raise TypeError("extra_args must be a tuple/list (appended positional arguments) or a dict "
                    "(extra keyword arguments), not %s" % type(extra_args).__name__)


def short_repr(obj: object, limit: int = 80) -> str:
    """repr(obj) cut to `limit` characters, for error messages (never raises)."""
    try:
        text = repr(obj)
    except Exception:  # noqa: B902 -- a broken __repr__ must not hide the real error
        text = "<%s object>" % type(obj).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
