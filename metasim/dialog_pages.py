"""The HTML of the simulated OAuth dialog: login, consent and error pages (plain forms, no JavaScript).

Element ids and field names are a contract with the browser tests and the headless driver: ``login-form``
(``email``, ``password``, button ``login``), ``consent-form`` (selects ``business_id``, ``waba_id``,
``phone_number_id``; buttons ``allow`` and ``cancel`` posting ``decision``), a hidden ``dialog`` in both,
and ``error`` for the message on any page.
"""

from __future__ import annotations

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from metasim.signup import DialogSession, User

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))

_LAYOUT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><main>
<h1>{{ title }}</h1>
{% if error %}<p id="error" role="alert">{{ error }}</p>{% endif %}
{{ content }}
</main></body></html>
"""

_LOGIN = _env.from_string("""<p>Log in to continue to {{ app_name }}.</p>
<form id="login-form" method="post" action="/{{ version }}/dialog/oauth/login">
  <input type="hidden" name="dialog" value="{{ dialog }}">
  <label for="email">Email address or phone number</label>
  <input type="text" name="email" id="email" value="{{ email }}" autocomplete="username">
  <label for="password">Password</label>
  <input type="password" name="password" id="password" autocomplete="current-password">
  <button type="submit" id="login">Log in</button>
</form>""")

_CONSENT = _env.from_string("""<p id="requester">{{ app_name }} is requesting access to your WhatsApp Business
accounts, logged in as {{ user.name }}.</p>
<ul id="permissions">
  <li>whatsapp_business_management: manage your WhatsApp accounts, numbers and templates</li>
  <li>whatsapp_business_messaging: send and receive messages</li>
</ul>
<form id="consent-form" method="post" action="/{{ version }}/dialog/oauth/confirm">
  <input type="hidden" name="dialog" value="{{ dialog }}">
  <label for="business_id">Business portfolio</label>
  <select name="business_id" id="business_id">
  {% for business in user.businesses %}<option value="{{ business.id }}">{{ business.name }}</option>
  {% endfor %}</select>
  <label for="waba_id">WhatsApp Business Account</label>
  <select name="waba_id" id="waba_id">
  {% for business in user.businesses %}{% for waba in business.wabas %}<option value="{{ waba.id }}"
    {%- if waba.id == first_waba %} selected{% endif %}>{{ waba.name }} ({{ business.name }})</option>
  {% endfor %}{% endfor %}<option value="">Don't share a WhatsApp account</option>
  </select>
  <label for="phone_number_id">Phone number</label>
  <select name="phone_number_id" id="phone_number_id">
  {% for business in user.businesses %}{% for waba in business.wabas %}{% for number in waba.numbers %}<option
    value="{{ number.id }}">{{ number.verified_name }} {{ number.display_phone_number }} ({{ waba.name }})</option>
  {% endfor %}{% endfor %}{% endfor %}</select>
  <button type="submit" name="decision" value="allow" id="allow">Allow</button>
  <button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>
</form>""")

_PAGE = _env.from_string(_LAYOUT)


def login_page(session: DialogSession, *, version: str, app_name: str, email: str = "",
               error: str | None = None) -> str:
    """Page 1: "Log in to Facebook"."""
    content = _LOGIN.render(app_name=app_name, version=version, dialog=session.id, email=email)
    return _page("Log in to Facebook", content, error)


def consent_page(user: User, session: DialogSession, *, version: str, app_name: str, error: str | None = None) -> str:
    """Page 2: "Connect your WhatsApp account", its first WABA chosen by default."""
    first = next((w.id for b in user.businesses for w in b.wabas), None)
    content = _CONSENT.render(app_name=app_name, version=version, dialog=session.id, user=user, first_waba=first)
    return _page("Connect your WhatsApp account", content, error)


def error_page(message: str) -> str:
    """Meta's dialog error page: a title and the problem, no redirect."""
    return _page("Error", "<p>Sorry, something went wrong. Go back to the app and try again.</p>", message)


def _page(title: str, content: str, error: str | None) -> str:
    # ``content`` comes from the autoescaping templates above (or is a literal): safe to embed as is.
    return _PAGE.render(title=title, content=Markup(content), error=error)  # noqa: S704
