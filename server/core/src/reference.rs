//! Image references (`[host[:port]/]path[:tag][@digest]`) and registry hosts, as `from`,
//! `publish` and `withRegistryAuth` name them. The one parser of image references: the
//! solver, both runtimes and the registry credentials all read references through it.

use std::fmt;

/// Docker Hub, the registry of a reference that names none.
const DOCKER_HUB: &str = "docker.io";

/// An image reference split into its parts, as written: nothing is added, so
/// `busybox` stays `busybox` (see [`ImageRef::normalized`] for the full form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    repo: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a text is not an image reference (the rule it breaks; the caller names the text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReference(String);

impl ImageRef {
    /// Splits `text`; a `:` before the last `/` separates a registry port, not a tag.
    /// Checks the parts against the distribution grammar: a lowercase repository path,
    /// a tag of at most 128 word characters, dots and dashes, a digest `algorithm:hex`.
    pub fn parse(text: &str) -> Result<Self, InvalidReference> {
        let invalid = |why: &str| InvalidReference(why.to_owned());
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (text, None),
        };
        let after_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[after_slash..].rfind(':') {
            Some(i) => (&name[..after_slash + i], Some(&name[after_slash + i + 1..])),
            None => (name, None),
        };
        let (host, path) = match split_host(repo) {
            Some((host, path)) => (Some(host), path),
            None => (None, repo),
        };
        if let Some(host) = host {
            let ok = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
            if !ok {
                return Err(invalid(
                    "the registry host has characters a host cannot have",
                ));
            }
        }
        if path.is_empty() || !path.split('/').all(path_component_ok) {
            return Err(invalid(
                "the repository must be lowercase letters, digits and separators (. _ - /), \
                 each part starting and ending with a letter or digit",
            ));
        }
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(invalid(
                    "a tag is at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
                ));
            }
        }
        if let Some(digest) = digest {
            let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
                !algorithm.is_empty()
                    && algorithm.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    })
                    && hex.len() >= 32
                    && hex.bytes().all(|b| b.is_ascii_hexdigit())
            });
            if !ok {
                return Err(invalid(
                    "a digest is 'algorithm:hex', e.g. sha256:<64 hex digits>",
                ));
            }
        }
        Ok(Self {
            repo: repo.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// The repository as written, with its registry host if one was given.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The tag, `latest` when none was given.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The registry host (`docker.io` when the reference names none).
    pub fn registry(&self) -> &str {
        split_host(&self.repo).map_or(DOCKER_HUB, |(host, _)| match host {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
            host => host,
        })
    }

    /// The repository's path inside its registry, with Docker Hub's implicit `library/`
    /// (`busybox` → `library/busybox`).
    pub fn path(&self) -> String {
        let path = split_host(&self.repo).map_or(self.repo.as_str(), |(_, path)| path);
        if self.registry() == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        }
    }

    /// The same reference with its repository in full (`busybox` →
    /// `docker.io/library/busybox`), tag and digest as given.
    pub fn canonical(&self) -> ImageRef {
        ImageRef {
            repo: format!("{}/{}", self.registry(), self.path()),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }

    /// The full form: registry host, path, tag (`latest` unless a digest pins the image
    /// without one) and digest: `busybox` → `docker.io/library/busybox:latest`.
    pub fn normalized(&self) -> String {
        let full = self.canonical();
        match &full.digest {
            Some(digest) => full.resolved(digest),
            None => full.local_name(),
        }
    }

    /// The name under which a pulled image can be found locally: `repo:tag`, or
    /// `repo@digest` when a digest was given.
    pub fn local_name(&self) -> String {
        match &self.digest {
            Some(digest) => format!("{}@{digest}", self.repo),
            None => format!("{}:{}", self.repo, self.tag_or_latest()),
        }
    }

    /// This reference pinned to `digest` (what a pull resolved it to): `repo:tag@digest`,
    /// the tag `latest` unless the reference gave a digest and no tag.
    pub fn resolved(&self, digest: &str) -> String {
        match (&self.tag, &self.digest) {
            (None, Some(_)) => format!("{}@{digest}", self.repo),
            _ => format!("{}:{}@{digest}", self.repo, self.tag_or_latest()),
        }
    }

    /// Whether `repo` names the same repository, ignoring Docker Hub's implicit prefixes
    /// (dockerd reports `busybox@sha256:…` for `docker.io/library/busybox`).
    pub fn same_repo(&self, repo: &str) -> bool {
        familiar(&self.repo) == familiar(repo)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repo)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `host/rest` when the first component of `repo` is a registry host: it has a dot or a
/// port, or is `localhost` (Docker's rule; `user/app` is a Docker Hub path).
fn split_host(repo: &str) -> Option<(&str, &str)> {
    let (first, rest) = repo.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some((first, rest))
}

fn path_component_ok(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || b"._-".contains(b))
}

fn familiar(repo: &str) -> &str {
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    match repo.strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest,
        _ => repo,
    }
}

/// A local image ID (`sha256:<hex>` or the bare 64-hex form), which names no repository.
pub fn is_image_id(reference: &str) -> bool {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    is_hex && (reference.starts_with("sha256:") || hex.len() == 64)
}

/// The registry host part of an image address (`docker.io` when none). Lenient: an
/// address that does not parse still has its first component looked at.
pub(crate) fn registry_host(address: &str) -> String {
    match ImageRef::parse(address) {
        Ok(image) => image.registry().to_owned(),
        Err(_) => split_host(address)
            .map_or(DOCKER_HUB, |(host, _)| host)
            .to_owned(),
    }
}

/// The registry host that `withRegistryAuth(address:)` binds credentials
/// to. Besides image references (`127.0.0.1:5001/app:v1`), a bare registry
/// address (`127.0.0.1:5001`, `registry.example.com`, `docker.io`, with or
/// without a scheme) names a host, which `registry_host` would take for a
/// Docker Hub image name.
pub(crate) fn auth_host(address: &str) -> String {
    let address = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .unwrap_or(address)
        .trim_end_matches('/');
    let host = if address.contains('/') {
        registry_host(address)
    } else {
        let port_ok = |port: &str| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        let looks_like_host = match address.split_once(':') {
            Some((_, port)) => port_ok(port),
            None => address.contains('.') || address == "localhost",
        };
        if looks_like_host {
            address.to_owned()
        } else {
            registry_host(address)
        }
    };
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => host,
    }
}

/// Adds `docker.io/library/` and `:latest` where an address leaves them out; an address
/// that does not parse is returned as written (the runtime's pull names the problem).
pub(crate) fn normalize_reference(address: &str) -> String {
    ImageRef::parse(address).map_or_else(|_| address.to_owned(), |image| image.normalized())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImageRef {
        ImageRef::parse(text).unwrap()
    }

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            normalize_reference("alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(normalize_reference("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app"),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app:v1"),
            "127.0.0.1:5000/app:v1"
        );
        let pinned = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize_reference(&pinned),
            format!("docker.io/library/{pinned}")
        );
        assert_eq!(registry_host("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
        assert_eq!(registry_host("user/app"), "docker.io");
        assert_eq!(
            registry_host("index.docker.io/library/busybox"),
            "docker.io"
        );
    }

    #[test]
    fn parses_registry_port_tag_and_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = parse(&format!("127.0.0.1:5000/a/b:1.0@{digest}"));
        assert_eq!(r.repo(), "127.0.0.1:5000/a/b");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.digest(), Some(digest.as_str()));

        let r = parse("127.0.0.1:5000/busybox");
        assert_eq!((r.repo(), r.tag()), ("127.0.0.1:5000/busybox", None));
        assert_eq!(r.local_name(), "127.0.0.1:5000/busybox:latest");
        assert_eq!(
            r.resolved("sha256:d"),
            "127.0.0.1:5000/busybox:latest@sha256:d"
        );
        assert_eq!(r.to_string(), "127.0.0.1:5000/busybox");
        assert_eq!(parse("busybox").path(), "library/busybox");
        assert_eq!(parse("localhost/x:1").registry(), "localhost");
    }

    #[test]
    fn digest_without_tag_stays_untagged() {
        let r = parse(&format!("busybox@sha256:{}", "d".repeat(64)));
        assert_eq!(r.resolved("sha256:e"), "busybox@sha256:e");
        assert!(r.local_name().starts_with("busybox@sha256:d"));
    }

    #[test]
    fn docker_hub_names_compare_familiar() {
        assert!(parse("docker.io/library/busybox:1").same_repo("busybox"));
        assert!(!parse("127.0.0.1:5000/busybox").same_repo("busybox"));
    }

    #[test]
    fn malformed_references_are_refused_with_the_rule() {
        for (text, rule) in [
            ("", "empty"),
            ("Busybox", "lowercase"),
            ("app//x", "lowercase"),
            ("app:", "tag"),
            ("app:-x", "tag"),
            ("app@sha256:xyz", "digest"),
            ("app@nodigest", "digest"),
            ("bad!.example.com/app", "host"),
            ("bad host/app", "lowercase"),
        ] {
            let error = ImageRef::parse(text).unwrap_err().to_string();
            assert!(error.contains(rule), "{text:?}: {error}");
        }
    }

    #[test]
    fn image_ids() {
        assert!(is_image_id("sha256:0123abcd"));
        assert!(is_image_id(&"a".repeat(64)));
        assert!(!is_image_id("busybox"));
        assert!(!is_image_id("abcdef"));
        assert!(!is_image_id("sha256:"));
    }

    #[test]
    fn auth_addresses_name_hosts() {
        assert_eq!(auth_host("127.0.0.1:5001"), "127.0.0.1:5001");
        assert_eq!(auth_host("127.0.0.1:5001/app:v1"), "127.0.0.1:5001");
        assert_eq!(
            auth_host("https://registry.example.com/"),
            "registry.example.com"
        );
        assert_eq!(auth_host("localhost"), "localhost");
        assert_eq!(auth_host("docker.io"), "docker.io");
        assert_eq!(auth_host("index.docker.io"), "docker.io");
        assert_eq!(auth_host("busybox:latest"), "docker.io");
        assert_eq!(auth_host("user/app"), "docker.io");
    }
}
