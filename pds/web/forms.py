"""Forms (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, ValidationError

MAX_GRANT_DAYS = 366  # as consent.services allows

DURATIONS = [
    SelectChoice("30", "30 days"),
    SelectChoice("90", "3 months"),
    SelectChoice("180", "6 months"),
    SelectChoice("365", "1 year"),
]


def example_day() -> str:
    """A date as the date input takes it, a month from today, for its hint ("For example, 27 3 2027")."""
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    return f"{day.day} {day.month} {day.year}"


class DayMonthYear(DateField):
    """GOV.UK's date input (templates/_date_input.html): day, month and year boxes posted under the
    field's one name, in that order. All three empty is no date; anything else must be a real date."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        parts = [str(v).strip() for v in valuelist]
        self.data = None
        if not any(parts):
            return
        if len(parts) != 3:
            raise ValueError("Enter a day, a month and a year")
        missing = [name for name, part in zip(("day", "month", "year"), parts, strict=True) if not part]
        if missing:
            raise ValueError(f"The date must include a {' and a '.join(missing)}")
        day, month, year = parts
        if not all(p.isascii() and p.isdigit() for p in parts) or len(day) > 2 or len(month) > 2:
            raise ValueError("The date must be a real date, in numbers, like 27 3 2027")
        if len(year) != 4:
            raise ValueError("The year must have 4 numbers")
        try:
            self.data = dt.date(int(year), int(month), int(day))
        except ValueError:
            raise ValueError("The date must be a real date") from None


class Form(FlaskForm):
    """Forms read only form-encoded bodies: Flask-WTF would also take a JSON body, and fail on one
    that is not an object."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form: object, formdata: object) -> object:
            if formdata is not None and not hasattr(formdata, "getlist"):  # Flask-WTF's "read the request"
                return request.form if request.method in ("POST", "PUT", "PATCH", "DELETE") else None
            return formdata


class SignInForm(Form):
    email = EmailField("Email address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class CodeForm(Form):
    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=8)])


class PasswordForm(Form):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class PasswordCodeForm(Form):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=8)])


class NarrowForm(Form):
    """Take categories away from a grant, or end it sooner (choices are the grant's own categories)."""

    categories = SelectMultipleField("What it may see", choices=[], validate_choice=True)
    ends_on = DayMonthYear("End it sooner: the last day it may read")

    def validate_ends_on(self, field: DayMonthYear) -> None:
        today = dt.datetime.now(dt.UTC).date()
        if field.data is not None and field.data < today:
            raise ValidationError("Choose today or a later day")


class ConsentForm(Form):
    duration = SelectField("For how long", choices=DURATIONS, default="90")
    ends_on = DayMonthYear("Or until a date you choose (the last day it may read)")

    def validate_ends_on(self, field: DayMonthYear) -> None:
        today = dt.datetime.now(dt.UTC).date()
        if field.data is not None and not today <= field.data < today + dt.timedelta(days=MAX_GRANT_DAYS):
            raise ValidationError("Choose a date from today and within a year")

    def ends_at(self) -> dt.datetime:
        """When the grant ends: the end of the chosen day, or now plus the chosen duration."""
        if self.ends_on.data is not None:
            return dt.datetime.combine(self.ends_on.data + dt.timedelta(days=1), dt.time(), dt.UTC)
        return dt.datetime.now(dt.UTC) + dt.timedelta(days=int(self.duration.data or "90"))


DECISIONS = ("approve", "change", "refuse")


class RequestDecisionForm(Form):
    """A citizen's answer to a professional's request. With changes, the choices are what was asked: a
    box can only be unticked, and the end only brought forward."""

    decision = RadioField(
        "Your answer",
        choices=[SelectChoice(d) for d in DECISIONS],
        validate_choice=False,  # AnyOf says it once, in plain words
        validators=[AnyOf(DECISIONS, message="Choose to approve, approve with changes, or refuse")],
    )
    categories = SelectMultipleField("What they may see", choices=[], validate_choice=True)
    resource_types = SelectMultipleField("Which parts of your GP record", choices=[], validate_choice=True)
    ends_on = DayMonthYear("End it sooner: the last day they may read")

    def validate_ends_on(self, field: DayMonthYear) -> None:
        today = dt.datetime.now(dt.UTC).date()
        if self.decision.data == "change" and field.data is not None and field.data < today:
            raise ValidationError("Choose today or a later day")
