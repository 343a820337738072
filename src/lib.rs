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
pub mod metrics;
pub mod runtime;
#[cfg(feature = "sandbox")]
pub mod sandbox;
#[cfg(test)]
mod test_support;
pub mod upstream;
