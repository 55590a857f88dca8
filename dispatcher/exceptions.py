"""Errors of the dispatcher: Graph API errors as classes chosen by Meta's code, and transport failures.

    DispatchError                      root; every error has ``is_transient``, ``retry_after``, ``http_status``
    ├── GraphError                     Meta answered with an error object (``code``, ``title``, ``details``…)
    │   ├── ThrottlingError            transient: RequestLimitError (4, 17, 613), BusinessRateLimitError (80007),
    │   │                              ThroughputExceededError (130429), PairRateLimitError (131056)
    │   ├── ServiceError               transient: UnknownServiceError (1, 131000),
    │   │                              ServiceUnavailableError (2, 131016), MaintenanceError (131057)
    │   ├── AuthorizationError         0, 104, 190: ``needs_reauth``
    │   ├── PermissionDeniedError      3, 10, 200-299
    │   ├── ReEngagementError          131047: outside the 24-hour window, send a template
    │   ├── RecipientError             UndeliverableError (131026), UnsupportedMessageTypeError (131051),
    │   │                              ExperimentNumberError (130472)
    │   ├── TemplateError              132000, 132001, 132005, 132007, 132012, 132015, 132016
    │   ├── ParameterError             InvalidParameterError (100), MissingParameterError (131008),
    │   │                              ParameterValueError (131009)
    │   ├── MediaError                 MediaDownloadError (131052), MediaUploadError (131053)
    │   ├── PolicyError                368, 131031, 130497, 131048, 131049, 131042
    │   └── RegistrationError          NotRegisteredError (133010), PinMismatchError (133005),
    │                                  RegisterRateLimitError (133016, transient)
    ├── RequestRejected                a 4xx that is not a Graph error (wrong URL, proxy): not processed, permanent
    └── TransportError                 no answer, and the request certainly did not leave: safe to retry
        └── AmbiguousOutcome           the request may have reached Meta (timeout or drop after sending)
            └── UnexpectedResponse     an answer that is not Graph's (non-JSON 5xx, a 200 without a wamid)

An unknown code gives a plain ``GraphError``, transient when HTTP >= 500 or Meta's body says
``is_transient``. The same classes parse the ``errors[0]`` of failed-status webhooks.
Codes: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

_PREFIX = re.compile(r"^\(#\d+\)\s*")


class DispatchError(Exception):
    """Root of every dispatcher error."""

    is_transient: bool = False

    def __init__(self, message: str, *, http_status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after


class GraphError(DispatchError):
    """Meta answered with an error object; subclasses declare the codes they stand for."""

    codes: ClassVar[frozenset[int]] = frozenset()
    default_retry_after: ClassVar[float | None] = None
    slows_lane: ClassVar[bool] = False
    needs_reauth: ClassVar[bool] = False
    _by_code: ClassVar[dict[int, type[GraphError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for code in cls.__dict__.get("codes", ()):
            if code in GraphError._by_code:
                raise TypeError(f"code {code} declared by {GraphError._by_code[code].__name__} and {cls.__name__}")
            GraphError._by_code[code] = cls

    def __init__(self, code: int, title: str = "", details: str = "", *, http_status: int | None = None,
                 subcode: int | None = None, fbtrace_id: str | None = None, retry_after: float | None = None,
                 is_transient: bool | None = None) -> None:
        self.code = code
        self.title = title
        self.details = details
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        if is_transient is not None:
            self.is_transient = is_transient
        text = f"({code}) {title}" + (f": {details}" if details and details != title else "")
        super().__init__(text, http_status=http_status,
                         retry_after=self.default_retry_after if retry_after is None else retry_after)

    @classmethod
    def class_for(cls, code: int) -> type[GraphError] | None:
        """The most specific class declaring ``code``, or None."""
        return GraphError._by_code.get(code)

    @classmethod
    def from_code(cls, code: int, title: str = "", details: str = "", *, http_status: int | None = None,
                  subcode: int | None = None, fbtrace_id: str | None = None, retry_after: float | None = None,
                  transient_hint: bool | None = None) -> GraphError:
        """An instance of the class declaring ``code``; unknown codes are transient on 5xx or Meta's hint."""
        known = cls.class_for(code)
        transient = None
        if known is None:
            transient = bool(transient_hint) or (http_status is not None and http_status >= 500)
        return (known or GraphError)(code, title, details, http_status=http_status, subcode=subcode,
                                     fbtrace_id=fbtrace_id, retry_after=retry_after, is_transient=transient)

    @classmethod
    def from_response(cls, http_status: int, body: Any, *, retry_after: float | None = None) -> GraphError:
        """Parse a Graph error body ``{"error": {...}}``; ValueError when it is not one."""
        error = body.get("error") if isinstance(body, dict) else None
        code = _int(error.get("code")) if isinstance(error, dict) else None
        if not isinstance(error, dict) or code is None:
            raise ValueError("not a Graph error body")
        message = _PREFIX.sub("", str(error.get("message") or ""))
        title = str(error.get("error_user_title") or message)
        details = str(_details(error) or error.get("error_user_msg") or "")
        return cls.from_code(code, title, details, http_status=http_status, subcode=_int(error.get("error_subcode")),
                             fbtrace_id=error.get("fbtrace_id"), retry_after=retry_after,
                             transient_hint=error.get("is_transient") is True)

    @classmethod
    def from_status_error(cls, error: dict[str, Any]) -> GraphError:
        """Build from ``errors[0]`` of a failed-status webhook (or a ``value.errors[]`` entry)."""
        code = _int(error.get("code"))
        title = str(error.get("title") or error.get("message") or "")
        return cls.from_code(-1 if code is None else code, title, str(_details(error) or ""))


def _details(error: dict[str, Any]) -> Any:
    data = error.get("error_data")
    return data.get("details") if isinstance(data, dict) else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- Throttling: transient; the lane pauses for retry_after ------------------------------------------------------
class ThrottlingError(GraphError):
    is_transient = True
    default_retry_after = 1.0


class RequestLimitError(ThrottlingError):
    """App or user Graph call rate limit (hourly buckets)."""

    codes = frozenset({4, 17, 613})
    default_retry_after = 60.0


class BusinessRateLimitError(ThrottlingError):
    codes = frozenset({80007})
    default_retry_after = 60.0


class ThroughputExceededError(ThrottlingError):
    """The number's messages-per-second limit (130429)."""

    codes = frozenset({130429})
    slows_lane = True


class PairRateLimitError(ThrottlingError):
    """Too many messages to one recipient (131056); Meta suggests 4^n s back-off."""

    codes = frozenset({131056})
    slows_lane = True
    default_retry_after = 6.0


# -- Service: transient ------------------------------------------------------------------------------------------
class ServiceError(GraphError):
    is_transient = True
    default_retry_after = 1.0


class UnknownServiceError(ServiceError):
    codes = frozenset({1, 131000})


class ServiceUnavailableError(ServiceError):
    codes = frozenset({2, 131016})


class MaintenanceError(ServiceError):
    """131057: the number is being upgraded (throughput); lasts up to about a minute."""

    codes = frozenset({131057})
    default_retry_after = 10.0


# -- Permanent categories ----------------------------------------------------------------------------------------
class AuthorizationError(GraphError):
    """Token missing, expired or revoked: pause the tenant until it re-authorises."""

    codes = frozenset({0, 104, 190})
    needs_reauth = True


class PermissionDeniedError(GraphError):
    codes = frozenset({3, 10, *range(200, 300)})


class ReEngagementError(GraphError):
    """More than 24 hours since the customer's last message: only a template may be sent."""

    codes = frozenset({131047})


class RecipientError(GraphError):
    pass


class UndeliverableError(RecipientError):
    codes = frozenset({131026})


class UnsupportedMessageTypeError(RecipientError):
    codes = frozenset({131051})


class ExperimentNumberError(RecipientError):
    codes = frozenset({130472})


class TemplateError(GraphError):
    """132000 param count, 132001 missing, 132005 too long, 132007 policy, 132012 format, 132015 paused,
    132016 disabled."""

    codes = frozenset({132000, 132001, 132005, 132007, 132012, 132015, 132016})


class ParameterError(GraphError):
    pass


class InvalidParameterError(ParameterError):
    codes = frozenset({100})


class MissingParameterError(ParameterError):
    codes = frozenset({131008})


class ParameterValueError(ParameterError):
    codes = frozenset({131009})


class MediaError(GraphError):
    pass


class MediaDownloadError(MediaError):
    codes = frozenset({131052})


class MediaUploadError(MediaError):
    codes = frozenset({131053})


class PolicyError(GraphError):
    """368 blocked, 131031 locked, 130497 country, 131048 spam limit, 131049 marketing cap, 131042 payment."""

    codes = frozenset({368, 131031, 130497, 131048, 131049, 131042})


class RegistrationError(GraphError):
    pass


class NotRegisteredError(RegistrationError):
    codes = frozenset({133010})


class PinMismatchError(RegistrationError):
    codes = frozenset({133005})


class RegisterRateLimitError(RegistrationError):
    codes = frozenset({133016})
    is_transient = True
    default_retry_after = 60.0


# -- Not Graph's answer ------------------------------------------------------------------------------------------
class RequestRejected(DispatchError):
    """A 4xx that is not a Graph error object (wrong URL, proxy refusal): not processed, not retryable."""


class TransportError(DispatchError):
    """No answer, and the request certainly did not leave (connection refused, pool timeout): retry freely."""

    is_transient = True


class AmbiguousOutcome(TransportError):
    """The request may have reached Meta (timeout or drop after sending): repeat at most once, and count it."""


class UnexpectedResponse(AmbiguousOutcome):
    """An answer that is not Graph's: a non-JSON 5xx from a gateway, or a success without a wamid."""


def human_reason(exc: BaseException) -> str:
    """One line for people: what went wrong, with Meta's code when there is one."""
    if isinstance(exc, GraphError):
        text = f"Meta error {exc.code}: {exc.title or type(exc).__name__}"
        if exc.details and exc.details != exc.title:
            text += f" ({exc.details})"
    elif isinstance(exc, AmbiguousOutcome):
        text = f"outcome unknown, Meta may have accepted the message: {exc}"
    elif isinstance(exc, TransportError):
        text = f"network error, the request was not sent: {exc}"
    elif isinstance(exc, RequestRejected):
        text = f"request rejected before reaching Graph: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:299] + "…"
