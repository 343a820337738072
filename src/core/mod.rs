//! The domain core: the tool catalog and its filters, the server as served, URL tokens,
//! secret values, tool results and the runtime record the controller hands the data
//! plane. Plain data and pure functions: nothing here knows Kubernetes, HTTP servers or
//! clients, so every other part of the crate may depend on it and it depends on none of
//! them (`tests/layout.rs` checks both).

pub mod base_url;
pub mod catalog;
pub mod confirm;
pub mod oauth;
pub mod runtime_record;
pub mod secret;
pub mod server;
pub(crate) mod token;
pub(crate) mod tool_result;
