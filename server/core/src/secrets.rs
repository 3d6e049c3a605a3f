//! Secret values: held in engine memory only, named in recipes by a MAC.
//!
//! `setSecret` keeps the plaintext here and records a node holding the
//! secret's name and `HMAC-SHA256(engine key, value)`; the key is persisted
//! per state directory, so cache keys survive restarts while the value
//! cannot be recovered from them. A secret node loaded from a recipe after a
//! restart has a name but no value: using it fails with an error that names
//! it and says how to fix that.

use dashmap::DashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::runtime::RegistryAuth;
use crate::text::scrub_secrets;
use crate::value::SecretValue;

pub(crate) struct Secrets {
    key: [u8; 32],
    /// Values set in this engine, by secret node digest.
    values: DashMap<Digest, SecretValue>,
    /// Names of secret nodes evaluated without a value (loaded from a
    /// recipe), for error messages.
    names: DashMap<Digest, String>,
}

impl Secrets {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            values: DashMap::new(),
            names: DashMap::new(),
        }
    }

    fn hmac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// The MAC a secret node records instead of the value.
    pub(crate) fn mac(&self, plaintext: &str) -> Digest {
        let mut mac = self.hmac();
        mac.update(plaintext.as_bytes());
        let mut encoder = Encoder::new(Domain::SecretMac);
        encoder.bytes(&mac.finalize().into_bytes());
        encoder.finish()
    }

    /// The MAC standing for a secret given a `cacheKey`: the key, not the
    /// value, is its cache identity (a prefix keeps it apart from the MAC
    /// of a value that happens to equal the key).
    pub(crate) fn mac_of_cache_key(&self, cache_key: &str) -> Digest {
        self.mac(&format!("gantry.cacheKey\0{cache_key}"))
    }

    /// A host socket's handle: a MAC of its path and of the identity of the
    /// socket file there (device, inode and change time), so a cache key never holds a
    /// socket by its path alone.
    pub(crate) fn socket_handle(&self, path: &str, identity: &str) -> Digest {
        let mut mac = self.hmac();
        for part in [path, identity] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        let mut encoder = Encoder::new(Domain::SocketHandle);
        encoder.bytes(&mac.finalize().into_bytes());
        encoder.finish()
    }

    /// Keeps the value of the secret node `digest`.
    pub(crate) fn insert(&self, digest: Digest, name: &str, plaintext: &str) {
        self.values.insert(
            digest,
            SecretValue {
                name: name.to_owned(),
                plaintext: plaintext.into(),
            },
        );
    }

    /// Remembers the name of an evaluated secret node (for errors).
    pub(crate) fn note_name(&self, digest: Digest, name: &str) {
        if !self.values.contains_key(&digest) {
            self.names.insert(digest, name.to_owned());
        }
    }

    /// `text` with every secret value this engine holds masked (`***`), as
    /// exec output is: for text built outside a step that knows its own
    /// secrets (trace attributes of step names and failures).
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.values.is_empty() {
            return text.to_owned();
        }
        let values: Vec<SecretValue> = self.values.iter().map(|entry| entry.clone()).collect();
        let plaintexts: Vec<&str> = values.iter().map(|value| &*value.plaintext).collect();
        scrub_secrets(text, &plaintexts)
    }

    /// The value of the secret node `digest`, when this engine holds it.
    pub(crate) fn get(&self, digest: &Digest) -> Result<SecretValue> {
        if let Some(secret) = self.values.get(digest) {
            return Ok(secret.clone());
        }
        let name = self
            .names
            .get(digest)
            .map_or_else(|| "unknown".to_owned(), |name| name.clone());
        Err(Error::SecretUnavailable { name })
    }

    /// A tag that tells credentials apart without revealing them: part of
    /// the single-flight key of a pull, so a pull that succeeded with one
    /// password does not vouch for another (or for none).
    pub(crate) fn credentials_tag(&self, auth: &RegistryAuth) -> String {
        let mut mac = self.hmac();
        for part in [&auth.server, &auth.username, &auth.password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_masks_every_value_the_engine_holds() {
        let secrets = Secrets::new([7; 32]);
        assert_eq!(secrets.scrub("echo hunter2"), "echo hunter2");
        secrets.insert(Digest::of_bytes(b"a"), "password", "hunter2");
        secrets.insert(Digest::of_bytes(b"b"), "token", " t0k3n\n");
        assert_eq!(
            secrets.scrub("exec sh -c echo hunter2 t0k3n"),
            "exec sh -c echo *** ***"
        );
    }
}
