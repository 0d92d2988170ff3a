"""Fixtures for the Python SDK compatibility suite.

Environment (set by scripts/sdk-tests.sh):
  REFUNDS_BASE_URL     the running refunds-server, e.g. http://127.0.0.1:43210
  REFUNDS_ADMIN_TOKEN  its admin token (the admin API seeds organizations, tokens, orders)
  POLAR_SDK_BUILD      1 (polar-sdk 1.x) or 0 (polar-sdk 0.x); must match the virtualenv
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

import sdk_builds
from admin import AdminApi, Merchant

BASE_URL = os.environ.get("REFUNDS_BASE_URL", "")
ADMIN_TOKEN = os.environ.get("REFUNDS_ADMIN_TOKEN", "")


def pytest_configure(config):
    if not BASE_URL or not ADMIN_TOKEN:
        raise pytest.UsageError(
            "set REFUNDS_BASE_URL and REFUNDS_ADMIN_TOKEN (scripts/sdk-tests.sh does it for you)"
        )


def pytest_report_header(config):
    sdk = sdk_builds.load(BASE_URL)
    return [f"SDK build: {sdk.label}", f"server: {BASE_URL}"]


@pytest.fixture(scope="session")
def sdk():
    build = sdk_builds.load(BASE_URL)
    yield build
    build.close()


@pytest.fixture(scope="session")
def admin():
    api = AdminApi(BASE_URL, ADMIN_TOKEN)
    yield api
    api.close()


@pytest.fixture
def merchant(admin) -> Merchant:
    """A fresh organization per test, so tests never see each other's refunds."""
    return Merchant.create(admin)


@dataclass
class World:
    """A fixed set of refunds to list, in one organization of its own.

    customer A (external id ext-a): order o1 one-time 1000/250 -> refunds r0=100, r1=300
                                    order o2 subscription s1 2000/0 -> refund r2=500
    customer B (external id ext-b): order o3 subscription s2 3000/300 -> refunds r3=700, r4=50
    Refunds are created in the order r0..r4, so created_at ascends with the index.
    """

    merchant: Merchant
    customer_a: str
    customer_b: str
    ext_a: str
    ext_b: str
    orders: list[str]
    subscriptions: list[str]
    refunds: list  # the SDK's Refund objects, creation order
    amounts = (100, 300, 500, 700, 50)


@pytest.fixture(scope="module")
def world(admin, sdk) -> World:
    merchant = Merchant.create(admin)
    org = merchant.organization_id
    ext_a, ext_b = f"ext-a-{uuid.uuid4().hex[:8]}", f"ext-b-{uuid.uuid4().hex[:8]}"
    customer_a = admin.customer(org, ext_a)
    customer_b = admin.customer(org, ext_b)
    s1, s2 = str(uuid.uuid4()), str(uuid.uuid4())
    o1 = admin.order(org, customer_a, 1000, 250)
    o2 = admin.order(org, customer_a, 2000, 0, subscription_id=s1)
    o3 = admin.order(org, customer_b, 3000, 300, subscription_id=s2)
    refunds = []
    for order, amount in [(o1, 100), (o1, 300), (o2, 500), (o3, 700), (o3, 50)]:
        refunds.append(
            sdk.create(merchant.token, order_id=order, reason="customer_request", amount=amount)
        )
    return World(
        merchant=merchant,
        customer_a=customer_a,
        customer_b=customer_b,
        ext_a=ext_a,
        ext_b=ext_b,
        orders=[o1, o2, o3],
        subscriptions=[s1, s2],
        refunds=refunds,
    )
