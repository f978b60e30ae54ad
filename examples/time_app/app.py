"""The article's first Flask app: it tells the time (`curl .../time`).

Deploy it the way the article does with Zappa, on gust:

    cd examples/time_app && gust deploy dev     # reads zappa_settings.json as-is
    curl http://127.0.0.1:7700/web/time-app-dev/time
"""
import datetime

from flask import Flask

app = Flask(__name__)


@app.route("/time")
def time():
    return str(datetime.datetime.now())
