"""`pds orgs`, `pds staff` and `pds requests`: organisations, their professionals, and their requests."""

from __future__ import annotations

import click

from pds.cli import Context, emit, pass_ctx


@click.group(help="Organisations whose staff use pds: GP practices, schools, councils, police forces.")
def orgs() -> None:
    pass


@orgs.command("add", help="Add an organisation and print it as JSON.")
@click.option("--kind", required=True, type=click.Choice(["gp_practice", "school", "council", "police"]))
@click.option("--code", required=True, help="ODS code for a GP practice (like A81001), else its own code.")
@click.option("--name", required=True, help="Its name, as citizens will see it.")
@pass_ctx
def orgs_add(ctx: Context, kind: str, code: str, name: str) -> None:
    from consent.professionals import StaffService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        org = StaffService(session).add_org(kind=kind, code=code, name=name)
        emit({"id": str(org.id), "kind": org.kind, "code": org.code, "name": org.name})


@orgs.command("list", help="List organisations.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def orgs_list(ctx: Context, as_json: bool) -> None:
    from consent.professionals import StaffService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        rows = [
            {"id": str(o.id), "kind": o.kind, "code": o.code, "name": o.name}
            for o in StaffService(session).orgs()
        ]
    if as_json:
        emit(rows)
        return
    for r in rows:
        click.echo(f"{r['code']:<10} {r['kind']:<12} {r['name']}")


@click.group(help="Professionals: a GP, practice nurse, teacher, caseworker, officer or administrator.")
def staff() -> None:
    pass


@staff.command("add", help="Add a member of staff; prints them as JSON with a new password, shown once.")
@click.option(
    "--org", "org_code", required=True, help="The organisation's code (ODS code for a GP practice)."
)
@click.option("--name", required=True, help="Full name, as patients will see it.")
@click.option("--email", required=True, help="Work email address: how they sign in.")
@click.option(
    "--role", required=True, type=click.Choice(["gp", "nurse", "teacher", "caseworker", "officer", "admin"])
)
@pass_ctx
def staff_add(ctx: Context, org_code: str, name: str, email: str, role: str) -> None:
    from consent.professionals import StaffService
    from pds.accounts import generate_password
    from pds.db import session_scope

    password = generate_password()
    with session_scope(ctx.runtime().sessions) as session:
        service = StaffService(session)
        member = service.add(
            org_id=service.org_by_code(org_code).id, name=name, email=email, role=role, password=password
        )
        emit(
            {
                "id": str(member.id),
                "org": org_code.upper(),
                "name": member.name,
                "email": member.email,
                "role": member.role,
                "password": password,
                "second_factor": "set up an authenticator app at the first sign-in to /portal",
            }
        )


@staff.command("list", help="List an organisation's staff.")
@click.option("--org", "org_code", required=True, help="The organisation's code.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def staff_list(ctx: Context, org_code: str, as_json: bool) -> None:
    from consent.professionals import StaffService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        service = StaffService(session)
        rows = [
            {"id": str(m.id), "name": m.name, "email": m.email, "role": m.role, "status": m.status}
            for m in service.of_org(service.org_by_code(org_code).id)
        ]
    if as_json:
        emit(rows)
        return
    for r in rows:
        click.echo(f"{r['email']:<32} {r['role']:<11} {r['status']:<8} {r['name']}")


@staff.command("revoke", help="End a member of staff's access at once: sessions, tokens and grants.")
@click.argument("email")
@pass_ctx
def staff_revoke(ctx: Context, email: str) -> None:
    from sqlalchemy import select

    from consent.models import StaffMember
    from consent.professionals import StaffService
    from pds.db import session_scope

    with session_scope(ctx.runtime().sessions) as session:
        member = session.scalar(select(StaffMember).where(StaffMember.email == email.strip().lower()))
        if member is None:
            raise click.ClickException(f"no member of staff with email {email}")
        StaffService(session).revoke(member.id)
    click.echo(f"revoked {email}: their sessions and tokens stop now")


@click.group("requests", help="Professionals' requests for consent: expiry, and callbacks to their systems.")
def requests_group() -> None:
    pass


@requests_group.command("callbacks", help="Post the signed callbacks that are due now (one round).")
@pass_ctx
def requests_callbacks(ctx: Context) -> None:
    from pds.callbacks import send_due_callbacks

    sent, failed = send_due_callbacks(ctx.runtime())
    click.echo(f"sent {sent}, failed {failed}")
    if failed:
        raise click.ClickException(f"{failed} callbacks could not be delivered; they will be tried again")


@requests_group.command("expire", help="Mark requests left unanswered past their time as expired (cron).")
@pass_ctx
def requests_expire(ctx: Context) -> None:
    from pds.callbacks import expire_requests

    click.echo(f"expired {expire_requests(ctx.runtime())} requests")
