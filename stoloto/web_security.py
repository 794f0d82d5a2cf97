"""Browser-facing hardening: security headers, a per-response CSP nonce, and trust in a TLS proxy."""
import secrets

from flask import Flask, g
from werkzeug.middleware.proxy_fix import ProxyFix

# Scripts and styles only from SIS itself and with this response's nonce: no 'unsafe-inline', so no inline
# event handlers or style attributes in templates (static/sis.js does what Flask-Admin's onclick did).
# Scripts may still set element.style (the date picker, select2 do): the CSP does not cover that.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Same-origin pages still get a Referer: Flask-WTF checks it on HTTPS form posts.
    "Referrer-Policy": "same-origin",
}


def csp_nonce() -> str:
    """The nonce of the response being built; templates put it on every <script>."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def register_security(app: Flask) -> None:
    if app.config["SIS_BEHIND_PROXY"]:
        # One proxy in front: trust its X-Forwarded-For/-Proto/-Host, so the client's address is
        # what logins are throttled by and url_for builds https:// links.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _security_headers(response):
        response.headers.update(HEADERS)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(nonce=csp_nonce())
        return response
