//! The Kubernetes object model: the `AtomicworkMcpServer` resource and its schema checks,
//! resolving a resource and the Secrets it names into a served server, the token
//! Secret's format, the runtime record's Secret form and the watch scope. Shared by the
//! controller, the data plane's feed and local mode, so a manifest means the same
//! everywhere; depends only on `core`.

pub mod crd;
pub mod resolve;
pub mod runtime_record;
pub mod scope;
pub(crate) mod spec_check;
pub(crate) mod token_secret;
pub(crate) mod yaml_lines;
