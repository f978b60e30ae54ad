"""The article's model server: a Flask app whose /predict answers with the
class the pickled KNN classifier gives two features.

    curl 'http://127.0.0.1:7700/web/model-serving-dev/predict?feature_1=9&feature_2=6'

The classifier is loaded at import time, so once per sandbox (not per
request); train.py writes classifier.pkl beside this file before deploying.
"""
import os
import pickle

from flask import Flask, request

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "classifier.pkl"), "rb") as f:
    classifier = pickle.load(f)
print(f"loaded {type(classifier).__name__}(n_neighbors={classifier.n_neighbors})")

app = Flask(__name__)


@app.route("/predict")
def predict():
    try:
        X = [[float(request.args["feature_1"]), float(request.args["feature_2"])]]
    except (KeyError, ValueError):
        return "feature_1 and feature_2 must be given as numbers\n", 400
    label = classifier.predict(X)
    if label == 0:
        return "purple blob"
    else:
        return "yellow blob"
