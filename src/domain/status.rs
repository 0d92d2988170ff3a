//! The states of refunds, orders and disputes, and why a refund was made.

macro_rules! string_enum {
    // `tt`, not `literal`: the derives must see the renames as plain string tokens.
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:tt),+ $(,)? }) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema,
        )]
        $(#[$meta])*
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Why a refund was made. `DisputePrevention` is reserved for refunds the server issues
    /// itself; clients may send any other reason.
    RefundReason {
        Duplicate => "duplicate",
        Fraudulent => "fraudulent",
        CustomerRequest => "customer_request",
        ServiceDisruption => "service_disruption",
        SatisfactionGuarantee => "satisfaction_guarantee",
        DisputePrevention => "dispute_prevention",
        Other => "other",
    }
);

string_enum!(RefundStatus {
    Pending => "pending",
    Succeeded => "succeeded",
    Failed => "failed",
    Canceled => "canceled",
});

string_enum!(DisputeStatus {
    Prevented => "prevented",
    EarlyWarning => "early_warning",
    NeedsResponse => "needs_response",
    UnderReview => "under_review",
    Lost => "lost",
    Won => "won",
});

impl DisputeStatus {
    pub fn is_resolved(self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }

    pub fn is_closed(self) -> bool {
        matches!(
            self,
            DisputeStatus::Prevented | DisputeStatus::Won | DisputeStatus::Lost
        )
    }
}

string_enum!(OrderStatus {
    Draft => "draft",
    Pending => "pending",
    Paid => "paid",
    Refunded => "refunded",
    PartiallyRefunded => "partially_refunded",
    Void => "void",
});

impl OrderStatus {
    /// Polar's `Order.update_refunds`: the status follows the refunded net amount only.
    pub fn after_refunds(refunded_amount: i64, refundable_total: i64) -> Self {
        if refunded_amount == 0 {
            OrderStatus::Paid
        } else if refunded_amount >= refundable_total {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        }
    }
}
