//! atomicwork-mcp: `AtomicworkMcpServer` resources in, filtered MCP endpoints out.
//!
//! The folders follow the roles, and every arrow points inward, towards `core`:
//!
//! - [`core`]: the tool catalog, the server as served, tokens, secret values, tool
//!   results. No Kubernetes, no HTTP.
//! - [`k8s`]: the resource, its schema checks, resolving it (and its Secrets) into a
//!   served server, the token Secret's format, the runtime record's Secret, the watch
//!   scope.
//! - [`upstream`]: the Atomicwork REST client.
//! - [`mcp`]: the protocol: JSON-RPC, revisions, methods, the tools/call flow.
//! - [`oauth`]: checking OAuth access tokens: issuer discovery, signing keys, signatures
//!   and claims, verified tokens remembered until they expire.
//! - [`controller`]: reconciles resources into token Secrets, runtime records, status and
//!   Events.
//! - [`dataplane`]: serves MCP over HTTP from a registry its feed keeps current from the
//!   runtime records in its own namespace, and nothing else.
//! - [`local`]: the data plane fed from manifest files, with the optional sandbox tenant.
//! - [`runtime`]: which roles run, the signals that stop them; [`cli`]: the commands.
//!
//! Items are `pub(crate)` unless the integration tests, benches or fuzz targets use them.
#![forbid(unsafe_code)]
pub mod cli;
pub mod controller;
pub mod core;
pub mod dataplane;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod k8s;
pub mod local;
pub mod mcp;
pub(crate) mod metrics;
pub mod oauth;
pub mod runtime;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod upstream;
