//! Cross-role integration tests.
