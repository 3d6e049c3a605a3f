//! The operations of the lazy DAG. Every API call that returns an object adds
//! one `Node` holding one `Op`; nothing runs until a leaf asks for a value.
//!
//! An op refers to its inputs by digest. The same `encode` serves twice: with
//! inputs' recipe digests it gives the node's digest (its ID, stable across
//! restarts); with inputs' content keys it gives a cache key, so two recipes
//! that produce identical inputs (a retagged image, an unchanged checkout)
//! share cached results. Add a variant with a new tag string: existing
//! digests stay valid. Changing an existing variant's encoding requires
//! bumping `ENCODING_VERSION`.

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Encoder};

/// The type of object a node evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Container,
    Directory,
    File,
    Secret,
    CacheVolume,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Container => "Container",
            Kind::Directory => "Directory",
            Kind::File => "File",
            Kind::Secret => "Secret",
            Kind::CacheVolume => "CacheVolume",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Kind::Container,
            Kind::Directory,
            Kind::File,
            Kind::Secret,
            Kind::CacheVolume,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
}

/// Which exit codes a `withExec` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Expect {
    #[default]
    Success,
    Failure,
    Any,
}

impl Expect {
    /// Dagger's rule: 128-191 (killed by a signal) always fails.
    pub fn allows(self, code: i64) -> bool {
        let signalled = (128..=191).contains(&code);
        match self {
            Expect::Success => code == 0,
            Expect::Failure => code != 0 && !signalled && (0..=255).contains(&code),
            Expect::Any => !signalled && (0..=255).contains(&code),
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Expect::Success => "success",
            Expect::Failure => "failure",
            Expect::Any => "any",
        }
    }
}

/// How concurrent execs share a cache volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

impl Sharing {
    fn tag(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        }
    }
}

/// `withExec`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExecArgs {
    pub args: Vec<String>,
    pub use_entrypoint: bool,
    pub stdin: String,
    pub redirect_stdin: String,
    pub redirect_stdout: String,
    pub redirect_stderr: String,
    pub expect: Expect,
    pub expand: bool,
}

/// A recorded API call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Op {
    // ---- Container
    /// `Query.container`: an empty container.
    Scratch {
        platform: Option<String>,
    },
    From {
        parent: Digest,
        address: String,
    },
    WithRootfs {
        parent: Digest,
        directory: Digest,
    },
    WithExec {
        parent: Digest,
        exec: ExecArgs,
    },
    WithEnvVariable {
        parent: Digest,
        name: String,
        value: String,
        expand: bool,
    },
    WithoutEnvVariable {
        parent: Digest,
        name: String,
    },
    WithSecretVariable {
        parent: Digest,
        name: String,
        secret: Digest,
    },
    WithWorkdir {
        parent: Digest,
        path: String,
    },
    WithUser {
        parent: Digest,
        name: String,
    },
    WithEntrypoint {
        parent: Digest,
        args: Vec<String>,
        keep_default_args: bool,
    },
    WithDefaultArgs {
        parent: Digest,
        args: Vec<String>,
    },
    WithLabel {
        parent: Digest,
        name: String,
        value: String,
    },
    /// `Container.withNewFile`, `withFile`, `withDirectory`: put content into
    /// the root filesystem at `path` (a file's or a directory's destination).
    WithContent {
        parent: Digest,
        path: String,
        source: Digest,
        permissions: Option<u32>,
        owner: String,
        include: Vec<String>,
        exclude: Vec<String>,
    },
    WithMountedDirectory {
        parent: Digest,
        path: String,
        source: Digest,
        read_only: bool,
    },
    WithMountedFile {
        parent: Digest,
        path: String,
        source: Digest,
    },
    WithMountedCache {
        parent: Digest,
        path: String,
        cache: Digest,
        source: Option<Digest>,
        sharing: Option<Sharing>,
        owner: String,
    },
    WithMountedTemp {
        parent: Digest,
        path: String,
        size: Option<u64>,
    },
    WithMountedSecret {
        parent: Digest,
        path: String,
        secret: Digest,
        mode: u32,
    },
    WithoutMount {
        parent: Digest,
        path: String,
    },
    WithRegistryAuth {
        parent: Digest,
        address: String,
        username: String,
        secret: Digest,
    },
    WithoutRegistryAuth {
        parent: Digest,
        address: String,
    },
    Import {
        source: Digest,
        tag: String,
    },

    // ---- Directory
    EmptyDirectory,
    DirectoryWithNewFile {
        parent: Digest,
        path: String,
        contents: String,
        permissions: u32,
    },
    DirectoryWithNewDirectory {
        parent: Digest,
        path: String,
        permissions: u32,
    },
    DirectoryWithFile {
        parent: Digest,
        path: String,
        source: Digest,
        permissions: Option<u32>,
    },
    DirectoryWithDirectory {
        parent: Digest,
        path: String,
        source: Digest,
        include: Vec<String>,
        exclude: Vec<String>,
    },
    DirectoryWithoutFile {
        parent: Digest,
        path: String,
    },
    DirectoryWithoutDirectory {
        parent: Digest,
        path: String,
    },
    DirectoryDiff {
        parent: Digest,
        other: Digest,
    },
    DirectoryWithTimestamps {
        parent: Digest,
        timestamp: i64,
    },
    Subdirectory {
        parent: Digest,
        path: String,
    },
    ContainerDirectory {
        container: Digest,
        path: String,
    },
    ContainerRootfs {
        container: Digest,
    },
    /// A host directory as it was when first loaded: `content` is the tree
    /// digest of what was read, so a changed checkout is a different node.
    HostDirectory {
        path: String,
        include: Vec<String>,
        exclude: Vec<String>,
        content: Digest,
    },

    // ---- File
    NewFile {
        contents: String,
        permissions: u32,
    },
    DirectoryFile {
        parent: Digest,
        path: String,
    },
    ContainerFile {
        container: Digest,
        path: String,
    },
    FileWithName {
        parent: Digest,
        name: String,
    },
    FileWithTimestamps {
        parent: Digest,
        timestamp: i64,
    },
    HostFile {
        path: String,
        content: Digest,
    },
    AsTarball {
        container: Digest,
    },

    // ---- Secret and cache volume
    /// `mac` is an HMAC of the value under the engine's key: it changes when
    /// the value does, yet does not reveal it.
    Secret {
        name: String,
        mac: Digest,
    },
    CacheVolume {
        key: String,
    },
}

impl Op {
    /// The kind of object this op produces.
    pub fn kind(&self) -> Kind {
        use Op::*;
        match self {
            Scratch { .. }
            | From { .. }
            | WithRootfs { .. }
            | WithExec { .. }
            | WithEnvVariable { .. }
            | WithoutEnvVariable { .. }
            | WithSecretVariable { .. }
            | WithWorkdir { .. }
            | WithUser { .. }
            | WithEntrypoint { .. }
            | WithDefaultArgs { .. }
            | WithLabel { .. }
            | WithContent { .. }
            | WithMountedDirectory { .. }
            | WithMountedFile { .. }
            | WithMountedCache { .. }
            | WithMountedTemp { .. }
            | WithMountedSecret { .. }
            | WithoutMount { .. }
            | WithRegistryAuth { .. }
            | WithoutRegistryAuth { .. }
            | Import { .. } => Kind::Container,
            EmptyDirectory
            | DirectoryWithNewFile { .. }
            | DirectoryWithNewDirectory { .. }
            | DirectoryWithFile { .. }
            | DirectoryWithDirectory { .. }
            | DirectoryWithoutFile { .. }
            | DirectoryWithoutDirectory { .. }
            | DirectoryDiff { .. }
            | DirectoryWithTimestamps { .. }
            | Subdirectory { .. }
            | ContainerDirectory { .. }
            | ContainerRootfs { .. }
            | HostDirectory { .. } => Kind::Directory,
            NewFile { .. }
            | DirectoryFile { .. }
            | ContainerFile { .. }
            | FileWithName { .. }
            | FileWithTimestamps { .. }
            | HostFile { .. }
            | AsTarball { .. } => Kind::File,
            Secret { .. } => Kind::Secret,
            CacheVolume { .. } => Kind::CacheVolume,
        }
    }

    /// The digests of the nodes this op reads, in encoding order.
    pub fn inputs(&self) -> Vec<Digest> {
        let mut out = Vec::new();
        self.encode_with(&mut Encoder::new("inputs"), &mut |digest| {
            out.push(*digest);
            *digest
        });
        out
    }

    /// The node digest: this op over its inputs' node digests.
    pub fn digest(&self) -> Digest {
        let mut encoder = Encoder::new("op");
        self.encode_with(&mut encoder, &mut |digest| *digest);
        encoder.finish()
    }

    /// A cache key: this op over whatever `input_key` maps each input to.
    pub fn key_with(&self, input_key: &mut dyn FnMut(&Digest) -> Digest) -> Digest {
        let mut encoder = Encoder::new("key");
        self.encode_with(&mut encoder, input_key);
        encoder.finish()
    }

    /// The explicit encoding. Each variant writes a unique tag, then its
    /// fields in declaration order; inputs go through `input`.
    fn encode_with(&self, e: &mut Encoder, input: &mut dyn FnMut(&Digest) -> Digest) {
        use Op::*;
        let mut inp = |e: &mut Encoder, digest: &Digest| {
            let mapped = input(digest);
            e.digest(&mapped);
        };
        match self {
            Scratch { platform } => {
                e.str("scratch").opt_str(platform.as_deref());
            }
            From { parent, address } => {
                e.str("from");
                inp(e, parent);
                e.str(address);
            }
            WithRootfs { parent, directory } => {
                e.str("withRootfs");
                inp(e, parent);
                inp(e, directory);
            }
            WithExec { parent, exec } => {
                e.str("withExec");
                inp(e, parent);
                e.strs(&exec.args)
                    .bool(exec.use_entrypoint)
                    .str(&exec.stdin)
                    .str(&exec.redirect_stdin)
                    .str(&exec.redirect_stdout)
                    .str(&exec.redirect_stderr)
                    .str(exec.expect.tag())
                    .bool(exec.expand);
            }
            WithEnvVariable {
                parent,
                name,
                value,
                expand,
            } => {
                e.str("withEnvVariable");
                inp(e, parent);
                e.str(name).str(value).bool(*expand);
            }
            WithoutEnvVariable { parent, name } => {
                e.str("withoutEnvVariable");
                inp(e, parent);
                e.str(name);
            }
            WithSecretVariable {
                parent,
                name,
                secret,
            } => {
                e.str("withSecretVariable");
                inp(e, parent);
                e.str(name);
                inp(e, secret);
            }
            WithWorkdir { parent, path } => {
                e.str("withWorkdir");
                inp(e, parent);
                e.str(path);
            }
            WithUser { parent, name } => {
                e.str("withUser");
                inp(e, parent);
                e.str(name);
            }
            WithEntrypoint {
                parent,
                args,
                keep_default_args,
            } => {
                e.str("withEntrypoint");
                inp(e, parent);
                e.strs(args).bool(*keep_default_args);
            }
            WithDefaultArgs { parent, args } => {
                e.str("withDefaultArgs");
                inp(e, parent);
                e.strs(args);
            }
            WithLabel {
                parent,
                name,
                value,
            } => {
                e.str("withLabel");
                inp(e, parent);
                e.str(name).str(value);
            }
            WithContent {
                parent,
                path,
                source,
                permissions,
                owner,
                include,
                exclude,
            } => {
                e.str("withContent");
                inp(e, parent);
                e.str(path);
                inp(e, source);
                e.opt_u64(permissions.map(u64::from))
                    .str(owner)
                    .strs(include)
                    .strs(exclude);
            }
            WithMountedDirectory {
                parent,
                path,
                source,
                read_only,
            } => {
                e.str("withMountedDirectory");
                inp(e, parent);
                e.str(path);
                inp(e, source);
                e.bool(*read_only);
            }
            WithMountedFile {
                parent,
                path,
                source,
            } => {
                e.str("withMountedFile");
                inp(e, parent);
                e.str(path);
                inp(e, source);
            }
            WithMountedCache {
                parent,
                path,
                cache,
                source,
                sharing,
                owner,
            } => {
                e.str("withMountedCache");
                inp(e, parent);
                e.str(path);
                inp(e, cache);
                match source {
                    Some(source) => {
                        e.str("+");
                        inp(e, source);
                    }
                    None => {
                        e.str("-");
                    }
                }
                e.opt_str(sharing.map(Sharing::tag)).str(owner);
            }
            WithMountedTemp { parent, path, size } => {
                e.str("withMountedTemp");
                inp(e, parent);
                e.str(path).opt_u64(*size);
            }
            WithMountedSecret {
                parent,
                path,
                secret,
                mode,
            } => {
                e.str("withMountedSecret");
                inp(e, parent);
                e.str(path);
                inp(e, secret);
                e.u64(u64::from(*mode));
            }
            WithoutMount { parent, path } => {
                e.str("withoutMount");
                inp(e, parent);
                e.str(path);
            }
            WithRegistryAuth {
                parent,
                address,
                username,
                secret,
            } => {
                e.str("withRegistryAuth");
                inp(e, parent);
                e.str(address).str(username);
                inp(e, secret);
            }
            WithoutRegistryAuth { parent, address } => {
                e.str("withoutRegistryAuth");
                inp(e, parent);
                e.str(address);
            }
            Import { source, tag } => {
                e.str("import");
                inp(e, source);
                e.str(tag);
            }
            EmptyDirectory => {
                e.str("emptyDirectory");
            }
            DirectoryWithNewFile {
                parent,
                path,
                contents,
                permissions,
            } => {
                e.str("directoryWithNewFile");
                inp(e, parent);
                e.str(path).str(contents).u64(u64::from(*permissions));
            }
            DirectoryWithNewDirectory {
                parent,
                path,
                permissions,
            } => {
                e.str("directoryWithNewDirectory");
                inp(e, parent);
                e.str(path).u64(u64::from(*permissions));
            }
            DirectoryWithFile {
                parent,
                path,
                source,
                permissions,
            } => {
                e.str("directoryWithFile");
                inp(e, parent);
                e.str(path);
                inp(e, source);
                e.opt_u64(permissions.map(u64::from));
            }
            DirectoryWithDirectory {
                parent,
                path,
                source,
                include,
                exclude,
            } => {
                e.str("directoryWithDirectory");
                inp(e, parent);
                e.str(path);
                inp(e, source);
                e.strs(include).strs(exclude);
            }
            DirectoryWithoutFile { parent, path } => {
                e.str("directoryWithoutFile");
                inp(e, parent);
                e.str(path);
            }
            DirectoryWithoutDirectory { parent, path } => {
                e.str("directoryWithoutDirectory");
                inp(e, parent);
                e.str(path);
            }
            DirectoryDiff { parent, other } => {
                e.str("directoryDiff");
                inp(e, parent);
                inp(e, other);
            }
            DirectoryWithTimestamps { parent, timestamp } => {
                e.str("directoryWithTimestamps");
                inp(e, parent);
                e.i64(*timestamp);
            }
            Subdirectory { parent, path } => {
                e.str("subdirectory");
                inp(e, parent);
                e.str(path);
            }
            ContainerDirectory { container, path } => {
                e.str("containerDirectory");
                inp(e, container);
                e.str(path);
            }
            ContainerRootfs { container } => {
                e.str("containerRootfs");
                inp(e, container);
            }
            HostDirectory {
                path,
                include,
                exclude,
                content,
            } => {
                e.str("hostDirectory")
                    .str(path)
                    .strs(include)
                    .strs(exclude)
                    .digest(content);
            }
            NewFile {
                contents,
                permissions,
            } => {
                e.str("newFile").str(contents).u64(u64::from(*permissions));
            }
            DirectoryFile { parent, path } => {
                e.str("directoryFile");
                inp(e, parent);
                e.str(path);
            }
            ContainerFile { container, path } => {
                e.str("containerFile");
                inp(e, container);
                e.str(path);
            }
            FileWithName { parent, name } => {
                e.str("fileWithName");
                inp(e, parent);
                e.str(name);
            }
            FileWithTimestamps { parent, timestamp } => {
                e.str("fileWithTimestamps");
                inp(e, parent);
                e.i64(*timestamp);
            }
            HostFile { path, content } => {
                e.str("hostFile").str(path).digest(content);
            }
            AsTarball { container } => {
                e.str("asTarball");
                inp(e, container);
            }
            Secret { name, mac } => {
                e.str("secret").str(name).digest(mac);
            }
            CacheVolume { key } => {
                e.str("cacheVolume").str(key);
            }
        }
    }
}

/// A node of the DAG: an op and its digest, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub digest: Digest,
    pub op: Op,
}

impl Node {
    pub fn new(op: Op) -> Self {
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
        let base = Node::new(Op::Scratch { platform: None });
        let a = Op::WithEnvVariable {
            parent: base.digest,
            name: "A".into(),
            value: "1".into(),
            expand: false,
        };
        assert_eq!(a.digest(), a.clone().digest());
        let b = Op::WithEnvVariable {
            parent: base.digest,
            name: "A".into(),
            value: "2".into(),
            expand: false,
        };
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn inputs_are_listed_in_order() {
        let p = Node::new(Op::Scratch { platform: None }).digest;
        let d = Node::new(Op::EmptyDirectory).digest;
        let op = Op::WithMountedDirectory {
            parent: p,
            path: "/x".into(),
            source: d,
            read_only: false,
        };
        assert_eq!(op.inputs(), vec![p, d]);
    }

    #[test]
    fn cache_key_follows_input_keys_not_recipes() {
        let p1 = Node::new(Op::Scratch { platform: None }).digest;
        let p2 = Node::new(Op::Scratch {
            platform: Some("linux/amd64".into()),
        })
        .digest;
        let exec = |parent| Op::WithExec {
            parent,
            exec: ExecArgs::default(),
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
        let op = Op::WithExec {
            parent: Node::new(Op::EmptyDirectory).digest,
            exec: ExecArgs {
                args: vec!["echo".into()],
                ..ExecArgs::default()
            },
        };
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
    }

    #[test]
    fn expect_follows_dagger_rules() {
        assert!(Expect::Success.allows(0));
        assert!(!Expect::Success.allows(1));
        assert!(Expect::Failure.allows(1));
        assert!(!Expect::Failure.allows(0));
        assert!(!Expect::Failure.allows(137));
        assert!(Expect::Any.allows(0) && Expect::Any.allows(200));
        assert!(!Expect::Any.allows(130));
    }
}
