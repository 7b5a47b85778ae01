//! The `.env` file: reading settings from it, and rewriting its token keys
//! in place while keeping every other line, comment, blank line, `export`
//! prefix, line ending and order exactly as they were.
//!
//! The file is often shared with an app that reads it with python-dotenv,
//! which accepts lines dotenvy (our syntax) refuses: `APP_NAME=My App`,
//! `my-key=1`, a key with no `=`. Such a line is read as python-dotenv reads
//! it (an unquoted value is taken verbatim up to an inline ` #` comment, its
//! trailing blanks trimmed), so both tools see the same settings. A line
//! neither reads is skipped and reported by its number when it sets none of
//! the caller's keys, and stops the command, named by its number and key,
//! when it sets one (so does a caller's key with no `=`: it sets nothing). A
//! value is never echoed: it may be a secret. A UTF-8 byte order mark is
//! ignored.
//!
//! The reader and the rewriter cut the file into entries with the same
//! function (`entries`), so they agree on which line assigns which key and
//! which lines belong to another key's multi-line quoted value; and a rewrite
//! after which any entry would be cut or read differently is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsutil;

/// A UTF-8 byte order mark, which Windows editors put at the start of a file.
const BOM: &str = "\u{feff}";
/// An env file is a few kilobytes; a larger "file" is a mistake (a log, a
/// device), read no further.
pub const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;

/// Where the env file in use came from; it decides what an error asks the
/// user to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvFileOrigin {
    /// `--env-file PATH`.
    Flag,
    /// `WITHINGS_ENV_FILE`.
    Variable,
    /// `env_file` in the config file.
    ConfigFile,
    /// `./.env`, read because it is in the working directory.
    WorkingDirectory,
}

impl EnvFileOrigin {
    fn describe(self, path: &Path) -> String {
        match self {
            EnvFileOrigin::Flag => format!("env file {} (given with `--env-file`)", path.display()),
            EnvFileOrigin::Variable => format!("env file {} (named by WITHINGS_ENV_FILE)", path.display()),
            EnvFileOrigin::ConfigFile => {
                format!("env file {} (named by `env_file` in the config file)", path.display())
            }
            EnvFileOrigin::WorkingDirectory => "./.env (found in the working directory)".to_owned(),
        }
    }

    /// After "fix that line": how to read another file, or none.
    fn or_skip(self) -> &'static str {
        match self {
            EnvFileOrigin::Flag => "or leave out `--env-file`",
            EnvFileOrigin::Variable | EnvFileOrigin::ConfigFile => "or pass `--no-env-file`",
            EnvFileOrigin::WorkingDirectory => {
                "or pass `--env-file PATH` to read another file, or `--no-env-file` to read none (./.env is read because it is in the working directory)"
            }
        }
    }

    /// When the file cannot be read at all.
    fn alternative(self) -> &'static str {
        match self {
            EnvFileOrigin::Flag => "fix the path given with `--env-file`, or pass `--no-env-file`",
            EnvFileOrigin::Variable => "fix WITHINGS_ENV_FILE, or pass `--no-env-file`",
            EnvFileOrigin::ConfigFile => "fix `env_file` in the config file, or pass `--no-env-file`",
            EnvFileOrigin::WorkingDirectory => {
                "./.env is read because it is in the working directory: pass `--env-file PATH` to read another file, or `--no-env-file` to read none"
            }
        }
    }
}

/// An env file's values. A key set more than once takes its last value, as
/// bash `source` and python-dotenv do, so this tool and the app reading the
/// same file agree on the token (dotenvy itself would keep the first).
#[derive(Debug, Clone, Default)]
pub struct EnvFile {
    values: HashMap<String, String>,
    /// Lines dotenvy cannot read that set none of the caller's keys.
    skipped_lines: Vec<usize>,
    /// Each of the caller's keys set on more than one line, with those lines.
    repeated: Vec<RepeatedKey>,
}

/// One of the caller's keys assigned on more than one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedKey {
    pub key: String,
    /// 1-based line numbers, in order; the last one is the value used.
    pub lines: Vec<usize>,
}

/// Why an env file cannot be used. Names lines and keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("line {line} sets {key} but is not valid KEY=value syntax")]
    BadLine { line: usize, key: String },
    /// The whole-file parse refused lines accepted one by one; cannot happen
    /// unless dotenvy's line splitting changes.
    #[error("dotenvy refused lines it had accepted one by one (a bug in withings-token)")]
    Inconsistent,
}

impl EnvFile {
    /// Reads the file at `path`; a bad line setting one of `own_keys` is a
    /// configuration error, any other bad line is skipped.
    pub fn read(path: &Path, origin: EnvFileOrigin, own_keys: &[&str]) -> Result<EnvFile> {
        let text = read_text(path).map_err(|why| {
            Error::config(
                format!("cannot read {}: {why}", origin.describe(path)),
                origin.alternative(),
            )
        })?;
        EnvFile::parse(&text, own_keys).map_err(|why| {
            Error::config(
                format!("cannot use {}: {why}", origin.describe(path)),
                format!(
                    "fix that line (KEY=value; quote a value that holds spaces or `#`), {}",
                    origin.or_skip()
                ),
            )
        })
    }

    /// Parses `text` with dotenvy's semantics but for repeated keys (the
    /// last value wins), reading the entries dotenvy refuses as python-dotenv
    /// does, and skipping those neither reads unless they set one of
    /// `own_keys`.
    pub fn parse(text: &str, own_keys: &[&str]) -> std::result::Result<EnvFile, ParseError> {
        let body = text.strip_prefix(BOM).unwrap_or(text);
        let entries = entries(body);
        let mut readable = String::with_capacity(body.len());
        let mut skipped_lines = Vec::new();
        let mut assigned: Vec<RepeatedKey> = Vec::new();
        for entry in &entries {
            let own_key = || line_key(entry.first_line).filter(|key| own_keys.contains(key));
            match &entry.reading {
                Reading::Dotenvy => {
                    readable.push_str(entry.text);
                    if !entry.text.ends_with('\n') {
                        readable.push('\n');
                    }
                }
                Reading::PythonDotenv { value: Some(_), .. } => {}
                // A bare key sets nothing: one of ours meant to be set is a mistake.
                Reading::PythonDotenv { value: None, .. } | Reading::Neither => {
                    if let Some(key) = own_key() {
                        return Err(ParseError::BadLine {
                            line: entry.line,
                            key: key.to_owned(),
                        });
                    }
                    if entry.reading == Reading::Neither {
                        skipped_lines.push(entry.line);
                    }
                    continue;
                }
            }
            note_assignment(&mut assigned, entry, own_keys);
        }
        // One parse of every dotenvy entry, so that dotenvy's `$NAME`
        // substitution across lines holds (it sees each key's latest value).
        let mut values = HashMap::new();
        for item in dotenvy::from_read_iter(readable.as_bytes()) {
            let (key, value) = item.map_err(|_| ParseError::Inconsistent)?;
            values.insert(key, value);
        }
        values.extend(python_dotenv_values(&entries));
        assigned.retain(|a| a.lines.len() > 1);
        Ok(EnvFile {
            values,
            skipped_lines,
            repeated: assigned,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn holds_any(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| self.values.contains_key(*k))
    }

    /// Numbers (1-based) of the lines skipped as unreadable.
    pub fn skipped_lines(&self) -> &[usize] {
        &self.skipped_lines
    }

    /// The caller's keys that are set on more than one line, in the order
    /// of their first line.
    pub fn repeated_keys(&self) -> &[RepeatedKey] {
        &self.repeated
    }
}

/// Records the line of a readable entry that assigns one of `own_keys`.
fn note_assignment(assigned: &mut Vec<RepeatedKey>, entry: &Entry, own_keys: &[&str]) {
    let Some(key) = parse_assignment(entry.first_line)
        .map(|a| a.key)
        .filter(|key| own_keys.contains(key))
    else {
        return;
    };
    match assigned.iter_mut().find(|a| a.key == key) {
        Some(seen) => seen.lines.push(entry.line),
        None => assigned.push(RepeatedKey {
            key: key.to_owned(),
            lines: vec![entry.line],
        }),
    }
}

/// The values of the entries only python-dotenv reads that no later entry
/// assigns again (the last assignment wins, whichever reader took it).
fn python_dotenv_values(entries: &[Entry]) -> HashMap<String, String> {
    let mut assigned_later: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut values = HashMap::new();
    for entry in entries.iter().rev() {
        let key = match &entry.reading {
            Reading::PythonDotenv { key, value } => {
                if let (Some(value), false) = (value, assigned_later.contains(key.as_str())) {
                    values.insert(key.clone(), value.clone());
                }
                key.as_str()
            }
            Reading::Dotenvy => match parse_assignment(entry.first_line) {
                Some(assignment) => assignment.key,
                None => continue,
            },
            Reading::Neither => continue,
        };
        assigned_later.insert(key);
    }
    values
}

/// The file at `path` as text, read by [`fsutil::read_regular_file`]; the
/// error says why not, after "cannot read PATH: ".
fn read_text(path: &Path) -> std::result::Result<String, String> {
    let bytes = fsutil::read_regular_file(path, MAX_ENV_FILE_BYTES).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
}

/// A value that env format cannot carry: it holds a control character. Says
/// nothing of the value, which may be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the value holds a control character (such as a newline), which env format cannot carry")]
pub struct UnwritableValue;

/// An [`UnwritableValue`] with the key it was meant for (a key is no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} holds a control character (such as a newline), which env format cannot carry")]
pub struct UnwritableVariable {
    pub key: String,
}

/// Writes `value` so that every common reader gets exactly `value` back.
///
/// A value holding a control character (newline, CR, NUL, DEL, ...) is
/// refused: it would end the line early or corrupt the file. Otherwise:
/// - plain (`[A-Za-z0-9_./:@,+=-]`, not empty) as it is: every reader agrees,
///   including `docker --env-file` and `>> "$GITHUB_ENV"`, which take the text
///   after `=` literally and so read back exactly ONLY this form. Withings
///   tokens and RFC 3339 times are always plain.
/// - with no `'` and no `\`: in single quotes, literal for bash `source`,
///   dotenvy and python-dotenv. (A `\` is kept out because python-dotenv reads
///   `\\` in single quotes as one backslash and dotenvy's line splitter lets a
///   `\` escape the closing quote.)
/// - with no `$`, no backtick and no trailing `\`: in double quotes with `\`
///   and `"` escaped, which all three read the same. (bash needs `$` and
///   backticks escaped in double quotes, dotenvy refuses an escaped backtick
///   and python-dotenv keeps the `\` of `\$`: no double-quoted form suits all
///   three. A trailing `\\"` makes python-dotenv's greedy match run on into the
///   next lines and lose them.)
/// - otherwise: single-quoted runs joined by `\'` and `\\` (`'it'\''s $5'`),
///   exact for bash and dotenvy; python-dotenv skips that line or misreads
///   it, but never reads past it.
///
/// python-dotenv also expands `${NAME}` whatever the quoting, so a value
/// holding `${` never reads back exactly there.
pub fn format_value(value: &str) -> std::result::Result<String, UnwritableValue> {
    if value.chars().any(char::is_control) {
        return Err(UnwritableValue);
    }
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@,+=-".contains(c));
    Ok(if plain {
        value.to_owned()
    } else if !value.contains(['\'', '\\']) {
        format!("'{value}'")
    } else if !value.contains(['$', '`']) && !value.ends_with('\\') {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        quoted_runs(value)
    })
}

/// `'...'` runs with each `'` and `\` written as `\'` and `\\` between them:
/// nothing in single quotes is special to bash or dotenvy, and the two
/// escapes outside mean the same to both.
fn quoted_runs(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut open = false;
    for c in value.chars() {
        let escaped = c == '\'' || c == '\\';
        if open == escaped {
            out.push('\'');
            open = !escaped;
        }
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
    if open {
        out.push('\'');
    }
    out
}

/// `KEY=value` and a newline, the value written by [`format_value`].
pub fn format_line(key: &str, value: &str) -> std::result::Result<String, UnwritableVariable> {
    format_value(value)
        .map(|value| format!("{key}={value}\n"))
        .map_err(|_| UnwritableVariable { key: key.to_owned() })
}

/// Why the token keys of an env file cannot be rewritten. Names keys, never
/// values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error(transparent)]
    Unwritable(#[from] UnwritableVariable),
    /// Which lines form one entry depends on where quotes close, and a new
    /// value may hold fewer quotes than the old one: a quote that line `line`
    /// leaves open could then take the rewritten lines in.
    #[error(
        "rewriting it would change how line {line} and the lines after it read: close the quote that line leaves open"
    )]
    QuoteLeftOpen { line: usize },
    /// The rewritten file would not read `key` back with its new value.
    #[error("the rewritten file would not read {key} back as written")]
    WouldMisread { key: String },
}

/// Rewrites `updates` in `text`: every entry assigning one of those keys gets
/// the new value; keys not present are appended. Nothing else changes. When
/// a value cannot be written, or the result would not read back with exactly
/// these values and every other line as before, the error names the key or
/// the line, and the caller writes nothing.
pub fn rewrite_text(text: &str, updates: &[(&str, String)]) -> std::result::Result<String, RewriteError> {
    let values = updates
        .iter()
        .map(|(key, value)| format_line(key, value))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (bom, body) = match text.strip_prefix(BOM) {
        Some(body) => (BOM, body),
        None => ("", text),
    };
    let mut seen = vec![false; updates.len()];
    let mut out = String::with_capacity(text.len() + 256);
    out.push_str(bom);
    for entry in entries(body) {
        let target = parse_assignment(entry.first_line)
            .and_then(|a| updates.iter().position(|(k, _)| *k == a.key).map(|i| (a.prefix, i)));
        let Some((prefix, i)) = target else {
            out.push_str(entry.text);
            continue;
        };
        seen[i] = true;
        out.push_str(prefix);
        out.push_str(values[i].trim_end_matches('\n'));
        out.push_str(line_ending(entry.text));
    }
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    for (line, _) in values.iter().zip(&seen).filter(|(_, seen)| !**seen) {
        if out.len() > bom.len() && !out.ends_with('\n') {
            out.push_str(newline);
        }
        out.push_str(line.trim_end_matches('\n'));
        out.push_str(newline);
    }
    check_same_entries(text, &out, updates, seen.iter().filter(|s| !**s).count())?;
    check_reads_back(&out, updates)?;
    Ok(out)
}

/// Every entry of `text` keeps its place, its lines and whether dotenvy
/// reads it; an updated one becomes one readable line; each appended key is
/// one more entry. Compares structure, not values: `$NAME` substitution may
/// rightly change another key's value.
fn check_same_entries(
    text: &str,
    out: &str,
    updates: &[(&str, String)],
    appended: usize,
) -> std::result::Result<(), RewriteError> {
    let unbom = |t: &str| t.strip_prefix(BOM).unwrap_or(t).to_owned();
    let (text, out) = (unbom(text), unbom(out));
    let (before, after) = (entries(&text), entries(&out));
    let body = |e: &Entry| e.text.trim_end_matches(['\r', '\n']).to_owned();
    let updated = |e: &Entry| parse_assignment(e.first_line).is_some_and(|a| updates.iter().any(|(k, _)| *k == a.key));
    for (i, old) in before.iter().enumerate() {
        let kept = after.get(i).is_some_and(|new| {
            if updated(old) {
                new.reading == Reading::Dotenvy && !body(new).contains('\n')
            } else {
                new.reading == old.reading && body(new) == body(old)
            }
        });
        if !kept {
            return Err(RewriteError::QuoteLeftOpen { line: old.line });
        }
    }
    if after.len() != before.len() + appended || !after[before.len()..].iter().all(|e| e.reading == Reading::Dotenvy) {
        let line = before.last().map_or(1, |e| e.line);
        return Err(RewriteError::QuoteLeftOpen { line });
    }
    Ok(())
}

/// The rewritten file must read each updated key with its new value.
fn check_reads_back(out: &str, updates: &[(&str, String)]) -> std::result::Result<(), RewriteError> {
    let after = EnvFile::parse(out, &[]).ok();
    match updates
        .iter()
        .find(|(k, v)| after.as_ref().and_then(|a| a.get(k)) != Some(v.as_str()))
    {
        Some((key, _)) => Err(RewriteError::WouldMisread { key: (*key).to_owned() }),
        None => Ok(()),
    }
}

/// One logical entry of an env file: one line, or a quoted value that spans
/// several.
struct Entry<'a> {
    /// 1-based number of its first line.
    line: usize,
    first_line: &'a str,
    /// The whole entry with its line endings, as in the file.
    text: &'a str,
    reading: Reading,
}

/// Which reader takes an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reading {
    Dotenvy,
    /// A line dotenvy refuses and python-dotenv reads: its key, and its
    /// value (`None` for a bare `KEY`, which sets nothing).
    PythonDotenv {
        key: String,
        value: Option<String>,
    },
    Neither,
}

/// Cuts `body` into entries. A value that opens a quote without closing it
/// spans the lines up to the closing quote only when dotenvy reads that whole
/// span; otherwise the opening line stands alone (unreadable) and the lines
/// after it are entries of their own. So a quote that some other app's line
/// never closes cannot swallow the lines after it.
fn entries(body: &str) -> Vec<Entry<'_>> {
    let lines: Vec<&str> = body.split_inclusive('\n').collect();
    let mut starts = Vec::with_capacity(lines.len() + 1);
    let mut offset = 0;
    for line in &lines {
        starts.push(offset);
        offset += line.len();
    }
    starts.push(offset);
    let span = |from: usize, to: usize| &body[starts[from]..starts[to + 1]];
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let last = parse_assignment(lines[i])
            .and_then(|a| unclosed_quote(a.value))
            .and_then(|q| (i + 1..lines.len()).find(|&j| closes_quote(lines[j], q)))
            .filter(|&j| dotenvy_reads(span(i, j)));
        let end = last.unwrap_or(i);
        let text = span(i, end);
        let reading = if last.is_some() || dotenvy_reads(text) {
            Reading::Dotenvy
        } else {
            python_dotenv_binding(lines[i])
                .map_or(Reading::Neither, |(key, value)| Reading::PythonDotenv { key, value })
        };
        out.push(Entry {
            line: i + 1,
            first_line: lines[i],
            text,
            reading,
        });
        i = end + 1;
    }
    out
}

/// Whether dotenvy reads `entry`, as if a newline followed it: dotenvy
/// refuses a last line that ends in a blank when no newline follows, and an
/// entry must read the same wherever it stands (the rewriter may append
/// lines after it; `EnvFile::parse` adds that newline too).
fn dotenvy_reads(entry: &str) -> bool {
    let text = if entry.ends_with('\n') {
        std::borrow::Cow::Borrowed(entry)
    } else {
        std::borrow::Cow::Owned(format!("{entry}\n"))
    };
    dotenvy::from_read_iter(text.as_bytes()).all(|item| item.is_ok())
}

/// What python-dotenv (`dotenv.parser.parse_binding`) makes of one line:
/// its key and its value (`None` for a bare `KEY`), or `None` when it cannot
/// read the line either. Values spanning lines are left to dotenvy, and
/// `${NAME}` is not expanded.
fn python_dotenv_binding(line: &str) -> Option<(String, Option<String>)> {
    let rest = line.trim_end_matches(['\n', '\r']).trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let rest = rest
        .strip_prefix("export")
        .filter(|r| r.starts_with(char::is_whitespace))
        .map_or(rest, str::trim_start);
    let (key, rest) = match rest.strip_prefix('\'') {
        Some(quoted) => {
            let end = quoted.find('\'').filter(|&end| end > 0)?;
            (&quoted[..end], &quoted[end + 1..])
        }
        None => {
            let end = rest
                .find(|c: char| c == '=' || c == '#' || c.is_whitespace())
                .unwrap_or(rest.len());
            (rest.get(..end).filter(|k| !k.is_empty())?, &rest[end..])
        }
    };
    let rest = rest.trim_start();
    let (value, rest) = match rest.strip_prefix('=') {
        Some(text) => {
            let (value, rest) = python_dotenv_value(text.trim_start())?;
            (Some(value), rest)
        }
        None => (None, rest),
    };
    let rest = rest.trim_start();
    (rest.is_empty() || rest.starts_with('#')).then(|| (key.to_owned(), value))
}

/// A value as python-dotenv reads it, and what follows it on the line.
fn python_dotenv_value(text: &str) -> Option<(String, &str)> {
    match text.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let (inner, rest) = python_dotenv_quoted(&text[1..], q)?;
            let escapes: &[char] = if q == '\'' {
                &['\\', '\'']
            } else {
                &['\\', '\'', '"', 'a', 'b', 'f', 'n', 'r', 't', 'v']
            };
            Some((python_dotenv_unescape(inner, escapes), rest))
        }
        // Verbatim up to the first `#` after a blank, trailing blanks trimmed.
        _ => {
            let comment = text
                .char_indices()
                .find(|&(i, c)| c == '#' && text[..i].ends_with(char::is_whitespace))
                .map_or(text.len(), |(i, _)| i);
            Some((text[..comment].trim_end().to_owned(), ""))
        }
    }
}

/// The text inside quotes `q` (python-dotenv's `q((?:\\q|[^q])*)q`): up to
/// the first unescaped `q`; without one, the regex backtracks to the last
/// escaped `q`, whose backslash then ends the value.
fn python_dotenv_quoted(text: &str, q: char) -> Option<(&str, &str)> {
    let mut last_escaped = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|&(_, next)| next == q) {
            let (at, _) = chars.next()?;
            last_escaped = Some(at);
        } else if c == q {
            return Some((&text[..i], &text[i + 1..]));
        }
    }
    let end = last_escaped?;
    Some((&text[..end], &text[end + 1..]))
}

/// python-dotenv's `decode_escapes`: `\` and one of `escapes` is one char.
fn python_dotenv_unescape(text: &str, escapes: &[char]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let escaped = match chars.peek() {
            Some(&next) if c == '\\' && escapes.contains(&next) => next,
            _ => {
                out.push(c);
                continue;
            }
        };
        chars.next();
        out.push(match escaped {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            other => other,
        });
    }
    out
}

struct Assignment<'a> {
    /// Leading whitespace and `export `, kept as written.
    prefix: &'a str,
    key: &'a str,
    value: &'a str,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// The length of the indentation and `export ` before a line's key.
fn prefix_len(body: &str) -> usize {
    let rest = body.trim_start();
    let after_export = rest
        .strip_prefix("export")
        .filter(|r| r.starts_with([' ', '\t']))
        .map(str::trim_start);
    body.len() - after_export.unwrap_or(rest).len()
}

/// The key a line names, whether or not an `=` follows: a line that names one
/// of our keys concerns us even when it is malformed.
fn line_key(line: &str) -> Option<&str> {
    let rest = &line[prefix_len(line)..];
    let key = &rest[..rest.find(|c| !is_key_char(c)).unwrap_or(rest.len())];
    (!key.is_empty()).then_some(key)
}

fn parse_assignment(line: &str) -> Option<Assignment<'_>> {
    let body = line.trim_end_matches(['\n', '\r']);
    let prefix = prefix_len(body);
    let key = line_key(body)?;
    let value = body[prefix + key.len()..].trim_start().strip_prefix('=')?;
    Some(Assignment {
        prefix: &body[..prefix],
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

/// Rewrites the token keys of the env file at `path`, atomically. When a
/// value cannot be written in env format, the file is left untouched.
/// The caller holds the store lock, which serialises all our writers, but
/// not a person or another tool writing the file: when `still_ours` says
/// the file's current content is not what this tool knows it to hold, the
/// file is left as it is (it may hold a newly authorised set that exists
/// nowhere else).
pub fn rewrite_file(
    path: &Path,
    updates: &[(&str, String)],
    still_ours: Option<&dyn Fn(&EnvFile) -> bool>,
) -> Result<PathBuf> {
    // Write through a symlink to the real file rather than replacing the link.
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let _rewriting = lock_dir_of(&real);
    let text = read_text(&real).map_err(|why| write_error(path, &why))?;
    if let Some(still_ours) = still_ours {
        let keys: Vec<&str> = updates.iter().map(|(k, _)| *k).collect();
        if !EnvFile::parse(&text, &keys).is_ok_and(|now| still_ours(&now)) {
            return Err(Error::config(
                format!(
                    "env file {} changed while this run was working (new tokens written into it?)",
                    path.display()
                ),
                "the store holds the new tokens; the env file was left as it is",
            ));
        }
    }
    let new_text = rewrite_text(&text, updates).map_err(|e| {
        Error::config(
            format!("cannot rewrite env file {}: {e}", path.display()),
            "the store holds the new tokens; the env file was left as it was",
        )
    })?;
    fsutil::remove_stale_temps(&[&real]);
    fsutil::write_atomically(&real, new_text.as_bytes()).map_err(|e| write_error(path, &e))?;
    Ok(real)
}

/// Holds an exclusive lock on the directory of the env file at `real`
/// until dropped. Accounts with stores (and store locks) of their own may
/// share one env file: each rewrite reads the file, changes its own lines
/// and replaces it whole, so two at once would each put back the other's
/// old lines. The directory, not the file, is locked, because the file is
/// replaced (a lock on it would stay with the old inode). A directory that
/// cannot be opened or locked (a file system without locks) is rewritten
/// as before, unserialised.
fn lock_dir_of(real: &Path) -> Option<std::fs::File> {
    let dir = fsutil::parent_dir(real);
    let locked = std::fs::File::open(dir).and_then(|handle| handle.lock().map(|()| handle));
    match locked {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::debug!("the env file's directory {} is not locked ({e})", dir.display());
            None
        }
    }
}

fn write_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::config(
        format!("cannot rewrite env file {}: {e}", path.display()),
        "fix its permissions, or pass `--no-env-file-update`; the store holds the new tokens",
    )
}

#[cfg(test)]
mod tests;
