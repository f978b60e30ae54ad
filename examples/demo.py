#!/usr/bin/env python3
"""`make demo`: start an embedded gust engine and walk through what gust does.

The engine core — deploy a function, call it cold and warm with the gust CLI and
with boto3 (gust's API is Lambda's), read its Lambda-style logs, see it scale to
zero — then the article's map walk-through: `pwex.map(square, args)` and the
KNN hyperparameter search, through gust's Pywren API and through joblib; the
article's scraping (examples/scrape/); then the deploy walk-throughs with
gust's Zappa-style CLI (examples/web_walkthrough.py): the time-telling Flask
app and the model server."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


def square(x):
    return x * x


def map_walkthrough(url):
    import gust
    print("\n== 8. pwex.map(square, args): each call in a sandbox, results back as futures")
    pwex = gust.default_executor(url=url)
    t0 = time.time()
    futures = pwex.map(square, range(100), concurrency=4)
    print("squares:", gust.get_all_results(futures)[:10], "...",
          "(%d tasks in %.2f s)" % (len(futures), time.time() - t0))

    print("\n== 9. The article's hyperparameter search: one KNN per n_neighbors, fitted remotely")
    from sklearn.datasets import make_moons
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    X, y = make_moons(n_samples=1000, noise=0.35, random_state=0)
    Xtrain, Xtest, ytrain, ytest = train_test_split(X, y, test_size=0.5, random_state=0)
    all_hyperparams = [{"n_neighbors": k} for k in range(1, 9)]

    def train_model(hyperparams):
        classifier = KNeighborsClassifier(**hyperparams)
        classifier.fit(Xtrain, ytrain)
        return classifier

    classifiers = gust.get_all_results(pwex.map(train_model, all_hyperparams, concurrency=4))
    for hyperparams, classifier in zip(all_hyperparams, classifiers):
        print(hyperparams, round(classifier.score(Xtest, ytest), 3))

    print("\n== 10. The same search with sklearn's n_jobs=-1 running on gust (joblib backend)")
    import joblib
    gust.register_joblib()
    with joblib.parallel_backend("gust", url=url):
        search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": list(range(1, 9))},
                              n_jobs=-1).fit(Xtrain, ytrain)
    print("best:", search.best_params_, "test score", round(search.score(Xtest, ytest), 3))


def sh(*args, env=None):
    print("$ " + " ".join(args[0] if isinstance(args[0], list) else args), flush=True)
    cmd = args[0] if isinstance(args[0], list) else list(args)
    out = subprocess.run(cmd, env=env, text=True, capture_output=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if out.returncode not in (0,):
        raise SystemExit(f"demo: command failed ({out.returncode})")
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gust", default=os.path.join(HERE, "..", "build", "bin", "gust"))
    args = ap.parse_args()
    gust = os.path.abspath(args.gust)
    state = tempfile.mkdtemp(prefix="gust-demo-")
    port = "7799"
    env = dict(os.environ, GUST_URL=f"http://127.0.0.1:{port}", GUST_STATE_DIR=state)
    try:
        print("== 1. Start an engine in the background (state in a temp dir)")
        # Flask and sklearn imported once in the zygote: web apps and map tasks start fast.
        sh([gust, "up", "-d", "--port", port, "--state-dir", state, "--keep-alive", "3s",
            "--preload", "flask,numpy,sklearn"], env=env)

        print("\n== 2. Deploy the adding application")
        sh([gust, "deploy", "adder", os.path.join(HERE, "hello"), "--handler", "app.handler",
            "--memory", "256"], env=env)

        print("\n== 3. Call it: the first call is a cold start (see Init Duration)")
        sh([gust, "invoke", "adder", "--payload", '{"a": 2, "b": 2}', "--log"], env=env)
        print("\n== 4. Again: warm, same sandbox, no init")
        sh([gust, "invoke", "adder", "--payload", '{"a": 35, "b": 7}', "--log"], env=env)

        print("\n== 5. The same engine through boto3 (gust's API is AWS Lambda's)")
        import boto3
        lam = boto3.client("lambda", endpoint_url=env["GUST_URL"], region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
        r = lam.invoke(FunctionName="adder", Payload=json.dumps({"a": 40, "b": 2}))
        print("boto3 invoke ->", json.loads(r["Payload"].read()))
        print("functions:", [f["FunctionName"] for f in lam.list_functions()["Functions"]])

        print("\n== 6. Logs, Lambda's format")
        time.sleep(0.3)
        sh([gust, "logs", "adder"], env=env)

        print("\n== 7. Scale to zero: after the 3 s keep-alive no sandbox is left")
        time.sleep(4.5)
        health = json.loads(subprocess.run(["curl", "-s", env["GUST_URL"] + "/v1/health"],
                                           capture_output=True, text=True).stdout)
        print("live sandboxes:", health["sandboxes"]["live"])
        map_walkthrough(env["GUST_URL"])

        print("\n== 11. The article's scraping: scrape_batch over batches of papers, sandboxes "
              "with the network (map(..., network=True)) against a local site, 100 ms a page")
        sys.path.insert(0, os.path.join(HERE, "scrape"))
        import scrape
        scrape.run(env["GUST_URL"], papers=100, batch=10, delay=0.1)

        print("\n== 12. Deploy web apps the way Zappa does "
              "(gust deploy/update/rollback/status/tail)")
        sys.path.insert(0, HERE)
        import web_walkthrough
        workdir = tempfile.mkdtemp(prefix="gust-demo-web-")
        try:
            web_walkthrough.run(gust, env["GUST_URL"], workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print("\ndemo: done")
    finally:
        subprocess.run([gust, "down", "--state-dir", state], env=env)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
