//! The OCI runtime spec (`config.json`) of one step, built with `oci-spec`.
//!
//! Defaults follow Docker's for a plain `docker run`: its default capability set,
//! `no_new_privileges` off, a 64 MiB `/dev/shm`, masked and read-only `/proc` paths,
//! the file descriptor limit Docker gives, and `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname` bind-mounted from files gantry writes for the step.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder, LinuxNamespace,
    LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};

use gantry_core::runtime::Tmpfs;

use crate::error::Error;
use crate::user::ExecUser;

/// Docker's default capabilities.
const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// A bind mount of a host path.
#[derive(Debug, Clone)]
pub(crate) struct Bind {
    pub(crate) source: PathBuf,
    pub(crate) destination: String,
    pub(crate) read_only: bool,
}

/// Everything a step's spec is made of.
#[derive(Debug)]
pub(crate) struct StepSpec<'a> {
    pub(crate) rootfs: &'a Path,
    pub(crate) args: &'a [String],
    pub(crate) env: Vec<String>,
    pub(crate) cwd: &'a str,
    pub(crate) user: &'a ExecUser,
    pub(crate) hostname: &'a str,
    pub(crate) binds: Vec<Bind>,
    pub(crate) tmpfs: &'a [Tmpfs],
    /// `None`: the host's network namespace (explicit opt-in).
    pub(crate) netns: Option<&'a Path>,
    /// The cgroup path the runtime puts the container in.
    pub(crate) cgroup: &'a str,
    /// The process gets a TTY (the runtime's own stdio is a terminal).
    pub(crate) terminal: bool,
    /// `insecureRootCapabilities` (close to Docker's `--privileged`): every
    /// capability the engine holds, no masked or read-only kernel paths, writable `/sys`,
    /// every device allowed by the device cgroup.
    pub(crate) privileged: bool,
}

/// A privileged step's capabilities (see `privileged_capabilities` in core).
fn privileged_capabilities() -> oci_spec::runtime::Capabilities {
    gantry_core::runtime::privileged_capabilities()
        .into_iter()
        .filter_map(|name| serde_json::from_value(serde_json::Value::from(name)).ok())
        .collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, Error> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
        .map_err(|error| Error::other("building a mount", error))
}

pub(crate) fn build(step: &StepSpec<'_>) -> Result<Spec, Error> {
    let oci = |error: oci_spec::OciSpecError| Error::other("building the runtime spec", error);
    // As many open files as the engine may have (Docker gives its own limit too);
    // asking for more than the hard limit fails once capabilities are dropped.
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(1_048_576)
        .min(1_048_576);
    let capabilities: oci_spec::runtime::Capabilities = if step.privileged {
        privileged_capabilities()
    } else {
        CAPABILITIES.into_iter().collect()
    };
    // Privileged: the kernel's interfaces writable, as Docker's --privileged.
    let sys = if step.privileged { "rw" } else { "ro" };
    let user = UserBuilder::default()
        .uid(step.user.uid)
        .gid(step.user.gid)
        .additional_gids(step.user.additional_gids.clone())
        .build()
        .map_err(oci)?;
    let process = ProcessBuilder::default()
        .terminal(step.terminal)
        .user(user)
        .args(step.args.to_vec())
        .env(step.env.clone())
        .cwd(step.cwd)
        .no_new_privileges(false)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(capabilities.clone())
                .effective(capabilities.clone())
                .permitted(capabilities)
                .build()
                .map_err(oci)?,
        )
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(nofile)
            .soft(nofile)
            .build()
            .map_err(oci)?])
        .build()
        .map_err(oci)?;

    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys],
        )?,
    ];
    for tmpfs in step.tmpfs {
        // Docker mounts tmpfs `noexec`; build steps run binaries from /tmp, so not here
        // (the Docker runtime asks for `exec` too).
        let size = tmpfs.size.map(|size| format!("size={size}"));
        let mut options = vec!["nosuid", "nodev", "mode=1777"];
        options.extend(size.as_deref());
        mounts.push(mount(&tmpfs.path, "tmpfs", "tmpfs", &options)?);
    }
    for bind in &step.binds {
        let source = bind.source.to_str().ok_or_else(|| {
            Error::other(
                "building a mount",
                format!("{} is not UTF-8", bind.source.display()),
            )
        })?;
        let mut options = vec!["rbind", "rprivate"];
        if bind.read_only {
            options.push("ro");
        }
        mounts.push(mount(&bind.destination, "bind", source, &options)?);
    }

    let mut namespaces: Vec<LinuxNamespace> = oci_spec::runtime::get_default_namespaces();
    match step.netns {
        Some(path) => {
            for namespace in &mut namespaces {
                if namespace.typ() == LinuxNamespaceType::Network {
                    namespace.set_path(Some(path.to_owned()));
                }
            }
        }
        None => namespaces.retain(|namespace| namespace.typ() != LinuxNamespaceType::Network),
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(step.cgroup))
        .resources(
            LinuxResourcesBuilder::default()
                .devices(vec![LinuxDeviceCgroupBuilder::default()
                    .allow(step.privileged)
                    .access("rwm")
                    .build()
                    .map_err(oci)?])
                .build()
                .map_err(oci)?,
        )
        .masked_paths(if step.privileged {
            Vec::new()
        } else {
            oci_spec::runtime::get_default_maskedpaths()
        })
        .readonly_paths(if step.privileged {
            Vec::new()
        } else {
            oci_spec::runtime::get_default_readonly_paths()
        })
        .build()
        .map_err(oci)?;

    let mut spec = Spec::default();
    spec.set_process(Some(process));
    spec.set_root(Some(
        RootBuilder::default()
            .path(step.rootfs)
            .readonly(false)
            .build()
            .map_err(oci)?,
    ));
    spec.set_hostname(Some(step.hostname.to_owned()));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_carries_the_step() {
        let user = ExecUser {
            uid: 65532,
            gid: 65532,
            additional_gids: vec![10],
            home: "/home/nonroot".into(),
        };
        let args = vec!["sh".to_owned(), "-c".to_owned(), "true".to_owned()];
        let tmpfs = vec![Tmpfs {
            path: "/tmp".to_owned(),
            size: None,
        }];
        let spec = build(&StepSpec {
            rootfs: Path::new("/r"),
            args: &args,
            env: vec!["A=1".into()],
            cwd: "/work",
            user: &user,
            hostname: "gantry",
            binds: vec![Bind {
                source: "/host/cache".into(),
                destination: "/cache".into(),
                read_only: false,
            }],
            tmpfs: &tmpfs,
            netns: Some(Path::new("/run/netns/x")),
            cgroup: "/gantry/1/2/c",
            terminal: false,
            privileged: false,
        })
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["process"]["user"]["uid"], 65532);
        assert_eq!(json["process"]["cwd"], "/work");
        assert_eq!(json["process"]["args"][2], "true");
        assert_eq!(json["linux"]["cgroupsPath"], "/gantry/1/2/c");
        let mounts = json["mounts"].as_array().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/cache" && m["source"] == "/host/cache"));
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/tmp" && m["type"] == "tmpfs"));
        let net = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/netns/x");
        let caps = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert!(caps.iter().any(|c| c == "CAP_CHOWN"));
    }
}
