"""Actions: named Python callables that run as tasks, and the registry that finds them."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from taskwarden.errors import IllegalArgumentError, ResourceNotFoundError

__all__ = [
    "DEFAULT_REGISTRY",
    "ActionRegistry",
    "ActionSpec",
    "ExecutorKind",
    "action",
    "load_app",
]

ExecutorKind = Literal["async", "thread", "process"]
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = ("async", "thread", "process")

F = TypeVar("F", bound=Callable[..., Any])

ParamsValidator = Callable[[Mapping[str, Any]], dict[str, Any]]


def _signature_validator(name: str, fn: Callable[..., Any]) -> ParamsValidator:
    """Check the body against the function's keyword parameters (the first one is the task)."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[1:]
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    known = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    required = [
        p.name
        for p in params
        if p.name in known and p.default is inspect.Parameter.empty
    ]

    def validate(body: Mapping[str, Any]) -> dict[str, Any]:
        if not accepts_any:
            unknown = sorted(set(body) - known)
            if unknown:
                raise IllegalArgumentError(
                    f"action [{name}] does not support parameter [{unknown[0]}]"
                )
        missing = [p for p in required if p not in body]
        if missing:
            raise IllegalArgumentError(f"action [{name}] requires parameter [{missing[0]}]")
        return dict(body)

    return validate


@dataclass(frozen=True)
class ActionSpec:
    """One registered action: its callable, where it runs, and how its parameters are checked."""

    name: str
    fn: Callable[..., Any]
    executor: ExecutorKind
    cancellable: bool | Callable[[Mapping[str, Any]], bool] = True
    validate: ParamsValidator | None = None
    description: str = ""
    # Process actions may take their grace period from a parameter.
    grace: Callable[[Mapping[str, Any]], float | None] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.validate is None:
            # Read the signature once, not on every start (inspect.signature is slow).
            object.__setattr__(self, "validate", _signature_validator(self.name, self.fn))

    def check_params(self, body: Mapping[str, Any]) -> dict[str, Any]:
        assert self.validate is not None
        return self.validate(body)

    def is_cancellable(self, params: Mapping[str, Any]) -> bool:
        return self.cancellable(params) if callable(self.cancellable) else self.cancellable


class ActionRegistry:
    """Name to ActionSpec; unknown names are a 404 like Elasticsearch's missing resources."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def add(self, spec: ActionSpec) -> None:
        if spec.executor not in EXECUTOR_KINDS:
            raise ValueError(f"unknown executor [{spec.executor}] for action [{spec.name}]")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise ResourceNotFoundError(f"action [{name}] is not registered on this node")
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(list(self._specs.values()))

    def names(self) -> list[str]:
        return sorted(self._specs)

    def copy(self, *, exclude_prefix: str | None = None) -> ActionRegistry:
        other = ActionRegistry()
        for spec in self:
            if exclude_prefix is None or not spec.name.startswith(exclude_prefix):
                other.add(spec)
        return other


DEFAULT_REGISTRY = ActionRegistry()


def action(
    name: str,
    *,
    executor: ExecutorKind | None = None,
    cancellable: bool = True,
    registry: ActionRegistry | None = None,
) -> Callable[[F], F]:
    """Register a function as an action: ``async def`` runs on the loop, ``def`` in a thread.

    ``executor="process"`` runs a module-level ``def`` in a worker process that can be stopped by force.
    """

    def decorate(fn: F) -> F:
        default: ExecutorKind = "async" if inspect.iscoroutinefunction(fn) else "thread"
        kind: ExecutorKind = executor if executor is not None else default
        if kind == "async" and not inspect.iscoroutinefunction(fn):
            raise TypeError(f"action [{name}]: executor 'async' needs an 'async def' function")
        if kind != "async" and inspect.iscoroutinefunction(fn):
            raise TypeError(f"action [{name}]: executor '{kind}' needs a plain 'def' function")
        (registry or DEFAULT_REGISTRY).add(
            ActionSpec(
                name=name,
                fn=fn,
                executor=kind,
                cancellable=cancellable,
                description=(inspect.getdoc(fn) or "").split("\n", 1)[0],
            )
        )
        return fn

    return decorate


def load_app(module: str) -> None:
    """Import ``module`` so that its ``@action`` functions register themselves."""
    importlib.import_module(module)
