//! Reading the body of `POST /admin/payments/{id}/refund` as Medusa v1 validates it
//! (class-validator with `whitelist` and `forbidNonWhitelisted`), with its messages: every
//! failure is one 400 `invalid_data` whose message joins the messages of every field.

use serde_json::{Map, Value};

use super::model::{MedusaReason, PaymentRefund};

/// Parses the body; `Err` holds the message of the 400. Like Medusa (Express's JSON parser),
/// a body that is not declared as JSON is read as an empty object.
pub fn parse_payment_refund(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<PaymentRefund, String> {
    let object = if declares_json(content_type) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err("The request body must be a JSON object".to_owned()),
            Err(_) => return Err("The request body is not valid JSON".to_owned()),
        }
    } else {
        Map::new()
    };
    validate(&object)
}

fn declares_json(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

/// class-validator's checks in its order: unknown properties first, then each property with
/// its constraints in declaration order.
fn validate(object: &Map<String, Value>) -> Result<PaymentRefund, String> {
    let mut messages: Vec<String> = object
        .keys()
        .filter(|key| !matches!(key.as_str(), "amount" | "reason" | "note"))
        .map(|key| format!("property {key} should not exist"))
        .collect();

    let amount = object.get("amount");
    if is_empty(amount) {
        messages.push("amount should not be empty".to_owned());
    }
    let amount = match amount.and_then(integer) {
        Some(amount) if amount > 0 => Some(amount),
        // Medusa lets a refund of nothing, or of a negative amount, through to its provider.
        Some(_) => {
            messages.push("amount must be a positive number".to_owned());
            None
        }
        None => {
            messages.push("amount must be an integer number".to_owned());
            None
        }
    };

    let reason = object.get("reason");
    if is_empty(reason) {
        messages.push("reason should not be empty".to_owned());
    }
    let reason = reason.and_then(Value::as_str).and_then(|given| {
        MedusaReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == given)
    });
    if reason.is_none() {
        let values: Vec<&str> = MedusaReason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        messages.push(format!(
            "reason must be one of the following values: {}",
            values.join(", ")
        ));
    }

    let note = match object.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(note)) if note.contains('\0') => {
            // PostgreSQL cannot store NUL in text.
            messages.push("note must not contain the NUL character".to_owned());
            None
        }
        Some(Value::String(note)) => Some(note.clone()),
        Some(_) => {
            messages.push("note must be a string".to_owned());
            None
        }
    };

    match (amount, reason) {
        (Some(amount), Some(reason)) if messages.is_empty() => Ok(PaymentRefund {
            amount,
            reason,
            note,
        }),
        _ => Err(messages.join(", ")),
    }
}

/// class-validator's `isNotEmpty` fails on a missing value, `null` and `""`.
fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(_) => false,
    }
}

/// class-validator's `isInt`: a JSON number whose value is a whole number, as JavaScript
/// reads it (`10.0` and `1e3` are integers). Beyond `i64` it saturates.
fn integer(value: &Value) -> Option<i64> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(integer) = number.as_i64() {
        return Some(integer);
    }
    if number.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let float = number.as_f64().filter(|float| float.is_finite())?;
    // `as` saturates at the bounds of i64.
    (float.fract() == 0.0).then_some(float as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<PaymentRefund, String> {
        parse_payment_refund(Some("application/json"), body.as_bytes())
    }

    #[test]
    fn a_valid_body() {
        assert_eq!(
            parse(r#"{"amount": 1000, "reason": "return", "note": "Do not like it"}"#),
            Ok(PaymentRefund {
                amount: 1000,
                reason: MedusaReason::Return,
                note: Some("Do not like it".to_owned())
            })
        );
        let plain = parse(r#"{"amount": 1e3, "reason": "other", "note": null}"#).unwrap();
        assert_eq!((plain.amount, plain.note), (1000, None));
        assert_eq!(
            parse(r#"{"amount": 10.0, "reason": "swap"}"#)
                .unwrap()
                .amount,
            10
        );
        assert_eq!(
            parse(r#"{"amount": 100000000000000000000000, "reason": "claim"}"#)
                .unwrap()
                .amount,
            i64::MAX
        );
    }

    #[test]
    fn class_validator_messages_in_its_order() {
        let reasons =
            "reason must be one of the following values: discount, return, swap, claim, other";
        assert_eq!(
            parse("{}"),
            Err(format!(
                "amount should not be empty, amount must be an integer number, reason should not be empty, {reasons}"
            ))
        );
        assert_eq!(
            parse(r#"{"amount": "10", "reason": "Return", "extra": 1}"#),
            Err(format!(
                "property extra should not exist, amount must be an integer number, {reasons}"
            ))
        );
        assert_eq!(
            parse(r#"{"amount": 10.5, "reason": "return", "note": 5}"#),
            Err("amount must be an integer number, note must be a string".to_owned())
        );
        assert_eq!(
            parse(r#"{"amount": 0, "reason": "return"}"#),
            Err("amount must be a positive number".to_owned())
        );
        assert_eq!(
            parse(r#"{"amount": -5, "reason": "return"}"#),
            Err("amount must be a positive number".to_owned())
        );
        assert_eq!(
            parse(r#"{"amount": null, "reason": ""}"#),
            Err(format!(
                "amount should not be empty, amount must be an integer number, reason should not be empty, {reasons}"
            ))
        );
        assert_eq!(
            parse(r#"{"amount": 5, "reason": "return", "note": "a\u0000b"}"#),
            Err("note must not contain the NUL character".to_owned())
        );
    }

    #[test]
    fn bodies_that_are_not_objects() {
        assert_eq!(
            parse("[1]"),
            Err("The request body must be a JSON object".to_owned())
        );
        assert_eq!(
            parse("{"),
            Err("The request body is not valid JSON".to_owned())
        );
        // Not declared as JSON: read as an empty body, as Express does.
        assert!(
            parse_payment_refund(Some("text/plain"), br#"{"amount": 1, "reason": "return"}"#)
                .unwrap_err()
                .starts_with("amount should not be empty")
        );
        assert!(
            parse_payment_refund(
                Some("application/json; charset=utf-8"),
                br#"{"amount": 1, "reason": "return"}"#
            )
            .is_ok()
        );
    }
}
