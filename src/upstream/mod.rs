//! Placeholder with the upstream API; replaced by the real client.
#![allow(dead_code, unused_variables)]
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::catalog::Tool;
use crate::secret::Secret;

pub const DEFAULT_MAX_RESULT_CHARS: usize = 150_000;

#[derive(Debug, thiserror::Error)]
#[error("upstream client: {0}")]
pub struct UpstreamError(String);

pub struct UpstreamOptions {
    pub default_timeout: Duration,
    pub max_file_bytes: usize,
    pub max_upload_bytes: usize,
}
impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            default_timeout: Duration::from_secs(30),
            max_file_bytes: 10 << 20,
            max_upload_bytes: 25 << 20,
        }
    }
}
pub struct Upstream;
impl Upstream {
    pub fn new(opts: UpstreamOptions) -> Result<Self, UpstreamError> {
        Ok(Upstream)
    }
    pub async fn call(
        &self,
        tool: &Tool,
        args: &Map<String, Value>,
        target: &Target,
    ) -> CallOutcome {
        CallOutcome {
            result: ToolResult::error("not implemented"),
            upstream_status: None,
            rate_limit: None,
            class: OutcomeClass::Protocol,
            attempts: 0,
            upstream_latency: Duration::ZERO,
        }
    }
}
#[derive(Clone, Debug)]
pub struct Target {
    pub base_url: String,
    pub api_key: Secret,
    pub workspace_id: Option<String>,
    pub dry_run: bool,
    pub retry: Option<RetryPolicy>,
    pub timeout: Option<Duration>,
    pub max_result_chars: usize,
    pub notice: Option<Arc<str>>,
}
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_backoff: Duration,
}
pub struct CallOutcome {
    pub result: ToolResult,
    pub upstream_status: Option<u16>,
    pub rate_limit: Option<RateLimitInfo>,
    pub class: OutcomeClass,
    pub attempts: u32,
    pub upstream_latency: Duration,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeClass {
    Ok,
    DryRun,
    InvalidArguments,
    RateLimited,
    ClientError,
    ServerError,
    Timeout,
    Connect,
    Tls,
    Protocol,
}
impl OutcomeClass {
    pub fn label(&self) -> &'static str {
        "x"
    }
}
pub struct ToolResult {
    pub content: Vec<String>,
    pub structured: Option<Value>,
    pub is_error: bool,
}
impl ToolResult {
    pub fn error(text: impl Into<String>) -> Self {
        ToolResult {
            content: vec![text.into()],
            structured: None,
            is_error: true,
        }
    }
    pub fn to_json(&self) -> Value {
        Value::Null
    }
}
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimitInfo {
    pub limit: Option<String>,
    pub remaining: Option<u64>,
    pub reset: Option<u64>,
    pub retry_after: Option<u64>,
}
impl RateLimitInfo {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![]
    }
}
