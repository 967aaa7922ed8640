"""A sentiment classifier that speaks the Hugging Face inference toolkit's convention
(``text-classification`` pipelines on SageMaker).

Inference-toolkit handlers. Input (application/json): ``{"inputs": "one text"}`` or
``{"inputs": ["text", ...]}``, optionally with ``"parameters"``; output: one
``{"label": "POSITIVE" | "NEGATIVE", "score": p}`` per text, as a pipeline answers. A body without
``"inputs"`` is refused with the toolkit's message. ``model_fn`` fits a TF-IDF + logistic
regression on the short labelled reviews below (scikit-learn, no download): small, but a real
model that scores text it has not seen.
"""

from __future__ import annotations

import json

REVIEWS = [
    ("a wonderful, moving film with a great cast", 1), ("brilliant writing and a superb ending", 1),
    ("i loved every minute of it", 1), ("funny, warm and beautifully shot", 1),
    ("a delight from start to finish", 1), ("the best thing i have seen this year", 1),
    ("great acting and a clever story", 1), ("charming and smart, highly recommended", 1),
    ("dull, slow and far too long", 0), ("a boring mess with a terrible script", 0),
    ("i hated the ending and the acting was bad", 0), ("a waste of time, poorly made", 0),
    ("awful dialogue and a predictable plot", 0), ("the worst film i have seen this year", 0),
    ("tedious and badly acted", 0), ("clumsy, noisy and not funny at all", 0),
]
LABELS = ("NEGATIVE", "POSITIVE")


def model_fn(model_dir):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = zip(*REVIEWS)
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=10.0)).fit(texts, labels)


def input_fn(request_body, request_content_type):
    document = json.loads(request_body)
    if not isinstance(document, dict) or "inputs" not in document:
        raise ValueError("The request body must contain 'inputs' (the Hugging Face inference toolkit's format)")
    texts = document["inputs"]
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("'inputs' must be a text or a list of texts")
    return texts


def predict_fn(texts, model):
    probabilities = model.predict_proba(texts)
    return [{"label": LABELS[int(p.argmax())], "score": round(float(p.max()), 4)} for p in probabilities]


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
