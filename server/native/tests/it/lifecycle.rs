//! lifecycle tests.
use crate::support::*;
