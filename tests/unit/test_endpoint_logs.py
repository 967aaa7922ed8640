"""inv.logs(): the CloudWatch Logs lines of /aws/sagemaker/Endpoints/{name} that carry the inference id,
written here through a plain boto3 Logs client into moto's in-process mock."""

from __future__ import annotations

import time

import boto3
import pytest

import sm_async_nb as sma
from sm_async_nb.endpoints import logs as endpoint_logs
from sm_async_nb.records import InvocationRecord

GROUP = "/aws/sagemaker/Endpoints/ep"


def write_logs(*messages: str, stream: str = "AllTraffic/i-0abc", group: str = GROUP) -> None:
    client = boto3.client("logs", region_name="us-east-1")
    try:
        client.create_log_group(logGroupName=group)
    except client.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    except client.exceptions.ResourceAlreadyExistsException:
        pass
    start = int(time.time() * 1000)
    client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": start + i, "message": m} for i, m in enumerate(messages)])


@pytest.fixture
def failed(client):
    now = time.time()
    client.journal.add([InvocationRecord("inv-0", "ep", status=sma.Status.FAILED, origin=client.origin,
                                         submitted_at=now - 5, invoked_at=now - 5, finished_at=now,
                                         failure_reason="ModelError: boom")])
    return client.invocation("inv-0")


def test_logs_of_a_failing_row_are_the_lines_carrying_its_id_oldest_first(failed):
    write_logs("inv-0 received 512 bytes",
               "inv-01 received 3 bytes",             # another id that starts like ours
               "other request",
               "Traceback for inv-0: ValueError: could not convert string to float: 'x'",
               stream="AllTraffic/i-0abc")
    write_logs("[inv-0] retried on a second instance", stream="AllTraffic/i-0def")
    lines = failed.logs()
    assert lines == ["inv-0 received 512 bytes",
                     "Traceback for inv-0: ValueError: could not convert string to float: 'x'",
                     "[inv-0] retried on a second instance"]
    detailed = failed.log_lines()
    assert [line.stream for line in detailed] == ["AllTraffic/i-0abc", "AllTraffic/i-0abc", "AllTraffic/i-0def"]
    assert all(line.timestamp.tzinfo is not None for line in detailed)


def test_limit_bounds_the_lines_and_the_paging(failed, client):
    write_logs(*[f"inv-0 step {i}" for i in range(7)])
    pages = []
    client.aws.get("logs").meta.events.register("before-parameter-build.cloudwatch-logs.FilterLogEvents",
                                                lambda params, **_: pages.append(dict(params)))
    assert failed.logs(limit=3) == ["inv-0 step 0", "inv-0 step 1", "inv-0 step 2"]
    assert len(pages) <= 3 and all(p["limit"] <= 3 for p in pages)
    assert pages[0]["filterPattern"] == '"inv-0"'
    assert len(failed.logs()) == 7


def test_no_log_group_yet_is_no_lines(failed):
    assert failed.logs() == []


def test_a_missing_permission_is_one_line_naming_logs_filter_log_events(failed, client, deny):
    write_logs("inv-0 hello")
    deny(client, "logs", "FilterLogEvents")
    with pytest.raises(sma.AwsError) as caught:
        failed.logs()
    assert caught.value.kind == "access_denied"
    assert "logs:FilterLogEvents" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("limit", [0, -1, 2.5, True, "10"])
def test_a_bad_limit_is_a_validation_error(failed, limit):
    with pytest.raises(sma.ValidationError, match="limit"):
        failed.logs(limit=limit)


def test_ids_with_quotes_still_find_their_lines():
    assert endpoint_logs._pattern('a"bc"defg') == '"defg"'
    assert endpoint_logs._carries('x a"bc"defg y', 'a"bc"defg')
    assert not endpoint_logs._carries("row-10 done", "row-1")
    assert endpoint_logs._carries("row-1: done", "row-1")
