"""Every table pds has, imported in one place so migrations and tests see the whole schema."""

from pds.vault.models import Citizen, DataKeyRow, GuardianLink, Identifier, KeyCheck, Record, Source

__all__ = ["Citizen", "DataKeyRow", "GuardianLink", "Identifier", "KeyCheck", "Record", "Source"]
