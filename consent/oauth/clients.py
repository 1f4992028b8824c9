"""Our client rows as Authlib's ClientMixin expects them."""

from __future__ import annotations

from consent import scopes
from consent.clients import secret_matches
from consent.models import OAuthClient


class AuthlibClient:
    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris = self.row.redirect_uri_list
        return uris[0] if len(uris) == 1 else None  # with several, the request must name one

    def get_allowed_scope(self, scope: str) -> str | None:
        """All of what was asked, or None (invalid_scope): never a silent narrowing (Authlib #320)."""
        asked = scopes.split(scope)
        allowed = set(scopes.split(self.row.scope))
        if not asked or not set(asked) <= allowed:
            return None
        return scopes.join(asked)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uri_list  # exact string match, RFC 9700 s4.1.3

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(self.row.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_type_list
