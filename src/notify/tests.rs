//! Unit tests of the outbox and the sinks.
