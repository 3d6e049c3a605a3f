//! `RUN`: a `withExec` between the ops that set up and take down what it
//! alone sees: `ARG` values as variables and its `--mount`s (cache
//! volumes, secrets, bind mounts of the context or another stage, tmpfs,
//! the SSH agent's socket).

use parse_dockerfile::{Command, RunInstruction};

use super::build::{StageState, PROXY_ARGS};
use super::errors::{invalid, unsupported};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ops::config::{WithSecretVariable, WithoutEnvVariable};
use crate::ops::directory::Subdirectory;
use crate::ops::exec::{ExecArgs, WithExec};
use crate::ops::file::DirectoryFile;
use crate::ops::handle::CacheVolume;
use crate::ops::mount::{
    WithMountedCache, WithMountedDirectory, WithMountedFile, WithMountedSecret, WithMountedTemp,
    WithoutMount,
};
use crate::ops::read::{ContainerDirectory, ContainerFile};
use crate::ops::socket::WithUnixSocket;
use crate::tree::{self, Entry};
use crate::value::Sharing;

/// One `--mount=…`, its options by name (`target`, `type`, …).
struct MountSpec {
    options: Vec<(String, String)>,
}

impl MountSpec {
    fn parse(text: &str) -> Self {
        let options = text
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('=') {
                Some((key, value)) => (key.trim().to_ascii_lowercase(), value.trim().to_owned()),
                None => (part.trim().to_ascii_lowercase(), "true".to_owned()),
            })
            .collect();
        Self { options }
    }

    fn get(&self, names: &[&str]) -> Option<&str> {
        self.options
            .iter()
            .find(|(key, _)| names.contains(&key.as_str()))
            .map(|(_, value)| value.as_str())
    }

    fn flag(&self, names: &[&str]) -> bool {
        self.get(names)
            .is_some_and(|value| value.is_empty() || value.eq_ignore_ascii_case("true"))
    }

    fn target(&self) -> Option<&str> {
        self.get(&["target", "dst", "destination"])
    }
}

/// What a `RUN` set up that must go again after it.
#[derive(Default)]
struct Undo {
    /// Mount targets of every kind (`WithoutMount` removes any mount).
    mounts: Vec<String>,
    variables: Vec<String>,
    /// `type=ssh` mounts seen so far (their default targets count up).
    ssh_mounts: usize,
}

impl StageState<'_, '_> {
    pub(super) async fn run(&mut self, run: &RunInstruction<'_>) -> Result<()> {
        let vars = self.vars()?;
        let mut mounts = Vec::new();
        for flag in &run.options {
            let value = flag
                .value
                .as_ref()
                .map(|v| v.value.as_ref())
                .unwrap_or_default();
            let value = super::words::word(value, &vars, self.build.escape)?;
            match flag.name.value.as_ref() {
                "mount" => mounts.push(MountSpec::parse(&value)),
                "network" if value == "default" => {}
                "network" => {
                    return Err(unsupported(format!(
                        "RUN --network={value} is not supported (only the default network)"
                    )))
                }
                "security" if value == "sandbox" => {}
                "security" => return Err(unsupported("RUN --security=insecure is not supported")),
                other => return Err(unsupported(format!("RUN --{other} is not supported"))),
            }
        }
        let (args, stdin) = self.run_command(run)?;
        let mut undo = Undo::default();
        let mut variables = self.arg_env()?;
        for (name, value) in self.build_proxy_args() {
            if !variables.iter().any(|(existing, _)| *existing == name) {
                variables.push((name, value));
            }
        }
        for (name, value) in variables {
            self.run_variable(name, value, &mut undo).await?;
        }
        for mount in &mounts {
            self.mount(mount, &mut undo).await?;
        }
        self.then(|parent| WithExec {
            parent,
            exec: ExecArgs {
                args,
                stdin,
                ..ExecArgs::default()
            },
        })
        .await?;
        for path in undo.mounts {
            self.then(|parent| WithoutMount { parent, path }).await?;
        }
        for name in undo.variables {
            self.then(|parent| WithoutEnvVariable { parent, name })
                .await?;
        }
        Ok(())
    }

    /// Proxy settings given as build args reach `RUN` without an `ARG`.
    fn build_proxy_args(&self) -> Vec<(String, String)> {
        PROXY_ARGS
            .into_iter()
            .filter_map(|name| {
                self.build
                    .build_arg(name)
                    .map(|value| (name.to_owned(), value))
            })
            .collect()
    }

    /// The command and its stdin. A heredoc alone is the script the shell
    /// runs; after a command (`RUN python3 <<EOF`) it is that command's stdin.
    fn run_command(&self, run: &RunInstruction<'_>) -> Result<(Vec<String>, String)> {
        match run.here_docs.as_slice() {
            [] => Ok((self.command(&run.arguments), String::new())),
            [here] => {
                // The shell that runs it expands its variables.
                let body = here.value.to_string();
                let rest = match &run.arguments {
                    Command::Shell(text) => text.value.trim(),
                    _ => "",
                };
                if rest.is_empty() {
                    let mut args = self.shell.clone();
                    args.push(body);
                    Ok((args, String::new()))
                } else {
                    Ok((self.command(&run.arguments), body))
                }
            }
            _ => Err(unsupported(
                "RUN with more than one heredoc is not supported",
            )),
        }
    }

    async fn mount(&mut self, mount: &MountSpec, undo: &mut Undo) -> Result<()> {
        let kind = mount.get(&["type"]).unwrap_or("bind").to_ascii_lowercase();
        match kind.as_str() {
            "cache" => self.cache_mount(mount, undo).await,
            "secret" => self.secret_mount(mount, undo).await,
            "bind" => self.bind_mount(mount, undo).await,
            "tmpfs" => {
                let path = self.mount_target(mount, "tmpfs")?;
                let size = mount
                    .get(&["size"])
                    .map(|size| size.parse::<u64>())
                    .transpose()
                    .map_err(|_| {
                        invalid("RUN --mount=type=tmpfs: size must be a number of bytes")
                    })?;
                undo.mounts.push(path.clone());
                self.then(|parent| WithMountedTemp { parent, path, size })
                    .await
            }
            "ssh" => self.ssh_mount(mount, undo).await,
            other => Err(invalid(format!("RUN --mount: unknown type {other:?}"))),
        }
    }

    fn mount_target(&self, mount: &MountSpec, kind: &str) -> Result<String> {
        let target = mount
            .target()
            .ok_or_else(|| invalid(format!("RUN --mount=type={kind} needs a target")))?;
        tree::absolute(&self.container()?.workdir(), target)
    }

    /// Owner `uid:gid` from `uid=`/`gid=` options, empty when neither.
    fn owner(mount: &MountSpec) -> Result<String> {
        let number = |names: &[&str]| -> Result<Option<u32>> {
            mount
                .get(names)
                .map(|value| {
                    value.parse::<u32>().map_err(|_| {
                        invalid(format!("RUN --mount: {}={value} is not a number", names[0]))
                    })
                })
                .transpose()
        };
        Ok(match (number(&["uid"])?, number(&["gid"])?) {
            (None, None) => String::new(),
            (uid, gid) => format!("{}:{}", uid.unwrap_or(0), gid.unwrap_or(0)),
        })
    }

    async fn cache_mount(&mut self, mount: &MountSpec, undo: &mut Undo) -> Result<()> {
        let path = self.mount_target(mount, "cache")?;
        if mount.get(&["from", "source", "src"]).is_some() {
            return Err(unsupported(
                "RUN --mount=type=cache with from/source is not supported",
            ));
        }
        let key = mount.get(&["id"]).unwrap_or(&path).to_owned();
        let sharing = match mount.get(&["sharing"]).unwrap_or("shared") {
            "shared" => Sharing::Shared,
            "private" => Sharing::Private,
            "locked" => Sharing::Locked,
            other => return Err(invalid(format!("RUN --mount: unknown sharing {other:?}"))),
        };
        let owner = Self::owner(mount)?;
        let cache = self
            .eval(CacheVolume {
                key,
                source: None,
                sharing: None,
                owner: String::new(),
            })
            .await?;
        undo.mounts.push(path.clone());
        self.then(|parent| WithMountedCache {
            parent,
            path,
            cache,
            source: None,
            sharing: Some(sharing),
            owner,
            inherit_owner: false,
        })
        .await
    }

    async fn secret_mount(&mut self, mount: &MountSpec, undo: &mut Undo) -> Result<()> {
        let target = mount.target().map(str::to_owned);
        let id = match (mount.get(&["id"]), &target) {
            (Some(id), _) => id.to_owned(),
            (None, Some(target)) => tree::split_parent(target).1,
            (None, None) => return Err(invalid("RUN --mount=type=secret needs an id or a target")),
        };
        let Some((_, secret, _)) = self.build.secrets.iter().find(|(name, _, _)| *name == id)
        else {
            if mount.flag(&["required"]) {
                return Err(invalid(format!(
                    "secret {id:?} is required but was not passed: add it to dockerBuild(secrets:) as a secret named {id:?}"
                )));
            }
            return Ok(());
        };
        let secret: Digest = *secret;
        if let Some(name) = mount.get(&["env"]) {
            let name = name.to_owned();
            undo.variables.push(name.clone());
            self.then(|parent| WithSecretVariable {
                parent,
                name,
                secret,
            })
            .await?;
            if target.is_none() {
                return Ok(());
            }
        }
        let path = tree::absolute(
            &self.container()?.workdir(),
            &target.unwrap_or_else(|| format!("/run/secrets/{id}")),
        )?;
        let mode = match mount.get(&["mode"]) {
            Some(mode) => u32::from_str_radix(mode, 8)
                .map_err(|_| invalid(format!("RUN --mount: mode {mode:?} is not octal")))?,
            None => 0o400,
        };
        undo.mounts.push(path.clone());
        self.then(|parent| WithMountedSecret {
            parent,
            path,
            secret,
            mode,
            owner: String::new(),
            inherit_owner: false,
        })
        .await
    }

    /// `type=ssh`: the build's SSH agent (`dockerBuild(ssh:)`) at `target`,
    /// else `/run/buildkit/ssh_agent.N` (N counting this `RUN`'s ssh
    /// mounts), and `SSH_AUTH_SOCK` naming the first unless the stage sets
    /// it. The build has one agent, so it serves every `id`. Without one the
    /// mount is left out, or fails when `required`.
    async fn ssh_mount(&mut self, mount: &MountSpec, undo: &mut Undo) -> Result<()> {
        let index = undo.ssh_mounts;
        undo.ssh_mounts += 1;
        if let Some(option) = ["uid", "gid", "mode"]
            .into_iter()
            .find(|option| mount.get(&[option]).is_some())
        {
            return Err(unsupported(format!(
                "RUN --mount=type=ssh,{option}=… is not supported (the agent's socket keeps its owner and mode from the host)"
            )));
        }
        let Some((source, _)) = &self.build.ssh else {
            if mount.flag(&["required"]) {
                return Err(invalid(
                    "RUN --mount=type=ssh,required: no SSH agent was given to the build; pass dockerBuild(ssh:) a socket (host.unixSocket(path:) of your SSH_AUTH_SOCK)",
                ));
            }
            return Ok(());
        };
        let source = *source;
        let path = match mount.target() {
            Some(target) => tree::absolute(&self.container()?.workdir(), target)?,
            None => format!("/run/buildkit/ssh_agent.{index}"),
        };
        undo.mounts.push(path.clone());
        let value = path.clone();
        self.then(|parent| WithUnixSocket {
            parent,
            path,
            source,
        })
        .await?;
        let stage_sets_it = self
            .container()?
            .config
            .env
            .iter()
            .any(|(name, _)| name == "SSH_AUTH_SOCK");
        if index == 0 && !stage_sets_it {
            self.run_variable("SSH_AUTH_SOCK".to_owned(), value, undo)
                .await?;
        }
        Ok(())
    }

    /// Sets a variable for this `RUN` only: `undo` removes it after.
    async fn run_variable(&mut self, name: String, value: String, undo: &mut Undo) -> Result<()> {
        undo.variables.push(name.clone());
        self.set_env(name, value).await
    }

    async fn bind_mount(&mut self, mount: &MountSpec, undo: &mut Undo) -> Result<()> {
        let path = self.mount_target(mount, "bind")?;
        let source = mount.get(&["source", "src"]).unwrap_or("/").to_owned();
        let read_only = !mount.flag(&["rw", "readwrite"]);
        let (digest, is_dir) = match mount.get(&["from"]) {
            None => self.context_path(&source).await?,
            Some(from) => {
                let container = self.container_of(from).await?;
                self.container_path(container, &source).await?
            }
        };
        undo.mounts.push(path.clone());
        if is_dir {
            self.then(|parent| WithMountedDirectory {
                parent,
                path,
                source: digest,
                read_only,
                owner: String::new(),
                inherit_owner: false,
            })
            .await
        } else {
            self.then(|parent| WithMountedFile {
                parent,
                path,
                source: digest,
                owner: String::new(),
                inherit_owner: false,
            })
            .await
        }
    }

    /// A path of the build context as a node: (digest, is a directory).
    pub(super) async fn context_path(&mut self, path: &str) -> Result<(Digest, bool)> {
        let inner = tree::normalize(path)?;
        let context = self.build.context.0;
        if inner.is_empty() {
            return Ok((context, true));
        }
        let (tree, _) = self.graph.value(&context).directory()?;
        match tree.get(&inner) {
            Some(Entry::Dir { .. }) => {
                let digest = self
                    .eval(Subdirectory {
                        parent: context,
                        path: inner,
                    })
                    .await?;
                Ok((digest, true))
            }
            Some(_) => {
                let digest = self
                    .eval(DirectoryFile {
                        parent: context,
                        path: inner,
                    })
                    .await?;
                Ok((digest, false))
            }
            None => Err(invalid(format!(
                "{path}: not found in the build context (or excluded by .dockerignore)"
            ))),
        }
    }

    /// A path of a container (another stage, an image) as a node.
    pub(super) async fn container_path(
        &mut self,
        container: Digest,
        path: &str,
    ) -> Result<(Digest, bool)> {
        let path = tree::absolute("/", path)?;
        let directory = ContainerDirectory {
            container,
            path: path.clone(),
        };
        match self.eval(directory).await {
            Ok(digest) => Ok((digest, true)),
            Err(Error::NotADirectory { .. }) => {
                let digest = self.eval(ContainerFile { container, path }).await?;
                Ok((digest, false))
            }
            Err(other) => Err(other),
        }
    }

    /// `--from=`: a stage (by name or index) or an image.
    pub(super) async fn container_of(&mut self, from: &str) -> Result<Digest> {
        match self.build.stage_index(from) {
            Some(stage) => self.other_stage(stage).await,
            None => self.image(from.to_owned()).await,
        }
    }
}
