//! Upstream rate-limit headers, normalised and passed on.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atomicwork_mcp::fuzzing::rate_limit_headers(data));
