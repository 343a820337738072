//! A local-mode manifest file, parsed and resolved.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atomicwork_mcp::fuzzing::manifest(data));
