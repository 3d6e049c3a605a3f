//! The operations of the lazy DAG. Every API call that returns an object adds
//! one `Node` holding one `Op`; nothing runs until a leaf asks for a value.
//!
//! Each kind of op is a struct in a file here that implements `Operation`
//! (`eval.rs`): the inputs it reads, its encoding and its evaluation. `Op`
//! is the serialisable recipe, one variant per kind, generated from the
//! registry below, which is the only list of kinds.
//!
//! An op refers to its inputs by digest. The same encoding serves twice:
//! with inputs' node digests it gives the node's digest (its ID, stable
//! across restarts); with inputs' content keys it gives a cache key, so two
//! recipes that produce identical inputs (a retagged image, an unchanged
//! checkout) share cached results. The encoding starts with the op's tag.
//!
//! To add an op: write its struct and `Operation` impl (in a new file, or
//! beside its siblings), and add one line to the registry with a new tag.
//! Existing digests stay valid. A tag is also the recipe's `op` field in
//! JSON (`STATE/store/recipes/`), so tags and field names never change;
//! changing what an existing op encodes requires bumping `ENCODING_VERSION`.

mod changeset;
mod config;
mod directory;
mod dockerfile;
mod envfile;
mod exec;
mod file;
mod git;
mod handle;
mod host;
mod http;
mod image;
mod json;
mod mount;
mod read;
mod remove;
mod rootfs;
mod service;
mod socket;
mod terminal;

use serde::{Deserialize, Serialize};

pub use self::envfile::engine_env;
pub use self::exec::{ExecArgs, Expect};
pub(crate) use self::git::listing as git_listing;
pub use self::git::{is_commit_sha, normalize_url, short_names, GitAddress, RefSelector};
pub(crate) use self::read::stat_container_path;
pub use crate::oci::{Compression, ImageFormat, MediaTypes};
pub use crate::value::Sharing;

use crate::context::Context;
use crate::digest::{Digest, Domain};
use crate::error::Result;
use crate::eval::{encode_op, Call, Operation, Tagged};
use crate::value::{Kind, Value};

/// Generates `Op` and its dispatch from the list of kinds: `"tag" =>
/// module::Struct`.
macro_rules! registry {
    ($($tag:literal => $module:ident::$op:ident,)*) => {
        $(pub use self::$module::$op;)*

        /// A recorded API call: the recipe of one node. Serialised as JSON
        /// with the tag in `op` and the struct's fields beside it
        /// (`{"op":"withExec","parent":"sha256:…",…}`).
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "op")]
        pub enum Op {
            $(#[serde(rename = $tag)] $op($op),)*
        }

        $(impl Tagged for $op {
            const TAG: &'static str = $tag;
        })*

        $(impl ::core::convert::From<$op> for Op {
            fn from(op: $op) -> Self {
                Op::$op(op)
            }
        })*

        impl Op {
            /// The tag the encoding starts with (and the JSON `op` field).
            pub fn tag(&self) -> &'static str {
                match self {
                    $(Op::$op(_) => $tag,)*
                }
            }

            /// The kind of object this op produces.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Op::$op(_) => <$op as Operation>::KIND,)*
                }
            }

            /// The digests of the nodes this op reads.
            pub fn inputs(&self) -> Vec<Digest> {
                match self {
                    $(Op::$op(op) => op.inputs(),)*
                }
            }

            fn encode_in(
                &self,
                domain: Domain,
                input: &mut dyn FnMut(&Digest) -> Digest,
            ) -> Digest {
                match self {
                    $(Op::$op(op) => encode_op($tag, op, domain, input),)*
                }
            }

            /// Evaluates this op, whose inputs `call` holds.
            pub(crate) async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
                match self {
                    $(Op::$op(op) => op.evaluate(cx, call).await,)*
                }
            }
        }
    };
}

registry! {
    // ---- Container
    "scratch" => image::Scratch,
    "from" => image::FromImage,
    "withRootfs" => rootfs::WithRootfs,
    "withExec" => exec::WithExec,
    "withEnvVariable" => config::WithEnvVariable,
    "withoutEnvVariable" => config::WithoutEnvVariable,
    "withSecretVariable" => config::WithSecretVariable,
    "withWorkdir" => config::WithWorkdir,
    "withUser" => config::WithUser,
    "withEntrypoint" => config::WithEntrypoint,
    "withDefaultArgs" => config::WithDefaultArgs,
    "withLabel" => config::WithLabel,
    "withContent" => rootfs::WithContent,
    "withMountedDirectory" => mount::WithMountedDirectory,
    "withMountedFile" => mount::WithMountedFile,
    "withMountedCache" => mount::WithMountedCache,
    "withMountedTemp" => mount::WithMountedTemp,
    "withMountedSecret" => mount::WithMountedSecret,
    "withoutMount" => mount::WithoutMount,
    "withRegistryAuth" => config::WithRegistryAuth,
    "withoutRegistryAuth" => config::WithoutRegistryAuth,
    "import" => image::Import,
    "withServiceBinding" => service::WithServiceBinding,
    "withExposedPort" => service::WithExposedPort,
    "withoutExposedPort" => service::WithoutExposedPort,
    "withUnixSocket" => socket::WithUnixSocket,
    "withoutUnixSocket" => socket::WithoutUnixSocket,
    "dockerBuild" => dockerfile::DockerBuild,
    "withDockerHealthcheck" => config::WithHealthcheck,
    "withSymlink" => rootfs::ContainerWithSymlink,
    "withFiles" => rootfs::WithFiles,
    "withoutPaths" => remove::WithoutPaths,
    "withoutWorkdir" => config::WithoutWorkdir,
    "withoutLabel" => config::WithoutLabel,
    "withoutSecretVariable" => config::WithoutSecretVariable,
    "withAnnotation" => config::WithAnnotation,
    "withVolatileVariable" => config::WithVolatileVariable,
    "containerWithError" => config::ContainerWithError,
    "withEnvFileVariables" => envfile::WithEnvFileVariables,
    "hostContainerImage" => image::HostContainerImage,
    "withDefaultTerminalCmd" => terminal::WithDefaultTerminalCmd,
    // ---- Directory
    "emptyDirectory" => directory::EmptyDirectory,
    "directoryWithNewFile" => directory::DirectoryWithNewFile,
    "directoryWithNewDirectory" => directory::DirectoryWithNewDirectory,
    "directoryWithFile" => directory::DirectoryWithFile,
    "directoryWithDirectory" => directory::DirectoryWithDirectory,
    "directoryWithoutFile" => directory::DirectoryWithoutFile,
    "directoryWithoutDirectory" => directory::DirectoryWithoutDirectory,
    "directoryDiff" => directory::DirectoryDiff,
    "directoryWithTimestamps" => directory::DirectoryWithTimestamps,
    "directoryChown" => directory::DirectoryChown,
    "subdirectory" => directory::Subdirectory,
    "containerDirectory" => read::ContainerDirectory,
    "containerRootfs" => read::ContainerRootfs,
    "hostDirectory" => host::HostDirectory,
    "gitTree" => git::GitTree,
    "directoryWithSymlink" => directory::DirectoryWithSymlink,
    "directoryWithFiles" => directory::DirectoryWithFiles,
    "directoryWithoutFiles" => directory::DirectoryWithoutFiles,
    "directoryFilter" => directory::DirectoryFilter,
    "directoryWithPatch" => directory::DirectoryWithPatch,
    "directoryWithPatchFile" => directory::DirectoryWithPatchFile,
    "directoryWithChanges" => directory::DirectoryWithChanges,
    "directoryWithError" => directory::DirectoryWithError,
    "changesetDirectory" => changeset::ChangesetDirectory,
    // ---- File
    "newFile" => file::NewFile,
    "directoryFile" => file::DirectoryFile,
    "containerFile" => read::ContainerFile,
    "fileWithName" => file::FileWithName,
    "fileWithTimestamps" => file::FileWithTimestamps,
    "fileChown" => file::FileChown,
    "hostFile" => host::HostFile,
    "asTarball" => image::AsTarball,
    "fileWithReplaced" => file::FileWithReplaced,
    "changesetAsPatch" => changeset::ChangesetAsPatch,
    "envFileAsFile" => envfile::EnvFileAsFile,
    "http" => http::Http,
    // ---- Secret and cache volume
    "secret" => handle::Secret,
    "cacheVolume" => handle::CacheVolume,
    // ---- Service and socket
    "asService" => service::AsService,
    "serviceWithHostname" => service::ServiceWithHostname,
    "hostService" => service::HostService,
    "hostTunnel" => service::HostTunnel,
    "hostUnixSocket" => socket::HostUnixSocket,
    // ---- Changeset
    "directoryChanges" => changeset::DirectoryChanges,
    "emptyChangeset" => changeset::EmptyChangeset,
    "changesetMerge" => changeset::ChangesetMerge,
    // ---- EnvFile
    "envFile" => envfile::NewEnvFile,
    "fileAsEnvFile" => envfile::FileAsEnvFile,
    "envFileWithVariable" => envfile::EnvFileWithVariable,
    "envFileWithoutVariable" => envfile::EnvFileWithoutVariable,
    "envFileNamespace" => envfile::EnvFileNamespace,
    // ---- JSONValue
    "jsonLiteral" => json::JsonLiteral,
    "fileAsJson" => json::FileAsJson,
    "jsonField" => json::JsonField,
    "jsonWithField" => json::JsonWithField,
    "jsonItem" => json::JsonItem,
    // ---- Git
    "git" => git::Git,
    "directoryAsGit" => git::AsGit,
    "gitRef" => git::GitRef,
    "gitUncommitted" => git::GitUncommitted,
}

impl Op {
    /// The node digest: this op over its inputs' node digests.
    pub fn digest(&self) -> Digest {
        self.encode_in(Domain::Op, &mut |digest| *digest)
    }

    /// A cache key: this op over whatever `input_key` maps each input to.
    pub fn key_with(&self, input_key: &mut dyn FnMut(&Digest) -> Digest) -> Digest {
        self.encode_in(Domain::Key, input_key)
    }
}

/// A node of the DAG: an op and its digest, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub digest: Digest,
    pub op: Op,
}

impl Node {
    pub fn new(op: impl Into<Op>) -> Self {
        let op = op.into();
        Self {
            digest: op.digest(),
            op,
        }
    }

    pub fn kind(&self) -> Kind {
        self.op.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_recipes_have_equal_digests() {
        let base = Node::new(Scratch { platform: None });
        let a = Op::from(WithEnvVariable {
            parent: base.digest,
            name: "A".into(),
            value: "1".into(),
            expand: false,
        });
        assert_eq!(a.digest(), a.clone().digest());
        let b = Op::from(WithEnvVariable {
            parent: base.digest,
            name: "A".into(),
            value: "2".into(),
            expand: false,
        });
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn cache_key_follows_input_keys_not_recipes() {
        let p1 = Node::new(Scratch { platform: None }).digest;
        let p2 = Node::new(Scratch {
            platform: Some("linux/amd64".into()),
        })
        .digest;
        let exec = |parent| {
            Op::from(WithExec {
                parent,
                exec: ExecArgs::default(),
            })
        };
        let same = Digest::of_bytes(b"same content");
        assert_ne!(exec(p1).digest(), exec(p2).digest());
        assert_eq!(
            exec(p1).key_with(&mut |_| same),
            exec(p2).key_with(&mut |_| same)
        );
    }

    #[test]
    fn recipes_round_trip_through_json() {
        let op = Op::from(WithExec {
            parent: Node::new(EmptyDirectory {}).digest,
            exec: ExecArgs {
                args: vec!["echo".into()],
                ..ExecArgs::default()
            },
        });
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
    }
}
