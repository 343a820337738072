//! Arbitrary JSON arguments through every catalog tool's validation and request building.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atomicwork_mcp::fuzzing::tool_arguments(data));
