"""Entra ID sign-in of the web app, end to end against a local fake authority over TLS.

tests/auth/endpoint.py serves OIDC discovery and the token endpoint; here it learns the
authorization-code grant: the test plays the user's browser at the authorize step (it reads the
``auth_uri`` MSAL built, checks PKCE's S256 challenge is there, and mints a code bound to it), then the
web app's ``/auth/callback`` redeems the code with MSAL (``acquire_token_by_auth_code_flow``), which
POSTs the code, the PKCE verifier and the client secret to the fake token endpoint. The endpoint checks
all three and answers with an ID token carrying ``nonce`` and ``groups``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gradesync.web.auth import Authenticator, SignIn, msal_app
from tests.auth.endpoint import EndpointState, TokenEndpoint, self_signed
from tests.web.conftest import web_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TENANT = "school.example"
CLIENT_ID = "99999999-2222-3333-4444-555555555555"
SECRET = "web-s3cr3t~NeverInAPage_0123456789"
USERS_GROUP, APPROVERS_GROUP = "g-registrars", "g-approvers"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AuthCodeEndpoint(TokenEndpoint):
    """The token endpoint plus the authorization-code grant with PKCE."""

    groups: list[str]
    codes: dict[str, dict[str, str]]

    def authorize(self, auth_uri: str) -> dict[str, str]:
        """What the authority does when the user signs in: a code for this request, bound to PKCE."""
        q = {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}
        assert q["response_type"] == "code" and q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self.codes[code] = q
        return {"code": code, "state": q["state"]}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "authorization_code":
            return super().token(form)
        asked = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        if asked is None or form.get("client_secret") != self.state.client_secret:
            return 400, {"error": "invalid_grant", "error_description": "AADSTS70008: bad code or secret"}
        if _b64url(hashlib.sha256(verifier.encode()).digest()) != asked["code_challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "AADSTS501481: PKCE mismatch"}
        now = int(time.time())
        claims = {
            "iss": f"{self.host}/{TENANT}/v2.0",
            "aud": CLIENT_ID,
            "sub": "oid-1",
            "oid": "oid-1",
            "tid": TENANT,
            "preferred_username": "registrar@school.example",
            "name": "A Registrar",
            "nonce": asked.get("nonce", ""),
            "groups": self.groups,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        id_token = ".".join(
            [_b64url(b'{"alg":"none","typ":"JWT"}'), _b64url(json.dumps(claims).encode()), ""]
        )
        return 200, {
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": "user-at-" + secrets.token_urlsafe(16),
            "id_token": id_token,
            "client_info": _b64url(json.dumps({"uid": "oid-1", "utid": TENANT}).encode()),
        }


@pytest.fixture
def authority(tmp_path: Path):
    state = EndpointState(
        tenant=TENANT, client_id=CLIENT_ID, client_secret=SECRET, app_cert=self_signed("web-app")
    )
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    with AuthCodeEndpoint(state, self_signed("127.0.0.1", ip="127.0.0.1"), tls_dir) as ep:
        ep.codes, ep.groups = {}, [USERS_GROUP]
        yield ep


def _app(emulator, token, tmp_path, authority):
    signin = SignIn(
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        group=USERS_GROUP,
        approver_group=APPROVERS_GROUP,
        authority_host=authority.host,
        redirect_uri="http://testserver/auth/callback",
    )
    session = requests.Session()
    session.verify, session.trust_env = str(authority.ca_file), False

    def factory(cfg: SignIn) -> Any:
        return msal_app(cfg, http_client=session)  # the app's own factory, trusting the test CA

    config = web_config(emulator, token, tmp_path / "state")
    config.signin = signin
    config.authenticator = Authenticator(signin, app_factory=factory)
    from gradesync.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(create_app(config))


def _sign_in(c: TestClient, authority: AuthCodeEndpoint):
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/auth/login"  # no page without sign-in
    r = c.get("/auth/login", follow_redirects=False)
    auth_uri = r.headers["location"]
    assert auth_uri.startswith(f"{authority.host}/{TENANT}/oauth2/v2.0/authorize?")
    assert "code_verifier" not in auth_uri and "code_verifier" not in str(c.cookies)
    assert "response_mode=form_post" in auth_uri
    # the authority POSTs the code (form_post), then the browser lands on /auth/finish
    r = c.post("/auth/callback", data=authority.authorize(auth_uri), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/auth/finish"
    return c.get("/auth/finish", follow_redirects=False)


def test_a_member_signs_in_and_the_secret_and_tokens_never_reach_a_page(emulator, token, tmp_path, authority):
    c = _app(emulator, token, tmp_path, authority)
    r = _sign_in(c, authority)
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = c.get("/").text
    assert "A Registrar" in page and "approver" not in page  # a member, not an approver
    assert SECRET not in page and "user-at-" not in page and "user-at-" not in str(c.cookies)
    assert "code_verifier" not in str(c.cookies)
    csrf = re.search(r'action="/auth/logout\?csrf=([^"]+)"', page).group(1)
    assert c.post("/auth/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 403  # body only
    assert c.post(f"/auth/logout?csrf={csrf}", follow_redirects=False).status_code == 303
    assert c.get("/", follow_redirects=False).headers["location"] == "/auth/login"


def test_approvers_group_marks_an_approver(emulator, token, tmp_path, authority):
    authority.groups = [USERS_GROUP, APPROVERS_GROUP]
    c = _app(emulator, token, tmp_path, authority)
    _sign_in(c, authority)
    assert "A Registrar · approver" in c.get("/").text


def test_a_non_member_is_refused(emulator, token, tmp_path, authority):
    authority.groups = ["g-someone-else"]
    c = _app(emulator, token, tmp_path, authority)
    r = _sign_in(c, authority)
    assert r.status_code == 403 and "not a member of the group" in r.text
    assert c.get("/", follow_redirects=False).headers["location"] == "/auth/login"


def test_a_replayed_or_forged_callback_is_refused(emulator, token, tmp_path, authority):
    c = _app(emulator, token, tmp_path, authority)
    r = c.post("/auth/callback", data={"code": "forged", "state": "x"}, follow_redirects=False)
    assert c.get(r.headers["location"]).status_code == 403
    # a flow is collected only by the browser session that started it (no login CSRF)
    auth_uri = c.get("/auth/login", follow_redirects=False).headers["location"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = TestClient(c.app)  # another browser on the same server, without c's cookie
    other.post("/auth/callback", data=authority.authorize(auth_uri), follow_redirects=False)
    assert other.get("/auth/finish", follow_redirects=False).status_code == 403
    assert c.get("/auth/finish", follow_redirects=False).headers["location"] == "/"
    assert "A Registrar" in c.get("/").text
