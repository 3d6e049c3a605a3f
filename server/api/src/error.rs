//! The one place core errors become GraphQL errors. Every error carries a
//! stable `extensions.code`; exec failures also carry what Dagger's SDKs
//! read: `_type: "EXEC_ERROR"`, `cmd`, `exitCode`, `stdout`, `stderr`.

use async_graphql::ErrorExtensions as _;
use gantry_core::Error;

pub(crate) fn to_graphql(error: Error) -> async_graphql::Error {
    let code = error.code();
    let message = error.to_string();
    let base = async_graphql::Error::new(message);
    match error.exec_failure() {
        Some(failure) => base.extend_with(|_, ext| {
            ext.set("_type", "EXEC_ERROR");
            ext.set("code", code);
            ext.set("cmd", failure.cmd.clone());
            ext.set("exitCode", failure.exit_code);
            ext.set("stdout", failure.stdout.clone());
            ext.set("stderr", failure.stderr.clone());
        }),
        None => base.extend_with(|_, ext| ext.set("code", code)),
    }
}

/// Shorthand for resolvers: `core_result.map_err(gql)?`.
pub(crate) fn gql(error: Error) -> async_graphql::Error {
    to_graphql(error)
}
