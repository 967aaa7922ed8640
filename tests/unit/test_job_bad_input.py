"""Bad input to the job options and verbs (SPEC §16), on moto's in-process mock: one-line
ValidationError, nothing uploaded, nothing journaled."""

from __future__ import annotations

import pytest

import sm_async_nb as sma


@pytest.mark.parametrize("value", [True, 0, -1, 2.0, "automatic", "", [3]])
def test_max_pending_refused(client, list_keys, value):
    with pytest.raises(sma.ValidationError, match="max_pending") as caught:
        client.submit_many("ep", ["a", "b"], max_pending=value)
    assert "\n" not in str(caught.value)
    assert client.records() == [] and list_keys("input-bucket") == []


@pytest.mark.parametrize("value", [True, -1, 1.5, "2", 10**6])
def test_retries_refused(client, list_keys, value):
    with pytest.raises(sma.ValidationError, match="retries"):
        client.submit_many("ep", ["a", "b"], retries=value)
    assert client.records() == [] and list_keys("input-bucket") == []


def test_job_options_on_a_single_submit_are_refused(client):
    with pytest.raises(sma.ValidationError, match="batch methods"):
        client.submit("ep", "a", max_pending=2)
    assert client.records() == []


def test_pause_resume_cancel_of_a_batch_sent_at_once(client):
    batch = client.submit_many("ep", ["a", "b"])
    rows = {r.inference_id: r.status for r in client.records()}
    for verb in (batch.pause, batch.resume, batch.cancel):
        with pytest.raises(sma.ValidationError, match="nothing held back"):
            verb()
    assert {r.inference_id: r.status for r in client.records()} == rows


@pytest.mark.parametrize(("args", "match"), [
    (("ep", "id-1", "not-a-uri"), "S3 URI"),
    (("ep", "id-1", "s3://input-bucket/out/id-1.out", "https://x/y"), "S3 URI"),
    (("ep", "", "s3://input-bucket/out/x.out"), "InferenceId"),
    (("ep", "a" * 65, "s3://input-bucket/out/x.out"), "InferenceId"),
    (("bad name!", "id-1", "s3://input-bucket/out/id-1.out"), "EndpointName"),
])
def test_attach_refused(client, args, match):
    with pytest.raises(sma.ValidationError, match=match):
        client.attach(*args)
    assert client.records() == []
