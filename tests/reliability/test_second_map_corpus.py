"""The second map's bad-input corpus (SPEC §15, issue 13): identity by name, classification, and
errors after acceptance. Same harness as test_bad_inputs: each case raises one sm_async_nb error
in one line, uploads nothing it shouldn't, and loses no journal row."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sm_async_nb as sma
from sm_async_nb.aws.s3uri import S3Uri
from sm_async_nb.errors import JournalError
from sm_async_nb.journal import Journal

V = sma.ValidationError
OK_ROW = "5.1,3.5,1.4,0.2"


def many(payloads: Any, **kw: Any) -> Callable[[Any], Any]:
    return lambda c: c.client.submit_many(c.ep, payloads, **kw)


def removed_output(c: Any) -> sma.Invocation:
    inv = c.client.submit(c.ep, OK_ROW, accept="text/csv").wait(timeout=30)
    location = S3Uri.parse(inv.output_location)
    c.stack.boto3_client("s3").delete_object(Bucket=location.bucket, Key=location.key)  # a lifecycle rule
    return inv


def removed_part(c: Any) -> sma.InvocationBatch:
    batch = c.client.submit_many(c.ep, [OK_ROW, OK_ROW], accept="text/csv").wait(timeout=30)
    location = S3Uri.parse(batch.parts()[1].output_location)
    c.stack.boto3_client("s3").delete_object(Bucket=location.bucket, Key=location.key)
    return batch


class Exploding:
    @property
    def frame(self):
        raise RuntimeError("the database is down")


def other_target(c: Any) -> Any:
    """One journal shared with another AWS target (here: the same stack under another region name)."""
    import boto3

    with sma.AsyncInferenceClient(f"s3://{c.stack.input_bucket}/inputs/", journal_path=c.client.journal.path,
                                  endpoint_urls=c.stack.endpoint_urls,
                                  session=boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                                        region_name="eu-west-1")) as elsewhere:
        elsewhere.journal.add_missing([c.client.journal.get(c.client.submit(c.ep, OK_ROW).inference_id).replace(
            inference_id="shared-id", origin=elsewhere.origin)])
    return c.client.submit(c.ep, OK_ROW, inference_id="shared-id")


def journal_in(c: Any, make: Callable[[Any], Any]) -> Journal:
    return Journal(make(c.tmp))


def file_as_folder(tmp: Any) -> Any:
    (tmp / "plain-file").write_text("x")
    return tmp / "plain-file" / "journal.sqlite3"


def bad_schema_version(tmp: Any) -> Any:
    path = tmp / "bad-version.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 'two' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    return path


def stack_down(c: Any) -> Any:
    """A client whose AWS endpoints no longer answer (the stack stopped, or the network is down)."""
    inv = c.client.submit(c.ep, OK_ROW)
    dead = dict.fromkeys(c.stack.endpoint_urls, "http://127.0.0.1:9")
    client = sma.AsyncInferenceClient(f"s3://{c.stack.input_bucket}/inputs/", session=c.stack.session(),
                                      endpoint_urls=dead, journal_path=c.client.journal.path)
    c.stage(c.client.journal, inv.inference_id, origin=client.origin)  # the same rows, now unreachable
    return client.invocation(inv.inference_id)


CASES: list[tuple[str, Callable[[Any], Any], type, str, str]] = [
    # submit_many is given one thing instead of a list of payloads
    ("many-str", many("1,2\n3,4\n"), V, "not one str: use submit", "nothing"),
    ("many-bytes", many(b"1,2"), V, "not one bytes", "nothing"),
    ("many-dataframe", many(pd.DataFrame({"a": [1, 2]})), V, "not a DataFrame .* submit_dataframe", "nothing"),
    ("many-series", many(pd.Series([1, 2])), V, "not a Series", "nothing"),
    ("many-dict", many({"a": 1}), V, "not a dict", "nothing"),
    ("many-array", many(np.arange(3)), V, "not a ndarray", "nothing"),
    ("many-number", many(42), V, "not a int", "nothing"),
    # identity: one name, one request
    ("batch-duplicate-ids", many([OK_ROW, OK_ROW], inference_id=["same", "same"]), V,
     "inference_id 'same' is given to more than one payload", "nothing"),
    ("batch-duplicate-filenames", many([OK_ROW, OK_ROW], filename=["out.csv", "out.csv"]), V,
     "filename 'out.csv' is given to more than one payload", "nothing"),
    ("filename-in-use", lambda c: (c.client.submit(c.ep, OK_ROW, filename="taken.out"),
                                   c.client.submit(c.ep, "6.7,3.0,5.2,2.3", filename="taken.out")), V,
     "Filename 'taken.out' already names the output of invocation", "output"),
    ("prefix-reused-with-fewer-rows", lambda c: (c.client.submit_many(c.ep, [OK_ROW] * 3, inference_id="pfx-a"),
                                                 c.client.submit_many(c.ep, [OK_ROW] * 2, inference_id="pfx-a")), V,
     "prefix 'pfx-a' already names a batch of 3", "output"),
    ("prefix-reused-with-more-rows", lambda c: (
        c.client.submit_dataframe(c.ep, pd.DataFrame([[1, 2]] * 2, index=["x", "y"]), 1, inference_id="pfx-b"),
        c.client.submit_dataframe(c.ep, pd.DataFrame([[1, 2]] * 3, index=["x", "y", "z"]), 1,
                                  inference_id="pfx-b")), V, "already names a batch of 2 dataframe", "output"),
    ("prefix-reused-for-another-kind", lambda c: (
        c.client.submit_many(c.ep, [OK_ROW] * 2, inference_id="pfx-c"),
        c.client.submit_dataframe(c.ep, pd.DataFrame([[1, 2]] * 2), 1, inference_id="pfx-c")), V,
     "already names a batch", "output"),
    ("id-of-another-target", other_target, V, "already tracked against another AWS target", "output"),
    ("resubmit-unknown", lambda c: c.client.resubmit("no-such-id"), V, "No tracked invocation 'no-such-id'", "nothing"),
    ("resubmit-pending", lambda c: c.client.resubmit(c.client.submit(c.ep, OK_ROW).inference_id), V,
     "only ERROR, FAILED or EXPIRED", "output"),
    # payload contents
    ("lone-surrogate", lambda c: c.client.submit(c.ep, "5.1,\ud800,1.4"), V, "lone surrogate", "nothing"),
    ("lone-surrogate-in-batch", many([OK_ROW, "x\udfffy"]), V, "payload 1: .*lone surrogate", "nothing"),
    ("duplicate-columns-jsonl", lambda c: c.client.submit(c.ep, pd.DataFrame([[1, 2]], columns=["a", "a"]),
                                                           content_type="application/jsonlines"), V,
     "duplicate column names", "nothing"),
    ("duplicate-columns-parquet", lambda c: c.client.submit_dataframe(
        c.ep, pd.DataFrame([[1, 2]], columns=["a", "a"]), content_type="application/x-parquet"), V,
     "duplicate column names", "nothing"),
    ("ttl-numpy-float", lambda c: c.client.submit(c.ep, OK_ROW, request_ttl_seconds=np.float64(60)), V,
     "RequestTTLSeconds .* integer", "nothing"),
    ("ttl-bool", lambda c: c.client.submit(c.ep, OK_ROW, invocation_timeout_seconds=True), V,
     "InvocationTimeoutSeconds True", "nothing"),
    # the magics
    ("magic-o-keyword", lambda c: c.shell().run_cell_magic("invoke_async", f"{c.ep} -o class", OK_ROW), V,
     "-o 'class' is not a valid Python variable name", "nothing"),
    ("magic-o-not-identifier", lambda c: c.shell().run_cell_magic("invoke_async", f"{c.ep} -o 1x", OK_ROW), V,
     "-o '1x' is not a valid", "nothing"),
    ("magic-result-o-keyword", lambda c: c.shell().run_line_magic("sm_async", "result whatever -o for"), V,
     "-o 'for' is not a valid", "nothing"),
    ("magic-property-raises", lambda c: (c.shell().user_ns.update(src=Exploding()), c.magic(f"{c.ep} src.frame")), V,
     "reading .frame of the Exploding raised RuntimeError: the database is down", "nothing"),
    ("magic-wait-nan", lambda c: c.shell().run_line_magic("sm_async", "wait --timeout nan"), V,
     "timeout must be a number of seconds", "nothing-or-pending"),
    # waiting
    ("wait-nan", lambda c: c.client.submit(c.ep, OK_ROW).wait(timeout=math.nan), V, "timeout must be", "output"),
    ("wait-negative", lambda c: c.client.submit(c.ep, OK_ROW).wait(timeout=-1), V, "timeout must be", "output"),
    ("wait-str", lambda c: c.client.submit(c.ep, OK_ROW).wait(timeout="10"), V, "not '10'", "output"),
    # errors after acceptance
    ("output-removed-result", lambda c: removed_output(c).result(), sma.OutputMissing,
     "is no longer at s3://.* lifecycle rule", "output"),
    ("output-removed-raw", lambda c: removed_output(c).raw(), sma.OutputMissing, "no longer at", "output"),
    ("output-removed-in-batch", lambda c: removed_part(c).result(), sma.OutputMissing, "no longer at", "output"),
    ("stack-down-result", lambda c: stack_down(c).result(), sma.AwsError, "Could not reach AWS .* still running",
     "output"),
    ("stack-down-wait", lambda c: stack_down(c).wait(timeout=5), sma.AwsError, "Could not reach AWS", "output"),
    # the journal
    ("journal-under-a-file", lambda c: journal_in(c, file_as_folder), JournalError, "is a file, not a folder",
     "nothing"),
    ("journal-bad-schema-version", lambda c: journal_in(c, bad_schema_version), JournalError, "cannot be read",
     "nothing"),
]


def test_the_second_corpus_is_big_enough():
    assert len(CASES) >= 35 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, action, error, pattern, leaves", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, action, error, pattern, leaves, stack, input_keys, tmp_path, corpus_context):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        ctx = corpus_context(client, {})
        keeper = client.submit(stack.endpoint_name, OK_ROW, label="already-there")
        rows_before = {r.inference_id for r in client.records(include_other_origins=True)}
        keys_before = input_keys()
        ctx.refused(action, error, pattern)
        rows_after = client.records(include_other_origins=True)
        assert rows_before <= {r.inference_id for r in rows_after}, "a journal row was lost"
        assert client.journal.get(keeper.inference_id).input_location == keeper.input_location
        new_rows = [r for r in rows_after if r.inference_id not in rows_before]
        if leaves == "nothing":
            assert new_rows == [] and input_keys() == keys_before
        elif leaves == "output":  # valid requests went through first; the bad step added no ERROR row
            assert all(r.status is not sma.Status.ERROR for r in new_rows)
