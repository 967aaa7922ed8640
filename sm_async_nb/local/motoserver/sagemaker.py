"""The SageMaker control-plane routes the stack answers itself, in front of moto's WSGI app.

SageMaker's API is JSON 1.1 (``X-Amz-Target: SageMaker.<Operation>``), so one middleware sees
every control-plane request, from any client (boto3, the SDK, the AWS CLI), before moto does:

* ``CreateEndpoint`` / ``DeleteEndpoint``: moto keeps the record (it validates, and answers
  ListEndpoints, tags...), then the endpoint lifecycle (``service/lifecycle.py``) starts or
  stops serving it; creating a name that exists is refused, as AWS refuses it (moto would
  overwrite it);
* ``UpdateEndpoint``: answered here (moto has no UpdateEndpoint);
* ``UpdateEndpointWeightsAndCapacities``: moto validates, the lifecycle's fleet follows;
* ``DescribeEndpoint`` / ``ListEndpoints``: moto's answer with what the lifecycle knows laid
  over it (status, FailureReason, config, instance counts, ``AsyncInferenceConfig``);
* ``DescribeEndpoint``/``DescribeEndpointConfig``/``DescribeModel``: the empty structures
  moto writes and AWS leaves out (``DataCaptureConfig: {}``, ``VpcConfig: {}``,
  ``Containers: []``) are dropped, so strict readers (SageMaker SDK v3's pydantic shapes) accept
  them.

It also tells the scaler when anyone but the stack itself wrote to Application Auto Scaling or
CloudWatch, so the scaling the user registered is read again (never polled).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..service.faults import INTERNAL_MARKER
from ..service.lifecycle import ControlPlaneError
from .server import signing_service

TARGET_PREFIX = "SageMaker."
SCALING_SERVICES = frozenset({"application-autoscaling", "monitoring"})  # SigV4 names of AAS and CloudWatch
JSON_TYPE = "application/x-amz-json-1.1"
StartResponse = Callable[..., Any]


class ControlPlane(Protocol):
    """What the routes drive (``service/lifecycle.py``'s Lifecycle)."""

    def knows(self, name: str) -> bool: ...

    def arn(self, name: str) -> str: ...

    def create(self, name: str, config_name: str) -> None: ...

    def update(self, name: str, config_name: str) -> str: ...

    def delete(self, name: str) -> None: ...

    def set_desired(self, name: str, variant: str, count: int) -> None: ...

    def overlay(self, name: str) -> dict[str, Any] | None: ...


class _Answer:
    """A WSGI answer held in memory (moto's, to be passed on or rewritten)."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body or b"{}"))

    def with_json(self, value: dict[str, Any]) -> _Answer:
        body = json.dumps(value, default=str).encode()
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        return _Answer(self.status, headers + [("Content-Length", str(len(body)))], body)

    def send(self, start_response: StartResponse) -> Iterable[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


def error(message: str, code: str = "ValidationException") -> _Answer:
    """An error as SageMaker's JSON 1.1 protocol carries it (botocore reads ``__type``)."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return _Answer("400 Bad Request", [("Content-Type", JSON_TYPE), ("x-amzn-ErrorType", code),
                                       ("Content-Length", str(len(body)))], body)


def drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` without the members AWS leaves out when unset (empty objects and lists)."""
    return {k: v for k, v in value.items() if not (isinstance(v, (dict, list)) and not v)}


class SageMakerRoutes:
    """WSGI middleware: the operations above go through the stack, everything else to moto.

    :meth:`attach` connects the lifecycle and the scaler once the engine has made them; until
    then (the engine's own first requests) everything goes to moto.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.plane: ControlPlane | None = None
        self.scaling_changed: Callable[[], None] = lambda: None
        self.handlers: dict[str, Callable[[dict[str, Any], dict[str, Any], bytes], _Answer]] = {
            "CreateEndpoint": self._create, "DeleteEndpoint": self._delete, "UpdateEndpoint": self._update,
            "UpdateEndpointWeightsAndCapacities": self._weights, "DescribeEndpoint": self._describe_endpoint,
            "ListEndpoints": self._list, "DescribeEndpointConfig": self._describe,
            "DescribeModel": self._describe,
        }

    def attach(self, plane: ControlPlane, scaling_changed: Callable[[], None]) -> None:
        self.plane, self.scaling_changed = plane, scaling_changed

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if signing_service(environ) in SCALING_SERVICES and INTERNAL_MARKER not in environ.get("HTTP_USER_AGENT", ""):
            self.scaling_changed()
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        handler = self.handlers.get(target[len(TARGET_PREFIX):]) if target.startswith(TARGET_PREFIX) else None
        if handler is None or self.plane is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            params = json.loads(body or b"{}")
            answer = handler(environ, params if isinstance(params, dict) else {}, body)
        except ControlPlaneError as exc:
            answer = error(exc.message, exc.code)
        except ValueError as exc:
            answer = error(f"The request body is not JSON: {exc}", "SerializationException")
        return answer.send(start_response)

    def _moto(self, environ: dict[str, Any], body: bytes) -> _Answer:
        """The request, as it came, answered by moto."""
        seen: list[Any] = []
        inner = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        chunks = self.app(inner, lambda status, headers, exc_info=None: seen.extend((status, headers)))
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return _Answer(seen[0], list(seen[1]), data)

    # -- operations --------------------------------------------------------------------------------
    def _create(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        assert self.plane is not None
        name = str(params.get("EndpointName", ""))
        if self.plane.knows(name):
            return error(f'Cannot create already existing endpoint "{self.plane.arn(name)}".')
        answer = self._moto(environ, body)
        if answer.ok:
            try:
                self.plane.create(name, str(params.get("EndpointConfigName", "")))
            except ControlPlaneError:
                self._moto_delete(environ, name)  # nothing half-created
                raise
        return answer

    def _moto_delete(self, environ: dict[str, Any], name: str) -> None:
        body = json.dumps({"EndpointName": name}).encode()
        self._moto(dict(environ, HTTP_X_AMZ_TARGET=f"{TARGET_PREFIX}DeleteEndpoint"), body)

    def _delete(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        assert self.plane is not None
        answer = self._moto(environ, body)
        if answer.ok:
            self.plane.delete(str(params.get("EndpointName", "")))
        return answer

    def _update(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        assert self.plane is not None
        arn = self.plane.update(str(params.get("EndpointName", "")), str(params.get("EndpointConfigName", "")))
        return _Answer("200 OK", [("Content-Type", JSON_TYPE)], b"").with_json({"EndpointArn": arn})

    def _weights(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        assert self.plane is not None
        answer = self._moto(environ, body)
        if answer.ok:
            for wanted in params.get("DesiredWeightsAndCapacities") or []:
                if wanted.get("DesiredInstanceCount") is not None:
                    self.plane.set_desired(str(params.get("EndpointName", "")), str(wanted.get("VariantName")),
                                           int(wanted["DesiredInstanceCount"]))
        return answer

    def _describe(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        answer = self._moto(environ, body)
        return answer.with_json(drop_empty(answer.json())) if answer.ok else answer

    def _describe_endpoint(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        assert self.plane is not None
        answer = self._moto(environ, body)
        if not answer.ok:
            return answer
        described = answer.json()
        overlay = self.plane.overlay(described.get("EndpointName", ""))
        return answer.with_json(drop_empty(_laid_over(described, overlay)))

    def _list(self, environ: dict[str, Any], params: dict[str, Any], body: bytes) -> _Answer:
        assert self.plane is not None
        wanted = params.pop("StatusEquals", None)  # moto's statuses are not the lifecycle's: filter here
        answer = self._moto(environ, json.dumps(params).encode() if wanted else body)
        if not answer.ok:
            return answer
        listed = answer.json()
        summaries = []
        for summary in listed.get("Endpoints") or []:
            overlay = self.plane.overlay(summary.get("EndpointName", "")) or {}
            summary.update({k: overlay[k] for k in ("EndpointStatus", "LastModifiedTime") if k in overlay})
            if wanted is None or summary.get("EndpointStatus") == wanted:
                summaries.append(summary)
        return answer.with_json({**listed, "Endpoints": summaries})


def _laid_over(described: dict[str, Any], overlay: dict[str, Any] | None) -> dict[str, Any]:
    """moto's DescribeEndpoint with the lifecycle's view of it laid over."""
    if overlay is None:
        return described
    counts = overlay.pop("ProductionVariants")
    variants = []
    for variant in described.get("ProductionVariants") or []:
        weights = {k: 1.0 for k in ("CurrentWeight", "DesiredWeight") if variant.get(k) is None}  # AWS's default
        variants.append({**variant, **weights, **counts.get(variant.get("VariantName"), {})})
    return {**described, **overlay, "ProductionVariants": variants}
