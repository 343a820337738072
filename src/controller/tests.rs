//! Mocked-API-server reconcile scenarios.
