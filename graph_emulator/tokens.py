"""Bearer tokens: which ones the emulator accepts and when they expire.

The emulator started with token ``T`` accepts ``T`` and any ``T.<suffix>`` (so a test's token provider
can hand out ``T.1``, ``T.2`` ... as fresh tokens); all of them are one app, one throttling scope.
With a lifetime ``L`` (seconds of the emulator's clock), each distinct token string is refused once
``L`` seconds have passed since the emulator first saw it — 401 ``InvalidAuthenticationToken``,
"Lifetime validation failed, the token is expired." (the message Graph gives for an expired token).
Setting a lifetime forgets when tokens were first seen, so it counts from the next use.
"""

from __future__ import annotations

EXPIRED = "Lifetime validation failed, the token is expired."
EMPTY = "Access token is empty."
INVALID = "Access token validation failure. Invalid audience."


class TokenGate:
    def __init__(self, token: str, lifetime: float | None = None) -> None:
        self.token = token
        self.lifetime: float | None = None
        self._first_seen: dict[str, float] = {}
        self.set_lifetime(lifetime)

    def set_lifetime(self, lifetime: float | None) -> None:
        if lifetime is not None and (isinstance(lifetime, bool) or float(lifetime) <= 0):
            raise ValueError("token_lifetime must be a number of seconds above 0 (or null: never)")
        self.lifetime = None if lifetime is None else float(lifetime)
        self._first_seen.clear()

    def reset(self) -> None:
        self._first_seen.clear()

    def accepts(self, token: str) -> bool:
        return token == self.token or (
            token.startswith(self.token + ".") and len(token) > len(self.token) + 1
        )

    def refusal(self, authorization: str, now: float) -> tuple[str, bool] | None:
        """None when ``authorization`` may pass; else (message, expired)."""
        if not authorization:
            return EMPTY, False
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or not self.accepts(token):
            return INVALID, False
        first = self._first_seen.setdefault(token, now)
        if self.lifetime is not None and now - first >= self.lifetime:
            return EXPIRED, True
        return None
