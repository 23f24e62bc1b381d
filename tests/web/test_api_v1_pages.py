"""The token pages: a user's own tokens (/settings/tokens), the admin's (/admin/tokens, service accounts)."""

from __future__ import annotations

import re

import sqlalchemy as sa
import sqlalchemy.orm as so

from engine.models import ApiToken, ServiceAccount
from tests.web.conftest import LoginAs

_TOKEN = re.compile(r'id="new-token" type="text" readonly value="(pf_[^"]+)"')


def _api_status(client: object, token: str) -> int:
    return client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}).status_code  # type: ignore[attr-defined]


def test_a_user_makes_sees_and_revokes_a_token(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session]
) -> None:
    client = login_as("requester")
    refused = client.post("/settings/tokens", data={"name": "", "scope": "write", "valid_days": "0"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'id="token-name-error"' in page and 'id="token-days-error"' in page
    made = client.post("/settings/tokens", data={"name": "CRM", "scope": "write", "valid_days": "30"})
    assert made.status_code == 201
    token = _TOKEN.search(made.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert _api_status(client, token) == 200
    listing = client.get("/settings/tokens").get_data(as_text=True)
    assert token not in listing and token[:9] in listing and "CRM" in listing  # shown once; its hint stays
    with session_factory() as s:
        (record,) = s.scalars(sa.select(ApiToken))
        assert record.scopes == ["read", "write"] and record.created_by == "north-req"
    assert client.post(f"/settings/tokens/{record.id}/revoke").status_code == 303
    assert _api_status(client, token) == 401


def test_a_user_cannot_revoke_someone_elses_token(login_as: LoginAs) -> None:
    client = login_as("approver")
    client.post("/settings/tokens", data={"name": "Mine", "scope": "read", "valid_days": "5"})
    other = login_as("requester")
    assert other.post("/settings/tokens/1/revoke").status_code == 404
    assert "Mine" not in other.get("/settings/tokens").get_data(as_text=True)


def test_the_admin_page_service_accounts_and_revoking(
    login_as: LoginAs, session_factory: so.sessionmaker[so.Session]
) -> None:
    assert login_as("requester").get("/admin/tokens").status_code == 404
    user = login_as("requester")
    made = user.post("/settings/tokens", data={"name": "Laptop", "scope": "read", "valid_days": "5"})
    user_token = _TOKEN.search(made.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    admin = login_as("admin")
    assert "Laptop" in admin.get("/admin/tokens").get_data(as_text=True)
    assert admin.post("/admin/tokens/service-accounts", data={"name": ""}).status_code == 422
    added = admin.post("/admin/tokens/service-accounts", data={"name": "Web form", "roles": ["requester"]})
    assert added.status_code == 303
    with session_factory() as s:
        account = s.scalars(sa.select(ServiceAccount)).one()
        user_record = s.scalars(sa.select(ApiToken).where(ApiToken.name == "Laptop")).one()
    made = admin.post(
        f"/admin/tokens/service-accounts/{account.id}/tokens",
        data={"name": "form", "scope": "write", "valid_days": "90"},
    )
    assert made.status_code == 201
    service_token = _TOKEN.search(made.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    assert _api_status(admin, service_token) == 200
    assert admin.post(f"/admin/tokens/{user_record.id}/revoke").status_code == 303
    assert _api_status(admin, user_token) == 401
    assert admin.post(f"/admin/tokens/service-accounts/{account.id}/remove").status_code == 303
    assert _api_status(admin, service_token) == 401
    south = login_as("admin", "south")
    assert south.post(f"/admin/tokens/{user_record.id}/revoke").status_code == 404
    assert south.post(f"/admin/tokens/service-accounts/{account.id}/remove").status_code == 404
