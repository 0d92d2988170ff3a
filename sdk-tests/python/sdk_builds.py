"""The two official Python SDK builds behind one small interface.

`POLAR_SDK_BUILD=1` -> `polar-sdk` 1.x (`from polar.v2026_10 import Polar`, `base_url=`),
`POLAR_SDK_BUILD=0` -> `polar-sdk` 0.x (`from polar_sdk import Polar`, `server_url=`).
Both builds install the same distribution name, so each lives in its own virtualenv.

The adapter only papers over call shapes (how a client is made, how the body is passed, where
a typed error keeps its parsed body, how the SDK's own pager is driven). Every value the tests
look at is the SDK's own parsed object: the Refund, the typed errors, the pagination block.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from typing import Any, Iterator

BUILD = os.environ.get("POLAR_SDK_BUILD", "1")


class Build1:
    """polar-sdk 1.x: adaptix dataclasses, httpx, one sub-client per API version."""

    build = "1"
    default_api_version = "v2026_10"
    api_versions = ("v2026_04", "v2026_10", "v2027_01")

    def __init__(self, base_url: str) -> None:
        import polar
        from polar.v2026_10 import errors

        self.base_url = base_url
        self.version = polar.__version__
        self.label = f"polar-sdk {self.version} (from polar.v2026_10 import Polar)"
        self.RefundedAlready = errors.RefundedAlready
        self.HTTPValidationError = errors.HTTPValidationError
        self.ResourceNotFound = errors.ResourceNotFound
        # any other 4xx: the raw body text in `.error`
        self.ClientError = polar.PolarClientError
        # a 4xx body that does not fit the declared error model (e.g. a non-RefundedAlready 403)
        self.DeserializationError = polar.PolarDeserializationError
        # what the SDK raises when it refuses input before sending (it does not validate)
        self.InputError: type[BaseException] | None = None
        self._clients: dict[tuple, Any] = {}

    def client(
        self,
        token: str,
        *,
        api_version: str | None = None,
        base_url: str | None = None,
        organization_id: str | None = None,
    ):
        key = (token, api_version, base_url, organization_id)
        if key not in self._clients:
            module = importlib.import_module(f"polar.{api_version or self.default_api_version}")
            self._clients[key] = module.Polar(
                token,
                base_url=base_url or self.base_url,
                timeout=10.0,
                organization_id=organization_id,
            )
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client._client._client.close()

    def create(self, token: str, **body: Any):
        return self.client(token).refunds.create(**body)

    def create_with_key(self, token: str, idempotency_key: str, **body: Any):
        """A create that also sends `Idempotency-Key`. 1.x has no per-call headers; its
        services take any client base, so a base that adds the header to every request it
        builds is handed to the SDK's own refunds service."""
        from polar.base import SyncClientBase
        from polar.v2026_10 import Polar
        from polar.v2026_10.services.refunds import RefundsSync

        class KeyedClientBase(SyncClientBase):
            def build_request(self, *args: Any, **kwargs: Any):
                request = super().build_request(*args, **kwargs)
                request.headers["Idempotency-Key"] = idempotency_key
                return request

        with KeyedClientBase(self.base_url, Polar.version, token, 10.0) as base:
            return RefundsSync(base).create(**body)

    def list(self, token: str, **query: Any):
        """One page: (items, pagination), both as the SDK parsed them."""
        res = self.client(token).refunds.list(**query)
        return res.items, res.pagination

    def iterate(self, token: str, **query: Any) -> tuple[list, int | None]:
        """Every item through the SDK's own pager (`iter_list`, which stops at `max_page`).
        1.x yields items, not pages, so the page count is not observable (None)."""
        return list(self.client(token).refunds.iter_list(**query)), None

    # orders and payments
    def get_order(self, token: str, order_id: str):
        return self.client(token).orders.get(order_id)

    def list_orders(self, token: str, **query: Any):
        res = self.client(token).orders.list(**query)
        return res.items, res.pagination

    def iterate_orders(self, token: str, **query: Any) -> tuple[list, int | None]:
        return list(self.client(token).orders.iter_list(**query)), None

    def get_payment(self, token: str, payment_id: str):
        return self.client(token).payments.get(payment_id)

    def list_payments(self, token: str, **query: Any):
        res = self.client(token).payments.list(**query)
        return res.items, res.pagination

    @staticmethod
    def payment_method(payment) -> str:
        return payment.method

    # webhooks
    def create_endpoint(self, token: str, **body: Any):
        return self.client(token).webhooks.create_webhook_endpoint(**body)

    def list_endpoints(self, token: str, **query: Any):
        res = self.client(token).webhooks.list_webhook_endpoints(**query)
        return res.items, res.pagination

    def get_endpoint(self, token: str, endpoint_id: str):
        return self.client(token).webhooks.get_webhook_endpoint(endpoint_id)

    def update_endpoint(self, token: str, endpoint_id: str, **body: Any):
        return self.client(token).webhooks.update_webhook_endpoint(endpoint_id, **body)

    def reset_endpoint_secret(self, token: str, endpoint_id: str):
        return self.client(token).webhooks.reset_webhook_endpoint_secret(endpoint_id)

    def delete_endpoint(self, token: str, endpoint_id: str) -> None:
        self.client(token).webhooks.delete_webhook_endpoint(endpoint_id)

    def list_deliveries(self, token: str, **query: Any):
        res = self.client(token).webhooks.list_webhook_deliveries(**query)
        return res.items, res.pagination

    def redeliver(self, token: str, event_id: str):
        return self.client(token).webhooks.redeliver_webhook_event(event_id)

    @staticmethod
    def validate_event(body: bytes, headers: dict[str, str], secret: str):
        """The SDK's own verification and parsing of a delivery: (type, data)."""
        from polar.v2026_10.webhooks import validate_event

        payload = validate_event(body, headers, secret)
        return payload.type, payload.data

    def not_found(self, exc) -> tuple[str, str]:
        """(error, detail) of a typed ResourceNotFound."""
        return exc.error.error, exc.error.detail

    # typed error bodies
    def validation_errors(self, exc) -> list:
        return list(exc.error.detail)

    def refunded_already(self, exc) -> tuple[str, str]:
        """(error, detail) of a typed RefundedAlready."""
        return exc.error.error, exc.error.detail

    def status_of(self, exc) -> int:
        return exc.status_code

    def raw_body_of(self, exc) -> str:
        """The raw response text a generic client error carries."""
        return exc.error

    def undecodable_body_of(self, exc) -> str:
        """What a DeserializationError tells of the body it could not parse. 1.x keeps no
        status code and no raw text: only adaptix's LoadError, whose repr holds the input."""
        return repr(exc.error)

    @staticmethod
    def timestamp(value: Any) -> dt.datetime:
        assert isinstance(value, str), value
        assert value.endswith("Z") or value[-6] in "+-", value
        return dt.datetime.fromisoformat(value)


class Build0:
    """polar-sdk 0.x (Speakeasy): pydantic models, validates requests and responses."""

    build = "0"
    api_versions = ()

    def __init__(self, base_url: str) -> None:
        import pydantic
        import polar_sdk
        from polar_sdk import models

        self.base_url = base_url
        self.version = polar_sdk.VERSION
        self.label = f"polar-sdk {self.version} (from polar_sdk import Polar)"
        self.models = models
        self.RefundedAlready = models.RefundedAlready
        self.HTTPValidationError = models.HTTPValidationError
        self.ResourceNotFound = models.ResourceNotFound
        self.ClientError = models.SDKError
        self.DeserializationError = models.ResponseValidationError
        self.InputError = pydantic.ValidationError
        self._clients: dict[tuple, Any] = {}

    def client(self, token: str, *, api_version: str | None = None, base_url: str | None = None):
        assert api_version is None
        key = (token, base_url)
        if key not in self._clients:
            from polar_sdk import Polar

            self._clients[key] = Polar(
                access_token=token, server_url=base_url or self.base_url, timeout_ms=10_000
            )
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.__exit__(None, None, None)

    def create(self, token: str, **body: Any):
        return self.client(token).refunds.create(request=body)

    def create_with_key(self, token: str, idempotency_key: str, **body: Any):
        """A create that also sends `Idempotency-Key`, through the SDK's `http_headers`."""
        return self.client(token).refunds.create(
            request=body, http_headers={"Idempotency-Key": idempotency_key}
        )

    def list(self, token: str, **query: Any):
        res = self.client(token).refunds.list(**query)
        return res.result.items, res.result.pagination

    def iterate(self, token: str, **query: Any) -> tuple[list, int | None]:
        """Every item through the SDK's own pager: `res.next()` until it returns None."""
        items: list = []
        pages = 0
        res = self.client(token).refunds.list(**query)
        while res is not None:
            pages += 1
            assert pages < 1000, "the SDK pager does not stop"
            items.extend(res.result.items)
            res = res.next()
        return items, pages

    def get_order(self, token: str, order_id: str):
        return self.client(token).orders.get(id=order_id)

    def list_orders(self, token: str, **query: Any):
        res = self.client(token).orders.list(**query)
        return res.result.items, res.result.pagination

    def iterate_orders(self, token: str, **query: Any) -> tuple[list, int | None]:
        items: list = []
        pages = 0
        res = self.client(token).orders.list(**query)
        while res is not None:
            pages += 1
            assert pages < 1000, "the SDK pager does not stop"
            items.extend(res.result.items)
            res = res.next()
        return items, pages

    def get_payment(self, token: str, payment_id: str):
        return self.client(token).payments.get(id=payment_id)

    def list_payments(self, token: str, **query: Any):
        res = self.client(token).payments.list(**query)
        return res.result.items, res.result.pagination

    @staticmethod
    def payment_method(payment) -> str:
        # A card payment's constant `method` is aliased to METHOD in 0.x.
        return payment.METHOD if type(payment).__name__ == "CardPayment" else payment.method

    # webhooks
    def create_endpoint(self, token: str, **body: Any):
        return self.client(token).webhooks.create_webhook_endpoint(request=body)

    def list_endpoints(self, token: str, **query: Any):
        res = self.client(token).webhooks.list_webhook_endpoints(**query)
        return res.result.items, res.result.pagination

    def get_endpoint(self, token: str, endpoint_id: str):
        return self.client(token).webhooks.get_webhook_endpoint(id=endpoint_id)

    def update_endpoint(self, token: str, endpoint_id: str, **body: Any):
        return self.client(token).webhooks.update_webhook_endpoint(
            id=endpoint_id, webhook_endpoint_update=body
        )

    def reset_endpoint_secret(self, token: str, endpoint_id: str):
        return self.client(token).webhooks.reset_webhook_endpoint_secret(id=endpoint_id)

    def delete_endpoint(self, token: str, endpoint_id: str) -> None:
        self.client(token).webhooks.delete_webhook_endpoint(id=endpoint_id)

    def list_deliveries(self, token: str, **query: Any):
        res = self.client(token).webhooks.list_webhook_deliveries(**query)
        return res.result.items, res.result.pagination

    def redeliver(self, token: str, event_id: str):
        return self.client(token).webhooks.redeliver_webhook_event(id=event_id)

    @staticmethod
    def validate_event(body: bytes, headers: dict[str, str], secret: str):
        """The SDK's own verification and parsing of a delivery: (type, data)."""
        from polar_sdk.webhooks import validate_event

        payload = validate_event(body, headers, secret)
        return payload.TYPE, payload.data

    def not_found(self, exc) -> tuple[str, str]:
        return exc.data.ERROR, exc.data.detail  # `error` is aliased to ERROR in 0.x

    def validation_errors(self, exc) -> list:
        return list(exc.data.detail)

    def refunded_already(self, exc) -> tuple[str, str]:
        return exc.data.ERROR, exc.data.detail  # `error` is aliased to ERROR in 0.x

    def status_of(self, exc) -> int:
        return exc.status_code

    def raw_body_of(self, exc) -> str:
        return exc.body

    def undecodable_body_of(self, exc) -> str:
        """0.x's ResponseValidationError keeps the status code and the raw body."""
        assert exc.status_code in (403, 422), exc.status_code
        return exc.body

    @staticmethod
    def timestamp(value: Any) -> dt.datetime:
        assert isinstance(value, dt.datetime), value
        return value


def load(base_url: str):
    if BUILD == "1":
        return Build1(base_url)
    if BUILD == "0":
        return Build0(base_url)
    raise SystemExit(f"POLAR_SDK_BUILD must be 1 or 0, not {BUILD!r}")


def pages_expected(total: int, limit: int) -> int:
    return max(1, -(-total // limit))


def ids(items: Iterator) -> list[str]:
    return [item.id for item in items]
