"""authlib requests built from Starlette requests, after their body has been read."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from starlette.exceptions import HTTPException
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
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = StarletteOAuth2Payload(args)
        self._form = StarletteOAuth2Payload(form)
        merged = list(self._args.datalist.items()) + list(self._form.datalist.items())
        self.payload = StarletteOAuth2Payload((k, v) for k, values in merged for v in values)

    @property
    def args(self) -> dict[str, str]:
        return self._args.data

    @property
    def form(self) -> dict[str, str]:
        return self._form.data


class BadRequestError(ValueError):
    """A request the OAuth endpoints cannot even read; answered with ``invalid_request``."""


class TooManyParametersError(BadRequestError):
    pass


async def oauth2_request(request: Request, *, public_url: str) -> StarletteOAuth2Request:
    """Read the body (form-encoded only) and build the authlib request.

    ``public_url`` is the URL the client used (issuer + path): behind a TLS-terminating proxy the
    socket's own URL would say http.
    """
    form_pairs: list[tuple[str, str]] = []
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            try:
                form = await request.form(max_fields=_MAX_FIELDS)
            except HTTPException as exc:  # Starlette's: too many fields, or one too large
                raise TooManyParametersError(str(exc.detail)) from None
            form_pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        elif ctype:
            # RFC 6749 §3.2, §4.1.3; RFC 7009 §2.1; RFC 7662 §2.1: parameters are form-encoded
            raise BadRequestError(
                f"the request body must be application/x-www-form-urlencoded, not {ctype[:60]}"
            )
    args = list(request.query_params.multi_items())
    if len(args) > _MAX_FIELDS:
        raise TooManyParametersError(f"more than {_MAX_FIELDS} query parameters")
    return StarletteOAuth2Request(
        method=request.method, uri=public_url, headers=request.headers, args=args, form=form_pairs
    )


def from_params(*, method: str, uri: str, params: Mapping[str, str]) -> StarletteOAuth2Request:
    """Rebuild an authorization request stored while the person logged in."""
    return StarletteOAuth2Request(method=method, uri=uri, headers={}, args=list(params.items()))
