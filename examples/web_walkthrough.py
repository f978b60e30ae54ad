#!/usr/bin/env python3
"""The article's deploy walk-throughs, with gust's CLI in place of Zappa's.

1. time_app: the Flask app that tells the time, deployed from its
   zappa_settings.json (read as-is), upgraded to take a time zone with
   `gust update`, rolled back with `gust rollback`, watched with `gust status`
   and `gust tail`.
2. model_serving: a hyperparameter search with gust's map, the best KNN model
   pickled, and a Flask app serving it at /predict, deployed with `gust deploy`.

Run by `make demo` (examples/demo.py) and by tests/e2e/test_web_walkthrough.py:

    /usr/bin/python3 examples/web_walkthrough.py --gust build/bin/gust --url http://127.0.0.1:7700
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


class Cli:
    def __init__(self, gust, url):
        self.gust = gust
        self.env = dict(os.environ, GUST_URL=url)
        self.url = url

    def __call__(self, *args, cwd=None, check=True):
        print("$ gust " + " ".join(args), flush=True)
        out = subprocess.run([self.gust] + list(args), cwd=cwd, env=self.env, text=True,
                             capture_output=True)
        sys.stdout.write(out.stderr)  # notices ("reading ...", warnings) come first
        sys.stdout.write(out.stdout)
        sys.stdout.flush()
        if check and out.returncode != 0:
            raise SystemExit(f"walkthrough: gust {' '.join(args)} failed ({out.returncode})")
        return out

    def get(self, path):
        """curl's job, with http.client underneath: (status, body text)."""
        print(f"$ curl '{self.url}{path}'", flush=True)
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as r:
                status, body = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        print(body, flush=True)
        return status, body


def time_app(cli, workdir):
    project = os.path.join(workdir, "time_app")
    shutil.copytree(os.path.join(HERE, "time_app"), project)
    print("\n== The article's time app, deployed from its zappa_settings.json")
    cli("deploy", "dev", cwd=project)
    status, before = cli.get("/web/time-app-dev/time")
    assert status == 200, before

    print("\n== Upgrade: the time zone as a URL parameter "
          "(gust update: new version, atomic switch)")
    shutil.copy(os.path.join(project, "app_tz.py"), os.path.join(project, "app.py"))
    cli("update", "dev", cwd=project)
    status, paris = cli.get("/web/time-app-dev/time?tz=Europe/Paris")
    assert status == 200 and paris.endswith("(Europe/Paris)"), paris
    status, bad = cli.get("/web/time-app-dev/time?tz=Mars/Olympus")
    assert status == 400, bad

    print("\n== Roll back one version, then look at it")
    cli("rollback", "dev", "-n", "1", cwd=project)
    status, after = cli.get("/web/time-app-dev/time?tz=Europe/Paris")
    assert status == 200 and "(" not in after, after  # the first version ignores ?tz
    cli("status", "dev", cwd=project)
    cli("tail", "dev", "--http", "--no-follow", cwd=project)
    return {"first": before, "tz": paris, "rolled_back": after}


def model_serving(cli, workdir):
    import train as trainer  # examples/model_serving/train.py
    project = os.path.join(workdir, "model_serving")
    shutil.copytree(os.path.join(HERE, "model_serving"), project)
    print("\n== Hyperparameter search with gust's map: "
          "one KNN per n_neighbors, fitted in sandboxes")
    best_params, score, Xtest = trainer.train(cli.url, os.path.join(project, "classifier.pkl"))

    print("\n== Deploy the model server: the pickled classifier is loaded once per sandbox")
    cli("deploy", "dev", cwd=project)
    status, article = cli.get("/web/model-serving-dev/predict?feature_1=9&feature_2=6")
    assert status == 200 and article in ("purple blob", "yellow blob"), article

    import pickle
    with open(os.path.join(project, "classifier.pkl"), "rb") as f:
        local = pickle.load(f)
    answers = []
    for x1, x2 in Xtest[:5]:
        status, served = cli.get(f"/web/model-serving-dev/predict?feature_1={x1}&feature_2={x2}")
        expected = "purple blob" if local.predict([[x1, x2]])[0] == 0 else "yellow blob"
        assert status == 200 and served == expected, (served, expected)
        answers.append(served)
    status, bad = cli.get("/web/model-serving-dev/predict?feature_1=nine")
    assert status == 400, bad

    print("\n== The classifier is unpickled once per sandbox, not per request (its init log line)")
    for _ in range(10):  # the engine writes logs in batches: a busy machine may lag a little
        loads = cli("tail", "dev", "--non-http", "--no-follow", "--filter", "loaded KNeighbors",
                    cwd=project).stdout.count("loaded KNeighbors")
        if loads:
            break
        time.sleep(0.5)
    requests = len(answers) + 2
    print(f"loaded {loads} time(s) for {requests} requests")
    assert 1 <= loads < requests, loads
    return {"best": best_params, "score": score, "article": article, "answers": answers,
            "loads": loads, "requests": requests}


def run(gust, url, workdir):
    sys.path.insert(0, os.path.join(HERE, "model_serving"))
    cli = Cli(gust, url)
    return {"time_app": time_app(cli, workdir), "model_serving": model_serving(cli, workdir)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gust", default=os.path.join(HERE, "..", "build", "bin", "gust"))
    ap.add_argument("--url", default=os.environ.get("GUST_URL", "http://127.0.0.1:7700"))
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="gust-web-walkthrough-")
    try:
        run(os.path.abspath(args.gust), args.url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
