"""Signing in to Microsoft Graph: MSAL client credentials, device code, or a token from the environment.

``token_provider(settings)`` is what the Graph client calls for each request; ``gradesync auth
login | status | logout`` (``gradesync.cli.auth``) manage the persistent token cache.
"""

from gradesync.auth.signin import (
    APPLICATION_PERMISSIONS,
    CERT_PASSWORD_ENV,
    DELEGATED_PERMISSIONS,
    SECRET_ENV,
    TOKEN_ENV,
    AuthStatus,
    SignIn,
    TokenInfo,
    graph_resource,
    scopes_for,
    token_provider,
)

__all__ = [
    "APPLICATION_PERMISSIONS",
    "CERT_PASSWORD_ENV",
    "DELEGATED_PERMISSIONS",
    "SECRET_ENV",
    "TOKEN_ENV",
    "AuthStatus",
    "SignIn",
    "TokenInfo",
    "graph_resource",
    "scopes_for",
    "token_provider",
]
