//! The pool's file names: which ids it accepts, the file each id lives in, and the temporary
//! names an operation writes under before it publishes a file under its final name.
//!
//! Ids are checked before they become paths, so an id can never name a file outside the pool
//! (`vol-../../etc`) or one of the pool's temporary files.

use gureum_host_api::{HostError, HostResult};

/// Every temporary file starts with this; nothing else in the pool does, so what `open` finds
/// under such a name was left by an operation that never finished (a `kill -9`, a crash, a
/// power loss) and is removed.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Raw files end in this (volumes and snapshots alike).
const SUFFIX: &str = ".img";

/// What kind of id: a volume (`vol-…`) or a snapshot (`snap-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Volume,
    Snapshot,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Volume => "vol-",
            Kind::Snapshot => "snap-",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Volume => "volume id",
            Kind::Snapshot => "snapshot id",
        }
    }
}

/// `id` if it is a well-formed id of `kind`: its prefix, then 1 to 64 ASCII letters and
/// digits (AWS's are 17 hex digits; tests use shorter ones).
pub(crate) fn check(kind: Kind, id: &str) -> HostResult<()> {
    let invalid = |why: &str| HostError::Invalid {
        what: format!("{} {id:?}", kind.noun()),
        why: why.into(),
    };
    let Some(rest) = id.strip_prefix(kind.prefix()) else {
        return Err(invalid(&format!(
            "it does not start with {}",
            kind.prefix()
        )));
    };
    if rest.is_empty() || rest.len() > 64 {
        return Err(invalid("it must have 1 to 64 characters after the prefix"));
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid("only letters and digits may follow the prefix"));
    }
    Ok(())
}

/// The file name of an id's raw file.
pub(crate) fn file_name(id: &str) -> String {
    format!("{id}{SUFFIX}")
}

/// The id a pool file name stands for, if it is a published file of `kind` (temporary and
/// foreign files are not).
pub(crate) fn id_of(kind: Kind, file_name: &str) -> Option<&str> {
    let id = file_name.strip_suffix(SUFFIX)?;
    check(kind, id).ok().map(|()| id)
}

/// A temporary name for `final_name`, unique within this process (`pid` and `seq` tell two
/// processes' and two calls' attempts apart).
pub(crate) fn temp_name(final_name: &str, pid: u32, seq: u64) -> String {
    format!("{TEMP_PREFIX}{final_name}.{pid}.{seq}")
}

/// Whether a file name is one of the pool's temporary names.
pub(crate) fn is_temp(file_name: &str) -> bool {
    file_name.starts_with(TEMP_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_they_become_paths() {
        check(Kind::Volume, "vol-0123456789abcdef0").unwrap();
        check(Kind::Snapshot, "snap-1").unwrap();
        for bad in [
            "vol-",
            "vol-../x",
            "vol-a/b",
            "snap-1",
            "vol-a.img",
            "vol-a b",
            "x",
        ] {
            let e = check(Kind::Volume, bad).unwrap_err();
            assert!(matches!(e, HostError::Invalid { .. }), "{bad}: {e}");
        }
        assert!(check(Kind::Volume, &format!("vol-{}", "a".repeat(65))).is_err());
        let e = check(Kind::Snapshot, "vol-1").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid snapshot id \"vol-1\": it does not start with snap-"
        );
    }

    #[test]
    fn listing_sees_only_published_files_of_its_kind() {
        assert_eq!(id_of(Kind::Volume, "vol-1a.img"), Some("vol-1a"));
        assert_eq!(id_of(Kind::Snapshot, "snap-2.img"), Some("snap-2"));
        let temp = temp_name("vol-1a.img", 42, 7);
        assert_eq!(temp, ".tmp-vol-1a.img.42.7");
        assert!(is_temp(&temp));
        for other in [
            temp.as_str(),
            "vol-1a",
            "snap-2.img",
            "lost+found",
            "vol-1.img.x",
        ] {
            assert_eq!(id_of(Kind::Volume, other), None, "{other}");
        }
        assert!(!is_temp("vol-1a.img"));
    }
}
