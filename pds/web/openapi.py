"""GET /openapi.json: the OpenAPI 3.1 document of the HTTP API, kept beside the code it describes.

Its schemas are JSON Schema 2020-12: tests/web/test_openapi.py validates real responses against them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from consent.requests import FHIR_TYPES, MAX_PURPOSE, STATUS_WORDS
from consent.scopes import STAFF_SCOPE, SUPPORTED_SCOPES
from consent.services import MAX_GRANT_DAYS
from pds.errors import PROBLEM_JSON
from pds.vault.models import CATEGORIES
from pds.vault.records import KIND, MAX_VERSION
from pds.web import runtime
from pds.web.api_requests import MAX_ASK_BYTES, MAX_LIST

bp = Blueprint("openapi", __name__)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"
Schema = dict[str, Any]
CHALLENGE = "WWW-Authenticate"

STRING, INTEGER, URI = {"type": "string"}, {"type": "integer"}, {"type": "string", "format": "uri"}
UUID, WHEN = {"type": "string", "format": "uuid"}, {"type": "string", "format": "date-time"}
STRINGS, DIGITS = {"type": "array", "items": STRING}, {"type": "string", "pattern": "^[0-9]+$"}
# A page's date field is GOV.UK's date input: three boxes posted under the one name (form style, exploded)
DATE_BOXES = {
    "type": "array",
    "items": STRING,
    "minItems": 3,
    "maxItems": 3,
    "description": "day, month and year, in that order (for example 27, 3, 2027); all three empty: none",
}


def ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def obj(required: str, *, extra: bool = True, **properties: Any) -> Schema:
    """An object schema; `required` names members, space-separated; `extra` allows unlisted ones."""
    schema: Schema = {"type": "object", "properties": properties, "required": required.split()}
    return schema if extra else schema | {"additionalProperties": False}


def each(schema: Schema, names: str) -> dict[str, Any]:
    return dict.fromkeys(names.split(), schema)


def body(schema: Schema, media: str = JSON) -> dict[str, Any]:
    return {media: {"schema": schema}}


def reply(description: str, schema: Schema | None = None, media: str = JSON, *, header: str = "") -> Schema:
    """A response; `header` names a header component it always carries."""
    out: Schema = {"description": description}
    if schema is not None:
        out["content"] = body(schema, media)
    if header:
        out["headers"] = {header: ref(header, "headers")}
    return out


def problem(description: str, header: str = "") -> Schema:
    return reply(description, ref("Problem"), PROBLEM_JSON, header=header)


def query(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "query", "schema": schema, "description": description, "required": required}


# -- components --------------------------------------------------------------------------------


def problem_schemas() -> dict[str, Schema]:
    problem = obj(
        "type title status",
        **each({"type": "string", "format": "uri-reference"}, "type instance"),
        **each(STRING, "title detail"),
        status={"type": "integer", "minimum": 400, "maximum": 599},
        field={**STRING, "description": "extension member: the input at fault, where one is"},
    )
    problem["description"] = "RFC 9457 problem details; other extension members may appear"
    oauth_error = obj("error", **each(STRING, "error error_description state"), error_uri=URI)
    oauth_error["description"] = "RFC 6749 s5.2 error response"
    checks = {"type": "object", "additionalProperties": STRING}
    health = obj("status checks", status={"const": "ok"}, checks=checks)
    return {"Problem": problem, "OAuthError": oauth_error, "Health": health}


def record_schemas() -> dict[str, Schema]:
    record = obj(
        "id citizen_id category kind source source_record_id version occurred_at received_at sensitive "
        "payload",
        extra=False,
        **each(UUID, "id citizen_id"),
        **each(WHEN, "occurred_at received_at"),
        category={"enum": list(CATEGORIES)},
        kind={"type": "string", "pattern": KIND.pattern, "examples": ["fhir:Observation"]},
        source=STRING,
        source_record_id={"type": "string", "minLength": 1, "maxLength": 255},
        version={"type": "integer", "minimum": 0, "maximum": MAX_VERSION},
        sensitive={
            "type": "boolean",
            "description": "marked confidential by its source: never shown to a proxy",
        },
        payload={"type": "object", "description": "the record as its source sent it"},
    )
    page = obj(
        "records next_cursor",
        extra=False,
        records={"type": "array", "items": ref("Record")},
        next_cursor={"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
    )
    return {"Record": record, "RecordPage": page}


def identity_schemas() -> dict[str, Schema]:
    user_info = obj("sub", **each(STRING, "sub name"), email={"type": "string", "format": "email"})
    grant = obj(
        "id categories purpose ends_at records_from records_until",
        extra=False,
        **each({"type": ["string", "null"], "format": "date"}, "records_from records_until"),
        id=UUID,
        categories={"type": "array", "items": {"enum": list(CATEGORIES)}},
        purpose=STRING,
        ends_at=WHEN,
    )
    me = {"allOf": [ref("UserInfo"), obj("grant scope", grant=ref("GrantSummary"), scope=STRING)]}
    return {"UserInfo": user_info, "GrantSummary": grant, "Me": me}


def oauth_schemas() -> dict[str, Schema]:
    token = obj(
        "access_token token_type expires_in",
        **each(STRING, "access_token scope refresh_token id_token"),
        token_type={"const": "Bearer"},
        expires_in={"type": "integer", "minimum": 1},
    )
    token["description"] = (
        "access_token is a JWT; refresh_token only with offline_access, id_token with openid"
    )
    introspection = obj(
        "active",
        **each(STRING, "scope client_id token_type sub"),
        **each(INTEGER, "exp iat"),
        active={"type": "boolean"},
        iss=URI,
        aud={"type": ["string", "array"]},
        grant={**UUID, "description": "the consent grant behind the token"},
    )
    jwk = obj("kty kid", **each(STRING, "kty crv x y kid alg use"), d=False)  # d: never a private key
    jwks = obj("keys", keys={"type": "array", "items": jwk})
    return {"TokenResponse": token, "Introspection": introspection, "JWKS": jwks}


def metadata_schemas() -> dict[str, Schema]:
    endpoints = "authorization token revocation introspection registration userinfo"
    meta = obj(
        "issuer authorization_endpoint token_endpoint jwks_uri response_types_supported "
        "subject_types_supported id_token_signing_alg_values_supported",
        **each(URI, "issuer jwks_uri " + " ".join(f"{e}_endpoint" for e in endpoints.split())),
        scopes_supported={"type": "array", "items": {"enum": list(SUPPORTED_SCOPES)}},
        authorization_response_iss_parameter_supported={"type": "boolean"},
    )
    meta["additionalProperties"] = {"anyOf": [STRINGS, {"type": ["string", "boolean"]}]}
    client = obj(
        "",
        **each(STRING, "client_name scope"),
        **each(STRINGS, "grant_types response_types"),
        redirect_uris={"type": "array", "items": URI},
        token_endpoint_auth_method={"enum": ["client_secret_basic", "client_secret_post", "none"]},
    )
    issued = obj(
        "client_id",
        **each(STRING, "client_id client_secret"),
        client_id_issued_at=INTEGER,
        client_secret_expires_at={"const": 0},
    )
    issued["description"] = "no client_secret for a public client (token_endpoint_auth_method none)"
    return {
        "ServerMetadata": meta,
        "ClientMetadata": client,
        "ClientInformation": {"allOf": [ref("ClientMetadata"), issued]},
    }


def ledger_schemas() -> dict[str, Schema]:
    b64 = {"type": "string", "contentEncoding": "base64"}
    hashes = {"type": "array", "items": b64}
    note = {"type": "string", "description": "C2SP tlog-checkpoint signed note"}
    entry = obj(
        "index leaf leaf_hash tree_size inclusion_proof checkpoint",
        extra=False,
        **each({"type": "integer", "minimum": 0}, "index tree_size"),
        leaf={**STRING, "description": "the leaf: RFC 8785 canonical JSON, naming no one"},
        leaf_hash=b64,
        inclusion_proof={**hashes, "description": "RFC 9162 audit path, leaf first"},
        checkpoint=note,
    )
    consistency = obj(
        "from to proof from_checkpoint to_checkpoint",
        extra=False,
        **each({"type": "integer", "minimum": 1}, "from to"),
        proof={**hashes, "description": "RFC 9162 s2.1.4 consistency proof"},
        **each(
            {"type": ["string", "null"], "description": "the checkpoint at that size, if one was made"},
            "from_checkpoint to_checkpoint",
        ),
    )
    mine = obj(
        "index seq event time details leaf salt emergency proof",
        extra=False,
        **each({"type": "integer", "minimum": 0}, "index seq"),
        event={**STRING, "examples": ["records.read", "consent.grant.created"]},
        time=WHEN,
        details={"type": "object", "description": "what happened: who, what, under which grant, why"},
        leaf=STRING,
        salt={**STRING, "description": "hex; SHA-256(salt || canonical details) is the leaf's commitment"},
        emergency={"type": "boolean"},
        **each({"type": "string", "format": "uri-reference"}, "proof receipt"),
    )
    page = obj(
        "entries next_before",
        extra=False,
        entries={"type": "array", "items": ref("MyLedgerEntry")},
        next_before={"type": ["integer", "null"], "description": "pass as `before` for older entries"},
    )
    return {
        "LedgerEntry": entry,
        "ConsistencyProof": consistency,
        "MyLedgerEntry": mine,
        "MyLedgerPage": page,
    }


def consent_request_schemas() -> dict[str, Schema]:
    day = {"type": ["string", "null"], "format": "date"}
    categories = {"type": "array", "items": {"enum": list(CATEGORIES)}, "minItems": 1, "maxItems": MAX_LIST}
    types = {"type": "array", "items": {"enum": list(FHIR_TYPES)}, "maxItems": MAX_LIST}
    types["description"] = "FHIR types that narrow the health record; empty: every type"
    days = {"type": "integer", "minimum": 1, "maximum": MAX_GRANT_DAYS}
    status = {"enum": list(STATUS_WORDS)}
    callback = {
        "type": ["string", "null"],
        "format": "uri",
        "description": "https (http only to this machine): POSTed a signed ConsentRequestCallback JWT "
        "when the patient decides or the request expires",
    }
    ask = obj(
        "nhs_number purpose categories days",
        extra=False,
        nhs_number={**STRING, "description": "10 digits (spaces allowed); known here or not, same answer"},
        purpose={"type": "string", "minLength": 1, "maxLength": MAX_PURPOSE},
        categories=categories,
        resource_types=types,
        days=days,
        **each(
            {**day, "description": "the records' dates the patient is asked to open"},
            "records_from records_until",
        ),
        callback_url=callback,
    )
    ask["description"] = f"at most {MAX_ASK_BYTES} bytes of JSON; an unknown member is refused (422)"
    granted = obj(
        "categories resource_types ends_at records_from records_until",
        extra=False,
        categories=categories,
        resource_types=types,
        ends_at=WHEN,
        **each(day, "records_from records_until"),
    )
    asked = obj(
        "id status purpose categories resource_types days records_from records_until callback_url created_at "
        "expires_at decided_at patient grant",
        extra=False,
        id=UUID,
        status=status,
        purpose=STRING,
        categories=categories,
        resource_types=types,
        days=days,
        **each(day, "records_from records_until"),
        callback_url=callback,
        **each(WHEN, "created_at expires_at"),
        decided_at={"type": ["string", "null"], "format": "date-time"},
        patient=obj(
            "nhs_number_ends", extra=False, nhs_number_ends={"type": "string", "pattern": "^[0-9]{3}$"}
        ),
        grant={"anyOf": [ref("GrantedAccess"), {"type": "null"}], "description": "once approved"},
    )
    record = obj(
        "id category kind occurred_at payload",
        extra=False,
        id=UUID,
        category={"enum": list(CATEGORIES)},
        kind={"type": "string", "pattern": KIND.pattern, "examples": ["fhir:AllergyIntolerance"]},
        occurred_at=WHEN,
        payload={"type": "object", "description": "the record as its source sent it (a FHIR resource)"},
    )
    records = obj(
        "request_id grant total records",
        extra=False,
        request_id=UUID,
        grant=ref("GrantedAccess"),
        total={"type": "integer", "minimum": 0},
        records={"type": "array", "items": record},
    )
    told = obj(
        "iss aud iat exp jti request_id status",
        **each(URI, "iss aud"),
        **each(INTEGER, "iat exp"),
        jti=STRING,
        request_id=UUID,
        status=status,
        grant=obj(
            "categories resource_types ends_at", categories=categories, resource_types=types, ends_at=WHEN
        ),
    )
    told["description"] = (
        "the claims of the callback JWT: ES256, kid in the header (a key of /oauth/jwks), typ "
        "consent-request+jwt, aud the callback_url; grant only when approved"
    )
    return {
        "ConsentRequestAsk": ask,
        "ConsentRequest": asked,
        "GrantedAccess": granted,
        "GrantedRecords": records,
        "ConsentRequestCallback": told,
    }


def components() -> Schema:
    challenge = "Bearer (Basic at the OAuth endpoints) challenge with error and error_description"
    schemas = problem_schemas() | record_schemas() | identity_schemas() | oauth_schemas() | ledger_schemas()
    schemas |= consent_request_schemas()
    return {
        "schemas": schemas | metadata_schemas(),
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "clientBasic": {"type": "http", "scheme": "basic", "description": "client_id and secret"},
            "initialAccessToken": {"type": "http", "scheme": "bearer", "description": "RFC 7591 s3"},
        },
        "headers": {
            CHALLENGE: {"schema": STRING, "required": True, "description": challenge},
            "Location": {"schema": {"type": "string", "format": "uri-reference"}, "required": True},
        },
        "responses": {
            "Problem": problem("Any other error (405, 413, 500...)"),
            "InvalidToken": problem("No, bad or revoked token", CHALLENGE),
            "InsufficientScope": problem("Not covered by the token or its grant", CHALLENGE),
            "InvalidInput": problem("A query parameter is malformed"),
            "OAuthError": reply("Malformed or refused (RFC 6749 s5.2)", ref("OAuthError")),
            "InvalidClient": reply("Client authentication failed", ref("OAuthError"), header=CHALLENGE),
        },
    }


# -- paths -------------------------------------------------------------------------------------


def op(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
    return {"summary": summary, **extra, "responses": {**responses, "default": ref("Problem", "responses")}}


def resource_op(summary: str, ok: Schema, *errors: str, **extra: Any) -> Schema:
    """An /api/v1 read: bearer token, 401 and 403 always, plus the errors named."""
    named = {"404": problem("No such record, or not one this token may see")}
    named |= {"401": ref("InvalidToken", "responses"), "403": ref("InsufficientScope", "responses")}
    named["422"] = ref("InvalidInput", "responses")
    responses = {"200": ok} | {status: named[status] for status in ("401", "403", *errors)}
    return op(summary, responses, security=[{"bearer": []}], **extra)


def api_paths(page_size: int, max_page_size: int) -> dict[str, Schema]:
    limit = {"type": "integer", "minimum": 1, "maximum": max_page_size, "default": page_size}
    params = [
        query("category", {"enum": list(CATEGORIES)}, "one category; default: all the token may read"),
        query("kind", {"type": "string", "pattern": KIND.pattern}, "only records of this kind"),
        query("since", WHEN, "occurred at or after; needs a time zone"),
        query("until", WHEN, "occurred before; needs a time zone"),
        query("cursor", STRING, "next_cursor from the previous page"),
        query("limit", limit, "page size"),
    ]
    record_id = {"name": "record_id", "in": "path", "required": True, "schema": UUID}
    user_info = reply("OIDC claims: sub; name and email with profile", ref("UserInfo"))
    page = reply("A page of records", ref("RecordPage"))
    one = resource_op("One record", reply("The record", ref("Record")), "404", parameters=[record_id])
    return {
        "/api/v1/me": {"get": resource_op("The citizen and the grant", reply("Who and what", ref("Me")))},
        "/api/v1/records": {"get": resource_op("Records the grant covers", page, "422", parameters=params)},
        "/api/v1/records/{record_id}": {"get": one},
        "/api/v1/userinfo": {
            "get": resource_op("OIDC UserInfo (needs openid)", user_info),
            "post": resource_op("OIDC UserInfo (needs openid)", user_info),
        },
    }


def my_ledger_paths() -> dict[str, Schema]:
    params = [
        query("before", DIGITS, "next_before from the previous page"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"),
    ]
    index = {"name": "index", "in": "path", "required": True, "schema": DIGITS}
    page = reply("The citizen's own entries, newest first", ref("MyLedgerPage"))
    jwt = reply("A consent receipt: a JWT signed with a key in /oauth/jwks", STRING, "application/jwt")
    return {
        "/api/v1/ledger": {
            "get": resource_op("Your access history (needs ledger.read)", page, "422", parameters=params)
        },
        "/api/v1/ledger/{index}/receipt": {
            "get": resource_op("A consent receipt for a grant event", jwt, "404", parameters=[index])
        },
    }


def consent_request_paths() -> dict[str, Schema]:
    """For professionals' systems: a token a professional signed in for, with scope consent.requests."""
    request_id = {"name": "request_id", "in": "path", "required": True, "schema": STRING}
    guarded = {
        "401": ref("InvalidToken", "responses"),
        "403": problem(
            "Not a professional's token, or without the consent.requests scope (both with a "
            "WWW-Authenticate challenge); or refused: the grant is not live, not yet given, or a colleague's"
        ),
    }
    missing = {"404": problem("No request of your organisation has this id")}
    jwt = {"type": "string", "description": "a JWS compact serialisation; its claims: ConsentRequestCallback"}
    told = {
        "{$request.body#/callback_url}": {
            "post": {
                "summary": "The patient decided, or the request expired (signed; retried with backoff)",
                "requestBody": {"required": True, "content": body(jwt, "application/jwt")},
                "responses": {"200": {"description": "Any 2xx: delivered; anything else is tried again"}},
            }
        }
    }
    ask = op(
        f"Ask a patient for consent, by NHS number (needs {STAFF_SCOPE})",
        {"201": reply("Sent: the request, pending", ref("ConsentRequest"), header="Location")}
        | guarded
        | {
            "413": problem(f"A body larger than {MAX_ASK_BYTES} bytes"),
            "415": problem("Not application/json"),
            "422": problem("Malformed JSON, a wrong type, an unknown or missing member: `field` names it"),
        },
        requestBody={"required": True, "content": body(ref("ConsentRequestAsk"))},
        callbacks={"decided": told},
        security=[{"bearer": []}],
    )
    one = op(
        "The request, its status now and, once approved, what was granted",
        {"200": reply("The request", ref("ConsentRequest"))} | guarded | missing,
        parameters=[request_id],
        security=[{"bearer": []}],
    )
    read = op(
        "The records the patient granted, read now (each read in the patient's ledger)",
        {"200": reply("The granted records", ref("GrantedRecords"))} | guarded | missing,
        parameters=[request_id],
        security=[{"bearer": []}],
    )
    return {
        "/api/v1/consent-requests": {"post": ask},
        "/api/v1/consent-requests/{request_id}": {"get": one},
        "/api/v1/consent-requests/{request_id}/records": {"get": read},
    }


def ledger_paths() -> dict[str, Schema]:
    text = "text/plain"
    note = reply("A C2SP signed note", STRING, text)
    bad = problem("A parameter is malformed; `field` names it")
    missing = problem("No such entry or checkpoint")
    index = {"name": "index", "in": "path", "required": True, "schema": DIGITS}
    size = {"name": "size", "in": "path", "required": True, "schema": DIGITS}
    sizes = [
        query("from", {"type": "integer", "minimum": 1}, "the tree size you hold a checkpoint for", True),
        query("to", {"type": "integer", "minimum": 1}, "default: the latest checkpoint's size"),
    ]
    entry = reply("The entry and its inclusion proof against a checkpoint", ref("LedgerEntry"))
    proof = reply("The consistency proof", ref("ConsistencyProof"))
    key = reply("The checkpoint verifier key: name+keyid+base64", STRING, text)
    return {
        "/ledger/checkpoint": {"get": op("The latest signed checkpoint", {"200": note, "404": missing})},
        "/ledger/checkpoints/{size}": {
            "get": op(
                "The checkpoint at a tree size", {"200": note, "404": missing, "422": bad}, parameters=[size]
            )
        },
        "/ledger/key": {"get": op("The ledger's verifier key", {"200": key})},
        "/ledger/entries/{index}": {
            "get": op(
                "An entry with its inclusion proof",
                {"200": entry, "404": missing, "422": bad},
                parameters=[index],
            )
        },
        "/ledger/consistency": {
            "get": op(
                "Proof that the log only grew", {"200": proof, "404": missing, "422": bad}, parameters=sizes
            )
        },
    }


def connector_paths() -> dict[str, Schema]:
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    counts = obj(
        "stored updated unchanged citizens",
        **each({"type": "integer", "minimum": 0}, "stored updated unchanged citizens"),
    )
    delivered = obj(
        "stored updated unchanged counts",
        extra=False,
        **each({"type": "array", "items": UUID}, "stored updated unchanged"),
        counts=counts,
    )
    item_error = obj(
        "index field reason", index={"type": ["integer", "null"]}, **each(STRING, "field reason")
    )
    invalid = {"allOf": [ref("Problem"), obj("errors", errors={"type": "array", "items": item_error})]}
    formats = {
        "application/json": {"schema": {"description": "Open311 requests/updates, or OneRoster JSON"}},
        "application/fhir+json": {"schema": {"description": "a FHIR STU3 (GP Connect) or R4 Bundle"}},
        "application/zip": {"schema": {"description": "a OneRoster 1.2 CSV binding zip"}},
    }
    responses = {
        "200": reply("Stored: what was new, updated and unchanged", delivered),
        "401": ref("InvalidToken", "responses"),
        "403": ref("InsufficientScope", "responses"),
        "404": problem("No connector of that name"),
        "413": problem("Larger than the connector's max_bytes"),
        "415": problem("Not a media type this connector reads"),
        "422": reply(
            "Refused whole: every bad item, with its index, field and reason", invalid, PROBLEM_JSON
        ),
    }
    push = op(
        "Push a delivery (client-credentials token with scope connector:NAME)",
        responses,
        parameters=[name],
        requestBody={"required": True, "content": formats},
        security=[{"bearer": []}],
    )
    return {"/connectors/{name}/deliveries": {"post": push}}


def form(required: str, **fields: Any) -> dict[str, Any]:
    return {"required": True, "content": body(obj(required, **fields), FORM)}


def client_op(summary: str, ok: Schema, request: dict[str, Any]) -> Schema:
    """Basic auth, or client_id (and client_secret) in the form for client_secret_post and public clients."""
    responses = {"200": ok, "400": ref("OAuthError", "responses"), "401": ref("InvalidClient", "responses")}
    return op(summary, responses, requestBody=request, security=[{"clientBasic": []}, {}])


def token_paths() -> dict[str, Schema]:
    hint = {"enum": ["access_token", "refresh_token"]}
    token_form = form(
        "grant_type",
        **each(STRING, "code refresh_token scope client_id client_secret"),
        **each(URI, "redirect_uri resource"),
        grant_type={"enum": ["authorization_code", "refresh_token", "client_credentials"]},
        code_verifier={"type": "string", "minLength": 43, "maxLength": 128},
    )
    revoke_form = form("token", **each(STRING, "token client_id client_secret"), token_type_hint=hint)
    revoked = reply("Revoked, or unknown (RFC 7009 s2.2)", obj("", extra=False))
    info = reply("Whether the token is active, and about it", ref("Introspection"))
    tokens = reply("Tokens", ref("TokenResponse"))
    return {
        "/oauth/token": {"post": client_op("Issue tokens", tokens, token_form)},
        "/oauth/revoke": {"post": client_op("Revoke a token and its family", revoked, revoke_form)},
        "/oauth/introspect": {"post": client_op("Introspect a token (RFC 7662)", info, revoke_form)},
    }


def authorize_paths() -> dict[str, Schema]:
    names = ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge"]
    required = ("response_type", "client_id", "code_challenge")
    params = [query(n, STRING, f"RFC 6749/7636 {n}", n in required) for n in names]
    params[0]["schema"] = {"const": "code"}
    params += [
        query("code_challenge_method", {"const": "S256"}, "PKCE is required", True),
        query("nonce", STRING, "OIDC nonce"),
        query("resource", URI, "RFC 8707 audience; default the /api/v1 API"),
    ]
    decision = form(
        "csrf_token decision",
        csrf_token=STRING,
        decision={"enum": ["allow", "deny"]},
        categories={"type": "array", "items": {"enum": list(CATEGORIES)}},
        duration={**DIGITS, "description": "days"},
        ends_on={
            **DATE_BOXES,
            "description": "the last day it may read, instead of duration: " + DATE_BOXES["description"],
        },
    )
    back = reply("Back to the client with code or error, state and iss", header="Location")
    common = {
        "200": reply("The consent screen", STRING, HTML),
        "400": reply("Unknown client or redirect_uri: never redirected", ref("OAuthError")),
    }
    get = op(
        "Start authorization (code + PKCE)",
        common | {"302": back, "303": reply("Sign in first", header="Location")},
        parameters=params,
    )
    post = op("Answer the consent screen", common | {"303": back}, parameters=params, requestBody=decision)
    return {"/oauth/authorize": {"get": get, "post": post}}


def register_path() -> dict[str, Schema]:
    responses = {
        "201": reply("Registered", ref("ClientInformation")),
        "400": reply("invalid_client_metadata, invalid_redirect_uri or invalid_request", ref("OAuthError")),
        "401": reply("No, bad or spent initial access token", ref("OAuthError"), header=CHALLENGE),
    }
    registration = op(
        "Register a client (RFC 7591)",
        responses,
        requestBody={"required": True, "content": body(ref("ClientMetadata"))},
        security=[{"initialAccessToken": []}],
    )
    return {"/oauth/register": {"post": registration}}


def discovery_paths() -> dict[str, Schema]:
    meta = op("Server metadata", {"200": reply("Metadata", ref("ServerMetadata"))})
    return {
        "/oauth/jwks": {"get": op("Token signing keys", {"200": reply("JWK Set", ref("JWKS"))})},
        "/.well-known/oauth-authorization-server": {"get": meta},
        "/.well-known/openid-configuration": {"get": meta},
    }


def site_paths() -> dict[str, Schema]:
    page = reply("The page", STRING, HTML)
    gone = reply("Signed in: on to `next`", header="Location")
    sign_in = form("csrf_token email password", **each(STRING, "csrf_token email password"))
    nxt = [query("next", STRING, "a path on this site to go to after")]
    grant_id = [{"name": "grant_id", "in": "path", "required": True, "schema": UUID}]
    no_grant = problem("No grant of yours has this id (or it is not an id)")
    sign_in_first_or_ended = reply(
        "Sign in first; or the grant has already ended: back to the list", header="Location"
    )
    health = {
        "200": reply("Healthy", ref("Health")),
        "503": problem("A check failed; `checks` says which"),
    }
    return {
        "/healthz": {"get": op("Health of the database and the keys", health)},
        "/openapi.json": {"get": op("This document", {"200": reply("OpenAPI 3.1", {"type": "object"})})},
        "/signin": {
            "get": op("Sign-in page", {"200": page}, parameters=nxt),
            "post": op(
                "Sign in",
                {
                    "303": gone,
                    "400": page,
                    "429": reply("Too many failed attempts: wait Retry-After", STRING, HTML),
                },
                parameters=nxt,
                requestBody=sign_in,
            ),
        },
        "/signout": {
            "post": op(
                "Sign out",
                {
                    "303": reply("To the sign-in page", header="Location"),
                    "400": problem("No or a wrong CSRF token"),
                },
                requestBody=form("csrf_token", csrf_token=STRING),
            )
        },
        "/": {
            "get": op(
                "Home: what is new since the last visit",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/access": {
            "get": op(
                "Who can see your data: live and ended grants",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/access/{grant_id}/revoke": {
            "get": op(
                "Confirm stopping an app's access",
                {"200": page, "303": sign_in_first_or_ended, "404": no_grant},
                parameters=grant_id,
            ),
            "post": op(
                "Stop an app's access: revoke the grant and its tokens",
                {
                    "303": reply("Back to the list, with a banner", header="Location"),
                    "400": reply("No or a wrong CSRF token: nothing changed", STRING, HTML),
                    "404": no_grant,
                },
                parameters=grant_id,
                requestBody=form("csrf_token", csrf_token=STRING),
            ),
        },
        "/assets/{name}": {
            "get": op(
                "GOV.UK Frontend's stylesheet, script and images, and pds's own (cached a day)",
                {"200": reply("The file", STRING, "text/css"), "404": problem("No such asset")},
                parameters=[{"name": "name", "in": "path", "required": True, "schema": STRING}],
            )
        },
        "/account/access-history": {
            "get": op(
                "The signed-in citizen's access history",
                {"200": page, "303": reply("Sign in first", header="Location")},
                parameters=[query("before", DIGITS, "show entries older than this")],
            )
        },
        "/account/access-history/{index}": {
            "get": op(
                "One entry of the citizen's access history: its proof checked, and how to check it offline",
                {
                    "200": page,
                    "303": reply("Sign in first", header="Location"),
                    "404": problem("Not an entry of yours"),
                },
                parameters=[{"name": "index", "in": "path", "required": True, "schema": DIGITS}],
            )
        },
        "/account/access-history/{index}/receipt": {
            "get": op(
                "Download a consent receipt (signed JWT)",
                {
                    "200": reply("The receipt", STRING, "application/jwt"),
                    "303": reply("Sign in first", header="Location"),
                    "404": problem("Not a grant event of yours"),
                },
                parameters=[{"name": "index", "in": "path", "required": True, "schema": DIGITS}],
            )
        },
        "/account/health": {
            "get": op(
                "The signed-in citizen's GP health record, in plain words",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/my-data": {
            "get": op(
                "Download or delete your data",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/my-data/export.json": {
            "get": op(
                "Download everything in your vault: your details and every record (logged as an export)",
                {
                    "200": reply(
                        "An attachment: citizen, identifiers, exported_at and records",
                        obj(
                            "citizen identifiers exported_at records",
                            citizen={"type": "object"},
                            identifiers={"type": "object", "additionalProperties": STRINGS},
                            exported_at=WHEN,
                            records={"type": "array", "items": ref("Record")},
                        ),
                    ),
                    "303": reply("Sign in first", header="Location"),
                },
            )
        },
        "/account/my-data/health.json": {
            "get": op(
                "Download your health record as a FHIR R4 collection Bundle (logged as an export)",
                {
                    "200": reply(
                        "An attachment: a FHIR R4 Bundle of type collection",
                        obj("resourceType type entry", resourceType={"const": "Bundle"}),
                        "application/fhir+json",
                    ),
                    "303": reply("Sign in first", header="Location"),
                },
            )
        },
        "/signin/code": {
            "get": op("The second sign-in step: the authenticator's code", {"200": page, "303": gone}),
            "post": op(
                "Finish signing in with the code",
                {"303": gone, "400": page, "429": reply("Too many attempts: wait", STRING, HTML)},
                requestBody=form("csrf_token code", **each(STRING, "csrf_token code")),
            ),
        },
        "/account/access/{grant_id}/change": {
            "get": op(
                "Change what an app can see: fewer categories or an earlier end",
                {"200": page, "303": gone, "404": problem("Not a permission of yours")},
                parameters=[{"name": "grant_id", "in": "path", "required": True, "schema": STRING}],
            ),
            "post": op(
                "Narrow the permission (never wider)",
                {"303": gone, "400": page, "404": problem("Not a permission of yours")},
                parameters=[{"name": "grant_id", "in": "path", "required": True, "schema": STRING}],
                requestBody=form(
                    "csrf_token categories",
                    **each(STRING, "csrf_token"),
                    categories={"type": "array", "items": {"enum": list(CATEGORIES)}},
                    ends_on=DATE_BOXES,
                ),
            ),
        },
        "/account/security": {"get": op("Account security", {"200": page, "303": gone})},
        "/account/security/two-step": {
            "get": op(
                "Set up two-step verification: a QR code for an authenticator app", {"200": page, "303": gone}
            ),
            "post": op(
                "Turn it on with the password and a code from the app",
                {"303": gone, "400": page},
                requestBody=form("csrf_token password code", **each(STRING, "csrf_token password code")),
            ),
        },
        "/account/security/two-step/off": {
            "post": op(
                "Turn two-step verification off (password and a code)",
                {"303": gone},
                requestBody=form("csrf_token password code", **each(STRING, "csrf_token password code")),
            )
        },
        "/account/security/sign-out-everywhere": {
            "post": op(
                "Sign out of every browser (password)",
                {"303": gone},
                requestBody=form("csrf_token password", **each(STRING, "csrf_token password")),
            )
        },
        "/account/my-data/delete": {
            "post": op(
                "Delete your vault: erase every record and destroy its key (password and confirmation)",
                {
                    "200": reply("Deleted and signed out", STRING, HTML),
                    "303": reply("Sign in first", header="Location"),
                    "400": reply(
                        "Wrong password, not confirmed, or no CSRF token: nothing erased", STRING, HTML
                    ),
                },
                requestBody=form(
                    "csrf_token password confirm",
                    **each(STRING, "csrf_token password"),
                    confirm={"const": "y"},
                ),
            )
        },
        "/account/cases": {
            "get": op(
                "The signed-in citizen's council and police cases, each with its status",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/cases/{record_id}": {
            "get": op(
                "One case: its status, what happens next, and every update, newest first",
                {
                    "200": page,
                    "303": reply("Sign in first", header="Location"),
                    "404": problem("Not a case of yours"),
                },
                parameters=[{"name": "record_id", "in": "path", "required": True, "schema": STRING}],
            )
        },
        "/account/children": {
            "get": op(
                "The school (and, where the link covers it, health) records of the signed-in parent's "
                "children; each look is logged in the child's ledger",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/requests": {
            "get": op(
                "Requests from professionals: those waiting for an answer, then those answered or ended",
                {"200": page, "303": reply("Sign in first", header="Location")},
            )
        },
        "/account/requests/{request_id}": {
            "get": op(
                "One request: who asks, for what, why, for how long; the answer form",
                {
                    "200": page,
                    "303": reply("Sign in first; or already answered: back to the list", header="Location"),
                    "404": problem("No request to you has this id (or it is not an id)"),
                },
                parameters=[{"name": "request_id", "in": "path", "required": True, "schema": STRING}],
            ),
            "post": op(
                "Answer: approve, approve with less (fewer categories or types, an earlier end), or refuse",
                {
                    "303": reply("Back to the list, with a banner", header="Location"),
                    "400": reply(
                        "No choice, more than was asked, or no CSRF token: nothing decided", STRING, HTML
                    ),
                    "404": problem("No request to you has this id (or it is not an id)"),
                },
                parameters=[{"name": "request_id", "in": "path", "required": True, "schema": STRING}],
                requestBody=form(
                    "csrf_token decision",
                    **each(STRING, "csrf_token"),
                    decision={"enum": ["approve", "change", "refuse"]},
                    categories={"type": "array", "items": {"enum": list(CATEGORIES)}},
                    resource_types={"type": "array", "items": {"enum": list(FHIR_TYPES)}},
                    ends_on=DATE_BOXES,
                ),
            ),
        },
    }


def portal_paths() -> dict[str, Schema]:
    """The professionals' sign-in (pds's OpenID provider) and portal pages: HTML, each behind sign-in."""
    page = reply("The page", STRING, HTML)
    bad = reply("Not accepted: the page again, with what to fix", STRING, HTML)
    signin = reply("Sign in first (through the provider), or on to the next step", header="Location")
    refused = problem(
        "Refused: not your organisation's, not your role, or the patient's permission has ended"
    )
    missing = problem("Not your organisation's (or not an id)")

    def path_param(name: str) -> list[Schema]:
        return [{"name": name, "in": "path", "required": True, "schema": STRING}]

    def step(summary: str, fields: str) -> Schema:
        return {
            "get": op(summary, {"200": page, "303": signin}),
            "post": op(
                summary,
                {"303": signin, "400": bad, "429": reply("Too many attempts: wait", STRING, HTML)},
                requestBody=form("csrf_token " + fields, **each(STRING, "csrf_token " + fields)),
            ),
        }

    return {
        "/staff/signin": step(
            "Professionals sign in to the OpenID provider: work email and password", "email password"
        ),
        "/staff/signin/code": step("The second step: the authenticator app's code", "code"),
        "/staff/signin/enrol": step(
            "First sign-in: set up an authenticator app (QR code), then its code", "code"
        ),
        "/portal": {
            "get": op(
                "Your organisation's requests for consent and their status", {"200": page, "303": signin}
            )
        },
        "/portal/login": {"get": op("Start signing in: an authorization request with PKCE", {"303": signin})},
        "/portal/callback": {
            "get": op(
                "The provider's answer: the code is exchanged and the id_token checked",
                {"303": signin, "400": problem("Not a sign-in started here, or it did not verify")},
            )
        },
        "/portal/signout": {
            "post": op(
                "Sign out of the portal", {"303": signin}, requestBody=form("csrf_token", csrf_token=STRING)
            )
        },
        "/portal/signed-out": {"get": op("Signed out", {"200": page})},
        "/account/live": {
            "get": op(
                "Server-Sent Events for the signed-in citizen: a new record or case update, as it arrives",
                {
                    "200": reply(
                        "An event stream (heartbeats; resumes from Last-Event-ID)",
                        STRING,
                        "text/event-stream",
                    ),
                    "401": problem("Not signed in"),
                    "503": problem(
                        "Too many live pages open in this process (Retry-After): the page works without them"
                    ),
                },
            )
        },
        "/portal/requests/new": {
            "get": op("Ask a patient for consent", {"200": page, "303": signin, "403": refused}),
            "post": op(
                "Send the request (the answer never says whether the NHS number is known)",
                {"303": reply("Request sent: its page", header="Location"), "400": bad, "403": refused},
                requestBody=form(
                    "csrf_token nhs_number purpose categories days",
                    **each(STRING, "csrf_token nhs_number purpose days"),
                    **each(DATE_BOXES, "records_from records_until"),
                    categories={"type": "array", "items": {"enum": list(CATEGORIES)}},
                    resource_types={"type": "array", "items": STRING},
                ),
            ),
        },
        "/portal/requests/{request_id}": {
            "get": op(
                "One request and its status, kept up to date",
                {"200": page, "303": signin, "404": missing},
                parameters=path_param("request_id"),
            )
        },
        "/portal/requests/{request_id}/status": {
            "get": op(
                "The request's status now (the request page follows it)",
                {
                    "200": reply("status, words, colour, readable", obj("status words colour readable")),
                    "303": signin,
                    "404": missing,
                },
                parameters=path_param("request_id"),
            )
        },
        "/portal/requests/{request_id}/records": {
            "get": op(
                "The records the patient granted (each view in their ledger)",
                {"200": page, "303": signin, "403": refused, "404": missing},
                parameters=path_param("request_id"),
            )
        },
        "/portal/emergency": {
            "get": op(
                "Emergency access (clinicians, where enabled)",
                {"200": page, "303": signin, "403": refused, "404": problem("Not enabled")},
            ),
            "post": op(
                "Open a health summary for an hour, with a reason (flagged, and the patient told)",
                {
                    "303": reply("On to the summary", header="Location"),
                    "400": bad,
                    "403": refused,
                    "404": problem("Not enabled"),
                },
                requestBody=form(
                    "csrf_token nhs_number reason", **each(STRING, "csrf_token nhs_number reason")
                ),
            ),
        },
        "/portal/emergency/{grant_id}": {
            "get": op(
                "The health summary under emergency access",
                {"200": page, "303": signin, "403": refused},
                parameters=path_param("grant_id"),
            )
        },
        "/portal/admin": {
            "get": op(
                "The organisation's staff and every emergency access (administrators)",
                {"200": page, "303": signin, "403": refused},
            ),
            "post": op(
                "Add a member of staff (a password shown once)",
                {"200": page, "400": bad, "403": refused},
                requestBody=form("csrf_token name email role", **each(STRING, "csrf_token name email role")),
            ),
        },
        "/portal/admin/staff/{staff_id}/revoke": {
            "post": op(
                "End a member of staff's access at once",
                {"303": reply("Back to the staff list", header="Location"), "403": refused, "404": missing},
                parameters=path_param("staff_id"),
                requestBody=form("csrf_token", csrf_token=STRING),
            )
        },
    }


def document(server_url: str, *, page_size: int = 100, max_page_size: int = 1000) -> dict[str, Any]:
    paths = site_paths() | authorize_paths() | token_paths() | register_path() | discovery_paths()
    paths |= ledger_paths() | my_ledger_paths() | connector_paths() | consent_request_paths()
    paths |= portal_paths()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pds",
            "version": "0.1.0",
            "description": "Personal data store with a consent ledger. Errors are application/problem+json "
            "(RFC 9457), except OAuth endpoint errors, which are application/json (RFC 6749 s5.2).",
        },
        "servers": [{"url": server_url}],
        "paths": paths | api_paths(page_size, max_page_size),
        "components": components(),
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    settings = runtime().settings
    vault = settings.vault
    return jsonify(
        document(settings.server.public_url, page_size=vault.page_size, max_page_size=vault.max_page_size)
    )
