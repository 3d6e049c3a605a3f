//! Just enough image-reference parsing for the Engine API, which takes repository and
//! tag as separate parameters. Validation is left to dockerd.

/// `repo[:tag][@digest]`, where `repo` may start with `host:port/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) repo: String,
    pub(crate) tag: Option<String>,
    pub(crate) digest: Option<String>,
}

impl Reference {
    pub(crate) fn parse(reference: &str) -> Self {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_owned())),
            None => (reference, None),
        };
        // A ':' before the last '/' separates a registry port, not a tag.
        let after_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[after_slash..].rfind(':') {
            Some(i) => (
                &name[..after_slash + i],
                Some(name[after_slash + i + 1..].to_owned()),
            ),
            None => (name, None),
        };
        Self {
            repo: repo.to_owned(),
            tag,
            digest,
        }
    }

    /// The tag, `latest` when none was given.
    pub(crate) fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// What to pass as `tag` when pulling: the digest wins over the tag, and an empty
    /// tag would make dockerd pull every tag of the repository.
    pub(crate) fn pull_tag(&self) -> &str {
        self.digest
            .as_deref()
            .unwrap_or_else(|| self.tag_or_latest())
    }

    /// The name under which a pulled image can be inspected.
    pub(crate) fn local_name(&self) -> String {
        match &self.digest {
            Some(digest) => format!("{}@{digest}", self.repo),
            None => format!("{}:{}", self.repo, self.tag_or_latest()),
        }
    }

    /// `repo:tag@digest`: the tag defaults to `latest` unless the reference pinned a digest
    /// without naming a tag, in which case it stays as written.
    pub(crate) fn resolved(&self, digest: &str) -> String {
        match (&self.tag, &self.digest) {
            (None, Some(_)) => format!("{}@{digest}", self.repo),
            _ => format!("{}:{}@{digest}", self.repo, self.tag_or_latest()),
        }
    }

    /// Whether `repo` names the same repository, ignoring Docker Hub's implicit prefixes
    /// (dockerd reports `busybox@sha256:…` for `docker.io/library/busybox`).
    pub(crate) fn same_repo(&self, repo: &str) -> bool {
        familiar(&self.repo) == familiar(repo)
    }
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

/// A local image ID (`sha256:<hex>` or the bare 64-hex form), which cannot be pulled.
pub(crate) fn is_image_id(reference: &str) -> bool {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    is_hex && (reference.starts_with("sha256:") || hex.len() == 64)
}

/// Splits `repo:tag` for the tag and commit APIs (tag `latest` when none is given).
pub(crate) fn split_tag(reference: &str) -> (String, String) {
    let parsed = Reference::parse(reference);
    let tag = parsed.tag_or_latest().to_owned();
    (parsed.repo, tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_port_tag_and_digest() {
        let r = Reference::parse("127.0.0.1:5000/a/b:1.0@sha256:abc");
        assert_eq!(r.repo, "127.0.0.1:5000/a/b");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(r.pull_tag(), "sha256:abc");

        let r = Reference::parse("127.0.0.1:5000/busybox");
        assert_eq!(r.repo, "127.0.0.1:5000/busybox");
        assert_eq!(r.tag, None);
        assert_eq!(r.local_name(), "127.0.0.1:5000/busybox:latest");
        assert_eq!(
            r.resolved("sha256:d"),
            "127.0.0.1:5000/busybox:latest@sha256:d"
        );
    }

    #[test]
    fn digest_without_tag_stays_untagged() {
        let r = Reference::parse("busybox@sha256:d");
        assert_eq!(r.resolved("sha256:d"), "busybox@sha256:d");
        assert_eq!(r.local_name(), "busybox@sha256:d");
    }

    #[test]
    fn docker_hub_names_compare_familiar() {
        assert!(Reference::parse("docker.io/library/busybox:1").same_repo("busybox"));
        assert!(!Reference::parse("127.0.0.1:5000/busybox").same_repo("busybox"));
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
    fn split_tag_defaults_latest() {
        assert_eq!(
            split_tag("gantry.local/cache:ab12"),
            ("gantry.local/cache".into(), "ab12".into())
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x".into(), "latest".into())
        );
    }
}
