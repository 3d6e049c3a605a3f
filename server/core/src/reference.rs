//! Image references and registry hosts, as `from`, `publish` and
//! `withRegistryAuth` name them.

/// The registry host part of an image address (`docker.io` when none).
pub(crate) fn registry_host(address: &str) -> String {
    let first = address.split('/').next().unwrap_or(address);
    if address.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_owned()
    } else {
        "docker.io".to_owned()
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
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

/// Adds `docker.io/library/` and `:latest` where an address leaves them out.
pub(crate) fn normalize_reference(address: &str) -> String {
    let (name, digest) = match address.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (address, None),
    };
    let mut name = name.to_owned();
    if registry_host(&name) == "docker.io" && !name.starts_with("docker.io/") {
        name = if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
    }
    let last = name.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && digest.is_none() {
        name.push_str(":latest");
    }
    match digest {
        Some(digest) => format!("{name}@{digest}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised() {
        assert_eq!(
            normalize_reference("alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app"),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app:v1"),
            "127.0.0.1:5000/app:v1"
        );
        assert_eq!(registry_host("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
        assert_eq!(registry_host("user/app"), "docker.io");
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
