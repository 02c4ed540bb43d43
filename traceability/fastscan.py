"""The scan page's fast path: anonymous scans answered without Flask's request machinery.

The resolver (``GET /01/...`` and ``GET /epc/...``) is the busiest page of the site: every
buyer who points a phone at a label lands on it, nearly always for the first time, with
no cookie. For those requests Flask's per-request work (request context, session,
Flask-Login, CSRF, Flask-Limiter's bookkeeping, after-request hooks) costs as much as
the page itself. This WSGI middleware answers them with an app context only, through
the same functions the resolver views call (``views.scan_link``, ``views.scan_epc``):
same rate limit, same counting, same cached page shell, same headers.

Everything else goes to Flask untouched: other paths and methods, any request carrying
a cookie other than ``lang`` (a session, a signed-in user, Flask-Login's remember me),
and codes the strict parser rejects (nothing has been counted at that point). Pages that
must be rendered (a cache miss, "not recognised", 429, an error) are rendered inside a
request context built from the same environ, by Flask's own templates and error
handlers. ``TRACE_SCAN_FAST_PATH = False`` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, g
from werkzeug.http import parse_cookie

from market.extensions import hit_rate_limit
from market.web import SECURITY_HEADERS
from traceability import codes, views

_PREFIXES = ("/01/", "/epc/")


class FastScan:
    """WSGI middleware in front of the Flask app (inside ProxyFix)."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and path.startswith(_PREFIXES)
            and self.app.config["TRACE_SCAN_FAST_PATH"]
        ):
            locale = self._visitor_locale(environ)
            if locale is not None:
                response = self._answer(environ, path, locale)
                if response is not None:
                    return response(environ, start_response)
        return self.wsgi_app(environ, start_response)

    def _visitor_locale(self, environ: dict[str, Any]) -> str | None:
        """The language of a visitor without a session (as ``market.app.select_locale``
        would choose it), or None when the request carries any other cookie."""
        config = self.app.config
        header = environ.get("HTTP_COOKIE")
        if not header:
            return config["BABEL_DEFAULT_LOCALE"]
        cookies = parse_cookie(header)
        if any(name != "lang" for name in cookies):
            return None
        chosen = cookies.get("lang")
        return chosen if chosen in config["LANGUAGES"] else config["BABEL_DEFAULT_LOCALE"]

    def _answer(self, environ: dict[str, Any], path: str, locale: str) -> Response | None:
        app = self.app
        with app.app_context():
            g.locale = locale
            visit = views.scan_visit(app, environ, locale, fast=True)
            if path.startswith("/01/"):
                shown = views.raw_target(environ)
                try:
                    link = codes.parse_digital_link(shown)
                except codes.CodeError:
                    return None  # nothing counted yet: Flask's view answers "not recognised"

                def scan() -> Response | str:
                    return views.scan_link(app, link, visit)
            else:
                shown = path[len("/epc/") :]
                if not shown or shown.startswith("/") or not shown.isascii():
                    return None  # Flask's routing decides (404, redirect)

                def scan() -> Response | str:
                    return views.scan_epc(app, shown, visit)

            try:
                hit_rate_limit(views.public_limit(app), views.RESOLVER_LIMIT_SCOPE, visit.address)
                answer = scan()
            except Exception as exc:  # answered by Flask's error handlers, as in a view
                failure = exc

                def fail() -> None:
                    raise failure

                return self._in_flask(environ, locale, fail)
            if isinstance(answer, str):
                return self._in_flask(environ, locale, lambda: views.not_recognised(answer, shown))
            # What Flask's after-request hooks add; the lang cookie chooses the language.
            answer.headers.extend((*SECURITY_HEADERS, ("Vary", "Cookie")))
            return answer

    def _in_flask(self, environ: dict[str, Any], locale: str, view: Callable[[], Any]) -> Response:
        """Answer as Flask answers a view that returns (or raises) what ``view`` does:
        templates, error handlers and after-request hooks in a real request context."""
        app = self.app
        with app.request_context(environ):
            g.locale = locale
            # As Flask.wsgi_app and full_dispatch_request do it.
            try:
                try:
                    rv = view()
                except Exception as exc:
                    rv = app.handle_user_exception(exc)
            except Exception as exc:
                return app.finalize_request(app.handle_exception(exc), from_error_handler=True)
            return app.finalize_request(rv)


def install(app: Flask) -> None:
    """Put the fast path in front of the app; create_app adds ProxyFix outside it."""
    app.wsgi_app = FastScan(app, app.wsgi_app)  # type: ignore[method-assign]
