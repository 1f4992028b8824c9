"""Forms (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, Length

DURATIONS = [
    SelectChoice("30", "30 days"),
    SelectChoice("90", "3 months"),
    SelectChoice("180", "6 months"),
    SelectChoice("365", "1 year"),
]


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


class ConsentForm(Form):
    duration = SelectField("For how long", choices=DURATIONS, default="90")
