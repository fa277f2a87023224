//! golden models
