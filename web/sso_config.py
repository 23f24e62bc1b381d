"""The ``PROCFLOW_OIDC_PROVIDERS`` setting: the OpenID Connect providers users may sign in with.

The value is a JSON list, or ``@/path/to/file.json`` naming a file that holds
it (keep the client secrets out of the environment that way). Each entry::

    {"key": "norr", "name": "Region Norr", "issuer": "https://id.norr.example",
     "client_id": "procflow", "client_secret": "...",
     "scopes": ["openid", "profile", "email"],
     "username_claim": "preferred_username",
     "organisation": "north"  |  {"claim": "org", "map": {"Region Norr": "north"}},
     "roles": {"claim": "roles", "map": {"buyers": "case_handler", "it": ["admin"]},
               "default": ["requester"]},
     "groups": {"claim": "groups", "map": {"buyers": "handlers"}}}

``name`` may also be a mapping by language (``{"sv": "Region Norr", "fi": ...}``).
Everything is checked when the app starts; a mistake stops it with a message
naming the provider and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import engine

SETTING = "PROCFLOW_OIDC_PROVIDERS"
DEFAULT_SCOPES = ("openid", "profile", "email")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_FIELDS = {
    "key",
    "name",
    "issuer",
    "client_id",
    "client_secret",
    "scopes",
    "username_claim",
    "organisation",
    "roles",
    "groups",
}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class OIDCConfigurationError(ValueError):
    """The providers setting is malformed; the message names the provider and the field."""


@dataclass(frozen=True)
class OIDCProvider:
    """One configured OpenID Connect provider."""

    key: str
    names: Mapping[str, str]
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    mapping: engine.IdentityMapping

    @property
    def discovery_url(self) -> str:
        """Return where the provider's discovery document is (OpenID Connect Discovery 1.0, section 4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def name(self, language: str) -> str:
        """Return the provider's display name in *language* (English, then any, where it has none)."""
        return self.names.get(language) or self.names.get("en") or next(iter(self.names.values()))


def parse_oidc_providers(value: Any) -> tuple[OIDCProvider, ...]:
    """Return the providers of the setting's *value*: JSON text, ``@file``, a list of mappings, or empty.

    :raises OIDCConfigurationError: the value cannot be read or a provider is malformed.
    """
    if value is None or value == "" or value == () or value == []:
        return ()
    if isinstance(value, tuple) and all(isinstance(p, OIDCProvider) for p in value):
        return value
    if isinstance(value, str):
        value = _load_json(value)
    if not isinstance(value, list):
        raise OIDCConfigurationError(
            f"{SETTING} must be a JSON list of providers, not {type(value).__name__}"
        )
    providers = tuple(_provider(entry, number) for number, entry in enumerate(value, start=1))
    seen: set[str] = set()
    for provider in providers:
        if provider.key in seen:
            raise OIDCConfigurationError(f"{SETTING}: provider {provider.key!r}, field 'key': used twice")
        seen.add(provider.key)
    return providers


def _load_json(text: str) -> Any:
    source = SETTING
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise OIDCConfigurationError(f"{SETTING}: cannot read {path}: {exc.strerror or exc}") from exc
        source = f"{SETTING} ({path})"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OIDCConfigurationError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc


class _Entry:
    """One provider's mapping, with errors that name the provider and the field."""

    def __init__(self, data: Mapping[str, Any], number: int) -> None:
        self.data = data
        key = data.get("key")
        self.label = f"provider {key!r}" if isinstance(key, str) and key else f"provider #{number}"

    def error(self, field_name: str, problem: str) -> OIDCConfigurationError:
        return OIDCConfigurationError(f"{SETTING}: {self.label}, field {field_name!r}: {problem}")

    def text(self, name: str, default: str | None = None, value: Any = None) -> str:
        value = self.data.get(name, default) if value is None else value
        if value is None:
            raise self.error(name, "missing")
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, "must be a non-empty string")
        return value.strip()

    def texts(self, name: str, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, str) and i.strip() for i in items)
        ):
            raise self.error(name, "must be a string or a non-empty list of strings")
        return tuple(i.strip() for i in items)

    def claim_map(self, name: str, value: Any, *, single: bool = False) -> engine.ClaimMap:
        if not isinstance(value, Mapping):
            raise self.error(name, 'must be an object {"claim": ..., "map": {...}}')
        claim = self.text(f"{name}.claim", value=value.get("claim", ""))
        values = value.get("map")
        if not isinstance(values, Mapping) or not values:
            raise self.error(f"{name}.map", "must be a non-empty object of claim value → target")
        targets: dict[str, tuple[str, ...]] = {}
        for claim_value, target in values.items():
            where = f"{name}.map.{claim_value}"
            if single:
                targets[str(claim_value)] = (self.text(where, value=target),)
            else:
                targets[str(claim_value)] = self.texts(where, target)
        return engine.ClaimMap(claim=claim, values=targets)


def _provider(data: Any, number: int) -> OIDCProvider:
    if not isinstance(data, Mapping):
        raise OIDCConfigurationError(f"{SETTING}: provider #{number} must be an object")
    entry = _Entry(data, number)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise entry.error(unknown[0], f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    key = entry.text("key")
    if not _KEY.match(key):
        raise entry.error("key", "use 1 to 40 lower-case letters, digits, '-' and '_' (it is part of URLs)")
    names = _names(entry)
    issuer = entry.text("issuer")
    parts = urlsplit(issuer)
    local = parts.hostname in _LOCAL_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise entry.error("issuer", "must be an https URL (http only for 127.0.0.1 or localhost)")
    if not parts.hostname or parts.query or parts.fragment:
        raise entry.error("issuer", "must be a URL with a host and no query or fragment")
    scopes = entry.texts("scopes", data.get("scopes", list(DEFAULT_SCOPES)))
    if "openid" not in scopes:
        raise entry.error("scopes", "must include 'openid'")
    if any(" " in scope for scope in scopes):
        raise entry.error("scopes", "one scope per list item, without spaces")
    mapping = _mapping(entry, key, issuer)
    return OIDCProvider(
        key=key,
        names=names,
        issuer=issuer,
        client_id=entry.text("client_id"),
        client_secret=entry.text("client_secret"),
        scopes=scopes,
        mapping=mapping,
    )


def _names(entry: _Entry) -> dict[str, str]:
    name = entry.data.get("name")
    if isinstance(name, Mapping):
        if not name:
            raise entry.error("name", "must not be empty")
        return {str(lang): entry.text(f"name.{lang}", value=text) for lang, text in name.items()}
    return {"en": entry.text("name")}


def _mapping(entry: _Entry, key: str, issuer: str) -> engine.IdentityMapping:
    organisation = entry.data.get("organisation")
    if organisation is None:
        raise entry.error("organisation", 'missing: an organisation key, or {"claim": ..., "map": {...}}')
    organisation_key = None
    organisation_map = None
    if isinstance(organisation, str):
        organisation_key = entry.text("organisation", value=organisation)
    else:
        organisation_map = entry.claim_map("organisation", organisation, single=True)
    roles = None
    default_roles: tuple[str, ...] = ()
    if "roles" in entry.data:
        value = entry.data["roles"]
        if not isinstance(value, Mapping):
            raise entry.error("roles", 'must be an object {"claim": ..., "map": {...}, "default": [...]}')
        extra = sorted(set(value) - {"claim", "map", "default"})
        if extra:
            raise entry.error(f"roles.{extra[0]}", "unknown field (known: claim, map, default)")
        if "default" in value:
            default_roles = entry.texts("roles.default", value["default"])
        if "claim" in value or "map" in value or not default_roles:
            roles = entry.claim_map("roles", value)
        given = [(f"roles.map.{v}", t) for v, t in (roles.values.items() if roles else ())]
        for where, targets in [*given, ("roles.default", default_roles)]:
            unknown = sorted(set(targets) - set(engine.ROLES))
            if unknown:
                raise entry.error(
                    where, f"unknown role {unknown[0]!r} (known roles: {', '.join(engine.ROLES)})"
                )
    groups = entry.claim_map("groups", entry.data["groups"]) if "groups" in entry.data else None
    return engine.IdentityMapping(
        provider=key,
        issuer=issuer,
        username_claim=entry.text("username_claim", default="preferred_username"),
        organisation_key=organisation_key,
        organisation=organisation_map,
        roles=roles,
        default_roles=default_roles,
        groups=groups,
    )
