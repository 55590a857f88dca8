"""The console's form posts: ``application/x-www-form-urlencoded`` bodies and the same-origin check.

FastAPI's ``Form`` needs python-multipart, which the project does not install; the console's forms
carry a few short fields, so the body is read here with a cap (``MAX_FORM_BYTES``, 413 past it)
and parsed with ``urllib.parse``. Every state-changing console post must also come from this
site's own pages (``same_origin``): the session cookie is ``SameSite=Lax`` already, and the
``Origin`` and ``Sec-Fetch-Site`` headers browsers send on every post refuse the rest (CSRF,
including login CSRF).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from fastapi import Request, status

FORM_TYPE = "application/x-www-form-urlencoded"
# A 320-character email and a 1,024-character password, each percent-encoded at 3 bytes a
# character, fit with room to spare.
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 16


class FormError(Exception):
    """A form post that cannot be read; ``status_code`` is the answer it gets."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an urlencoded ``body`` (the first value of a repeated name wins)."""
    try:
        text = body.decode("ascii")  # urlencoded bodies are ASCII; percent-escapes carry the UTF-8
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError is one, and so is too many fields
        raise FormError(status.HTTP_400_BAD_REQUEST, "this form could not be read") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def read_form(request: Request, *, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """Read and parse the request's urlencoded body; FormError (413, 415 or 400) when it cannot be."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise FormError(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"expected {FORM_TYPE}")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise FormError(status.HTTP_413_CONTENT_TOO_LARGE, "this form is too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise FormError(status.HTTP_413_CONTENT_TOO_LARGE, "this form is too large")
    return parse_form(bytes(body))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def same_origin(request: Request, *, public_url: str | None = None) -> bool:
    """Whether a post comes from this site's own pages, as far as the browser's headers tell.

    A browser names the page's origin in ``Origin`` on every post; it must be this host (as the
    ``Host`` header names it) or ``public_url``. Requests without ``Origin`` come from
    non-browser clients, which hold no victim's cookie, and pass.
    """
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    scheme, netloc = _origin(origin)
    if scheme not in ("http", "https") or not netloc:  # includes "null" (sandboxed or privacy-sensitive)
        return False
    host = request.headers.get("host", "").lower()
    return netloc == host or (public_url is not None and (scheme, netloc) == _origin(public_url))
