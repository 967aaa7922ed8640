"""%sm_async endpoint NAME in an in-process IPython shell, against moto's in-process mock."""

from __future__ import annotations

import pytest
from endpointkit import add_rows, endpoint_requests, make_endpoint

import sm_async_nb as sma


@pytest.fixture
def shell(magic_shell, client):
    return magic_shell(client)


def test_endpoint_prints_the_status_compactly_with_its_warnings(shell, client, capsys):
    make_endpoint("ep", instances=0)
    add_rows(client, "ep", 2)
    assert shell.run_line_magic("sm_async", "endpoint ep") is None
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ep: InService, ml.g4dn.xlarge; instances 0/0 current/desired (no autoscaling)"
    assert out[1] == "  no backlog metrics in the last 10 minutes"
    assert out[2] == "  2 pending invocation(s) of yours"
    assert out[3].startswith("  ! Endpoint 'ep' has 0 instances and 2 pending invocation(s) of yours")
    assert len(out) == 4


def test_max_age_is_passed_on(shell, client, capsys):
    make_endpoint("ep")
    shell.run_line_magic("sm_async", "endpoint ep")
    shell.run_line_magic("sm_async", "endpoint ep")
    assert endpoint_requests(client)["sagemaker.DescribeEndpoint"] == 1
    shell.run_line_magic("sm_async", "endpoint ep --max-age 0")
    assert endpoint_requests(client)["sagemaker.DescribeEndpoint"] == 2
    assert capsys.readouterr().out.count("ep: InService") == 3


def test_an_unknown_endpoint_is_one_line(shell, capsys):
    result = shell.run_cell("%sm_async endpoint no-such-endpoint")
    assert isinstance(result.error_in_exec, sma.AwsError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "AwsError: Endpoint 'no-such-endpoint' not found in us-east-1" in text
    assert "Traceback" not in text


def test_lines_show_every_known_field_and_mark_unknown_ones():
    st = sma.EndpointStatus(name="ep", status="InService", instance_type="ml.m5.large", current_instances=0,
                            desired_instances=1, is_async=True, min_capacity=0, max_capacity=4, backlog=12.0,
                            backlog_per_instance=None, oldest_request_age_s=340.4, has_backlog_without_capacity=True,
                            scales_from_zero=True, pending=5, drain_rate_per_min=2.5,
                            warnings=["Endpoint 'ep' is scaling out from 0 instances: ..."])
    assert st.lines() == [
        "ep: InService, ml.m5.large; instances 0/1 current/desired (autoscaling 0..4, scales from zero)",
        "  backlog 12; oldest request 340 s; HasBacklogWithoutCapacity yes",
        "  5 pending invocation(s) of yours, ~2.5 completions/min seen",
        "  ! Endpoint 'ep' is scaling out from 0 instances: ...",
    ]
    assert sma.EndpointStatus(name="x", is_async=False).lines()[0] == \
        "x: status unknown, not async; instances ?/? current/desired"
