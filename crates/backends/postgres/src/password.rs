//! Where a password comes from when the URL has none, as libpq looks for
//! it: `PGPASSWORD`, then the password file (`PGPASSFILE`, or
//! `~/.pgpass`): lines of `host:port:database:user:password`, `*` matching
//! anything, `\` escaping `:` and `\`. A file others may read is ignored,
//! as libpq ignores it.

use std::path::{Path, PathBuf};
use tokio_postgres::config::{Config, Host};

/// The password for `config`'s first host, port, database and user.
pub(crate) fn find(config: &Config) -> Option<String> {
    if let Ok(password) = std::env::var("PGPASSWORD") {
        return Some(password);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    if !private(&file) {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        // A socket directory matches `localhost`, as in libpq.
        _ => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default();
    let database = config.get_dbname().unwrap_or(user);
    lookup(&text, [&host, &port, database, user])
}

/// The password of the first line of `text` whose four fields match.
fn lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = split(line);
            let [host, port, database, user, password] = fields.as_slice() else {
                return None;
            };
            let matches = [host, port, database, user]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field.as_str() == "*" || field.as_str() == want);
            matches.then(|| password.clone())
        })
}

/// A line's fields, split at `:` not escaped by `\`.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(field) = fields.last_mut()
                {
                    field.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(unix)]
fn private(file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(file).is_ok_and(|meta| meta.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private(file: &Path) -> bool {
    file.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# comment\n\
                    db:5432:other:app:no\n\
                    db:5432:*:app:yes\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            lookup(text, ["db", "5432", "sheets", "app"]).as_deref(),
            Some("yes")
        );
        assert_eq!(
            lookup(text, ["elsewhere", "1", "x", "y"]).as_deref(),
            Some("fallback")
        );
        assert_eq!(
            lookup("db:5432:x:app:p\n", ["db", "5433", "x", "app"]),
            None
        );
    }

    #[test]
    fn backslashes_escape_colons_and_themselves() {
        assert_eq!(
            lookup(r"h\:1:*:*:u:pa\:ss\\word", ["h:1", "5432", "d", "u"]).as_deref(),
            Some(r"pa:ss\word")
        );
    }

    #[test]
    fn files_others_may_read_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:secret\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(!private(&file));
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(private(&file));
    }
}
