#![forbid(unsafe_code)]
pub mod cli;
pub mod connections;
pub mod controller;
pub mod core;
pub mod crd;
pub mod dataplane;
pub mod discovery;
pub mod fuzzing;
pub mod local;
pub mod manifest;
pub mod mcp;
pub mod metrics;
pub mod registry;
pub mod resolve;
pub mod sandbox;
pub mod spec_check;
#[cfg(test)]
mod test_support;
pub mod upstream;
pub mod yaml_lines;
