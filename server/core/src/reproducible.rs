//! Reproducible images: what a runtime publishes or saves, rewritten so that the
//! same files and configuration give the same bytes (and digests), whichever
//! engine built them and when, as BuildKit does with `SOURCE_DATE_EPOCH`.
//!
//! Three things vary from one build of an image to the next: the config's
//! `created` time, what the builder wrote about itself in the config (its
//! history with times, the container it committed, its version, its own
//! labels: gantry's, such as the step's key, and the runtime's), and the file times inside the layers a step wrote. [`Epoch`]
//! fixes them: `created` is the epoch, those config fields are dropped, and
//! every file time later than the epoch is clamped to it. Entry order, owners,
//! modes, extended attributes and contents stay as they are.
//!
//! The native runtime applies [`config`] when it exports; the Docker runtime
//! rewrites `docker save` output with [`saved_image`] before it loads, pushes
//! or hands it out. It does not decide the epoch: the binary reads
//! `SOURCE_DATE_EPOCH` (0 when unset).

use std::io::Read as _;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::oci::{malformed, read_entries, sha256, write_files, SavedImage};

/// The label gantry puts on the images it builds (`publish`, `asTarball`).
pub(crate) const MANAGED_LABEL: &str = "dev.gantry.managed";
/// The label on a step's container: the step's cache key.
pub(crate) const STEP_LABEL: &str = "dev.gantry.step";
/// The label on a service's container: the service's key.
pub(crate) const SERVICE_LABEL: &str = "dev.gantry.service";
/// Gantry's own labels above, which a commit carries from a container into
/// its image: dropped from every published config.
const OWN_LABELS: [&str; 3] = [MANAGED_LABEL, STEP_LABEL, SERVICE_LABEL];

/// How an image is made reproducible.
#[derive(Debug, Clone, Copy)]
pub struct Epoch<'a> {
    /// Seconds since 1970: the config's `created`, and the latest file time.
    pub seconds: u64,
    /// Labels the runtime adds for itself (never the user's), dropped from the
    /// config with gantry's own.
    pub builder_labels: &'a [&'a str],
}

/// Config fields a builder writes about the build itself (Docker's commit
/// writes all of them): none describes the image.
const BUILD_FIELDS: [&str; 5] = [
    "history",
    "container",
    "container_config",
    "docker_version",
    "parent",
];

/// `config` (an image config document) with `created` at the epoch, the
/// builder's own fields and labels dropped, and `rootfs` naming `diff_ids`.
pub fn config(config: &mut Value, diff_ids: &[String], epoch: Epoch<'_>) {
    config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
    config["created"] = rfc3339(epoch.seconds).into();
    if let Some(object) = config.as_object_mut() {
        // A pulled config's history describes its original layers, which the
        // rewritten ones no longer match; a commit's has the commit's time.
        for field in BUILD_FIELDS {
            object.remove(field);
        }
    }
    if let Some(run) = config.get_mut("config").and_then(Value::as_object_mut) {
        // Docker's commit records the container's hostname (its ID) and the
        // image it ran from, both different on every engine.
        for field in ["Hostname", "Image"] {
            if run.get(field).is_some_and(|value| value != "") {
                run.insert(field.to_owned(), "".into());
            }
        }
        if let Some(labels) = run.get_mut("Labels").and_then(Value::as_object_mut) {
            for label in OWN_LABELS.iter().chain(epoch.builder_labels) {
                labels.remove(*label);
            }
        }
    }
}

/// A runtime's saved image (`docker save`: its `manifest.json`, legacy or OCI
/// layout) as a legacy `docker save` tarball whose layers have their file
/// times clamped and whose config is made reproducible ([`config`]). The
/// same image gives the same bytes, and `docker load` takes them.
pub fn saved_image(saved: &[u8], epoch: Epoch<'_>) -> Result<Vec<u8>> {
    let files = read_entries(saved)?;
    let image: SavedImage = files
        .get("manifest.json")
        .and_then(|bytes| serde_json::from_slice::<Vec<SavedImage>>(bytes).ok())
        .and_then(|index| index.into_iter().next())
        .ok_or_else(|| malformed("has no readable manifest.json"))?;
    let mut document: Value = files
        .get(&image.config)
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .ok_or_else(|| malformed("lacks its image config"))?;
    let mut layers = Vec::new();
    for path in &image.layers {
        let layer = files.get(path).ok_or_else(|| malformed("lacks a layer"))?;
        let clamped = clamp_layer(&uncompressed(layer)?, epoch.seconds)?;
        layers.push((sha256(&clamped), clamped));
    }
    let diff_ids: Vec<String> = layers.iter().map(|(digest, _)| digest.clone()).collect();
    config(&mut document, &diff_ids, epoch);
    let document = serde_json::to_vec(&document).expect("configs serialise");
    let config_path = format!("{}.json", hex(&sha256(&document)));
    let layer_paths: Vec<String> = diff_ids
        .iter()
        .map(|digest| format!("{}/layer.tar", hex(digest)))
        .collect();
    let manifest = serde_json::to_vec(&[SavedImage {
        config: config_path.clone(),
        repo_tags: image.repo_tags,
        layers: layer_paths.clone(),
    }])
    .expect("manifests serialise");
    let mut entries: Vec<(String, Option<&[u8]>)> = vec![(config_path, Some(&document))];
    for (path, (_, bytes)) in layer_paths.iter().zip(&layers) {
        let dir = path.trim_end_matches("layer.tar").to_owned();
        if !entries.iter().any(|(known, _)| *known == dir) {
            entries.push((dir, None));
            entries.push((path.clone(), Some(bytes)));
        }
    }
    entries.push(("manifest.json".to_owned(), Some(&manifest)));
    write_files(&entries)
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

fn uncompressed(layer: &[u8]) -> Result<Vec<u8>> {
    if !layer.starts_with(&[0x1f, 0x8b]) {
        return Ok(layer.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(layer)
        .read_to_end(&mut out)
        .map_err(Error::tar)?;
    Ok(out)
}

const BLOCK: usize = 512;
/// Where a ustar header keeps its fields.
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const CHECKSUM: std::ops::Range<usize> = 148..156;
const TYPE: usize = 156;
const MAGIC: std::ops::Range<usize> = 257..265;
/// GNU headers keep access and change times here (ustar has its prefix there).
const GNU_TIMES: std::ops::Range<usize> = 345..369;

/// A layer tarball with every file time later than `epoch` set to it,
/// rewritten header by header: entries keep their order, names, owners,
/// modes, extended attributes and contents. PAX records of access and change
/// times are dropped, as Docker drops them.
pub fn clamp_layer(layer: &[u8], epoch: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(layer.len());
    let mut at = 0;
    while at + BLOCK <= layer.len() {
        let mut header: [u8; BLOCK] = layer[at..at + BLOCK].try_into().expect("one block");
        at += BLOCK;
        if header.iter().all(|&byte| byte == 0) {
            // The end: the zero blocks (and any padding) as they are.
            out.extend_from_slice(&header);
            out.extend_from_slice(&layer[at..]);
            return Ok(out);
        }
        let size = usize::try_from(number(&header[SIZE])?)
            .map_err(|_| malformed("has a layer entry too large"))?;
        let padded = size.div_ceil(BLOCK) * BLOCK;
        let data = layer
            .get(at..at + padded)
            .ok_or_else(|| malformed("has a truncated layer"))?;
        at += padded;
        if number(&header[MTIME])? > epoch {
            write_octal(&mut header[MTIME], epoch);
        }
        if &header[MAGIC] == b"ustar  \0" {
            header[GNU_TIMES].fill(0);
        }
        let data = match header[TYPE] {
            b'x' | b'g' => {
                let records = pax_records(&data[..size], epoch)?;
                write_octal(&mut header[SIZE], records.len() as u64);
                let mut padded = records;
                padded.resize(padded.len().div_ceil(BLOCK) * BLOCK, 0);
                std::borrow::Cow::Owned(padded)
            }
            _ => std::borrow::Cow::Borrowed(data),
        };
        header[CHECKSUM].fill(b' ');
        let sum: u64 = header.iter().map(|&byte| u64::from(byte)).sum();
        write_octal(&mut header[CHECKSUM][..7], sum);
        header[CHECKSUM][7] = b' ';
        out.extend_from_slice(&header);
        out.extend_from_slice(&data);
    }
    if at != layer.len() {
        return Err(malformed("has a truncated layer"));
    }
    Ok(out)
}

/// A numeric header field: octal digits (NUL or space ended), or base-256
/// when its first byte has the high bit set.
fn number(field: &[u8]) -> Result<u64> {
    if field.first().is_some_and(|byte| byte & 0x80 != 0) {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &byte in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(byte)))
                .ok_or_else(|| malformed("has a layer header number out of range"))?;
        }
        return Ok(value);
    }
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&byte| byte == b' ' || byte == 0)
        .take_while(|byte| (b'0'..=b'7').contains(byte))
        .collect();
    if digits.is_empty() {
        return Ok(0);
    }
    let text = std::str::from_utf8(&digits).expect("octal digits are ASCII");
    u64::from_str_radix(text, 8).map_err(|_| malformed("has a malformed layer header"))
}

/// `value` in octal filling `field` but its last byte, which ends it (NUL).
fn write_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(&text.as_bytes()[text.len() - width..]);
    field[width] = 0;
}

/// PAX records (`LEN key=value\n`) with `mtime` clamped and `atime`/`ctime` dropped.
fn pax_records(data: &[u8], epoch: u64) -> Result<Vec<u8>> {
    let bad = || malformed("has a malformed PAX header");
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    while start < data.len() {
        let rest = &data[start..];
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let length: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|text| text.parse().ok())
            .filter(|&length| length > space && length <= rest.len())
            .ok_or_else(bad)?;
        let record = &rest[..length];
        start += length;
        let (key, value) = record[space + 1..]
            .strip_suffix(b"\n")
            .and_then(|body| {
                let equals = body.iter().position(|&b| b == b'=')?;
                Some((&body[..equals], &body[equals + 1..]))
            })
            .ok_or_else(bad)?;
        match key {
            b"atime" | b"ctime" => {}
            b"mtime" => {
                let seconds: f64 = std::str::from_utf8(value)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(bad)?;
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "a comparison of times in seconds"
                )]
                let later = seconds > epoch as f64;
                if later {
                    push_record(&mut out, "mtime", epoch.to_string().as_bytes());
                } else {
                    out.extend_from_slice(record);
                }
            }
            _ => out.extend_from_slice(record),
        }
    }
    Ok(out)
}

/// Appends one PAX record, whose length counts its own digits.
fn push_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut length = body + 1;
    while length != body + length.to_string().len() {
        length = body + length.to_string().len();
    }
    out.extend_from_slice(format!("{length} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Seconds since 1970 as RFC 3339 (UTC), as image configs write `created`.
pub fn rfc3339(epoch: u64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let days = i64::try_from(epoch / 86_400).unwrap_or(0);
    let seconds = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: Epoch<'static> = Epoch {
        seconds: 1_000,
        builder_labels: &["example.runtime"],
    };

    /// A layer as Docker writes one: a directory, a file with an xattr (PAX),
    /// a long name (PAX path), a hard link, all with times after the epoch but one.
    fn layer(mtime: u64) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        dir.set_mtime(mtime);
        dir.set_uid(0);
        dir.set_gid(0);
        builder.append_data(&mut dir, "etc/", &[][..]).unwrap();
        builder
            .append_pax_extensions([
                ("SCHILY.xattr.user.note", &b"kept"[..]),
                ("mtime", format!("{mtime}.5").as_bytes()),
                ("atime", &b"12345"[..]),
            ])
            .unwrap();
        let mut file = tar::Header::new_ustar();
        file.set_mode(0o600);
        file.set_uid(1000);
        file.set_gid(0);
        file.set_size(5);
        file.set_mtime(mtime);
        builder
            .append_data(&mut file, "etc/hello.txt", &b"hello"[..])
            .unwrap();
        let mut old = tar::Header::new_gnu();
        old.set_mode(0o644);
        old.set_size(3);
        old.set_mtime(10);
        old.set_uid(0);
        old.set_gid(0);
        let long = format!("etc/{}", "x".repeat(150));
        builder.append_data(&mut old, &long, &b"old"[..]).unwrap();
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Link);
        link.set_size(0);
        link.set_mtime(mtime);
        link.set_mode(0o600);
        link.set_uid(0);
        link.set_gid(0);
        builder
            .append_link(&mut link, "etc/again.txt", "etc/hello.txt")
            .unwrap();
        builder.into_inner().unwrap()
    }

    struct Entry {
        path: String,
        mtime: u64,
        mode: u32,
        uid: u64,
        link: Option<String>,
        data: Vec<u8>,
        pax: Vec<(String, Vec<u8>)>,
    }

    fn entries(layer: &[u8]) -> Vec<Entry> {
        let mut archive = tar::Archive::new(layer);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let pax = entry
                    .pax_extensions()
                    .unwrap()
                    .map(|extensions| {
                        extensions
                            .map(|e| {
                                let e = e.unwrap();
                                (e.key().unwrap().to_owned(), e.value_bytes().to_vec())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                Entry {
                    path: entry.path().unwrap().to_string_lossy().into_owned(),
                    mtime: entry.header().mtime().unwrap(),
                    mode: entry.header().mode().unwrap(),
                    uid: entry.header().uid().unwrap(),
                    link: entry
                        .link_name()
                        .unwrap()
                        .map(|p| p.to_string_lossy().into_owned()),
                    data,
                    pax,
                }
            })
            .collect()
    }

    #[test]
    fn layers_built_at_different_times_clamp_to_the_same_bytes() {
        let first = clamp_layer(&layer(1_700_000_000), EPOCH.seconds).unwrap();
        let second = clamp_layer(&layer(1_800_000_000), EPOCH.seconds).unwrap();
        assert_eq!(first, second);
        let read = entries(&first);
        let paths: Vec<&str> = read.iter().map(|e| e.path.as_str()).collect();
        let long = format!("etc/{}", "x".repeat(150));
        assert_eq!(
            paths,
            ["etc/", "etc/hello.txt", long.as_str(), "etc/again.txt"]
        );
        assert_eq!(read[0].mtime, 1_000);
        assert_eq!(read[1].mtime, 1_000, "the PAX mtime is clamped too");
        assert_eq!((read[1].mode, read[1].uid), (0o600, 1000));
        assert_eq!(read[1].data, b"hello");
        let pax: Vec<&str> = read[1].pax.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(pax, ["SCHILY.xattr.user.note", "mtime"], "atime dropped");
        assert_eq!(read[1].pax[0].1, b"kept");
        assert_eq!(read[2].mtime, 10, "times before the epoch stay");
        assert_eq!(read[3].link.as_deref(), Some("etc/hello.txt"));
    }

    #[test]
    fn pax_records_count_their_own_length() {
        for value in ["1", "123456789", &"9".repeat(95)] {
            let mut out = Vec::new();
            push_record(&mut out, "mtime", value.as_bytes());
            let (length, _) = std::str::from_utf8(&out).unwrap().split_once(' ').unwrap();
            assert_eq!(length.parse::<usize>().unwrap(), out.len(), "{value}");
        }
    }

    #[test]
    fn configs_lose_what_the_builder_wrote_about_itself() {
        let mut document = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-12-02T03:04:05.123456789Z",
            "docker_version": "20.10.24",
            "container": "0123456789ab",
            "container_config": { "Hostname": "0123456789ab" },
            "history": [{ "created": "2026-12-02T03:04:05Z", "created_by": "sh" }],
            "config": {
                "Hostname": "0123456789ab",
                "Image": "sha256:abc",
                "Env": ["PATH=/bin"],
                "Labels": {
                    "dev.gantry.managed": "true",
                    "dev.gantry.step": "0123",
                    "example.runtime": "1",
                    "org.example": "mine",
                },
            },
        });
        config(&mut document, &["sha256:1".to_owned()], EPOCH);
        assert_eq!(
            document,
            json!({
                "architecture": "amd64",
                "os": "linux",
                "created": "1970-01-01T00:16:40Z",
                "config": {
                    "Hostname": "",
                    "Image": "",
                    "Env": ["PATH=/bin"],
                    "Labels": { "org.example": "mine" },
                },
                "rootfs": { "type": "layers", "diff_ids": ["sha256:1"] },
            })
        );
    }

    fn saved(mtime: u64, created: &str) -> Vec<u8> {
        let config = json!({
            "architecture": "amd64", "os": "linux", "created": created,
            "config": { "Hostname": created },
            "rootfs": { "type": "layers", "diff_ids": ["sha256:old"] },
        })
        .to_string();
        let manifest = r#"[{"Config":"c.json","RepoTags":["app:1"],"Layers":["l/layer.tar"]}]"#;
        let layer = layer(mtime);
        write_files(&[
            ("c.json".to_owned(), Some(config.as_bytes())),
            ("l/".to_owned(), None),
            ("l/layer.tar".to_owned(), Some(&layer)),
            ("manifest.json".to_owned(), Some(manifest.as_bytes())),
        ])
        .unwrap()
    }

    #[test]
    fn saved_images_of_two_builds_are_the_same_bytes() {
        let first = saved_image(&saved(1_700_000_000, "a"), EPOCH).unwrap();
        let second = saved_image(&saved(1_800_000_000, "b"), EPOCH).unwrap();
        assert_eq!(first, second);
        let files = read_entries(&first).unwrap();
        let index: Vec<SavedImage> = serde_json::from_slice(&files["manifest.json"]).unwrap();
        let config: Value = serde_json::from_slice(&files[&index[0].config]).unwrap();
        assert_eq!(
            index[0].repo_tags.as_deref(),
            Some(&["app:1".to_owned()][..])
        );
        let layer = &files[&index[0].layers[0]];
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(layer));
        assert_eq!(config["created"], "1970-01-01T00:16:40Z");
        assert_eq!(
            index[0].config,
            format!("{}.json", hex(&sha256(&files[&index[0].config])))
        );
        // And the OCI layout made from it is the same too.
        let format = crate::oci::ImageFormat::default();
        assert_eq!(
            crate::oci::image_layout(&first, format).unwrap(),
            crate::oci::image_layout(&second, format).unwrap()
        );
    }

    #[test]
    fn created_times_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
