"""Endpoint awareness (SPEC §10) against the local stack's emulation of scaling, metrics and logs, read
both through the client and through plain boto3 clients of the stack.

They need the stack's §10 options (``min_instances``, ``scale_out_seconds``, ``metrics_period_seconds``)
and skip, saying so, on a stack without them.
"""

from __future__ import annotations

import inspect
import time

import pytest

import sm_async_nb as sma
from sm_async_nb.local import LocalStack

IRIS_CSV = "5.1,3.5,1.4,0.2\n"
EMULATES_SCALING = "min_instances" in inspect.signature(LocalStack).parameters
pytestmark = pytest.mark.skipif(not EMULATES_SCALING,
                                reason="this LocalStack does not emulate scaling/metrics/logs (SPEC §10) yet")


def eventually(read, check, timeout: float = 60.0):
    """``read()`` again until ``check(value)`` holds; the last value (the assertion shows it otherwise)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not check(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def metric(stack, name: str, metric_name: str) -> float | None:
    """The newest value of an AWS/SageMaker metric, through a plain boto3 CloudWatch client."""
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    answer = stack.boto3_client("cloudwatch").get_metric_data(
        MetricDataQueries=[{"Id": "m", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric_name,
                       "Dimensions": [{"Name": "EndpointName", "Value": name}]},
            "Period": 60, "Stat": "Average"}}],
        StartTime=now - dt.timedelta(minutes=10), EndTime=now + dt.timedelta(minutes=1))
    points = list(zip(answer["MetricDataResults"][0]["Timestamps"], answer["MetricDataResults"][0]["Values"],
                      strict=True))
    return max(points)[1] if points else None


def test_zero_instances_without_a_policy_warns_and_marks_nothing_failed(tmp_path):
    with LocalStack(min_instances=0, max_instances=1, scale_out_seconds=None, metrics_period_seconds=0.5) as stack, \
            stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        invs = [client.submit(stack.endpoint_name, IRIS_CSV, content_type="text/csv") for _ in range(3)]
        st = eventually(lambda: client.endpoint_status(stack.endpoint_name, max_age=0),
                        lambda s: bool(s.backlog) and s.has_backlog_without_capacity is True)
        assert (st.current_instances, st.min_capacity, st.scales_from_zero) == (0, 0, False)
        assert st.has_backlog_without_capacity is True and st.backlog > 0
        assert any("nothing scales it out from zero" in w and "HasBacklogWithoutCapacity" in w for w in st.warnings)

        # The same numbers through a plain boto3 CloudWatch client (read right after; a datapoint put
        # in between may move the minute's average, so read both again until they agree).
        def both():
            st = client.endpoint_status(stack.endpoint_name, max_age=0)
            plain = (metric(stack, stack.endpoint_name, "ApproximateBacklogSize"),
                     metric(stack, stack.endpoint_name, "ApproximateAgeOfOldestRequest"))
            return (st.backlog, st.oldest_request_age_s), plain

        ours, plain = eventually(both, lambda pair: pair[0] == pair[1], timeout=90)
        assert ours == plain and ours[0] > 0 and ours[1] is not None
        client.tracker.refresh()
        assert {inv.status for inv in invs} == {sma.Status.PENDING}
        assert all(inv.expires_at is not None for inv in invs)


def test_an_endpoint_that_scales_from_zero(tmp_path):
    with LocalStack(min_instances=0, max_instances=1, scale_out_seconds=0.5, scale_in_idle_seconds=None,
                    metrics_period_seconds=0.5) as stack, stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        st = client.endpoint_status(stack.endpoint_name, max_age=0)
        assert (st.min_capacity, st.scales_from_zero, st.current_instances) == (0, True, 0)
        assert not any("nothing scales it out" in w for w in st.warnings)
        inv = client.submit(stack.endpoint_name, IRIS_CSV, content_type="text/csv")
        assert inv.wait(timeout=120).status is sma.Status.COMPLETED
        assert inv.expires_at is None
        st = eventually(lambda: client.endpoint_status(stack.endpoint_name, max_age=0),
                        lambda s: s.current_instances == 1)
        assert st.current_instances == 1 and st.scales_from_zero is True


def failing_model(body: bytes, content_type: str):
    raise ValueError(f"cannot score {len(body)} bytes of {content_type}")


def test_logs_of_a_failing_row_match_a_plain_logs_client(tmp_path):
    with LocalStack(model=failing_model, metrics_period_seconds=0.5) as stack, \
            stack.client(journal_path=tmp_path / "j.sqlite3") as client:
        inv = client.submit(stack.endpoint_name, IRIS_CSV, content_type="text/csv")
        assert inv.wait(timeout=60).status is sma.Status.FAILED
        plain = stack.boto3_client("logs")
        group = f"/aws/sagemaker/Endpoints/{stack.endpoint_name}"
        events = eventually(lambda: plain.filter_log_events(logGroupName=group,
                                                            filterPattern=f'"{inv.inference_id}"')["events"],
                            lambda found: any("ValueError" in e["message"] for e in found))
        expected = [e["message"].rstrip("\n") for e in sorted(events, key=lambda e: e["timestamp"])]
        assert any("cannot score" in m for m in expected)
        assert all(s.startswith("AllTraffic/") for s in {e["logStreamName"] for e in events})
        assert inv.logs() == expected
        assert inv.logs(limit=1) == expected[:1]
