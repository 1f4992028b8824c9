"""Dynamic client registration (RFC 7591), open only to holders of an operator's initial access token."""

from __future__ import annotations

import secrets
import time
from typing import Any

from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError

from consent.clients import SECRET_BYTES, ClientService, NewClient
from consent.models import OAuthClient
from pds.errors import ValidationError


class Registration(ClientRegistrationEndpoint):
    def __init__(self, server: Any, metadata: dict[str, Any]) -> None:
        super().__init__(server)
        self.metadata = metadata

    def get_server_metadata(self) -> dict[str, Any]:
        return self.metadata

    def authenticate_token(self, request: Any) -> bool:
        """RFC 7591 s3: the initial access token, spent by this one registration."""
        header = request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token:
            return False
        return ClientService(self.server.ctx.session()).spend_initial_access_token(token.strip())

    def generate_client_info(self, request: Any) -> dict[str, Any]:
        public = request.payload.data.get("token_endpoint_auth_method") == "none"
        info: dict[str, Any] = {
            "client_id": secrets.token_urlsafe(16),
            "client_id_issued_at": int(time.time()),
        }
        if not public:
            info["client_secret"] = secrets.token_urlsafe(SECRET_BYTES)
            info["client_secret_expires_at"] = 0
        return info

    def save_client(
        self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any
    ) -> OAuthClient:
        method = client_metadata.get("token_endpoint_auth_method", "client_secret_basic")
        try:
            made: NewClient = ClientService(self.server.ctx.session()).add(
                name=str(client_metadata.get("client_name") or ""),
                redirect_uris=list(client_metadata.get("redirect_uris") or []),
                scope=str(client_metadata.get("scope") or ""),
                public=method == "none",
                auth_method=method,
                grant_types=list(client_metadata.get("grant_types") or ["authorization_code"]),
                client_id=client_info["client_id"],
                secret=client_info.get("client_secret"),
                verified=False,  # self-registered: the consent screen says nobody checked it
            )
        except ValidationError as exc:
            error = InvalidRedirectURIError if exc.field == "redirect_uris" else InvalidClientMetadataError
            raise error(f"{exc.field}: {exc.detail}") from None
        return made.client
