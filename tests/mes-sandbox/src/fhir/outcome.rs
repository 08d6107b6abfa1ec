//! FHIR OperationOutcome, the body of every API Mesure error.
//!
//! The MES error tables give, per error, an HTTP status, a "Message" (e.g. "Bundle not
//! valid."), an "Outcome type" (the issue code) and an "Outcome diagnostic". The sandbox puts
//! the diagnostic in `issue.diagnostics` and the message in `issue.details.text`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// FHIR `IssueType` codes the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssueType {
    Invalid,
    Required,
    Value,
    NotSupported,
    Incomplete,
    Login,
    Forbidden,
    Conflict,
    Security,
    Throttled,
    Transient,
    Exception,
    NotFound,
}

impl IssueType {
    fn code(self) -> &'static str {
        match self {
            IssueType::Invalid => "invalid",
            IssueType::Required => "required",
            IssueType::Value => "value",
            IssueType::NotSupported => "not-supported",
            IssueType::Incomplete => "incomplete",
            IssueType::Login => "login",
            IssueType::Forbidden => "forbidden",
            IssueType::Conflict => "conflict",
            IssueType::Security => "security",
            IssueType::Throttled => "throttled",
            IssueType::Transient => "transient",
            IssueType::Exception => "exception",
            IssueType::NotFound => "not-found",
        }
    }
}

/// The "Message" column of the MES error tables.
pub(crate) mod category {
    pub(crate) const BUNDLE: &str = "Bundle not valid.";
    pub(crate) const LINK: &str = "Observation and Device link not valid.";
    pub(crate) const OBSERVATION: &str = "Observation resource not valid.";
    pub(crate) const DEVICE: &str = "Device resource not valid.";
    pub(crate) const REQUEST: &str = "Request not valid";
}

/// One issue (always severity `error`: only fatal and error issues fail a request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) code: IssueType,
    pub(crate) category: Option<&'static str>,
    pub(crate) diagnostics: String,
    pub(crate) expression: Option<String>,
}

impl Issue {
    /// An issue in one of the MES message categories.
    pub(crate) fn new(
        category: &'static str,
        code: IssueType,
        diagnostics: impl Into<String>,
    ) -> Self {
        Self {
            code,
            category: Some(category),
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// Adds the FHIRPath of the offending element.
    pub(crate) fn at(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    fn to_json(&self) -> Value {
        let mut issue = json!({ "severity": "error", "code": self.code.code() });
        if let Some(obj) = issue.as_object_mut() {
            if let Some(category) = self.category {
                obj.insert("details".into(), json!({ "text": category }));
            }
            obj.insert(
                "diagnostics".into(),
                Value::String(self.diagnostics.clone()),
            );
            if let Some(expression) = &self.expression {
                obj.insert("expression".into(), json!([expression]));
            }
        }
        issue
    }
}

/// An OperationOutcome made of error issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OperationOutcome {
    pub(crate) issues: Vec<Issue>,
}

impl OperationOutcome {
    /// A single uncategorised error.
    pub(crate) fn error(code: IssueType, diagnostics: impl Into<String>) -> Self {
        Self {
            issues: vec![Issue {
                code,
                category: None,
                diagnostics: diagnostics.into(),
                expression: None,
            }],
        }
    }

    /// An outcome with the given issues.
    pub(crate) fn of(issues: Vec<Issue>) -> Self {
        Self { issues }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "resourceType": "OperationOutcome",
            "issue": self.issues.iter().map(Issue::to_json).collect::<Vec<_>>()
        })
    }

    /// The outcome as an HTTP response with `status`.
    pub(crate) fn into_response_with(self, status: StatusCode) -> Response {
        fhir_json(status, &self.to_json())
    }
}

/// A FHIR JSON response.
pub(crate) fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json;charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_carries_message_diagnostic_and_expression() {
        let oo = OperationOutcome::of(vec![
            Issue::new(category::BUNDLE, IssueType::NotSupported, "x").at("Bundle.entry[0]"),
        ]);
        let v = oo.to_json();
        assert_eq!(v["issue"][0]["severity"], "error");
        assert_eq!(v["issue"][0]["code"], "not-supported");
        assert_eq!(v["issue"][0]["details"]["text"], "Bundle not valid.");
        assert_eq!(v["issue"][0]["diagnostics"], "x");
        assert_eq!(v["issue"][0]["expression"][0], "Bundle.entry[0]");
    }
}
