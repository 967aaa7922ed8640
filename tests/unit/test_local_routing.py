"""Inference routers' placement and moves (SPEC §20) with an injected clock: ``Routing.step(now)``
decides, tests never sleep. The runtime's Backend is the real one; endpoints' lifecycles are a
table the test edits; the worker (the one writer of failure objects) runs with an in-memory sink."""

from __future__ import annotations

import botocore
import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from sm_async_nb.contract.names import ROUTABLE, ROUTING_UNKNOWN, UNROUTABLE
from sm_async_nb.local.service.lifecycle import CREATING, IN_SERVICE, UPDATING, ControlPlaneError
from sm_async_nb.local.service.models import (
    Backend,
    Endpoint,
    InvokeArgs,
    RouterNotFound,
    RouterNotInService,
    RoutingTargetNotFound,
    RuntimeStatus,
    ServiceError,
    TargetNotAsync,
)
from sm_async_nb.local.service.routers import Conflict, ResourceAlreadyExists, ResourceNotFound, Routers
from sm_async_nb.local.service.routing import DestinationView, LocalDestinations, Routing, choose
from sm_async_nb.local.service.worker import Worker


def _botocore_knows_routers() -> bool:
    try:
        botocore.session.get_session().get_service_model("sagemaker")
        botocore.session.get_session().get_service_model("sagemaker-inference-router-runtime")
    except UnknownServiceError:
        return False
    return True


# The routers' control plane is validated by botocore's model: the dependency floors' botocore (1.35)
# predates inference routers (1.44), so these are skipped there.
pytestmark = pytest.mark.skipif(not _botocore_knows_routers(),
                                reason=f"botocore {botocore.__version__} predates inference routers (1.44)")

ACCOUNT, REGION = "123456789012", "us-east-1"
OUT, FAIL = "s3://bucket/routed/", "s3://bucket/routed-failures/"
ERROR_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:router-errors"
ASYNC = {"OutputConfig": {"S3OutputPath": OUT, "S3FailurePath": FAIL}}
SUCCESS_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:router-ok"


def arn(name: str, kind: str = "endpoint", account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Directory:
    """The endpoints' lifecycle as the router reads it: name -> (status, asynchronous, config name)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, tuple[str, bool, str]] = {}

    def destination(self, name):
        return self.endpoints.get(name)


class MemorySink:
    def __init__(self):
        self.objects, self.published = {}, []

    def read(self, uri):
        return b"1,2\n"

    def write(self, uri, body, content_type):
        self.objects[uri] = (body, content_type)

    def publish(self, topic_arn, message):
        import json

        self.published.append((topic_arn, json.loads(message)))


class World:
    def __init__(self, create_seconds: float = 0.0):
        self.clock, self.directory, self.backend = Clock(), Directory(), Backend(ACCOUNT, REGION)
        self.destinations = LocalDestinations(self.directory, self.backend, ACCOUNT, REGION)
        self.routers = Routers(self.destinations, self.clock, create_seconds=create_seconds, account_id=ACCOUNT,
                               region=REGION, wall=lambda: 1_700_000_000.0)
        self.routing = Routing(self.backend, self.routers, self.destinations, self.clock, wall=lambda: 1_700_000_000.0)

    def endpoint(self, name: str, instances: int = 1, per_instance: int = 2, asynchronous: bool = True,
                 status: str = IN_SERVICE) -> Endpoint:
        endpoint = Endpoint(name=name, model=None, asynchronous=asynchronous, output_path=f"s3://bucket/{name}/",
                            per_instance=per_instance, config_name=f"{name}-config")
        endpoint.scale(instances)
        self.backend.register(endpoint)
        self.directory.endpoints[name] = (status, asynchronous, f"{name}-config")
        return endpoint

    def router(self, *destinations: str, name: str = "r", target: str = "t", backlog: int = 60,
               **async_config) -> dict:
        output = {"S3OutputPath": OUT, "S3FailurePath": FAIL,
                  "NotificationConfig": {"SuccessTopic": SUCCESS_TOPIC, "ErrorTopic": ERROR_TOPIC}}
        return self.routers.call("CreateInferenceRouter", {"InferenceRouterName": name, "RoutingTargets": [{
            "Name": target, "Destinations": [{"ResourceArn": d} for d in destinations],
            "AsyncInferenceConfig": {"OutputConfig": output, "ClientConfig": {"MaxTimeInBacklogSeconds": backlog},
                                     **async_config}}]})

    def send(self, count: int = 1, router: str = "r", target: str = "t", ttl: int | None = None, **kw):
        return [self.routing.submit(router, target, InvokeArgs(endpoint_name="", input_location="s3://bucket/in/x",
                                                               request_ttl_seconds=ttl, **kw),
                                    now_clock=self.clock(), now_wall=1_700_000_000.0) for _ in range(count)]

    def start(self, name: str) -> None:
        """The endpoint's instance takes the next request (what the worker does)."""
        invocation = self.backend.pop_next(name)
        assert invocation is not None
        self.backend.mark_running(invocation, now_clock=self.clock(), now_wall=1_700_000_000.0)

    def at(self, seconds: float) -> int:
        self.clock.now = 1000.0 + seconds
        return self.routing.step(self.clock.now)


# -- choose(): LocalRegionFirst on one Region ------------------------------------------------------------
def view(name, capacity, load, status=ROUTABLE):
    return DestinationView(arn(name), name, status, capacity, load)


def test_choose_prefers_free_slots_least_loaded_then_the_listed_order():
    views = [view("a", 4, 3), view("b", 4, 1), view("c", 2, 1)]
    assert choose(views, ()).endpoint == "b"  # 1/4 < 1/2 < 3/4
    assert choose([view("a", 2, 0), view("b", 2, 0)], ()).endpoint == "a"  # a tie goes to the first listed


def test_choose_uses_full_and_scaled_to_zero_destinations_only_when_none_has_room():
    full, zero, free = view("full", 2, 2), view("zero", 0, 0), view("free", 2, 1)
    assert choose([full, zero, free], ()).endpoint == "free"
    assert choose([full, zero], ()).endpoint == "zero"  # 0 waiting at 0 instances: less loaded than 2 of 2
    assert choose([full, view("zero", 0, 3)], ()).endpoint == "full"  # 3 waiting there: more than 2 of 2


def test_choose_skips_tried_unroutable_and_unknown_destinations():
    views = [view("a", 2, 0), view("b", 2, 0, UNROUTABLE), DestinationView(arn("x", account="999999999999"), None,
                                                                            ROUTING_UNKNOWN)]
    assert choose(views, ["a"]) is None
    assert choose(views, []).endpoint == "a"


# -- Routing: spread, move, stay, give up --------------------------------------------------------------
def test_requests_spread_over_three_destinations_by_capacity():
    world = World()
    world.endpoint("a", instances=1)
    world.endpoint("b", instances=2)
    world.endpoint("c", instances=1)
    world.router(arn("a"), arn("b"), arn("c"))
    sent = world.send(16)
    by_endpoint = {name: len(world.backend.queued(name)) for name in "abc"}
    assert by_endpoint == {"a": 4, "b": 8, "c": 4}  # 4 slots in b, 2 in a and c: the backlog follows capacity
    assert {inv.route.tried[0] for inv in sent} == {"a", "b", "c"}
    assert all(inv.output_location == f"{OUT}{inv.inference_id}.out" for inv in sent)  # the target's, not a's


def test_a_request_not_started_within_max_time_in_backlog_moves_and_keeps_its_locations():
    world = World()
    world.endpoint("busy", instances=1, per_instance=1)
    world.endpoint("zero", instances=0)
    world.router(arn("busy"), arn("zero"), backlog=60)
    first, second = world.send(2)
    assert (first.endpoint_name, second.endpoint_name) == ("busy", "zero")  # busy is full after the first
    world.start("busy")
    locations = (second.output_location, second.failure_location)
    assert world.at(59.9) == 0
    assert world.at(60) == 1  # only the one still queued: the started one stays
    assert second.endpoint_name == "busy" and second.route.tried == ["zero", "busy"] and second.route.moves == 1
    assert first.route.moves == 0 and first.status is RuntimeStatus.RUNNING
    assert (second.output_location, second.failure_location) == locations
    record = world.backend.records()[1]
    assert (record["inference_router_name"], record["routing_target_name"], record["destinations_tried"],
            record["moves"]) == ("r", "t", ["zero", "busy"], 1)


def test_when_every_destination_was_tried_the_router_gives_up_with_a_failure_object_and_notification():
    world = World()
    world.endpoint("z1", instances=0)
    world.endpoint("z2", instances=0)
    world.router(arn("z1"), arn("z2"), backlog=60)
    [invocation] = world.send()
    world.at(60)
    assert invocation.route.tried == ["z1", "z2"] and world.backend.take_given_up() == []
    world.at(120)
    [(given_up, status, reason)] = world.backend.take_given_up()
    assert given_up is invocation and status is RuntimeStatus.FAILED
    assert reason.startswith("RoutingFailed: No destination of routing target t of inference router r")
    assert "z1, z2" in reason and "(60 s)" in reason
    # The worker writes it where the target says and notifies the target's error topic.
    sink = MemorySink()
    world.backend.give_up(given_up, status, reason)
    Worker(world.backend, sink, clock=world.clock, wall=lambda: 1_700_000_100.0).step(world.clock.now)
    assert sink.objects[f"{FAIL}{invocation.inference_id}-error.out"][0].decode() == reason
    [(topic, message)] = sink.published
    assert topic == ERROR_TOPIC and message["invocationStatus"] == "Failed"
    assert message["requestParameters"]["inferenceRouterName"] == "r"
    assert message["requestParameters"]["routingTargetName"] == "t"
    assert invocation.status is RuntimeStatus.FAILED


def test_a_routed_request_completing_notifies_the_targets_success_topic():
    import threading

    world = World()
    endpoint = world.endpoint("a")
    done = threading.Event()

    class Model:
        def invoke(self, body, content_type, accept, custom_attributes=None, timeout=None):
            done.set()
            return b"out", "text/csv"

    endpoint.model = Model()
    world.router(arn("a"))
    [invocation] = world.send()
    sink = MemorySink()
    worker = Worker(world.backend, sink, clock=world.clock, wall=lambda: 1_700_000_100.0)
    worker.step(world.clock.now)
    assert worker.wait_done(invocation.inference_id, 5)
    worker.step(world.clock.now)
    assert sink.objects[invocation.output_location] == (b"out", "text/csv")
    [(topic, message)] = sink.published
    assert topic == SUCCESS_TOPIC and message["requestParameters"]["endpointName"] == "a"
    worker.close()


def test_requests_no_destination_can_take_are_held_until_one_can_or_their_ttl():
    world = World()
    world.endpoint("later", status=CREATING)
    world.router(arn("later"), arn("elsewhere", account="999999999999"))
    early, late = world.send(1, ttl=600)[0], world.send(1, ttl=60)[0]
    assert world.routing.held() == 2 and early.endpoint_name == ""
    world.at(61)  # late's TTL passed while held: RequestExpired
    [(expired, status, reason)] = world.backend.take_given_up()
    assert expired is late and status is RuntimeStatus.EXPIRED and reason.startswith("RequestExpired:")
    world.directory.endpoints["later"] = (IN_SERVICE, True, "later-config")
    world.at(62)
    assert early.endpoint_name == "later" and early.route.moves == 0 and world.routing.held() == 0


def test_requests_waiting_at_a_deleted_destination_move_at_once_and_running_ones_do_not():
    world = World()
    world.endpoint("a", instances=1, per_instance=1)
    world.endpoint("b", instances=1, per_instance=1)
    world.router(arn("a"), arn("b"), backlog=3600)
    sent = world.send(4)  # a: 2, b: 2
    world.start("a")
    at_a = [inv for inv in sent if inv.endpoint_name == "a"]
    world.backend.retire("a")
    del world.directory.endpoints["a"]
    world.at(1)
    waiting = [inv for inv in at_a if inv.status is RuntimeStatus.QUEUED]
    assert len(waiting) == 1 and waiting[0].endpoint_name == "b" and waiting[0].route.moves == 1
    [retired] = world.backend.take_retired()  # the running one fails with the endpoint (the worker writes it)
    assert [inv.status for inv in retired.running] == [RuntimeStatus.RUNNING] and retired.queued == []


# -- the control plane: status on the emulated clock, AWS's checks --------------------------------------
def test_creating_then_in_service_on_the_emulated_clock_and_updates_apply_whole():
    world = World(create_seconds=30)
    world.endpoint("a")
    world.endpoint("b")
    world.router(arn("a"))
    described = world.routers.call("DescribeInferenceRouter", {"InferenceRouterName": "r"})
    assert described["Status"] == CREATING
    with pytest.raises(RouterNotInService, match="is Creating"):
        world.send()
    with pytest.raises(Conflict):
        world.routers.call("DeleteInferenceRouter", {"InferenceRouterName": "r"})
    world.clock.now += 30
    assert world.routers.call("DescribeInferenceRouter", {"InferenceRouterName": "r"})["Status"] == IN_SERVICE
    update = {"InferenceRouterName": "r", "RoutingTargets": [{"Name": "t", "Destinations": [{"ResourceArn": arn("b")}],
                                                               "AsyncInferenceConfig": ASYNC}]}
    world.routers.call("UpdateInferenceRouter", update)
    described = world.routers.call("DescribeInferenceRouter", {"InferenceRouterName": "r"})
    assert described["Status"] == UPDATING and described["RoutingTargets"][0]["Destinations"][0]["ResourceArn"] == arn(
        "b")
    assert world.send()[0].endpoint_name == "a"  # the previous routing targets serve until the update is in effect
    with pytest.raises(Conflict, match="in-progress"):
        world.routers.call("UpdateInferenceRouter", update)
    world.clock.now += 30
    assert world.send()[0].endpoint_name == "b"


def test_describe_reports_each_destinations_routing_status():
    world = World()
    world.endpoint("up")
    world.endpoint("starting", status=CREATING)
    sick = world.endpoint("sick")
    sick.healthy = False
    world.router(arn("up"), arn("starting"), arn("sick"), arn("gone"), arn("far", region="eu-west-1"))
    statuses = [d["RoutingStatus"] for d in world.routers.call("DescribeInferenceRouter", {
        "InferenceRouterName": "r"})["RoutingTargets"][0]["Destinations"]]
    assert statuses == [ROUTABLE, UNROUTABLE, UNROUTABLE, UNROUTABLE, ROUTING_UNKNOWN]


@pytest.mark.parametrize("change, message", [
    (lambda p: p.update(InferenceRouterName="bad_name"), "Value 'bad_name' at 'inferenceRouterName' failed to "
                                                          "satisfy constraint: Member must satisfy regular expression"),
    (lambda p: p["RoutingTargets"][0].update(Name="-target"), "at 'routingTargets.1.member.name'"),
    (lambda p: p["RoutingTargets"][0]["AsyncInferenceConfig"]["ClientConfig"].update(MaxTimeInBacklogSeconds=59),
     "Member must have value greater than or equal to 60"),
    (lambda p: p["RoutingTargets"][0]["AsyncInferenceConfig"]["ClientConfig"].update(MaxTimeInBacklogSeconds=21601),
     "Member must have value less than or equal to 21600"),
    (lambda p: p["RoutingTargets"][0]["AsyncInferenceConfig"]["OutputConfig"].pop("S3FailurePath"),
     "Value null at 'routingTargets.1.member.asyncInferenceConfig.outputConfig.s3FailurePath'"),
    (lambda p: p["RoutingTargets"].append(dict(p["RoutingTargets"][0])), "t appears more than once"),
    (lambda p: p["RoutingTargets"][0]["Destinations"].append({"ResourceArn": arn("a")}), "appears more than once"),
    (lambda p: p["RoutingTargets"][0]["Destinations"].append({"ResourceArn": arn("rt")}),
     "is not an asynchronous inference endpoint (its endpoint config rt-config has no AsyncInferenceConfig)"),
    (lambda p: p["RoutingTargets"][0]["Destinations"].append({"ResourceArn": arn("ic", "inference-component")}),
     "is not an asynchronous inference endpoint (it is an inference-component)"),
    (lambda p: p["RoutingTargets"][0].update(RoutingPreference="InstancePoolOrder"), "use LocalRegionFirst"),
])
def test_bad_requests_are_refused_in_one_line_and_nothing_is_created(change, message):
    world = World()
    world.endpoint("a")
    world.endpoint("rt", asynchronous=False)
    params = {"InferenceRouterName": "r", "RoutingTargets": [{
        "Name": "t", "Destinations": [{"ResourceArn": arn("a")}],
        "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": OUT, "S3FailurePath": FAIL},
                                 "ClientConfig": {"MaxTimeInBacklogSeconds": 60}}}]}
    change(params)
    with pytest.raises(ControlPlaneError) as caught:
        world.routers.call("CreateInferenceRouter", params)
    assert message in caught.value.message and "\n" not in caught.value.message
    assert caught.value.code == "ValidationException"
    assert world.routers.call("ListInferenceRouters", {}) == {"InferenceRouters": []}


def test_a_real_time_target_takes_no_async_endpoint_and_cannot_be_invoked_asynchronously():
    world = World()
    world.endpoint("a")
    world.endpoint("rt", asynchronous=False)
    target = {"Name": "rt-target", "Destinations": [{"ResourceArn": arn("a")}]}
    with pytest.raises(ControlPlaneError, match="real-time routing target rt-target is an asynchronous"):
        world.routers.call("CreateInferenceRouter", {"InferenceRouterName": "r", "RoutingTargets": [target]})
    target["Destinations"] = [{"ResourceArn": arn("rt")}]
    world.routers.call("CreateInferenceRouter", {"InferenceRouterName": "r", "RoutingTargets": [target]})
    with pytest.raises(TargetNotAsync, match="Use InvokeInferenceRouter for real-time"):
        world.send(target="rt-target")


def test_names_taken_unknown_routers_and_targets_and_client_tokens():
    world = World()
    world.endpoint("a")
    first = world.router(arn("a"))
    with pytest.raises(ResourceAlreadyExists, match='Cannot create already existing inference router "arn:aws:'):
        world.router(arn("a"))
    with pytest.raises(ResourceNotFound, match='Could not find inference router "arn:aws:sagemaker:us-east-1:'
                                               '123456789012:inference-router/nope"'):
        world.routers.call("DescribeInferenceRouter", {"InferenceRouterName": "nope"})
    with pytest.raises(RouterNotFound, match="^Inference router nope of account 123456789012 not found.$"):
        world.send(router="nope")
    with pytest.raises(RoutingTargetNotFound, match="^Routing target nope not found in inference router r of account"):
        world.send(target="nope")
    params = {"InferenceRouterName": "again", "ClientToken": "token-1", "RoutingTargets": [{
        "Name": "t", "Destinations": [{"ResourceArn": arn("a")}], "AsyncInferenceConfig": ASYNC}]}
    again = world.routers.call("CreateInferenceRouter", params)
    assert world.routers.call("CreateInferenceRouter", dict(params)) == again  # a retry: the same answer
    with pytest.raises(ControlPlaneError, match="ClientToken token-1 was already used"):
        world.routers.call("CreateInferenceRouter", {**params, "InferenceRouterName": "other"})
    assert first["InferenceRouterArn"].endswith(":inference-router/r")


def test_list_pages_newest_first_and_tags_are_kept():
    world = World()
    world.endpoint("a")
    for index in range(3):
        world.routers.wall = lambda index=index: 1_700_000_000.0 + index
        world.routers.call("CreateInferenceRouter", {"InferenceRouterName": f"r{index}", "Tags": [
            {"Key": "team", "Value": "x"}], "RoutingTargets": [{"Name": "t", "Destinations": [{"ResourceArn": arn(
                "a")}], "AsyncInferenceConfig": ASYNC}]})
    page = world.routers.call("ListInferenceRouters", {"MaxResults": 2})
    assert [r["InferenceRouterName"] for r in page["InferenceRouters"]] == ["r2", "r1"]
    rest = world.routers.call("ListInferenceRouters", {"MaxResults": 2, "NextToken": page["NextToken"]})
    assert [r["InferenceRouterName"] for r in rest["InferenceRouters"]] == ["r0"] and "NextToken" not in rest
    router_arn = page["InferenceRouters"][0]["InferenceRouterArn"]
    world.routers.call("AddTags", {"ResourceArn": router_arn, "Tags": [{"Key": "stage", "Value": "dev"}]})
    assert world.routers.call("ListTags", {"ResourceArn": router_arn})["Tags"] == [
        {"Key": "team", "Value": "x"}, {"Key": "stage", "Value": "dev"}]
    world.routers.call("DeleteInferenceRouter", {"InferenceRouterName": "r2"})
    with pytest.raises(ResourceNotFound):
        world.routers.call("DeleteInferenceRouter", {"InferenceRouterName": "r2"})


def test_router_errors_are_validation_exceptions_as_the_router_runtime_model_names_them():
    assert issubclass(RouterNotFound, ServiceError) and RouterNotFound("r", ACCOUNT).code == "ValidationException"
