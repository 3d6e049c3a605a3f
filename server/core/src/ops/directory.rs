//! Ops that build directories from other directories and files, in
//! memory: file contents go to the blob store, nothing runs.

use serde::{Deserialize, Serialize};

use crate::changes;
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{is_false, Call, OpEncoder, Operation};
use crate::owner::{Accounts, Owner, OwnerSpec};
use crate::tree::{self, Entry, PathFilter, Tree};
use crate::value::{Kind, Value};

/// The owner an `owner:` argument names for content put into `tree`:
/// names are looked up in the tree's own `etc/passwd` and `etc/group`, as
/// Dagger does for directories. `None`: leave owners as they are.
fn directory_owner(cx: &Context, tree: &Tree, owner: &str) -> Result<Option<Owner>> {
    let Some(spec) = OwnerSpec::parse(owner)? else {
        return Ok(None);
    };
    if let Some(numeric) = spec.numeric() {
        return Ok(Some(numeric));
    }
    let text = |path: &str| -> Result<Option<String>> {
        match tree.get(path) {
            Some(Entry::File { blob, .. }) => Ok(Some(
                String::from_utf8_lossy(&cx.store.get_blob(blob)?).into_owned(),
            )),
            _ => Ok(None),
        }
    };
    let accounts = Accounts {
        of: "the directory",
        passwd: text("etc/passwd")?,
        group: text("etc/group")?,
    };
    spec.resolve(&accounts).map(Some)
}

/// `Query.directory`: an empty directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyDirectory {}

impl Operation for EmptyDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        Vec::new()
    }

    fn encode(&self, _e: &mut OpEncoder<'_>) {}

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Ok(Value::from_tree(Tree::default()))
    }
}

/// `Directory.withNewFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithNewFile {
    pub parent: Digest,
    pub path: String,
    pub contents: String,
    pub permissions: u32,
}

impl Operation for DirectoryWithNewFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.path)
            .str(&self.contents)
            .u64(u64::from(self.permissions));
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let blob = cx.store.put_blob(self.contents.as_bytes())?;
        let entry = Entry::File {
            blob,
            size: self.contents.len() as u64,
            mode: self.permissions,
            mtime: 0,
            owner: Owner::ROOT,
        };
        tree.insert(&self.path, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withNewDirectory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithNewDirectory {
    pub parent: Digest,
    pub path: String,
    pub permissions: u32,
}

impl Operation for DirectoryWithNewDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .str(&self.path)
            .u64(u64::from(self.permissions));
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let entry = Entry::dir(self.permissions);
        tree.insert(&self.path, entry)
            .map_err(|error| match error {
                Error::PathEscapes { path } => Error::InvalidArgument {
                    message: format!(
                    "cannot create directory outside parent: path {} climbs out of the directory",
                    crate::text::quoted(&path)
                ),
                },
                other => other,
            })?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withFile`. A destination that is a directory (the root,
/// `dir/`, or an existing directory) receives the file under its own name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithFile {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub permissions: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

impl Operation for DirectoryWithFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source)
            .opt_u64(self.permissions.map(u64::from));
        e.added_str("owner", &self.owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let file = call.inputs.file(&self.source)?;
        let mut entry = file.entry(self.permissions);
        if let Some(owner) = directory_owner(cx, &tree, &self.owner)? {
            entry.set_owner(owner);
        }
        let path = file_destination(&tree, &self.path, &file.name)?;
        tree.insert(&path, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// Where a file copied to `path` in `tree` goes: `path` itself, or
/// `path/<name>` when `path` names a directory (the root, a trailing `/` or
/// `/.`, or a directory that exists), as Dagger's copy does.
pub(super) fn file_destination(tree: &Tree, path: &str, name: &str) -> Result<String> {
    let normalized = tree::normalize(path)?;
    let names_dir = normalized.is_empty()
        || path.ends_with('/')
        || path.ends_with("/.")
        || path == "."
        || tree.get(&normalized).is_some_and(Entry::is_dir);
    if !names_dir {
        return Ok(normalized);
    }
    if name.is_empty() {
        return Err(crate::error::Error::InvalidArgument {
            message: format!(
                "{path:?} is a directory and the file has no name to take in it; give a file path"
            ),
        });
    }
    Ok(if normalized.is_empty() {
        name.to_owned()
    } else {
        format!("{normalized}/{name}")
    })
}

/// `Directory.withDirectory`: merges `source` (filtered) in at `path`,
/// optionally with one owner and one mode for everything copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithDirectory {
    pub parent: Digest,
    pub path: String,
    pub source: Digest,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub gitignore: bool,
}

impl Operation for DirectoryWithDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.source]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.input(&self.source)
            .strs(&self.include)
            .strs(&self.exclude);
        e.added_str("owner", &self.owner)
            .added_u64("permissions", self.permissions.map(u64::from))
            .added_flag("gitignore", self.gitignore);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let source = call.inputs.tree(&self.source)?;
        let filter = PathFilter::new(&self.include, &self.exclude)?;
        let gitignores = match self.gitignore {
            true => Some(source.gitignores(cx.store.as_ref())?),
            false => None,
        };
        let mut copied = source.filtered(&filter, gitignores.as_ref());
        let owner = directory_owner(cx, &tree, &self.owner)?;
        if let Some(owner) = owner {
            copied.set_owners(owner);
        }
        if let Some(mode) = self.permissions {
            copied.set_modes(mode);
        }
        tree.merge_at(&self.path, &copied)?;
        // The destination directory takes the owner and mode too.
        if let Some(Entry::Dir {
            mode,
            owner: current,
            ..
        }) = tree.entries.get_mut(&tree::normalize(&self.path)?)
        {
            *mode = self.permissions.unwrap_or(*mode);
            *current = owner.unwrap_or(*current);
        }
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withoutFile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithoutFile {
    pub parent: Digest,
    pub path: String,
}

impl Operation for DirectoryWithoutFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        without(call, &self.parent, &self.path)
    }
}

/// `Directory.withoutDirectory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithoutDirectory {
    pub parent: Digest,
    pub path: String,
}

impl Operation for DirectoryWithoutDirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        without(call, &self.parent, &self.path)
    }
}

/// The directory `parent` without `path` and what is under it (a missing
/// path is not an error).
fn without(call: &Call, parent: &Digest, path: &str) -> Result<Value> {
    let mut tree = (*call.inputs.tree(parent)?).clone();
    remove_matching(&mut tree, path)?;
    Ok(Value::from_tree(tree))
}

/// Removes `path` and what is under it from `tree`. A path with a glob
/// metacharacter (`*`, `?`, `[`) is a pattern, as in Dagger: every entry it
/// matches goes (`*` stays within one directory level).
fn remove_matching(tree: &mut tree::Tree, path: &str) -> Result<()> {
    let path = tree::normalize(path)?;
    if !path.contains(['*', '?', '[']) {
        tree.remove(&path);
        return Ok(());
    }
    let matched: Vec<String> = tree.matching(&path)?.map(|(key, _)| key.clone()).collect();
    for key in matched {
        tree.remove(&key);
    }
    Ok(())
}

/// `Directory.diff`: what `other` adds or changes relative to `parent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryDiff {
    pub parent: Digest,
    pub other: Digest,
}

impl Operation for DirectoryDiff {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.other]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.other);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        let other = call.inputs.tree(&self.other)?;
        Ok(Value::from_tree(tree.diff(&other)?))
    }
}

/// `Directory.withTimestamps`: every file's and directory's mtime
/// (negative means 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithTimestamps {
    pub parent: Digest,
    pub timestamp: i64,
}

impl Operation for DirectoryWithTimestamps {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).i64(self.timestamp);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let stamp = u64::try_from(self.timestamp).unwrap_or(0);
        for entry in tree.entries.values_mut() {
            if let Entry::File { mtime, .. } | Entry::Dir { mtime, .. } = entry {
                *mtime = stamp;
            }
        }
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.chown`: `path` and everything under it (the whole directory
/// for `.` or an empty path) owned by `owner`, names looked up in the
/// directory's own `etc/passwd` and `etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryChown {
    pub parent: Digest,
    pub path: String,
    pub owner: String,
}

impl Operation for DirectoryChown {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path).str(&self.owner);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let Some(owner) = directory_owner(cx, &tree, &self.owner)? else {
            return Err(Error::InvalidArgument {
                message: "chown needs an owner: a user or user:group, each a name or a numeric id"
                    .into(),
            });
        };
        let path = tree::normalize(&self.path)?;
        if !path.is_empty() && tree.get(&path).is_none() {
            return Err(Error::InvalidArgument {
                message: format!(
                    "chown: no such file or directory: {}",
                    crate::text::quoted(&self.path)
                ),
            });
        }
        let prefix = format!("{path}/");
        for (key, entry) in tree.entries.iter_mut() {
            if path.is_empty() || *key == path || key.starts_with(&prefix) {
                entry.set_owner(owner);
            }
        }
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.directory`: the subtree at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subdirectory {
    pub parent: Digest,
    pub path: String,
}

impl Operation for Subdirectory {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        Ok(Value::from_tree(tree.subtree(&self.path)?))
    }
}

// ---- symlinks, several files at once, filters ---------------------------------

/// `Directory.withSymlink`: a symlink at `link_name` (parents created) to
/// `target`, kept as written. An existing entry there is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithSymlink {
    pub parent: Digest,
    pub target: String,
    pub link_name: String,
}

impl Operation for DirectoryWithSymlink {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.target).str(&self.link_name);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let link = tree::normalize(&self.link_name)?;
        if tree.get(&link).is_some() {
            return Err(Error::InvalidArgument {
                message: format!("withSymlink: {} already exists", self.link_name),
            });
        }
        let entry = Entry::Symlink {
            target: self.target.clone(),
            owner: Owner::ROOT,
        };
        tree.insert(&link, entry)?;
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.withFiles`: each file under `path`, by its own name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithFiles {
    pub parent: Digest,
    pub path: String,
    pub sources: Vec<Digest>,
    pub permissions: Option<u32>,
}

impl Operation for DirectoryWithFiles {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        let mut inputs = vec![self.parent];
        inputs.extend(&self.sources);
        inputs
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.path);
        e.u64(self.sources.len() as u64);
        for source in &self.sources {
            e.input(source);
        }
        e.opt_u64(self.permissions.map(u64::from));
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        let files = files_tree(call, &self.sources, self.permissions)?;
        tree.merge_at(&self.path, &files)?;
        Ok(Value::from_tree(tree))
    }
}

/// The files `sources` side by side, by name (`withFiles`).
pub(super) fn files_tree(
    call: &Call,
    sources: &[Digest],
    permissions: Option<u32>,
) -> Result<Tree> {
    let mut tree = Tree::default();
    for source in sources {
        let file = call.inputs.file(source)?;
        if file.name.is_empty() || file.name.contains('/') {
            return Err(Error::InvalidArgument {
                message: format!("withFiles: a file named {:?} cannot be placed by its name; give it one with withName", file.name),
            });
        }
        tree.insert(&file.name, file.entry(permissions))?;
    }
    Ok(tree)
}

/// `Directory.withoutFiles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithoutFiles {
    pub parent: Digest,
    pub paths: Vec<String>,
}

impl Operation for DirectoryWithoutFiles {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).strs(&self.paths);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let mut tree = (*call.inputs.tree(&self.parent)?).clone();
        for path in &self.paths {
            remove_matching(&mut tree, path)?;
        }
        Ok(Value::from_tree(tree))
    }
}

/// `Directory.filter`: the entries `include`/`exclude` keep (as
/// `withDirectory` filters), without what `.gitignore` files inside ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryFilter {
    pub parent: Digest,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub gitignore: bool,
}

impl Operation for DirectoryFilter {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent)
            .strs(&self.include)
            .strs(&self.exclude)
            .bool(self.gitignore);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        // The same filtering as a copy's (`withDirectory`'s include,
        // exclude and gitignore).
        let source = call.inputs.tree(&self.parent)?;
        let filter = PathFilter::new(&self.include, &self.exclude)?;
        let gitignores = match self.gitignore {
            true => Some(source.gitignores(cx.store.as_ref())?),
            false => None,
        };
        Ok(Value::from_tree(
            source.filtered(&filter, gitignores.as_ref()),
        ))
    }
}

// ---- patches and changes ------------------------------------------------------

/// `Directory.withPatch`: a unified diff applied (`git apply` semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithPatch {
    pub parent: Digest,
    pub patch: String,
}

impl Operation for DirectoryWithPatch {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.patch);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        let patched = changes::apply_patch(cx.store.as_ref(), &tree, &self.patch)?;
        Ok(Value::from_tree(patched))
    }
}

/// `Directory.withPatchFile`: the patch is a file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithPatchFile {
    pub parent: Digest,
    pub patch: Digest,
}

impl Operation for DirectoryWithPatchFile {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.patch]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.patch);
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        let file = call.inputs.file(&self.patch)?;
        let patch = String::from_utf8(cx.store.get_blob(&file.blob)?).map_err(|_| {
            Error::InvalidArgument {
                message: "withPatchFile: the patch is not text".into(),
            }
        })?;
        let patched = changes::apply_patch(cx.store.as_ref(), &tree, &patch)?;
        Ok(Value::from_tree(patched))
    }
}

/// `Directory.withChanges`: a changeset's removals and new content
/// applied to this directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithChanges {
    pub parent: Digest,
    pub changes: Digest,
}

impl Operation for DirectoryWithChanges {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent, self.changes]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent);
        e.input(&self.changes);
    }

    async fn evaluate(&self, _cx: &Context, call: &Call) -> Result<Value> {
        let tree = call.inputs.tree(&self.parent)?;
        let changeset = call.inputs.changeset(&self.changes)?;
        let applied = changes::apply(&tree, &changeset.before, &changeset.after)?;
        Ok(Value::from_tree(applied))
    }
}

/// `Directory.withError`: a directory that fails with `message` when used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryWithError {
    pub parent: Digest,
    pub message: String,
}

impl Operation for DirectoryWithError {
    const KIND: Kind = Kind::Directory;

    fn inputs(&self) -> Vec<Digest> {
        vec![self.parent]
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.input(&self.parent).str(&self.message);
    }

    async fn evaluate(&self, _cx: &Context, _call: &Call) -> Result<Value> {
        Err(Error::Raised {
            message: self.message.clone(),
        })
    }
}
