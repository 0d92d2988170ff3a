"""Seeding through the server's admin API (`/admin/...`), with plain HTTP (httpx, which both
SDK builds already depend on). Never through an SDK: the SDKs know nothing of these routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx


class AdminApi:
    def __init__(self, base_url: str, admin_token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10.0,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: dict | None = None, expect: int = 201) -> dict:
        response = self.http.request(method, path, json=body)
        assert response.status_code == expect, (
            f"admin {method} {path} {body!r}: {response.status_code} {response.text}"
        )
        return response.json()

    def organization(self, name: str | None = None) -> str:
        name = name or f"SDK test org {uuid.uuid4().hex[:10]}"
        return self._call("POST", "/admin/organizations", {"name": name})["id"]

    def token(self, organization_id: str, scopes: list[str]) -> str:
        return self._call(
            "POST", f"/admin/organizations/{organization_id}/access-tokens", {"scopes": scopes}
        )["token"]

    def customer(
        self, organization_id: str, external_id: str | None = None, name: str | None = None
    ) -> str:
        body: dict = {
            "organization_id": organization_id,
            "email": f"{uuid.uuid4().hex[:12]}@example.com",
        }
        if name is not None:
            body["name"] = name
        if external_id is not None:
            body["external_id"] = external_id
        return self._call("POST", "/admin/customers", body)["id"]

    def order(
        self,
        organization_id: str,
        customer_id: str,
        net_amount: int,
        tax_amount: int,
        *,
        currency: str = "usd",
        subscription_id: str | None = None,
        **details,
    ) -> str:
        """`details`: any other field of the admin order body (product, items, metadata…)."""
        body: dict = {
            "organization_id": organization_id,
            "customer_id": customer_id,
            "net_amount": net_amount,
            "tax_amount": tax_amount,
            "currency": currency,
            **details,
        }
        if subscription_id is not None:
            body["subscription_id"] = subscription_id
        return self._call("POST", "/admin/orders", body)["id"]

    def get_order(self, order_id: str) -> dict:
        return self._call("GET", f"/admin/orders/{order_id}", expect=200)

    def block_order(self, order_id: str, blocked: bool) -> dict:
        return self._call(
            "PATCH", f"/admin/orders/{order_id}", {"refunds_blocked": blocked}, expect=200
        )

    def dispute(self, order_id: str, status: str, **amounts: int) -> dict:
        return self._call("POST", f"/admin/orders/{order_id}/disputes", {"status": status, **amounts})

    def set_dispute_status(self, dispute_id: str, status: str) -> dict:
        return self._call("PATCH", f"/admin/disputes/{dispute_id}", {"status": status}, expect=200)


@dataclass
class Merchant:
    """One organization with a read-write token, a read-only token and one customer."""

    admin: AdminApi
    organization_id: str
    token: str
    read_token: str
    customer_id: str
    external_id: str = field(default_factory=lambda: f"ext_{uuid.uuid4().hex[:10]}")

    @classmethod
    def create(cls, admin: AdminApi) -> "Merchant":
        org = admin.organization()
        external_id = f"ext_{uuid.uuid4().hex[:10]}"
        return cls(
            admin=admin,
            organization_id=org,
            token=admin.token(
                org, ["refunds:read", "refunds:write", "orders:read", "payments:read"]
            ),
            read_token=admin.token(org, ["refunds:read"]),
            customer_id=admin.customer(org, external_id),
            external_id=external_id,
        )

    def order(self, net_amount: int, tax_amount: int, **kwargs) -> str:
        return self.admin.order(self.organization_id, self.customer_id, net_amount, tax_amount, **kwargs)
