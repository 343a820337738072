//! The metrics exposition both roles share: each keeps its own registry
//! (`dataplane::metrics`, `controller::metrics`) and writes it the same way.

use prometheus_client::registry::Registry;

/// The content type of the data plane's and the controller's `/metrics`.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry in the text exposition format; empty if it cannot be written.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}
