"""Single sign-on with OpenID Connect: "Sign in with <provider>" beside the password form.

``GET /sso/<key>/login`` sends the browser to the provider's authorization
endpoint (authorization-code flow, PKCE with S256, a random ``state`` and
``nonce`` kept in the signed session cookie by Authlib's Flask client).
``GET /sso/<key>/callback`` takes the code back: it checks the state, redeems
the code with the verifier and the client secret, validates the ID token
(signature against the provider's JWKS, issuer, audience, expiry, nonce,
``at_hash``), then finds or creates the user by (issuer, subject) and brings
their organisation, roles and groups in step with the claims
(:func:`engine.sign_in_external_identity`).

The providers come from ``PROCFLOW_OIDC_PROVIDERS`` (:mod:`web.sso_config`).
Whatever goes wrong ends on a page that says what happened in words, with
the technical reason below it, and nobody signed in.
"""

from __future__ import annotations

from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from joserfc.errors import JoseError
from werkzeug.wrappers import Response

import engine

from .auth import safe_next, sign_out_session
from .db import db_session
from .i18n import current_language
from .sso_config import OIDCProvider

bp = Blueprint("sso", __name__, url_prefix="/sso")

_EXTENSION = "procflow.sso"
# Seconds to wait for the provider (discovery, JWKS, token endpoint) before giving up.
_PROVIDER_TIMEOUT = 10


class _ProviderUnusable(Exception):
    """The provider's discovery document is missing or does not describe the configured issuer."""


@bp.record_once
def _register_providers(state: BlueprintSetupState) -> None:
    app = state.app
    oauth = OAuth(app)
    providers: dict[str, OIDCProvider] = {}
    for provider in app.config.get("OIDC_PROVIDERS", ()):
        oauth.register(
            name=provider.key,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.discovery_url,
            client_kwargs={
                "scope": " ".join(provider.scopes),
                "code_challenge_method": "S256",
                "default_timeout": _PROVIDER_TIMEOUT,
            },
        )
        providers[provider.key] = provider
    app.extensions[_EXTENSION] = (oauth, providers)


@bp.app_context_processor
def _sign_in_buttons() -> dict[str, Any]:
    """Give every template ``sso_providers``: (key, name in the user's language) of each provider."""
    _oauth, providers = current_app.extensions[_EXTENSION]
    if not providers:
        return {"sso_providers": []}
    language = current_language()
    return {"sso_providers": [(p.key, p.name(language)) for p in providers.values()]}


def _provider(key: str) -> tuple[OIDCProvider, FlaskOAuth2App]:
    oauth, providers = current_app.extensions[_EXTENSION]
    provider = providers.get(key)
    if provider is None:
        abort(404)
    client: FlaskOAuth2App = oauth.create_client(key)
    return provider, client


def _load_metadata(provider: OIDCProvider, client: FlaskOAuth2App) -> None:
    """Fetch the discovery document once, and check that it is this issuer's (Discovery 1.0, section 4.3)."""
    metadata = client.load_server_metadata()
    problem = None
    if metadata.get("issuer") != provider.issuer:
        problem = f"its discovery document names issuer {metadata.get('issuer')!r}, not {provider.issuer!r}"
    else:
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not metadata.get(k)]
        if missing:
            problem = f"its discovery document has no {', '.join(missing)}"
    if problem is not None:
        client.server_metadata.clear()  # fetched again next time, once the provider is fixed
        raise _ProviderUnusable(problem)


@bp.route("/<key>/login")
def login(key: str) -> Response | tuple[str, int]:
    """Send the browser to provider *key* to sign in; it comes back to :func:`callback`.

    :raises NotFound: (404) no provider *key* is configured.
    """
    provider, client = _provider(key)
    next_url = safe_next(request.args.get("next"), url_for("tasks.inbox"))
    redirect_uri = url_for("sso.callback", key=key, _external=True)
    try:
        _load_metadata(provider, client)
        authorization = client.create_authorization_url(redirect_uri)
    except (requests.RequestException, ValueError, _ProviderUnusable) as exc:
        return _failure(provider, "unreachable", exc)
    # Kept under the state in the session: the verifier and nonce Authlib made, and where to go after.
    client.save_authorize_data(redirect_uri=redirect_uri, next=next_url, **authorization)
    return redirect(authorization["url"])


@bp.route("/<key>/callback")
def callback(key: str) -> Response | tuple[str, int]:
    """Finish signing in with provider *key*: check the answer, redeem the code, sign the user in.

    Answers 303 to where the sign-in started; on any failure a page saying why
    (400 the answer is wrong or refused, 403 the account may not sign in here,
    502 the provider cannot be used), and nobody is signed in.

    :raises NotFound: (404) no provider *key* is configured.
    """
    provider, client = _provider(key)
    state = request.args.get("state", "")
    state_data = client.framework.get_state_data(session, state) if state else None
    try:
        if request.args.get("error"):
            if state_data is not None:
                client.framework.clear_state_data(session, state)
            raise OAuthError(error=request.args["error"], description=request.args.get("error_description"))
        if state_data is None:
            raise MismatchingStateError()
        _load_metadata(provider, client)
        token = client.authorize_access_token()
        claims = token.get("userinfo")
        if not claims:
            raise _ProviderUnusable("its token response has no ID token")
        signed_in = engine.sign_in_external_identity(db_session(), provider.mapping, dict(claims))
    except MismatchingStateError as exc:
        return _failure(provider, "state", exc)
    except OAuthError as exc:
        reason = "refused" if request.args.get("error") else "token"
        return _failure(provider, reason, exc)
    except (AuthlibBaseError, JoseError, ValueError) as exc:
        return _failure(provider, "token", exc)
    except (requests.RequestException, _ProviderUnusable) as exc:
        return _failure(provider, "unreachable", exc)
    except engine.ExternalIdentityError as exc:
        return _failure(provider, exc.reason, exc)
    sign_out_session()
    session.permanent = True
    session["username"] = signed_in.user.username
    session["organisation"] = signed_in.membership.organisation.key
    current_app.logger.info("user %s signed in through %s", signed_in.user.username, provider.key)
    return redirect(safe_next(state_data.get("next"), url_for("tasks.inbox")), code=303)


def _failure(provider: OIDCProvider, reason: str, exc: Exception) -> tuple[str, int]:
    current_app.logger.warning("sign-in through %s failed (%s): %s", provider.key, reason, exc)
    name = provider.name(current_language())
    status = {"state": 400, "refused": 400, "token": 400, "unreachable": 502}.get(reason, 403)
    messages = {
        "state": _(
            "This sign-in was not started here, or it took too long. Start again from the sign-in page."
        ),
        "refused": _("%(provider)s did not sign you in.", provider=name),
        "token": _(
            "The answer from %(provider)s could not be verified, so you were not signed in.", provider=name
        ),
        "unreachable": _(
            "%(provider)s cannot be used right now. Try again later, or sign in with your password.",
            provider=name,
        ),
        "no_organisation": _(
            "Your account at %(provider)s does not belong to an organisation that uses Procflow. "
            "Ask your administrator.",
            provider=name,
        ),
        "no_role": _(
            "Your account at %(provider)s gives you no role in Procflow. Ask your administrator.",
            provider=name,
        ),
        "unknown_group": _(
            "Procflow's settings for %(provider)s name a group that does not exist. Ask your administrator.",
            provider=name,
        ),
        "username_taken": _(
            "A Procflow account with your username exists but is not linked to %(provider)s. "
            "Ask your administrator.",
            provider=name,
        ),
        "deactivated": _("Your Procflow account is deactivated. Ask your administrator."),
        "missing_claim": _(
            "%(provider)s did not send what Procflow needs to know about you. Ask your administrator.",
            provider=name,
        ),
    }
    messages["several_organisations"] = messages["unknown_organisation"] = messages["no_organisation"]
    page = render_template(
        "sso/error.html",
        title=_("Single sign-on did not work"),
        message=messages.get(reason, messages["token"]),
        detail=str(exc) or type(exc).__name__,
        provider_key=provider.key,
    )
    return page, status
