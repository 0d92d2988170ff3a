//! Reading a request body as FastAPI does: JSON only when the request says so, decoded as
//! Python's `json` module decodes it, with its syntax errors reported as pydantic reports them.

use serde_json::{Map, Value, json};

use super::Failure;
use crate::loc;
use crate::polar::validation::ValidationIssue;

/// Why a body was refused.
#[derive(Debug)]
pub enum BodyError {
    /// 422 with these issues; the caller adds {"error":"RequestValidationError","detail":[...]}.
    Invalid(Vec<ValidationIssue>),
    /// The body bytes are not UTF-8: FastAPI answers 400 {"detail":"There was an error parsing the body"}.
    /// Also used for JSON that Python reads but serde_json cannot (`NaN`, lone surrogates,
    /// `1e400`, nesting deeper than 128).
    Unreadable,
}

/// The body of a route whose body is a pydantic model: its members, or the issue FastAPI
/// reports when there is no body or it is not an object.
pub fn read_model_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, BodyError> {
    if body.is_empty() {
        return Err(BodyError::Invalid(vec![
            Failure::missing().at(loc!["body"], Value::Null),
        ]));
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(BodyError::Unreadable);
    };
    let value = if is_json_media_type(content_type) {
        read_json(text)?
    } else {
        // FastAPI hands any other body to pydantic as raw bytes, echoed back as text.
        Value::String(text.to_owned())
    };
    match value {
        // A JSON `null` body is no body at all to FastAPI.
        Value::Null => Err(BodyError::Invalid(vec![
            Failure::missing().at(loc!["body"], Value::Null),
        ])),
        Value::Object(members) => Ok(members),
        other => Err(BodyError::Invalid(vec![
            Failure::model_attributes_type().at(loc!["body"], other),
        ])),
    }
}

/// FastAPI (>= 0.132, `strict_content_type`) parses the body as JSON only when the request
/// says it is JSON: `application/json` or `application/*+json`, parameters ignored. A
/// request without `Content-Type` is not JSON to it.
pub(super) fn is_json_media_type(content_type: Option<&str>) -> bool {
    let Some(header) = content_type else {
        return false;
    };
    let media_type = header
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((main_type, sub_type)) = media_type.split_once('/') else {
        return false;
    };
    // Python's email parser reads a malformed type as text/plain.
    if sub_type.contains('/') {
        return false;
    }
    main_type == "application" && (sub_type == "json" || sub_type.ends_with("+json"))
}

/// A JSON text read as Python's `json.loads` reads it, its syntax errors worded as pydantic
/// reports them.
pub fn read_json(text: &str) -> Result<Value, BodyError> {
    // Python decodes a body that starts with a UTF-8 byte order mark without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if exceeds_json_values(text, MAX_JSON_VALUES) {
        return Err(BodyError::Unreadable);
    }
    match serde_json::from_str(text) {
        Ok(mut value) => match normalize_numbers(&mut value) {
            Ok(()) => Ok(value),
            Err(_) => Err(BodyError::Unreadable),
        },
        Err(_) => match python_json_error(text) {
            Some((position, message)) => Err(BodyError::Invalid(vec![
                Failure::json_invalid(message).at(loc!["body", position], json!({})),
            ])),
            // Python accepts it but serde_json does not: NaN/Infinity, lone surrogates,
            // numbers beyond f64, very deep nesting. None of these can be stored or echoed as
            // Polar would, so the body is refused whole.
            None => Err(BodyError::Unreadable),
        },
    }
}

/// Python refuses to read integers longer than this many digits.
pub(super) const MAX_INT_DIGITS: usize = 4300;

/// Reads numbers as Python's `json.loads` does, so that they are stored and echoed as Polar
/// stores and echoes them: an integer keeps every digit (`-0` is `0`), any other number
/// becomes the nearest double. Fails on what Python would read as infinity or refuse
/// outright (integers of more than 4,300 digits), which no refund can hold.
fn normalize_numbers(value: &mut Value) -> Result<(), UnreadableNumber> {
    match value {
        Value::Number(number) => {
            let text = number.to_string();
            if is_integer_literal(&text) {
                if text.trim_start_matches('-').len() > MAX_INT_DIGITS {
                    return Err(UnreadableNumber);
                }
                if text == "-0" {
                    *number = serde_json::Number::from(0);
                }
            } else {
                let float = number.as_f64().ok_or(UnreadableNumber)?;
                *number = serde_json::Number::from_f64(float).ok_or(UnreadableNumber)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(normalize_numbers),
        Value::Object(members) => members.values_mut().try_for_each(normalize_numbers),
        _ => Ok(()),
    }
}

/// A number Python would read as infinity, or refuse to read.
#[derive(Debug)]
struct UnreadableNumber;

/// Whether a JSON number's text is an integer (no fraction, no exponent).
pub(super) fn is_integer_literal(text: &str) -> bool {
    !text.contains(['.', 'e', 'E'])
}

/// The most JSON values a request body may hold. A parsed value costs far more memory than
/// its text, so a 10 MiB body of tiny values would otherwise cost hundreds of MiB.
const MAX_JSON_VALUES: usize = 10_000;

/// Whether `text` holds more than `limit` JSON values (arrays, objects and their members),
/// counted without parsing.
fn exceeds_json_values(text: &str, limit: usize) -> bool {
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' | b',' => {
                    count += 1;
                    if count > limit {
                        return true;
                    }
                }
                _ => {}
            }
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// Python's JSON syntax errors
// ---------------------------------------------------------------------------------------

const EXPECTING_VALUE: &str = "Expecting value";
const EXPECTING_PROPERTY_NAME: &str = "Expecting property name enclosed in double quotes";
const EXPECTING_COLON: &str = "Expecting ':' delimiter";
const EXPECTING_COMMA: &str = "Expecting ',' delimiter";
const TRAILING_COMMA_OBJECT: &str = "Illegal trailing comma before end of object";
const TRAILING_COMMA_ARRAY: &str = "Illegal trailing comma before end of array";
const EXTRA_DATA: &str = "Extra data";
const UNTERMINATED_STRING: &str = "Unterminated string starting at";
const INVALID_CONTROL_CHARACTER: &str = "Invalid control character at";
const INVALID_ESCAPE: &str = "Invalid \\escape";
const INVALID_UNICODE_ESCAPE: &str = "Invalid \\uXXXX escape";

/// Beyond this nesting Python gives up with a `RecursionError`, not a syntax error.
const MAX_JSON_DEPTH: usize = 1000;

/// The first error Python 3.14's `json.loads` reports for `text`: the character offset
/// and the message. `None` when Python would read it.
fn python_json_error(text: &str) -> Option<(usize, &'static str)> {
    let mut scanner = JsonScanner {
        chars: text.chars().collect(),
        depth: 0,
    };
    let start = scanner.skip_whitespace(0);
    match scanner.value(start) {
        Ok(end) => {
            let end = scanner.skip_whitespace(end);
            (end != scanner.chars.len()).then_some((end, EXTRA_DATA))
        }
        Err(ScanError::Syntax(position, message)) => Some((position, message)),
        Err(ScanError::TooDeep) => None,
    }
}

enum ScanError {
    Syntax(usize, &'static str),
    TooDeep,
}

/// A syntax-only replica of CPython's C JSON scanner (`Modules/_json.c`). Each method takes
/// the position where its token starts and returns the position after it.
struct JsonScanner {
    chars: Vec<char>,
    depth: usize,
}

impl JsonScanner {
    fn at(&self, position: usize) -> Option<char> {
        self.chars.get(position).copied()
    }

    fn skip_whitespace(&self, mut position: usize) -> usize {
        while matches!(self.at(position), Some(' ' | '\t' | '\n' | '\r')) {
            position += 1;
        }
        position
    }

    fn value(&mut self, position: usize) -> Result<usize, ScanError> {
        match self.at(position) {
            Some('"') => self.string(position),
            Some('{') => self.nested(position, Self::object),
            Some('[') => self.nested(position, Self::array),
            _ => self.constant_or_number(position),
        }
    }

    fn nested(
        &mut self,
        position: usize,
        scan: fn(&mut Self, usize) -> Result<usize, ScanError>,
    ) -> Result<usize, ScanError> {
        if self.depth == MAX_JSON_DEPTH {
            return Err(ScanError::TooDeep);
        }
        self.depth += 1;
        let end = scan(self, position);
        self.depth -= 1;
        end
    }

    fn object(&mut self, open: usize) -> Result<usize, ScanError> {
        let mut position = self.skip_whitespace(open + 1);
        if self.at(position) == Some('}') {
            return Ok(position + 1);
        }
        loop {
            if self.at(position) != Some('"') {
                return Err(ScanError::Syntax(position, EXPECTING_PROPERTY_NAME));
            }
            position = self.skip_whitespace(self.string(position)?);
            if self.at(position) != Some(':') {
                return Err(ScanError::Syntax(position, EXPECTING_COLON));
            }
            position = self.skip_whitespace(position + 1);
            let end = self.value(position)?;
            position = self.skip_whitespace(end);
            match self.at(position) {
                Some('}') => return Ok(position + 1),
                Some(',') => {
                    let comma = position;
                    position = self.skip_whitespace(position + 1);
                    if self.at(position) == Some('}') {
                        return Err(ScanError::Syntax(comma, TRAILING_COMMA_OBJECT));
                    }
                }
                _ => return Err(ScanError::Syntax(position, EXPECTING_COMMA)),
            }
        }
    }

    fn array(&mut self, open: usize) -> Result<usize, ScanError> {
        let mut position = self.skip_whitespace(open + 1);
        if self.at(position) == Some(']') {
            return Ok(position + 1);
        }
        loop {
            let end = self.value(position)?;
            position = self.skip_whitespace(end);
            match self.at(position) {
                Some(']') => return Ok(position + 1),
                Some(',') => {
                    let comma = position;
                    position = self.skip_whitespace(position + 1);
                    if self.at(position) == Some(']') {
                        return Err(ScanError::Syntax(comma, TRAILING_COMMA_ARRAY));
                    }
                }
                _ => return Err(ScanError::Syntax(position, EXPECTING_COMMA)),
            }
        }
    }

    fn string(&self, quote: usize) -> Result<usize, ScanError> {
        let mut position = quote + 1;
        loop {
            match self.at(position) {
                None => return Err(ScanError::Syntax(quote, UNTERMINATED_STRING)),
                Some('"') => return Ok(position + 1),
                Some('\\') => position = self.escape(quote, position)?,
                Some(character) if u32::from(character) < 0x20 => {
                    return Err(ScanError::Syntax(position, INVALID_CONTROL_CHARACTER));
                }
                Some(_) => position += 1,
            }
        }
    }

    fn escape(&self, quote: usize, backslash: usize) -> Result<usize, ScanError> {
        match self.at(backslash + 1) {
            None => Err(ScanError::Syntax(quote, UNTERMINATED_STRING)),
            Some('u') => self.unicode_escape(backslash),
            Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => Ok(backslash + 2),
            Some(_) => Err(ScanError::Syntax(backslash, INVALID_ESCAPE)),
        }
    }

    /// `\uXXXX`, possibly followed by the low half of a surrogate pair. CPython wants at
    /// least one character after the four digits, and reports at the `u`.
    fn unicode_escape(&self, backslash: usize) -> Result<usize, ScanError> {
        let digits = backslash + 2;
        let end = digits + 4;
        let invalid = ScanError::Syntax(backslash + 1, INVALID_UNICODE_ESCAPE);
        if end >= self.chars.len() {
            return Err(invalid);
        }
        let code = self.hex4(digits).ok_or(invalid)?;
        let is_high_surrogate = (0xD800..0xDC00).contains(&code);
        let pair_follows = end + 6 < self.chars.len()
            && self.at(end) == Some('\\')
            && self.at(end + 1) == Some('u');
        if is_high_surrogate && pair_follows {
            let low = self
                .hex4(end + 2)
                .ok_or(ScanError::Syntax(end + 1, INVALID_UNICODE_ESCAPE))?;
            if (0xDC00..0xE000).contains(&low) {
                return Ok(end + 6);
            }
        }
        Ok(end)
    }

    fn hex4(&self, start: usize) -> Option<u32> {
        (start..start + 4).try_fold(0, |code, position| {
            Some(code * 16 + self.at(position)?.to_digit(16)?)
        })
    }

    fn constant_or_number(&self, position: usize) -> Result<usize, ScanError> {
        // Python reads these constants too, though JSON has no such values.
        for constant in ["null", "true", "false", "NaN", "Infinity", "-Infinity"] {
            if self.starts_with(position, constant) {
                return Ok(position + constant.len());
            }
        }
        self.number(position)
    }

    fn starts_with(&self, position: usize, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(offset, character)| self.at(position + offset) == Some(character))
    }

    fn number(&self, start: usize) -> Result<usize, ScanError> {
        let mut position = start;
        if self.at(position) == Some('-') {
            position += 1;
        }
        match self.at(position) {
            Some('0') => position += 1,
            Some('1'..='9') => position = self.skip_digits(position + 1),
            _ => return Err(ScanError::Syntax(start, EXPECTING_VALUE)),
        }
        if self.at(position) == Some('.') && self.is_digit(position + 1) {
            position = self.skip_digits(position + 2);
        }
        if matches!(self.at(position), Some('e' | 'E')) {
            let mut exponent = position + 1;
            if matches!(self.at(exponent), Some('+' | '-')) {
                exponent += 1;
            }
            // Without digits the `e` is not part of the number.
            if self.is_digit(exponent) {
                position = self.skip_digits(exponent);
            }
        }
        Ok(position)
    }

    fn is_digit(&self, position: usize) -> bool {
        self.at(position)
            .is_some_and(|character| character.is_ascii_digit())
    }

    fn skip_digits(&self, mut position: usize) -> usize {
        while self.is_digit(position) {
            position += 1;
        }
        position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_python_reads_them() {
        let mut value: Value =
            serde_json::from_str(r#"[100000000000000000000, -0, 1E2, 0.1, 1e-7]"#).unwrap();
        normalize_numbers(&mut value).unwrap();
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            "[100000000000000000000,0,100.0,0.1,1e-7]"
        );
        let mut overflow: Value = serde_json::from_str("[1e400]").unwrap();
        assert!(normalize_numbers(&mut overflow).is_err());
        let mut long: Value = serde_json::from_str(&"9".repeat(4301)).unwrap();
        assert!(normalize_numbers(&mut long).is_err());
    }

    #[test]
    fn counts_json_values_outside_strings() {
        assert!(!exceeds_json_values(r#"{"a": [1, 2, 3]}"#, 5));
        assert!(exceeds_json_values(r#"{"a": [1, 2, 3, 4, 5, 6]}"#, 5));
        assert!(!exceeds_json_values(r#"{"a": "[,,,,,,,,,,\",,,,,,"}"#, 2));
    }

    #[test]
    fn json_media_types() {
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            " application/json ;charset=UTF-8",
            "application/vnd.api+json",
            "application/merge-patch+json",
        ] {
            assert!(is_json_media_type(Some(content_type)), "{content_type}");
        }
        for content_type in [
            "",
            "text/plain",
            "application/xml",
            "text/json",
            "application/json/x",
            "json",
        ] {
            assert!(!is_json_media_type(Some(content_type)), "{content_type}");
        }
        assert!(!is_json_media_type(None));
    }

    #[test]
    fn python_json_errors() {
        // Expected values are CPython 3.14's `json.loads` (message, position).
        let cases: &[(&str, &str, usize)] = &[
            ("", EXPECTING_VALUE, 0),
            ("   ", EXPECTING_VALUE, 3),
            ("{", EXPECTING_PROPERTY_NAME, 1),
            ("{42", EXPECTING_PROPERTY_NAME, 1),
            ("[{]", EXPECTING_PROPERTY_NAME, 2),
            ("[", EXPECTING_VALUE, 1),
            (r#"{"spam","#, EXPECTING_COLON, 7),
            (r#"{"spam"}"#, EXPECTING_COLON, 7),
            (r#"[{"spam"]"#, EXPECTING_COLON, 8),
            (r#"{"spam":}"#, EXPECTING_VALUE, 8),
            (r#"[{"spam":]"#, EXPECTING_VALUE, 9),
            (r#"{"spam":42 "ham""#, EXPECTING_COMMA, 11),
            (r#"[{"spam":42]"#, EXPECTING_COMMA, 11),
            (r#"{"spam":42,}"#, TRAILING_COMMA_OBJECT, 10),
            (r#"{"spam":42 , }"#, TRAILING_COMMA_OBJECT, 11),
            ("[123  , ]", TRAILING_COMMA_ARRAY, 6),
            (r#"{"a":01}"#, EXPECTING_COMMA, 6),
            (r#"{"a":1}x"#, EXTRA_DATA, 7),
            ("{\"a\":1}\n\n x", EXTRA_DATA, 10),
            (r#"{"a":"x"#, UNTERMINATED_STRING, 5),
            (r#"{"a":"\q"}"#, INVALID_ESCAPE, 6),
            (r#"{"a":"\uZZZZ"}"#, INVALID_UNICODE_ESCAPE, 7),
            (r#"{"a":"\u12"#, INVALID_UNICODE_ESCAPE, 7),
            (r#"{"a":"\ud800\uZZZZ"}"#, INVALID_UNICODE_ESCAPE, 13),
            ("{\"a\":\"a\tb\"}", INVALID_CONTROL_CHARACTER, 7),
            ("{\"a\":\"\u{1F600}\"x}", EXPECTING_COMMA, 8),
            ("[-]", EXPECTING_VALUE, 1),
            ("[1.]", EXPECTING_COMMA, 2),
            ("[1e]", EXPECTING_COMMA, 2),
            ("[nul]", EXPECTING_VALUE, 1),
            ("[1,2", EXPECTING_COMMA, 4),
        ];
        for (text, message, position) in cases {
            assert_eq!(
                python_json_error(text),
                Some((*position, *message)),
                "{text}"
            );
        }
    }

    #[test]
    fn python_reads_what_serde_json_refuses() {
        for text in [
            "[NaN, Infinity, -Infinity]",
            r#"["\ud800"]"#,
            "[1e400]",
            "[1.5e+3, -0, 0.25]",
            r#"{"a":"\ud83d\ude00"}"#,
        ] {
            assert_eq!(python_json_error(text), None, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
        assert_eq!(python_json_error(&deep), None);
    }
}
