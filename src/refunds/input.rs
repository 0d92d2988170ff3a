// TEMPORARY STUB: replaced by the real parser.
use super::model::{ListQuery, RefundCreate};
use crate::http::validation::ValidationIssue;
pub enum BodyError {
    Invalid(Vec<ValidationIssue>),
    Unreadable,
}
pub fn parse_refund_create(
    _content_type: Option<&str>,
    _body: &[u8],
) -> Result<RefundCreate, BodyError> {
    todo!()
}
pub fn parse_list_query(_raw_query: Option<&str>) -> Result<ListQuery, Vec<ValidationIssue>> {
    todo!()
}
