"""OAuth endpoints and the consent screen: who is asking, for what, why and for how long."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from consent import events, scopes
from consent.oauth.context import Subject
from consent.oauth.grants import requested_resource
from consent.oauth.server import PdsAuthorizationServer
from consent.services import GrantService
from pds.web import db, signed_in_citizen
from pds.web.forms import ConsentForm
from pds.web.staff_signin import signed_in_staff

bp = Blueprint("oauth", __name__)


def server() -> PdsAuthorizationServer:
    return current_app.extensions["pds.oauth"]  # type: ignore[no-any-return]


def _oauth_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authlib raises ValueError when a parameter it echoes into an error holds characters RFC 6749
    s5.2 forbids there (a NUL in response_type, say): that is a bad request, answered as one."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except ValueError as exc:
            if not _raised_in_authlib(exc):
                raise  # our own bug (a template's, say): not the client's fault, and not to be hidden
            response = jsonify(
                error="invalid_request", error_description="a parameter holds forbidden characters"
            )
            response.status_code = 400
            return response

    return wrapper


def _raised_in_authlib(exc: BaseException) -> bool:
    """Whether Authlib was on the way to where the error was raised."""
    frame = exc.__traceback__
    while frame is not None:
        if str(frame.tb_frame.f_globals.get("__name__", "")).startswith("authlib."):
            return True
        frame = frame.tb_next
    return False


def _see_other(response: Response) -> Response:
    """After a form POST, send the browser on with 303, never 302/307 (RFC 9700 s4.12)."""
    if request.method == "POST" and response.status_code in (302, 307):
        response.status_code = 303
    return response


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@_oauth_errors
def authorize() -> Response | str:
    srv = server()
    try:
        grant = srv.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return srv.handle_error_response(None, error)  # type: ignore[no-any-return]
    client = grant.client.row
    if client.users == "staff":  # a professionals' system: the portal, or a GP system
        return _authorize_staff(srv, grant)
    citizen_id = signed_in_citizen()
    if citizen_id is None:  # authenticate before any redirect back to the client (RFC 9700 s4.11.2)
        return redirect(url_for("account.signin", next=request.full_path), code=303)

    asked = scopes.split(grant.request.scope)
    asked_categories = scopes.categories_of(grant.request.scope)
    resource = requested_resource(srv.ctx, grant.request.payload.data)
    grants = GrantService(db())
    auth_time = int(session.get("auth_time") or time.time())

    held = grants.live_covering(citizen_id, client.client_id, asked_categories)
    if held is not None and set(asked) <= set(scopes.split(held.scope)) and request.method == "GET":
        # already granted all of this: not asked again
        subject = Subject(citizen_id, held.id, scopes.join(asked), resource, auth_time)
        return srv.create_authorization_response(grant_user=subject, grant=grant)  # type: ignore[no-any-return]

    form = ConsentForm()
    if request.method == "POST" and form.validate_on_submit():
        if request.form.get("decision") != "allow":
            events.append_event(
                db(),
                events.REQUEST_DENIED,
                actor=f"citizen:{citizen_id}",
                citizen_id=citizen_id,
                details={"client_id": client.client_id, "scope": grant.request.scope},
            )
            return _see_other(srv.create_authorization_response(grant_user=None, grant=grant))
        chosen = [c for c in request.form.getlist("categories") if c in asked_categories]
        others = [s for s in asked if s not in scopes.CATEGORY_SCOPES]
        approved = scopes.join(others + scopes.scopes_for_categories(chosen))
        created = grants.create(
            citizen_id=citizen_id,
            client_id=client.client_id,
            categories=chosen,
            scope=approved,
            purpose=client.purpose,
            ends_at=form.ends_at(),
            actor=f"citizen:{citizen_id}",
        )
        subject = Subject(citizen_id, created.id, approved, resource, auth_time)
        return _see_other(srv.create_authorization_response(grant_user=subject, grant=grant))

    page = render_template(
        "consent.html",
        client=client,
        form=form,
        action=request.full_path,
        category_scopes=[s for s in asked if s in scopes.CATEGORY_SCOPES],
        other_scopes=[s for s in asked if s not in scopes.CATEGORY_SCOPES],
        scope_categories=scopes.CATEGORY_SCOPES,
        plain_words=scopes.PLAIN_WORDS,
    )
    return Response(page, status=400 if request.method == "POST" else 200)  # a POST here failed validation


def _authorize_staff(srv: PdsAuthorizationServer, grant: Any) -> Response:
    """A professional signs in (password and second factor, always) and is sent back with a code. No
    consent screen: the operator registered the system for the organisation, and what the professional
    may read is decided by each patient's grant, not by this sign-in."""
    member = signed_in_staff()
    if member is None:
        return redirect(url_for("staff_signin.signin", next=request.full_path), code=303)  # type: ignore[return-value]
    resource = requested_resource(srv.ctx, grant.request.payload.data)
    auth_time = int(session.get("op_staff_auth_time") or time.time())
    subject = Subject(
        None, None, scopes.join(scopes.split(grant.request.scope)), resource, auth_time, staff_id=member.id
    )
    return _see_other(srv.create_authorization_response(grant_user=subject, grant=grant))


def _unreadable_client_auth() -> Response | None:
    """An Authorization header Authlib cannot parse is a failed client authentication (RFC 6749
    s5.2), not a crash: Authlib's Basic parser raises on a header without a space, bad base64 or
    bytes that are not UTF-8."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    kind, _, credentials = header.strip().partition(" ")
    try:
        if kind.lower() != "basic" or ":" in base64.b64decode(credentials.strip(), validate=True).decode():
            return None if credentials.strip() else _invalid_client()
    except (ValueError, UnicodeDecodeError):
        pass
    return _invalid_client()


def _invalid_client() -> Response:
    response = jsonify(error="invalid_client", error_description="the Authorization header cannot be read")
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="pds"'
    return response


@bp.post("/oauth/token")
@_oauth_errors
def token() -> Response:
    return _unreadable_client_auth() or server().create_token_response()  # type: ignore[no-any-return]


@bp.post("/oauth/revoke")
@_oauth_errors
def revoke() -> Response:
    return _unreadable_client_auth() or server().create_endpoint_response("revocation")  # type: ignore[no-any-return]


@bp.post("/oauth/introspect")
@_oauth_errors
def introspect() -> Response:
    return _unreadable_client_auth() or server().create_endpoint_response("introspection")  # type: ignore[no-any-return]


@bp.post("/oauth/register")
@_oauth_errors
def register() -> Response:
    """RFC 7591; a missing or spent initial access token is a 401 (RFC 6750 s3.1)."""
    response = server().create_endpoint_response("client_registration")
    if response.status_code == 400 and response.json and response.json.get("error") == "access_denied":
        body = {
            "error": "invalid_token",
            "error_description": "send a valid initial access token from the operator",
        }
        response = jsonify(body)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response  # type: ignore[no-any-return]


@bp.get("/oauth/jwks")
def jwks() -> Response:
    srv = server()
    return jsonify(srv.ctx.signing().jwks())


def metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 authorization server metadata, which OIDC discovery extends."""
    return {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/oauth/authorize",
        "token_endpoint": issuer + "/oauth/token",
        "revocation_endpoint": issuer + "/oauth/revoke",
        "introspection_endpoint": issuer + "/oauth/introspect",
        "registration_endpoint": issuer + "/oauth/register",
        "jwks_uri": issuer + "/oauth/jwks",
        "userinfo_endpoint": issuer + "/api/v1/userinfo",
        "scopes_supported": list(scopes.SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "authorization_response_iss_parameter_supported": True,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": ["sub", "name", "email", "iss", "aud", "exp", "iat", "auth_time", "nonce"],
    }


@bp.get("/.well-known/oauth-authorization-server")
def as_metadata() -> Response:
    return jsonify(metadata(server().ctx.issuer))


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    return jsonify(metadata(server().ctx.issuer))
