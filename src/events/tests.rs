//! Unit tests of the event record's transitions.
