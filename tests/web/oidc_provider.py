"""A real OpenID Connect provider for the tests, built from Authlib's server components.

:func:`running_provider` serves it on 127.0.0.1 on a free port in a thread:
discovery document, JWKS, an authorization endpoint (authorization-code flow
only, PKCE with S256 required, a nonce required and used once) and a token
endpoint that issues RS256-signed ID tokens. Its users are
:class:`ProviderUser` objects; the authorization endpoint signs in
``auto_user`` without asking, or shows a page where the user is picked and
"Continue" pressed (as a browser user would at a real provider).

Tests can make it misbehave the ways a real provider or an attacker could:
refuse the sign-in (``refuse``, as when the user cancels), put another nonce or audience in the ID token
(``nonce_override``, ``audience_override``), or sign it with a key its JWKS
does not publish (``sign_with_unknown_key``). It records what clients sent
(``authorization_requests``, ``token_requests``) so tests can check PKCE.
"""

from __future__ import annotations

import functools
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, request
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

CLIENT_ID = "procflow-tests"
CLIENT_SECRET = "s3cret-of-the-test-client"


@dataclass
class ProviderUser:
    """An account at the provider: its subject and the claims its ID token carries."""

    subject: str
    claims: dict[str, Any]


@dataclass
class _Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "profile", "email", "groups"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Any callback of the Procflow app under test (its port is only known once it runs).
        return redirect_uri.startswith("http://127.0.0.1:") and "/sso/" in redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: ProviderUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


@functools.cache
def _signing_keys() -> tuple[RSAKey, RSAKey]:
    """The provider's signing key, and one under the same key id that its JWKS never publishes.

    Made once per test run: RSA key generation is slow.
    """
    return tuple(  # type: ignore[return-value]
        RSAKey.generate_key(2048, parameters={"kid": "provider-key-1", "use": "sig"}) for _ in range(2)
    )


class OIDCTestProvider:
    """The provider's state: users, keys, codes, what tests make it do, and what it was sent."""

    def __init__(self, users: list[ProviderUser]) -> None:
        self.users = {user.subject: user for user in users}
        self.issuer = ""  # set once the server listens
        self.key, self.unknown_key = _signing_keys()
        self.client = _Client(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1/sso/test/callback"])
        self.codes: dict[str, _Code] = {}
        self.used_nonces: set[str] = set()
        self.authorization_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.reset()

    def reset(self) -> None:
        """Sign in nobody automatically and behave correctly again."""
        self.auto_user: str | None = None
        self.refuse = False
        self.nonce_override: str | None = None
        self.audience_override: str | None = None
        self.sign_with_unknown_key = False

    def setting(self, **mapping: Any) -> dict[str, Any]:
        """Return a ``PROCFLOW_OIDC_PROVIDERS`` entry for this provider, with *mapping* fields added."""
        return {
            "key": "norr",
            "name": "Region Norr ID",
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **mapping,
        }


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        provider: OIDCTestProvider = self.server.provider
        data = request.payload.data
        nonce = data.get("nonce")
        if nonce:
            provider.used_nonces.add(nonce)
        provider.codes[code] = _Code(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user=request.user,
            nonce=nonce,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        found = self.server.provider.codes.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        self.server.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: _Code) -> ProviderUser:
        return authorization_code.user


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: OIDCTestProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return nonce in self.provider.used_nonces

    def resolve_client_private_key(self, client: _Client) -> RSAKey:
        return self.provider.unknown_key if self.provider.sign_with_unknown_key else self.provider.key

    def get_client_algorithm(self, client: _Client) -> str:
        return "RS256"

    def get_encode_header(self, client: _Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": "provider-key-1"}

    def get_client_claims(self, client: _Client) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": [self.provider.audience_override or client.client_id]}

    def get_authorization_code_claims(self, authorization_code: _Code) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_authorization_code_claims(authorization_code)
        if self.provider.nonce_override is not None:
            claims["nonce"] = self.provider.nonce_override
        return claims

    def generate_user_info(self, user: ProviderUser, scope: str) -> UserInfo:
        return UserInfo(sub=user.subject, **user.claims)


class _S256Required(CodeChallenge):  # type: ignore[misc]
    """PKCE on every authorization request, and only with S256 (as RFC 9700 recommends)."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        if grant.request.payload.data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required")
        super().validate_code_challenge(grant, redirect_uri)


def _create_app(provider: OIDCTestProvider) -> Flask:
    app = Flask("oidc_test_provider")
    server = AuthorizationServer(
        app,
        query_client=lambda client_id: provider.client if client_id == CLIENT_ID else None,
        save_token=lambda token, request: None,
    )
    server.provider = provider
    server.register_grant(_CodeGrant, [_OpenIDCode(provider), _S256Required(required=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        return jsonify(
            issuer=provider.issuer,
            authorization_endpoint=f"{provider.issuer}/authorize",
            token_endpoint=f"{provider.issuer}/token",
            jwks_uri=f"{provider.issuer}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=["openid", "profile", "email", "groups"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported=["S256"],
        )

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify(KeySet([provider.key]).as_dict(private=False))

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        provider.authorization_requests.append(request.args.to_dict())
        subject = request.form.get("subject") if request.method == "POST" else provider.auto_user
        user = provider.users.get(subject) if subject else None
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return server.handle_error_response(request, error)
        if provider.refuse:
            return server.create_authorization_response(grant_user=None, grant=grant)
        if user is None:
            return _pick_user_page(provider)
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.post("/token")
    def token() -> Any:
        provider.token_requests.append(request.form.to_dict())
        return server.create_token_response()

    return app


def _pick_user_page(provider: OIDCTestProvider) -> str:
    options = "".join(
        f'<label><input type="radio" name="subject" value="{escape(u.subject)}"> '
        f"{escape(str(u.claims.get('name', u.subject)))}</label>"
        for u in provider.users.values()
    )
    action = escape(f"/authorize?{urlencode(request.args.to_dict())}")
    return (
        "<!doctype html><html lang='en'><title>Region Norr ID</title><h1>Region Norr ID</h1>"
        f'<form method="post" action="{action}">{options}<button type="submit">Continue</button></form>'
    )


@contextmanager
def running_provider(users: list[ProviderUser]) -> Iterator[OIDCTestProvider]:
    """Serve a provider with *users* on 127.0.0.1 on a free port for the duration of the block."""
    provider = OIDCTestProvider(users)
    server = make_server("127.0.0.1", 0, _create_app(provider), threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
