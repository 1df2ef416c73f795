//! duplex
