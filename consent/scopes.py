"""The scope vocabulary: which OAuth scope reads which record category, in plain words."""

from __future__ import annotations

import re

CATEGORY_SCOPES = {"health.read": "health", "education.read": "education", "cases.read": "case"}
IDENTITY_SCOPES = ("openid", "profile", "offline_access")
LEDGER_SCOPE = "ledger.read"  # the citizen's own access history, as an app acting for them sees it
# a professional's system: make consent requests, follow them, read what the patient granted
STAFF_SCOPE = "consent.requests"
STAFF_SCOPES = ("openid", "profile", "offline_access", STAFF_SCOPE)  # all a staff client may hold
SUPPORTED_SCOPES = (*CATEGORY_SCOPES, LEDGER_SCOPE, STAFF_SCOPE, *IDENTITY_SCOPES)

PLAIN_WORDS = {
    "health.read": "Your GP health record: problems, medicines, allergies, test results and immunisations",
    "education.read": "School progress: attendance, marks and assessments",
    "cases.read": "Cases you are tracking with the council or the police, and their updates",
    "ledger.read": "Your access history: who has read your records, when, and under which permission",
    "openid": "Confirm that it is you when you sign in to the app",
    "profile": "Your name and email address",
    "consent.requests": "Ask patients for consent, follow your requests, and read what they granted",
    "offline_access": "Keep this access when you are not using the app, until it ends or you revoke it",
}

# Each record category in plain words, as a sentence to the citizen says it ("Dr Rahman asks to see your
# GP health record"); a list on a page starts each with a capital (category_label), and professionals
# read them without "your" (STAFF_CATEGORY_WORDS).
CATEGORY_WORDS = {"health": "your GP health record", "education": "school progress", "case": "your cases"}
STAFF_CATEGORY_WORDS = {"health": "GP health record", "education": "School progress", "case": "Cases"}


def category_words(categories: list[str]) -> str:
    """ "your GP health record and school progress": categories inside a sentence to the citizen."""
    return " and ".join(CATEGORY_WORDS.get(c, c) for c in categories)


def category_label(category: str) -> str:
    """ "Your GP health record": one category as a list item or a checkbox label."""
    words = CATEGORY_WORDS.get(category, category)
    return words[:1].upper() + words[1:]


# A source system pushing deliveries to one connector: "connector:<name>" (issued by
# `pds connectors credentials NAME`), for client-credentials tokens only.
CONNECTOR_PREFIX = "connector:"
CONNECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def connector_scope(name: str) -> str:
    return CONNECTOR_PREFIX + name


def is_supported(scope: str) -> bool:
    if scope.startswith(CONNECTOR_PREFIX):
        return bool(CONNECTOR_NAME.match(scope[len(CONNECTOR_PREFIX) :]))
    return scope in SUPPORTED_SCOPES


def split(scope: str | None) -> list[str]:
    return [s for s in (scope or "").split() if s]


def categories_of(scope: str | None) -> list[str]:
    """The record categories a scope string reaches, in a stable order."""
    wanted = set(split(scope))
    return [category for s, category in CATEGORY_SCOPES.items() if s in wanted]


def scopes_for_categories(categories: list[str]) -> list[str]:
    return [s for s, category in CATEGORY_SCOPES.items() if category in categories]


def join(scopes: list[str]) -> str:
    """A canonical scope string: supported order, no duplicates, connector scopes last."""
    wanted = set(scopes)
    connectors = sorted(s for s in wanted if s.startswith(CONNECTOR_PREFIX) and is_supported(s))
    return " ".join([*(s for s in SUPPORTED_SCOPES if s in wanted), *connectors])
