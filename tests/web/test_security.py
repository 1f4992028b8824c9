"""A second factor (TOTP, set up with a QR code), and signing out everywhere, over plain HTTP."""

from __future__ import annotations

import re
import time

import pyotp

from tests.web.live import Browser, Person

SECRET = re.compile(r'id="secret">([A-Z2-7 ]+)</strong>')


def page(browser: Browser, path: str):  # type: ignore[no-untyped-def]
    return browser.http.get(browser.base + path, allow_redirects=False)


def post(browser: Browser, path: str, form_page: str, **data: str):  # type: ignore[no-untyped-def]
    return browser.http.post(
        browser.base + path, data={"csrf_token": browser.csrf(form_page), **data}, allow_redirects=False
    )


def turn_on(browser: Browser, person: Person) -> pyotp.TOTP:
    setup = page(browser, "/account/security/two-step")
    assert setup.status_code == 200 and 'src="data:image/svg+xml;base64,' in setup.text
    totp = pyotp.TOTP(SECRET.search(setup.text).group(1).replace(" ", ""))
    wrong = post(browser, "/account/security/two-step", setup.text, password="not it", code=totp.now())
    assert wrong.status_code == 400 and "The password is not right" in wrong.text
    done = post(browser, "/account/security/two-step", wrong.text, password=person.password, code=totp.now())
    assert done.status_code == 303
    return totp


def test_two_step_verification_is_set_up_and_then_asked_for(base: str, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    assert 'id="two-step-off-tag"' in page(browser, "/account/security").text
    totp = turn_on(browser, alice)
    assert 'id="two-step-on"' in page(browser, "/account/security").text

    later = Browser(base)
    later.sign_in(alice)  # the password is right: now the code
    assert page(later, "/account/health").status_code == 303  # not signed in yet
    code_page = page(later, "/signin/code")
    assert code_page.status_code == 200 and 'autocomplete="one-time-code"' in code_page.text
    bad = post(later, "/signin/code", code_page.text, code="000000" if totp.now() != "000000" else "111111")
    assert bad.status_code == 400 and "The code is not right" in bad.text
    ok = post(later, "/signin/code", bad.text, code=totp.now())
    assert ok.status_code == 303 and page(later, "/account/health").status_code == 200

    replay = Browser(base)
    replay.sign_in(alice)
    again = post(replay, "/signin/code", page(replay, "/signin/code").text, code=totp.now())
    assert again.status_code == 400  # a code is good once
    next_step = totp.at(time.time() + totp.interval)  # the app's next code, within the allowed drift
    assert post(replay, "/signin/code", again.text, code=next_step).status_code == 303


def test_two_step_verification_turns_off_with_password_and_code(base: str, alice: Person) -> None:
    browser = Browser(base)
    browser.sign_in(alice)
    totp = turn_on(browser, alice)
    security = page(browser, "/account/security").text
    refused = post(browser, "/account/security/two-step/off", security, password=alice.password, code="12")
    assert refused.status_code == 303 and 'id="two-step-on"' in page(browser, "/account/security").text
    off = post(
        browser,
        "/account/security/two-step/off",
        page(browser, "/account/security").text,
        password=alice.password,
        code=totp.at(time.time() + totp.interval),
    )
    assert off.status_code == 303 and 'id="two-step-off-tag"' in page(browser, "/account/security").text
    fresh = Browser(base)
    fresh.sign_in(alice)
    assert page(fresh, "/account/health").status_code == 200  # password alone again


def test_sign_out_everywhere_ends_every_session(base: str, alice: Person) -> None:
    laptop, phone = Browser(base), Browser(base)
    laptop.sign_in(alice)
    phone.sign_in(alice)
    assert page(phone, "/account/health").status_code == 200
    security = page(laptop, "/account/security").text
    kept = post(laptop, "/account/security/sign-out-everywhere", security, password="wrong")
    assert kept.status_code == 303 and page(phone, "/account/health").status_code == 200
    gone = post(
        laptop,
        "/account/security/sign-out-everywhere",
        page(laptop, "/account/security").text,
        password=alice.password,
    )
    assert gone.status_code == 303 and gone.headers["Location"].endswith("/signin")
    assert page(phone, "/account/health").status_code == 303  # the other browser is signed out too
    assert page(laptop, "/account/health").status_code == 303
    again = Browser(base)
    again.sign_in(alice)
    assert page(again, "/account/health").status_code == 200  # a new sign-in works


def test_security_pages_need_a_signed_in_citizen(base: str) -> None:
    stranger = Browser(base)
    assert page(stranger, "/account/security").status_code == 303
    assert page(stranger, "/account/security/two-step").status_code == 303
    assert page(stranger, "/signin/code").headers["Location"].endswith("/signin")
