"""The `pds` command. Thin: each command loads settings, opens the vault and calls a service."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from consent.signing import SigningKeys
from pds import migrate
from pds.errors import PdsError
from pds.settings import Settings, SettingsError, load_settings
from pds.vault.crypto import KeyProvider, LocalKeyProvider


class Context:
    """Settings and runtime, built only when a command needs them (so --help always works)."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._runtime: Any = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def runtime(self, *, check: bool = True) -> Any:
        from pds.runtime import Runtime

        if self._runtime is None:
            self._runtime = Runtime.build(self.settings)
            if check:
                self._runtime.check()
        return self._runtime


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def parse_id(value: str, what: str = "citizen id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a {what}") from None


@contextmanager
def progress(length: int, label: str) -> Iterator[Any]:
    """A progress bar on stderr, so stdout stays clean for --json."""
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar


@click.group(help="pds: a personal data store with a consent ledger.")
@click.version_option(package_name="pds")
def cli() -> None:
    pass


# -- set-up ------------------------------------------------------------------------------------


@cli.command(help="Generate keys (if absent) and create or upgrade the database. Safe to run again.")
@pass_ctx
def init(ctx: Context) -> None:
    settings = ctx.settings
    if settings.database.is_sqlite:
        database = make_url(settings.database.url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.keys.provider == "local":
        for path in LocalKeyProvider.create(settings.keys.dir):
            click.echo(f"wrote key {path}")
    runtime = ctx.runtime(check=False)
    migrate.upgrade(runtime.engine)
    runtime.check()
    click.echo(f"database ready at revision {migrate.head()}; keys in {settings.keys.dir or 'environment'}")


@cli.group(help="Database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply migrations up to REVISION (default: the newest).")
@click.argument("revision", default="head")
@pass_ctx
def db_upgrade(ctx: Context, revision: str) -> None:
    runtime = ctx.runtime(check=False)
    migrate.upgrade(runtime.engine, revision)
    click.echo(f"database at revision {migrate.current(runtime.engine)}")


@db.command("current", help="Print the database's migration revision.")
@pass_ctx
def db_current(ctx: Context) -> None:
    click.echo(migrate.current(ctx.runtime(check=False).engine) or "empty")


@cli.command(help="Serve pds over HTTP with gunicorn.")
@click.option("--host", help="Address to listen on (default: server.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on (default: server.port).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None) -> None:
    from pds.serve import run

    ctx.runtime()  # fail here, in one line, rather than in every worker
    run(ctx.settings, host=host, port=port)


@cli.command(help="Create demo citizens and records, and print each demo account with a new password.")
@click.option("--json", "as_json", is_flag=True, help="Print the accounts as JSON.")
@pass_ctx
def demo(ctx: Context, as_json: bool) -> None:
    from pds.demo import ensure_demo_client, ensure_demo_staff, load_demo

    with ctx.runtime().vault() as vault:
        accounts = load_demo(vault)
        app = ensure_demo_client(vault.session)
        staff = ensure_demo_staff(vault.session, ctx.runtime().provider)
    if as_json:
        emit({"accounts": accounts, "oauth_client": app, "staff": staff})
        return
    click.echo("Demo accounts (passwords are new each time `pds demo` runs):")
    for a in accounts:
        login = f"{a['email']}  password {a['password']}" if a["email"] else "no sign-in (a child)"
        click.echo(f"  {a['name']:<14} {login}  NHS {a['nhs_number']}  ({a['about']})")
    click.echo(
        f"Demo OAuth app: client_id {app['client_id']} (public, PKCE S256), redirect {app['redirect_uri']}"
    )
    click.echo("Demo professionals (sign in at /portal; set up an authenticator app at the first sign-in):")
    for m in staff:
        click.echo(f"  {m['name']:<15} {m['email']}  password {m['password']}  ({m['role']}, {m['org']})")


# -- keys --------------------------------------------------------------------------------------


@cli.group(help="Key-encryption keys.")
def keys() -> None:
    pass


@keys.command("list", help="List key-encryption keys and how many data keys each wraps.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def keys_list(ctx: Context, as_json: bool) -> None:
    from pds.db import session_scope
    from pds.vault.keys import kek_usage

    runtime = ctx.runtime()
    with session_scope(runtime.sessions) as session:
        usage = kek_usage(session)
    provider: KeyProvider = runtime.provider
    rows = [
        {"kek_id": k, "active": k == provider.active_kek_id(), "data_keys": usage.get(k, 0)}
        for k in provider.kek_ids()
    ]
    if as_json:
        emit(rows)
        return
    for row in rows:
        click.echo(
            f"{row['kek_id']}  {'active' if row['active'] else 'old   '}  wraps {row['data_keys']} data keys"
        )


@keys.command("rotate", help="Add a new key-encryption key and rewrap every data key with it.")
@pass_ctx
def keys_rotate(ctx: Context) -> None:
    from consent.professionals import StaffService
    from pds.db import session_scope
    from pds.vault.keys import check_keys, kek_usage, rewrap_data_keys

    runtime = ctx.runtime()
    provider = runtime.provider
    if isinstance(provider, LocalKeyProvider):
        click.echo(f"new key {provider.add_kek()} is now active")
    else:
        click.echo(f"rewrapping to {provider.active_kek_id()}, the newest key in the environment")
    with session_scope(runtime.sessions) as session:
        todo = sum(n for k, n in kek_usage(session).items() if k != provider.active_kek_id())
        check_keys(session, provider)
    with progress(todo, "rewrapping data keys") as bar:
        done = rewrap_data_keys(runtime.sessions, provider, progress=bar.update)
    with session_scope(runtime.sessions) as session:
        SigningKeys(session, provider=provider).rewrap()
        runtime.checkpoints(session).rewrap()
        StaffService(session, provider=provider).rewrap_totp()
    old = [k for k in provider.kek_ids() if k != provider.active_kek_id()]
    click.echo(f"rewrapped {done} data keys; records were not touched")
    if old:
        click.echo(f"no data key needs {', '.join(old)} any more: `pds keys retire KEK_ID` deletes it")


@keys.command("retire", help="Delete an old key-encryption key file once no data key needs it.")
@click.argument("kek_id")
@pass_ctx
def keys_retire(ctx: Context, kek_id: str) -> None:
    from consent.professionals import StaffService
    from pds.db import session_scope
    from pds.vault.keys import retire_kek

    runtime = ctx.runtime()
    if not isinstance(runtime.provider, LocalKeyProvider):
        raise click.ClickException("keys in the environment are retired by removing them from PDS_KEYS_KEKS")
    with session_scope(runtime.sessions) as session:
        if (
            SigningKeys(session, provider=runtime.provider).kek_usage().get(kek_id)
            or (runtime.checkpoints(session).kek_usage().get(kek_id))
            or StaffService(session).totp_kek_usage().get(kek_id)
        ):
            raise click.ClickException(
                f"{kek_id} still wraps signing keys or staff second factors: run `pds keys rotate` first"
            )
        retire_kek(session, runtime.provider, kek_id)
    click.echo(f"deleted {kek_id}")


@keys.command(
    "rotate-signing", help="Make a new token signing key; the old one verifies until its tokens expire."
)
@pass_ctx
def keys_rotate_signing(ctx: Context) -> None:
    from pds.db import session_scope

    runtime = ctx.runtime()
    with session_scope(runtime.sessions) as session:
        new, old = SigningKeys(session, provider=runtime.provider).rotate()
    click.echo(f"signing with {new} now; {old} stays in the JWKS until its tokens have expired")


# -- citizens ----------------------------------------------------------------------------------


@cli.group(help="Citizens and their vaults.")
def citizens() -> None:
    pass


@citizens.command("add", help="Create a citizen with an empty vault.")
@click.option("--name", required=True, help="Full name.")
@click.option("--date-of-birth", required=True, help="YYYY-MM-DD.")
@click.option("--email", help="Email address (their sign-in).")
@click.option("--nhs-number", help="NHS number, 10 digits.")
@click.option("--upn", help="Unique pupil number, for a child at school in England.")
@click.option("--json", "as_json", is_flag=True, help="Print the new citizen as JSON.")
@pass_ctx
def citizens_add(
    ctx: Context,
    name: str,
    date_of_birth: str,
    email: str | None,
    nhs_number: str | None,
    upn: str | None,
    as_json: bool,
) -> None:
    with ctx.runtime().vault() as vault:
        profile = vault.citizens.add(
            name=name, date_of_birth=date_of_birth, email=email, nhs_number=nhs_number
        )
        if upn:
            vault.citizens.add_identifier(profile.id, "upn", upn)
    if as_json:
        emit(profile.to_json())
    else:
        click.echo(f"created citizen {profile.id}")


@citizens.command("list", help="List citizens.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def citizens_list(ctx: Context, as_json: bool) -> None:
    with ctx.runtime().vault() as vault:
        people = [p.to_json() for p in vault.citizens.all()]
    if as_json:
        emit(people)
        return
    for p in people:
        label = p["name"] if p["status"] == "active" else "(erased)"
        click.echo(f"{p['id']}  {label}  {p['email'] or ''}")


@citizens.command("export", help="Print every record of a citizen, decrypted, as JSON.")
@click.argument("citizen_id")
@pass_ctx
def citizens_export(ctx: Context, citizen_id: str) -> None:
    from consent import events

    cid = parse_id(citizen_id)
    runtime = ctx.runtime()
    with runtime.vault() as vault:  # the operator's read is in the ledger before anything is shown
        vault.citizens.get(cid)
        events.append_event(vault.session, events.RECORDS_EXPORTED, actor="operator:cli", citizen_id=cid)
    with runtime.vault() as vault:
        profile = vault.citizens.get(cid).to_json()
        head = {"citizen": profile, "identifiers": vault.citizens.identifiers(cid), "exported_at": _now()}
        # Streamed: a vault may hold more records than fit in memory at once.
        click.echo(json.dumps(head, ensure_ascii=False)[:-1] + ', "records": [')
        for n, record in enumerate(vault.records.export(cid)):
            click.echo(("," if n else "") + json.dumps(record.to_json(), ensure_ascii=False))
        click.echo("]}")


@citizens.command("delete", help="Erase a citizen: destroy their data key and delete their records.")
@click.argument("citizen_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def citizens_delete(ctx: Context, citizen_id: str, yes: bool) -> None:
    cid = parse_id(citizen_id)
    if not yes and not click.confirm(f"Erase citizen {cid}? This cannot be undone", err=True):
        raise click.ClickException("nothing erased")
    from consent import events

    with ctx.runtime().vault() as vault:  # the erasure and its ledger entry commit together
        vault.citizens.live(cid)
        # recorded first: afterwards nothing can be sealed for them, nor their pseudonym computed
        events.append_event(vault.session, events.CITIZEN_ERASED, actor="operator:cli", citizen_id=cid)
        erased = vault.citizens.erase(cid)
        events.forget(vault.session, cid)
    click.echo(
        f"erased citizen {cid}: {erased.records} records deleted, {erased.data_keys} data keys destroyed"
    )


# -- OAuth clients -----------------------------------------------------------------------------


@cli.group(help="Apps and systems that may ask for access (OAuth clients).")
def clients() -> None:
    pass


@clients.command("add", help="Register an OAuth client and print it as JSON (with its secret, shown once).")
@click.option("--name", required=True, help="The app's name, as citizens will see it.")
@click.option(
    "--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI; repeat for several."
)
@click.option(
    "--scope", required=True, help='Space-separated, e.g. "openid profile health.read offline_access".'
)
@click.option("--public", is_flag=True, help="A public client (mobile or browser app): no secret, PKCE only.")
@click.option("--operator", default="", help="Who runs the app, shown on the consent screen.")
@click.option("--purpose", default="", help="Why the app asks, shown on the consent screen.")
@click.option("--verified", is_flag=True, help="You have checked who runs the app.")
@click.option("--client-credentials", is_flag=True, help="A system that gets tokens for itself (no citizen).")
@click.option(
    "--for",
    "users",
    type=click.Choice(["citizens", "staff"]),
    default="citizens",
    help="Who signs in to it: citizens (apps), or professionals (a GP system; scope consent.requests).",
)
@pass_ctx
def clients_add(
    ctx: Context,
    name: str,
    redirect_uris: tuple[str, ...],
    scope: str,
    public: bool,
    operator: str,
    purpose: str,
    verified: bool,
    client_credentials: bool,
    users: str,
) -> None:
    from consent.clients import ClientService
    from pds.db import session_scope

    grant_types = ["client_credentials"] if client_credentials else None
    with session_scope(ctx.runtime().sessions) as session:
        created = ClientService(session).add(
            name=name,
            redirect_uris=list(redirect_uris),
            scope=scope,
            public=public,
            operator=operator,
            purpose=purpose,
            verified=verified,
            grant_types=grant_types,
            users=users,
        )
        data = created.to_json()
    emit(data)


@clients.command("list", help="List OAuth clients.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def clients_list(ctx: Context, as_json: bool) -> None:
    from consent.clients import ClientService, NewClient
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        rows = [
            NewClient(c, None).to_json() | {"operator": c.operator, "verified": c.verified}
            for c in ClientService(session).all()
        ]
    if as_json:
        emit(rows)
        return
    for r in rows:
        click.echo(f"{r['client_id']}  {r['client_name']}  {r['token_endpoint_auth_method']}  {r['scope']}")


@clients.command("token", help="Issue an initial access token that lets one app register itself (RFC 7591).")
@click.option("--note", default="", help="A note to remember whom it was for.")
@pass_ctx
def clients_token(ctx: Context, note: str) -> None:
    from consent.clients import ClientService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        token, expires = ClientService(session).issue_initial_access_token(note)
    emit(
        {
            "initial_access_token": token,
            "expires_at": expires.isoformat(),
            "registration_endpoint": ctx.settings.server.public_url + "/oauth/register",
        }
    )


# -- grants ------------------------------------------------------------------------------------


@cli.group(help="Consent grants.")
def grants() -> None:
    pass


@grants.command("list", help="A citizen's grants: who may read what, until when.")
@click.argument("citizen_id")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def grants_list(ctx: Context, citizen_id: str, as_json: bool) -> None:
    from consent.services import GrantService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        rows = [
            {
                "id": str(g.id),
                "client_id": g.client_id,
                "categories": g.category_list,
                "status": g.status,
                "purpose": g.purpose,
                "ends_at": g.ends_at.isoformat(),
            }
            for g in GrantService(session).for_citizen(parse_id(citizen_id))
        ]
    if as_json:
        emit(rows)
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['client_id']}  {','.join(r['categories'])}  {r['status']}  until {r['ends_at']}"
        )


@grants.command("expire", help="Mark grants past their end as expired, each in the ledger (run from cron).")
@pass_ctx
def grants_expire(ctx: Context) -> None:
    from consent.services import GrantService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        done = GrantService(session).expire_due()
    click.echo(f"expired {done} grants")


# -- guardians ---------------------------------------------------------------------------------


@cli.group(help="Parents acting for their children.")
def guardians() -> None:
    pass


@guardians.command("add", help="Link a parent to a child for some categories.")
@click.argument("parent_id")
@click.argument("child_id")
@click.option("--categories", default="education,health", show_default=True, help="Comma-separated.")
@pass_ctx
def guardians_add(ctx: Context, parent_id: str, child_id: str, categories: str) -> None:
    with ctx.runtime().vault() as vault:
        view = vault.guardians.link(parse_id(parent_id), parse_id(child_id), categories.split(","))
    click.echo(f"linked; the link is {view.status} and ends on {view.ends_on}")


@guardians.command("list", help="List guardian links with their status by the child's age.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def guardians_list(ctx: Context, as_json: bool) -> None:
    with ctx.runtime().vault() as vault:
        links = [v.to_json() for v in vault.guardians.all()]
    if as_json:
        emit(links)
        return
    for v in links:
        click.echo(
            f"{v['parent_id']} -> {v['child_name']}  {v['status']}  {','.join(v['categories'])}  "
            f"ends {v['ends_on']}"
        )


# -- connectors --------------------------------------------------------------------------------


@cli.group(help="Source systems that feed vaults ([connectors.NAME] in config.toml).")
def connectors() -> None:
    pass


def _connector(ctx: Context, name: str) -> Any:
    found = ctx.settings.connectors.get(name)
    if found is None:
        known = ", ".join(sorted(ctx.settings.connectors)) or "none configured"
        raise click.ClickException(f"no connector is called {name!r} (known: {known})")
    return found


@connectors.command(
    "credentials", help="Issue a client id and secret a source system pushes deliveries with."
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def connectors_credentials(ctx: Context, name: str, as_json: bool) -> None:
    from consent.clients import ClientService
    from consent.scopes import connector_scope
    from pds.db import session_scope

    connector = _connector(ctx, name)
    runtime = ctx.runtime()
    with session_scope(runtime.sessions) as session:
        made = ClientService(session).add(
            name=f"{connector.title} (pushes to {name})",
            operator=connector.title,
            purpose=f"Delivers records to pds through the {name} connector",
            redirect_uris=[],
            scope=connector_scope(name),
            grant_types=["client_credentials"],
        )
    base = ctx.settings.server.public_url
    out = {
        "connector": name,
        "client_id": made.client.client_id,
        "client_secret": made.secret,
        "scope": connector_scope(name),
        "token_endpoint": base + "/oauth/token",
        "deliveries_url": f"{base}/connectors/{name}/deliveries",
    }
    if as_json:
        emit(out)
        return
    for key, value in out.items():
        click.echo(f"{key}: {value}")
    click.echo("the secret is shown once: store it in the source system now")


@connectors.command("sync", help="Pull what is new from one connector, or from every one that can be pulled.")
@click.argument("name", required=False)
@pass_ctx
def connectors_sync(ctx: Context, name: str | None) -> None:
    from connectors import sync

    runtime = ctx.runtime()
    chosen = (
        [_connector(ctx, name)]
        if name
        else [c for c in ctx.settings.connectors.values() if c.url or c.folder]
    )
    if not chosen:
        raise click.ClickException("no connector has a url or folder to pull from")
    failed = []
    for connector in chosen:
        try:
            try:
                fetches = sync.plan(connector, _cursor(runtime, connector.name))
            except sync.SyncFailed:
                fetches = []  # run() meets the same failure, and records it
            with progress(len(fetches), f"{connector.name}: pulling") as bar:
                report = sync.run(runtime.sessions, runtime.open_vault, connector, progress=bar.update)
        except sync.SyncFailed as exc:
            click.echo(f"error: {exc}", err=True)
            failed.append(connector.name)
            continue
        c = report.counts
        click.echo(
            f"{connector.name}: {report.deliveries} deliveries, {c['stored']} stored, "
            f"{c['updated']} updated, {c['unchanged']} unchanged; cursor {report.cursor or '(none)'}"
        )
    if failed:
        raise click.ClickException(f"sync failed for {', '.join(failed)}")


def _cursor(runtime: Any, name: str) -> str:
    from connectors.models import ConnectorState
    from pds.db import session_scope

    with session_scope(runtime.read_sessions) as session:
        state = session.get(ConnectorState, name)
        return state.cursor if state else ""


@connectors.command("demo-sources", help="Serve the sample deliveries as local source systems to sync from.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8600, show_default=True, type=int)
def connectors_demo_sources(host: str, port: int) -> None:
    from connectors.demo_sources import serve

    base = f"http://{host}:{port}"
    click.echo("Demo source systems; pull from them with, for example:", err=True)
    for name, path in (
        ("demo-gp", "gp"),
        ("demo-school", "school"),
        ("demo-council", "council"),
        ("demo-police", "police"),
    ):
        variable = "PDS_CONNECTORS_" + name.upper().replace("-", "_") + "_URL"
        click.echo(f"  {variable}={base}/{path} pds connectors sync {name}", err=True)
    serve(host, port)


@connectors.command(
    "status", help="Each connector: its kind, where it pulls from, last run, cursor and last error."
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def connectors_status(ctx: Context, as_json: bool) -> None:
    from connectors.models import ConnectorState
    from pds.db import session_scope

    runtime = ctx.runtime()
    rows = []
    with session_scope(runtime.read_sessions) as session:
        for c in ctx.settings.connectors.values():
            state = session.get(ConnectorState, c.name)
            rows.append(
                {
                    "name": c.name,
                    "kind": c.kind,
                    "title": c.title,
                    "pulls_from": c.url or c.folder or None,
                    "last_run_at": state.last_run_at.isoformat() if state and state.last_run_at else None,
                    "last_success_at": state.last_success_at.isoformat()
                    if state and state.last_success_at
                    else None,
                    "cursor": state.cursor if state else "",
                    "last_error": state.last_error if state else "",
                    "last_counts": json.loads(state.last_counts) if state else {},
                }
            )
    if as_json:
        emit(rows)
        return
    for r in rows:
        where = r["pulls_from"] or "push only"
        last = r["last_run_at"] or "never run"
        error = f"; last error: {r['last_error']}" if r["last_error"] else ""
        click.echo(f"{r['name']}  {r['kind']}  {where}  last run {last}  cursor {r['cursor'] or '-'}{error}")


# -- notifications -------------------------------------------------------------------------------


@cli.group(help="Email to citizens (the [smtp] settings).")
def notify() -> None:
    pass


@notify.command("send", help="Send the notifications waiting in the outbox now.")
@pass_ctx
def notify_send(ctx: Context) -> None:
    from pds.notify import send_due

    runtime = ctx.runtime()
    if not ctx.settings.smtp.host:
        raise click.ClickException("smtp.host is empty: set it (or PDS_SMTP_HOST) to send email")
    sent, failed = send_due(runtime)
    click.echo(f"sent {sent}, failed {failed}")
    if failed:
        raise click.ClickException(f"{failed} messages could not be sent; they will be tried again")


# -- the ledger --------------------------------------------------------------------------------


@cli.group(help="The tamper-evident consent ledger.")
def ledger() -> None:
    pass


@ledger.command(
    "verify", help="Recompute every leaf and root and check every checkpoint; exit 1 on the first fault."
)
@click.option(
    "--key", "vkey", help="Accept only checkpoints signed by this verifier key (the one you published)."
)
@pass_ctx
def ledger_verify(ctx: Context, vkey: str | None) -> None:
    from sqlalchemy import func, select

    from consent.ledger.audit import AuditFailure, audit
    from consent.ledger.models import LedgerEntry
    from pds.db import session_scope

    runtime = ctx.runtime()
    with session_scope(runtime.read_sessions) as session:
        total = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        try:
            with progress(total, "verifying the ledger") as bar:
                result = audit(session, progress=bar.update, pinned_key=vkey.strip() if vkey else None)
        except AuditFailure as exc:
            raise click.ClickException(f"ledger verify failed: {exc}") from None
    click.echo(f"ok: {result.entries} entries, root {result.root.hex()}")


@ledger.command("key", help="Print the key checkpoints verify with (C2SP verifier key: name+keyid+base64).")
@pass_ctx
def ledger_key(ctx: Context) -> None:
    from pds.db import session_scope

    runtime = ctx.runtime()
    with session_scope(runtime.read_sessions) as session:
        click.echo(runtime.checkpoints(session).verifier_key())


@ledger.command("checkpoint", help="Sign a checkpoint of the log now (if it has grown) and print it.")
@pass_ctx
def ledger_checkpoint(ctx: Context) -> None:
    from pds.db import session_scope

    runtime = ctx.runtime()
    with session_scope(runtime.sessions) as session:
        head = runtime.checkpoints(session).make()
    if head is None:
        raise click.ClickException("the ledger is empty: there is nothing to sign yet")
    click.echo(head.note, nl=False)


@ledger.command(
    "check-proof", help="Check a proof from GET /ledger/entries/N or /ledger/consistency, offline."
)
@click.argument("proof_file", type=click.File("r"))
@click.option("--key", "vkey", required=True, help="The verifier key (`pds ledger key`, GET /ledger/key).")
@click.option(
    "--old", "old_file", type=click.File("r"), help="A checkpoint you kept, to check the log extends it."
)
def ledger_check_proof(proof_file: Any, vkey: str, old_file: Any) -> None:
    from consent.ledger.verify import VerificationError, check_consistency_document, check_entry_document

    try:
        doc = json.load(proof_file)
    except ValueError as exc:
        raise click.ClickException(f"the proof file is not JSON: {exc}") from None
    try:
        if isinstance(doc, dict) and "proof" in doc and "from" in doc:
            old = old_file.read() if old_file else None
            first, second = check_consistency_document(doc, vkey.strip(), old=old)
            click.echo(f"ok: tree {second.size} extends tree {first.size} of {second.origin}")
        else:
            cp = check_entry_document(doc, vkey.strip())
            click.echo(f"ok: entry {doc['index']} is in tree {cp.size} of {cp.origin}, root {cp.root.hex()}")
    except VerificationError as exc:
        raise click.ClickException(f"proof does not verify: {exc}") from None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one plain line on stderr and a non-zero exit."""
    os.umask(0o077)  # the database, its WAL and the key files are the citizen's: no one else reads them
    try:
        cli.main(args=argv, prog_name="pds", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except PdsError as exc:
        where = f" ({exc.field})" if exc.field else ""
        click.echo(f"error: {exc.detail}{where}", err=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
        click.echo(f"error: database: {message[0]}", err=True)
        sys.exit(1)


def _register_groups() -> None:
    from pds.cli_staff import orgs, requests_group, staff

    cli.add_command(orgs)
    cli.add_command(staff)
    cli.add_command(requests_group)


_register_groups()
