//! Money in minor units, and Polar's refund amount rules: how much of an order is still
//! refundable, how a requested net amount (Polar) or gross amount (Medusa) splits into net
//! and tax, and the three moves a
//! refund makes on the order's counters (reserve while pending, settle when it succeeds,
//! release when it fails or is canceled).
//!
//! Polar computes the tax share with Python floats and `round()`, which rounds ties to even;
//! the same float operations are reproduced here so that every split is bit-exact.

use super::status::{OrderStatus, RefundStatus};

/// The amounts of an order that the rules read. A pending refund reserves its amounts, so
/// `pending_*` is counted like `refunded_*` against what is still refundable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAmounts {
    pub net_amount: i64,
    pub tax_amount: i64,
    pub applied_balance_amount: i64,
    pub refunded_amount: i64,
    pub refunded_tax_amount: i64,
    pub pending_amount: i64,
    pub pending_tax_amount: i64,
}

/// The amounts a refund takes from an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundSplit {
    pub amount: i64,
    pub tax_amount: i64,
}

/// How much a refund asks for: the net part, tax added on top (Polar), or what leaves the
/// payment, net and tax together (Medusa).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedAmount {
    Net(i64),
    Gross(i64),
}

impl RequestedAmount {
    /// The amount as the caller gave it.
    pub fn value(self) -> i64 {
        match self {
            RequestedAmount::Net(amount) | RequestedAmount::Gross(amount) => amount,
        }
    }
}

impl OrderAmounts {
    /// A refund waiting for the processor holds its amounts, so that no other refund can
    /// take them meanwhile.
    pub fn reserve(&mut self, split: RefundSplit) {
        self.pending_amount += split.amount;
        self.pending_tax_amount += split.tax_amount;
    }

    /// A reserved refund succeeded: its amounts move from pending to refunded.
    pub fn settle(&mut self, split: RefundSplit) {
        self.release(split);
        self.refunded_amount += split.amount;
        self.refunded_tax_amount += split.tax_amount;
    }

    /// A reserved refund failed or was canceled: its amounts are refundable again.
    pub fn release(&mut self, split: RefundSplit) {
        self.pending_amount -= split.amount;
        self.pending_tax_amount -= split.tax_amount;
    }

    /// A succeeded refund was reversed by the processor: its amounts are refundable again.
    pub fn reverse(&mut self, split: RefundSplit) {
        self.refunded_amount -= split.amount;
        self.refunded_tax_amount -= split.tax_amount;
    }

    /// The counters after a refund moves from `from` to `to` (a move `RefundStatus::may_move_to`
    /// allows).
    pub fn apply_move(&mut self, from: RefundStatus, to: RefundStatus, split: RefundSplit) {
        match (from, to) {
            (RefundStatus::Pending, RefundStatus::Succeeded) => self.settle(split),
            (RefundStatus::Pending, _) => self.release(split),
            (RefundStatus::Succeeded, RefundStatus::Failed | RefundStatus::Canceled) => {
                self.reverse(split)
            }
            _ => {}
        }
    }

    /// A new refund in the state the processor left it: reserved while pending, settled if
    /// it succeeded at once, and nothing if it failed.
    pub fn record(&mut self, status: RefundStatus, split: RefundSplit) {
        match status {
            RefundStatus::Pending => self.reserve(split),
            RefundStatus::Succeeded => {
                self.reserve(split);
                self.settle(split);
            }
            RefundStatus::Failed | RefundStatus::Canceled => {}
        }
    }

    /// Polar's `Order.update_refunds`: the status follows the refunded net amount only, and
    /// stays as it is while nothing is refunded.
    pub fn status_after(&self, before: &OrderAmounts, current: OrderStatus) -> OrderStatus {
        if self.refunded_amount == before.refunded_amount {
            current
        } else {
            OrderStatus::after_refunds(
                self.refunded_amount,
                self.net_amount + self.applied_balance_amount,
            )
        }
    }

    pub fn refundable_amount(&self) -> i64 {
        (self.net_amount + self.applied_balance_amount - self.refunded_amount - self.pending_amount)
            .max(0)
    }

    pub fn refundable_tax_amount(&self) -> i64 {
        (self.tax_amount - self.refunded_tax_amount - self.pending_tax_amount).max(0)
    }

    /// What can still leave the payment: the refundable net and tax together.
    pub fn remaining_balance(&self) -> i64 {
        self.refundable_amount() + self.refundable_tax_amount()
    }

    fn total_amount(&self) -> i64 {
        self.net_amount + self.tax_amount
    }

    fn is_taxed(&self) -> bool {
        self.tax_amount > 0
    }

    /// Splits a requested net `amount` the way Polar does: the tax for the subtotal, then the
    /// split re-derived from the total charged back. `None` when `amount` exceeds what is
    /// still refundable.
    pub fn split(&self, amount: i64) -> Option<RefundSplit> {
        let tax = self.tax_for_subtotal(amount)?;
        Some(self.split_total(amount + tax))
    }

    /// The split of a requested amount, or, when it asks for more than is left, what is left
    /// in the request's own terms (net for a net amount, net and tax for a gross one).
    pub fn take(&self, requested: RequestedAmount) -> Result<RefundSplit, i64> {
        match requested {
            RequestedAmount::Net(amount) => self.split(amount).ok_or(self.refundable_amount()),
            RequestedAmount::Gross(amount) => {
                self.split_gross(amount).ok_or(self.remaining_balance())
            }
        }
    }

    /// Splits an amount that leaves the payment (net and tax together) in the order's
    /// proportion: the tax share is `gross × tax / (net + tax)`, rounded half to even in
    /// exact integer arithmetic, then kept within what is left of each part (at least
    /// `gross` minus the refundable net, at most the refundable tax). A gross amount equal to
    /// what is left takes exactly what is left of both. `None` when `gross` exceeds what is
    /// left. The net plus the tax of the split is always `gross`.
    pub fn split_gross(&self, gross: i64) -> Option<RefundSplit> {
        let remaining = self.remaining_balance();
        if gross > remaining {
            return None;
        }
        if gross == remaining {
            return Some(RefundSplit {
                amount: self.refundable_amount(),
                tax_amount: self.refundable_tax_amount(),
            });
        }
        let proportional = if self.is_taxed() {
            divide_rounding_half_even(
                i128::from(gross) * i128::from(self.tax_amount),
                i128::from(self.total_amount()),
            )
        } else {
            0
        };
        // `gross < remaining` makes the lower bound at most the upper one.
        let lowest = (gross - self.refundable_amount()).max(0);
        let tax = proportional.clamp(lowest, self.refundable_tax_amount());
        Some(RefundSplit {
            amount: gross - tax,
            tax_amount: tax,
        })
    }

    /// `Order.calculate_refunded_tax_from_subtotal`.
    fn tax_for_subtotal(&self, amount: i64) -> Option<i64> {
        let refundable = self.refundable_amount();
        if amount > refundable {
            return None;
        }
        if amount == refundable {
            return Some(self.refundable_tax_amount());
        }
        if !self.is_taxed() || self.net_amount == 0 {
            // Polar divides by a zero net here and fails; a partial refund of an order with
            // no net part refunds no tax.
            return Some(0);
        }
        let ratio = self.tax_amount as f64 / self.net_amount as f64;
        let tax = (amount as f64 * ratio).round_ties_even() as i64;
        Some(tax.min(self.refundable_tax_amount()))
    }

    /// `Order.calculate_refunded_tax_from_total`: how a total the processor refunded (a
    /// refund made outside this server) splits into net and tax.
    pub fn split_total(&self, total: i64) -> RefundSplit {
        if total == self.remaining_balance() {
            return RefundSplit {
                amount: self.refundable_amount(),
                tax_amount: self.refundable_tax_amount(),
            };
        }
        if !self.is_taxed() {
            return RefundSplit {
                amount: total,
                tax_amount: 0,
            };
        }
        // Python: abs(round((tax_amount * total) / total_amount)), an exact integer product
        // divided as floats.
        let product = self.tax_amount as i128 * total as i128;
        let tax = (product as f64 / self.total_amount() as f64)
            .round_ties_even()
            .abs() as i64;
        let tax = tax.min(self.refundable_tax_amount());
        RefundSplit {
            amount: total - tax,
            tax_amount: tax,
        }
    }
}

/// `numerator / denominator` rounded to the nearest integer, ties to even; both positive or
/// the numerator zero. The quotient of two amounts fits an `i64` here, as the tax share is
/// never more than the gross amount.
fn divide_rounding_half_even(numerator: i128, denominator: i128) -> i64 {
    let quotient = numerator / denominator;
    let twice_remainder = 2 * (numerator % denominator);
    let rounded = match twice_remainder.cmp(&denominator) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient % 2),
    };
    rounded as i64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn order(net_amount: i64, tax_amount: i64) -> OrderAmounts {
        OrderAmounts {
            net_amount,
            tax_amount,
            applied_balance_amount: 0,
            refunded_amount: 0,
            refunded_tax_amount: 0,
            pending_amount: 0,
            pending_tax_amount: 0,
        }
    }

    fn apply(order: &mut OrderAmounts, split: RefundSplit) {
        order.record(RefundStatus::Succeeded, split);
    }

    #[test]
    fn a_reversal_gives_back_what_a_success_took() {
        let before = order(1000, 250);
        let split = before.split(600).unwrap();
        let mut amounts = before;
        amounts.record(RefundStatus::Pending, split);
        amounts.apply_move(RefundStatus::Pending, RefundStatus::Succeeded, split);
        assert_eq!((amounts.refunded_amount, amounts.pending_amount), (600, 0));
        amounts.apply_move(RefundStatus::Succeeded, RefundStatus::Failed, split);
        assert_eq!(amounts, before);
        let mut canceled = before;
        canceled.record(RefundStatus::Pending, split);
        canceled.apply_move(RefundStatus::Pending, RefundStatus::Canceled, split);
        assert_eq!(canceled, before);
    }

    #[test]
    fn a_reservation_counts_against_what_is_left_until_it_settles_or_is_released() {
        let mut amounts = order(1000, 250);
        let split = amounts.split(600).unwrap();
        amounts.record(RefundStatus::Pending, split);
        assert_eq!(
            (amounts.pending_amount, amounts.pending_tax_amount),
            (600, 150)
        );
        assert_eq!(amounts.refundable_amount(), 400);
        assert_eq!(amounts.split(401), None);

        let mut settled = amounts;
        settled.settle(split);
        assert_eq!((settled.refunded_amount, settled.pending_amount), (600, 0));
        assert_eq!(settled.refundable_amount(), 400);
        assert_eq!(
            settled.status_after(&amounts, OrderStatus::Paid),
            OrderStatus::PartiallyRefunded
        );

        let mut released = amounts;
        released.release(split);
        assert_eq!(released, order(1000, 250));
        assert_eq!(
            released.status_after(&amounts, OrderStatus::Paid),
            OrderStatus::Paid
        );
    }

    #[test]
    fn a_failed_refund_moves_nothing() {
        let mut amounts = order(1000, 0);
        amounts.record(
            RefundStatus::Failed,
            RefundSplit {
                amount: 10,
                tax_amount: 0,
            },
        );
        amounts.record(
            RefundStatus::Canceled,
            RefundSplit {
                amount: 10,
                tax_amount: 0,
            },
        );
        assert_eq!(amounts, order(1000, 0));
    }

    #[test]
    fn polar_partial_to_full_vector() {
        let mut amounts = order(9990, 2498);
        for (requested, expected_tax) in [(1110, 278), (993, 248), (5887, 1472)] {
            let split = amounts.split(requested).unwrap();
            assert_eq!(
                split,
                RefundSplit {
                    amount: requested,
                    tax_amount: expected_tax
                }
            );
            apply(&mut amounts, split);
        }
        assert_eq!(amounts.split(2001), None, "only 2000 is left");
        let last = amounts.split(2000).unwrap();
        assert_eq!(
            last,
            RefundSplit {
                amount: 2000,
                tax_amount: 500
            }
        );
        apply(&mut amounts, last);
        assert_eq!(amounts.refundable_amount(), 0);
        assert_eq!(amounts.refunded_tax_amount, 2498);
    }

    #[test]
    fn polar_repeated_partial_vector() {
        let mut amounts = order(1000, 250);
        for _ in 0..2 {
            let split = amounts.split(300).unwrap();
            assert_eq!(
                split,
                RefundSplit {
                    amount: 300,
                    tax_amount: 75
                }
            );
            apply(&mut amounts, split);
        }
        assert_eq!(
            (amounts.refunded_amount, amounts.refunded_tax_amount),
            (600, 150)
        );
    }

    #[test]
    fn applied_balance_moves_what_is_refundable() {
        let debt = OrderAmounts {
            applied_balance_amount: 1000,
            ..order(1000, 250)
        };
        assert_eq!(
            debt.split(2000),
            Some(RefundSplit {
                amount: 2000,
                tax_amount: 250
            })
        );
        let credit = OrderAmounts {
            applied_balance_amount: -500,
            ..order(1000, 250)
        };
        assert_eq!(credit.refundable_amount(), 500);
        assert_eq!(credit.split(501), None);
        assert_eq!(
            credit.split(500),
            Some(RefundSplit {
                amount: 500,
                tax_amount: 250
            })
        );
    }

    #[test]
    fn untaxed_orders_refund_no_tax_and_free_orders_refund_nothing() {
        assert_eq!(
            order(1000, 0).split(400),
            Some(RefundSplit {
                amount: 400,
                tax_amount: 0
            })
        );
        assert_eq!(order(0, 0).split(1), None);
    }

    #[test]
    fn pending_refunds_reserve_their_amounts() {
        let amounts = OrderAmounts {
            pending_amount: 600,
            pending_tax_amount: 150,
            ..order(1000, 250)
        };
        assert_eq!(amounts.refundable_amount(), 400);
        assert_eq!(amounts.split(401), None);
        assert_eq!(
            amounts.split(400),
            Some(RefundSplit {
                amount: 400,
                tax_amount: 100
            })
        );
    }

    #[test]
    fn ties_round_to_even() {
        // net 4 / tax 1: 2 × 0.25 = 0.5 → 0, 6 × 0.25 = 1.5 → 2, 10 × 0.25 = 2.5 → 2
        let amounts = order(40, 10);
        assert_eq!(amounts.tax_for_subtotal(2), Some(0));
        assert_eq!(amounts.tax_for_subtotal(6), Some(2));
        assert_eq!(amounts.tax_for_subtotal(10), Some(2));
    }

    #[test]
    fn a_gross_amount_splits_in_the_order_proportion() {
        let amounts = order(9990, 2498);
        // 1388 × 2498 / 12488 = 277.64…: the same split as Polar's net 1110
        assert_eq!(
            amounts.split_gross(1388),
            Some(RefundSplit {
                amount: 1110,
                tax_amount: 278
            })
        );
        assert_eq!(amounts.split(1110), amounts.split_gross(1388));
        assert_eq!(
            order(1000, 0).split_gross(400),
            Some(RefundSplit {
                amount: 400,
                tax_amount: 0
            })
        );
    }

    #[test]
    fn a_gross_amount_rounds_its_tax_half_to_even() {
        // net 3 / tax 1: 2 × 1/4 = 0.5 → 0, 6 × 1/4 = 1.5 → 2, 10 × 1/4 = 2.5 → 2
        let amounts = order(300, 100);
        let tax = |gross| amounts.split_gross(gross).unwrap().tax_amount;
        assert_eq!((tax(2), tax(6), tax(10), tax(7)), (0, 2, 2, 2));
        assert_eq!(divide_rounding_half_even(7, 2), 4);
        assert_eq!(divide_rounding_half_even(5, 2), 2);
        assert_eq!(divide_rounding_half_even(0, 3), 0);
    }

    #[test]
    fn a_gross_amount_emptying_the_order_takes_exactly_what_is_left() {
        let mut amounts = order(9990, 2498);
        let first = amounts.split(1110).unwrap();
        apply(&mut amounts, first);
        assert_eq!(amounts.remaining_balance(), 12488 - 1388);
        assert_eq!(amounts.split_gross(12488 - 1387), None);
        assert_eq!(
            amounts.take(RequestedAmount::Gross(12488 - 1387)),
            Err(11100)
        );
        assert_eq!(amounts.take(RequestedAmount::Net(8881)), Err(8880));
        assert_eq!(
            amounts.split_gross(11100),
            Some(RefundSplit {
                amount: 8880,
                tax_amount: 2220
            })
        );
    }

    #[test]
    fn a_gross_amount_never_takes_more_net_than_is_left() {
        // Credit applied: 500 of net and all 250 of tax are left; the proportional tax of
        // 700 (140) would leave 560 of net, more than the 500 left.
        let credit = OrderAmounts {
            applied_balance_amount: -500,
            ..order(1000, 250)
        };
        assert_eq!(
            credit.split_gross(700),
            Some(RefundSplit {
                amount: 500,
                tax_amount: 200
            })
        );
        // A taxed order whose net is 0 refunds tax only.
        assert_eq!(
            order(0, 100).split_gross(30),
            Some(RefundSplit {
                amount: 0,
                tax_amount: 30
            })
        );
    }

    proptest! {
        /// Refunding the whole net in any number of partial refunds refunds exactly the
        /// order's tax, and no step ever refunds more than what is left.
        #[test]
        fn partial_refunds_to_full_refund_exactly_the_tax(
            net in 1i64..5_000_000,
            tax_percent in 0i64..60,
            cuts in proptest::collection::vec(1i64..1_000_000, 0..12),
        ) {
            let tax = net * tax_percent / 100;
            let mut amounts = order(net, tax);
            for cut in cuts {
                let requested = cut.min(amounts.refundable_amount());
                if requested == 0 { break; }
                let split = amounts.split(requested).expect("within refundable");
                prop_assert_eq!(split.amount, requested);
                prop_assert!(split.tax_amount >= 0);
                prop_assert!(split.tax_amount <= amounts.refundable_tax_amount());
                apply(&mut amounts, split);
            }
            let rest = amounts.refundable_amount();
            if rest > 0 {
                let split = amounts.split(rest).unwrap();
                apply(&mut amounts, split);
            }
            prop_assert_eq!(amounts.refunded_amount, net);
            prop_assert_eq!(amounts.refunded_tax_amount, tax);
            prop_assert_eq!(amounts.split(1), None);
        }

        /// However refunds are reserved, settled and released, the counters stay within the
        /// order and what settles is what was reserved.
        #[test]
        fn moves_never_take_more_than_the_order(
            net in 1i64..1_000_000,
            tax_percent in 0i64..60,
            steps in proptest::collection::vec((1i64..400_000, 0u8..3), 0..20),
        ) {
            let mut amounts = order(net, net * tax_percent / 100);
            let mut reserved = Vec::new();
            for (requested, action) in steps {
                match (action, reserved.pop()) {
                    (1, Some(split)) => amounts.settle(split),
                    (2, Some(split)) => amounts.release(split),
                    (_, popped) => {
                        reserved.extend(popped);
                        if let Some(split) = amounts
                            .split(requested.min(amounts.refundable_amount()))
                            .filter(|split| split.amount > 0)
                        {
                            amounts.reserve(split);
                            reserved.push(split);
                        }
                    }
                }
                prop_assert!(amounts.refunded_amount + amounts.pending_amount <= amounts.net_amount);
                prop_assert!(amounts.refunded_tax_amount + amounts.pending_tax_amount <= amounts.tax_amount);
                prop_assert!(amounts.pending_amount >= 0 && amounts.pending_tax_amount >= 0);
                let held: i64 = reserved.iter().map(|split| split.amount).sum();
                prop_assert_eq!(held, amounts.pending_amount);
            }
        }

        /// A gross amount splits into a net and a tax that add up to it exactly, each within
        /// what is left; one that empties the order takes exactly what is left of both; any
        /// more is refused. Applied balances and earlier refunds of either kind included.
        #[test]
        fn gross_amounts_split_exactly_within_what_is_left(
            net in 0i64..5_000_000,
            tax_percent in 0i64..80,
            balance in -2_000_000i64..2_000_000,
            steps in proptest::collection::vec((1i64..3_000_000, any::<bool>()), 1..12),
        ) {
            let mut amounts = OrderAmounts {
                applied_balance_amount: balance.max(-net),
                ..order(net, net * tax_percent / 100)
            };
            for (requested, gross) in steps {
                let remaining = amounts.remaining_balance();
                let (net_left, tax_left) =
                    (amounts.refundable_amount(), amounts.refundable_tax_amount());
                if !gross {
                    if let Some(split) = amounts.split(requested.min(net_left)).filter(|s| s.amount > 0) {
                        apply(&mut amounts, split);
                    }
                    continue;
                }
                prop_assert_eq!(amounts.split_gross(remaining + 1), None);
                let wanted = requested.min(remaining);
                if wanted == 0 { break; }
                let split = amounts.split_gross(wanted).expect("within what is left");
                prop_assert_eq!(split.amount + split.tax_amount, wanted);
                prop_assert!(split.amount >= 0 && split.amount <= net_left);
                prop_assert!(split.tax_amount >= 0 && split.tax_amount <= tax_left);
                if wanted == remaining {
                    prop_assert_eq!(split, RefundSplit { amount: net_left, tax_amount: tax_left });
                }
                apply(&mut amounts, split);
            }
            let rest = amounts.remaining_balance();
            if rest > 0 {
                let last = amounts.split_gross(rest).unwrap();
                apply(&mut amounts, last);
            }
            prop_assert_eq!(amounts.remaining_balance(), 0);
            prop_assert_eq!(amounts.refunded_tax_amount, amounts.tax_amount);
            prop_assert_eq!(amounts.refunded_amount, amounts.net_amount + amounts.applied_balance_amount);
        }
    }
}
