//! Plain-data objects: a label, a stat, a search match, an address, an
//! error. Each is its own content, so its ID is its fields (`ids::value_id`)
//! and loads without the engine; none is a DAG node.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, ID};
use gantry_core::{lookup, ops, search, Node as DagNode};
use serde::{Deserialize, Serialize};

use super::{add, client, engine, Container, Directory, File, Host, Secret};
use crate::error::gql;
use crate::ids::value_id;

/// A JSON-encoded value, sent as a string.
pub(crate) struct Json(pub(crate) String);

#[async_graphql::Scalar(name = "JSON")]
impl async_graphql::ScalarType for Json {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match value {
            async_graphql::Value::String(text) => Ok(Json(text)),
            other => Err(async_graphql::InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(self.0.clone())
    }
}

/// A simple key value object that represents a label.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Label {
    pub(crate) name: String,
    pub(crate) value: String,
}

#[Object]
impl Label {
    /// A unique identifier for this Label.
    pub(crate) async fn id(&self) -> ID {
        value_id("Label", self)
    }

    /// The label name.
    async fn name(&self) -> &str {
        &self.name
    }

    /// The label value.
    async fn value(&self) -> &str {
        &self.value
    }
}

/// File type.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Serialize, Deserialize)]
#[graphql(name = "FileType")]
pub(crate) enum FileType {
    /// unknown file type
    #[graphql(name = "UNKNOWN")]
    Unknown,
    /// regular file type
    #[graphql(name = "REGULAR")]
    Regular,
    /// directory file type
    #[graphql(name = "DIRECTORY")]
    Directory,
    /// symlink file type
    #[graphql(name = "SYMLINK")]
    Symlink,
    /// regular file type
    #[graphql(name = "REGULAR_TYPE")]
    RegularType,
    /// directory file type
    #[graphql(name = "DIRECTORY_TYPE")]
    DirectoryType,
    /// symlink file type
    #[graphql(name = "SYMLINK_TYPE")]
    SymlinkType,
}

impl From<lookup::FileType> for FileType {
    fn from(kind: lookup::FileType) -> Self {
        match kind {
            lookup::FileType::Regular => FileType::Regular,
            lookup::FileType::Directory => FileType::Directory,
            lookup::FileType::Symlink => FileType::Symlink,
        }
    }
}

/// File type (for exists).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ExistsType")]
#[allow(clippy::enum_variant_names)] // Dagger's names: REGULAR_TYPE, …
pub(crate) enum ExistsType {
    /// Tests path is a regular file
    #[graphql(name = "REGULAR_TYPE")]
    RegularType,
    /// Tests path is a directory
    #[graphql(name = "DIRECTORY_TYPE")]
    DirectoryType,
    /// Tests path is a symlink
    #[graphql(name = "SYMLINK_TYPE")]
    SymlinkType,
}

impl From<ExistsType> for lookup::FileType {
    fn from(kind: ExistsType) -> Self {
        match kind {
            ExistsType::RegularType => lookup::FileType::Regular,
            ExistsType::DirectoryType => lookup::FileType::Directory,
            ExistsType::SymlinkType => lookup::FileType::Symlink,
        }
    }
}

/// A file or directory status object.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Stat {
    file_type: FileType,
    name: String,
    permissions: i64,
    size: i64,
}

impl From<lookup::Stat> for Stat {
    fn from(stat: lookup::Stat) -> Self {
        Stat {
            file_type: stat.file_type.into(),
            name: stat.name,
            permissions: i64::from(stat.permissions),
            size: stat.size as i64,
        }
    }
}

#[Object]
impl Stat {
    /// A unique identifier for this Stat.
    pub(crate) async fn id(&self) -> ID {
        value_id("Stat", self)
    }

    /// file type
    async fn file_type(&self) -> Option<FileType> {
        Some(self.file_type)
    }

    /// file name
    async fn name(&self) -> &str {
        &self.name
    }

    /// permission bits
    async fn permissions(&self) -> i64 {
        self.permissions
    }

    /// file size
    async fn size(&self) -> i64 {
        self.size
    }
}

/// One match of a search.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SearchResult {
    file_path: String,
    line_number: i64,
    absolute_offset: i64,
    matched_lines: String,
    submatches: Vec<SearchSubmatch>,
}

impl From<search::SearchResult> for SearchResult {
    fn from(found: search::SearchResult) -> Self {
        SearchResult {
            file_path: found.file_path,
            line_number: found.line_number as i64,
            absolute_offset: found.absolute_offset as i64,
            matched_lines: found.matched_lines,
            submatches: found
                .submatches
                .into_iter()
                .map(|sub| SearchSubmatch {
                    text: sub.text,
                    start: sub.start as i64,
                    end: sub.end as i64,
                })
                .collect(),
        }
    }
}

#[Object]
impl SearchResult {
    /// A unique identifier for this SearchResult.
    pub(crate) async fn id(&self) -> ID {
        value_id("SearchResult", self)
    }

    /// The path to the file that matched.
    async fn file_path(&self) -> &str {
        &self.file_path
    }

    /// The first line that matched.
    async fn line_number(&self) -> i64 {
        self.line_number
    }

    /// The byte offset of this line within the file.
    async fn absolute_offset(&self) -> i64 {
        self.absolute_offset
    }

    /// The line content that matched.
    async fn matched_lines(&self) -> &str {
        &self.matched_lines
    }

    /// Sub-match positions and content within the matched lines.
    async fn submatches(&self) -> &[SearchSubmatch] {
        &self.submatches
    }
}

/// A match's position within its result's matched lines.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SearchSubmatch {
    text: String,
    start: i64,
    end: i64,
}

#[Object]
impl SearchSubmatch {
    /// A unique identifier for this SearchSubmatch.
    pub(crate) async fn id(&self) -> ID {
        value_id("SearchSubmatch", self)
    }

    /// The matched text.
    async fn text(&self) -> &str {
        &self.text
    }

    /// The match's start offset within the matched lines.
    async fn start(&self) -> i64 {
        self.start
    }

    /// The match's end offset within the matched lines.
    async fn end(&self) -> i64 {
        self.end
    }
}

/// The options `search` takes on Directory and File.
pub(crate) struct SearchArgs {
    pub(crate) pattern: String,
    pub(crate) literal: Option<bool>,
    pub(crate) multiline: Option<bool>,
    pub(crate) dotall: Option<bool>,
    pub(crate) insensitive: Option<bool>,
    pub(crate) skip_ignored: Option<bool>,
    pub(crate) skip_hidden: Option<bool>,
    pub(crate) files_only: Option<bool>,
    pub(crate) limit: Option<i32>,
}

impl SearchArgs {
    pub(crate) fn options(self) -> search::SearchOptions {
        let flag = |value: Option<bool>| value.unwrap_or(false);
        search::SearchOptions {
            pattern: self.pattern,
            literal: flag(self.literal),
            multiline: flag(self.multiline),
            dotall: flag(self.dotall),
            insensitive: flag(self.insensitive),
            skip_ignored: flag(self.skip_ignored),
            skip_hidden: flag(self.skip_hidden),
            files_only: flag(self.files_only),
            limit: self.limit.map(|limit| limit.max(0) as usize),
        }
    }
}

/// A standardized address to load containers, directories, secrets, and other object types. Address format depends on the type, and is validated at type selection.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Address {
    pub(crate) value: String,
}

impl Address {
    fn local_path(&self) -> String {
        self.value
            .strip_prefix("file://")
            .unwrap_or(&self.value)
            .to_owned()
    }

    /// This address as a Git address; an error where it is none.
    fn git(&self) -> Result<ops::GitAddress> {
        ops::GitAddress::parse(&self.value).ok_or_else(|| {
            gql(gantry_core::Error::InvalidArgument {
                message: format!(
                    "address {:?} is not a Git URL: give URL[#REF][:PATH], the URL with a \
                     scheme (https://, http://, git://, ssh://) or as user@host:path",
                    self.value
                ),
            })
        })
    }

    /// `git(url)` for the Git address `git`, as `git` defaults.
    fn git_repository_of(ctx: &Context<'_>, git: &ops::GitAddress) -> Arc<DagNode> {
        add(
            ctx,
            ops::Git {
                url: ops::normalize_url(&git.url),
                keep_git_dir: true,
                ssh_known_hosts: String::new(),
                http_auth_username: String::new(),
                http_auth_token: None,
                http_auth_header: None,
                ssh_auth_socket: None,
                service_host: None,
            },
        )
    }

    /// The address's ref of `repository` (`ref(REF)`, or `head` without one).
    fn git_ref_of(
        ctx: &Context<'_>,
        repository: &Arc<DagNode>,
        git: &ops::GitAddress,
    ) -> super::GitRef {
        super::GitRef(add(
            ctx,
            ops::GitRef {
                repository: repository.digest,
                selector: match &git.reference {
                    Some(name) => ops::RefSelector::Ref(name.clone()),
                    None => ops::RefSelector::Head,
                },
            },
        ))
    }

    /// The tree of the Git address `git` (`git(url).ref(REF).tree()`, or
    /// `head` without a ref), as `git` and `tree` default.
    fn git_tree(ctx: &Context<'_>, git: &ops::GitAddress) -> Directory {
        let repository = Self::git_repository_of(ctx, git);
        let reference = Self::git_ref_of(ctx, &repository, git);
        Directory(add(
            ctx,
            ops::GitTree {
                reference: reference.0.digest,
                discard_git_dir: false,
                depth: 1,
                include_tags: false,
            },
        ))
    }
}

#[Object]
impl Address {
    /// A unique identifier for this Address.
    pub(crate) async fn id(&self) -> ID {
        value_id("Address", self)
    }

    /// The address value
    async fn value(&self) -> &str {
        &self.value
    }

    /// Load a container from the address.
    async fn container(&self, ctx: &Context<'_>) -> Container {
        let scratch = add(ctx, gantry_core::ops::Scratch { platform: None });
        Container(add(
            ctx,
            gantry_core::ops::FromImage {
                parent: scratch.digest,
                address: self.value.clone(),
                registry_service: None,
            },
        ))
    }

    /// Load a directory from the address.
    async fn directory(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(Vec::new())")] exclude: Option<Vec<String>>,
        #[graphql(default_with = "Some(Vec::new())")] include: Option<Vec<String>>,
        #[graphql(default_with = "Some(false)")] gitignore: Option<bool>,
        #[graphql(default_with = "Some(false)")] no_cache: Option<bool>,
    ) -> Result<Directory> {
        if let Some(git) = ops::GitAddress::parse(&self.value) {
            let mut directory = Self::git_tree(ctx, &git);
            if let Some(path) = git.path {
                directory = Directory(add(
                    ctx,
                    ops::Subdirectory {
                        parent: directory.0.digest,
                        path,
                    },
                ));
            }
            let (exclude, include) = (exclude.unwrap_or_default(), include.unwrap_or_default());
            let gitignore = gitignore.unwrap_or(false);
            if !exclude.is_empty() || !include.is_empty() || gitignore {
                directory = Directory(add(
                    ctx,
                    ops::DirectoryFilter {
                        parent: directory.0.digest,
                        include,
                        exclude,
                        gitignore,
                    },
                ));
            }
            return Ok(directory);
        }
        Host.directory(
            ctx,
            self.local_path(),
            exclude,
            include,
            no_cache,
            gitignore,
        )
        .await
    }

    /// Load a file from the address.
    async fn file(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(Vec::new())")] exclude: Option<Vec<String>>,
        #[graphql(default_with = "Some(Vec::new())")] include: Option<Vec<String>>,
        #[graphql(default_with = "Some(false)")] gitignore: Option<bool>,
        #[graphql(default_with = "Some(false)")] no_cache: Option<bool>,
    ) -> Result<File> {
        // Filters select files of a directory: for one file they would be
        // ignored, so they are refused (as every ignored option is).
        if !exclude.unwrap_or_default().is_empty()
            || !include.unwrap_or_default().is_empty()
            || gitignore.unwrap_or(false)
        {
            return Err(super::unsupported(
                "Address.file(exclude:, include:, gitignore:)",
                "they filter directories; load the file without them, or use Address.directory",
            ));
        }
        if let Some(git) = ops::GitAddress::parse(&self.value) {
            let Some(path) = git.path.clone() else {
                return Err(gql(gantry_core::Error::InvalidArgument {
                    message: format!(
                        "address {:?} names no file in the repository: name it as \
                         URL#REF:PATH (URL#:PATH at HEAD); an HTTP download is Query.http",
                        self.value
                    ),
                }));
            };
            let tree = Self::git_tree(ctx, &git);
            return Ok(File(add(
                ctx,
                ops::DirectoryFile {
                    parent: tree.0.digest,
                    path,
                },
            )));
        }
        Host.file(ctx, self.local_path(), no_cache).await
    }

    /// Load a git ref (branch, tag or commit) from the address.
    async fn git_ref(&self, ctx: &Context<'_>) -> Result<super::GitRef> {
        let git = self.git()?;
        let repository = Self::git_repository_of(ctx, &git);
        Ok(Self::git_ref_of(ctx, &repository, &git))
    }

    /// Load a git repository from the address.
    async fn git_repository(&self, ctx: &Context<'_>) -> Result<super::GitRepository> {
        let git = self.git()?;
        Ok(super::GitRepository(Self::git_repository_of(ctx, &git)))
    }

    /// Load a secret from the address.
    async fn secret(&self, ctx: &Context<'_>) -> Result<Secret> {
        let value = crate::secret_from_uri(&self.value, client(ctx)).map_err(gql)?;
        Ok(Secret(engine(ctx).set_secret(&self.value, &value)))
    }
}

/// An error raised by a pipeline, with values attached.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ErrorObject {
    pub(crate) message: String,
    pub(crate) values: Vec<ErrorValue>,
}

#[Object(name = "Error")]
impl ErrorObject {
    /// A unique identifier for this Error.
    pub(crate) async fn id(&self) -> ID {
        value_id("Error", self)
    }

    /// A description of the error.
    async fn message(&self) -> &str {
        &self.message
    }

    /// The extensions of the error.
    async fn values(&self) -> &[ErrorValue] {
        &self.values
    }

    /// Add a value to the error.
    async fn with_value(
        &self,
        #[graphql(desc = "The name of the value.")] name: String,
        #[graphql(desc = "The value to store on the error.")] value: Json,
    ) -> Result<ErrorObject> {
        serde_json::from_str::<serde_json::Value>(&value.0).map_err(|source| {
            gql(gantry_core::Error::InvalidArgument {
                message: format!("withValue: invalid JSON: {source}"),
            })
        })?;
        let mut out = self.clone();
        out.values.push(ErrorValue {
            name,
            value: value.0,
        });
        Ok(out)
    }
}

/// A value attached to an error.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ErrorValue {
    name: String,
    value: String,
}

#[Object]
impl ErrorValue {
    /// A unique identifier for this ErrorValue.
    pub(crate) async fn id(&self) -> ID {
        value_id("ErrorValue", self)
    }

    /// The name of the value.
    async fn name(&self) -> &str {
        &self.name
    }

    /// The value.
    async fn value(&self) -> Json {
        Json(self.value.clone())
    }
}
