"""A local Microsoft Entra ID look-alike for the sign-in tests: OIDC discovery, token and device-code
endpoints over HTTPS on 127.0.0.1 (MSAL insists on https authorities), counting every token request.

It checks what Entra checks that matters here: the client secret, the client assertion's signature
(against the test certificate's public key, with its audience, issuer and SHA-256 thumbprint), the
device code's polling, and refresh tokens.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class KeyPair:
    key_pem: str
    cert_pem: str
    cert: x509.Certificate

    @property
    def sha256_thumbprint_b64(self) -> str:
        return _b64url(self.cert.fingerprint(hashes.SHA256()))

    @property
    def sha1_b64(self) -> str:
        return _b64url(self.cert.fingerprint(hashes.SHA1()))  # noqa: S303

    @property
    def sha1_hex(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 (Entra shows SHA-1 thumbprints)


def self_signed(common_name: str, *, ip: str | None = None) -> KeyPair:
    """A fresh RSA key and self-signed certificate (for the TLS endpoint, or as the app's credential)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName("localhost")]
            ),
            critical=False,
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return KeyPair(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert)


@dataclass
class EndpointState:
    tenant: str
    client_id: str
    client_secret: str
    app_cert: KeyPair
    username: str = "teacher@school.example"
    pending_polls: int = 2  # authorization_pending answers before the device code succeeds
    expires_in: int = 3600
    refresh_tokens_valid: bool = True
    requests: Counter[str] = field(default_factory=Counter)  # grant type → count
    issued: list[str] = field(default_factory=list)  # every access and refresh token handed out
    scopes_seen: list[str] = field(default_factory=list)
    devices: dict[str, int] = field(default_factory=dict)  # device_code → polls so far
    device_scopes: dict[str, str] = field(default_factory=dict)  # device_code → scopes asked for
    fixed_access_token: str | None = None  # hand out this access token (the emulator's) instead of random
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_token(self, kind: str) -> str:
        token = f"{kind}-{secrets.token_urlsafe(24)}"
        if self.fixed_access_token and kind.endswith("-at"):
            token = self.fixed_access_token
        self.issued.append(token)
        return token


class TokenEndpoint:
    """``with TokenEndpoint(...) as ep:`` serves https://127.0.0.1:{ep.port}/{tenant}/…"""

    def __init__(self, state: EndpointState, tls: KeyPair, tls_dir: Path) -> None:
        self.state = state
        self.ca_file = tls_dir / "endpoint-cert.pem"
        self.ca_file.write_text(tls.cert_pem)
        key_file = tls_dir / "endpoint-key.pem"
        key_file.write_text(tls.key_pem)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca_file, key_file)
        handler = type("Handler", (_Handler,), {"endpoint": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def host(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.host}/{self.state.tenant}/oauth2/v2.0/token"

    def __enter__(self) -> TokenEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # ------------------------------------------------------------------ answers

    def discovery(self, tenant: str) -> tuple[int, dict[str, Any]]:
        if tenant != self.state.tenant:
            return 400, {
                "error": "invalid_tenant",
                "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
            }
        base = f"{self.host}/{tenant}"
        return 200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "response_types_supported": ["code", "id_token", "token"],
        }

    def devicecode(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        s = self.state
        if form.get("client_id") != s.client_id:
            return 400, _err("unauthorized_client", "AADSTS700016: Application not found in the directory.")
        code = secrets.token_urlsafe(16)
        with s.lock:
            s.devices[code] = 0
            s.device_scopes[code] = form.get("scope", "")
        return 200, {
            "device_code": code,
            "user_code": "ABCD-1234",
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            "interval": 0,  # poll at once: the test needs no sleeping
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
            "and enter the code ABCD-1234 to authenticate.",
        }

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        s = self.state
        grant = form.get("grant_type", "")
        with s.lock:
            s.requests[grant] += 1
            s.scopes_seen.append(form.get("scope", ""))
        if form.get("client_id") != s.client_id:
            return 400, _err("unauthorized_client", "AADSTS700016: Application not found in the directory.")
        if grant == "client_credentials":
            return self._client_credentials(form)
        if grant == DEVICE_GRANT:
            with s.lock:
                polls = s.devices.get(form.get("device_code", ""))
                if polls is None:
                    return 400, _err("expired_token", "AADSTS70020: The provided value is expired.")
                s.devices[form["device_code"]] = polls + 1
            if polls < s.pending_polls:
                return 400, _err("authorization_pending", "AADSTS70016: Pending end-user authorization.")
            return 200, self._user_tokens(form, s.device_scopes[form["device_code"]])
        if grant == "refresh_token":
            if not (s.refresh_tokens_valid and form.get("refresh_token") in s.issued):
                return 400, _err("invalid_grant", "AADSTS700082: The refresh token has expired.")
            return 200, self._user_tokens(form, form.get("scope", ""))
        return 400, _err("unsupported_grant_type", f"AADSTS70003: grant {grant!r}")

    def _client_credentials(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        s = self.state
        if not form.get("scope", "").endswith("/.default"):
            return 400, _err("invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
        if "client_secret" in form:
            if form["client_secret"] != s.client_secret:
                return 401, _err(
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID.",
                )
        elif form.get("client_assertion_type") == ASSERTION_TYPE:
            problem = self._check_assertion(form.get("client_assertion", ""))
            if problem:
                return 401, _err("invalid_client", f"AADSTS700027: {problem}")
        else:
            return 401, _err("invalid_client", "AADSTS7000216: client_assertion or client_secret needed.")
        token = s.new_token("app-at")
        return 200, {"token_type": "Bearer", "expires_in": s.expires_in, "access_token": token}

    def _check_assertion(self, assertion: str) -> str | None:
        s = self.state
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                s.app_cert.cert.public_key(),
                algorithms=["PS256", "RS256"],
                audience=self.token_url,
                issuer=s.client_id,
            )
        except jwt.PyJWTError as e:
            return f"Client assertion failed signature validation ({type(e).__name__})."
        if claims.get("sub") != s.client_id:
            return "the assertion's subject is not the client"
        sha256 = str(header.get("x5t#S256", "")).rstrip("=")
        sha1 = str(header.get("x5t", "")).rstrip("=")
        if sha256 != s.app_cert.sha256_thumbprint_b64 and sha1 != s.app_cert.sha1_b64:
            return "Certificate with identifier used to sign the client assertion is not registered."
        return None

    def _user_tokens(self, form: dict[str, str], scope: str) -> dict[str, Any]:
        s = self.state
        now = int(time.time())
        oid = hashlib.sha256(s.username.encode()).hexdigest()[:32]
        claims = {
            "iss": f"{self.host}/{s.tenant}/v2.0",
            "aud": s.client_id,
            "sub": oid,
            "oid": oid,
            "tid": s.tenant,
            "preferred_username": s.username,
            "name": "A Teacher",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        id_token = ".".join(
            [_b64url(b'{"alg":"none","typ":"JWT"}'), _b64url(json.dumps(claims).encode()), ""]
        )
        requested = [x for x in scope.split() if x not in {"openid", "profile", "offline_access"}]
        return {
            "token_type": "Bearer",
            "scope": " ".join(requested),
            "expires_in": s.expires_in,
            "ext_expires_in": s.expires_in,
            "access_token": s.new_token("user-at"),
            "refresh_token": s.new_token("user-rt"),
            "id_token": id_token,
            "client_info": _b64url(json.dumps({"uid": oid, "utid": s.tenant}).encode()),
        }


def _err(error: str, description: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"{description}\r\nTrace ID: 0000-trace\r\nCorrelation ID: 1111-corr\r\n"
        "Timestamp: 2026-01-01 00:00:00Z",
        "error_codes": [int(description[6:].partition(":")[0])] if description.startswith("AADSTS") else [],
    }


class _Handler(BaseHTTPRequestHandler):
    endpoint: TokenEndpoint

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self._send(*self.endpoint.discovery(parts[0]))
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == self.endpoint.state.tenant and parts[1:3] == ["oauth2", "v2.0"]:
            if parts[3] == "token":
                self._send(*self.endpoint.token(form))
                return
            if parts[3] == "devicecode":
                self._send(*self.endpoint.devicecode(form))
                return
        self._send(404, {"error": "not_found"})
