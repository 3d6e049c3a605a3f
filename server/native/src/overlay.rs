//! overlayfs mounts: a step's root filesystem is its image's layers as lower
//! directories and a fresh upper directory that becomes the step's own layer.
//!
//! Chains deeper than [`MAX_LOWER_LAYERS`] (or whose `lowerdir` option would not fit
//! in one page, the limit of the mount options string) are flattened first: their
//! merged view is copied into a single layer once, and later steps stack on that.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::Error;

/// The deepest chain of layers a step mounts directly. Every step adds at most one
/// layer, so a chain of 40 `withExec`s on a one-layer image is flattened once, at
/// the 40th; the kernel allows 500 but the option string runs out well before that.
pub const MAX_LOWER_LAYERS: usize = 40;
/// The kernel copies mount options into one page.
const MAX_OPTIONS: usize = 4000;

/// An overlayfs mount, unmounted when dropped.
#[derive(Debug)]
pub(crate) struct OverlayMount {
    target: PathBuf,
    mounted: bool,
}

/// The layers of an overlay, top first.
pub(crate) struct Layers<'a> {
    pub(crate) lowers: Vec<PathBuf>,
    /// `(upper, work)`: both on one filesystem; `None` mounts read-only.
    pub(crate) upper: Option<(&'a Path, &'a Path)>,
}

fn check_path(path: &Path) -> Result<&str, Error> {
    let text = path
        .to_str()
        .filter(|text| !text.contains([':', ',', '\n']));
    text.ok_or_else(|| Error::Unsupported {
        reason: format!(
            "{} contains ':' or ',' or is not UTF-8; overlayfs options cannot name it (choose another --state-dir)",
            path.display()
        ),
    })
}

/// The `mount(2)` data string for `layers`.
pub(crate) fn options(layers: &Layers<'_>) -> Result<String, Error> {
    let mut lowers = Vec::with_capacity(layers.lowers.len());
    for lower in &layers.lowers {
        lowers.push(check_path(lower)?);
    }
    let mut options = format!("lowerdir={}", lowers.join(":"));
    if let Some((upper, work)) = layers.upper {
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            check_path(upper)?,
            check_path(work)?
        ));
    }
    // Layers must stay self-contained: no redirects or metadata-only copy-ups that
    // point into the lower layers, no index tying them to this mount.
    options.push_str(",index=off,redirect_dir=off");
    Ok(options)
}

/// `volatile` (Linux 5.10+) skips every sync of the upper directory, unmount's
/// included (which costs 100 ms and more on a busy disk). A step's upper directory
/// is worth nothing after a crash anyway: the next engine deletes it unfinished.
const VOLATILE: &str = ",volatile";

fn mount_with(target: &Path, data: &str) -> rustix::io::Result<()> {
    let c_data = std::ffi::CString::new(data).expect("paths were checked for NUL");
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        c_data.as_c_str(),
    )
}

/// Whether `lowers` can be mounted as they are.
pub(crate) fn fits(lowers: &[PathBuf]) -> bool {
    lowers.len() <= MAX_LOWER_LAYERS
        && lowers
            .iter()
            .map(|l| l.as_os_str().len() + 1)
            .sum::<usize>()
            < MAX_OPTIONS - 200
}

impl OverlayMount {
    /// Mounts `layers` at `target` (an existing empty directory). An overlay needs a
    /// lower directory, or two without an upper: `empty` fills in.
    pub(crate) fn mount(
        mut layers: Layers<'_>,
        empty: &Path,
        target: &Path,
    ) -> Result<Self, Error> {
        let needed = if layers.upper.is_some() { 1 } else { 2 };
        while layers.lowers.len() < needed {
            layers.lowers.push(empty.to_owned());
        }
        let data = options(&layers)?;
        if data.len() > MAX_OPTIONS {
            return Err(Error::other(
                "mounting an overlay",
                format!(
                    "{} layers make a mount option string too long",
                    layers.lowers.len()
                ),
            ));
        }
        let mounted = if layers.upper.is_some() {
            match mount_with(target, &format!("{data}{VOLATILE}")) {
                // An older kernel without `volatile`.
                Err(rustix::io::Errno::INVAL) => mount_with(target, &data),
                other => other,
            }
        } else {
            mount_with(target, &data)
        };
        mounted.map_err(|errno| Error::io("mounting an overlay", target, errno.into()))?;
        Ok(Self {
            target: target.to_owned(),
            mounted: true,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.target
    }

    pub(crate) fn unmount(mut self) -> Result<(), Error> {
        self.mounted = false;
        unmount(&self.target)
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(error) = unmount(&self.target) {
                tracing::warn!(%error, "cannot unmount an overlay");
            }
        }
    }
}

/// Unmounts `target`; a busy mount (a process of a killed step still holding it) is
/// detached instead, to go when the last user does.
pub(crate) fn unmount(target: &Path) -> Result<(), Error> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::BUSY) => rustix::mount::unmount(target, UnmountFlags::DETACH)
            .map_err(|errno| Error::io("unmounting", target, errno.into())),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(errno) => Err(Error::io("unmounting", target, errno.into())),
    }
}

/// Mount points under `prefix` (from `/proc/self/mountinfo`), deepest first.
pub(crate) fn mounts_under(prefix: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|path| path.starts_with(prefix) && path != prefix)
        .collect();
    out.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    out
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit)
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_lowers_top_first_and_refuse_separators() {
        let upper = Path::new("/s/u");
        let work = Path::new("/s/w");
        let layers = Layers {
            lowers: vec!["/s/l/2".into(), "/s/l/1".into()],
            upper: Some((upper, work)),
        };
        assert_eq!(
            options(&layers).unwrap(),
            "lowerdir=/s/l/2:/s/l/1,upperdir=/s/u,workdir=/s/w,index=off,redirect_dir=off"
        );
        let bad = Layers {
            lowers: vec!["/s/a:b".into()],
            upper: None,
        };
        assert!(options(&bad).is_err());
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
    }

    #[test]
    fn deep_chains_do_not_fit() {
        let lowers: Vec<PathBuf> = (0..MAX_LOWER_LAYERS + 1)
            .map(|i| format!("/x/{i}").into())
            .collect();
        assert!(!fits(&lowers));
        assert!(fits(&lowers[..3]));
    }
}
