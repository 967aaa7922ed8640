"""Demo model for the local stack: a scikit-learn classifier of iris flowers.

SageMaker inference-toolkit handlers. ``model_fn`` trains a logistic regression on the iris data
bundled with scikit-learn (no download, well under a second). Input: rows of 4 numbers (sepal
length, sepal width, petal length, petal width in cm) as CSV (no header, the SageMaker
convention; a header row is skipped) or JSON (a list of rows, one row, ``{"instances": rows}``,
or records keyed by the feature names). Output by Accept: CSV lines ``label,probability`` or
JSON ``{"predictions": [{"label", "class_index", "probability"}, ...]}`` (the default, as in the
inference toolkit, when Accept is absent or ``*/*``). Bad input raises ValueError with a message saying what is wrong.
"""

from __future__ import annotations

import csv
import io
import json

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CSV, JSON = "text/csv", "application/json"


def model_fn(model_dir):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris()
    model = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    model.label_names = [str(name) for name in data.target_names]
    return model


def _number(value, row, column):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"iris row {row}, column {column}: {value!r} is not a number") from None


def _rows_from_json(value):
    if isinstance(value, dict):
        value = value.get("instances", value.get("inputs", value.get("data")))
    if not isinstance(value, list) or not value:
        raise ValueError("iris JSON input must be a non-empty list of rows, one row, "
                         '{"instances": [...]}, or records keyed by ' + ", ".join(FEATURES))
    if not isinstance(value[0], (list, dict)):
        value = [value]  # a single row
    rows = []
    for i, row in enumerate(value, 1):
        if isinstance(row, dict):
            missing = [name for name in FEATURES if name not in row]
            if missing:
                raise ValueError(f"iris record {i} lacks {', '.join(missing)}")
            row = [row[name] for name in FEATURES]
        rows.append(row)
    return rows


def _rows_from_csv(text):
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if rows and rows[0] and rows[0][0].strip().lower().startswith(("sepal", "petal")):
        rows = rows[1:]  # a header row
    if not rows:
        raise ValueError("iris CSV input has no rows")
    return rows


def input_fn(request_body, request_content_type):
    kind = (request_content_type or CSV).split(";")[0].strip().lower()
    text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    if kind == CSV:
        rows = _rows_from_csv(text)
    elif kind == JSON:
        rows = _rows_from_json(json.loads(text))
    else:
        raise ValueError(f"iris model accepts text/csv or application/json, not {request_content_type}")
    for i, row in enumerate(rows, 1):
        if len(row) != len(FEATURES):
            raise ValueError(f"iris model expects {len(FEATURES)} numeric columns "
                             f"({', '.join(FEATURES)}) per row; row {i} has {len(row)}")
    return [[_number(v, i, j) for j, v in enumerate(row, 1)] for i, row in enumerate(rows, 1)]


def predict_fn(input_data, model):
    probabilities = model.predict_proba(input_data)
    best = probabilities.argmax(axis=1)
    return [{"label": model.label_names[k], "class_index": int(k), "probability": round(float(p[k]), 6)}
            for k, p in zip(best, probabilities)]


def output_fn(prediction, accept):
    wanted = [part.split(";")[0].strip().lower() for part in (accept or "").split(",") if part.strip()]
    for kind in wanted or [JSON]:
        if kind == CSV:
            return "".join(f"{p['label']},{p['probability']}\n" for p in prediction), CSV
        if kind in (JSON, "*/*"):
            return json.dumps({"predictions": prediction}), JSON
    raise ValueError(f"iris model answers text/csv or application/json, not {accept}")
