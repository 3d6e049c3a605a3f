//! Image references for the Engine API, which takes repository and tag as separate
//! parameters. Parsing is gantry-core's `ImageRef` (the one parser of references);
//! here only how dockerd wants the parts.

use gantry_core::runtime::RuntimeError;
use gantry_core::ImageRef;

/// `reference`, which the user named, for a pull or a lookup: a malformed one is an
/// image that cannot be found, with the rule it breaks.
pub(crate) fn parse_pull(reference: &str) -> Result<ImageRef, RuntimeError> {
    ImageRef::parse(reference).map_err(|error| RuntimeError::ImageNotFound {
        reference: reference.to_owned(),
        reason: format!("not a valid image reference: {error}"),
    })
}

/// `reference` for a push or a save, which names where the image goes.
pub(crate) fn parse_target(reference: &str) -> Result<ImageRef, RuntimeError> {
    ImageRef::parse(reference).map_err(|error| RuntimeError::Failed {
        action: format!("reading the image reference '{reference}'"),
        reason: error.to_string(),
    })
}

/// What to pass as `tag` when pulling: the digest wins over the tag, and an empty tag
/// would make dockerd pull every tag of the repository.
pub(crate) fn pull_tag(image: &ImageRef) -> &str {
    image.digest().unwrap_or_else(|| image.tag_or_latest())
}

/// Splits one of gantry's own names (`gantry.local/cache:ab12`) for the tag and commit
/// APIs, the tag `latest` when none is given.
pub(crate) fn split_tag(reference: &str) -> (String, String) {
    match ImageRef::parse(reference) {
        Ok(image) => (image.repo().to_owned(), image.tag_or_latest().to_owned()),
        Err(_) => (reference.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_wins_when_pulling() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let image = ImageRef::parse(&format!("127.0.0.1:5000/a/b:1.0@{digest}")).unwrap();
        assert_eq!(pull_tag(&image), digest);
        assert_eq!(pull_tag(&ImageRef::parse("busybox").unwrap()), "latest");
    }

    #[test]
    fn malformed_references_name_the_rule() {
        let error = parse_pull("Busybox").unwrap_err().to_string();
        assert!(
            error.contains("Busybox") && error.contains("lowercase"),
            "{error}"
        );
        let error = parse_target("app:").unwrap_err().to_string();
        assert!(error.contains("'app:'") && error.contains("tag"), "{error}");
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
