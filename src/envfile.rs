//! The `.env` file: reading settings from it, and rewriting its token keys
//! in place while keeping every other line, comment, blank line, `export`
//! prefix, line ending and order exactly as they were.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil;

/// An env file's values; the first occurrence of a key wins (as in dotenvy).
#[derive(Debug, Clone, Default)]
pub struct EnvFile {
    values: HashMap<String, String>,
}

impl EnvFile {
    pub fn read(path: &Path) -> Result<EnvFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                format!("cannot read env file {}: {e}", path.display()),
                "fix the path given with `--env-file`/WITHINGS_ENV_FILE, or pass `--no-env-file`",
            )
        })?;
        EnvFile::parse(&text).map_err(|why| {
            Error::config(
                format!("cannot parse env file {}: {why}", path.display()),
                "fix that line (KEY=value per line), or pass `--no-env-file`",
            )
        })
    }

    pub fn parse(text: &str) -> std::result::Result<EnvFile, String> {
        let mut values = HashMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((key, value)) => {
                    values.entry(key).or_insert(value);
                }
                // The offending line may hold a secret: name its number only.
                Err(dotenvy::Error::LineParse(line, _)) => {
                    let number = text
                        .lines()
                        .position(|l| l.contains(line.as_str()))
                        .map_or(0, |n| n + 1);
                    return Err(format!("line {number} is not KEY=value"));
                }
                Err(e) => return Err(format!("{}", ErrorKindOnly(&e))),
            }
        }
        Ok(EnvFile { values })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn holds_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.values.contains_key(*k))
    }
}

/// Describes a dotenvy error without echoing file content.
struct ErrorKindOnly<'a>(&'a dotenvy::Error);

impl std::fmt::Display for ErrorKindOnly<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            dotenvy::Error::Io(e) => write!(f, "{e}"),
            dotenvy::Error::EnvVar(e) => write!(f, "{e}"),
            _ => write!(f, "malformed content"),
        }
    }
}

/// Quotes a value only when a shell or dotenv reader would need it.
pub fn format_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/+=@,".contains(c));
    if plain {
        value.to_owned()
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$");
        format!("\"{escaped}\"")
    }
}

/// Rewrites `updates` in `text`: every line assigning one of those keys gets
/// the new value; keys not present are appended. Nothing else changes.
pub fn rewrite_text(text: &str, updates: &[(&str, String)]) -> String {
    let crlf = text.contains("\r\n");
    let mut seen = vec![false; updates.len()];
    let mut out = String::with_capacity(text.len() + 256);
    let mut open_quote: Option<char> = None;
    for line in text.split_inclusive('\n') {
        if let Some(q) = open_quote {
            // Inside a multi-line quoted value of some other key.
            if closes_quote(line, q) {
                open_quote = None;
            }
            out.push_str(line);
            continue;
        }
        let Some(assign) = parse_assignment(line) else {
            out.push_str(line);
            continue;
        };
        match updates.iter().position(|(k, _)| *k == assign.key) {
            Some(i) => {
                seen[i] = true;
                out.push_str(assign.prefix);
                out.push_str(assign.key);
                out.push('=');
                out.push_str(&format_value(&updates[i].1));
                out.push_str(line_ending(line));
            }
            None => {
                open_quote = unclosed_quote(assign.value);
                out.push_str(line);
            }
        }
    }
    let newline = if crlf { "\r\n" } else { "\n" };
    for (i, (key, value)) in updates.iter().enumerate() {
        if seen[i] {
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(newline);
        }
        out.push_str(&format!("{key}={}{newline}", format_value(value)));
    }
    out
}

struct Assignment<'a> {
    /// Leading whitespace and `export `, kept as written.
    prefix: &'a str,
    key: &'a str,
    value: &'a str,
}

fn parse_assignment(line: &str) -> Option<Assignment<'_>> {
    let body = line.trim_end_matches(['\n', '\r']);
    let indent = body.len() - body.trim_start().len();
    let rest = &body[indent..];
    let after_export = rest
        .strip_prefix("export")
        .filter(|r| r.starts_with([' ', '\t']))
        .map(str::trim_start);
    let (prefix_len, rest) = match after_export {
        Some(r) => (body.len() - r.len(), r),
        None => (indent, rest),
    };
    let key_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let key = &rest[..key_len];
    let after_key = rest[key_len..].trim_start();
    let value = after_key.strip_prefix('=')?;
    (!key.is_empty() && !key.starts_with('#')).then_some(Assignment {
        prefix: &body[..prefix_len],
        key,
        value,
    })
}

/// The quote a value opens without closing on the same line, if any.
fn unclosed_quote(value: &str) -> Option<char> {
    let v = value.trim_start();
    let q = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    (!closes_quote(&v[1..], q)).then_some(q)
}

fn closes_quote(text: &str, q: char) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\\' if q == '"' && !escaped => escaped = true,
            c if c == q && !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

fn line_ending(line: &str) -> &str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// Rewrites the token keys of the env file at `path`, atomically.
/// The caller holds the store lock, which serialises all our writers.
pub fn rewrite_file(path: &Path, updates: &[(&str, String)]) -> Result<PathBuf> {
    // Write through a symlink to the real file rather than replacing the link.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string(&real).map_err(|e| write_error(path, &e))?;
    let new_text = rewrite_text(&text, updates);
    fsutil::remove_stale_temps(&real);
    fsutil::write_atomically(&real, new_text.as_bytes()).map_err(|e| write_error(path, &e))?;
    Ok(real)
}

fn write_error(path: &Path, e: &std::io::Error) -> Error {
    Error::config(
        format!("cannot rewrite env file {}: {e}", path.display()),
        "fix its permissions, or pass `--no-env-file-update`; the store holds the new tokens",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn updates() -> Vec<(&'static str, String)> {
        vec![
            ("WITHINGS_REFRESH_TOKEN", "new-r".into()),
            ("WITHINGS_ACCESS_TOKEN", "new-a".into()),
        ]
    }

    #[test]
    fn keeps_comments_order_export_and_crlf() {
        let text = "# creds\r\nWITHINGS_CLIENT_ID=abc\r\nexport WITHINGS_REFRESH_TOKEN=\"old\"\r\n\r\nWITHINGS_ACCESS_TOKEN = old # x\r\nOTHER='keep me'\r\n";
        let out = rewrite_text(text, &updates());
        assert_eq!(
            out,
            "# creds\r\nWITHINGS_CLIENT_ID=abc\r\nexport WITHINGS_REFRESH_TOKEN=new-r\r\n\r\nWITHINGS_ACCESS_TOKEN=new-a\r\nOTHER='keep me'\r\n"
        );
    }

    #[test]
    fn duplicate_keys_are_all_rewritten() {
        let out = rewrite_text("WITHINGS_REFRESH_TOKEN=a\nWITHINGS_REFRESH_TOKEN=b\n", &updates()[..1]);
        assert_eq!(out, "WITHINGS_REFRESH_TOKEN=new-r\nWITHINGS_REFRESH_TOKEN=new-r\n");
    }

    #[test]
    fn missing_keys_are_appended_after_a_newline() {
        let out = rewrite_text("A=1", &updates());
        assert_eq!(out, "A=1\nWITHINGS_REFRESH_TOKEN=new-r\nWITHINGS_ACCESS_TOKEN=new-a\n");
    }

    #[test]
    fn multi_line_values_of_other_keys_are_left_alone() {
        let text = "CERT=\"line1\nWITHINGS_REFRESH_TOKEN=inside\n\"\nWITHINGS_REFRESH_TOKEN=old\n";
        let out = rewrite_text(text, &updates()[..1]);
        assert_eq!(
            out,
            "CERT=\"line1\nWITHINGS_REFRESH_TOKEN=inside\n\"\nWITHINGS_REFRESH_TOKEN=new-r\n"
        );
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(format_value("2025-01-15T12:00:00Z"), "2025-01-15T12:00:00Z");
        assert_eq!(format_value("a b"), "\"a b\"");
        assert_eq!(format_value("a\"$b"), "\"a\\\"\\$b\"");
        assert_eq!(format_value(""), "\"\"");
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Z][A-Z0-9_]{0,8}=[a-z0-9]{0,8}".prop_map(|s| s),
            "export [A-Z][A-Z0-9_]{0,8}=\"[a-z0-9 ]{0,8}\"".prop_map(|s| s),
            "[A-Z]{1,4} *= *'[a-z ]{0,6}'".prop_map(|s| s),
            "# [ -~]{0,20}".prop_map(|s| s),
            Just(String::new()),
            Just("WITHINGS_REFRESH_TOKEN=old".to_owned()),
            Just("export WITHINGS_ACCESS_TOKEN=\"old token\"".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn any_env_file_round_trips(lines in proptest::collection::vec(line(), 0..12), crlf in any::<bool>()) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let text: String = lines.iter().map(|l| format!("{l}{nl}")).collect();
            let out = rewrite_text(&text, &updates());
            // Every line that is not a token assignment survives unchanged and in order.
            let keep = |t: &str| t.split_inclusive('\n')
                .filter(|l| !l.contains("WITHINGS_REFRESH_TOKEN") && !l.contains("WITHINGS_ACCESS_TOKEN"))
                .map(str::to_owned).collect::<Vec<_>>();
            prop_assert_eq!(keep(&text), keep(&out));
            // And the file reads back with the new values.
            let parsed = EnvFile::parse(&out).unwrap();
            prop_assert_eq!(parsed.get("WITHINGS_REFRESH_TOKEN"), Some("new-r"));
            prop_assert_eq!(parsed.get("WITHINGS_ACCESS_TOKEN"), Some("new-a"));
            // Rewriting twice changes nothing more.
            prop_assert_eq!(rewrite_text(&out, &updates()), out.clone());
        }
    }

    /// One generated piece of an env file, and what the rewrite must make of it.
    #[derive(Debug, Clone)]
    enum Piece {
        /// Must survive byte for byte (comments, other keys, near-miss keys,
        /// multi-line values that mention a token key, junk).
        Kept(String),
        /// An assignment of `TOKEN_KEYS[key]`: becomes `prefix KEY=new`.
        Token { prefix: String, key: usize, rest: String },
    }

    fn kept_piece() -> impl Strategy<Value = String> {
        let near_miss = prop_oneof![
            Just("WITHINGS_REFRESH_TOKEN_BACKUP"),
            Just("OLD_WITHINGS_ACCESS_TOKEN"),
            Just("WITHINGS_ACCESS_TOKENS"),
            Just("withings_refresh_token"),
            Just("WITHINGS_TOKEN_EXPIRES"),
            Just("WITHINGS_CLIENT_ID"),
            Just("OTHER"),
        ];
        prop_oneof![
            (near_miss, "[ ]{0,1}", "[a-zA-Z0-9_./:-]{0,10}").prop_map(|(k, sp, v)| format!("{k}{sp}={sp}{v}")),
            "[A-Z][A-Z0-9_]{0,6}=\"[a-z0-9 #'$]{0,10}\"",
            "export [A-Z][A-Z0-9_]{0,6}='[a-z0-9 #\"]{0,10}'",
            "[ \t]{0,2}#[ -~]{0,30}",
            Just("# WITHINGS_REFRESH_TOKEN=commented-out".to_owned()),
            Just("#WITHINGS_ACCESS_TOKEN=\"commented out\"".to_owned()),
            Just("WITHINGS_REFRESH_TOKEN".to_owned()),
            Just("export=1".to_owned()),
            Just(String::new()),
            Just("   ".to_owned()),
        ]
    }

    fn piece() -> impl Strategy<Value = Piece> {
        let token = (
            prop_oneof![
                Just(""),
                Just("export "),
                Just("  "),
                Just("export  "),
                Just(" export ")
            ],
            0..TOKEN_KEYS_FOR_TESTS.len(),
            prop_oneof![Just("="), Just(" = "), Just(" =")],
            prop_oneof![
                Just("old"),
                Just("\"old token\""),
                Just("'old'"),
                Just(""),
                Just("old # trailing comment"),
            ],
        )
            .prop_map(|(prefix, key, sep, value)| Piece::Token {
                prefix: prefix.to_owned(),
                key,
                rest: format!("{sep}{value}"),
            });
        prop_oneof![3 => kept_piece().prop_map(Piece::Kept), 2 => token]
    }

    const TOKEN_KEYS_FOR_TESTS: [&str; 4] = [
        "WITHINGS_ACCESS_TOKEN",
        "WITHINGS_REFRESH_TOKEN",
        "WITHINGS_TOKEN_EXPIRES_AT",
        "WITHINGS_TOKEN_LAST_REFRESHED",
    ];

    proptest! {
        /// Stronger than `any_env_file_round_trips`: the expected output is
        /// built from what each generated line is, so a rewrite that touched a
        /// comment or a near-miss key, dropped a line ending, moved a line or
        /// mangled a prefix fails, whatever the line mentions.
        #[test]
        fn any_env_file_is_rewritten_line_for_line(
            pieces in proptest::collection::vec((piece(), any::<bool>()), 0..16),
            multi_line in proptest::option::of((0..16usize, any::<bool>())),
            final_newline in any::<bool>(),
            values in proptest::collection::vec("[ -~]{0,24}", 4),
        ) {
            let updates: Vec<(&str, String)> = TOKEN_KEYS_FOR_TESTS.iter().copied().zip(values.iter().cloned()).collect();
            let mut text = String::new();
            let mut expected = String::new();
            let mut present = [false; 4];
            let count = pieces.len();
            for (i, (piece, crlf)) in pieces.iter().enumerate() {
                let nl = if i + 1 == count && !final_newline { "" } else if *crlf { "\r\n" } else { "\n" };
                if let Some((at, crlf)) = multi_line && at == i {
                    // A closed multi-line value whose inner line looks like a token assignment.
                    let inner = if crlf { "\r\n" } else { "\n" };
                    let block = format!("CERT=\"begin{inner}WITHINGS_REFRESH_TOKEN=inside{inner}end\"{inner}");
                    text.push_str(&block);
                    expected.push_str(&block);
                }
                match piece {
                    Piece::Kept(line) => {
                        text.push_str(&format!("{line}{nl}"));
                        expected.push_str(&format!("{line}{nl}"));
                    }
                    Piece::Token { prefix, key, rest } => {
                        present[*key] = true;
                        let name = TOKEN_KEYS_FOR_TESTS[*key];
                        text.push_str(&format!("{prefix}{name}{rest}{nl}"));
                        expected.push_str(&format!("{prefix}{name}={}{nl}", format_value(&updates[*key].1)));
                    }
                }
            }
            let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
            for (i, (key, value)) in updates.iter().enumerate() {
                if present[i] {
                    continue;
                }
                if !expected.is_empty() && !expected.ends_with('\n') {
                    expected.push_str(newline);
                }
                expected.push_str(&format!("{key}={}{newline}", format_value(value)));
            }
            let out = rewrite_text(&text, &updates);
            prop_assert_eq!(&out, &expected);
            prop_assert_eq!(rewrite_text(&out, &updates), out.clone());
            // Whatever a dotenv reader made of the file, it now reads the new
            // values and every other key exactly as before.
            if let Ok(before) = EnvFile::parse(&text) {
                let after = EnvFile::parse(&out);
                prop_assert!(after.is_ok(), "the rewrite broke a readable file: {:?}", out);
                let after = after.unwrap();
                for (key, value) in &updates {
                    prop_assert_eq!(after.get(key), Some(value.as_str()), "{} in {:?}", key, out);
                }
                for (key, value) in &before.values {
                    if !TOKEN_KEYS_FOR_TESTS.contains(&key.as_str()) {
                        prop_assert_eq!(after.get(key), Some(value.as_str()), "{} in {:?}", key, out);
                    }
                }
                prop_assert_eq!(before.values.len() + present.iter().filter(|p| !**p).count(), after.values.len());
            }
        }
    }
}
