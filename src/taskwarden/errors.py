"""The error tree: each class carries its Elasticsearch ``type`` and HTTP status.

The HTTP layer renders any :class:`TaskwardenError` without special cases, and the
Python client raises the same classes back::

    TaskwardenError                       exception                              500
    ├── IllegalArgumentError              illegal_argument_exception             400
    │   └── NumberFormatError             number_format_exception                400
    ├── ActionRequestValidationError      action_request_validation_exception    400
    ├── ParseError                        parse_exception                        400
    │   └── ContentParseError             x_content_parse_exception              400
    ├── TaskCancelledError                task_cancelled_exception               400
    ├── ResourceNotFoundError             resource_not_found_exception           404
    ├── NoSuchNodeError                   no_such_node_exception                 404
    ├── MethodNotAllowedError             method_not_allowed_exception           405
    ├── RequestTooLargeError              request_entity_too_large_exception     413
    ├── EsTimeoutError                    timeout_exception                      429
    ├── RejectedExecutionError            es_rejected_execution_exception        429
    ├── FailedNodeError                   failed_node_exception                  500
    ├── NodeClosedError                   node_closed_exception                  500
    ├── NodeNotConnectedError             node_not_connected_exception           500
    ├── SecurityError                     security_exception                     403
    │   └── AuthenticationError           security_exception                     401
    ├── StoreUnavailableError             store_unavailable_exception            503
    └── ActionFailedError                 (type chosen by the action)            500
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = [
    "ActionFailedError",
    "ActionRequestValidationError",
    "AuthenticationError",
    "ContentParseError",
    "EsTimeoutError",
    "FailedNodeError",
    "IllegalArgumentError",
    "MethodNotAllowedError",
    "NoSuchNodeError",
    "NodeClosedError",
    "NodeNotConnectedError",
    "NumberFormatError",
    "ParseError",
    "RejectedExecutionError",
    "RequestTooLargeError",
    "ResourceNotFoundError",
    "SecurityError",
    "StoreUnavailableError",
    "TaskCancelledError",
    "TaskwardenError",
    "error_from_dict",
    "es_type_of",
]

_STATUS_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class TaskwardenError(Exception):
    """Root of every error taskwarden raises or renders."""

    es_type: ClassVar[str] = "exception"
    status: ClassVar[int] = 500

    def __init__(
        self,
        reason: str,
        *,
        caused_by: TaskwardenError | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.caused_by = caused_by
        self.metadata = dict(metadata or {})

    @property
    def type(self) -> str:
        return self.es_type

    @property
    def http_status(self) -> int:
        return self.status

    @property
    def status_name(self) -> str:
        return _STATUS_NAMES.get(self.http_status, "INTERNAL_SERVER_ERROR")

    def to_dict(self) -> dict[str, Any]:
        """The Elasticsearch error object (without the ``root_cause`` envelope)."""
        body: dict[str, Any] = {"type": self.type, "reason": self.reason}
        body.update(self.metadata)
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by.to_dict()
        return body

    def root_cause(self) -> TaskwardenError:
        err: TaskwardenError = self
        while err.caused_by is not None:
            err = err.caused_by
        return err

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.reason, self.caused_by, self.metadata))


def _rebuild(
    cls: type[TaskwardenError],
    reason: str,
    caused_by: TaskwardenError | None,
    metadata: dict[str, Any],
) -> TaskwardenError:
    return cls(reason, caused_by=caused_by, metadata=metadata)


class IllegalArgumentError(TaskwardenError):
    es_type = "illegal_argument_exception"
    status = 400


class NumberFormatError(IllegalArgumentError):
    es_type = "number_format_exception"


class ActionRequestValidationError(TaskwardenError):
    es_type = "action_request_validation_exception"
    status = 400

    def __init__(self, *errors: str) -> None:
        numbered = "".join(f"{i}: {e};" for i, e in enumerate(errors, 1))
        super().__init__(f"Validation Failed: {numbered}")
        self.errors = errors

    def __reduce__(self) -> tuple[Any, ...]:
        return (ActionRequestValidationError, self.errors)


class ParseError(TaskwardenError):
    es_type = "parse_exception"
    status = 400


class ContentParseError(ParseError):
    es_type = "x_content_parse_exception"


class TaskCancelledError(TaskwardenError):
    """Raised inside a task (or to its caller) once the task has been cancelled."""

    es_type = "task_cancelled_exception"
    status = 400


class ResourceNotFoundError(TaskwardenError):
    es_type = "resource_not_found_exception"
    status = 404


class NoSuchNodeError(TaskwardenError):
    es_type = "no_such_node_exception"
    status = 404


class MethodNotAllowedError(TaskwardenError):
    es_type = "method_not_allowed_exception"
    status = 405


class RequestTooLargeError(TaskwardenError):
    es_type = "request_entity_too_large_exception"
    status = 413


class EsTimeoutError(TaskwardenError):
    es_type = "timeout_exception"
    status = 429


class RejectedExecutionError(TaskwardenError):
    es_type = "es_rejected_execution_exception"
    status = 429


class FailedNodeError(TaskwardenError):
    es_type = "failed_node_exception"
    status = 500

    def __init__(
        self,
        node_id: str,
        *,
        caused_by: TaskwardenError | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        meta = {"node_id": node_id}
        meta.update(metadata or {})
        super().__init__(f"Failed node [{node_id}]", caused_by=caused_by, metadata=meta)
        self.node_id = node_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_failed_node, (self.node_id, self.caused_by))


def _rebuild_failed_node(node_id: str, caused_by: TaskwardenError | None) -> FailedNodeError:
    return FailedNodeError(node_id, caused_by=caused_by)


class NodeClosedError(TaskwardenError):
    es_type = "node_closed_exception"
    status = 500


class NodeNotConnectedError(TaskwardenError):
    """Another node could not be reached, or did not answer within the request's timeout."""

    es_type = "node_not_connected_exception"
    status = 500


class SecurityError(TaskwardenError):
    """A request without the credentials it needs (internal endpoints: the cluster secret)."""

    es_type = "security_exception"
    status = 403


class AuthenticationError(SecurityError):
    """Missing or wrong credentials: answered with a ``WWW-Authenticate`` challenge."""

    status = 401


class StoreUnavailableError(TaskwardenError):
    """The cluster store is unreachable or refused the operation (down, locked, unwritable)."""

    es_type = "store_unavailable_exception"
    status = 503


class ActionFailedError(TaskwardenError):
    """An action's own failure, with the Elasticsearch type and status it chose."""

    def __init__(
        self,
        reason: str,
        *,
        es_type: str = "exception",
        status: int = 500,
        caused_by: TaskwardenError | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason, caused_by=caused_by, metadata=metadata)
        self._es_type = es_type
        self._status = status

    @property
    def type(self) -> str:
        return self._es_type

    @property
    def http_status(self) -> int:
        return self._status

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_action_failed,
            (self.reason, self._es_type, self._status, self.caused_by, self.metadata),
        )


def _rebuild_action_failed(
    reason: str,
    es_type: str,
    status: int,
    caused_by: TaskwardenError | None,
    metadata: dict[str, Any],
) -> ActionFailedError:
    return ActionFailedError(
        reason, es_type=es_type, status=status, caused_by=caused_by, metadata=metadata
    )


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def es_type_of(exc: BaseException) -> str:
    """Elasticsearch-style snake_case type name for an arbitrary Python exception."""
    if isinstance(exc, TaskwardenError):
        return exc.type
    name = type(exc).__name__
    if name.endswith("Error"):
        name = name[: -len("Error")] + "Exception"
    return _CAMEL.sub("_", name).lower()


_BY_TYPE: dict[str, type[TaskwardenError]] = {
    cls.es_type: cls
    for cls in (
        IllegalArgumentError,
        NumberFormatError,
        ParseError,
        ContentParseError,
        TaskCancelledError,
        ResourceNotFoundError,
        NoSuchNodeError,
        MethodNotAllowedError,
        RequestTooLargeError,
        EsTimeoutError,
        RejectedExecutionError,
        NodeClosedError,
        NodeNotConnectedError,
        SecurityError,
        StoreUnavailableError,
    )
}


def error_from_dict(body: dict[str, Any], status: int = 500) -> TaskwardenError:
    """Rebuild an error from its Elasticsearch JSON form (client side, stored results)."""
    es_type = str(body.get("type", "exception"))
    reason = str(body.get("reason", ""))
    cause_body = body.get("caused_by")
    caused_by = error_from_dict(cause_body) if isinstance(cause_body, dict) else None
    metadata = {
        k: v
        for k, v in body.items()
        if k not in ("type", "reason", "caused_by", "root_cause", "stack_trace")
    }
    if es_type == "failed_node_exception":
        return FailedNodeError(str(metadata.get("node_id", "")), caused_by=caused_by)
    if es_type == "action_request_validation_exception":
        err = ActionRequestValidationError()
        err.reason = reason
        err.args = (reason,)
        return err
    cls = _BY_TYPE.get(es_type)
    if cls is SecurityError and status == 401:
        cls = AuthenticationError
    if cls is not None:
        return cls(reason, caused_by=caused_by, metadata=metadata)
    return ActionFailedError(
        reason, es_type=es_type, status=status, caused_by=caused_by, metadata=metadata
    )
