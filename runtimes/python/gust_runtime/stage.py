"""The handler of a stage function (`gust deploy STAGE`): Zappa's handler, on gust.

The function's Handler is `gust_runtime.stage.handler`; the app it serves is
named by an environment variable the CLI sets from the settings file:

    GUST_APP_FUNCTION=app.app        a WSGI app (Flask, ...), app_function
    GUST_LAMBDA_HANDLER=mod.fn       a plain handler, lambda_handler

Importing this module imports the app, so a missing module or a broken app is
an init error (Runtime.ImportModuleError...) that `POST /v1/functions/{name}/warm`
reports at deploy time, not at the first request. That is also why this module
must never be preloaded by the zygote: its import is the app's init phase.

Events are dispatched by shape, as Zappa's handler does:
  raw bytes from the gateway (wsgi.MAGIC)      -> the WSGI app; raw HTTP answer
  {"command": "mod.fn"}  (`gust invoke STAGE`) -> mod.fn() / fn(event) / fn(event, context)
  {"raw_command": "python code"}               -> exec'd (`gust invoke STAGE --raw`)
  {"detail-type": "Scheduled Event", "gust_function": "mod.fn"} -> mod.fn(event, context)
  an API Gateway proxy event (v2.0 or v1)      -> the WSGI app; proxy response dict
  anything else                                -> the plain handler (lambda_handler)
A Scheduled Event without gust_function (a keep-warm ping) goes to the plain
handler if there is one, else does nothing: the sandbox is warm by now.
"""

import os

from . import wsgi
from .codec import HANDLER_NOT_FOUND, Fault, json_encode
from .loader import load_handler

APP_FUNCTION_ENV = "GUST_APP_FUNCTION"
LAMBDA_HANDLER_ENV = "GUST_LAMBDA_HANDLER"


def _prepare_app(app):
    """Lets unhandled exceptions of a Flask app escape, so the gateway answers
    502 and the traceback reaches the log (API Gateway's behaviour when the
    Lambda fails). An app that sets PROPAGATE_EXCEPTIONS itself is left alone;
    its own error handlers keep working either way."""
    config = getattr(app, "config", None)
    if hasattr(app, "handle_exception") and isinstance(config, dict) \
            and config.get("PROPAGATE_EXCEPTIONS") is None:
        config["PROPAGATE_EXCEPTIONS"] = True
    return app


def _load():
    app_function = os.environ.get(APP_FUNCTION_ENV, "")
    lambda_handler = os.environ.get(LAMBDA_HANDLER_ENV, "")
    if app_function:
        app = load_handler(app_function)
        if not callable(app):
            raise Fault(HANDLER_NOT_FOUND, "app_function '%s' is a %s, not a WSGI app"
                        % (app_function, type(app).__name__))
        return _prepare_app(app), None
    if lambda_handler:
        return None, load_handler(lambda_handler)
    raise Fault(HANDLER_NOT_FOUND,
                "a stage function needs %s (a WSGI app) or %s (a handler) in its "
                "environment" % (APP_FUNCTION_ENV, LAMBDA_HANDLER_ENV))


app, plain_handler = _load()


def _positional_params(fn):
    import inspect
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _call(fn, event, context):
    """fn(), fn(event) or fn(event, context), whichever it takes (Zappa's rule)."""
    n = _positional_params(fn)
    if n == 0:
        return fn()
    if n == 1:
        return fn(event)
    return fn(event, context)


def _jsonable(result):
    """The result if it can be sent as JSON, else its repr (a command's result is shown)."""
    try:
        json_encode(result)
        return result
    except Exception:  # noqa: B902 -- TypeError, ValueError: not JSON
        return repr(result)


def handler(event, context):
    if wsgi.is_raw_request(event):
        if app is None:
            raise TypeError("this stage serves a plain handler (lambda_handler), not a WSGI app")
        return wsgi.serve_raw(app, event)
    if isinstance(event, dict):
        if "command" in event:
            return _jsonable(_call(load_handler(str(event["command"])), event, context))
        if "raw_command" in event:
            exec(compile(str(event["raw_command"]), "<raw_command>", "exec"), {})
            return None
        if event.get("detail-type") == "Scheduled Event":
            target = event.get("gust_function")
            if target:
                return _jsonable(load_handler(str(target))(event, context))
            if plain_handler is None:
                return {"warm": True}
        elif app is not None and wsgi.is_http_event(event):
            return wsgi.serve_event(app, event)
    if plain_handler is not None:
        return plain_handler(event, context)
    raise ValueError("a WSGI stage received an event it does not handle (expected an HTTP "
                     "request, {\"command\": \"mod.fn\"} or a Scheduled Event): %s"
                     % (repr(event)[:200],))
