//! The scalar checks of pydantic's lax mode, as pydantic-core 2 coerces: integers, floats,
//! booleans, strings and UUIDs, from JSON values or from query and path text.

use serde_json::{Number, Value};
use uuid::Uuid;

use super::Failure;
use super::json::{MAX_INT_DIGITS, is_integer_literal};

pub fn check_int(value: &Value) -> Result<i64, Failure> {
    match value {
        Value::Bool(flag) => Ok(i64::from(*flag)),
        Value::Number(number) => int_from_number(number),
        Value::String(text) => check_int_str(text),
        _ => Err(Failure::int_type()),
    }
}

/// Integers beyond `i64` saturate: no stored amount can hold them, and the input is echoed
/// as sent.
fn int_from_number(number: &Number) -> Result<i64, Failure> {
    if let Some(integer) = number.as_i64() {
        return Ok(integer);
    }
    let text = number.to_string();
    if is_integer_literal(&text) {
        return Ok(parse_saturating(&text));
    }
    // pydantic-core's `float_as_int`: a fraction first, then a float outside i64 (which,
    // unlike an integer, pydantic does not read as a big integer).
    let float = number.as_f64().unwrap_or(0.0);
    if float.fract() != 0.0 {
        return Err(Failure::int_from_float());
    }
    if (i64::MIN as f64) < float && float < (i64::MAX as f64) {
        Ok(float as i64)
    } else {
        Err(Failure::int_parsing_size())
    }
}

/// pydantic-core's `str_as_int`: a plain integer, else the same text cleaned of surrounding
/// whitespace, a `+` sign, leading zeros, a `.000` fraction and `_` digit separators.
pub fn check_int_str(text: &str) -> Result<i64, Failure> {
    if is_plain_integer(text) {
        if digit_count(text) > MAX_INT_DIGITS {
            return Err(Failure::int_parsing_size());
        }
        return Ok(parse_saturating(text));
    }
    match clean_int_str(text) {
        Some(cleaned) if is_plain_integer(&cleaned) && digit_count(&cleaned) <= MAX_INT_DIGITS => {
            Ok(parse_saturating(&cleaned))
        }
        _ => Err(Failure::int_parsing()),
    }
}

fn digit_count(integer: &str) -> usize {
    integer.trim_start_matches('-').len()
}

/// `-?(0|[1-9][0-9]*)`: an integer as JSON writes it.
fn is_plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let all_digits = !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit());
    all_digits && (digits == "0" || !digits.starts_with('0'))
}

fn parse_saturating(integer: &str) -> i64 {
    match integer.parse::<i64>() {
        Ok(number) => number,
        Err(_) if integer.starts_with('-') => i64::MIN,
        Err(_) => i64::MAX,
    }
}

fn clean_int_str(text: &str) -> Option<String> {
    let mut rest = text.trim();
    if let Some(unsigned) = rest.strip_prefix('+') {
        if unsigned.starts_with('-') {
            return None;
        }
        rest = unsigned;
    }
    let negative = rest.starts_with('-');
    if let Some(unsigned) = rest.strip_prefix('-') {
        if unsigned.starts_with(['-', '+']) {
            return None;
        }
        rest = unsigned;
    }
    rest = strip_leading_zeros(rest)?;
    if let Some((whole, fraction)) = rest.split_once('.')
        && !fraction.is_empty()
        && fraction.bytes().all(|byte| byte == b'0')
    {
        rest = whole;
    }
    let digits = strip_underscores(rest).unwrap_or_else(|| rest.to_owned());
    Some(if negative {
        format!("-{digits}")
    } else {
        digits
    })
}

/// pydantic-core's `strip_leading_zeros`: `000` → `0`, `00.0` → `0.0`, `0_1` → `1`.
fn strip_leading_zeros(text: &str) -> Option<&str> {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, '0')) => {}
        Some((_, '1'..='9' | '-')) => return Some(text),
        _ => return None,
    }
    for (index, character) in chars {
        match character {
            '0' | '_' => {}
            '1'..='9' | '-' => return Some(&text[index..]),
            // Keep the character before the dot: `00.0` → `0.0`.
            '.' => return Some(&text[index - 1..]),
            _ => return None,
        }
    }
    Some(&text[text.len() - 1..])
}

/// `1_000` → `1000`; underscores at either end or doubled are not separators.
fn strip_underscores(text: &str) -> Option<String> {
    let valid = text.contains('_')
        && !text.starts_with('_')
        && !text.ends_with('_')
        && !text.contains("__");
    valid.then(|| text.replace('_', ""))
}

/// pydantic-core's `str_as_float`. Infinities and NaN, which pydantic accepts, cannot be
/// stored as JSON and are refused.
pub fn check_float_str(text: &str) -> Result<Number, Failure> {
    let parsed = text
        .trim()
        .parse::<f64>()
        .ok()
        .or_else(|| strip_underscores(text)?.parse::<f64>().ok());
    parsed
        .and_then(Number::from_f64)
        .ok_or_else(Failure::float_parsing)
}

pub fn check_bool(value: &Value) -> Result<bool, Failure> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) => check_bool_str(text),
        Value::Number(number) => bool_from_number(number),
        _ => Err(Failure::bool_type()),
    }
}

/// Only 0 and 1 are booleans; a float with a fraction is not even a candidate.
fn bool_from_number(number: &Number) -> Result<bool, Failure> {
    if is_integer_literal(&number.to_string()) {
        // pydantic-core reads an integer beyond i64 as a big integer, which no boolean
        // accepts as a candidate at all.
        return match number.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(_) => Err(Failure::bool_parsing()),
            None => Err(Failure::bool_type()),
        };
    }
    let float = number.as_f64().unwrap_or(0.0);
    if float.fract() != 0.0 || float.abs() >= i64::MAX as f64 {
        return Err(Failure::bool_type());
    }
    if float == 0.0 {
        Ok(false)
    } else if float == 1.0 {
        Ok(true)
    } else {
        Err(Failure::bool_parsing())
    }
}

/// pydantic-core's `str_as_bool`: case-insensitive, not trimmed.
pub fn check_bool_str(text: &str) -> Result<bool, Failure> {
    const FALSE: [&str; 6] = ["0", "off", "f", "false", "n", "no"];
    const TRUE: [&str; 6] = ["1", "on", "t", "true", "y", "yes"];
    if FALSE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(false)
    } else if TRUE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(true)
    } else {
        Err(Failure::bool_parsing())
    }
}

pub fn check_uuid4(value: &Value) -> Result<Uuid, Failure> {
    match value {
        Value::String(text) => check_uuid4_str(text),
        _ => Err(Failure::uuid_type()),
    }
}

/// A UUID of version 4 and the RFC 4122 variant, in any form the `uuid` crate reads.
pub(super) fn check_uuid4_str(text: &str) -> Result<Uuid, Failure> {
    let uuid = parse_uuid(text).map_err(|error| Failure::uuid_parsing(&error))?;
    if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
        return Err(Failure::uuid_version());
    }
    Ok(uuid)
}

/// Reads a UUID as the `uuid` crate pinned by pydantic-core does: simple, hyphenated,
/// `{braced}` or `urn:uuid:` forms. Its error texts are older than the `uuid` crate in use
/// here, so they are rebuilt by `uuid_error_text`.
pub(super) fn parse_uuid(text: &str) -> Result<Uuid, String> {
    let hex = match text.len() {
        32 | 36 => Some(text),
        38 => text
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}')),
        45 => text.strip_prefix("urn:uuid:"),
        _ => None,
    };
    hex.and_then(|hex| Uuid::try_parse(hex).ok())
        .ok_or_else(|| uuid_error_text(text))
}

/// The diagnosis of the older `uuid` crate: the first bad character (1-based byte
/// position), else the length of a simple UUID, else the hyphenated groups.
fn uuid_error_text(text: &str) -> String {
    let (hex, offset, simple) = if text.len() >= 2 && text.starts_with('{') && text.ends_with('}') {
        (&text[1..text.len() - 1], 1, false)
    } else if let Some(rest) = text.strip_prefix("urn:uuid:") {
        (rest, "urn:uuid:".len(), false)
    } else {
        (text, 0, true)
    };

    let mut hyphens = 0;
    let mut hyphen_positions = [0; 4];
    for (index, character) in hex.char_indices() {
        if character == '-' {
            if hyphens < 4 {
                hyphen_positions[hyphens] = index;
            }
            hyphens += 1;
        } else if !character.is_ascii_hexdigit() {
            return format!(
                "invalid character: found `{character}` at {}",
                index + offset + 1
            );
        }
    }

    if hyphens == 0 && simple {
        return format!(
            "invalid length: expected length 32 for simple format, found {}",
            text.len()
        );
    }
    if hyphens != 4 {
        return format!("invalid group count: expected 5, found {}", hyphens + 1);
    }
    const GROUP_STARTS: [usize; 5] = [0, 9, 14, 19, 24];
    const GROUP_LENGTHS: [usize; 5] = [8, 4, 4, 4, 12];
    for group in 0..4 {
        if hyphen_positions[group] != GROUP_STARTS[group + 1] - 1 {
            return format!(
                "invalid group length in group {group}: expected {}, found {}",
                GROUP_LENGTHS[group],
                hyphen_positions[group] - GROUP_STARTS[group]
            );
        }
    }
    // As in the original, the whole text's length is used here, wrapper included.
    format!(
        "invalid group length in group 4: expected 12, found {}",
        text.len() - GROUP_STARTS[4]
    )
}

/// Length in characters, as Python counts it.
pub fn check_str_length(text: &str, min_length: usize, max_length: usize) -> Result<(), Failure> {
    let length = text.chars().count();
    if length < min_length {
        return Err(Failure::string_too_short(min_length));
    }
    if length > max_length {
        return Err(Failure::string_too_long(max_length));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_strings_follow_pydantic_core() {
        for (text, expected) in [
            ("0", 0),
            ("-0", 0),
            ("00", 0),
            ("-05", -5),
            ("0_0_5", 5),
            ("5_000.00", 5000),
            ("\t8\n", 8),
        ] {
            assert_eq!(check_int_str(text), Ok(expected), "{text}");
        }
        for text in [
            "", " ", "+-1", "--1", "-+1", "1.5", "5.", ".5", "1e3", "0x10", "_1", "1_", "1__0", "١",
        ] {
            assert_eq!(check_int_str(text), Err(Failure::int_parsing()), "{text}");
        }
        assert_eq!(check_int_str("-99999999999999999999"), Ok(i64::MIN));
    }

    #[test]
    fn uuid_error_texts_follow_pydantic_core() {
        let text = |input: &str| parse_uuid(input).unwrap_err();
        assert_eq!(
            text("abc"),
            "invalid length: expected length 32 for simple format, found 3"
        );
        assert_eq!(
            text(""),
            "invalid length: expected length 32 for simple format, found 0"
        );
        assert_eq!(text("xyz"), "invalid character: found `x` at 1");
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc-2c963f66afaz"),
            "invalid character: found `z` at 36"
        );
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc"),
            "invalid group count: expected 5, found 4"
        );
        assert_eq!(
            text("3fa85f6-45717-4562-b3fc-2c963f66afa6"),
            "invalid group length in group 0: expected 8, found 7"
        );
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc-2c963f66afa67"),
            "invalid group length in group 4: expected 12, found 13"
        );
        assert_eq!(
            text("{3fa85f64}"),
            "invalid group count: expected 5, found 1"
        );
        assert_eq!(text("urn:uuid:zz"), "invalid character: found `z` at 10");
        assert_eq!(
            text("3fa85f64-5717-4562-b3fc-2c963f66afé"),
            "invalid character: found `é` at 35"
        );
    }
}
