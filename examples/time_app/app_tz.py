"""The article's upgrade of the time app: the time zone as a URL parameter
(`/time?tz=Europe/Paris`). `make demo` copies it over app.py and runs
`gust update dev`, then `gust rollback dev -n 1`."""
import datetime
import zoneinfo

from flask import Flask, request

app = Flask(__name__)


@app.route("/time")
def time():
    name = request.args.get("tz", "UTC")
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r}\n", 400
    return f"{datetime.datetime.now(zone)} ({name})"
