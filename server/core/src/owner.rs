//! Owners of files: the uid/gid an entry carries, and `owner:` arguments
//! (`uid`, `uid:gid`, `name`, `name:group`, `root`), whose names resolve
//! against a root filesystem's `/etc/passwd` and `/etc/group` as Dagger
//! resolves them: a user given alone also gives its uid as the gid (not the
//! user's primary group), and a name that is not in the file is an error.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A numeric owner. Root (0:0) is the default and is left out of JSON and
/// of tree digests, so trees without owners keep the digests they had
/// before entries carried one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };

    pub fn is_root(&self) -> bool {
        *self == Owner::ROOT
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// One half of an `owner:` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Id {
    Number(u32),
    Name(String),
}

impl Id {
    fn parse(text: &str) -> Id {
        if text == "root" {
            return Id::Number(0);
        }
        text.parse()
            .map_or_else(|_| Id::Name(text.to_owned()), Id::Number)
    }
}

/// An `owner:` argument, parsed; names are resolved by `resolve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnerSpec {
    text: String,
    user: Id,
    group: Option<Id>,
}

/// Where the names of an `owner:` argument are looked up.
pub(crate) struct Accounts<'a> {
    /// What the accounts belong to, for errors ("the container", "the directory").
    pub(crate) of: &'a str,
    /// The contents of `/etc/passwd` and `/etc/group` (`None`: no such file).
    pub(crate) passwd: Option<String>,
    pub(crate) group: Option<String>,
}

impl OwnerSpec {
    /// Parses an `owner:` argument; empty means "leave owners as they are".
    pub(crate) fn parse(owner: &str) -> Result<Option<OwnerSpec>> {
        if owner.is_empty() {
            return Ok(None);
        }
        let (user, group) = match owner.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (owner, None),
        };
        if user.is_empty() || group.is_some_and(|group| group.is_empty() || group.contains(':')) {
            return Err(Error::InvalidArgument {
                message: format!(
                    "owner {owner:?}: expected a user or user:group, each a name or a numeric id (e.g. 1000:1000 or app:app)"
                ),
            });
        }
        Ok(Some(OwnerSpec {
            text: owner.to_owned(),
            user: Id::parse(user),
            group: group.map(Id::parse),
        }))
    }

    /// The numeric owner, when no name needs looking up.
    pub(crate) fn numeric(&self) -> Option<Owner> {
        let uid = match self.user {
            Id::Number(uid) => uid,
            Id::Name(_) => return None,
        };
        let gid = match &self.group {
            None => uid,
            Some(Id::Number(gid)) => *gid,
            Some(Id::Name(_)) => return None,
        };
        Some(Owner { uid, gid })
    }

    /// The numeric owner, names looked up in `accounts`.
    pub(crate) fn resolve(&self, accounts: &Accounts<'_>) -> Result<Owner> {
        let uid = match &self.user {
            Id::Number(uid) => *uid,
            Id::Name(name) => self.lookup(accounts, "passwd", accounts.passwd.as_deref(), name)?,
        };
        let gid = match &self.group {
            None => uid,
            Some(Id::Number(gid)) => *gid,
            Some(Id::Name(name)) => {
                self.lookup(accounts, "group", accounts.group.as_deref(), name)?
            }
        };
        Ok(Owner { uid, gid })
    }

    /// The id of `name` in `/etc/<file>` (`name:x:id:…` lines).
    fn lookup(
        &self,
        accounts: &Accounts<'_>,
        file: &str,
        contents: Option<&str>,
        name: &str,
    ) -> Result<u32> {
        let of = accounts.of;
        let Some(contents) = contents else {
            return Err(Error::InvalidArgument {
                message: format!(
                    "owner {:?}: {of} has no /etc/{file} to look {name:?} up in; use a numeric id",
                    self.text
                ),
            });
        };
        contents
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .find_map(|line| {
                let mut fields = line.split(':');
                (fields.next() == Some(name))
                    .then(|| fields.nth(1).and_then(|id| id.trim().parse().ok()))
                    .flatten()
            })
            .ok_or_else(|| Error::InvalidArgument {
                message: format!(
                    "owner {:?}: no {} named {name:?} in the /etc/{file} of {of}",
                    self.text,
                    if file == "passwd" { "user" } else { "group" },
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\n# a comment\napp:x:1234:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:4321:app\n";

    fn accounts() -> Accounts<'static> {
        Accounts {
            of: "the container",
            passwd: Some(PASSWD.into()),
            group: Some(GROUP.into()),
        }
    }

    fn resolve(owner: &str) -> Result<Owner> {
        OwnerSpec::parse(owner)
            .unwrap()
            .unwrap()
            .resolve(&accounts())
    }

    #[test]
    fn numbers_and_names_resolve_as_dagger_resolves_them() {
        let owner = |uid, gid| Owner { uid, gid };
        assert_eq!(OwnerSpec::parse("").unwrap(), None);
        assert_eq!(resolve("1000").unwrap(), owner(1000, 1000));
        assert_eq!(resolve("1:2").unwrap(), owner(1, 2));
        assert_eq!(resolve("root").unwrap(), owner(0, 0));
        // A user alone gives its uid as gid, not its primary group (1000).
        assert_eq!(resolve("app").unwrap(), owner(1234, 1234));
        assert_eq!(resolve("app:staff").unwrap(), owner(1234, 4321));
        assert_eq!(resolve("1234:staff").unwrap(), owner(1234, 4321));
        assert_eq!(resolve("app:4321").unwrap(), owner(1234, 4321));
        let spec = OwnerSpec::parse("7:8").unwrap().unwrap();
        assert_eq!(spec.numeric(), Some(owner(7, 8)));
        assert_eq!(OwnerSpec::parse("app:7").unwrap().unwrap().numeric(), None);
    }

    #[test]
    fn unknown_names_and_bad_forms_are_refused_clearly() {
        let error = resolve("nobody").unwrap_err().to_string();
        assert!(
            error.contains("no user named \"nobody\" in the /etc/passwd of the container"),
            "{error}"
        );
        let error = resolve("app:wheel").unwrap_err().to_string();
        assert!(error.contains("no group named \"wheel\""), "{error}");
        for bad in ["1000:", ":1000", "1:2:3"] {
            let error = OwnerSpec::parse(bad).unwrap_err().to_string();
            assert!(
                error.contains("expected a user or user:group"),
                "{bad}: {error}"
            );
        }
        let spec = OwnerSpec::parse("app").unwrap().unwrap();
        let none = Accounts {
            of: "the directory",
            passwd: None,
            group: None,
        };
        let error = spec.resolve(&none).unwrap_err().to_string();
        assert!(
            error.contains("the directory has no /etc/passwd"),
            "{error}"
        );
    }
}
