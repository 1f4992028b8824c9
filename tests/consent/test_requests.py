"""Consent requests from professionals: the whole decision path through the services, on a real database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from consent import events
from consent.models import StaffMember
from consent.professionals import StaffService
from consent.requests import AccessRefused, ProfessionalReads, RequestService, check_ask
from pds.errors import NotFound, ValidationError
from pds.runtime import Runtime
from tests.conftest import add_citizen, record

NHS = "9434765919"
UNKNOWN_NHS = "9434765870"


@dataclasses.dataclass
class Practice:
    gp: uuid.UUID
    teacher: uuid.UUID
    other_gp: uuid.UUID


@pytest.fixture
def practice(runtime: Runtime) -> Practice:
    with runtime.sessions() as s, s.begin():
        staff = StaffService(s, provider=runtime.provider)
        surgery = staff.add_org(kind="gp_practice", code="A81001", name="Riverside Surgery")
        school = staff.add_org(kind="school", code="100001", name="Hillview Academy")
        other = staff.add_org(kind="gp_practice", code="B82002", name="Hilltop Medical Centre")
        pw = "correct horse battery"
        return Practice(
            gp=staff.add(
                org_id=surgery.id, name="Dr Asha Patel", email="asha@a.example", role="gp", password=pw
            ).id,
            teacher=staff.add(
                org_id=school.id, name="Mr T", email="t@s.example", role="teacher", password=pw
            ).id,
            other_gp=staff.add(org_id=other.id, name="Dr O", email="o@h.example", role="gp", password=pw).id,
        )


def _ask(member: StaffMember, **kw: object) -> object:
    args: dict[str, object] = {"purpose": "Diabetes annual review", "categories": ["health"], "days": 30}
    args.update(kw)
    return check_ask(member, **args)  # type: ignore[arg-type]


def test_request_approved_with_less_then_read_then_revoked(
    runtime: Runtime, practice: Practice, source: str
) -> None:
    citizen = add_citizen(runtime, nhs_number=NHS)
    with runtime.vault() as v:
        v.records.put(
            [
                record(citizen, "hba1c", note="HbA1c 52"),
                dataclasses.replace(
                    record(citizen, "allergy", note="Penicillin"),
                    kind="fhir:AllergyIntolerance",
                    payload={"resourceType": "AllergyIntolerance", "id": "allergy"},
                ),
                record(citizen, "old", when="2019-01-01T10:00:00+00:00"),
            ]
        )
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, practice.gp)
        asked = _ask(
            gp, resource_types=["Observation", "AllergyIntolerance"], records_from=dt.date(2025, 1, 1)
        )
        req = RequestService(v.session, vault=v).make(gp, "943 476 5919", asked)  # type: ignore[arg-type]
        request_id = req.id
    with runtime.vault() as v:
        assert [r.id for r in RequestService(v.session, vault=v).pending_for(citizen)] == [request_id]
        grant = RequestService(v.session, vault=v).approve(
            request_id, citizen_id=citizen, resource_types=["Observation"]
        )
        grant_id = grant.id
    with runtime.vault() as v:
        service = RequestService(v.session, vault=v)
        assert service.status(service.get_for_citizen(request_id, citizen)) == "approved_with_changes"
        gp = v.session.get(StaffMember, practice.gp)
        _, records = ProfessionalReads(v.session, vault=v).read(gp, grant_id)
        # only the granted type, only from the granted date
        assert [r.source_record_id for r in records] == ["hba1c"]
    with runtime.vault() as v:
        from consent.services import GrantService

        GrantService(v.session).revoke(grant_id, citizen_id=citizen)
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, practice.gp)
        with pytest.raises(AccessRefused):
            ProfessionalReads(v.session, vault=v).read(gp, grant_id)
        service = RequestService(v.session, vault=v)
        assert service.status(service.get_for_citizen(request_id, citizen)) == "revoked"
        history = [i.event for i in events.history(v.session, citizen)]
    assert events.REQUEST_MADE in history and events.GRANT_CREATED in history
    assert history.count(events.RECORDS_READ) == 1 and events.GRANT_REVOKED in history


def test_unknown_number_is_sent_all_the_same(runtime: Runtime, practice: Practice) -> None:
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, practice.gp)
        req = RequestService(v.session, vault=v).make(gp, UNKNOWN_NHS, _ask(gp))  # type: ignore[arg-type]
        assert req.citizen_id is None and req.status == "pending" and req.patient_hint == "870"


def test_boundaries(runtime: Runtime, practice: Practice) -> None:
    citizen = add_citizen(runtime, nhs_number=NHS)
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, practice.gp)
        teacher = v.session.get(StaffMember, practice.teacher)
        with pytest.raises(ValidationError) as bad:
            _ask(teacher)
        assert bad.value.field == "categories"
        with pytest.raises(ValidationError) as bad:
            RequestService(v.session, vault=v).make(gp, "1234567890", _ask(gp))  # type: ignore[arg-type]
        assert bad.value.field == "nhs_number"
        req = RequestService(v.session, vault=v).make(gp, NHS, _ask(gp))  # type: ignore[arg-type]
        request_id = req.id
    with runtime.vault() as v:
        other = v.session.get(StaffMember, practice.other_gp)
        with pytest.raises(NotFound):
            RequestService(v.session, vault=v).get_for_org(request_id, other.org_id)
        grant = RequestService(v.session, vault=v).approve(request_id, citizen_id=citizen)
        with pytest.raises(AccessRefused):  # another practice's GP holds nothing
            ProfessionalReads(v.session, vault=v).read(other, grant.id)
        with pytest.raises(AccessRefused):  # a teacher never breaks the glass
            ProfessionalReads(v.session, vault=v).emergency(
                v.session.get(StaffMember, practice.teacher), NHS, "collapsed in the playground"
            )
        grant_id = grant.id
    with runtime.vault() as v:
        StaffService(v.session).revoke(practice.gp)
    with runtime.vault() as v:  # a revoked member of staff loses access at once, grant or not
        assert StaffService(v.session).active(practice.gp) is None
        with pytest.raises(AccessRefused):
            ProfessionalReads(v.session, vault=v).read(v.session.get(StaffMember, practice.gp), grant_id)


def test_emergency_access_is_flagged_and_told(runtime: Runtime, practice: Practice) -> None:
    citizen = add_citizen(runtime, nhs_number=NHS, email="pat@example.org")
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, practice.gp)
        with pytest.raises(ValidationError) as bad:
            ProfessionalReads(v.session, vault=v).emergency(gp, NHS, "x")
        assert bad.value.field == "reason"
        grant = ProfessionalReads(v.session, vault=v).emergency(
            gp, NHS, "Unconscious in A&E, allergies needed"
        )
        assert grant.emergency and grant.ends_at - grant.starts_at <= dt.timedelta(hours=1)
        org_id = gp.org_id
    with runtime.vault() as v:
        uses = ProfessionalReads(v.session, vault=v).emergency_uses(org_id)
        assert [u["reason"] for u in uses] == ["Unconscious in A&E, allergies needed"]
        told = v.notifications.due()
        assert [m.kind for m in told] == ["emergency_access"] and "emergency" in told[0].body
        entries = events.history(v.session, citizen)
        flagged = [e for e in entries if e.event == events.EMERGENCY_ACCESS]
        assert flagged and flagged[0].details["emergency"] is True


def test_staff_second_factor_is_sealed_and_follows_key_rotation(runtime: Runtime, practice: Practice) -> None:
    from consent.models import StaffMember as Row
    from pds.vault.crypto import LocalKeyProvider

    provider = runtime.provider
    assert isinstance(provider, LocalKeyProvider)
    with runtime.sessions() as s, s.begin():
        staff = StaffService(s, provider=provider)
        staff.set_totp_secret(s.get(Row, practice.gp), "JBSWY3DPEHPK3PXP")
        stored = s.get(Row, practice.gp).totp_secret
        assert stored is not None and b"JBSWY3DPEHPK3PXP" not in stored  # never in clear
        old = provider.active_kek_id()
    new = provider.add_kek()
    with runtime.sessions() as s, s.begin():
        staff = StaffService(s, provider=provider)
        assert staff.totp_kek_usage() == {old: 1}
        assert staff.rewrap_totp() == 1
        assert staff.totp_kek_usage() == {new: 1}
        assert staff.totp_secret(s.get(Row, practice.gp)) == "JBSWY3DPEHPK3PXP"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("purpose", "review\x00"),
        ("purpose", " "),
        ("callback_url", "http://[::1"),
        ("callback_url", "https://exa mple.org/cb"),
        ("callback_url", "http://example.org/cb"),
        ("callback_url", "ftp://example.org/cb"),
    ],
)
def test_bad_asks_name_their_field(runtime: Runtime, practice: Practice, field: str, value: str) -> None:
    with runtime.vault() as v:
        gp = v.session.get(StaffMember, practice.gp)
        with pytest.raises(ValidationError) as bad:
            _ask(gp, **{field: value})
        assert bad.value.field == field


def test_staff_names_and_addresses_refuse_control_characters(runtime: Runtime, practice: Practice) -> None:
    with runtime.vault() as v:
        staff = StaffService(v.session)
        org_id = v.session.get(StaffMember, practice.gp).org_id
        for field, kw in (("name", {"name": "Dr\x00X"}), ("email", {"email": "a\x00b@x.example"})):
            args = {"name": "Dr X", "email": "x@x.example", **kw}
            with pytest.raises(ValidationError) as bad:
                staff.add(org_id=org_id, role="gp", password="correct horse battery", **args)
            assert bad.value.field == field
