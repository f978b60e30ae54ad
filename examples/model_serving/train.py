"""The article's hyperparameter search, on gust: fit one KNN classifier per
n_neighbors in sandboxes with gust's map (Pywren's API), score each locally,
pickle the best one beside app.py for the model server to load.

    PYTHONPATH=python /usr/bin/python3 examples/model_serving/train.py --url http://127.0.0.1:7700
"""
import argparse
import os
import pickle
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def dataset():
    """The two-blob data of the article's example (features in two columns)."""
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split
    X, y = make_moons(n_samples=1000, noise=0.35, random_state=0)
    return train_test_split(X, y, test_size=0.5, random_state=0)


def train(url=None, out=os.path.join(HERE, "classifier.pkl"), verbose=True):
    """Returns (best hyperparameters, its test score, the test features)."""
    import gust
    from sklearn.neighbors import KNeighborsClassifier
    Xtrain, Xtest, ytrain, ytest = dataset()
    all_hyperparams = [{"n_neighbors": k} for k in range(1, 9)]

    def train_model(hyperparams):
        classifier = KNeighborsClassifier(**hyperparams)
        classifier.fit(Xtrain, ytrain)
        return classifier

    pwex = gust.default_executor(url=url)
    futures = pwex.map(train_model, all_hyperparams)
    classifiers = gust.get_all_results(futures)
    scored = []
    for hyperparams, classifier in zip(all_hyperparams, classifiers):
        score = classifier.score(Xtest, ytest)
        scored.append((score, hyperparams, classifier))
        if verbose:
            print(hyperparams, round(score, 3))
    score, best_params, best = max(scored, key=lambda s: s[0])
    with open(out, "wb") as f:
        pickle.dump(best, f)
    if verbose:
        print(f"best: {best_params} (test score {score:.3f}) -> {out}")
    return best_params, score, Xtest


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default=os.environ.get("GUST_URL"))
    ap.add_argument("--out", default=os.path.join(HERE, "classifier.pkl"))
    args = ap.parse_args()
    train(args.url, args.out)
