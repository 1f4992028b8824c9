"""The portal's forms (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from wtforms import EmailField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length

from consent.professionals import ROLE_ORGS, ROLE_WORDS
from pds.web.forms import DayMonthYear, Form

DAYS = [
    SelectChoice(v, t)
    for v, t in (("30", "30 days"), ("90", "3 months"), ("180", "6 months"), ("365", "1 year"))
]


class RequestForm(Form):
    nhs_number = StringField(
        "Patient's NHS number", validators=[DataRequired("Enter the patient's NHS number"), Length(max=20)]
    )
    purpose = TextAreaField(
        "Why you ask",
        validators=[DataRequired("Say why you ask, as the patient will read it"), Length(max=500)],
    )
    categories = SelectMultipleField("What you need", choices=[], validate_choice=True)
    resource_types = SelectMultipleField(
        "Which parts of the GP record (none ticked: all of it)", choices=[], validate_choice=True
    )
    days = SelectField("For how long", choices=DAYS, default="90")
    records_from = DayMonthYear("Records from (optional)")
    records_until = DayMonthYear("Records up to (optional)")


class EmergencyForm(Form):
    nhs_number = StringField(
        "Patient's NHS number", validators=[DataRequired("Enter the patient's NHS number"), Length(max=20)]
    )
    reason = TextAreaField(
        "Clinical reason",
        validators=[DataRequired("Give the clinical reason for emergency access"), Length(max=500)],
    )


class NewStaffForm(Form):
    name = StringField("Full name", validators=[DataRequired("Enter their full name"), Length(max=200)])
    email = EmailField(
        "Work email address", validators=[DataRequired("Enter their work email address"), Length(max=254)]
    )
    role = SelectField("Role", choices=[], validate_choice=True)


def role_choices(org_kind: str) -> list[tuple[str, str]]:
    return [(role, ROLE_WORDS[role]) for role, kinds in ROLE_ORGS.items() if org_kind in kinds]
