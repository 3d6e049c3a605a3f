//! Git through the host's `git` binary (any 2.x with protocol v2; Debian
//! 12 ships 2.39).
//!
//! Every command runs with a clean environment: no system or user
//! configuration (so a developer's `insteadOf` or credential helper never
//! changes what a pipeline fetches), no prompts, `LC_ALL=C` for stable
//! messages. Credentials become an `http.<origin>/.extraHeader` setting
//! passed through `GIT_CONFIG_*` variables, scoped to the remote's origin:
//! they are never in an argument (visible in `ps`), a file or `.git/config`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use gantry_core::remote::{
    url_authority, GitAuth, GitCheckout, GitRefEntry, GitRefs, GitRemote, RemoteError,
};
use tokio::process::Command;

/// Proxy settings are the one part of the engine's environment git keeps.
const PROXY_VARIABLES: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// How much of git's stderr an error keeps.
const ERROR_TAIL: usize = 2000;

pub(crate) struct GitCli {
    binary: PathBuf,
}

/// A file removed when dropped (SSH known hosts).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl GitCli {
    pub(crate) fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    /// `git ls-remote --symref URL`.
    pub(crate) async fn refs(&self, remote: &GitRemote) -> Result<GitRefs, RemoteError> {
        let (mut command, _known_hosts) = self.command(remote)?;
        command.args(["ls-remote", "--symref", &remote.url]);
        let out = run(command, "ls-remote", remote).await?;
        Ok(parse_ls_remote(&out))
    }

    /// A shallow fetch of one commit into a new repository at `dest`, then
    /// a checkout of it (as its branch when it came from one).
    pub(crate) async fn checkout(
        &self,
        remote: &GitRemote,
        checkout: &GitCheckout,
        dest: &Path,
    ) -> Result<(), RemoteError> {
        let dir = dest.display().to_string();
        self.step(remote, "init", &["init", "-q", &dir]).await?;
        let in_dest = |args: &[&str]| -> Vec<String> {
            ["-C", dir.as_str()]
                .iter()
                .chain(args)
                .map(|arg| (*arg).to_owned())
                .collect()
        };
        self.step(
            remote,
            "remote add",
            &in_dest(&["remote", "add", "origin", &remote.url]),
        )
        .await?;
        let depth = (checkout.depth > 0).then(|| format!("--depth={}", checkout.depth));
        let fetch = |refspec: String| {
            let mut args = in_dest(&["fetch", "-q", "--no-tags"]);
            args.extend(depth.clone());
            args.extend(["origin".to_owned(), refspec]);
            args
        };
        // By commit first (protocol v2 servers allow any reachable one);
        // else by the ref it was resolved from, which must still point there.
        if let Err(by_commit) = self
            .step(remote, "fetch", &fetch(checkout.commit.clone()))
            .await
        {
            if checkout.ref_name.is_empty() || checkout.ref_name == "HEAD" {
                return Err(by_commit);
            }
            self.step(remote, "fetch", &fetch(checkout.ref_name.clone()))
                .await?;
            let fetched = self
                .output(remote, &in_dest(&["rev-parse", "FETCH_HEAD"]))
                .await?;
            if fetched.trim() != checkout.commit {
                return Err(RemoteError::Git {
                    action: "fetch".into(),
                    url: remote.url.clone(),
                    reason: format!(
                        "{} moved to {} while it was being fetched; run again",
                        checkout.ref_name,
                        fetched.trim()
                    ),
                });
            }
        }
        if checkout.include_tags {
            self.step(
                remote,
                "fetch tags",
                &fetch("refs/tags/*:refs/tags/*".into()),
            )
            .await?;
        }
        let commit = checkout.commit.as_str();
        let checkout_args = match checkout.ref_name.strip_prefix("refs/heads/") {
            Some(branch) => {
                let tracking = format!("refs/remotes/origin/{branch}");
                self.step(
                    remote,
                    "update-ref",
                    &in_dest(&["update-ref", &tracking, commit]),
                )
                .await?;
                in_dest(&["checkout", "-q", "-B", branch, commit])
            }
            None => {
                if let Some(tag) = checkout.ref_name.strip_prefix("refs/tags/") {
                    let tag_ref = format!("refs/tags/{tag}");
                    self.step(
                        remote,
                        "update-ref",
                        &in_dest(&["update-ref", &tag_ref, commit]),
                    )
                    .await?;
                }
                in_dest(&["-c", "advice.detachedHead=false", "checkout", "-q", commit])
            }
        };
        self.step(remote, "checkout", &checkout_args).await?;
        if !checkout.keep_git_dir {
            std::fs::remove_dir_all(dest.join(".git")).map_err(|error| RemoteError::Git {
                action: "checkout".into(),
                url: remote.url.clone(),
                reason: format!("removing .git: {error}"),
            })?;
        }
        Ok(())
    }

    async fn step<S: AsRef<str>>(
        &self,
        remote: &GitRemote,
        action: &str,
        args: &[S],
    ) -> Result<(), RemoteError> {
        let (mut command, _known_hosts) = self.command(remote)?;
        command.args(args.iter().map(AsRef::as_ref));
        run(command, action, remote).await.map(drop)
    }

    async fn output(&self, remote: &GitRemote, args: &[String]) -> Result<String, RemoteError> {
        let (mut command, _known_hosts) = self.command(remote)?;
        command.args(args);
        run(command, "rev-parse", remote).await
    }

    /// A git command with the clean environment and `remote`'s credentials.
    fn command(&self, remote: &GitRemote) -> Result<(Command, Option<TempFile>), RemoteError> {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LC_ALL", "C")
            .env("HOME", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("SSH_ASKPASS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // A proxy could not reach a service (the only hosts resolved here).
        if remote.resolve.is_none() {
            for name in PROXY_VARIABLES {
                if let Some(value) = std::env::var_os(name) {
                    command.env(name, value);
                }
            }
        }
        // Repositories may not pull in other local repositories as
        // submodules behind the caller's back.
        let mut config = vec![("protocol.file.allow".to_owned(), "user".to_owned())];
        config.extend(resolve_config(remote));
        if let Some(header) = authorization(&remote.auth) {
            if let Some(origin) = http_origin(&remote.url) {
                config.push((
                    format!("http.{origin}/.extraHeader"),
                    format!("Authorization: {header}"),
                ));
            }
        }
        if let Some(socket) = &remote.ssh_auth_socket {
            command.env("SSH_AUTH_SOCK", socket);
        }
        command.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (index, (key, value)) in config.iter().enumerate() {
            command.env(format!("GIT_CONFIG_KEY_{index}"), key);
            command.env(format!("GIT_CONFIG_VALUE_{index}"), value);
        }
        let known_hosts = if remote.ssh_known_hosts.is_empty() {
            command.env(
                "GIT_SSH_COMMAND",
                "ssh -F /dev/null -o StrictHostKeyChecking=no -o BatchMode=yes",
            );
            None
        } else {
            let file = TempFile(std::env::temp_dir().join(format!(
                "gantry-known-hosts-{}-{:016x}",
                std::process::id(),
                random()
            )));
            std::fs::write(&file.0, &remote.ssh_known_hosts).map_err(|error| RemoteError::Git {
                action: "ssh setup".into(),
                url: remote.url.clone(),
                reason: format!("writing known hosts: {error}"),
            })?;
            command.env(
                "GIT_SSH_COMMAND",
                format!(
                    "ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={}",
                    file.0.display()
                ),
            );
            Some(file)
        };
        Ok((command, known_hosts))
    }
}

/// A few random bits for temp names (no RNG crate needed for that).
fn random() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

/// The `Authorization` header value for `auth`: the header secret as is,
/// or basic authentication with the token as password.
fn authorization(auth: &GitAuth) -> Option<String> {
    if let Some(header) = &auth.header {
        return Some(header.clone());
    }
    let token = auth.token.as_ref()?;
    let username = if auth.username.is_empty() {
        "x-access-token"
    } else {
        &auth.username
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
    Some(format!("Basic {encoded}"))
}

/// `scheme://host[:port]` of an HTTP(S) URL, without any user info.
fn http_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split('/').next()?;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some(format!("{scheme}://{host}"))
}

/// Settings that make git connect to `remote.resolve`'s address for the
/// URL's host. HTTP(S) keeps the URL (its `Host` header, TLS name and the
/// origin credentials are scoped to) and tells curl the address; `git://`
/// has no such setting, so its URL is rewritten to the address.
fn resolve_config(remote: &GitRemote) -> Option<(String, String)> {
    let resolve = remote.resolve.as_ref()?;
    let parts = url_authority(&remote.url)?;
    let address = match resolve.address {
        IpAddr::V4(address) => address.to_string(),
        IpAddr::V6(address) => format!("[{address}]"),
    };
    match parts.scheme {
        "http" | "https" => {
            let port = parts
                .port
                .unwrap_or(if parts.scheme == "http" { 80 } else { 443 });
            Some((
                "http.curloptResolve".to_owned(),
                format!("{}:{port}:{address}", resolve.host),
            ))
        }
        "git" => {
            let rewritten = match parts.port {
                Some(port) => format!("git://{address}:{port}/"),
                None => format!("git://{address}/"),
            };
            Some((
                format!("url.{rewritten}.insteadOf"),
                format!("{}/", parts.prefix),
            ))
        }
        _ => None,
    }
}

/// Runs a prepared command; its stdout on success, a classified error
/// with the tail of its stderr otherwise.
async fn run(
    mut command: Command,
    action: &str,
    remote: &GitRemote,
) -> Result<String, RemoteError> {
    let output = command
        .spawn()
        .map_err(|error| RemoteError::Unavailable {
            reason: format!("cannot run git ({error}); gantry needs git 2.x on the engine's PATH"),
        })?
        .wait_with_output()
        .await
        .map_err(|error| RemoteError::Git {
            action: action.into(),
            url: remote.url.clone(),
            reason: error.to_string(),
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lowered = stderr.to_ascii_lowercase();
    if lowered.contains("authentication failed")
        || lowered.contains("could not read username")
        || lowered.contains("could not read password")
        || lowered.contains("terminal prompts disabled")
        || lowered.contains("permission denied (publickey")
    {
        let hint = if lowered.contains("permission denied (publickey") {
            if remote.ssh_auth_socket.is_some() {
                "the SSH server took none of the keys in the agent `sshAuthSocket` names"
            } else {
                "an SSH remote needs a key: pass the socket of an SSH agent holding one as `sshAuthSocket` (host.unixSocket(path:) of your SSH_AUTH_SOCK)"
            }
        } else {
            "check the credentials passed to `git`: httpAuthToken, httpAuthHeader"
        };
        return Err(RemoteError::GitAuth {
            url: remote.url.clone(),
            hint: hint.into(),
        });
    }
    let trimmed = stderr.trim();
    let start = trimmed
        .char_indices()
        .rev()
        .nth(ERROR_TAIL)
        .map_or(0, |(index, _)| index);
    Err(RemoteError::Git {
        action: action.into(),
        url: remote.url.clone(),
        reason: if trimmed.is_empty() {
            format!("git exited with {}", output.status)
        } else {
            trimmed[start..].to_owned()
        },
    })
}

/// Parses `git ls-remote --symref` output: `ref: TARGET\tHEAD` lines name
/// symbolic refs, `SHA\tNAME` lines the refs.
fn parse_ls_remote(out: &str) -> GitRefs {
    let mut refs = GitRefs::default();
    for line in out.lines() {
        let Some((left, name)) = line.split_once('\t') else {
            continue;
        };
        if let Some(target) = left.strip_prefix("ref: ") {
            if name == "HEAD" {
                refs.head_target = Some(target.to_owned());
            }
        } else {
            refs.refs.push(GitRefEntry {
                name: name.to_owned(),
                sha: left.to_owned(),
            });
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_remote_output_parses() {
        let out = "ref: refs/heads/main\tHEAD\n\
                   1111111111111111111111111111111111111111\tHEAD\n\
                   1111111111111111111111111111111111111111\trefs/heads/main\n\
                   2222222222222222222222222222222222222222\trefs/tags/v1\n\
                   3333333333333333333333333333333333333333\trefs/tags/v1^{}\n";
        let refs = parse_ls_remote(out);
        assert_eq!(refs.head_target.as_deref(), Some("refs/heads/main"));
        assert_eq!(refs.refs.len(), 4);
        assert_eq!(refs.refs[3].name, "refs/tags/v1^{}");
    }

    #[test]
    fn credentials_become_one_scoped_header() {
        let token = GitAuth {
            username: String::new(),
            token: Some("t0ken".into()),
            header: None,
        };
        let expected = base64::engine::general_purpose::STANDARD.encode("x-access-token:t0ken");
        assert_eq!(authorization(&token), Some(format!("Basic {expected}")));
        let header = GitAuth {
            header: Some("Bearer abc".into()),
            ..token
        };
        assert_eq!(authorization(&header).as_deref(), Some("Bearer abc"));
        assert_eq!(authorization(&GitAuth::default()), None);
        assert_eq!(
            http_origin("https://user:pw@example.com:8443/o/r.git").as_deref(),
            Some("https://example.com:8443")
        );
        assert_eq!(http_origin("git://example.com/r"), None);
    }

    #[test]
    fn a_resolved_host_keeps_the_url_over_http_and_rewrites_it_over_git() {
        let remote = |url: &str| GitRemote {
            url: url.into(),
            auth: GitAuth::default(),
            ssh_known_hosts: String::new(),
            ssh_auth_socket: None,
            resolve: Some(gantry_core::remote::HostAddress {
                host: "svc".into(),
                address: "10.1.2.3".parse().unwrap(),
            }),
        };
        let config = |url: &str| resolve_config(&remote(url)).unwrap();
        assert_eq!(
            config("http://svc:8080/repo.git"),
            ("http.curloptResolve".into(), "svc:8080:10.1.2.3".into())
        );
        assert_eq!(config("https://u@svc/r").1, "svc:443:10.1.2.3");
        assert_eq!(
            config("git://svc/repo"),
            ("url.git://10.1.2.3/.insteadOf".into(), "git://svc/".into())
        );
        let unresolved = GitRemote {
            resolve: None,
            ..remote("http://svc/r")
        };
        assert_eq!(resolve_config(&unresolved), None);
    }
}
