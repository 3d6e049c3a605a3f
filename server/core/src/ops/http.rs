//! `Query.http`: a file downloaded over HTTP(S).
//!
//! What a URL last answered (its validators, `ETag` and `Last-Modified`,
//! and the content's blob) is kept in the store by URL
//! (`RecordKind::Fetch`). Each engine asks again once, conditionally, so
//! an unchanged file costs a 304 and no transfer; with a `checksum` that
//! the kept content already has, no request is sent at all. A download
//! that does not match its `checksum` fails and is not kept.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::digest::{Digest, Domain, Encoder};
use crate::error::{Error, Result};
use crate::eval::{Call, OpEncoder, Operation};
use crate::events::StepState;
use crate::remote::{HttpRequest, HttpResponse};
use crate::service_host::ServiceHost;
use crate::store::RecordKind;
use crate::value::{FileValue, Kind, ServiceValue, Value};

/// The mode of a downloaded file unless `permissions` says otherwise.
const DEFAULT_MODE: u32 = 0o600;

/// `Query.http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    pub url: String,
    pub name: Option<String>,
    pub permissions: Option<u32>,
    /// `sha256:<hex>`: the content must have this digest.
    pub checksum: Option<String>,
    /// A secret: a whole `Authorization` header.
    pub auth_header: Option<Digest>,
    /// `experimentalServiceHost`: a service started for the download, which
    /// the URL names by its hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_host: Option<Digest>,
}

/// What a URL last answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HttpRecord {
    etag: Option<String>,
    last_modified: Option<String>,
    blob: Digest,
    size: u64,
}

impl Operation for Http {
    const KIND: Kind = Kind::File;

    fn inputs(&self) -> Vec<Digest> {
        self.auth_header
            .iter()
            .chain(self.service_host.iter())
            .copied()
            .collect()
    }

    fn encode(&self, e: &mut OpEncoder<'_>) {
        e.str(&self.url)
            .opt_str(self.name.as_deref())
            .opt_u64(self.permissions.map(u64::from))
            .opt_str(self.checksum.as_deref());
        match &self.auth_header {
            Some(secret) => {
                e.str("+");
                e.input(secret);
            }
            None => {
                e.str("-");
            }
        }
        // Written only when given, so downloads without one keep the
        // digests they had before the argument was served.
        if let Some(service) = &self.service_host {
            e.str("service");
            e.input(service);
        }
    }

    async fn evaluate(&self, cx: &Context, call: &Call) -> Result<Value> {
        let expected = self.checksum.as_deref().map(parse_checksum).transpose()?;
        let service = self
            .service_host
            .map(|service| call.inputs.service(&service))
            .transpose()?;
        let record = fetch(cx, self, service.as_ref(), expected).await?;
        if let Some(expected) = expected {
            if record.blob != expected {
                return Err(Error::Checksum {
                    url: self.url.clone(),
                    expected: expected.to_string(),
                    actual: record.blob.to_string(),
                });
            }
        }
        let mtime = record
            .last_modified
            .as_deref()
            .and_then(|text| httpdate::parse_http_date(text).ok())
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |elapsed| elapsed.as_secs());
        Ok(Value::File(Arc::new(FileValue {
            name: self.name.clone().unwrap_or_else(|| file_name(&self.url)),
            blob: record.blob,
            size: record.size,
            mode: self.permissions.unwrap_or(DEFAULT_MODE),
            mtime,
            owner: crate::owner::Owner::ROOT,
        })))
    }
}

/// The record of `op.url` after asking the server (conditionally when a
/// record exists), or without asking when `expected` content is kept; the
/// server is `service`, started for the request, when one is given.
async fn fetch(
    cx: &Context,
    op: &Http,
    service: Option<&Arc<ServiceValue>>,
    expected: Option<Digest>,
) -> Result<HttpRecord> {
    let key = record_key(&op.url);
    let kept: Option<HttpRecord> = cx
        .store
        .get(RecordKind::Fetch, &key)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let (Some(kept), Some(expected)) = (&kept, expected) {
        if kept.blob == expected {
            return Ok(kept.clone());
        }
    }
    let authorization = op
        .auth_header
        .as_ref()
        .map(|secret| Ok::<_, Error>(cx.secret(secret)?.plaintext.to_string()))
        .transpose()?;
    let host = match service {
        Some(service) => Some(ServiceHost::start(cx, service, &op.url).await?),
        None => None,
    };
    let request = HttpRequest {
        url: op.url.clone(),
        authorization,
        etag: kept.as_ref().and_then(|kept| kept.etag.clone()),
        last_modified: kept.as_ref().and_then(|kept| kept.last_modified.clone()),
        resolve: host.as_ref().and_then(|host| host.resolve.clone()),
    };
    let step = Digest::of_bytes(op.url.as_bytes());
    let name = format!("GET {}", op.url);
    cx.events
        .emit(&step, name.clone(), StepState::Running, None);
    let get = async { cx.remote.http_get(&request).await.map_err(Error::from) };
    let response = match &host {
        Some(host) => host.run(get).await,
        None => get.await,
    };
    let record = match response {
        Ok(HttpResponse::NotModified {
            etag,
            last_modified,
        }) => match kept {
            Some(kept) => HttpRecord {
                etag: etag.or(kept.etag),
                last_modified: last_modified.or(kept.last_modified),
                ..kept
            },
            None => {
                return Err(Error::Unsupported {
                    message: format!(
                        "GET {}: the server answered 304 Not Modified to an unconditional request",
                        op.url
                    ),
                })
            }
        },
        Ok(HttpResponse::Body {
            body,
            etag,
            last_modified,
        }) => HttpRecord {
            etag,
            last_modified,
            blob: cx.store.put_blob(&body)?,
            size: body.len() as u64,
        },
        Err(error) => {
            cx.events
                .emit(&step, name, StepState::Failed, Some(error.to_string()));
            return Err(error);
        }
    };
    cx.events.emit(&step, name, StepState::Done, None);
    // A download that fails its checksum is not kept: the next request
    // must not be answered 304 with it.
    if expected.is_none_or(|expected| expected == record.blob) {
        let json = serde_json::to_vec(&record).expect("records always serialise");
        cx.store.put(RecordKind::Fetch, &key, &json)?;
    }
    Ok(record)
}

/// Where what `url` answered is kept.
fn record_key(url: &str) -> Digest {
    let mut encoder = Encoder::new(Domain::HttpCache);
    encoder.str(url);
    encoder.finish()
}

/// `sha256:<64 hex>` (the only algorithm gantry's digests use).
fn parse_checksum(text: &str) -> Result<Digest> {
    let invalid = |why: &str| Error::InvalidArgument {
        message: format!("invalid checksum {text:?}: {why}"),
    };
    let (algorithm, hex) = text
        .split_once(':')
        .ok_or_else(|| invalid("expected sha256:<64 hex digits>"))?;
    if algorithm != "sha256" {
        return Err(invalid("only sha256 checksums are supported"));
    }
    if hex.len() != 64 {
        return Err(invalid("a sha256 digest has 64 hex digits"));
    }
    Digest::from_hex(&hex.to_ascii_lowercase()).ok_or_else(|| invalid("not hex"))
}

/// The last segment of the URL's path, or `index`.
fn file_name(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| {
        rest.split_once('/').map_or("", |(_, path)| path)
    });
    let path = path.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() && name != "." && name != ".." => name.to_owned(),
        _ => "index".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(file_name("https://example.com/a/b.tar.gz"), "b.tar.gz");
        assert_eq!(file_name("https://example.com/a/b.txt?x=1#y"), "b.txt");
        assert_eq!(file_name("https://example.com/"), "index");
        assert_eq!(file_name("https://example.com"), "index");
        assert_eq!(file_name("http://127.0.0.1:8080/dir/"), "index");
    }

    #[test]
    fn checksums_are_sha256_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            parse_checksum(&format!("sha256:{hex}")).unwrap(),
            Digest::from_hex(&hex).unwrap()
        );
        for bad in ["abc", "sha512:00", "sha256:zz", "md5:0"] {
            let error = parse_checksum(bad).unwrap_err().to_string();
            assert!(error.contains("invalid checksum"), "{bad}: {error}");
        }
    }
}
