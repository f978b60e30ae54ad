"""The handler of a stage function (`gust deploy STAGE`): Zappa's handler, on gust.

The function's Handler is `gust_runtime.stage.handler`; the app it serves is
named by an environment variable the CLI sets from the settings file:

    GUST_APP_FUNCTION=app.app        a WSGI app (Flask, ...), app_function
    GUST_LAMBDA_HANDLER=mod.fn       a plain handler, lambda_handler
    neither                          an event-only project (Zappa's cron bots):
                                     no web app, only its events' functions

Importing this module imports the app, so a missing module or a broken app is
an init error (Runtime.ImportModuleError...) that `POST /v1/functions/{name}/warm`
reports at deploy time, not at the first request. That is also why this module
must never be preloaded by the zygote: its import is the app's init phase.

Events are dispatched by shape, as Zappa's handler does:
  raw bytes from the gateway (wsgi.MAGIC)      -> the WSGI app; raw HTTP answer
  {"command": "mod.fn"}  (`gust invoke STAGE`) -> mod.fn
  {"raw_command": "python code"}               -> exec'd (`gust invoke STAGE --raw`)
  {"detail-type": "Scheduled Event", "gust_function": "mod.fn"} -> mod.fn
  an API Gateway proxy event (v2.0 or v1)      -> the WSGI app; proxy response dict
  anything else (async events, ...)            -> the plain handler (lambda_handler)
A Scheduled Event without gust_function (a keep-warm ping) goes to the plain
handler if there is one, else does nothing: the sandbox is warm by now.

Every user function is called by one rule, call_stage_function (Zappa's
handler inspects the signature the same way): fn(), fn(event) or
fn(event, context), whichever it takes, whatever path the event came by.
"""

import os

from . import wsgi
from .codec import HANDLER_NOT_FOUND, Fault, json_encode
from .loader import load_handler

APP_FUNCTION_ENV = "GUST_APP_FUNCTION"
LAMBDA_HANDLER_ENV = "GUST_LAMBDA_HANDLER"
# The stage's keep_warm and events as JSON (src/cli/stage_schedules.h).
SCHEDULES_ENV = "GUST_STAGE_SCHEDULES"


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
    # An event-only project: its events name its functions. They are imported
    # now, as an app would be, so the deploy's import check tries them.
    for function in _event_functions():
        load_handler(function)
    return None, None


def _event_functions():
    import json
    try:
        events = json.loads(os.environ.get(SCHEDULES_ENV, "")).get("events", [])
        return [str(e["function"]) for e in events]
    except (ValueError, AttributeError, KeyError, TypeError):
        return []  # not set by `gust deploy` (a stage function made by hand)


NO_NETWORK_NOTE = ("gust: this stage's sandbox has no network, so the app cannot reach other "
                   "hosts or the host's own services while it imports; set \"network\": true "
                   "in the stage's settings (a Zappa app has the internet on Lambda; docs/WEB.md, "
                   "\"Network\") and run `gust update` (or `gust deploy`) again")


def _load_explained():
    """_load, with a failure to reach the network while the app imports (a
    database or API client connecting at import time) explained: a bare
    "Temporary failure in name resolution" does not say the sandbox has no
    network, nor how to give it one."""
    try:
        return _load()
    except Exception as exc:  # noqa: B902 -- re-raised unchanged unless explained
        from .codec import format_stack_trace
        from .map_worker import is_no_network_failure
        if isinstance(exc, Fault) or not is_no_network_failure(exc):
            raise
        raise Fault(type(exc).__name__, "%s\n%s" % (exc, NO_NETWORK_NOTE),
                    format_stack_trace(exc.__traceback__)) from exc


app, plain_handler = _load_explained()


def _positional_params(fn):
    import inspect
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def call_stage_function(fn, event, context):
    """fn(), fn(event) or fn(event, context), whichever it takes (Zappa's rule).
    The one way this module calls user code: commands, schedules, keep-warm
    pings and async events must not disagree about a function's arguments."""
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
    if app is None and plain_handler is None and (
            wsgi.is_raw_request(event) or wsgi.is_http_event(event)):
        raise TypeError("this stage has no web app: its settings have no app_function (an "
                        "event-only project); its functions run on their schedules or by "
                        "`gust invoke STAGE module.function`")
    if wsgi.is_raw_request(event):
        if app is None:
            raise TypeError("this stage serves a plain handler (lambda_handler), not a WSGI app")
        return wsgi.serve_raw(app, event)
    if isinstance(event, dict):
        if "command" in event:
            return _jsonable(call_stage_function(load_handler(str(event["command"])),
                                                 event, context))
        if "raw_command" in event:
            exec(compile(str(event["raw_command"]), "<raw_command>", "exec"), {})
            return None
        if event.get("detail-type") == "Scheduled Event":
            target = event.get("gust_function")
            if target:
                return _jsonable(call_stage_function(load_handler(str(target)), event, context))
            if plain_handler is None:
                return {"warm": True}
        elif app is not None and wsgi.is_http_event(event):
            return wsgi.serve_event(app, event)
    if plain_handler is not None:
        return call_stage_function(plain_handler, event, context)
    raise ValueError("a stage received an event it does not handle (expected an HTTP "
                     "request, {\"command\": \"mod.fn\"} or a Scheduled Event): %s"
                     % (repr(event)[:200],))
