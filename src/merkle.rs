//! Binary Merkle trees (being written).
