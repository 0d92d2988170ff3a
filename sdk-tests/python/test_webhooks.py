"""`webhooks.*` of the official Python SDK (1.x or 0.x, by POLAR_SDK_BUILD) against a live
refunds-server, and real deliveries: a small receiver records what the server sends, and the
SDK's own `validate_event` verifies and parses every delivery with the endpoint's secret."""

from __future__ import annotations

import http.server
import threading
import time
import uuid

import pytest

from sdk_builds import ids

EVENTS = ["refund.created", "refund.updated", "order.updated", "order.refunded"]


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records each request's headers and raw body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} of {count} deliveries"
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def hooks(admin, merchant):
    """The merchant's token with the webhook scopes as well."""
    return admin.token(
        merchant.organization_id,
        ["refunds:read", "refunds:write", "orders:read", "webhooks:read", "webhooks:write"],
    )


def test_endpoints_are_created_listed_read_updated_reset_and_deleted(sdk, admin, merchant, hooks):
    read_token = admin.token(merchant.organization_id, ["webhooks:read"])
    first = sdk.create_endpoint(
        hooks, url="https://example.com/first", format="raw", events=["refund.created"]
    )
    second = sdk.create_endpoint(
        hooks,
        url="https://example.com/second",
        name="Orders",
        format="raw",
        events=["order.updated", "order.refunded"],
    )
    assert first.url == "https://example.com/first"
    assert first.organization_id == merchant.organization_id
    assert first.secret.startswith("whsec_")
    assert first.enabled is True
    assert second.name == "Orders"

    items, pagination = sdk.list_endpoints(read_token, organization_id=merchant.organization_id)
    assert ids(items) == [second.id, first.id]
    assert pagination.total_count == 2

    got = sdk.get_endpoint(read_token, first.id)
    assert got.id == first.id and got.secret == first.secret

    updated = sdk.update_endpoint(hooks, first.id, name="Refunds", events=["refund.created", "refund.updated"])
    assert updated.name == "Refunds"
    assert [getattr(event, "value", event) for event in updated.events] == [
        "refund.created",
        "refund.updated",
    ]

    reset = sdk.reset_endpoint_secret(hooks, first.id)
    assert reset.secret.startswith("whsec_") and reset.secret != first.secret

    sdk.delete_endpoint(hooks, second.id)
    with pytest.raises(sdk.ResourceNotFound) as missing:
        sdk.get_endpoint(hooks, second.id)
    assert sdk.not_found(missing.value) == ("ResourceNotFound", "Not found")
    items, _ = sdk.list_endpoints(hooks)
    assert ids(items) == [first.id]


def test_every_delivery_verifies_and_parses_with_the_sdk(sdk, admin, merchant, hooks, receiver):
    endpoint = sdk.create_endpoint(hooks, url=receiver.url, format="raw", events=EVENTS)
    order_id = merchant.order(1000, 250)
    refund = sdk.create(hooks, order_id=order_id, reason="customer_request", amount=400)
    # A dispute the merchant prevents refunds the rest, through the same events.
    admin.dispute(order_id, "prevented")

    deliveries = receiver.wait_for(6)
    parsed = [sdk.validate_event(body, headers, endpoint.secret) for headers, body in deliveries]
    types = [getattr(kind, "value", kind) for kind, _ in parsed]
    assert types == [
        "refund.created",
        "order.updated",
        "order.refunded",
        "refund.created",
        "order.updated",
        "order.refunded",
    ]
    assert parsed[0][1].id == refund.id
    assert parsed[1][1].id == order_id
    assert parsed[2][1].refunded_amount == 400
    assert parsed[5][1].refunded_amount == 1000
    for headers, _ in deliveries:
        assert headers["user-agent"] == "polar.sh webhooks"
        assert len(headers["webhook-signature"].split(" ")) == 2

    # A tampered body or another secret is refused by the SDK's verifier.
    headers, body = deliveries[0]
    with pytest.raises(Exception):
        sdk.validate_event(body.replace(b"customer_request", b"fraudulent"), headers, endpoint.secret)
    other = sdk.create_endpoint(hooks, url="https://example.com/x", format="raw", events=EVENTS)
    with pytest.raises(Exception):
        sdk.validate_event(body, headers, other.secret)

    # The deliveries are listed with their events, and one is sent again as it was.
    time.sleep(0.5)
    items, pagination = sdk.list_deliveries(hooks, endpoint_id=endpoint.id)
    assert pagination.total_count == 6
    assert all(item.succeeded and item.http_code == 202 for item in items)
    event_ids = {item.webhook_event.id for item in items}
    assert {headers["webhook-id"] for headers, _ in deliveries} == event_ids
    first_event = deliveries[0][0]["webhook-id"]
    assert sdk.redeliver(hooks, first_event) is None
    again = receiver.wait_for(7)
    assert again[6][0]["webhook-id"] == first_event
    assert again[6][1] == deliveries[0][1]
    kind, data = sdk.validate_event(again[6][1], again[6][0], endpoint.secret)
    assert data.id == refund.id
    with pytest.raises(sdk.ResourceNotFound):
        sdk.redeliver(hooks, str(uuid.uuid4()))
