"""Which parser reads which connector: built from its [connectors.NAME] settings."""

from __future__ import annotations

import importlib

from connectors.base import Parser
from pds.settings import ConnectorSettings

# kind -> (module, class); imported when first used, so a connector's libraries load only if configured
PARSERS = {
    "fhir": ("connectors.fhir", "FhirParser"),
    "open311": ("connectors.open311", "Open311Parser"),
    "oneroster": ("connectors.oneroster", "OneRosterParser"),
}
SOURCE_KIND = {"fhir": "fhir", "open311": "open311", "oneroster": "oneroster"}  # the vault's source kinds


def parser_for(connector: ConnectorSettings) -> Parser:
    module, name = PARSERS[connector.kind]
    cls = getattr(importlib.import_module(module), name)
    if connector.kind == "open311":
        return cls(identifier_kind=connector.identifier or "council_account")  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]
