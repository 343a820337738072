//! The client span of each Atomicwork HTTP request (each retry is a span of its own), as
//! the OpenTelemetry HTTP client conventions name it. The span is named and labelled
//! from the tool's path template, never from the URL sent: path segments and the query
//! carry argument values.

use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};

use super::PreparedRequest;
use crate::core::catalog::Tool;
use crate::core::server::Target;
use crate::telemetry::{SpanGuard, Tracing, attr};

/// The `error.type` of an attempt cut off because the MCP request's deadline passed.
const CANCELLED: &str = "cancelled";

/// Starts the span of attempt number `attempt` (from 1) under the current context, and
/// returns it with the headers that name it to Atomicwork.
pub(super) fn start_attempt(
    tracing: &Tracing,
    tool: &Tool,
    prepared: &PreparedRequest,
    target: &Target,
    attempt: u32,
) -> (SpanGuard, Vec<(http::HeaderName, http::HeaderValue)>) {
    let method = prepared.method.as_str();
    let template = tool.source.path.as_str();
    let mut attributes = vec![
        KeyValue::new(attr::HTTP_REQUEST_METHOD, method),
        KeyValue::new(attr::URL_TEMPLATE, template.to_string()),
        KeyValue::new(attr::SERVER_ADDRESS, target.base_url.host().to_string()),
        KeyValue::new(attr::SERVER_PORT, i64::from(target.base_url.port())),
        KeyValue::new(attr::GEN_AI_TOOL_NAME, tool.name().to_string()),
    ];
    if attempt > 1 {
        attributes.push(KeyValue::new(
            attr::HTTP_REQUEST_RESEND_COUNT,
            i64::from(attempt - 1),
        ));
    }
    let cx = tracing.start_span(
        &Context::current(),
        SpanKind::Client,
        format!("{method} {template}"),
        None,
        attributes,
    );
    let headers = tracing.outgoing(&cx);
    (SpanGuard::new(cx, CANCELLED.to_string()), headers)
}

/// Ends an attempt's span: `status` when an answer came (an error from 400 up), or the
/// kind of transport failure.
pub(super) fn end_attempt(span: SpanGuard, status: Option<u16>, failure: Option<&'static str>) {
    let mut more = Vec::new();
    let error = match (status, failure) {
        (Some(s), _) => {
            more.push(KeyValue::new(attr::HTTP_RESPONSE_STATUS_CODE, i64::from(s)));
            (s >= 400).then(|| s.to_string())
        }
        (None, Some(f)) => Some(f.to_string()),
        (None, None) => None,
    };
    span.finish(error, more);
}
