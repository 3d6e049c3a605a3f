//! exec tests.
use crate::support::*;
