"""An iris classifier that speaks TensorFlow Serving's REST predict convention, which TorchServe and
the SageMaker built-in algorithms' JSON follow too.

Inference-toolkit handlers. Input (application/json): ``{"instances": [row, ...]}`` (the row
format) answers ``{"predictions": [[p_setosa, p_versicolor, p_virginica], ...]}``, one list of class
probabilities per row; ``{"inputs": [row, ...]}`` (the columnar format) answers ``{"outputs": ...}``
of the same shape. Each row holds the 4 measurements in cm (sepal length, sepal width, petal
length, petal width). Anything else is refused as TF Serving refuses it. ``model_fn`` trains a
logistic regression on the iris data bundled with scikit-learn (no download).
"""

from __future__ import annotations

import json


def model_fn(model_dir):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    return LogisticRegression(max_iter=1000).fit(data.data, data.target)


def input_fn(request_body, request_content_type):
    if (request_content_type or "").split(";")[0].strip() != "application/json":
        raise ValueError(f"Unsupported content type {request_content_type}: send application/json")
    document = json.loads(request_body)
    if not isinstance(document, dict) or not ({"instances", "inputs"} & set(document)):
        raise ValueError('JSON Value: ' + json.dumps(document)[:80] + ' Is not object with "instances" or '
                         '"inputs" key (TF Serving\'s request format)')
    key = "instances" if "instances" in document else "inputs"
    rows = document[key]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) and len(r) == 4 for r in rows):
        raise ValueError(f'"{key}" must be a list of rows of 4 numbers')
    return key, rows


def predict_fn(input_data, model):
    key, rows = input_data
    return key, model.predict_proba(rows).round(6).tolist()


def output_fn(prediction, accept):
    key, probabilities = prediction
    answer = "predictions" if key == "instances" else "outputs"
    return json.dumps({answer: probabilities}), "application/json"
