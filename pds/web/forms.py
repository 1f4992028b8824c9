"""Forms (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

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


class SignInForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class ConsentForm(FlaskForm):
    duration = SelectField("For how long", choices=DURATIONS, default="90")
