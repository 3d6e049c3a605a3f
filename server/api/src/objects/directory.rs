//! `Directory`: a content-addressed directory tree.

use std::sync::Arc;

use async_graphql::{Context, Object, Result, ID};
use gantry_core::{lookup, ops, search, Kind, Node, Op};

use super::query::{refuse_foreign_platform, Platform};
use super::{
    add, client, engine, expected_type, load_arg, Changeset, Container, ExistsType, File,
    GitRepository, SearchArgs, SearchResult, Stat, FILE_MODE,
};
use crate::error::gql;
use crate::ids::format_id;

#[derive(Clone)]
pub(crate) struct Directory(pub(crate) Arc<Node>);

/// The image `Directory.terminal` runs in when not given a container, as in
/// Dagger (Docker Hub's `alpine`).
const DEFAULT_TERMINAL_IMAGE: &str = "alpine:3";

/// Key value object that represents a build argument.
#[derive(async_graphql::InputObject)]
pub(crate) struct BuildArg {
    /// The build argument name.
    name: String,
    /// The build argument value.
    value: String,
}

impl Directory {
    fn then(&self, ctx: &Context<'_>, op: impl Into<Op>) -> Directory {
        Directory(add(ctx, op))
    }

    async fn tree(
        &self,
        ctx: &Context<'_>,
    ) -> Result<(Arc<gantry_core::tree::Tree>, gantry_core::Digest)> {
        engine(ctx).directory(self.0.digest).await.map_err(gql)
    }
}

/// A directory.
#[Object]
impl Directory {
    /// A unique identifier for this Directory.
    pub(crate) async fn id(&self, ctx: &Context<'_>) -> Result<ID> {
        format_id(engine(ctx), &self.0)
    }

    /// Force evaluation in the engine.
    async fn sync(&self, ctx: &Context<'_>) -> Result<ID> {
        self.tree(ctx).await?;
        format_id(engine(ctx), &self.0)
    }

    /// Opens an interactive terminal in new container with this directory mounted inside, at `/src` (read-only), its working directory. The terminal is the one of the client that owns the session (`gantry run`, `gantry call` in a terminal). Returns this directory once the shell exits.
    async fn terminal(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "If set, override the default container used for the terminal (Dagger's default is an `alpine` image from Docker Hub).",
            directive = expected_type::apply("Container".into())
        )]
        container: Option<ID>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "If set, override the container's default terminal command and invoke these command arguments instead."
        )]
        cmd: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Give the terminal command the API: a session of its own (GANTRY_SESSION_PORT/TOKEN and DAGGER_SESSION_PORT/TOKEN, on 127.0.0.1), with the command on the host's network. Its clients have no host: the engine's files and environment are not theirs."
        )]
        experimental_privileged_nesting: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Run the terminal command with every root capability the engine holds, close to Docker's --privileged: nothing of /proc masked, no seccomp or AppArmor confinement, every device allowed. It can then change the host it runs on: use it only for a command you trust that needs it."
        )]
        insecure_root_capabilities: Option<bool>,
    ) -> Result<Directory> {
        let base = match &container {
            Some(id) => load_arg(ctx, "container", id, Kind::Container)?.digest,
            None => {
                let scratch = add(ctx, ops::Scratch { platform: None });
                add(
                    ctx,
                    ops::FromImage {
                        parent: scratch.digest,
                        address: DEFAULT_TERMINAL_IMAGE.to_owned(),
                        registry_service: None,
                    },
                )
                .digest
            }
        };
        let mounted = add(
            ctx,
            ops::WithMountedDirectory {
                parent: base,
                path: "/src".to_owned(),
                source: self.0.digest,
                read_only: true,
                owner: String::new(),
                inherit_owner: false,
            },
        );
        let at_src = add(
            ctx,
            ops::WithWorkdir {
                parent: mounted.digest,
                path: "/src".to_owned(),
            },
        );
        engine(ctx)
            .terminal(
                at_src.digest,
                &cmd.unwrap_or_default(),
                insecure_root_capabilities.unwrap_or_default(),
                experimental_privileged_nesting.unwrap_or_default(),
                "Directory.terminal",
            )
            .await
            .map_err(gql)?;
        Ok(self.clone())
    }

    /// Returns a list of files and directories at the given path. Directories end with a slash.
    async fn entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the directory to look at (e.g., \"/src\").")] path: Option<
            String,
        >,
    ) -> Result<Vec<String>> {
        let (tree, _) = self.tree(ctx).await?;
        tree.list(path.as_deref().unwrap_or("")).map_err(gql)
    }

    /// Returns a list of files and directories that match the given pattern.
    async fn glob(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Pattern to match (e.g., \"*.md\").")] pattern: String,
    ) -> Result<Vec<String>> {
        let (tree, _) = self.tree(ctx).await?;
        tree.glob(&pattern).map_err(gql)
    }

    /// Return the directory's digest. The format of the digest is not guaranteed to be stable between releases of gantry.
    async fn digest(&self, ctx: &Context<'_>) -> Result<String> {
        // Names, modes, owners, link targets and contents, not timestamps,
        // as Dagger computes it (see gantry_core::checksum).
        let (tree, key) = self.tree(ctx).await?;
        let engine = Arc::clone(engine(ctx));
        let digest =
            super::checksum_blocking(move || engine.directory_checksum(&tree, &key)).await?;
        Ok(digest.to_string())
    }

    /// Retrieve a file at the given path.
    async fn file(&self, ctx: &Context<'_>, path: String) -> File {
        File(add(
            ctx,
            ops::DirectoryFile {
                parent: self.0.digest,
                path,
            },
        ))
    }

    /// Retrieves a directory at the given path.
    async fn directory(&self, ctx: &Context<'_>, path: String) -> Directory {
        self.then(
            ctx,
            ops::Subdirectory {
                parent: self.0.digest,
                path,
            },
        )
    }

    /// Retrieves this directory plus the contents of the given file copied to the given path.
    async fn with_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Location of the copied file (e.g., \"/file.txt\"). A directory (\".\", \"dir/\" or an existing one) receives the file under its own name."
        )]
        path: String,
        #[graphql(
            desc = "Identifier of the file to copy.",
            directive = expected_type::apply("File".into())
        )]
        source: ID,
        #[graphql(
            desc = "Permission given to the copied file (e.g., 0600).",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the copied file. Names are looked up in the directory's own etc/passwd and etc/group."
        )]
        owner: Option<String>,
    ) -> Result<Directory> {
        let source = load_arg(ctx, "source", &source, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithFile {
                parent: self.0.digest,
                path,
                source: source.digest,
                permissions: permissions.map(|p| p as u32),
                owner: owner.unwrap_or_default(),
            },
        ))
    }

    /// Return a snapshot with a new file added.
    async fn with_new_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Path of the new file. Example: \"foo/bar.txt\"")] path: String,
        #[graphql(desc = "Contents of the new file. Example: \"Hello world!\"")] contents: String,
        #[graphql(
            default_with = "Some(FILE_MODE)",
            desc = "Permissions of the new file. Example: 0600",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithNewFile {
                parent: self.0.digest,
                path,
                contents,
                permissions: permissions.unwrap_or(FILE_MODE) as u32,
            },
        )
    }

    /// Return a snapshot with a directory added.
    async fn with_directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(directive = expected_type::apply("Directory".into()))] source: ID,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Exclude artifacts that match the given pattern (e.g., [\"node_modules/\", \".git*\"])."
        )]
        exclude: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Include only artifacts that match the given pattern (e.g., [\"app/\", \"package.*\"])."
        )]
        include: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Apply the .gitignore rules found in the copied directory."
        )]
        gitignore: Option<bool>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "A user:group to set for the copied directory and its contents. Names are looked up in the directory's own etc/passwd and etc/group."
        )]
        owner: Option<String>,
        #[graphql(
            desc = "Permission given to the copied directory and its contents (e.g., 0755).",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Result<Directory> {
        let source = load_arg(ctx, "source", &source, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithDirectory {
                parent: self.0.digest,
                path,
                source: source.digest,
                include: include.unwrap_or_default(),
                exclude: exclude.unwrap_or_default(),
                owner: owner.unwrap_or_default(),
                permissions: permissions.map(|mode| mode as u32),
                gitignore: gitignore.unwrap_or_default(),
            },
        ))
    }

    /// Retrieves this directory plus a new directory created at the given path.
    async fn with_new_directory(
        &self,
        ctx: &Context<'_>,
        path: String,
        #[graphql(
            default_with = "Some(FILE_MODE)",
            validator(custom = "super::file_mode")
        )]
        permissions: Option<i32>,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithNewDirectory {
                parent: self.0.digest,
                path,
                permissions: permissions.unwrap_or(FILE_MODE) as u32,
            },
        )
    }

    /// Return a snapshot with a file removed.
    async fn without_file(&self, ctx: &Context<'_>, path: String) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithoutFile {
                parent: self.0.digest,
                path,
            },
        )
    }

    /// Return a snapshot with a subdirectory removed.
    async fn without_directory(&self, ctx: &Context<'_>, path: String) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithoutDirectory {
                parent: self.0.digest,
                path,
            },
        )
    }

    /// Return the difference between this directory and another directory: what `other` adds or changes. Deletions are not represented.
    async fn diff(
        &self,
        ctx: &Context<'_>,
        #[graphql(directive = expected_type::apply("Directory".into()))] other: ID,
    ) -> Result<Directory> {
        let other = load_arg(ctx, "other", &other, Kind::Directory)?;
        Ok(self.then(
            ctx,
            ops::DirectoryDiff {
                parent: self.0.digest,
                other: other.digest,
            },
        ))
    }

    /// Change the owner of the directory contents recursively.
    async fn chown(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The file or directory to change, with everything under it (\".\" for the whole directory)."
        )]
        path: String,
        #[graphql(
            desc = "The new owner: user or user:group, each a numeric id or a name looked up in this directory's etc/passwd and etc/group. Without a group, the group id is the user's id."
        )]
        owner: String,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryChown {
                parent: self.0.digest,
                path,
                owner,
            },
        )
    }

    /// Retrieves this directory with all file/dir timestamps set to the given time.
    async fn with_timestamps(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Timestamp to set dir/files in (seconds since the Unix epoch).")]
        timestamp: i64,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithTimestamps {
                parent: self.0.digest,
                timestamp,
            },
        )
    }

    /// Use Dockerfile compatibility to build a container from this directory. Only use this function for Dockerfile compatibility. Otherwise use the native Container type directly, it is feature-complete and supports all Dockerfile features.
    #[allow(clippy::too_many_arguments)]
    async fn docker_build(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(\"Dockerfile\".to_owned())",
            desc = "Path to the Dockerfile to use (e.g., \"frontend.Dockerfile\")."
        )]
        dockerfile: Option<String>,
        #[graphql(
            desc = "The platform to build. gantry builds for its own machine's platform only."
        )]
        platform: Option<Platform>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Build arguments to use in the build."
        )]
        build_args: Option<Vec<BuildArg>>,
        #[graphql(
            default_with = "Some(String::new())",
            desc = "Target build stage to build."
        )]
        target: Option<String>,
        #[graphql(
            default_with = "Some(Vec::new())",
            directive = expected_type::apply("Secret".into()),
            desc = "Secrets to pass to the build. They will be mounted at /run/secrets/[secret-name]."
        )]
        secrets: Option<Vec<ID>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "If set, skip the automatic init process injected into containers created by RUN statements. gantry never starts one, so every RUN step runs this way."
        )]
        no_init: Option<bool>,
        #[graphql(
            desc = "A socket to use for SSH authentication during the build (e.g., for Dockerfile RUN --mount=type=ssh instructions).",
            directive = expected_type::apply("Socket".into())
        )]
        ssh: Option<ID>,
    ) -> Result<Container> {
        // gantry runs RUN steps without an init process, which is what
        // noInit: true asks for; see docs/compatibility.md.
        let _no_init = no_init;
        if let Some(platform) = &platform {
            refuse_foreign_platform(&platform.0)?;
        }
        let engine = engine(ctx);
        let mut named = Vec::new();
        for id in secrets.unwrap_or_default() {
            let secret = load_arg(ctx, "secrets", &id, Kind::Secret)?;
            named.push((
                engine.secret_name(&secret.digest).map_err(gql)?,
                secret.digest,
            ));
        }
        Ok(Container(add(
            ctx,
            ops::DockerBuild {
                context: self.0.digest,
                dockerfile: dockerfile.unwrap_or_else(|| "Dockerfile".into()),
                platform: platform.map(|platform| platform.0),
                build_args: build_args
                    .unwrap_or_default()
                    .into_iter()
                    .map(|arg| (arg.name, arg.value))
                    .collect(),
                target: target.unwrap_or_default(),
                secrets: named,
                ssh: ssh
                    .map(|id| load_arg(ctx, "ssh", &id, Kind::Socket).map(|socket| socket.digest))
                    .transpose()?,
            },
        )))
    }

    /// Converts this directory to a local git repository
    async fn as_git(&self, ctx: &Context<'_>) -> GitRepository {
        GitRepository(add(
            ctx,
            ops::AsGit {
                directory: self.0.digest,
            },
        ))
    }

    /// Writes the contents of the directory to a path on the host. Returns the absolute path written.
    async fn export(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the copied directory (e.g., \"logs/\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "If true, then the host directory will be wiped clean before exporting so that it exactly matches the directory being exported."
        )]
        wipe: Option<bool>,
    ) -> Result<String> {
        let (tree, _) = self.tree(ctx).await?;
        client(ctx)
            .export_tree(engine(ctx), &tree, &path, wipe.unwrap_or_default())
            .map_err(gql)
    }

    // ---- Tier 2: inspection, symlinks, filters, patches and changesets

    /// Returns the name of the directory: the last component of the path it was taken from, with a trailing slash ("/" for a root).
    async fn name(&self, ctx: &Context<'_>) -> Result<String> {
        engine(ctx).directory_name(self.0.digest).await.map_err(gql)
    }

    /// check if a file or directory exists
    async fn exists(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Path to check (e.g., \"/file.txt\").")] path: String,
        #[graphql(
            name = "expectedType",
            desc = "If specified, also validate the type of file (e.g. \"REGULAR_TYPE\", \"DIRECTORY_TYPE\", or \"SYMLINK_TYPE\")."
        )]
        kind: Option<ExistsType>,
        #[graphql(
            default_with = "Some(false)",
            desc = "If specified, do not follow symlinks."
        )]
        do_not_follow_symlinks: Option<bool>,
    ) -> Result<bool> {
        let (tree, _) = self.tree(ctx).await?;
        let follow = !do_not_follow_symlinks.unwrap_or(false);
        lookup::exists(&tree, &path, kind.map(Into::into), follow).map_err(gql)
    }

    /// Return file status
    async fn stat(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Path to stat (e.g., \"/file.txt\").")] path: String,
        #[graphql(
            default_with = "Some(false)",
            desc = "If specified, do not follow symlinks."
        )]
        do_not_follow_symlinks: Option<bool>,
    ) -> Result<Option<Stat>> {
        let (tree, _) = self.tree(ctx).await?;
        let follow = !do_not_follow_symlinks.unwrap_or(false);
        Ok(Some(
            lookup::stat(&tree, &path, follow).map_err(gql)?.into(),
        ))
    }

    /// Search up the directory tree for a file or directory, and return its path. If no match, return null
    async fn find_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The name of the file or directory to search for")] name: String,
        #[graphql(desc = "The path to start the search from")] start: String,
    ) -> Result<Option<String>> {
        let (tree, _) = self.tree(ctx).await?;
        lookup::find_up(&tree, &start, &name).map_err(gql)
    }

    /// Searches for content matching the given regular expression or literal string. Uses Rust regex syntax; escape literal ., [, ], {, }, | with backslashes.
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The text to match.")] pattern: String,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Directory or file paths to search"
        )]
        paths: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "Glob patterns to match (e.g., \"*.md\")"
        )]
        globs: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Interpret the pattern as a literal string instead of a regular expression."
        )]
        literal: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Enable searching across multiple lines."
        )]
        multiline: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Allow the . pattern to match newlines in multiline mode."
        )]
        dotall: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Enable case-insensitive matching."
        )]
        insensitive: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Honor .gitignore, .ignore, and .rgignore files."
        )]
        skip_ignored: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Skip hidden files (files starting with .)."
        )]
        skip_hidden: Option<bool>,
        #[graphql(
            default_with = "Some(false)",
            desc = "Only return matching files, not lines and content"
        )]
        files_only: Option<bool>,
        #[graphql(desc = "Limit the number of results to return")] limit: Option<i32>,
    ) -> Result<Vec<SearchResult>> {
        let options = SearchArgs {
            pattern,
            literal,
            multiline,
            dotall,
            insensitive,
            skip_ignored,
            skip_hidden,
            files_only,
            limit,
        }
        .options();
        let (tree, _) = self.tree(ctx).await?;
        let engine = engine(ctx);
        let found = search::search_tree(
            engine.store().as_ref(),
            &tree,
            &options,
            &paths.unwrap_or_default(),
            &globs.unwrap_or_default(),
        )
        .map_err(gql)?;
        Ok(found.into_iter().map(SearchResult::from).collect())
    }

    /// Return a snapshot with a symlink
    async fn with_symlink(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Location of the file or directory to link to (e.g., \"/existing/file\")."
        )]
        target: String,
        #[graphql(
            desc = "Location where the symbolic link will be created (e.g., \"/new-file-link\")."
        )]
        link_name: String,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithSymlink {
                parent: self.0.digest,
                target,
                link_name,
            },
        )
    }

    /// Retrieves this directory plus the contents of the given files copied to the given path.
    async fn with_files(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location where copied files should be placed (e.g., \"/src\").")]
        path: String,
        #[graphql(
            desc = "Identifiers of the files to copy.",
            directive = expected_type::apply("File".into())
        )]
        sources: Vec<ID>,
        #[graphql(desc = "Permission given to the copied files (e.g., 0600).")] permissions: Option<
            i32,
        >,
    ) -> Result<Directory> {
        let sources = load_all(ctx, "sources", &sources, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithFiles {
                parent: self.0.digest,
                path,
                sources,
                permissions: permissions.map(|mode| mode as u32),
            },
        ))
    }

    /// Return a snapshot with files removed
    async fn without_files(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Location of the files to remove (e.g., [\"/file.txt\"]).")] paths: Vec<
            String,
        >,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithoutFiles {
                parent: self.0.digest,
                paths,
            },
        )
    }

    /// Return a snapshot with some paths included or excluded
    async fn filter(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "If set, paths matching one of these glob patterns is excluded from the new snapshot. Example: [\"node_modules/\", \".git*\", \".env\"]"
        )]
        exclude: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(Vec::new())",
            desc = "If set, only paths matching one of these glob patterns is included in the new snapshot. Example: (e.g., [\"app/\", \"package.*\"])."
        )]
        include: Option<Vec<String>>,
        #[graphql(
            default_with = "Some(false)",
            desc = "If set, apply .gitignore rules when filtering the directory."
        )]
        gitignore: Option<bool>,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryFilter {
                parent: self.0.digest,
                include: include.unwrap_or_default(),
                exclude: exclude.unwrap_or_default(),
                gitignore: gitignore.unwrap_or(false),
            },
        )
    }

    /// Retrieves this directory with the given Git-compatible patch applied.
    async fn with_patch(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Patch to apply (e.g., \"diff --git a/file.txt b/file.txt\\nindex 1234567..abcdef8 100644\\n--- a/file.txt\\n+++ b/file.txt\\n@@ -1,1 +1,1 @@\\n-Hello\\n+World\\n\")."
        )]
        patch: String,
    ) -> Directory {
        self.then(
            ctx,
            ops::DirectoryWithPatch {
                parent: self.0.digest,
                patch,
            },
        )
    }

    /// Retrieves this directory with the given Git-compatible patch file applied.
    async fn with_patch_file(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "File containing the patch to apply",
            directive = expected_type::apply("File".into())
        )]
        patch: ID,
    ) -> Result<Directory> {
        let patch = load_arg(ctx, "patch", &patch, Kind::File)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithPatchFile {
                parent: self.0.digest,
                patch: patch.digest,
            },
        ))
    }

    /// Return the difference between this directory and another directory, typically an older snapshot. The difference is encoded as a changeset, which also tracks removed files, and can be applied to other directories.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The base directory snapshot to compare against",
            directive = expected_type::apply("Directory".into())
        )]
        from: ID,
    ) -> Result<Changeset> {
        let from = load_arg(ctx, "from", &from, Kind::Directory)?;
        Ok(Changeset(add(
            ctx,
            ops::DirectoryChanges {
                parent: self.0.digest,
                from: from.digest,
            },
        )))
    }

    /// Return a directory with changes from another directory applied to it.
    async fn with_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Changes to apply to the directory",
            directive = expected_type::apply("Changeset".into())
        )]
        changes: ID,
    ) -> Result<Directory> {
        let changes = load_arg(ctx, "changes", &changes, Kind::Changeset)?;
        Ok(self.then(
            ctx,
            ops::DirectoryWithChanges {
                parent: self.0.digest,
                changes: changes.digest,
            },
        ))
    }

    /// Raise an error.
    async fn with_error(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Message of the error to raise. If empty, the error will be ignored.")]
        err: String,
    ) -> Directory {
        if err.is_empty() {
            return self.clone();
        }
        self.then(
            ctx,
            ops::DirectoryWithError {
                parent: self.0.digest,
                message: err,
            },
        )
    }
}

/// Loads object arguments of one kind (`withFiles(sources:)`).
pub(crate) fn load_all(
    ctx: &Context<'_>,
    argument: &str,
    ids: &[ID],
    kind: Kind,
) -> Result<Vec<gantry_core::Digest>> {
    ids.iter()
        .map(|id| load_arg(ctx, argument, id, kind).map(|node| node.digest))
        .collect()
}

/// `Syncer.sync` and `Exportable.export` when selected through the
/// interfaces (which pass only the interface's arguments).
impl Directory {
    pub(crate) async fn sync_as_syncer(&self, ctx: &Context<'_>) -> Result<ID> {
        self.sync(ctx).await
    }

    pub(crate) async fn export_as_exportable(
        &self,
        ctx: &Context<'_>,
        path: String,
    ) -> Result<String> {
        self.export(ctx, path, Some(false)).await
    }
}
