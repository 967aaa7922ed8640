"""Every submit method's options: one object, checked once and before any I/O, the same errors
everywhere (an unknown option is a ValidationError with a hint, for submit too), the SPEC's
defaults, numpy integers accepted and bools refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sm_async_nb as sma


def nothing_sent(client) -> bool:
    """No AWS request of any kind and no journal row."""
    return client.aws.counter.counts == {} and client.records() == []


@pytest.fixture
def parquet(tmp_path):
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": list(range(2_500)), "b": [0.5] * 2_500}), path)
    return path


CALLS = {
    "submit": lambda c, **kw: c.submit("ep", "1,2", **kw),
    "submit_many": lambda c, **kw: c.submit_many("ep", ["1,2"], **kw),
    "submit_dataframe": lambda c, **kw: c.submit_dataframe("ep", pd.DataFrame({"a": [1]}), **kw),
    "submit_s3": lambda c, **kw: c.submit_s3("ep", "s3://input-bucket/mine/", **kw),
    "submit_dataset": lambda c, **kw: c.submit_dataset("ep", "/nowhere/at/all.parquet", **kw),
}


@pytest.mark.parametrize("method", CALLS)
def test_an_unknown_option_is_one_validation_error_with_a_hint_for_every_method(client, method):
    with pytest.raises(sma.ValidationError) as caught:
        CALLS[method](client, acept="text/csv")
    assert str(caught.value).startswith(f"Unknown option 'acept' (did you mean accept?); {method} takes: ")
    assert caught.value.parameter == "acept" and "\n" not in str(caught.value)
    assert nothing_sent(client)


@pytest.mark.parametrize("method", CALLS)
def test_a_bad_value_is_refused_before_any_io(client, method):
    # submit_s3 would list the prefix and submit_dataset would look for the file: neither happens.
    with pytest.raises(sma.ValidationError) as caught:
        CALLS[method](client, request_ttl_seconds=10)
    assert caught.value.parameter == "RequestTTLSeconds"
    assert nothing_sent(client)


@pytest.mark.parametrize("method, option, value, reason", [
    ("submit_s3", "inline", True, "inline does not apply to submit_s3: it sends objects already in S3."),
    ("submit_dataset", "inline", True, "inline does not apply to submit_dataset: it sends its slices through S3."),
    ("submit_many", "rows_per_request", 5, "it applies to submit_dataframe and submit_dataset"),
    ("submit", "columns", ["a"], "columns does not apply to submit"),
    ("submit_dataframe", "pattern", "*.csv", "it applies to submit_s3 with a prefix"),
    ("submit_s3", "filename", ["out.json"], "filename does not apply to submit_s3"),
])
def test_an_option_of_another_method_says_so(client, method, option, value, reason):
    with pytest.raises(sma.ValidationError, match=reason) as caught:
        CALLS[method](client, **{option: value})
    assert caught.value.parameter == option and nothing_sent(client)


@pytest.mark.parametrize("method", [m for m in CALLS if m != "submit_s3"])
def test_an_unknown_json_format_is_one_line_before_any_io(client, method):
    with pytest.raises(sma.ValidationError) as caught:
        CALLS[method](client, json_format="dataframe_split", content_type="application/json")
    assert str(caught.value) == "json_format must be one of records, split, instances, inputs, not 'dataframe_split'."
    assert caught.value.parameter == "json_format" and nothing_sent(client)


@pytest.mark.parametrize("method", ["submit_dataframe", "submit_dataset"])
def test_json_format_with_a_content_type_that_is_not_json_is_refused_before_any_io(client, method):
    # Their content type is text/csv unless told otherwise: json_format never changes it.
    with pytest.raises(sma.ValidationError, match="json_format='split' lays out DataFrames sent as application/json, "
                                                  "not text/csv: pass content_type='application/json'") as caught:
        CALLS[method](client, json_format="split")
    assert caught.value.parameter == "json_format" and nothing_sent(client)


def test_json_format_does_not_apply_to_objects_already_in_s3(client):
    with pytest.raises(sma.ValidationError, match="json_format does not apply to submit_s3: it sends objects "
                                                  "already in S3 as they are."):
        CALLS["submit_s3"](client, json_format="split")
    assert nothing_sent(client)


def test_options_given_their_default_are_accepted_where_they_do_not_apply(client, list_keys):
    import boto3

    boto3.client("s3").put_object(Bucket="input-bucket", Key="mine/a.csv", Body=b"1,2\n")
    batch = client.submit_s3("ep", "s3://input-bucket/mine/", inline=False, filename=None, accept=None)
    assert len(batch) == 1 and batch.parts()[0].input_location == "s3://input-bucket/mine/a.csv"


@pytest.mark.parametrize("option, value, message", [
    ("inline", "yes", "inline must be True or False"),
    ("label", 7, "label must be a string"),
    ("rows_per_request", True, "rows_per_request must be an integer from 1 to 10,000,000, not True"),
    ("rows_per_request", 2.0, "not 2.0"),
    ("rows_per_request", 0, "not 0"),
    ("request_ttl_seconds", np.float64(120), "RequestTTLSeconds"),
    ("invocation_timeout_seconds", False, "InvocationTimeoutSeconds False"),
])
def test_values_are_checked_with_one_line_naming_the_rule(client, option, value, message):
    with pytest.raises(sma.ValidationError, match=message):
        client.submit_dataframe("ep", pd.DataFrame({"a": [1, 2]}), **{option: value})
    assert nothing_sent(client)


def test_numpy_integers_are_integers(client):
    batch = client.submit_dataframe("ep", pd.DataFrame({"a": range(5)}), rows_per_request=np.int64(2),
                                    request_ttl_seconds=np.int32(120))
    parts = batch.parts()
    assert [p.row_count for p in parts] == [2, 2, 1]
    assert parts[0].request["request_ttl_seconds"] == 120 and type(parts[0].request["request_ttl_seconds"]) is int


def test_the_specs_rows_per_request_defaults(client, parquet):
    frame = client.submit_dataframe("ep", pd.DataFrame({"a": range(250)}))
    assert [p.row_count for p in frame.parts()] == [100, 100, 50]  # SPEC §3: 100 for a DataFrame
    dataset = client.submit_dataset("ep", parquet)
    assert [p.row_count for p in dataset.parts()] == [1_000, 1_000, 500]  # SPEC §12: 1000 for a dataset
    default = client.submit_dataset("ep", parquet, rows_per_request=None, inference_id="by-default")
    assert len(default) == 3  # None (what the magics pass when no --rows-per-request) is the default


def test_a_dataset_prefix_must_be_one_str_before_the_source_is_read(client):
    with pytest.raises(sma.ValidationError, match="one prefix"):
        client.submit_dataset("ep", "/nowhere/at/all.parquet", inference_id=["a", "b"])
    with pytest.raises(sma.ValidationError, match="InferenceId"):
        client.submit_dataset("ep", "/nowhere/at/all.parquet", inference_id="x" * 61)  # x...-0000 is 66 > 64
    assert nothing_sent(client)


def test_ids_given_to_submit_s3_are_checked_before_s3_is_listed(client):
    with pytest.raises(sma.ValidationError) as caught:
        client.submit_s3("ep", "s3://input-bucket/mine/", inference_id=["fine", " leading-space"])
    assert caught.value.parameter == "InferenceId" and nothing_sent(client)
    with pytest.raises(sma.ValidationError, match="given to more than one payload"):
        client.submit_s3("ep", "s3://input-bucket/mine/", inference_id=["twice", "twice"])
    assert nothing_sent(client)


@pytest.mark.parametrize("filename", [5, b"out.json"])
def test_per_request_names_of_another_type_are_one_validation_error(client, filename):
    with pytest.raises(sma.ValidationError, match="filename must be a list with one filename per payload"):
        client.submit_many("ep", ["1,2", "3,4"], filename=filename)
    assert nothing_sent(client)
