"""The JSON conventions of serving containers (SPEC §19): how a DataFrame sent as ``application/json``
is laid out. The settings, the submit options, the magics and the encoder read these; none defines
its own list or default."""

from __future__ import annotations

from typing import Literal

JsonFormat = Literal["records", "split", "instances", "inputs"]

# name -> the document a two-row DataFrame becomes, and who expects it.
JSON_FORMATS: dict[str, str] = {
    "records": '[[1, 2], [3, 4]]: a list of rows (the default; the inference toolkit, most handlers)',
    "split": '{"dataframe_split": {"columns": [...], "data": [[1, 2], [3, 4]]}}: MLflow\'s scoring server',
    "instances": '{"instances": [[1, 2], [3, 4]]}: TF Serving, TorchServe, SageMaker built-in algorithms',
    "inputs": '{"inputs": [...]}: Hugging Face (one column: a list of values; more: a list of rows)',
}
DEFAULT_JSON_FORMAT: JsonFormat = "records"
