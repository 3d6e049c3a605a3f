//! Resolving `USER` (`name`, `uid`, `name:group`, `uid:gid`) against the image's own
//! `/etc/passwd` and `/etc/group`, as Docker and runc do.

use std::ffi::OsStr;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Who a step's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<u32>,
    /// From `/etc/passwd`, `/` when the user has no entry.
    pub(crate) home: String,
}

/// Reads `path` (absolute, inside `root`), resolving symlinks inside `root`.
pub(crate) fn read_in_root(root: &Path, path: &str) -> Option<Vec<u8>> {
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let relative = path.trim_start_matches('/');
    let fd = rustix::fs::openat2(
        &dir,
        OsStr::from_bytes(relative.as_bytes()),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(Passwd {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).map(|h| h.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

fn groups(text: &str) -> Vec<Group> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(Group {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|m| !m.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `user` in the root filesystem at `root`. Names must exist in the image's
/// files; numeric IDs need not (the group is then 0, or the passwd entry's).
pub(crate) fn resolve(root: &Path, user: &str) -> Result<ExecUser, String> {
    let passwd_text =
        read_in_root(root, "/etc/passwd").map(|b| String::from_utf8_lossy(&b).into_owned());
    let group_text =
        read_in_root(root, "/etc/group").map(|b| String::from_utf8_lossy(&b).into_owned());
    resolve_with(user, passwd_text.as_deref(), group_text.as_deref())
}

fn resolve_with(
    user: &str,
    passwd_text: Option<&str>,
    group_text: Option<&str>,
) -> Result<ExecUser, String> {
    let users = passwd(passwd_text.unwrap_or(""));
    let all_groups = groups(group_text.unwrap_or(""));
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => users.iter().find(|p| p.uid == uid),
        Err(_) => Some(users.iter().find(|p| p.name == user_part).ok_or_else(|| {
            format!(
                "unable to find user {user_part}: no matching entries in the image's /etc/passwd"
            )
        })?),
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.map(|p| p.uid).expect("a named user was found"),
    };
    let mut gid = entry.map_or(0, |p| p.gid);
    if let Some(group) = group_part.filter(|g| !g.is_empty()) {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.gid)
                .ok_or_else(|| format!("unable to find group {group}: no matching entries in the image's /etc/group"))?,
        };
    }
    let mut additional_gids: Vec<u32> = match entry {
        Some(entry) if group_part.is_none() => all_groups
            .iter()
            .filter(|g| g.members.contains(&entry.name))
            .map(|g| g.gid)
            .filter(|g| *g != gid)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ExecUser {
        uid,
        gid,
        additional_gids,
        home: entry
            .map(|p| p.home.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nnonroot:x:65532:\nwheel:x:10:nonroot\n";

    #[test]
    fn names_and_ids_resolve_like_docker() {
        let root = resolve_with("", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        let named = resolve_with("nonroot", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((named.uid, named.gid), (65532, 65532));
        assert_eq!(named.additional_gids, vec![10]);
        let numeric = resolve_with("1234", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (numeric.uid, numeric.gid, numeric.home.as_str()),
            (1234, 0, "/")
        );
        let with_group = resolve_with("nonroot:wheel", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((with_group.uid, with_group.gid), (65532, 10));
        assert_eq!(resolve_with("1:2", None, None).unwrap().gid, 2);
        assert!(resolve_with("nobody-here", Some(PASSWD), Some(GROUP))
            .unwrap_err()
            .contains("nobody-here"));
        assert!(resolve_with("root:nogroup", Some(PASSWD), Some(GROUP)).is_err());
    }
}
