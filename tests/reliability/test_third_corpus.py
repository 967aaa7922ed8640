"""Issue 22's "also found" and their neighbours, in test_second_map_corpus's harness: each case raises one
sm_async_nb error in one line, uploads nothing it shouldn't, and loses no journal row. The mechanisms
themselves are in test_decided_once, test_two_clocks and test_outlives_error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sm_async_nb as sma
from sm_async_nb.errors import ConfigurationError, NotTracked

V = sma.ValidationError
OK_ROW = "5.1,3.5,1.4,0.2"
MISSING = "no-such-endpoint-3"
SURROGATE = "x\ud800y"


def objects(*values: Any) -> pd.DataFrame:
    return pd.DataFrame({"a": np.array(values, dtype=object)}, dtype=object)


def dataset(c: Any) -> str:
    path = c.tmp / "d.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    return str(path)


def client_with(c: Any, **kwargs: Any) -> Any:
    given = {"journal_path": c.tmp / "other.sqlite3", "endpoint_urls": c.stack.endpoint_urls, **kwargs}
    return sma.AsyncInferenceClient(f"s3://{c.stack.input_bucket}/inputs/", session=c.stack.session(), **given)


def s3_prefix(c: Any) -> str:
    s3 = c.stack.boto3_client("s3")
    s3.put_object(Bucket=c.stack.input_bucket, Key="corpus3/a.csv", Body=b"1\n")
    return f"s3://{c.stack.input_bucket}/corpus3/"


CASES: list[tuple[str, Callable[[Any], Any], type, str, str]] = [
    # a lone surrogate anywhere text becomes bytes
    ("surrogate-dict", lambda c: c.client.submit(c.ep, {"text": SURROGATE}), V, "lone surrogate", "nothing"),
    ("surrogate-dict-key", lambda c: c.client.submit(c.ep, {SURROGATE: 1}), V, "lone surrogate", "nothing"),
    ("surrogate-list", lambda c: c.client.submit(c.ep, [1, SURROGATE]), V, "lone surrogate", "nothing"),
    ("surrogate-jsonlines", lambda c: c.client.submit(c.ep, [{"a": SURROGATE}], content_type="application/jsonlines"),
     V, "lone surrogate", "nothing"),
    ("surrogate-frame-csv", lambda c: c.client.submit(c.ep, objects(SURROGATE)), V, "lone surrogate", "nothing"),
    ("surrogate-frame-json", lambda c: c.client.submit(c.ep, objects(SURROGATE), content_type="application/json"), V,
     "lone surrogate", "nothing"),
    ("surrogate-frame-parquet", lambda c: c.client.submit(c.ep, objects(SURROGATE),
                                                          content_type="application/x-parquet"), V,
     "lone surrogate", "nothing"),
    ("surrogate-dataframe-batch", lambda c: c.client.submit_dataframe(c.ep, objects("ok", SURROGATE), 1), V,
     "payload 1: .*lone surrogate", "nothing"),
    ("surrogate-array-csv", lambda c: c.client.submit(c.ep, np.array([SURROGATE]), content_type="text/csv"), V,
     "lone surrogate", "nothing"),
    ("surrogate-label", lambda c: c.client.submit(c.ep, OK_ROW, label=SURROGATE), V, "label .* lone surrogate",
     "nothing"),
    ("surrogate-dataset-path", lambda c: c.client.submit_dataset(c.ep, f"/tmp/{SURROGATE}.csv"), V,
     "not valid UTF-8", "nothing"),
    # numbers of another kind
    ("rows-per-request-numpy-float", lambda c: c.client.submit_dataframe(c.ep, pd.DataFrame({"a": [1, 2]}),
                                                                        np.float64(2)), V,
     r"rows_per_request must be an integer from 1 to 10,000,000, not np.float64\(2.0\)", "nothing"),
    ("rows-per-request-numpy-bool", lambda c: c.client.submit_dataset(c.ep, dataset(c), np.bool_(True)), V,
     "rows_per_request must be an integer", "nothing"),
    # ids and batches the journal does not track
    ("invocation-never-tracked", lambda c: c.client.invocation("never-submitted-here"), NotTracked,
     "'never-submitted-here' is not tracked by this journal .* submitted through this client", "nothing"),
    ("invocation-not-a-str", lambda c: c.client.invocation(42), NotTracked, "not tracked", "nothing"),
    ("batch-never-tracked", lambda c: c.client.batch("batch-nope"), NotTracked, "'batch-nope' is not tracked",
     "nothing"),
    ("forgotten-handle", lambda c: (lambda inv: (inv.forget(), inv.status))(c.client.submit(c.ep, OK_ROW)),
     NotTracked, "no longer tracked by this journal .* forgotten", "output"),
    ("forget-none", lambda c: c.client.forget(None), V, "inference_ids must be an inference id", "nothing"),
    ("resubmit-int", lambda c: c.client.resubmit(5), V, "inference_ids must be an inference id", "nothing"),
    ("records-bad-status", lambda c: c.client.records(statuses="DONE"), V, "statuses must be statuses", "nothing"),
    ("batch-resubmit-bad-status", lambda c: c.client.submit_many(c.ep, [OK_ROW]).resubmit(statuses="NOPE"), V,
     "statuses must be statuses", "output"),
    # an endpoint that does not exist: asked once, before anything is uploaded or journaled
    ("missing-endpoint-submit", lambda c: c.client.submit(MISSING, OK_ROW), V,
     f"Endpoint '{MISSING}' does not exist in .* nothing was uploaded or journaled", "nothing"),
    ("missing-endpoint-inline", lambda c: c.client.submit(MISSING, OK_ROW, inline=True), V, "does not exist",
     "nothing"),
    ("missing-endpoint-many", lambda c: c.client.submit_many(MISSING, [OK_ROW] * 3), V, "does not exist", "nothing"),
    ("missing-endpoint-dataframe", lambda c: c.client.submit_dataframe(MISSING, pd.DataFrame({"a": [1, 2]}), 1), V,
     "does not exist", "nothing"),
    ("missing-endpoint-s3", lambda c: c.client.submit_s3(MISSING, s3_prefix(c)), V, "does not exist", "nothing"),
    ("missing-endpoint-dataset", lambda c: c.client.submit_dataset(MISSING, dataset(c)), V, "does not exist",
     "nothing"),
    ("missing-endpoint-magic", lambda c: c.shell().run_cell_magic("invoke_async", MISSING, OK_ROW), V,
     "does not exist", "nothing"),
    # permissions: the one the refused call needs
    ("list-denied-submit-s3", lambda c: (c.deny("ListObjectsV2", "AccessDenied", 403, "Access Denied"),
                                         c.client.submit_s3(c.ep, s3_prefix(c))), sma.AwsError,
     r"\(ListObjectsV2 needs s3:ListBucket\).*Ask for s3:ListBucket", "nothing"),
    ("head-denied-submit-s3", lambda c: (c.deny("HeadObject", "AccessDenied", 403, "Access Denied"),
                                         c.client.submit_s3(c.ep, [f"{s3_prefix(c)}a.csv"])), sma.AwsError,
     r"HeadObject needs s3:GetObject", "nothing"),
    # the client's own arguments
    ("client-max-workers-str", lambda c: client_with(c, max_workers="4"), ConfigurationError,
     "max_workers must be a positive integer, not '4'", "nothing"),
    ("client-max-workers-zero", lambda c: client_with(c, max_workers=0), ConfigurationError,
     "max_workers must be a positive integer", "nothing"),
    ("client-journal-path-int", lambda c: client_with(c, journal_path=5), ConfigurationError,
     "journal_path must be a file path", "nothing"),
    ("client-endpoint-urls-str", lambda c: client_with(c, endpoint_urls="http://127.0.0.1:1"), ConfigurationError,
     "endpoint_urls must map boto3 service names to URLs", "nothing"),
    # results
    ("result-unknown-reader-option", lambda c: c.client.submit(c.ep, OK_ROW, accept="text/csv").wait(timeout=30)
     .result(bogus=1), V, r"reader options \['bogus'\] do not fit this text/csv output", "output"),
]


def test_the_third_corpus_is_big_enough():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, action, error, pattern, leaves", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, action, error, pattern, leaves, stack, input_keys, tmp_path, corpus_context):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        ctx = corpus_context(client, {})
        keeper = client.submit(stack.endpoint_name, OK_ROW, label="already-there")
        rows_before = {r.inference_id for r in client.records(include_other_origins=True)}
        keys_before = input_keys()
        received = len(stack.records())
        ctx.refused(action, error, pattern)
        rows_after = client.records(include_other_origins=True)
        if case_id != "forgotten-handle":
            assert rows_before <= {r.inference_id for r in rows_after}, "a journal row was lost"
        assert client.journal.get(keeper.inference_id).input_location == keeper.input_location
        new_rows = [r for r in rows_after if r.inference_id not in rows_before]
        if leaves == "nothing":
            assert new_rows == []
            assert input_keys() - keys_before <= {k for k in input_keys() if k.startswith("corpus3/")}
            if case_id.startswith("missing-endpoint"):
                assert new_rows == [] and input_keys() == keys_before and len(stack.records()) == received
        elif leaves == "output":
            assert all(r.status is not sma.Status.ERROR for r in new_rows)


@pytest.mark.parametrize("value", [np.int64(2), np.int32(2), np.uint16(2), 2])
def test_numpy_integers_are_integers_everywhere(stack, tmp_path, value):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        frame = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]] * 3)
        batch = client.submit_dataframe(stack.endpoint_name, frame, rows_per_request=value,
                                        request_ttl_seconds=np.int64(600))
        assert len(batch) == 2
        path = tmp_path / "iris.csv"
        frame.to_csv(path, index=False)
        assert len(client.submit_dataset(stack.endpoint_name, path, rows_per_request=value)) == 2


def test_submit_s3_pattern_is_the_dataset_glob(stack, tmp_path):
    s3 = stack.boto3_client("s3")
    for key in ("glob/a.csv", "glob/b.csv", "glob/sub/c.csv", "glob/sub/deeper/d.csv", "glob/e.json"):
        s3.put_object(Bucket=stack.input_bucket, Key=key, Body=b"5.1,3.5,1.4,0.2\n")
    prefix = f"s3://{stack.input_bucket}/glob/"

    def names(pattern: str) -> list[str]:
        with stack.client(journal_path=tmp_path / f"{len(pattern)}-{abs(hash(pattern))}.sqlite3") as client:
            batch = client.submit_s3(stack.endpoint_name, prefix, pattern=pattern)
            return sorted(p.input_location[len(prefix):] for p in batch.parts())

    assert names("*.csv") == ["a.csv", "b.csv"]  # * never crosses "/"
    assert names("*/*.csv") == ["sub/c.csv"]
    assert names("**/*.csv") == ["a.csv", "b.csv", "sub/c.csv", "sub/deeper/d.csv"]
    assert names("sub/**") == ["sub/c.csv", "sub/deeper/d.csv"]
    assert names("?.json") == ["e.json"]
