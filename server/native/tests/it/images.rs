//! images tests.
use crate::support::*;
