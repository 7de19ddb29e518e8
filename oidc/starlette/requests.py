"""authlib requests built from Starlette requests, after their body has been read."""

from __future__ import annotations

import base64
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from starlette.requests import Request

_MAX_FIELDS = 64


class StarletteOAuth2Payload(OAuth2Payload):  # type: ignore[misc]
    """Query and form parameters, first value wins in ``data``, every value in ``datalist``."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        args: Iterable[tuple[str, str]] = (),
        form: Iterable[tuple[str, str]] = (),
    ) -> None:
        # what OAuth2Request.__init__ sets, without its transport check on every request: the URI
        # is the issuer's, checked once per URI (tests.oidc pins the attribute list to authlib's)
        _check_transport(uri)
        self.method = method
        self.uri = uri
        self.headers = headers
        self._body = None
        self.client = None
        self.auth_method = None
        self.user = None
        self.authorization_code = None
        self.refresh_token = None
        self.credential = None
        self._scope = None
        self._args = StarletteOAuth2Payload(args)
        self._form = StarletteOAuth2Payload(form)
        if not self._args.datalist:  # a POST to the token endpoint: the form is the whole payload
            self.payload = self._form
        elif not self._form.datalist:
            self.payload = self._args
        else:
            merged = list(self._args.datalist.items()) + list(self._form.datalist.items())
            self.payload = StarletteOAuth2Payload((k, v) for k, values in merged for v in values)

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data


@functools.lru_cache(maxsize=64)
def _check_transport(uri: str) -> None:
    """RFC 6749 §1.6 via authlib: raises InsecureTransportError (never cached) for plain http."""
    InsecureTransportError.check(uri)


class BadRequestError(ValueError):
    """A request the OAuth endpoints cannot even read; answered with ``invalid_request``."""


class TooManyParametersError(BadRequestError):
    pass


class MalformedClientAuthError(BadRequestError):
    """An Authorization header no client authentication can be read from (RFC 6749 §5.2:
    ``invalid_client``)."""


def check_client_authorization(value: str | None) -> None:
    """Refuse what authlib cannot read: a scheme and blanks with nothing after them (its
    ``split`` fails) and Basic credentials that are not base64 of UTF-8 ``id:secret`` (RFC 7617
    §2; it decodes them unchecked). Any other scheme is left to the endpoint to refuse."""
    if not value or " " not in value:
        return
    parts = value.split(None, 1)
    if len(parts) < 2:
        raise MalformedClientAuthError(f"the Authorization header has no credentials after {parts[0]!r}")
    if parts[0].lower() != "basic":
        return
    try:
        decoded = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise MalformedClientAuthError("the Basic credentials are not base64 of UTF-8 text") from None
    if ":" not in decoded:
        raise MalformedClientAuthError("the Basic credentials must be client_id:client_secret")


_MAX_BODY = 64 * 1024


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise BadRequestError(f"the request body is larger than {_MAX_BODY // 1024} kB")
    return bytes(body)


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """An ``application/x-www-form-urlencoded`` body (WHATWG URL §5.1), strictly UTF-8.

    The standard library's parser, not a streaming multipart parser: OAuth bodies are a few
    hundred bytes, and this is the token endpoint's hot path.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("the request body is not UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, errors="strict")
    except ValueError:
        raise TooManyParametersError(f"more than {_MAX_FIELDS} form parameters") from None
    except UnicodeDecodeError:
        raise BadRequestError("a form parameter is not valid percent-encoded UTF-8") from None
    return pairs


async def oauth2_request(
    request: Request, *, public_url: str, authenticates_client: bool = False
) -> StarletteOAuth2Request:
    """Read the body (form-encoded only) and build the authlib request.

    ``public_url`` is the URL the client used (issuer + path): behind a TLS-terminating proxy the
    socket's own URL would say http. ``authenticates_client``: the endpoint reads client
    credentials from the Authorization header, which must then be readable.
    """
    form_pairs: list[tuple[str, str]] = []
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            form_pairs = parse_form(await _read_body(request))
        elif ctype:
            # RFC 6749 §3.2, §4.1.3; RFC 7009 §2.1; RFC 7662 §2.1: parameters are form-encoded
            raise BadRequestError(
                f"the request body must be application/x-www-form-urlencoded, not {ctype[:60]}"
            )
    if authenticates_client:
        check_client_authorization(request.headers.get("authorization"))
    args = list(request.query_params.multi_items()) if request.scope.get("query_string") else []
    if len(args) > _MAX_FIELDS:
        raise TooManyParametersError(f"more than {_MAX_FIELDS} query parameters")
    return StarletteOAuth2Request(
        method=request.method, uri=public_url, headers=request.headers, args=args, form=form_pairs
    )


def from_params(*, method: str, uri: str, params: Mapping[str, str]) -> StarletteOAuth2Request:
    """Rebuild an authorization request stored while the person logged in."""
    return StarletteOAuth2Request(method=method, uri=uri, headers={}, args=list(params.items()))
