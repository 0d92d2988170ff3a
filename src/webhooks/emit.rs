//! Writing events to the outbox, in the caller's transaction: they exist exactly when the
//! change that causes them commits. Without a subscribed endpoint this costs one indexed
//! query.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{ORDER_REFUNDED, ORDER_UPDATED, REFUND_CREATED, REFUND_UPDATED};
use super::repo::{self, NewEvents};
use crate::domain::{Error, OrderAmounts, OrderStatus, RefundStatus, Result};
use crate::orders::repo::LockedOrder;
use crate::polar::timestamp;

/// An order's refund state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderState {
    pub status: OrderStatus,
    pub amounts: OrderAmounts,
}

impl OrderState {
    /// The state an order was read in.
    pub fn of(order: &LockedOrder) -> Self {
        Self {
            status: order.status,
            amounts: order.amounts,
        }
    }

    /// Whether Polar's `Order` shows the two differently: its status or refunded amounts.
    /// A pending refund's reservation is this server's own bookkeeping and changes neither.
    fn shown_differently(&self, other: &OrderState) -> bool {
        self.status != other.status
            || self.amounts.refunded_amount != other.amounts.refunded_amount
            || self.amounts.refunded_tax_amount != other.amounts.refunded_tax_amount
    }
}

/// What a refund's creation or move changed.
pub struct RefundChange<'a, R> {
    pub organization_id: Uuid,
    pub order_id: Uuid,
    /// The refund as it is now, as Polar shows it.
    pub refund: &'a R,
    pub status: RefundStatus,
    /// Its status before the move; `None` when it was just created.
    pub previous_status: Option<RefundStatus>,
    pub order_before: OrderState,
    pub order_after: OrderState,
}

impl<R> RefundChange<'_, R> {
    /// The events the change causes, in the order Polar sends them.
    pub fn event_types(&self) -> Vec<&'static str> {
        let mut types = vec![match self.previous_status {
            None => REFUND_CREATED,
            Some(_) => REFUND_UPDATED,
        }];
        if self.order_before.shown_differently(&self.order_after) {
            types.push(ORDER_UPDATED);
        }
        let reached_success = self.status == RefundStatus::Succeeded
            && self.previous_status != Some(RefundStatus::Succeeded);
        if reached_success {
            types.push(ORDER_REFUNDED);
        }
        types
    }
}

/// Whether an event's `data` is the refund; the other events carry its order.
pub fn carries_refund(event_type: &str) -> bool {
    matches!(event_type, REFUND_CREATED | REFUND_UPDATED)
}

/// Writes the events of a refund's change for every endpoint of its organization that is
/// enabled and subscribed to them.
pub async fn refund_changed<R: Serialize>(
    conn: &mut PgConnection,
    change: RefundChange<'_, R>,
) -> Result<()> {
    let types = change.event_types();
    let targets = repo::targets(&mut *conn, change.organization_id, &types).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let refund = serde_json::to_string(change.refund)
        .map_err(|error| Error::Corrupt(format!("refund as JSON: {error}")))?;
    let wants_order = targets.iter().any(|target| {
        target
            .events
            .iter()
            .any(|event| event == ORDER_UPDATED || event == ORDER_REFUNDED)
    });
    let order = match wants_order {
        true => {
            let order = crate::orders::service::order_of_organization(
                &mut *conn,
                change.organization_id,
                change.order_id,
            )
            .await?;
            serde_json::to_string(&order)
                .map_err(|error| Error::Corrupt(format!("order as JSON: {error}")))?
        }
        false => String::new(),
    };
    let now = Utc::now().trunc_subsecs(6);
    let mut events = NewEvents::default();
    for event_type in types {
        let data = if carries_refund(event_type) {
            &refund
        } else {
            &order
        };
        for target in targets
            .iter()
            .filter(|target| target.events.iter().any(|event| event == event_type))
        {
            events.ids.push(Uuid::new_v4());
            events.endpoint_ids.push(target.id);
            events.types.push(event_type);
            events.api_versions.push(target.api_version.clone());
            events
                .payloads
                .push(payload(event_type, &now, &target.api_version, data));
        }
    }
    repo::insert_events(conn, change.organization_id, now, &events).await?;
    Ok(())
}

/// The bytes Polar sends: compact JSON with `type`, `timestamp`, `api_version` and `data`,
/// in that order.
pub fn payload(event_type: &str, at: &DateTime<Utc>, api_version: &str, data: &str) -> String {
    let mut payload = payload_head(event_type, at);
    payload.push_str(&serde_json::Value::from(api_version).to_string());
    payload.push_str(&payload_tail(data));
    payload
}

/// A payload up to its `api_version`'s value: what every endpoint's copy of an event shares
/// before it.
pub fn payload_head(event_type: &str, at: &DateTime<Utc>) -> String {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    format!(
        r#"{{"type":{},"timestamp":{},"api_version":"#,
        quoted(event_type),
        quoted(&timestamp::format(at)),
    )
}

/// A payload after its `api_version`'s value.
pub fn payload_tail(data: &str) -> String {
    format!(r#","data":{data}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: OrderStatus, refunded: i64) -> OrderState {
        OrderState {
            status,
            amounts: OrderAmounts {
                net_amount: 1000,
                tax_amount: 0,
                applied_balance_amount: 0,
                refunded_amount: refunded,
                refunded_tax_amount: 0,
                pending_amount: 0,
                pending_tax_amount: 0,
            },
        }
    }

    fn change(
        status: RefundStatus,
        previous_status: Option<RefundStatus>,
        before: OrderState,
        after: OrderState,
    ) -> RefundChange<'static, ()> {
        RefundChange {
            organization_id: Uuid::nil(),
            order_id: Uuid::nil(),
            refund: &(),
            status,
            previous_status,
            order_before: before,
            order_after: after,
        }
    }

    #[test]
    fn a_succeeded_create_sends_three_events_in_polar_order() {
        let paid = state(OrderStatus::Paid, 0);
        let partly = state(OrderStatus::PartiallyRefunded, 400);
        assert_eq!(
            change(RefundStatus::Succeeded, None, paid, partly).event_types(),
            [REFUND_CREATED, ORDER_UPDATED, ORDER_REFUNDED]
        );
        assert_eq!(
            change(RefundStatus::Failed, None, paid, paid).event_types(),
            [REFUND_CREATED]
        );
        assert_eq!(
            change(
                RefundStatus::Succeeded,
                Some(RefundStatus::Pending),
                paid,
                partly
            )
            .event_types(),
            [REFUND_UPDATED, ORDER_UPDATED, ORDER_REFUNDED]
        );
        assert_eq!(
            change(
                RefundStatus::Failed,
                Some(RefundStatus::Succeeded),
                partly,
                paid
            )
            .event_types(),
            [REFUND_UPDATED, ORDER_UPDATED]
        );
    }

    #[test]
    fn a_reservation_alone_does_not_update_the_order() {
        let paid = state(OrderStatus::Paid, 0);
        let mut reserved = paid;
        reserved.amounts.pending_amount = 600;
        assert_eq!(
            change(RefundStatus::Pending, None, paid, reserved).event_types(),
            [REFUND_CREATED]
        );
        assert_eq!(
            change(
                RefundStatus::Failed,
                Some(RefundStatus::Pending),
                reserved,
                paid
            )
            .event_types(),
            [REFUND_UPDATED]
        );
    }

    #[test]
    fn payload_is_compact_and_ordered() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            payload("refund.created", &at, "2026-04", r#"{"id":"x"}"#),
            r#"{"type":"refund.created","timestamp":"2026-01-02T03:04:05.123456Z","api_version":"2026-04","data":{"id":"x"}}"#
        );
    }
}
