//! One POSTed JSON-RPC message, optional header lines first, against read-only servers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atomicwork_mcp::fuzzing::mcp_message(data));
