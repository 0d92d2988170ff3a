"""`orders.get`, `orders.list` (and its pager), `payments.get` and `payments.list` of the
official Python SDK (1.x or 0.x, by POLAR_SDK_BUILD) against a live refunds-server. Seeds go
through the admin API; every read goes through the SDK, which validates what it parses."""

from __future__ import annotations

import uuid

import pytest

from sdk_builds import BUILD, ids

ONLY_1X = pytest.mark.skipif(
    BUILD != "1", reason="polar-sdk 0.x has no status or created_* filter on orders.list"
)


def enum_value(value) -> str:
    """A status or reason as its wire name (1.x: a str; 0.x: a str Enum)."""
    return getattr(value, "value", value)


@pytest.fixture
def shop(admin, merchant):
    """Three orders of one organization, oldest first: a taxed one-time order with metadata,
    a subscription order of a named yearly product with two lines, and an untaxed order of a
    customer without an external id, paid by PayPal."""
    other_customer = admin.customer(merchant.organization_id, name="Bob")
    subscription_id = str(uuid.uuid4())
    product_id = str(uuid.uuid4())
    taxed = merchant.order(1000, 250, metadata={"plan": "basic", "seats": 2, "vip": True})
    subscription = merchant.order(
        3000,
        300,
        subscription_id=subscription_id,
        product_id=product_id,
        product_name="Gold",
        product_recurring_interval="year",
        items=[
            {"label": "Gold", "amount": 2500, "tax_amount": 250},
            {"label": "Seat", "amount": 500, "tax_amount": 50},
        ],
        billing_name="Acme Ltd",
        billing_address={"country": "DE", "city": "Berlin", "postal_code": "10115"},
    )
    untaxed = admin.order(
        merchant.organization_id, other_customer, 2000, 0, payment_method="paypal"
    )
    return {
        "merchant": merchant,
        "other_customer": other_customer,
        "taxed": taxed,
        "subscription": subscription,
        "untaxed": untaxed,
        "subscription_id": subscription_id,
        "product_id": product_id,
    }


def test_orders_get_parses_a_taxed_order_with_metadata(sdk, shop):
    m = shop["merchant"]
    order = sdk.get_order(m.token, shop["taxed"])
    assert type(order).__name__ == "Order"
    assert order.id == shop["taxed"]
    assert enum_value(order.status) == "paid" and order.paid is True
    assert (order.net_amount, order.tax_amount, order.total_amount) == (1000, 250, 1250)
    assert (order.subtotal_amount, order.discount_amount, order.due_amount) == (1000, 0, 1250)
    assert (order.refundable_amount, order.refundable_tax_amount) == (1000, 250)
    assert order.metadata == {"plan": "basic", "seats": 2, "vip": True}
    assert enum_value(order.billing_reason) == "purchase"
    assert order.product is None and order.subscription is None and order.discount is None
    assert order.customer.id == m.customer_id
    assert order.customer.external_id == m.external_id
    assert order.customer_id == m.customer_id
    assert len(order.items) == 1
    assert (order.items[0].amount, order.items[0].tax_amount) == (1000, 250)
    assert order.description == "Order"
    assert sdk.timestamp(order.created_at).utcoffset().total_seconds() == 0


def test_orders_get_parses_a_subscription_order_with_its_product_and_lines(sdk, shop):
    m = shop["merchant"]
    order = sdk.get_order(m.token, shop["subscription"])
    assert enum_value(order.billing_reason) == "subscription_create"
    assert order.subscription_id == shop["subscription_id"]
    assert order.subscription.id == shop["subscription_id"]
    assert enum_value(order.subscription.status) == "active"
    assert enum_value(order.subscription.recurring_interval) == "year"
    assert order.subscription.product_id == shop["product_id"]
    assert order.product.id == shop["product_id"]
    assert order.product.name == "Gold" and order.product.is_recurring is True
    assert [(item.label, item.amount, item.tax_amount) for item in order.items] == [
        ("Gold", 2500, 250),
        ("Seat", 500, 50),
    ]
    assert order.billing_name == "Acme Ltd"
    assert order.billing_address.country == "DE"
    assert order.billing_address.city == "Berlin"
    assert order.description == "Gold"


def test_orders_follow_refunds(sdk, shop):
    m = shop["merchant"]
    sdk.create(m.token, order_id=shop["taxed"], reason="customer_request", amount=400)
    order = sdk.get_order(m.token, shop["taxed"])
    assert enum_value(order.status) == "partially_refunded"
    assert (order.refunded_amount, order.refunded_tax_amount) == (400, 100)
    assert (order.refundable_amount, order.refundable_tax_amount) == (600, 150)
    sdk.create(m.token, order_id=shop["taxed"], reason="customer_request", amount=600)
    order = sdk.get_order(m.token, shop["taxed"])
    assert enum_value(order.status) == "refunded"
    assert (order.refundable_amount, order.refundable_tax_amount) == (0, 0)


def test_orders_list_filters_and_sorts(sdk, shop):
    m = shop["merchant"]
    newest_first = [shop["untaxed"], shop["subscription"], shop["taxed"]]
    items, pagination = sdk.list_orders(m.token)
    assert ids(items) == newest_first
    assert (pagination.total_count, pagination.max_page) == (3, 1)
    cases = [
        ({"customer_id": m.customer_id}, [shop["subscription"], shop["taxed"]]),
        ({"customer_id": [m.customer_id, shop["other_customer"]]}, newest_first),
        ({"external_customer_id": m.external_id}, [shop["subscription"], shop["taxed"]]),
        ({"subscription_id": shop["subscription_id"]}, [shop["subscription"]]),
        ({"product_id": shop["product_id"]}, [shop["subscription"]]),
        ({"product_billing_type": "recurring"}, [shop["subscription"]]),
        ({"organization_id": m.organization_id}, newest_first),
        ({"organization_id": str(uuid.uuid4())}, []),
        ({"discount_id": str(uuid.uuid4())}, []),
        ({"metadata": {"plan": "basic"}}, [shop["taxed"]]),
        ({"sorting": ["net_amount"]}, [shop["taxed"], shop["untaxed"], shop["subscription"]]),
        ({"sorting": ["-amount"]}, [shop["subscription"], shop["untaxed"], shop["taxed"]]),
        ({"sorting": ["created_at"]}, list(reversed(newest_first))),
    ]
    for query, expected in cases:
        items, pagination = sdk.list_orders(m.token, **query)
        assert ids(items) == expected, query
        assert pagination.total_count == len(expected), query


@ONLY_1X
def test_orders_list_filters_by_status_and_creation_time(sdk, shop):
    m = shop["merchant"]
    sdk.create(m.token, order_id=shop["untaxed"], reason="customer_request", amount=10)
    items, _ = sdk.list_orders(m.token, status="partially_refunded")
    assert ids(items) == [shop["untaxed"]]
    items, _ = sdk.list_orders(m.token, status=["paid", "refunded"])
    assert ids(items) == [shop["subscription"], shop["taxed"]]
    created = sdk.get_order(m.token, shop["taxed"]).created_at
    items, _ = sdk.list_orders(m.token, created_after=created)
    assert ids(items) == [shop["untaxed"], shop["subscription"]]
    items, _ = sdk.list_orders(m.token, created_before=created)
    assert ids(items) == []


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_orders_pager_walks_every_page(sdk, shop, limit):
    m = shop["merchant"]
    items, pages = sdk.iterate_orders(m.token, limit=limit)
    assert ids(items) == [shop["untaxed"], shop["subscription"], shop["taxed"]]
    if pages is not None:
        assert pages == -(-3 // limit)


def test_an_order_of_another_organization_is_not_found(sdk, shop, admin):
    from admin import Merchant

    stranger = Merchant.create(admin)
    for order_id in (shop["taxed"], str(uuid.uuid4())):
        with pytest.raises(sdk.ResourceNotFound) as raised:
            sdk.get_order(stranger.token, order_id)
        assert sdk.not_found(raised.value) == ("ResourceNotFound", "Not found")
    items, pagination = sdk.list_orders(stranger.token)
    assert (ids(items), pagination.total_count) == ([], 0)
    items, _ = sdk.list_payments(stranger.token, order_id=shop["taxed"])
    assert items == []


def test_a_malformed_order_id_is_a_typed_validation_error(sdk, shop):
    with pytest.raises(sdk.HTTPValidationError) as raised:
        sdk.get_order(shop["merchant"].token, "not-a-uuid")
    (detail,) = sdk.validation_errors(raised.value)
    assert list(detail.loc) == ["path", "id"]


def test_payments_get_and_list_parse_card_and_generic_payments(sdk, shop):
    m = shop["merchant"]
    items, pagination = sdk.list_payments(m.token)
    assert pagination.total_count == 3
    by_order = {payment.order_id: payment for payment in items}
    card = by_order[shop["taxed"]]
    assert type(card).__name__ == "CardPayment"
    assert sdk.payment_method(card) == "card"
    assert (card.method_metadata.brand, card.method_metadata.last4) == ("visa", "4242")
    assert card.amount == 1250  # net plus tax, what was charged
    assert enum_value(card.status) == "succeeded"
    assert enum_value(card.processor) == "stripe"
    assert card.organization_id == m.organization_id
    paypal = by_order[shop["untaxed"]]
    assert type(paypal).__name__ == "GenericPayment"
    assert sdk.payment_method(paypal) == "paypal"
    assert paypal.amount == 2000

    fetched = sdk.get_payment(m.token, card.id)
    assert (fetched.id, fetched.amount, fetched.order_id) == (card.id, 1250, shop["taxed"])

    cases = [
        ({"order_id": shop["subscription"]}, [shop["subscription"]]),
        ({"customer_id": shop["other_customer"]}, [shop["untaxed"]]),
        ({"method": "paypal"}, [shop["untaxed"]]),
        ({"status": "failed"}, []),
        ({"sorting": ["amount"]}, [shop["taxed"], shop["untaxed"], shop["subscription"]]),
    ]
    for query, expected in cases:
        items, _ = sdk.list_payments(m.token, **query)
        assert [payment.order_id for payment in items] == expected, query


def test_a_payment_of_another_organization_is_not_found(sdk, shop, admin):
    from admin import Merchant

    items, _ = sdk.list_payments(shop["merchant"].token)
    stranger = Merchant.create(admin)
    with pytest.raises(sdk.ResourceNotFound):
        sdk.get_payment(stranger.token, items[0].id)
