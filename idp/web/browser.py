"""The browser's side of a request: cookies, CSRF tokens, client IP, language, page rendering."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from idp.sessions import COOKIE_NAME as SESSION_COOKIE
from idp.web.i18n import LANGUAGE_COOKIE

if TYPE_CHECKING:
    from idp.web.state import AppState

BROWSER_COOKIE = "__Host-idp_browser"
BROWSER_COOKIE_MAX_AGE = 400 * 24 * 3600


def state(request: Request) -> AppState:
    return request.app.idp  # type: ignore[no-any-return]  # idp.web.app.IdpApp


def client_ip(request: Request) -> str | None:
    """The caller's IP; the first X-Forwarded-For hop only when proxies are trusted."""
    if state(request).settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return request.client.host if request.client else None


def browser_id(request: Request) -> str | None:
    value = request.cookies.get(BROWSER_COOKIE)
    return value if value and 20 <= len(value) <= 128 else None


def csrf_token(secret: str, browser: str) -> str:
    """A form token bound to the browser cookie (signed double-submit, OWASP CSRF cheat sheet)."""
    return hmac.new(secret.encode(), b"csrf:" + browser.encode(), hashlib.sha256).hexdigest()


def csrf_ok(request: Request, submitted: object) -> bool:
    browser = browser_id(request)
    # compare_digest refuses non-ASCII text (TypeError); our tokens are hex, so such text is wrong
    if browser is None or not isinstance(submitted, str) or not submitted.isascii():
        return False
    return hmac.compare_digest(csrf_token(state(request).settings.secret_key, browser), submitted)


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


def language(request: Request) -> str:
    pages = state(request).pages
    return pages.negotiate(
        cookie=request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language"),
        ui_locales=getattr(request.state, "ui_locales", None),
    )


def hint_language(request: Request, ui_locales: object) -> None:
    """Let the pages of this request follow a relying app's OIDC ``ui_locales`` (where the person
    has not chosen a language themselves): :func:`language` reads it."""
    # a stored Babel id ("sr_Latn") names the tag "sr-Latn"
    request.state.ui_locales = ui_locales.replace("_", "-") if isinstance(ui_locales, str) else None


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    browser: str | None = None,
    branding: dict[str, Any] | None = None,
    return_path: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page; gives the browser its cookie (and so a CSRF token) on first visit.

    The language switcher comes back to this page's URL; a page that answers a form post cannot be
    fetched again, so it comes back to ``return_path`` (a GET page) or the home page instead, and
    ``return_path`` takes the post's place in the browser's history (a reload or Back shows it
    rather than sending the form again).
    """
    st = state(request)
    new_browser = None
    if browser is None:
        browser = browser_id(request)
    if browser is None:
        from idp.secrets import new_secret

        browser = new_browser = new_secret()
    replace_url = None
    if request.method in {"GET", "HEAD"}:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        path = return_path or "/"
        replace_url = return_path  # the post's place in the history (static/post-result.js)
    html = st.pages.render(
        template,
        language=language(request),
        languages=list(st.pages.languages),
        csrf_token=csrf_token(st.settings.secret_key, browser),
        current_path=path,
        replace_url=replace_url,
        branding=branding or {},
        status=status,  # error.html shows it
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if new_browser is not None:
        set_cookie(response, BROWSER_COOKIE, new_browser, max_age=BROWSER_COOKIE_MAX_AGE)
    return response


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' https:; media-src 'self' blob: mediastream:; "
    "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

__all__ = ["BROWSER_COOKIE", "SESSION_COOKIE", "browser_id", "client_ip", "csrf_ok", "render", "set_cookie"]
