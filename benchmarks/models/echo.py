"""The benchmark model as an inference-toolkit handler file: returns its CSV input unchanged."""


def input_fn(body, content_type):
    return body


def predict_fn(data, model):
    return data


def output_fn(prediction, accept):
    return prediction, "text/csv"
