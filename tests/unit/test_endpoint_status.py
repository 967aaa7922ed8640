"""client.endpoint_status (SPEC §10) against moto's in-process mock: every field, the warnings, the
cache and its request count, missing permissions injected as botocore error responses.

moto (5.2.x) stores everything needed here — endpoints and configs, metric data, scalable targets,
scaling policies and alarms — but never changes an endpoint's instance count or status by itself,
and does not list a step policy's alarms in DescribeScalingPolicies; the tests set instance counts
and statuses on moto's backend objects directly.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest
from endpointkit import add_rows, endpoint_requests, make_endpoint, put_metrics, register_scaling, set_endpoint

import sm_async_nb as sma
from sm_async_nb.endpoints import backlog
from sm_async_nb.records import Finish, InvocationRecord, Status

# --- fields --------------------------------------------------------------------------------------

def test_an_always_on_endpoint_has_every_field_and_no_warning(client):
    make_endpoint("ep")
    put_metrics("ep", ApproximateBacklogSize=3, ApproximateBacklogSizePerInstance=3,
                ApproximateAgeOfOldestRequest=42, HasBacklogWithoutCapacity=0)
    st = client.endpoint_status("ep")
    assert isinstance(st, sma.EndpointStatus)
    assert (st.name, st.status, st.instance_type, st.current_instances, st.desired_instances, st.is_async) == \
        ("ep", "InService", "ml.g4dn.xlarge", 1, 1, True)
    assert (st.min_capacity, st.max_capacity, st.scales_from_zero) == (None, None, False)
    assert (st.backlog, st.backlog_per_instance, st.oldest_request_age_s, st.has_backlog_without_capacity) == \
        (3.0, 3.0, 42.0, False)
    assert st.warnings == []
    assert st.exists is True and st.pending == 0
    with pytest.raises(dataclasses_frozen_error()):
        st.status = "Failed"


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_metrics_are_the_newest_datapoint_within_ten_minutes_and_none_without_one(client):
    make_endpoint("ep")
    now = dt.datetime.now(dt.timezone.utc)
    put_metrics("ep", now - dt.timedelta(minutes=30), ApproximateBacklogSize=99)  # outside the window
    put_metrics("ep", now - dt.timedelta(minutes=4), ApproximateBacklogSize=7, ApproximateAgeOfOldestRequest=100)
    put_metrics("ep", now - dt.timedelta(minutes=1), ApproximateBacklogSize=5)
    st = client.endpoint_status("ep")
    assert st.backlog == 5.0 and st.oldest_request_age_s == 100.0
    assert st.backlog_per_instance is None and st.has_backlog_without_capacity is None
    assert st.metrics_at == pytest.approx((now - dt.timedelta(minutes=1)).timestamp(), abs=1)


def test_autoscaling_limits_and_scale_from_zero_through_the_alarm_on_has_backlog_without_capacity(client):
    make_endpoint("ep", instances=0)
    register_scaling("ep", min_capacity=0, max_capacity=3)
    st = client.endpoint_status("ep")
    assert (st.min_capacity, st.max_capacity, st.scales_from_zero) == (0, 3, True)
    assert st.current_instances == 0 and st.warnings == []  # idle at zero, nothing waiting: fine


@pytest.mark.parametrize("setup", [
    {"step_policy": False},                       # target tracking alone never leaves zero
    {"alarm": False},                             # a step policy nothing triggers
    {"alarm_enabled": False},                     # its alarm's actions are disabled
])
def test_no_scale_from_zero_without_an_enabled_alarm_on_has_backlog_without_capacity(client, setup):
    make_endpoint("ep", instances=0)
    register_scaling("ep", min_capacity=0, **setup)
    assert client.endpoint_status("ep").scales_from_zero is False


def test_min_capacity_above_zero_never_scales_from_zero_and_reads_no_policies(client):
    make_endpoint("ep")
    register_scaling("ep", min_capacity=1, max_capacity=4)
    st = client.endpoint_status("ep")
    assert (st.min_capacity, st.max_capacity, st.scales_from_zero) == (1, 4, False)
    assert "application-auto-scaling.DescribeScalingPolicies" not in endpoint_requests(client)  # botocore's event name


# --- warnings ------------------------------------------------------------------------------------

def test_zero_instances_no_policy_and_pending_rows_warn_and_nothing_is_marked_failed(client):
    make_endpoint("ep", instances=0)
    ids = add_rows(client, "ep", 3)
    st = client.endpoint_status("ep")
    [warning] = st.warnings
    assert "0 instances" in warning and "3 pending invocation(s) of yours" in warning
    assert "requests wait until their TTL expires; add a step scaling policy on HasBacklogWithoutCapacity" in warning
    assert st.pending == 3 and st.scales_from_zero is False
    client.tracker.refresh()
    assert {client.invocation(i).status for i in ids} == {Status.PENDING}


def test_zero_instances_with_a_cloudwatch_backlog_and_a_target_tracking_policy_only(client):
    make_endpoint("ep", instances=0)
    register_scaling("ep", step_policy=False)
    put_metrics("ep", ApproximateBacklogSize=12, HasBacklogWithoutCapacity=1)
    [warning] = client.endpoint_status("ep").warnings
    assert "a backlog of 12 request(s)" in warning and "nothing scales it out from zero" in warning


def test_scaling_out_from_zero_says_the_first_results_take_minutes(client):
    make_endpoint("ep", instances=0)
    register_scaling("ep")
    put_metrics("ep", ApproximateBacklogSize=4, HasBacklogWithoutCapacity=1)
    [warning] = client.endpoint_status("ep").warnings
    assert "scaling out from 0 instances" in warning and "take minutes" in warning
    set_endpoint("ep", current=0, desired=1)  # autoscaling has acted: desired 1, not there yet
    [warning] = client.endpoint_status("ep", max_age=0).warnings
    assert "scaling out from 0 instances" in warning


@pytest.mark.parametrize("status, reason, expected", [
    ("Failed", "The primary container for production variant AllTraffic did not pass the ping health check.",
     "is Failed, not InService (The primary container for production variant AllTraffic did not pass the ping "
     "health check.): requests to it fail: fix the model"),
    ("Creating", None, "is Creating, not InService: requests are refused until it is InService"),
    ("Updating", None, "is Updating, not InService: it keeps serving on its previous configuration"),
])
def test_an_endpoint_not_in_service_warns_with_its_failure_reason(client, status, reason, expected):
    make_endpoint("ep")
    set_endpoint("ep", status=status, failure_reason=reason)
    st = client.endpoint_status("ep")
    assert st.status == status
    assert [w for w in st.warnings if expected in w]


def test_a_real_time_endpoint_warns_that_it_is_not_async(client):
    make_endpoint("rt", is_async=False)
    st = client.endpoint_status("rt")
    assert st.is_async is False
    [warning] = st.warnings
    assert "not an async endpoint" in warning and "AsyncInferenceConfig" in warning


def test_pending_rows_that_will_expire_before_the_backlog_drains(client):
    make_endpoint("ep")
    now = time.time()
    # Seen: 10 completions in the last ~5 minutes (2/min). Pending: 20 rows; CloudWatch: 40 waiting.
    add_rows(client, "ep", 10, status=Status.COMPLETED, invoked_at=now - 300, finished_at=now - 10, prefix="done")
    add_rows(client, "ep", 20, deadline_in=600, prefix="wait")  # each must finish within ~10 min
    put_metrics("ep", ApproximateBacklogSize=40)
    st = client.endpoint_status("ep")
    assert st.drain_rate_per_min == pytest.approx(2.0, rel=0.05)
    [warning] = st.warnings
    # position of the i-th row ~ 2i, done after ~i minutes: rows 11..20 finish after their deadline.
    assert warning.startswith("10 of your 20 pending invocation(s) on 'ep' will likely expire")
    assert re.search(r"the backlog takes ~2[01] min", warning) and "request_ttl_seconds" in warning


def test_no_expiry_warning_while_the_rate_is_unknown_or_fast_enough(client):
    make_endpoint("ep")
    add_rows(client, "ep", 5, deadline_in=600, prefix="wait")
    assert client.endpoint_status("ep").warnings == []          # nothing seen finishing yet: no guess
    add_rows(client, "ep", 30, status=Status.COMPLETED, invoked_at=time.time() - 60, finished_at=time.time(),
             prefix="done")
    assert client.endpoint_status("ep", max_age=0).warnings == []  # 30/min: 5 rows take seconds


def test_forecast_positions_our_rows_among_the_cloudwatch_backlog():
    queue = backlog.OwnQueue(deadlines=(1000.0, 1000.0), completed=1, watched_s=60.0)  # 1 per minute
    assert backlog.forecast(queue, None, now=0.0) is None        # positions 1, 2: done after 1 and 2 min
    late = backlog.forecast(queue, 40.0, now=0.0)                # positions 20 and 40: 20 and 40 min
    assert late is not None and (late.late, late.drain_s, late.first_late_in_s) == (2, 2400.0, 1000.0)
    assert backlog.forecast(backlog.OwnQueue(deadlines=(5.0,)), 10.0, now=0.0) is None  # no rate seen


# --- missing permissions and other trouble ---------------------------------------------------------

PERMISSION_CASES = [
    ("cloudwatch", "GetMetricData", "cloudwatch:GetMetricData",
     ["backlog", "backlog_per_instance", "oldest_request_age_s", "has_backlog_without_capacity"]),
    ("application-autoscaling", "DescribeScalableTargets", "application-autoscaling:DescribeScalableTargets",
     ["min_capacity", "max_capacity", "scales_from_zero"]),
    ("application-autoscaling", "DescribeScalingPolicies", "application-autoscaling:DescribeScalingPolicies",
     ["scales_from_zero"]),
    ("cloudwatch", "DescribeAlarmsForMetric", "cloudwatch:DescribeAlarmsForMetric", ["scales_from_zero"]),
    ("sagemaker", "DescribeEndpointConfig", "sagemaker:DescribeEndpointConfig", ["instance_type", "is_async"]),
    ("sagemaker", "DescribeEndpoint", "sagemaker:DescribeEndpoint",
     ["status", "current_instances", "instance_type", "min_capacity"]),
]


@pytest.mark.parametrize("service, operation, action, none_fields, code", [
    *[(*case, "AccessDeniedException") for case in PERMISSION_CASES],
    *[(*PERMISSION_CASES[0], code) for code in ("AccessDenied", "UnauthorizedOperation")],
])
def test_a_missing_permission_leaves_its_fields_none_and_names_it_once(client, service, operation, action,
                                                                      none_fields, code, deny):
    make_endpoint("ep", instances=0)
    register_scaling("ep", min_capacity=0, max_capacity=2)
    put_metrics("ep", ApproximateBacklogSize=2, ApproximateBacklogSizePerInstance=2, ApproximateAgeOfOldestRequest=9,
                HasBacklogWithoutCapacity=1)
    ids = add_rows(client, "ep", 2)
    deny(client, service, operation, code)
    st = client.endpoint_status("ep")
    assert all(getattr(st, f) is None for f in none_fields), st
    named = [w for w in st.warnings if action in w]
    assert len(named) == 1 and "Missing permission" in named[0] and "\n" not in named[0]
    # Without DescribeEndpoint the variants are unknown, so their scalable targets cannot be asked for.
    assert st.max_capacity == (None if operation in ("DescribeScalableTargets", "DescribeEndpoint") else 2)
    if service != "cloudwatch" or operation != "GetMetricData":
        assert st.backlog == 2.0
    client.tracker.refresh()
    assert {client.invocation(i).status for i in ids} == {Status.PENDING}   # tracking goes on


def test_throttling_that_outlasts_the_retries_is_one_warning_not_an_exception(client, deny):
    make_endpoint("ep")
    deny(client, "cloudwatch", "GetMetricData", code="Throttling")
    st = client.endpoint_status("ep")
    [warning] = st.warnings
    assert warning.startswith("Could not read GetMetricData for endpoint 'ep'") and st.backlog is None
    assert st.status == "InService"


def test_expired_credentials_are_one_warning_and_stop_the_other_reads(client, deny):
    make_endpoint("ep")
    deny(client, "sagemaker", "DescribeEndpoint", code="ExpiredToken")
    st = client.endpoint_status("ep")
    assert st.warnings == ["Could not read the status of endpoint 'ep': Your AWS credentials have expired: refresh "
                           "them (aws sso login, or a new session) and resubmit."]
    assert endpoint_requests(client) == {}  # GetMetricData and the others were not even tried


def test_an_unknown_endpoint_is_one_clear_error_and_a_bad_name_a_validation_error(client):
    with pytest.raises(sma.AwsError, match=r"Endpoint 'nope' not found in us-east-1: check the name") as caught:
        client.endpoint_status("nope")
    assert caught.value.kind == "not_found"
    assert client.monitor.status("nope").exists is False   # the panel's path: no exception
    with pytest.raises(sma.ValidationError, match="EndpointName"):
        client.endpoint_status("not valid!")
    with pytest.raises(sma.ValidationError, match="max_age"):
        client.endpoint_status("ep", max_age=-1)


def test_the_monitor_never_raises_even_when_the_journal_read_breaks(client, monkeypatch):
    make_endpoint("ep")
    monkeypatch.setattr(client.ctx.journal, "pending", lambda origin: 1 / 0)
    st = client.monitor.status("ep", max_age=0)
    assert st.status is None and any("ZeroDivisionError" in w for w in st.warnings)


# --- cost: per endpoint per minute, never per invocation -------------------------------------------

def test_one_fetch_costs_a_fixed_handful_of_requests_whatever_the_number_of_invocations(client):
    make_endpoint("ep", instances=0)
    register_scaling("ep")
    add_rows(client, "ep", 1, prefix="one")
    client.endpoint_status("ep")
    one = endpoint_requests(client)
    assert one == {"sagemaker.DescribeEndpoint": 1, "sagemaker.DescribeEndpointConfig": 1,
                   "cloudwatch.GetMetricData": 1, "application-auto-scaling.DescribeScalableTargets": 1,
                   "application-auto-scaling.DescribeScalingPolicies": 1, "cloudwatch.DescribeAlarmsForMetric": 1}
    add_rows(client, "ep", 500, prefix="many")
    client.endpoint_status("ep", max_age=0)
    twice = endpoint_requests(client)
    # The config is immutable: read once. Everything else once more, whatever 501 rows pending.
    assert twice == {k: (1 if k == "sagemaker.DescribeEndpointConfig" else 2 * v) for k, v in one.items()}


def test_the_cache_serves_younger_snapshots_without_requests(client):
    make_endpoint("ep")
    clock = [1_000_000.0]
    client.monitor.clock = lambda: clock[0]
    first = client.endpoint_status("ep", max_age=60)
    calls = dict(endpoint_requests(client))
    clock[0] += 59
    for _ in range(100):  # a panel asking every tick
        assert client.endpoint_status("ep", max_age=60) is first
    assert endpoint_requests(client) == calls
    clock[0] += 2
    again = client.endpoint_status("ep", max_age=60)
    assert again is not first and again.fetched_at == clock[0]
    assert endpoint_requests(client)["sagemaker.DescribeEndpoint"] == 2
    assert client.monitor.cached("ep") is again


def test_concurrent_askers_share_one_fetch(client):
    make_endpoint("ep")
    barrier = threading.Barrier(8)
    seen = []

    def ask():
        barrier.wait()
        seen.append(client.monitor.status("ep", max_age=60))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in seen}) == 1
    assert endpoint_requests(client)["sagemaker.DescribeEndpoint"] == 1


# --- the handle -------------------------------------------------------------------------------------

def test_expires_at_is_the_deadline_while_unfinished_and_none_when_done(client):
    [iid] = add_rows(client, "ep", 1, deadline_in=1800)
    inv = client.invocation(iid)
    expected = dt.datetime.fromtimestamp(client.journal.get(iid).deadline, dt.timezone.utc)
    assert inv.expires_at == expected and inv.expires_at.tzinfo is not None
    client.journal.finish([Finish(iid, Status.COMPLETED, time.time())])
    assert inv.expires_at is None


def test_expires_at_of_a_row_without_a_stored_deadline_is_ttl_plus_timeout(client):
    record = InvocationRecord("old-row", "ep", status=Status.PENDING, origin=client.origin, invoked_at=1_000.0,
                              request={"request_ttl_seconds": 600, "invocation_timeout_seconds": 60})
    client.journal.add([record])
    assert client.invocation("old-row").expires_at == dt.datetime.fromtimestamp(1_660.0, dt.timezone.utc)
