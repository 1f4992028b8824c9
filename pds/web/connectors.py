"""POST /connectors/{name}/deliveries: a source system pushes a delivery in its own format.

The pusher holds a client-credentials token whose scope names this connector (`pds connectors
credentials NAME`). The delivery is checked whole, matched to citizens, stored and written to the ledger
in the request's transaction: all of it, or (with a 422 listing every bad item) none of it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from connectors.ingest import deliver
from connectors.registry import SOURCE_KIND, parser_for
from consent.models import OAuthToken
from consent.oauth.context import API_PATH
from consent.oauth.resource import BearerError, InsufficientScope, NoCredentials
from consent.scopes import connector_scope
from consent.tokens import InvalidToken, TokenVerifier
from pds.errors import NotFound, PdsError
from pds.settings import ConnectorSettings
from pds.web import db, runtime, vault

bp = Blueprint("connectors", __name__, url_prefix="/connectors")


class TooLarge(PdsError):
    status = 413
    slug = "too-large"
    title = "Delivery too large"


class UnsupportedMedia(PdsError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


@bp.post("/<name>/deliveries")
def push(name: str) -> Response:
    connector = runtime().settings.connectors.get(name)
    if connector is None:
        raise NotFound(f"no connector is called {name!r}", field="name")
    _check_token(connector)
    body = _body(connector)
    parser = parser_for(connector)
    if request.mimetype not in parser.media_types:
        raise UnsupportedMedia(
            f"send {' or '.join(parser.media_types)}, not {request.mimetype or 'no Content-Type'}",
            field="Content-Type",
        )
    items = parser.parse(body, media_type=request.mimetype)
    vault().sources.ensure(name, kind=SOURCE_KIND[connector.kind], title=connector.title)
    result = deliver(vault(), name, items, actor=f"connector:{name}")
    return jsonify(result.to_json())


def _check_token(connector: ConnectorSettings) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NoCredentials("send the connector's access token: Authorization: Bearer <token>")
    issuer = runtime().settings.server.public_url
    try:
        claims = TokenVerifier(db(), issuer=issuer).verify(token.strip(), audience=issuer + API_PATH)
    except InvalidToken as exc:
        raise BearerError(str(exc)) from None
    if claims.citizen_id is not None:
        raise InsufficientScope("a citizen's token cannot push deliveries")
    if connector_scope(connector.name) not in claims.scopes:
        raise InsufficientScope(f"this needs the {connector_scope(connector.name)} scope")
    revoked = db().execute(select(OAuthToken.revoked_at).where(OAuthToken.jti == claims.jti)).first()
    if revoked is None or revoked[0] is not None:
        raise BearerError("the token has been revoked")


def _body(connector: ConnectorSettings) -> bytes:
    """The body, refused before it is read past the connector's limit."""
    limit = connector.max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"deliveries to {connector.name} are at most {limit} bytes", field="body")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise TooLarge(f"deliveries to {connector.name} are at most {limit} bytes", field="body")
    return body
