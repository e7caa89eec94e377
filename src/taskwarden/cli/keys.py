"""``taskwarden keys create|list|revoke`` and ``taskwarden users set|list|delete``: the credentials
of a cluster started with ``--security``, managed over the ``/_security`` REST API (admin role).

Exit codes as for ``tasks``: 0 done, 1 the server refused or could not be reached (and, for
``revoke``, no key was named or none matched), 2 a usage error.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from taskwarden.cli.connection import JsonOption, connect, connection_callback, fail, print_json

__all__ = ["NEW_PASSWORD_ENV", "keys_app", "users_app"]

NEW_PASSWORD_ENV = "TASKWARDEN_NEW_PASSWORD"

keys_app = typer.Typer(
    name="keys", help="Create, list and revoke API keys (admin role). Connection options go "
                      "before the command (keys --user admin list --user bob).",
    no_args_is_help=True, callback=connection_callback,
)
users_app = typer.Typer(
    name="users", help="Create, change, list and delete users (admin role). Connection options "
                       "go before the command (users --user admin list).",
    no_args_is_help=True, callback=connection_callback,
)

_out = Console(highlight=False)


class RoleName(StrEnum):
    monitor = "monitor"
    manage = "manage"
    admin = "admin"


KeyNameOption = Annotated[str | None, typer.Option("--name", help="Only the keys with this name.")]
KeyOwnerOption = Annotated[
    str | None, typer.Option("--user", metavar="USER", help="Only the keys this user owns.")
]


def _when(millis: Any, missing: str = "-") -> str:
    if not isinstance(millis, int):
        return missing
    return datetime.fromtimestamp(millis / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _key_state(key: dict[str, Any], now_millis: int) -> Text:
    if key.get("invalidated"):
        return Text("invalidated", style="red")
    expiration = key.get("expiration")
    if isinstance(expiration, int) and expiration <= now_millis:
        return Text("expired", style="yellow")
    return Text("valid", style="green")


def _keys_table(keys: list[dict[str, Any]]) -> Table:
    table = Table(expand=False)
    for header in ("id", "name", "role", "owner", "created", "expires", "state"):
        table.add_column(header, overflow="fold")
    now_millis = int(time.time() * 1000)
    for key in keys:
        table.add_row(
            Text(str(key.get("id", "")), style="bold"), Text(str(key.get("name", ""))),
            Text(str(key.get("role", ""))), Text(str(key.get("username", ""))),
            Text(_when(key.get("creation"))), Text(_when(key.get("expiration"), "never")),
            _key_state(key, now_millis),
        )
    return table


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the key is for (list and "
                                                             "revoke find it by name).")],
    role: Annotated[
        RoleName | None, typer.Option("--role", help="What the key may do (default: your role).")
    ] = None,
    expiration: Annotated[
        str | None, typer.Option("--expiration", help="Lifetime: 30d, 12h, ... (default: none).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API key and print it: its secret is shown only this once."""
    with connect(ctx) as client:
        # The key gets the creator's role unless --role says otherwise: ask for it to show it.
        chosen = role.value if role else None
        role_name = chosen or str(client.authenticate()["roles"][0])
        created = client.create_api_key(name, role=chosen, expiration=expiration)
    if as_json:
        print_json(created)
        return
    for label, value in (("id", created["id"]), ("name", created["name"]), ("role", role_name),
                         ("expires", _when(created.get("expiration"), "never")),
                         ("encoded", created["encoded"])):
        typer.echo(f"{label:<10}{value}")
    typer.echo("\nThe key is shown only this once and cannot be read back: store it now. Use it as "
               "--api-key, $TASKWARDEN_API_KEY, or the header 'Authorization: ApiKey <encoded>'.")


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    name: KeyNameOption = None,
    owner: KeyOwnerOption = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include invalidated keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List API keys (never their secrets): valid and expired ones, invalidated ones with --all."""
    with connect(ctx) as client:
        body = client.api_keys(name=name, username=owner)
    keys = [key for key in body.get("api_keys", []) if show_all or not key.get("invalidated")]
    if as_json:
        print_json({"api_keys": keys})
    elif keys:
        _out.print(_keys_table(keys))
    else:
        typer.echo("no API key matched" + ("" if show_all else " (--all adds invalidated keys)"))


@keys_app.command("revoke")
def revoke_keys(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None, typer.Argument(metavar="ID", help="Ids of the keys to revoke.")
    ] = None,
    name: KeyNameOption = None,
    owner: KeyOwnerOption = None,
) -> None:
    """Invalidate API keys by id, name or owner (all given must match): refused at once by the
    node asked, within 5 s by the others."""
    if not (ids or name or owner):
        fail("say which keys to revoke: give key ids, --name or --user")
    with connect(ctx) as client:
        body = client.invalidate_api_keys(ids=ids or None, name=name, username=owner)
    revoked: list[str] = body.get("invalidated_api_keys") or []
    already: list[str] = body.get("previously_invalidated_api_keys") or []
    if not (revoked or already):
        fail("no API key matched")
    if revoked:
        noun = "1 key" if len(revoked) == 1 else f"{len(revoked)} keys"
        typer.echo(f"revoked {noun}: {', '.join(revoked)}")
    if already:
        typer.echo(f"already revoked: {', '.join(already)}")


@users_app.command("set")
def set_user(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")],
    role: Annotated[RoleName, typer.Option("--role", help="monitor reads, manage also cancels "
                                                          "and runs, admin also manages users "
                                                          "and keys.")],
) -> None:
    """Create a user, or change its role and password. The password is asked twice, hidden
    (scripts: $TASKWARDEN_NEW_PASSWORD)."""
    with connect(ctx) as client:
        password = os.environ.get(NEW_PASSWORD_ENV) or typer.prompt(
            f"New password for [{username}]", hide_input=True, confirmation_prompt=True, err=True
        )
        body = client.put_user(username, password=password, roles=[role.value])
    verb = "created" if body.get("created") else "updated"
    typer.echo(f"{verb} user [{username}] with role [{role.value}]")


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the users and their roles."""
    with connect(ctx) as client:
        body = client.users()
    if as_json:
        print_json(body)
        return
    table = Table(expand=False)
    table.add_column("user")
    table.add_column("role")
    for username, info in sorted(body.items()):
        table.add_row(Text(username, style="bold"), Text(", ".join(info.get("roles") or [])))
    _out.print(table)


@users_app.command("delete")
def delete_user(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="NAME", help="The user's name.")],
) -> None:
    """Delete a user; its API keys stop working too."""
    with connect(ctx) as client:
        client.delete_user(username)
    typer.echo(f"deleted user [{username}]; its API keys are invalidated")
