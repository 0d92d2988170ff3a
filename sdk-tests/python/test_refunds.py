"""The official Python SDK (polar-sdk 1.x or 0.x, chosen by POLAR_SDK_BUILD) against a live
refunds-server: every call below goes through the SDK, every seed through the admin API."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sdk_builds import BUILD, ids, pages_expected

ONLY_1X = pytest.mark.skipif(
    BUILD != "1", reason="polar-sdk 1.x only (0.x has one API version and no organization_id option)"
)


def is_uuid4(value) -> bool:
    parsed = uuid.UUID(value)
    return parsed.version == 4 and str(parsed) == value


def the_error(sdk, exc, loc: list) -> object:
    """The one entry of a typed HTTPValidationError at `loc`."""
    details = sdk.validation_errors(exc)
    matching = [d for d in details if list(d.loc) == loc]
    assert len(matching) == 1, f"no single error at {loc}: {details!r}"
    return matching[0]


# --- create ----------------------------------------------------------------------------------


def test_a_retried_create_with_an_idempotency_key_refunds_once(sdk, merchant, admin):
    order = merchant.order(1000, 250)
    key = f"sdk-retry-{uuid.uuid4()}"
    first = sdk.create_with_key(merchant.token, key, order_id=order, reason="other", amount=400)
    retried = sdk.create_with_key(merchant.token, key, order_id=order, reason="other", amount=400)

    assert type(retried).__name__ == "Refund"
    assert retried == first
    assert (retried.amount, retried.tax_amount) == (400, 100)
    items, pagination = sdk.list(merchant.token, order_id=order)
    assert [item.id for item in items] == [first.id]
    assert pagination.total_count == 1
    assert admin.get_order(order)["refunded_amount"] == 400

    # the same key for another body is a typed validation error naming the header
    with pytest.raises(sdk.HTTPValidationError) as caught:
        sdk.create_with_key(merchant.token, key, order_id=order, reason="other", amount=401)
    error = the_error(sdk, caught.value, ["header", "Idempotency-Key"])
    assert error.type == "idempotency_key_reused"


def test_full_refund_returns_every_field(sdk, merchant, admin):
    order = merchant.order(1000, 250)
    refund = sdk.create(merchant.token, order_id=order, reason="customer_request", amount=1000)

    assert type(refund).__name__ == "Refund"
    assert is_uuid4(refund.id)
    created = sdk.timestamp(refund.created_at)
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert refund.modified_at is None
    assert refund.metadata == {}
    assert refund.status == "succeeded"
    assert refund.reason == "customer_request"
    assert (refund.amount, refund.tax_amount) == (1000, 250)
    assert type(refund.amount) is int and type(refund.tax_amount) is int
    assert refund.currency == "usd"
    assert refund.organization_id == merchant.organization_id
    assert refund.order_id == order
    assert refund.subscription_id is None
    assert refund.customer_id == merchant.customer_id
    assert refund.revoke_benefits is False
    assert refund.dispute is None

    stored = admin.get_order(order)
    assert (stored["status"], stored["refunded_amount"], stored["refunded_tax_amount"]) == (
        "refunded",
        1000,
        250,
    )


def test_refund_of_a_subscription_order_in_another_currency(sdk, merchant):
    subscription = str(uuid.uuid4())
    order = merchant.order(1000, 0, currency="eur", subscription_id=subscription)
    refund = sdk.create(merchant.token, order_id=order, reason="duplicate", amount=400)
    assert (refund.amount, refund.tax_amount, refund.currency) == (400, 0, "eur")
    assert refund.subscription_id == subscription
    assert refund.reason == "duplicate"


def test_partial_refunds_up_to_full_then_refunded_already(sdk, merchant, admin):
    order = merchant.order(9990, 2498)
    for amount, tax in [(1110, 278), (993, 248), (5887, 1472)]:
        refund = sdk.create(merchant.token, order_id=order, reason="other", amount=amount)
        assert (refund.amount, refund.tax_amount, refund.status) == (amount, tax, "succeeded")
    assert admin.get_order(order)["status"] == "partially_refunded"

    with pytest.raises(sdk.HTTPValidationError) as over:
        sdk.create(merchant.token, order_id=order, reason="other", amount=2001)
    assert the_error(sdk, over.value, ["body", "amount"]).msg == "Refund amount exceeds refundable amount"

    last = sdk.create(merchant.token, order_id=order, reason="other", amount=2000)
    assert (last.amount, last.tax_amount) == (2000, 500)
    assert admin.get_order(order)["status"] == "refunded"

    for amount in (1, 2000, 10**9):
        with pytest.raises(sdk.RefundedAlready) as already:
            sdk.create(merchant.token, order_id=order, reason="other", amount=amount)
        assert sdk.status_of(already.value) == 403
        assert sdk.refunded_already(already.value) == (
            "RefundedAlready",
            f"Order is already fully refunded: {order}",
        )


def test_over_refund_is_a_typed_validation_error(sdk, merchant, admin):
    order = merchant.order(1000, 250)
    with pytest.raises(sdk.HTTPValidationError) as exc:
        sdk.create(merchant.token, order_id=order, reason="other", amount=1001)
    assert sdk.status_of(exc.value) == 422
    error = the_error(sdk, exc.value, ["body", "amount"])
    assert (error.type, error.msg, error.input) == (
        "value_error",
        "Refund amount exceeds refundable amount",
        1001,
    )
    assert len(sdk.validation_errors(exc.value)) == 1
    assert admin.get_order(order)["refunded_amount"] == 0


@pytest.mark.parametrize("amount", [0, -5])
def test_non_positive_amount_is_a_typed_validation_error(sdk, merchant, amount):
    order = merchant.order(1000, 0)
    with pytest.raises(sdk.HTTPValidationError) as exc:
        sdk.create(merchant.token, order_id=order, reason="other", amount=amount)
    error = the_error(sdk, exc.value, ["body", "amount"])
    assert (error.type, error.msg, error.input) == ("greater_than", "Input should be greater than 0", amount)


@pytest.mark.parametrize("reason", ["dispute_prevention", "because"])
def test_invalid_reason(sdk, merchant, admin, reason):
    order = merchant.order(1000, 0)
    if BUILD == "0":
        # polar-sdk 0.x validates the body with pydantic before sending anything
        with pytest.raises(sdk.InputError) as exc:
            sdk.create(merchant.token, order_id=order, reason=reason, amount=100)
        assert "reason" in str(exc.value)
    else:
        # polar-sdk 1.x sends whatever it is given; the server answers 422
        with pytest.raises(sdk.HTTPValidationError) as exc:
            sdk.create(merchant.token, order_id=order, reason=reason, amount=100)
        error = the_error(sdk, exc.value, ["body", "reason"])
        assert error.type == "literal_error"
        assert error.input == reason
        assert "'customer_request'" in error.msg
    assert admin.get_order(order)["refunded_amount"] == 0


def test_malformed_order_id_is_a_typed_validation_error(sdk, merchant):
    with pytest.raises(sdk.HTTPValidationError) as exc:
        sdk.create(merchant.token, order_id="abc", reason="other", amount=100)
    error = the_error(sdk, exc.value, ["body", "order_id"])
    assert error.type == "uuid_parsing"
    assert error.input == "abc"


def test_unknown_order_is_a_typed_validation_error(sdk, merchant):
    missing = str(uuid.uuid4())
    with pytest.raises(sdk.HTTPValidationError) as exc:
        sdk.create(merchant.token, order_id=missing, reason="other", amount=100)
    error = the_error(sdk, exc.value, ["body", "order_id"])
    assert (error.type, error.msg, error.input) == ("value_error", "Order not found", missing)


def test_comment_and_revoke_benefits_are_accepted(sdk, merchant):
    order = merchant.order(1000, 100)
    refund = sdk.create(
        merchant.token,
        order_id=order,
        reason="satisfaction_guarantee",
        amount=500,
        comment="goodwill, ticket #42",
        revoke_benefits=True,
    )
    assert (refund.amount, refund.tax_amount) == (500, 50)
    assert refund.revoke_benefits is True
    assert refund.reason == "satisfaction_guarantee"
    assert not hasattr(refund, "comment"), "comment is internal, never returned"

    # an explicit null comment, as the SDKs send it when told to
    again = sdk.create(merchant.token, order_id=order, reason="other", amount=100, comment=None)
    assert (again.amount, again.tax_amount, again.revoke_benefits) == (100, 10, False)


def test_revoke_benefits_on_a_subscription_order_is_a_plain_client_error(sdk, merchant):
    order = merchant.order(1000, 0, subscription_id=str(uuid.uuid4()))
    with pytest.raises(sdk.ClientError) as exc:
        sdk.create(merchant.token, order_id=order, reason="other", amount=100, revoke_benefits=True)
    assert not isinstance(exc.value, (sdk.RefundedAlready, sdk.HTTPValidationError))
    assert sdk.status_of(exc.value) == 400
    assert '"RevokeSubscriptionBenefitsProhibited"' in sdk.raw_body_of(exc.value)


def test_metadata_round_trips_with_its_types(sdk, merchant):
    order = merchant.order(1000, 0)
    metadata = {"note": "vip customer", "ticket": 42, "ratio": 0.25, "whole": 2.0, "manual": True, "no": False}
    refund = sdk.create(merchant.token, order_id=order, reason="other", amount=10, metadata=metadata)
    listed, _ = sdk.list(merchant.token, id=refund.id)
    for got in (refund.metadata, listed[0].metadata):
        assert got == metadata
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in metadata.items()}


# --- list ------------------------------------------------------------------------------------

FILTERS = {
    "id (one)": (lambda w: {"id": w.refunds[3].id}, [3]),
    "id (several)": (lambda w: {"id": [w.refunds[0].id, w.refunds[4].id]}, [0, 4]),
    "organization_id": (lambda w: {"organization_id": w.merchant.organization_id}, [0, 1, 2, 3, 4]),
    "organization_id (unknown)": (lambda w: {"organization_id": str(uuid.uuid4())}, []),
    "order_id": (lambda w: {"order_id": w.orders[0]}, [0, 1]),
    "order_id (several)": (lambda w: {"order_id": [w.orders[1], w.orders[2]]}, [2, 3, 4]),
    "subscription_id": (lambda w: {"subscription_id": w.subscriptions[1]}, [3, 4]),
    "customer_id": (lambda w: {"customer_id": w.customer_b}, [3, 4]),
    "external_customer_id": (lambda w: {"external_customer_id": w.ext_a}, [0, 1, 2]),
    "external_customer_id (several)": (
        lambda w: {"external_customer_id": [w.ext_a, w.ext_b]},
        [0, 1, 2, 3, 4],
    ),
    "succeeded=true": (lambda w: {"succeeded": True}, [0, 1, 2, 3, 4]),
    "succeeded=false": (lambda w: {"succeeded": False}, []),
    "customer_id and order_id": (lambda w: {"customer_id": w.customer_a, "order_id": w.orders[1]}, [2]),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_list_filters(sdk, world, name):
    make_query, expected = FILTERS[name]
    items, pagination = sdk.list(world.merchant.token, limit=100, **make_query(world))
    assert sorted(ids(items)) == sorted(world.refunds[i].id for i in expected)
    assert pagination.total_count == len(expected)
    assert pagination.max_page == (1 if expected else 0)


@pytest.mark.parametrize(
    "sorting, order",
    [
        ("created_at", [0, 1, 2, 3, 4]),
        ("-created_at", [4, 3, 2, 1, 0]),
        ("amount", [4, 0, 1, 2, 3]),
        ("-amount", [3, 2, 1, 0, 4]),
    ],
)
def test_list_sorting(sdk, world, sorting, order):
    items, _ = sdk.list(world.merchant.token, sorting=[sorting])
    assert ids(items) == [world.refunds[i].id for i in order]
    assert [r.amount for r in items] == [world.amounts[i] for i in order]


def test_list_default_order_is_newest_first(sdk, world):
    items, pagination = sdk.list(world.merchant.token)
    assert ids(items) == [r.id for r in reversed(world.refunds)]
    assert (pagination.total_count, pagination.max_page) == (5, 1)


def test_listed_refunds_equal_the_created_ones(sdk, world):
    items, _ = sdk.list(world.merchant.token, sorting=["created_at"])
    assert items == world.refunds


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7])
def test_the_sdk_pager_walks_every_page(sdk, world, limit):
    _, first = sdk.list(world.merchant.token, limit=limit)
    items, pages = sdk.iterate(world.merchant.token, limit=limit, sorting=["amount"])
    assert len(items) == first.total_count == 5
    assert ids(items) == [world.refunds[i].id for i in (4, 0, 1, 2, 3)]
    if pages is not None:
        assert pages == pages_expected(5, limit)


def test_the_sdk_pager_on_an_empty_result(sdk, world):
    items, pages = sdk.iterate(world.merchant.token, limit=2, succeeded=False)
    assert items == []
    if pages is not None:
        assert pages == 1


def test_a_page_past_the_end_is_empty(sdk, world):
    items, pagination = sdk.list(world.merchant.token, page=4, limit=2)
    assert items == []
    assert (pagination.total_count, pagination.max_page) == (5, 3)


def test_limit_over_100_is_clamped(sdk, world):
    items, pagination = sdk.list(world.merchant.token, limit=500)
    assert len(items) == 5
    assert pagination.max_page == 1


@pytest.mark.parametrize("param", ["page", "limit"])
def test_non_positive_paging_is_a_typed_validation_error(sdk, world, param):
    with pytest.raises(sdk.HTTPValidationError) as exc:
        sdk.list(world.merchant.token, **{param: 0})
    error = the_error(sdk, exc.value, ["query", param])
    assert error.type == "greater_than"


# --- auth and isolation ----------------------------------------------------------------------


def test_read_only_token_lists_but_cannot_create(sdk, merchant, admin):
    order = merchant.order(1000, 0)
    made = sdk.create(merchant.token, order_id=order, reason="other", amount=100)
    items, pagination = sdk.list(merchant.read_token)
    assert ids(items) == [made.id] and pagination.total_count == 1

    # The SDKs declare 403 on create as RefundedAlready only. Against Polar itself a scope
    # error is an OAuth2 body, which neither typed build can parse.
    with pytest.raises(Exception) as exc:
        sdk.create(merchant.read_token, order_id=order, reason="other", amount=100)
    error = exc.value
    # polar-sdk 1.x: 403 -> RefundedAlready's body model -> adaptix refuses the OAuth2 body ->
    #   PolarDeserializationError (no status code, no raw text; the LoadError holds the body).
    # polar-sdk 0.x: 403 -> RefundedAlreadyData -> pydantic refuses it -> ResponseValidationError
    #   (status code and raw body kept).
    assert isinstance(error, sdk.DeserializationError), repr(error)
    assert not isinstance(error, sdk.RefundedAlready)
    assert "insufficient_scope" in sdk.undecodable_body_of(error)
    assert admin.get_order(order)["refunded_amount"] == 100


def test_a_bad_token_is_the_sdks_401_error(sdk, merchant):
    order = merchant.order(1000, 0)
    for call in (
        lambda: sdk.list("polar_oat_not-a-real-token"),
        lambda: sdk.create("polar_oat_not-a-real-token", order_id=order, reason="other", amount=1),
        lambda: sdk.list("garbage"),
    ):
        with pytest.raises(sdk.ClientError) as exc:
            call()
        assert not isinstance(exc.value, (sdk.RefundedAlready, sdk.HTTPValidationError))
        assert sdk.status_of(exc.value) == 401
        assert '"invalid_token"' in sdk.raw_body_of(exc.value)


def test_another_organization_sees_nothing_and_cannot_refund(sdk, world, merchant):
    # `merchant` is another organization than the world's
    items, pagination = sdk.list(merchant.token)
    assert items == [] and (pagination.total_count, pagination.max_page) == (0, 0)
    items, pagination = sdk.list(merchant.token, organization_id=world.merchant.organization_id)
    assert items == [] and pagination.total_count == 0
    items, pagination = sdk.list(merchant.token, order_id=world.orders[0])
    assert items == [] and pagination.total_count == 0

    with pytest.raises(sdk.HTTPValidationError) as exc:
        sdk.create(merchant.token, order_id=world.orders[0], reason="other", amount=1)
    error = the_error(sdk, exc.value, ["body", "order_id"])
    assert (error.msg, error.input) == ("Order not found", world.orders[0])


def test_other_403s_on_create_are_mistyped_as_polar_does(sdk, merchant, admin):
    """RefundsBlocked and RefundDisputedPayment are 403 with Polar's own body; the SDKs only
    know RefundedAlready for 403, so they cannot type them (same against Polar)."""
    blocked = merchant.order(1000, 0)
    admin.block_order(blocked, True)
    disputed = merchant.order(1000, 0)
    admin.dispute(disputed, "needs_response")
    for order, name in [(blocked, "RefundsBlocked"), (disputed, "RefundDisputedPayment")]:
        with pytest.raises(sdk.DeserializationError) as exc:
            sdk.create(merchant.token, order_id=order, reason="other", amount=1)
        assert name in sdk.undecodable_body_of(exc.value)
        assert not isinstance(exc.value, sdk.RefundedAlready)


# --- disputes --------------------------------------------------------------------------------


def test_a_dispute_prevention_refund_embeds_its_dispute(sdk, merchant):
    order = merchant.order(1000, 250)
    other = sdk.create(merchant.token, order_id=order, reason="other", amount=200)
    dispute = merchant.admin.dispute(order, "early_warning")
    assert dispute["status"] == "prevented"

    items, pagination = sdk.list(merchant.token, order_id=order, sorting=["-amount"])
    assert pagination.total_count == 2
    prevention, manual = items
    assert manual.id == other.id and manual.dispute is None
    assert prevention.reason == "dispute_prevention"
    assert prevention.status == "succeeded"
    assert (prevention.amount, prevention.tax_amount) == (800, 200)
    assert prevention.revoke_benefits is True
    assert prevention.subscription_id is None

    embedded = prevention.dispute
    assert type(embedded).__name__ == "RefundDispute"
    assert embedded.id == dispute["id"]
    assert embedded.status == "prevented"
    assert (embedded.resolved, embedded.closed) == (False, True)
    assert (embedded.amount, embedded.tax_amount, embedded.currency) == (800, 200, "usd")
    assert embedded.order_id == order
    assert is_uuid4(embedded.payment_id)
    sdk.timestamp(embedded.created_at)
    assert embedded.reason is None
    assert embedded.evidence_due_by is None
    assert embedded.past_due is False


# --- client configurations -------------------------------------------------------------------


@ONLY_1X
@pytest.mark.parametrize("api_version", ["v2026_04", "v2026_10", "v2027_01"])
def test_every_api_version_client(sdk, merchant, api_version):
    client = sdk.client(merchant.token, api_version=api_version)
    order = merchant.order(1000, 250)
    refund = client.refunds.create(order_id=order, reason="other", amount=100)
    assert (refund.amount, refund.tax_amount) == (100, 25)
    listed = client.refunds.list(order_id=order)
    assert [r.id for r in listed.items] == [refund.id]


@ONLY_1X
def test_a_client_bound_to_an_organization(sdk, merchant):
    """`organization_id=` makes the 1.x client send `Polar-Organization`; the server tolerates it."""
    client = sdk.client(merchant.token, organization_id=merchant.organization_id)
    order = merchant.order(1000, 0)
    refund = client.refunds.create(order_id=order, reason="other", amount=100)
    assert [r.id for r in client.refunds.list().items] == [refund.id]


def test_the_async_client(sdk, merchant):
    order = merchant.order(1000, 250)

    async def scenario():
        if BUILD == "1":
            from polar.v2026_10 import PolarAsync

            async with PolarAsync(merchant.token, base_url=sdk.base_url) as client:
                refund = await client.refunds.create(order_id=order, reason="other", amount=400)
                listed = [r async for r in client.refunds.iter_list(order_id=order, limit=1)]
                with pytest.raises(sdk.HTTPValidationError):
                    await client.refunds.create(order_id=order, reason="other", amount=601)
        else:
            from polar_sdk import Polar

            async with Polar(access_token=merchant.token, server_url=sdk.base_url) as client:
                refund = await client.refunds.create_async(
                    request={"order_id": order, "reason": "other", "amount": 400}
                )
                page = await client.refunds.list_async(order_id=order, limit=1)
                listed = page.result.items
                with pytest.raises(sdk.HTTPValidationError):
                    await client.refunds.create_async(
                        request={"order_id": order, "reason": "other", "amount": 601}
                    )
        return refund, listed

    refund, listed = asyncio.run(scenario())
    assert (refund.amount, refund.tax_amount) == (400, 100)
    assert [r.id for r in listed] == [refund.id]


def test_a_base_url_with_a_trailing_slash(sdk, merchant):
    client = sdk.client(merchant.token, base_url=sdk.base_url + "/")
    order = merchant.order(1000, 0)
    if BUILD == "1":
        refund = client.refunds.create(order_id=order, reason="other", amount=100)
        assert [r.id for r in client.refunds.list().items] == [refund.id]
    else:
        refund = client.refunds.create(request={"order_id": order, "reason": "other", "amount": 100})
        assert [r.id for r in client.refunds.list().result.items] == [refund.id]
