"""Destinations (SPEC §20): an endpoint name or an ``sma.RoutingTarget``, checked by the rules of the operation
that sends it (botocore's model), named in the journal as one text, invoked with the right members; a
botocore without inference routers refused in one line while endpoints keep working; and the combined
capacity ``max_pending="auto"`` sizes a routing target's window from."""

from __future__ import annotations

import botocore
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

import sm_async_nb as sma
from sm_async_nb.contract import routing, validation
from sm_async_nb.submission.flow import Capacity, combined


def _botocore_knows_routers() -> bool:
    try:
        botocore.session.get_session().get_service_model("sagemaker-inference-router-runtime")
    except UnknownServiceError:
        return False
    return True


# The dependency floors' botocore (1.35) predates inference routers (1.44): what needs them is skipped there.
NEEDS_ROUTERS = pytest.mark.skipif(not _botocore_knows_routers(),
                                   reason=f"botocore {botocore.__version__} predates inference routers (1.44)")


@NEEDS_ROUTERS
def test_a_routing_target_is_named_router_slash_target_and_read_back():
    target = sma.RoutingTarget("my-router", "my-target")
    assert routing.check_destination(target) == "my-router/my-target"
    assert routing.routing_target_of("my-router/my-target") == target
    assert routing.routing_target_of("my-endpoint") is None
    assert routing.check_destination("my-endpoint") == "my-endpoint"


@NEEDS_ROUTERS
@pytest.mark.parametrize("destination, parameter, words", [
    (sma.RoutingTarget("my_router", "t"), "InferenceRouterName", "InferenceRouterName 'my_router' is invalid"),
    (sma.RoutingTarget("r", "t" * 64), "RoutingTargetName", "1..63 characters"),
    (sma.RoutingTarget("r", ""), "RoutingTargetName", "RoutingTargetName '' is invalid"),
    (sma.RoutingTarget("r", 5), "RoutingTargetName", "it must be a string"),
    ("my-router/my-target", "EndpointName", "pass sma.RoutingTarget(router, target)"),
    (("my-router", "my-target"), "EndpointName", "not tuple"),
    ("-bad", "EndpointName", "EndpointName '-bad' is invalid"),
])
def test_bad_destinations_are_one_line_naming_the_member(destination, parameter, words):
    with pytest.raises(sma.ValidationError) as caught:
        routing.check_destination(destination)
    assert caught.value.parameter == parameter and words in str(caught.value) and "\n" not in str(caught.value)


@NEEDS_ROUTERS
def test_a_routing_targets_filename_may_be_64_characters_an_endpoints_32():
    assert routing.check_request_member("r/t", "Filename", "f" * 64) == "f" * 64
    for name, too_long in (("r/t", 65), ("endpoint", 33)):
        with pytest.raises(sma.ValidationError, match=f"Filename '{'f' * 20}"):
            routing.check_request_member(name, "Filename", "f" * too_long)


@NEEDS_ROUTERS
def test_the_invoke_arguments_name_the_destination_as_its_operation_does():
    assert routing.request_params({"endpoint_name": "r/t", "inference_id": "i-1", "filename": "f" * 64}) == {
        "InferenceRouterName": "r", "RoutingTargetName": "t", "InferenceId": "i-1", "Filename": "f" * 64}
    assert routing.request_params({"endpoint_name": "ep", "inference_id": "i-1"}) == {
        "EndpointName": "ep", "InferenceId": "i-1"}
    with pytest.raises(sma.ValidationError, match="Filename"):
        routing.request_params({"endpoint_name": "ep", "filename": "f" * 64})


def test_inline_is_refused_for_a_routing_target_only():
    routing.refuse_inline("endpoint")
    with pytest.raises(sma.ValidationError, match="InputLocation") as caught:
        routing.refuse_inline("r/t")
    assert caught.value.parameter == "inline"


@pytest.fixture
def botocore_without_routers(monkeypatch):
    """The installed botocore as a release before 1.44 sees it: no sagemaker-inference-router-runtime."""
    real = botocore.session.get_session

    def get_session(*args, **kwargs):
        session = real(*args, **kwargs)
        load = session.get_service_model

        def get_service_model(name, *more, **options):
            if name == "sagemaker-inference-router-runtime":
                raise UnknownServiceError(service_name=name, known_service_names="...")
            return load(name, *more, **options)

        session.get_service_model = get_service_model
        return session

    for cached in (validation.operation_model, validation.rules):
        cached.cache_clear()
    monkeypatch.setattr(botocore.session, "get_session", get_session)
    yield
    monkeypatch.undo()
    for cached in (validation.operation_model, validation.rules):
        cached.cache_clear()


def test_a_botocore_without_routers_is_one_line_and_endpoints_still_work(botocore_without_routers):
    with pytest.raises(sma.ValidationError) as caught:
        routing.check_destination(sma.RoutingTarget("r", "t"))
    message = str(caught.value)
    assert "InvokeInferenceRouterAsync needs botocore 1.44 or later" in message and "\n" not in message
    assert "pip install -U boto3 botocore" in message
    assert routing.check_destination("my-endpoint") == "my-endpoint"
    assert routing.request_params({"endpoint_name": "ep", "content_type": "text/csv"})["ContentType"] == "text/csv"


@pytest.mark.parametrize("parts, expected", [
    ([Capacity(1, 2), Capacity(2, 1), Capacity(0, 4)], Capacity(4, 1)),  # 2 + 2 + 0 requests at once
    ([Capacity(0, 2), Capacity(0, 4)], Capacity(0, 4)),                   # all at zero: a backlog to scale out
    ([Capacity(None, None), Capacity(3, None)], Capacity(3, 1)),          # unknown ones count for nothing
    ([], Capacity(None, None)),
])
def test_a_routing_targets_capacity_is_its_destinations_together(parts, expected):
    assert combined(parts) == expected
    assert combined(parts).concurrent == expected.concurrent
