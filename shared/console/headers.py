"""Security headers of every console response (issue 7 §4; OWASP).

Scripts, styles, connections and forms only from the node itself, no inline script or style
(htmx is configured not to add its indicator style and never to evaluate code); images also as
``data:`` (the sign-in challenge). Who may frame the console comes from ``http.frame_ancestors``.
"""

from __future__ import annotations


def security_headers(frame_ancestors: str) -> dict[str, str]:
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }
