"""How a command reaches a node: the connection options and the client they make.

Every group (``tasks``, ``cat``, ``keys``, ``users``) takes ``--url``, ``--api-key``, ``--user``
and ``--ca-cert``, each also read from the environment; ``tasks`` and ``cat`` commands take them
after the command too (:func:`connection_options`), and those win over the group's. Credentials
typed on the command line win over credentials from the environment.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import httpx
import typer

from taskwarden.client import DEFAULT_URL, Client
from taskwarden.errors import AuthenticationError, TaskwardenError

__all__ = [
    "API_KEY_ENV",
    "CA_CERT_ENV",
    "HTTP_TIMEOUT",
    "PASSWORD_ENV",
    "URL_ENV",
    "USER_ENV",
    "JsonOption",
    "connect",
    "connection_callback",
    "connection_options",
    "fail",
    "print_json",
]

URL_ENV = "TASKWARDEN_URL"
API_KEY_ENV = "TASKWARDEN_API_KEY"
USER_ENV = "TASKWARDEN_USER"
PASSWORD_ENV = "TASKWARDEN_PASSWORD"
CA_CERT_ENV = "TASKWARDEN_CA_CERT"
HTTP_TIMEOUT = 60.0

_PANEL = "Connection"
_GROUP_KEY = "taskwarden.connection.group"
_COMMAND_KEY = "taskwarden.connection.command"
_CREDENTIAL_HINT = "give --api-key or --user"

P = ParamSpec("P")
R = TypeVar("R")


def _url_option(envvar: str | None) -> Any:
    where = "." if envvar else f" (default: the group's --url, ${URL_ENV}, else {DEFAULT_URL})."
    return typer.Option("--url", envvar=envvar, rich_help_panel=_PANEL,
                        help=f"Base URL of any node of the cluster{where}")


def _api_key_option(envvar: str | None) -> Any:
    return typer.Option("--api-key", envvar=envvar, rich_help_panel=_PANEL, show_default=False,
                        help="An API key: the encoded value that 'taskwarden keys create' printed.")


def _user_option(envvar: str | None) -> Any:
    return typer.Option("--user", envvar=envvar, rich_help_panel=_PANEL, show_default=False,
                        metavar="NAME[:PASSWORD]",
                        help=f"Sign in as this user; a password not given here comes from "
                             f"${PASSWORD_ENV} or a prompt.")


def _ca_cert_option(envvar: str | None) -> Any:
    return typer.Option("--ca-cert", envvar=envvar, rich_help_panel=_PANEL, exists=True,
                        dir_okay=False, show_default=False,
                        help="CA file that signed the node's HTTPS certificate (default: the "
                             "system's trusted CAs).")


GroupUrlOption = Annotated[str, _url_option(URL_ENV)]
GroupApiKeyOption = Annotated[str | None, _api_key_option(API_KEY_ENV)]
GroupUserOption = Annotated[str | None, _user_option(USER_ENV)]
GroupCaCertOption = Annotated[Path | None, _ca_cert_option(CA_CERT_ENV)]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the server's JSON answer (for scripts).")
]


@dataclass(frozen=True)
class _Credentials:
    api_key: str | None = None
    user: str | None = None

    def __bool__(self) -> bool:
        return self.api_key is not None or self.user is not None


@dataclass(frozen=True)
class _Given:
    """Connection options as given at one level; None where not given there."""

    url: str | None = None
    ca_cert: Path | None = None
    typed: _Credentials = _Credentials()
    from_env: _Credentials = _Credentials()


def connection_callback(
    ctx: typer.Context,
    url: GroupUrlOption = DEFAULT_URL,
    api_key: GroupApiKeyOption = None,
    user: GroupUserOption = None,
    ca_cert: GroupCaCertOption = None,
) -> None:
    """The group's connection options, for its commands to connect with."""
    from_env = {name for name in ("api_key", "user") if _from_environment(ctx, name)}
    ctx.meta[_GROUP_KEY] = _Given(
        url=url,
        ca_cert=ca_cert,
        typed=_Credentials(None if "api_key" in from_env else api_key,
                           None if "user" in from_env else user),
        from_env=_Credentials(api_key if "api_key" in from_env else None,
                              user if "user" in from_env else None),
    )


def _from_environment(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "ENVIRONMENT"


_COMMAND_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
    for name, annotation in (
        ("url", Annotated[str | None, _url_option(None)]),
        ("api_key", Annotated[str | None, _api_key_option(None)]),
        ("user", Annotated[str | None, _user_option(None)]),
        ("ca_cert", Annotated[Path | None, _ca_cert_option(None)]),
    )
]


def connection_options(command: Callable[P, R]) -> Callable[P, R]:
    """Give a command (with a ``ctx`` parameter) its own connection options; :func:`connect`
    then prefers them to the group's. Put it under ``@app.command()``."""
    signature = inspect.signature(command, eval_str=True)
    if "ctx" not in signature.parameters:
        raise TypeError(f"{command.__name__} needs a ctx: typer.Context parameter")

    @functools.wraps(command)
    def with_connection(*args: P.args, **kwargs: P.kwargs) -> R:
        given: dict[str, Any] = {param.name: kwargs.pop(param.name, None) for param in _COMMAND_PARAMETERS}
        ctx: Any = kwargs["ctx"]
        ctx.meta[_COMMAND_KEY] = _Given(
            url=given["url"], ca_cert=given["ca_cert"],
            typed=_Credentials(given["api_key"], given["user"]),
        )
        return command(*args, **kwargs)

    parameters = [*signature.parameters.values(), *_COMMAND_PARAMETERS]
    # Typer reads a command's options from its signature.
    with_connection.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return with_connection


@dataclass(frozen=True)
class _Target:
    url: str
    ca_cert: Path | None
    api_key: str | None
    basic_auth: tuple[str, str] | None

    @property
    def signed_in(self) -> bool:
        return self.api_key is not None or self.basic_auth is not None


def _target(ctx: typer.Context) -> _Target:
    group = ctx.meta.get(_GROUP_KEY) or _Given(url=DEFAULT_URL)
    command = ctx.meta.get(_COMMAND_KEY) or _Given()
    url = command.url or group.url or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"expected an http:// or https:// URL, got [{url}]",
                                 param_hint="--url")
    credentials = command.typed or group.typed or group.from_env
    if credentials.api_key is not None and credentials.user is not None:
        raise typer.BadParameter("give --api-key or --user, not both", param_hint="--api-key")
    return _Target(url.rstrip("/"), command.ca_cert or group.ca_cert, credentials.api_key,
                   _basic_auth(credentials.user) if credentials.user is not None else None)


def _basic_auth(user: str) -> tuple[str, str]:
    """``NAME:PASSWORD`` as given, or ``NAME`` with the password from the environment or a prompt."""
    name, sep, password = user.partition(":")
    if not name:
        raise typer.BadParameter(f"expected NAME or NAME:PASSWORD, got [{user}]", param_hint="--user")
    if not sep:
        password = os.environ.get(PASSWORD_ENV) or typer.prompt(
            f"Password for [{name}]", hide_input=True, err=True
        )
    return name, password


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def connect(ctx: typer.Context, *, timeout: float | None = HTTP_TIMEOUT,
            headers: dict[str, str] | None = None) -> Iterator[Client]:
    """A client for the chosen node and credentials. Server errors (refused credentials
    included) and connection failures end the command with a one-line message and exit code 1."""
    target = _target(ctx)
    try:
        client = Client(target.url, timeout=timeout, headers=headers, api_key=target.api_key,
                        basic_auth=target.basic_auth, ca_certs=target.ca_cert)
    except OSError as exc:  # ssl.SSLError included: not a CA file
        fail(f"cannot use the CA file {target.ca_cert}: {exc}")
    try:
        with client:
            yield client
    except AuthenticationError as exc:
        fail(_refused(exc, target.signed_in))
    except TaskwardenError as exc:
        fail(f"{exc.type}: {exc.reason}")
    except httpx.TimeoutException:
        fail(f"no answer from taskwarden at {target.url} within {timeout:g}s")
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        hint = " (give --ca-cert with the CA that signed the node's certificate)" if (
            "CERTIFICATE_VERIFY_FAILED" in reason and target.ca_cert is None) else ""
        fail(f"cannot reach taskwarden at {target.url}: {reason}{hint}")


def _refused(exc: AuthenticationError, signed_in: bool) -> str:
    """A 401 on one line: without credentials, which options give them; else why they failed."""
    if not signed_in:
        return f"{exc.type}: {exc.reason} ({_CREDENTIAL_HINT})"
    detail = exc.metadata.get("additional_unsuccessful_credentials")
    return f"{exc.type}: {exc.reason}" + (f" ({detail})" if detail else "")


def print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
