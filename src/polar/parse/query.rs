//! Query strings and path parameters as Starlette splits them and FastAPI validates them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Failure;
use super::datetime::check_datetime_str;
use super::lax::{check_bool_str, check_int_str, check_uuid4_str, parse_uuid};
use crate::loc;
use crate::polar::validation::ValidationIssue;

/// The query's `(key, value)` pairs in order, decoded as Starlette decodes them.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw_query: &str) -> Self {
        let pairs = form_urlencoded::parse(raw_query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        Self(pairs)
    }

    /// Every value of a repeated key (a list parameter).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The value of a single parameter: the last occurrence wins.
    pub fn last(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// The label pydantic gives the list branch of `MultipleQueryFilter[UUID4]`.
pub(crate) const UUID_LIST_BRANCH: &str = "json-or-python[json=list[uuid],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]";

pub fn query_positive_int(
    params: &QueryParams,
    key: &str,
    default: i64,
) -> Result<i64, Vec<ValidationIssue>> {
    let Some(text) = params.last(key) else {
        return Ok(default);
    };
    let number = check_int_str(text).and_then(|number| {
        if number <= 0 {
            return Err(Failure::greater_than(0));
        }
        Ok(number)
    });
    number.map_err(|failure| vec![failure.at(loc!["query", key], Value::from(text))])
}

pub fn query_uuid_list(params: &QueryParams, key: &str) -> Result<Vec<Uuid>, Vec<ValidationIssue>> {
    let values = params.all(key);
    let mut ids = Vec::new();
    let mut item_issues = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match check_uuid4_str(value) {
            Ok(id) => ids.push(id),
            Err(failure) => {
                let loc = loc!["query", key, UUID_LIST_BRANCH, index];
                item_issues.push(failure.at(loc, Value::from(value.as_str())));
            }
        }
    }
    if item_issues.is_empty() {
        return Ok(ids);
    }
    // The filter is a union of one UUID and a list of them: both branches report.
    let mut issues = vec![Failure::uuid_type().at(loc!["query", key, "uuid"], Value::from(values))];
    issues.extend(item_issues);
    Err(issues)
}

/// Free-text filter values. PostgreSQL text cannot hold NUL, so such a value is refused
/// the way Polar refuses NUL in bodies, instead of failing in the database.
pub fn query_string_list(
    params: &QueryParams,
    key: &str,
) -> Result<Vec<String>, Vec<ValidationIssue>> {
    let values = params.all(key);
    let issues: Vec<ValidationIssue> = values
        .iter()
        .enumerate()
        .filter(|(_, value)| value.contains('\0'))
        .map(|(index, value)| Failure::nul_character().at(loc!["query", key, index], json!(value)))
        .collect();
    if issues.is_empty() {
        Ok(values)
    } else {
        Err(issues)
    }
}

pub fn query_optional_bool(
    params: &QueryParams,
    key: &str,
) -> Result<Option<bool>, Vec<ValidationIssue>> {
    let Some(text) = params.last(key) else {
        return Ok(None);
    };
    check_bool_str(text)
        .map(Some)
        .map_err(|failure| vec![failure.at(loc!["query", key], Value::from(text))])
}

/// A repeated enum filter (`MultipleQueryFilter[SomeEnum]`) against the values it allows.
/// Like the UUID filter it is a union of one value and a list: both branches report.
pub fn query_enum_list<T: Copy>(
    params: &QueryParams,
    key: &str,
    enum_name: &str,
    allowed: &[(&str, T)],
) -> Result<Vec<T>, Vec<ValidationIssue>> {
    let values = params.all(key);
    let expected = expected(allowed);
    let mut chosen = Vec::new();
    let mut item_issues = Vec::new();
    let list_branch = format!(
        "json-or-python[json=list[str-enum[{enum_name}]],python=chain[is-instance[Sequence],function-wrap[sequence_validator()]]]"
    );
    for (index, value) in values.iter().enumerate() {
        match allowed.iter().find(|(name, _)| name == value) {
            Some((_, item)) => chosen.push(*item),
            None => item_issues.push(Failure::enum_error(&expected).at(
                loc!["query", key, list_branch.as_str(), index],
                Value::from(value.as_str()),
            )),
        }
    }
    if item_issues.is_empty() {
        return Ok(chosen);
    }
    let single_branch = format!("str-enum[{enum_name}]");
    let mut issues = vec![
        Failure::enum_error(&expected).at(loc!["query", key, single_branch], Value::from(values)),
    ];
    issues.extend(item_issues);
    Err(issues)
}

/// An optional `datetime` parameter: the last occurrence wins.
pub fn query_datetime(
    params: &QueryParams,
    key: &str,
) -> Result<Option<DateTime<Utc>>, Vec<ValidationIssue>> {
    let Some(text) = params.last(key) else {
        return Ok(None);
    };
    check_datetime_str(text)
        .map(Some)
        .map_err(|failure| vec![failure.at(loc!["query", key], Value::from(text))])
}

/// `metadata[key]=value` pairs, as Polar collects them: every parameter whose name starts
/// with `metadata[key]`, grouped by key in the order keys first appear. A key with several
/// values matches any of them. NUL characters are refused (PostgreSQL text cannot hold them).
pub fn query_metadata(
    params: &QueryParams,
) -> Result<Vec<(String, Vec<String>)>, Vec<ValidationIssue>> {
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    let mut issues = Vec::new();
    for (name, value) in &params.0 {
        let Some(key) = name
            .strip_prefix("metadata[")
            .and_then(|rest| rest.split_once(']'))
            .map(|(key, _)| key)
            .filter(|key| !key.is_empty())
        else {
            continue;
        };
        if key.contains('\0') || value.contains('\0') {
            issues.push(Failure::nul_character().at(loc!["query", name.as_str()], json!(value)));
            continue;
        }
        match filters.iter_mut().find(|(existing, _)| existing == key) {
            Some((_, values)) => values.push(value.clone()),
            None => filters.push((key.to_owned(), vec![value.clone()])),
        }
    }
    if issues.is_empty() {
        Ok(filters)
    } else {
        Err(issues)
    }
}

// ---------------------------------------------------------------------------------------
// Scalar checks, in pydantic's lax mode
// ---------------------------------------------------------------------------------------

/// A repeated `sorting` parameter against the criteria an endpoint allows, in the order
/// given; `default` when absent. pydantic reports every bad criterion by its index.
pub fn query_sorting<T: Copy>(
    params: &QueryParams,
    allowed: &[(&str, T)],
    default: &[T],
) -> Result<Vec<T>, Vec<ValidationIssue>> {
    let values = params.all("sorting");
    if values.is_empty() {
        return Ok(default.to_vec());
    }
    let mut sorting = Vec::new();
    let mut issues = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match allowed.iter().find(|(name, _)| name == value) {
            Some((_, sort)) => sorting.push(*sort),
            None => issues.push(
                Failure::enum_error(&expected(allowed))
                    .at(loc!["query", "sorting", index], Value::from(value.as_str())),
            ),
        }
    }
    if issues.is_empty() {
        Ok(sorting)
    } else {
        Err(issues)
    }
}

/// The allowed values as pydantic lists them in an enum error: `'a', 'b' or 'c'`.
pub(crate) fn expected<T>(allowed: &[(&str, T)]) -> String {
    let quoted: Vec<String> = allowed
        .iter()
        .map(|(name, _)| format!("'{name}'"))
        .collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A path id, as pydantic reads a `UUID` path parameter: a bad one is a `uuid_parsing`
/// issue at `["path", name]`, worded as the body and query checks word it.
pub fn path_uuid(raw: &str, name: &str) -> Result<Uuid, Vec<ValidationIssue>> {
    parse_uuid(raw).map_err(|error| {
        vec![Failure::uuid_parsing(&error).at(loc!["path", name], Value::from(raw))]
    })
}

/// A path id declared as `UUID4`: a bad one, or one of another version, is an issue at
/// `["path", name]`.
pub fn path_uuid4(raw: &str, name: &str) -> Result<Uuid, Vec<ValidationIssue>> {
    check_uuid4_str(raw).map_err(|failure| vec![failure.at(loc!["path", name], Value::from(raw))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_errors_list_the_allowed_values_as_pydantic_does() {
        let allowed = [
            ("created_at", 0),
            ("-created_at", 1),
            ("amount", 2),
            ("-amount", 3),
        ];
        assert_eq!(
            expected(&allowed),
            "'created_at', '-created_at', 'amount' or '-amount'"
        );
        assert_eq!(expected(&[("a", 0)]), "'a'");
    }

    #[test]
    fn a_bad_path_id_is_worded_as_pydantic_words_it() {
        let issues = path_uuid("not-a-uuid", "id").unwrap_err();
        assert_eq!(
            serde_json::to_value(&issues).unwrap(),
            json!([{"type": "uuid_parsing", "loc": ["path", "id"],
                    "msg": "Input should be a valid UUID, invalid character: found `n` at 1",
                    "input": "not-a-uuid", "ctx": {"error": "invalid character: found `n` at 1"}}])
        );
        let id = "3fa85f64-5717-1562-b3fc-2c963f66afa6";
        assert_eq!(path_uuid(id, "id").unwrap().to_string(), id);
    }
}
