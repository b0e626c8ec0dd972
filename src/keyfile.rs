//! Key files (being written).
