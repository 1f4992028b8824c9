"""The OpenAPI document against the real server: every route documented, every answer fits its schema."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from consent.clients import ClientService
from pds import create_app
from pds.runtime import Runtime
from pds.web.openapi import document
from tests.web.live import REDIRECT_URI, Browser, Person
from tests.web.test_oauth import authorize, oauth

BASE_URI = "urn:pds:openapi"
FORMATS = FormatChecker()  # the checkers jsonschema has, plus the two it needs extra packages for


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or dt.datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme and urlsplit(value).netloc)


# -- reading the document ------------------------------------------------------------------------


def pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local $refs: {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve"
        node = node[part]
    return node


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in the document, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


class Contract:
    """Checks a real response against what the document declares for its path, method and status."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(BASE_URI, DRAFT202012.create_resource(doc))

    def response(self, path: str, method: str, status: str) -> tuple[str, dict[str, Any]]:
        """The declared response and the JSON pointer to it, following a $ref into components."""
        responses = self.doc["paths"][path][method.lower()]["responses"]
        assert status in responses, f"{method} {path} does not document {status}"
        where = pointer("paths", path, method.lower(), "responses", status)
        declared = responses[status]
        if "$ref" in declared:
            where, declared = declared["$ref"][1:], resolve(self.doc, declared["$ref"])
        return where, declared

    def check(self, path: str, method: str, r: requests.Response, *, default: bool = False) -> Any:
        """The body, once it fits; `default` checks an undocumented status against the default response."""
        status = str(r.status_code)
        if default:
            assert status not in self.doc["paths"][path][method.lower()]["responses"]
        where, declared = self.response(path, method, "default" if default else status)
        for header in declared.get("headers", {}):
            assert header in r.headers, f"{method} {path} {r.status_code} lacks {header}"
        media = r.headers.get("Content-Type", "").split(";")[0].strip()
        content = declared.get("content", {})
        assert media in content, f"{method} {path} {r.status_code} sent {media}, documented {list(content)}"
        if not media.endswith("json"):
            return r.text
        schema = {"$ref": BASE_URI + "#" + where + pointer("content", media, "schema")}
        validator = Draft202012Validator(schema, registry=self.registry, format_checker=FORMATS)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(r.json())]
        assert not errors, f"{method} {path} {r.status_code}: {errors}"
        return r.json()


# -- the document on its own ---------------------------------------------------------------------


def test_the_document_is_well_formed() -> None:
    doc = document("http://127.0.0.1:5000")
    assert doc["openapi"].startswith("3.1.") and doc["info"]["title"] and doc["info"]["version"]
    for node in walk(doc):
        if isinstance(node.get("$ref"), str):
            resolve(doc, node["$ref"])
    schemas = [*doc["components"]["schemas"].values()]
    schemas += [node["schema"] for node in walk(doc["paths"]) if "schema" in node]
    schemas += [h["schema"] for h in doc["components"]["headers"].values()]
    for schema in schemas:
        Draft202012Validator.check_schema(schema)
    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        templated = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            assert method in {"get", "post", "put", "patch", "delete"}, (path, method)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, f"{method} {path}: path parameters"
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")
            for status, answer in op["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5]\d\d", status), (path, status)
                assert "$ref" in answer or answer["description"]
            for requirement in op.get("security", []):
                assert set(requirement) <= set(schemes), f"{method} {path}: unknown security scheme"


def served(app: Flask) -> dict[str, Any]:
    r = app.test_client().get("/openapi.json")
    assert r.status_code == 200 and isinstance(r.json, dict)
    return r.json


def test_every_route_is_documented(runtime: Runtime) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    doc = served(app)
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        )
    for path, methods in routes.items():
        assert path in doc["paths"], f"{path} is not documented"
        assert methods == set(doc["paths"][path]), f"{path}: methods {methods}"
    assert set(doc["paths"]) == set(routes), "the document describes routes the app does not have"


def test_the_served_document_follows_the_settings(runtime: Runtime) -> None:
    doc = served(create_app(runtime.settings, runtime=runtime))
    (limit,) = (p for p in doc["paths"]["/api/v1/records"]["get"]["parameters"] if p["name"] == "limit")
    vault = runtime.settings.vault
    assert limit["schema"]["maximum"] == vault.max_page_size and limit["schema"]["default"] == vault.page_size
    assert doc["servers"] == [{"url": runtime.settings.server.public_url}]


# -- the document against the live server --------------------------------------------------------


@pytest.fixture
def contract(base: str) -> Contract:
    r = requests.get(base + "/openapi.json", timeout=10)
    assert r.status_code == 200 and r.json()["servers"] == [{"url": base}]
    return Contract(r.json())


def test_public_endpoints_match(base: str, contract: Contract) -> None:
    for path in ("/healthz", "/oauth/jwks", "/.well-known/oauth-authorization-server"):
        contract.check(path, "GET", requests.get(base + path, timeout=10))
    meta = contract.check(
        "/.well-known/openid-configuration",
        "GET",
        requests.get(base + "/.well-known/openid-configuration", timeout=10),
    )
    assert meta["issuer"] == base
    contract.check("/signin", "GET", requests.get(base + "/signin", timeout=10))
    # the problem+json any route answers with for what it does not document
    wrong_method = requests.post(base + "/oauth/jwks", timeout=10)
    assert contract.check("/oauth/jwks", "GET", wrong_method, default=True)["status"] == 405
    bad = requests.get(base + "/oauth/authorize", params={"client_id": "nobody"}, timeout=10)
    assert contract.check("/oauth/authorize", "GET", bad)["error"]


def test_the_token_endpoints_match(base: str, contract: Contract, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    raw: list[requests.Response] = []

    def keep(response: requests.Response) -> requests.Response:  # the token response before parsing
        raw.append(response)
        return response

    session.register_compliance_hook("access_token_response", keep)
    token, _ = authorize(base, session, browser)
    assert contract.check("/oauth/token", "POST", raw[0])["refresh_token"]
    auth = (app_client["client_id"], app_client["client_secret"])

    def post(path: str, auth: tuple[str, str] | None = auth, **form: str) -> Any:
        return contract.check(path, "POST", requests.post(base + path, data=form, auth=auth, timeout=10))

    assert post("/oauth/introspect", token=token["access_token"])["active"] is True
    assert post("/oauth/introspect", token=token["refresh_token"])["active"] is True
    assert post("/oauth/introspect", auth=("nobody", "x"), token="x")["error"] == "invalid_client"
    assert post("/oauth/token", grant_type="password")["error"] == "unsupported_grant_type"
    assert post("/oauth/token", auth=("nobody", "x"), grant_type="client_credentials")["error"]
    assert post("/oauth/revoke", token=token["refresh_token"]) == {}
    assert post("/oauth/revoke")["error"] == "invalid_request"
    assert post("/oauth/introspect", token=token["access_token"]) == {"active": False}


def test_the_resource_api_matches(base: str, contract: Contract, app_client: dict, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, app_client)
    authorize(base, session, browser, categories=["health", "education"])

    def get(path: str, template: str | None = None, **params: str) -> Any:
        r = session.get(base + path, params=params)
        return contract.check(template or path, "GET", r)

    me = get("/api/v1/me")
    assert me["sub"] == str(alice.citizen_id) and me["grant"]["categories"] == ["health", "education"]
    info = contract.check("/api/v1/userinfo", "POST", session.post(base + "/api/v1/userinfo"))
    assert info == get("/api/v1/userinfo")
    first = get("/api/v1/records", limit="1")
    assert len(first["records"]) == 1 and first["next_cursor"]
    rest = get("/api/v1/records", cursor=first["next_cursor"], since="2025-01-01T00:00:00Z")
    assert len(rest["records"]) == 1 and rest["next_cursor"] is None
    one = first["records"][0]
    assert get(f"/api/v1/records/{one['id']}", "/api/v1/records/{record_id}") == one
    missing = get(f"/api/v1/records/{uuid.uuid4()}", "/api/v1/records/{record_id}")
    assert missing["status"] == 404 and missing["field"] == "record_id"
    assert get("/api/v1/records", since="2026-01-01")["field"] == "since"  # no time zone: 422
    assert get("/api/v1/records", limit="many")["status"] == 422
    assert get("/api/v1/records", category="case")["status"] == 403  # not granted
    unsigned = requests.get(base + "/api/v1/records", timeout=10)
    assert contract.check("/api/v1/records", "GET", unsigned)["status"] == 401
    forged = requests.get(base + "/api/v1/me", headers={"Authorization": "Bearer x.y.z"}, timeout=10)
    assert contract.check("/api/v1/me", "GET", forged)["title"] == "Invalid token"


def test_scope_refusals_match(base: str, contract: Contract, runtime: Runtime, alice: Person) -> None:
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name="GP system", redirect_uris=[], scope="health.read", grant_types=["client_credentials"]
        )
        system = {"client_id": made.client.client_id, "client_secret": made.secret or ""}
        made = ClientService(s).add(name="Reader", redirect_uris=[REDIRECT_URI], scope="health.read")
        reader = {"client_id": made.client.client_id, "client_secret": made.secret or ""}
    machine = oauth(base, system, scope="health.read")
    machine.fetch_token(base + "/oauth/token", grant_type="client_credentials")
    assert contract.check("/api/v1/me", "GET", machine.get(base + "/api/v1/me"))["status"] == 403
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, reader, scope="health.read")  # no openid
    authorize(base, session, browser)
    refused = session.get(base + "/api/v1/userinfo")
    assert contract.check("/api/v1/userinfo", "GET", refused)["title"] == "Insufficient scope"


def test_registration_matches(base: str, contract: Contract, runtime: Runtime) -> None:
    with runtime.sessions() as s, s.begin():
        initial, _ = ClientService(s).issue_initial_access_token("openapi test")
    metadata = {"client_name": "Step Counter", "redirect_uris": [REDIRECT_URI], "scope": "health.read"}

    def register(token: str, body: dict[str, Any]) -> Any:
        r = requests.post(
            base + "/oauth/register", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        return contract.check("/oauth/register", "POST", r)

    bad = register(initial, {**metadata, "redirect_uris": ["not a uri"]})
    assert bad["error"] in ("invalid_redirect_uri", "invalid_client_metadata")
    made = register(initial, metadata)
    assert made["client_id"] and made["client_secret"] and made["redirect_uris"] == [REDIRECT_URI]
    assert register(initial, metadata)["error"] == "invalid_token"  # spent


def test_the_ledger_endpoints_match(base: str, contract: Contract, runtime: Runtime, alice: Person) -> None:
    with runtime.sessions() as s, s.begin():
        made = ClientService(s).add(
            name="Access log", redirect_uris=[REDIRECT_URI], scope="openid health.read ledger.read"
        )
        client = {"client_id": made.client.client_id, "client_secret": made.secret or ""}
    browser = Browser(base)
    browser.sign_in(alice)
    session = oauth(base, client, scope="openid health.read ledger.read")
    authorize(base, session, browser)
    session.get(base + "/api/v1/records")
    page = contract.check("/api/v1/ledger", "GET", session.get(base + "/api/v1/ledger"))
    grant = page["entries"][-1]
    assert grant["event"] == "consent.grant.created" and grant["receipt"]
    receipt = session.get(base + grant["receipt"])
    assert contract.check("/api/v1/ledger/{index}/receipt", "GET", receipt).count(".") == 2
    bad_page = session.get(base + "/api/v1/ledger", params={"before": "x"})
    assert contract.check("/api/v1/ledger", "GET", bad_page)["field"] == "before"

    def get(path: str, template: str | None = None) -> Any:
        return contract.check(template or path, "GET", requests.get(base + path, timeout=10))

    entry = get(grant["proof"], "/ledger/entries/{index}")
    assert entry["index"] == grant["index"] and entry["tree_size"] > grant["index"]
    assert get("/ledger/checkpoint") == entry["checkpoint"]
    size = entry["tree_size"]
    assert get(f"/ledger/checkpoints/{size}", "/ledger/checkpoints/{size}") == entry["checkpoint"]
    assert get("/ledger/key").count("+") >= 2
    assert get(f"/ledger/consistency?from=1&to={size}", "/ledger/consistency")["to"] == size
    assert get("/ledger/consistency?from=zero", "/ledger/consistency")["field"] == "from"
    assert get("/ledger/entries/123456789", "/ledger/entries/{index}")["status"] == 404
    assert get("/ledger/checkpoints/7x", "/ledger/checkpoints/{size}")["status"] == 422
