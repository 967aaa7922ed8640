"""The bad-input corpus: every case gives one clear error, uploads nothing it shouldn't and loses
no journal row. Each row of CASES is (id, what the user does, expected error, message pattern,
what may be left behind)."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sm_async_nb as sma
from sm_async_nb.errors import DecodeError, JournalError
from sm_async_nb.journal import SCHEMA_VERSION, Journal

OK_ROW = "5.1,3.5,1.4,0.2"


def _pickled_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


OUTPUT_MODELS = {
    "weird": lambda body, ct: (b"\x00\x01binary", "application/x-weird"),
    "parquet": lambda body, ct: (b"PAR1 definitely not parquet PAR1", "application/x-parquet"),
    "npy": lambda body, ct: (b"\x93NUMPY\x01\x00garbage", "application/x-npy"),
    "pickled": lambda body, ct: (_pickled_npy(), "application/x-npy"),
}


def sparse_file(tmp: Path, size: int) -> Path:
    path = tmp / "huge.bin"
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def corrupt_journal(ctx: Any):
    path = ctx.tmp / "corrupt.sqlite3"
    path.write_bytes(b"not sqlite at all" * 64)
    return Journal(path)


def newer_journal(ctx: Any):
    path = ctx.tmp / "newer.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ?", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    return Journal(path)


V, S = sma.ValidationError, sma.SubmissionError
submit = lambda **kw: (lambda c: c.client.submit(c.ep, OK_ROW, **kw))  # noqa: E731

# (id, action, error, message pattern, leaves: "nothing" | "error-row" | "output")
CASES: list[tuple[str, Callable[[Any], Any], type, str, str]] = [
    ("endpoint-chars", lambda c: c.client.submit("bad_name", OK_ROW), V, "EndpointName 'bad_name'", "nothing"),
    ("endpoint-length", lambda c: c.client.submit("e" * 64, OK_ROW), V, "at most 63 characters", "nothing"),
    ("content-type-ascii", submit(content_type="text/csvé"), V, "ContentType", "nothing"),
    ("content-type-length", submit(content_type="t" * 1025), V, "at most 1024", "nothing"),
    ("accept-newline", submit(accept="text/csv\nX: y"), V, "Accept .* no control", "nothing"),
    ("custom-attributes-length", submit(custom_attributes="a" * 1025), V, "CustomAttributes", "nothing"),
    ("custom-attributes-ascii", submit(custom_attributes="naïve"), V, "CustomAttributes", "nothing"),
    ("inference-id-length", submit(inference_id="i" * 65), V, "InferenceId .* 1..64", "nothing"),
    ("inference-id-space", submit(inference_id=" x"), V, "not starting with whitespace", "nothing"),
    ("inference-id-control", submit(inference_id="a\x01b"), V, "InferenceId", "nothing"),
    ("ttl-low", submit(request_ttl_seconds=59), V, "RequestTTLSeconds 59 .* 60 to 21600", "nothing"),
    ("ttl-high", submit(request_ttl_seconds=21601), V, "RequestTTLSeconds 21601", "nothing"),
    ("ttl-string", submit(request_ttl_seconds="600"), V, "RequestTTLSeconds '600'", "nothing"),
    ("timeout-zero", submit(invocation_timeout_seconds=0), V, "InvocationTimeoutSeconds 0 .* 1 to 3600", "nothing"),
    ("timeout-high", submit(invocation_timeout_seconds=3601), V, "InvocationTimeoutSeconds 3601", "nothing"),
    ("timeout-float", submit(invocation_timeout_seconds=1.5), V, "InvocationTimeoutSeconds 1.5", "nothing"),
    ("extension-s3", submit(s3_output_path_extension="s3:x"), V, "not starting with s3:", "nothing"),
    ("extension-space", submit(s3_output_path_extension="a b"), V, "S3OutputPathExtension", "nothing"),
    ("extension-length", submit(s3_output_path_extension="a" * 513), V, "1..512", "nothing"),
    ("filename-dots", submit(filename="a.b.c"), V, "at most one '.'", "nothing"),
    ("filename-start", submit(filename="_out"), V, "starting with a letter or digit", "nothing"),
    ("filename-length", submit(filename="f" * 33), V, "1..32", "nothing"),
    ("label-type", submit(label=42), V, "label must be a string", "nothing"),
    ("empty-bytes", lambda c: c.client.submit(c.ep, b""), V, "empty", "nothing"),
    ("empty-str", lambda c: c.client.submit(c.ep, ""), V, "empty", "nothing"),
    ("unsupported-type", lambda c: c.client.submit(c.ep, {1, 2}), V, "Cannot send a set payload", "nothing"),
    ("object-array", lambda c: c.client.submit(c.ep, np.array([object()])), V, "object", "nothing"),
    ("json-unserialisable", lambda c: c.client.submit(c.ep, {"a": object()}), V, "object", "nothing"),
    ("dataframe-as-png", lambda c: c.client.submit(c.ep, pd.DataFrame({"a": [1]}), content_type="image/png"),
     V, "image/png", "nothing"),
    ("missing-path", lambda c: c.client.submit(c.ep, c.tmp / "nope.csv"), V, "nope.csv", "nothing"),
    ("directory-path", lambda c: c.client.submit(c.ep, c.tmp), V, "directory", "nothing"),
    ("inline-too-large", lambda c: c.client.submit(c.ep, "x" * 128_001, inline=True), V,
     "128,001 bytes is too large to send inline", "nothing"),
    ("payload-over-1gb", lambda c: c.client.submit(c.ep, sparse_file(c.tmp, 1_000_000_001)), V, "1 GB", "nothing"),
    ("rows-per-request-zero", lambda c: c.client.submit_dataframe(c.ep, pd.DataFrame({"a": [1]}), 0), V,
     "rows_per_request must be an integer from 1 to", "nothing"),
    ("empty-dataframe", lambda c: c.client.submit_dataframe(c.ep, pd.DataFrame({"a": []})), V,
     "DataFrame is empty", "nothing"),
    ("batch-filename-str", lambda c: c.client.submit_many(c.ep, ["1", "2"], filename="out.csv"), V,
     "one filename per payload", "nothing"),
    ("batch-ids-length", lambda c: c.client.submit_many(c.ep, ["1", "2"], inference_id=["a"]), V,
     "1 entries for 2 payloads", "nothing"),
    ("one-bad-payload-in-batch", lambda c: c.client.submit_many(c.ep, [OK_ROW, OK_ROW, b""]), V,
     "payload 2", "nothing"),
    ("magic-missing-variable", lambda c: c.magic(f"{c.ep} not_defined_anywhere"), V,
     "No variable named 'not_defined_anywhere'", "nothing"),
    ("magic-missing-attribute", lambda c: (c.shell().user_ns.update(holder=object()),
                                           c.magic(f"{c.ep} holder.frame")), V, "has no attribute 'frame'", "nothing"),
    ("magic-wrong-type", lambda c: (c.shell().user_ns.update(fn=len), c.magic(f"{c.ep} fn")), V,
     "Cannot send a builtin_function_or_method payload", "nothing"),
    ("magic-rows-per-request-not-frame", lambda c: (c.shell().user_ns.update(d={"a": 1}),
                                                    c.magic(f"{c.ep} d --rows-per-request 5")), V,
     "needs a pandas DataFrame, not dict", "nothing"),
    ("nonexistent-bucket", lambda c: sma.AsyncInferenceClient(
        "s3://no-such-bucket-here/x/", session=c.stack.session(), endpoint_urls=c.stack.endpoint_urls,
        journal_path=c.tmp / "journal.sqlite3").submit(c.ep, OK_ROW), S,
     "Bucket 'no-such-bucket-here' does not exist", "error-row"),
    ("access-denied", lambda c: (c.deny("PutObject", "AccessDenied", 403, "Access Denied"),
                                 c.client.submit(c.ep, OK_ROW)), S, "Access denied on bucket", "error-row"),
    ("expired-credentials", lambda c: (c.deny("PutObject", "ExpiredToken", 400, "The provided token has expired."),
                                       c.client.submit(c.ep, OK_ROW)), S, "credentials have expired", "error-row"),
    ("missing-endpoint", lambda c: c.client.submit("no-such-endpoint", OK_ROW), V,
     "Endpoint 'no-such-endpoint' does not exist in .*nothing was uploaded or journaled", "nothing"),
    ("missing-endpoint-describe-denied", lambda c: (c.deny_describe(), c.client.submit("no-such-endpoint", OK_ROW)),
     S, "Endpoint 'no-such-endpoint' not found", "error-row"),  # then the invoke finds it, and the input goes
    ("non-async-endpoint", lambda c: c.client.submit(c.endpoints["sync"], OK_ROW), S,
     "ValidationError: .*asynchronous", "error-row"),
    ("reused-inference-id", lambda c: (c.client.submit(c.ep, OK_ROW, inference_id="once-only"),
                                       c.client.submit(c.ep, "6.7,3.0,5.2,2.3", inference_id="once-only")), V,
     "already used for a different request", "output"),
    ("unknown-output-type", lambda c: c.completed("weird").result(), DecodeError,
     r"application/x-weird .*use \.raw\(\)", "output"),
    ("corrupt-parquet-output", lambda c: c.completed("parquet").result(), DecodeError, r"parquet.*\.raw\(\)", "output"),
    ("corrupt-npy-output", lambda c: c.completed("npy").result(), DecodeError, r"x-npy.*\.raw\(\)", "output"),
    ("pickled-npy-output", lambda c: c.completed("pickled").result(), DecodeError, "never unpickles", "output"),
    ("corrupt-journal", corrupt_journal, JournalError, "cannot be read .* move it aside", "nothing"),
    ("newer-journal", newer_journal, JournalError, "newer sm_async_nb", "nothing"),
]


@pytest.fixture(scope="module")
def endpoints(stack):
    names = {key: f"corpus-{key}" for key in OUTPUT_MODELS}
    for key, model in OUTPUT_MODELS.items():
        stack.add_endpoint(names[key], model=model)
    names["sync"] = "corpus-sync"
    stack.add_endpoint("corpus-sync", asynchronous=False)
    return names


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id, action, error, pattern, leaves", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case_id, action, error, pattern, leaves, stack, endpoints, input_keys, tmp_path, corpus_context):
    with stack.client(journal_path=tmp_path / "journal.sqlite3") as client:
        ctx = corpus_context(client, endpoints)
        keeper = client.submit(stack.endpoint_name, OK_ROW, label="already-there")
        rows_before = {r.inference_id for r in client.records()}
        keys_before = input_keys()
        with pytest.raises(error) as caught:
            action(ctx)
        message = str(caught.value)
        assert "\n" not in message and len(message) < 600, message
        assert caught.match(pattern)
        rows_after = client.records()
        assert rows_before <= {r.inference_id for r in rows_after}, "a journal row was lost"
        assert client.journal.get(keeper.inference_id).input_location == keeper.input_location
        new_rows = [r for r in rows_after if r.inference_id not in rows_before]
        new_keys = input_keys() - keys_before
        if leaves == "nothing":
            assert new_rows == [] and new_keys == set()
        elif leaves == "error-row":
            assert new_keys == set(), f"uploaded {new_keys}"
            assert [r.status for r in new_rows] == [sma.Status.ERROR] and new_rows[0].error
        else:  # a valid request went through first; the bad step itself added nothing more
            assert len(new_rows) <= 1 and len(new_keys) <= 1
