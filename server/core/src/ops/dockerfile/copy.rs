//! `COPY` and `ADD`: files and directories from the build context, another
//! stage or an image (`--from`), heredocs, and for `ADD` HTTP(S) URLs,
//! each placed with a `withFile`/`withDirectory` (`WithContent`) op.

use parse_dockerfile::{Flag, Source};

use super::build::StageState;
use super::errors::{invalid, unsupported};
use super::words;
use crate::digest::Digest;
use crate::error::Result;
use crate::ops::directory::Subdirectory;
use crate::ops::file::{DirectoryFile, NewFile};
use crate::ops::http::Http;
use crate::ops::read::ContainerDirectory;
use crate::ops::rootfs::WithContent;
use crate::owner::OwnerSpec;
use crate::tree::{self, Entry, Tree};

/// Glob characters Docker's source paths may hold.
fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// What `COPY`'s flags ask for.
#[derive(Default)]
struct CopyFlags {
    from: Option<String>,
    owner: String,
    permissions: Option<u32>,
    exclude: Vec<String>,
    checksum: Option<String>,
}

/// One thing to place: a node and whether it is a directory.
struct Item {
    digest: Digest,
    is_dir: bool,
    /// Its name, for a destination directory.
    name: String,
}

impl StageState<'_, '_> {
    fn copy_flags(&self, flags: &[Flag<'_>], add: bool) -> Result<CopyFlags> {
        let mut out = CopyFlags::default();
        let vars = self.vars()?;
        for flag in flags {
            let raw = flag
                .value
                .as_ref()
                .map(|v| v.value.as_ref())
                .unwrap_or_default();
            let value = words::word(raw, &vars, self.build.escape)?;
            match flag.name.value.as_ref() {
                "from" => out.from = Some(value),
                "chown" => {
                    // Names resolve against the stage's /etc/passwd and
                    // /etc/group when the step runs, as for `owner:`.
                    OwnerSpec::parse(&value)
                        .map_err(|error| invalid(format!("--chown={value}: {error}")))?;
                    out.owner = value;
                }
                "chmod" => {
                    let mode = u32::from_str_radix(&value, 8).map_err(|_| {
                        invalid(format!("--chmod={value}: only octal modes are supported"))
                    })?;
                    out.permissions = Some(mode);
                }
                "exclude" => out.exclude.push(value),
                "link" => {}
                "checksum" if add => out.checksum = Some(value),
                other => return Err(unsupported(format!("--{other} is not supported"))),
            }
        }
        Ok(out)
    }

    pub(super) async fn copy(
        &mut self,
        flags: &[Flag<'_>],
        sources: &[Source<'_>],
        dest: &parse_dockerfile::UnescapedString<'_>,
        add: bool,
    ) -> Result<()> {
        let what = if add { "ADD" } else { "COPY" };
        let flags = self.copy_flags(flags, add)?;
        let raw_dest = self.word(&dest.value)?;
        let dest = tree::absolute(&self.container()?.workdir(), &raw_dest)?;
        let mut items = Vec::new();
        let mut many = sources.len() > 1;
        let base = match &flags.from {
            Some(from) => Some(self.container_of(from).await?),
            None => None,
        };
        for source in sources {
            match source {
                Source::HereDoc(here) => {
                    let contents = if here.expand {
                        self.word(&format!("\"{}\"", here.value.replace('"', "\\\"")))?
                    } else {
                        here.value.to_string()
                    };
                    let file = self
                        .eval(NewFile {
                            contents,
                            permissions: 0o644,
                        })
                        .await?;
                    items.push(Item {
                        digest: file,
                        is_dir: false,
                        name: String::new(),
                    });
                }
                Source::Path(path) => {
                    let path = self.word(&path.value)?;
                    many |= is_glob(&path);
                    items.extend(self.resolve(&path, base, add, &flags, what).await?);
                }
                _ => return Err(unsupported(format!("{what}: unsupported source"))),
            }
        }
        let into_dir = many || raw_dest.ends_with('/');
        for item in items {
            let path = if !item.is_dir && into_dir {
                if item.name.is_empty() {
                    return Err(invalid(format!(
                        "{what}: a heredoc needs a file destination, not a directory"
                    )));
                }
                format!("{}/{}", dest.trim_end_matches('/'), item.name)
            } else {
                dest.clone()
            };
            let (owner, permissions) = (flags.owner.clone(), flags.permissions);
            let exclude = if item.is_dir {
                flags.exclude.clone()
            } else {
                Vec::new()
            };
            self.then(|parent| WithContent {
                parent,
                path,
                source: item.digest,
                permissions,
                owner,
                include: Vec::new(),
                exclude,
                inherit_owner: false,
                gitignore: false,
            })
            .await?;
        }
        Ok(())
    }

    /// The items one source path names: in the context, or in `base` (a
    /// container) for `--from`; globs match many; for `ADD`, a URL.
    async fn resolve(
        &mut self,
        path: &str,
        base: Option<Digest>,
        add: bool,
        flags: &CopyFlags,
        what: &str,
    ) -> Result<Vec<Item>> {
        if add && (path.starts_with("http://") || path.starts_with("https://")) {
            if path.ends_with(".git") || path.contains(".git#") {
                return Err(unsupported("ADD of a Git repository is not supported"));
            }
            let file = self
                .eval(Http {
                    url: path.to_owned(),
                    name: None,
                    permissions: None,
                    checksum: flags.checksum.clone(),
                    auth_header: None,
                    service_host: None,
                })
                .await?;
            let name = self.graph.value(&file).file()?.name.clone();
            return Ok(vec![Item {
                digest: file,
                is_dir: false,
                name,
            }]);
        }
        if path.starts_with("git@") || path.contains("://") {
            return Err(unsupported(format!("{what} of {path:?} is not supported")));
        }
        let items = match base {
            None => self.resolve_in_context(path).await?,
            Some(container) => self.resolve_in_container(container, path).await?,
        };
        if add && base.is_none() {
            for item in items.iter().filter(|item| !item.is_dir) {
                self.refuse_archive(item.digest, path)?;
            }
        }
        Ok(items)
    }

    async fn resolve_in_context(&mut self, path: &str) -> Result<Vec<Item>> {
        if !is_glob(path) {
            let (digest, is_dir) = self.context_path(path).await?;
            let name = Tree::name_of(&tree::normalize(path)?).to_owned();
            return Ok(vec![Item {
                digest,
                is_dir,
                name,
            }]);
        }
        let context = self.build.context.0;
        let (tree, _) = self.graph.value(&context).directory()?;
        self.glob(&tree, context, path, "").await
    }

    /// Matches `pattern` against `tree` (the directory node `parent`),
    /// whose paths sit under `prefix` in what the user named.
    async fn glob(
        &mut self,
        tree: &Tree,
        parent: Digest,
        pattern: &str,
        prefix: &str,
    ) -> Result<Vec<Item>> {
        let pattern = tree::normalize(pattern)?;
        let relative = pattern
            .strip_prefix(prefix)
            .map_or(pattern.as_str(), |rest| rest.trim_start_matches('/'));
        let matcher = globset::GlobBuilder::new(relative)
            .literal_separator(true)
            .build()
            .map_err(|error| invalid(format!("invalid pattern {pattern:?}: {error}")))?
            .compile_matcher();
        let matches: Vec<(String, bool)> = tree
            .entries
            .iter()
            .filter(|(path, _)| matcher.is_match(path.as_str()))
            .map(|(path, entry)| (path.clone(), matches!(entry, Entry::Dir { .. })))
            .collect();
        if matches.is_empty() {
            return Err(invalid(format!(
                "no source files were specified: {pattern:?} matches nothing"
            )));
        }
        let mut items = Vec::new();
        for (path, is_dir) in matches {
            let name = Tree::name_of(&path).to_owned();
            let digest = if is_dir {
                self.eval(Subdirectory { parent, path }).await?
            } else {
                self.eval(DirectoryFile { parent, path }).await?
            };
            items.push(Item {
                digest,
                is_dir,
                name,
            });
        }
        Ok(items)
    }

    async fn resolve_in_container(&mut self, container: Digest, path: &str) -> Result<Vec<Item>> {
        let absolute = tree::absolute("/", path)?;
        if !is_glob(&absolute) {
            let (digest, is_dir) = self.container_path(container, &absolute).await?;
            return Ok(vec![Item {
                digest,
                is_dir,
                name: Tree::name_of(&absolute).to_owned(),
            }]);
        }
        // Read the directory above the first glob, then match in it.
        let literal: Vec<&str> = absolute
            .split('/')
            .take_while(|part| !is_glob(part))
            .collect();
        let dir = format!("/{}", literal.join("/").trim_start_matches('/'));
        let parent = self
            .eval(ContainerDirectory {
                container,
                path: dir.clone(),
            })
            .await?;
        let (tree, _) = self.graph.value(&parent).directory()?;
        let prefix = tree::normalize(&dir)?;
        self.glob(&tree, parent, &absolute, &prefix).await
    }

    /// `ADD` unpacks local archives; gantry does not, so it refuses them
    /// rather than copying the archive where its contents were expected.
    fn refuse_archive(&self, file: Digest, path: &str) -> Result<()> {
        let blob = self.graph.value(&file).file()?.blob;
        let bytes = self.build.cx.store.get_blob(&blob)?;
        let magic: [&[u8]; 4] = [b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"];
        let tar = bytes.len() > 262 && &bytes[257..262] == b"ustar";
        if tar || magic.iter().any(|m| bytes.starts_with(m)) {
            return Err(unsupported(format!(
                "ADD {path}: unpacking local archives is not supported; COPY it and RUN tar"
            )));
        }
        Ok(())
    }
}
