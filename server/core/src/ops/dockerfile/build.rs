//! Interpreting a Dockerfile: stages, `FROM`, `ARG` scoping, and the
//! instructions that only change configuration. `RUN` is in `run.rs`,
//! `COPY`/`ADD` in `copy.rs`.

use futures::future::{BoxFuture, FutureExt};
use parse_dockerfile::{Command, Dockerfile, HealthcheckArguments, Instruction};

use super::errors::{at_line, invalid, unsupported};
use super::words::{self, Vars};
use crate::context::Context;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::eval::{Operation, Subgraph, Tagged};
use crate::inflight::InFlight;
use crate::ops::config::{
    WithDefaultArgs, WithEntrypoint, WithEnvVariable, WithHealthcheck, WithLabel, WithUser,
    WithWorkdir,
};
use crate::ops::directory::EmptyDirectory;
use crate::ops::image::{FromImage, Scratch};
use crate::ops::rootfs::WithContent;
use crate::runtime::Healthcheck;
use crate::tree;
use crate::value::{ContainerState, Value};

/// The label `withExposedPort` records ports in (space-separated here).
const EXPOSED_PORTS_LABEL: &str = "dev.gantry.exposed-port";

/// Build arguments Docker defines without an `ARG` in global scope.
pub(super) const PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The credentials `RUN --mount=type=secret|ssh` mount: the secrets by
/// name, the SSH agent's socket.
pub(super) struct Credentials {
    pub(super) secrets: Vec<(String, Digest, Value)>,
    pub(super) ssh: Option<(Digest, Value)>,
}

/// One Dockerfile build.
pub(super) struct Build<'a> {
    pub(super) cx: &'a Context,
    /// The Dockerfile's text; each stage parses it again (cheap), so no
    /// parse tree has to outlive the borrow of the text.
    text: &'a str,
    /// Each stage's name (`FROM … AS name`), by index.
    names: Vec<Option<String>>,
    pub(super) escape: char,
    /// The (filtered) build context, under its own digest.
    pub(super) context: (Digest, Value),
    pub(super) secrets: Vec<(String, Digest, Value)>,
    /// `dockerBuild(ssh:)`: the SSH agent's socket node and value.
    pub(super) ssh: Option<(Digest, Value)>,
    build_args: &'a [(String, String)],
    pub(super) platform: Option<String>,
    /// `ARG`s before the first `FROM`, with their values.
    meta_args: Vec<(String, Option<String>)>,
    /// Stage results (final container node and value), by index.
    stages: InFlight<usize, (Digest, Value), Error>,
}

/// `TARGETPLATFORM` and friends: gantry builds for the engine's platform.
fn platform_args(platform: Option<&str>) -> Vec<(String, Option<String>)> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let platform = platform.map_or_else(|| format!("linux/{arch}"), str::to_owned);
    let mut parts = platform.splitn(3, '/');
    let (os, arch, variant) = (
        parts.next().unwrap_or("linux").to_owned(),
        parts.next().unwrap_or(arch).to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let mut out = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        out.push((format!("{prefix}PLATFORM"), Some(platform.clone())));
        out.push((format!("{prefix}OS"), Some(os.clone())));
        out.push((format!("{prefix}ARCH"), Some(arch.clone())));
        out.push((format!("{prefix}VARIANT"), Some(variant.clone())));
    }
    out
}

impl<'a> Build<'a> {
    pub(super) fn new(
        cx: &'a Context,
        text: &'a str,
        file: &Dockerfile<'_>,
        context: Value,
        Credentials { secrets, ssh }: Credentials,
        build_args: &'a [(String, String)],
        platform: Option<String>,
    ) -> Self {
        let escape = file
            .parser_directives
            .escape
            .as_ref()
            .map_or('\\', |directive| directive.value.value);
        // The filtered context is named by its content.
        let context = (context.key(), context);
        let names = file
            .stages()
            .map(|stage| {
                stage
                    .from
                    .as_
                    .as_ref()
                    .map(|(_, name)| name.value.to_string())
            })
            .collect();
        Self {
            cx,
            text,
            names,
            escape,
            context,
            secrets,
            ssh,
            build_args,
            platform,
            meta_args: Vec::new(),
            stages: InFlight::default(),
        }
    }

    fn parse(&self) -> Result<Dockerfile<'a>> {
        parse_dockerfile::parse(self.text).map_err(|error| invalid(format!("Dockerfile: {error}")))
    }

    /// Builds the target stage (the last when `target` is empty).
    pub(super) async fn run(mut self, target: &str) -> Result<Value> {
        self.meta_args = self.global_args()?;
        if self.names.is_empty() {
            return Err(invalid("Dockerfile: no FROM instruction"));
        }
        let index = if target.is_empty() {
            self.names.len() - 1
        } else {
            self.stage_index(target).ok_or_else(|| {
                invalid(format!(
                    "dockerBuild: target stage {target:?} could not be found"
                ))
            })?
        };
        Ok(self.stage(index).await?.1)
    }

    /// The global `ARG`s with their values (build args win over defaults).
    fn global_args(&self) -> Result<Vec<(String, Option<String>)>> {
        let mut args = platform_args(self.platform.as_deref());
        let file = self.parse()?;
        for arg in file.global_args() {
            let declared = words::pairs(&arg.arguments.value, &args, self.escape, false)
                .map_err(|error| at_line(error, self.text, arg.arg.span.start))?;
            for (name, default) in declared {
                let value = self.build_arg(&name).or(default);
                args.push((name, value));
            }
        }
        Ok(args)
    }

    pub(super) fn build_arg(&self, name: &str) -> Option<String> {
        self.build_args
            .iter()
            .rev()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.clone())
    }

    /// A stage by name (case-insensitive, as Docker) or index.
    pub(super) fn stage_index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|alias| {
                alias
                    .as_deref()
                    .is_some_and(|alias| alias.eq_ignore_ascii_case(name))
            })
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|index| *index < self.names.len())
            })
    }

    /// A stage's result, built once however many stages need it.
    pub(super) fn stage(&self, index: usize) -> BoxFuture<'_, Result<(Digest, Value)>> {
        async move {
            self.stages
                .run(index, || self.interpret(index).boxed())
                .await
        }
        .boxed()
    }

    async fn interpret(&self, index: usize) -> Result<(Digest, Value)> {
        let file = self.parse()?;
        let stage = file
            .stages()
            .nth(index)
            .expect("stage indexes come from the stage list");
        let mut state = StageState::new(self);
        state
            .from(stage.from, index)
            .await
            .map_err(|error| at_line(error, self.text, stage.from.from.span.start))?;
        for instruction in stage.instructions {
            let at = instruction_start(instruction);
            state
                .instruction(instruction)
                .await
                .map_err(|error| at_line(error, self.text, at))?;
        }
        let value = state.graph.value(&state.current).clone();
        Ok((state.current, value))
    }
}

/// Where an instruction starts (for error lines).
fn instruction_start(instruction: &Instruction<'_>) -> usize {
    match instruction {
        Instruction::Add(i) => i.add.span.start,
        Instruction::Arg(i) => i.arg.span.start,
        Instruction::Cmd(i) => i.cmd.span.start,
        Instruction::Copy(i) => i.copy.span.start,
        Instruction::Entrypoint(i) => i.entrypoint.span.start,
        Instruction::Env(i) => i.env.span.start,
        Instruction::Expose(i) => i.expose.span.start,
        Instruction::From(i) => i.from.span.start,
        Instruction::Healthcheck(i) => i.healthcheck.span.start,
        Instruction::Label(i) => i.label.span.start,
        Instruction::Maintainer(i) => i.maintainer.span.start,
        Instruction::Onbuild(i) => i.onbuild.span.start,
        Instruction::Run(i) => i.run.span.start,
        Instruction::Shell(i) => i.shell.span.start,
        Instruction::Stopsignal(i) => i.stopsignal.span.start,
        Instruction::User(i) => i.user.span.start,
        Instruction::Volume(i) => i.volume.span.start,
        Instruction::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}

/// The state of the stage being interpreted.
pub(super) struct StageState<'b, 'a> {
    pub(super) build: &'b Build<'a>,
    pub(super) graph: Subgraph<'a>,
    /// The stage's container so far.
    pub(super) current: Digest,
    /// `ARG`s declared in this stage, with their values.
    args: Vec<(String, Option<String>)>,
    pub(super) shell: Vec<String>,
    cmd_set: bool,
}

impl<'b, 'a> StageState<'b, 'a> {
    fn new(build: &'b Build<'a>) -> Self {
        let mut graph = Subgraph::new(build.cx);
        graph.insert(build.context.0, build.context.1.clone());
        for (_, digest, value) in &build.secrets {
            graph.insert(*digest, value.clone());
        }
        if let Some((digest, value)) = &build.ssh {
            graph.insert(*digest, value.clone());
        }
        Self {
            build,
            graph,
            current: build.context.0,
            args: Vec::new(),
            shell: vec!["/bin/sh".into(), "-c".into()],
            cmd_set: false,
        }
    }

    pub(super) fn container(&self) -> Result<std::sync::Arc<ContainerState>> {
        self.graph.value(&self.current).container()
    }

    /// What words expand against: this stage's `ARG`s, then the
    /// container's environment (which wins, as in Docker).
    pub(super) fn vars(&self) -> Result<Vec<(String, Option<String>)>> {
        let mut vars = self.args.clone();
        for (name, value) in &self.container()?.config.env {
            vars.push((name.clone(), Some(value.clone())));
        }
        Ok(vars)
    }

    /// `ARG` values the commands of `RUN` see as variables: those set and
    /// not shadowed by an `ENV` of the same name.
    pub(super) fn arg_env(&self) -> Result<Vec<(String, String)>> {
        let state = self.container()?;
        Ok(self
            .args
            .iter()
            .filter(|(name, _)| !state.config.env.iter().any(|(env, _)| env == name))
            .filter_map(|(name, value)| value.clone().map(|value| (name.clone(), value)))
            .collect())
    }

    pub(super) fn word(&self, text: &str) -> Result<String> {
        words::word(text, &self.vars()?, self.build.escape)
    }

    /// Evaluates an op; returns its node digest.
    pub(super) async fn eval<O: Operation + Tagged>(&mut self, op: O) -> Result<Digest> {
        self.graph.eval(op).await
    }

    /// Evaluates an op built on the current container and moves on to it.
    pub(super) async fn then<O: Operation + Tagged>(
        &mut self,
        op: impl FnOnce(Digest) -> O,
    ) -> Result<()> {
        self.current = self.graph.eval(op(self.current)).await?;
        Ok(())
    }

    /// A container from an image, as `container().from(address)`.
    pub(super) async fn image(&mut self, address: String) -> Result<Digest> {
        let scratch = self
            .eval(Scratch {
                platform: self.build.platform.clone(),
            })
            .await?;
        self.eval(FromImage {
            parent: scratch,
            address,
            registry_service: None,
        })
        .await
    }

    /// Another stage's result, made known to this stage's graph.
    pub(super) async fn other_stage(&mut self, index: usize) -> Result<Digest> {
        let (digest, value) = self.build.stage(index).await?;
        self.graph.insert(digest, value);
        Ok(digest)
    }

    async fn from(
        &mut self,
        from: &parse_dockerfile::FromInstruction<'_>,
        index: usize,
    ) -> Result<()> {
        let meta: Vars<'_> = &self.build.meta_args;
        for flag in &from.options {
            let value = flag
                .value
                .as_ref()
                .map(|v| v.value.as_ref())
                .unwrap_or_default();
            match flag.name.value.as_ref() {
                "platform" => self.check_platform(&words::word(value, meta, self.build.escape)?)?,
                other => return Err(unsupported(format!("FROM --{other} is not supported"))),
            }
        }
        let image = words::word(&from.image.value, meta, self.build.escape)?;
        if image.eq_ignore_ascii_case("scratch") {
            self.current = self
                .eval(Scratch {
                    platform: self.build.platform.clone(),
                })
                .await?;
        } else if let Some(stage) = self
            .build
            .stage_index(&image)
            .filter(|stage| *stage < index)
        {
            self.current = self.other_stage(stage).await?;
        } else {
            self.current = self.image(image).await?;
        }
        Ok(())
    }

    fn check_platform(&self, platform: &str) -> Result<()> {
        let own = platform_args(self.build.platform.as_deref())[0]
            .1
            .clone()
            .unwrap_or_default();
        if platform == own || platform.is_empty() {
            Ok(())
        } else {
            Err(unsupported(format!(
                "platform {platform:?}: gantry builds for {own} only"
            )))
        }
    }

    async fn instruction(&mut self, instruction: &Instruction<'_>) -> Result<()> {
        match instruction {
            Instruction::Arg(arg) => self.arg(&arg.arguments.value),
            Instruction::Env(env) => self.env(&env.arguments.value).await,
            Instruction::Label(label) => self.label(&label.arguments.value).await,
            Instruction::Run(run) => self.run(run).await,
            Instruction::Copy(copy) => self.copy(&copy.options, &copy.src, &copy.dest, false).await,
            Instruction::Add(add) => self.copy(&add.options, &add.src, &add.dest, true).await,
            Instruction::Workdir(workdir) => self.workdir(&workdir.arguments.value).await,
            Instruction::User(user) => {
                let name = self.word(&user.arguments.value)?;
                self.then(|parent| WithUser { parent, name }).await
            }
            Instruction::Cmd(cmd) => {
                let args = self.command(&cmd.arguments);
                self.cmd_set = true;
                self.then(|parent| WithDefaultArgs { parent, args }).await
            }
            Instruction::Entrypoint(entrypoint) => {
                let args = self.command(&entrypoint.arguments);
                let keep_default_args = self.cmd_set;
                self.then(|parent| WithEntrypoint {
                    parent,
                    args,
                    keep_default_args,
                })
                .await
            }
            Instruction::Expose(expose) => {
                let ports: Vec<&str> = expose.arguments.iter().map(|p| p.value.as_ref()).collect();
                self.expose(&ports).await
            }
            Instruction::Shell(shell) => {
                self.shell = shell
                    .arguments
                    .iter()
                    .map(|a| a.value.to_string())
                    .collect();
                Ok(())
            }
            Instruction::Healthcheck(check) => self.healthcheck(check).await,
            // Accepted; gantry's image config has no field for them.
            Instruction::Volume(_) | Instruction::Stopsignal(_) | Instruction::Maintainer(_) => {
                Ok(())
            }
            Instruction::Onbuild(_) => Err(unsupported("ONBUILD is not supported")),
            _ => Err(unsupported("this instruction is not supported")),
        }
    }

    /// `ARG NAME[=default]`: build arg, else default, else the global
    /// value of the same name (`ARG NAME` re-imports it into a stage).
    fn arg(&mut self, text: &str) -> Result<()> {
        let declared = words::pairs(text, &self.vars()?, self.build.escape, false)?;
        for (name, default) in declared {
            let global = || {
                self.build
                    .meta_args
                    .iter()
                    .rev()
                    .find(|(global, _)| *global == name)
                    .and_then(|(_, value)| value.clone())
            };
            let value = self.build.build_arg(&name).or(default).or_else(global);
            self.args.push((name, value));
        }
        Ok(())
    }

    async fn env(&mut self, text: &str) -> Result<()> {
        for (name, value) in words::pairs(text, &self.vars()?, self.build.escape, true)? {
            let value = value.ok_or_else(|| invalid(format!("ENV {name} needs a value")))?;
            self.set_env(name, value).await?;
        }
        Ok(())
    }

    /// Sets an environment variable of the stage's container, as written.
    pub(super) async fn set_env(&mut self, name: String, value: String) -> Result<()> {
        self.then(|parent| WithEnvVariable {
            parent,
            name,
            value,
            expand: false,
        })
        .await
    }

    async fn label(&mut self, text: &str) -> Result<()> {
        for (name, value) in words::pairs(text, &self.vars()?, self.build.escape, true)? {
            let value = value.ok_or_else(|| invalid(format!("LABEL {name} needs a value")))?;
            self.then(|parent| WithLabel {
                parent,
                name,
                value,
            })
            .await?;
        }
        Ok(())
    }

    /// `WORKDIR` creates the directory (owned by root), then moves there.
    async fn workdir(&mut self, text: &str) -> Result<()> {
        let path = tree::absolute(&self.container()?.workdir(), &self.word(text)?)?;
        let empty = self.eval(EmptyDirectory {}).await?;
        let created = path.clone();
        self.then(|parent| WithContent {
            parent,
            path: created,
            source: empty,
            permissions: None,
            owner: String::new(),
            include: Vec::new(),
            exclude: Vec::new(),
            inherit_owner: false,
            gitignore: false,
        })
        .await?;
        self.then(|parent| WithWorkdir { parent, path }).await
    }

    /// An exec-form command as written, a shell-form one through `SHELL`.
    pub(super) fn command(&self, command: &Command<'_>) -> Vec<String> {
        match command {
            Command::Exec(args) => args.value.iter().map(|arg| arg.value.to_string()).collect(),
            Command::Shell(text) => {
                let mut args = self.shell.clone();
                args.push(words::shell_command(text.value, self.build.escape));
                args
            }
            _ => Vec::new(),
        }
    }

    async fn expose(&mut self, ports: &[&str]) -> Result<()> {
        let mut exposed: Vec<String> = self
            .container()?
            .config
            .labels
            .get(EXPOSED_PORTS_LABEL)
            .map(|value| value.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        for port in ports {
            for port in words::words(port, &self.vars()?, self.build.escape)? {
                let (number, protocol) = port.split_once('/').unwrap_or((&port, "tcp"));
                let protocol = protocol.to_ascii_lowercase();
                if number.parse::<u16>().is_err()
                    || !["tcp", "udp", "sctp"].contains(&protocol.as_str())
                {
                    return Err(invalid(format!("EXPOSE: invalid port {port:?}")));
                }
                let spec = format!("{number}/{protocol}");
                if !exposed.contains(&spec) {
                    exposed.push(spec);
                }
            }
        }
        let value = exposed.join(" ");
        self.then(|parent| WithLabel {
            parent,
            name: EXPOSED_PORTS_LABEL.into(),
            value,
        })
        .await
    }

    /// `HEALTHCHECK [options] CMD …` or `HEALTHCHECK NONE`.
    async fn healthcheck(
        &mut self,
        check: &parse_dockerfile::HealthcheckInstruction<'_>,
    ) -> Result<()> {
        let healthcheck = match &check.arguments {
            HealthcheckArguments::Cmd { arguments, .. } => {
                let mut healthcheck = Healthcheck::default();
                match arguments {
                    Command::Exec(args) => {
                        healthcheck.args = args.value.iter().map(|a| a.value.to_string()).collect();
                    }
                    Command::Shell(text) => {
                        healthcheck.args =
                            vec![words::shell_command(text.value, self.build.escape)];
                        healthcheck.shell = true;
                    }
                    _ => return Err(unsupported("HEALTHCHECK: unsupported command form")),
                }
                for flag in &check.options {
                    let raw = flag
                        .value
                        .as_ref()
                        .map(|v| v.value.as_ref())
                        .unwrap_or_default();
                    let value = self.word(raw)?;
                    let slot = match flag.name.value.as_ref() {
                        "interval" => &mut healthcheck.interval,
                        "timeout" => &mut healthcheck.timeout,
                        "start-period" => &mut healthcheck.start_period,
                        "start-interval" => &mut healthcheck.start_interval,
                        "retries" => {
                            healthcheck.retries = value.parse().map_err(|_| {
                                invalid(format!("HEALTHCHECK --retries={value} is not a number"))
                            })?;
                            continue;
                        }
                        other => {
                            return Err(unsupported(format!(
                                "HEALTHCHECK --{other} is not supported"
                            )))
                        }
                    };
                    *slot = value;
                }
                Some(healthcheck)
            }
            HealthcheckArguments::None { .. } => None,
            _ => return Err(unsupported("HEALTHCHECK: unsupported form")),
        };
        self.then(|parent| WithHealthcheck {
            parent,
            healthcheck,
        })
        .await
    }
}
