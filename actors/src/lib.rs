//! placeholder removed before commit
