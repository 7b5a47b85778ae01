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
    /// `./.env`, read because it is in the working directory.
    WorkingDirectory,
}

impl EnvFileOrigin {
    fn describe(self, path: &Path) -> String {
        match self {
            EnvFileOrigin::Flag => format!("env file {} (given with `--env-file`)", path.display()),
            EnvFileOrigin::Variable => format!("env file {} (named by WITHINGS_ENV_FILE)", path.display()),
            EnvFileOrigin::WorkingDirectory => "./.env (found in the working directory)".to_owned(),
        }
    }

    /// After "fix that line": how to read another file, or none.
    fn or_skip(self) -> &'static str {
        match self {
            EnvFileOrigin::Flag => "or leave out `--env-file`",
            EnvFileOrigin::Variable => "or pass `--no-env-file`",
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

fn write_error(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::config(
        format!("cannot rewrite env file {}: {e}", path.display()),
        "fix its permissions, or pass `--no-env-file-update`; the store holds the new tokens",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The keys a strict read of the test files cares about.
    const OWN: &[&str] = &[
        "WITHINGS_ACCESS_TOKEN",
        "WITHINGS_REFRESH_TOKEN",
        "WITHINGS_TOKEN_EXPIRES_AT",
        "WITHINGS_TOKEN_LAST_REFRESHED",
        "WITHINGS_CLIENT_ID",
    ];

    fn rewrite(text: &str, updates: &[(&str, String)]) -> String {
        rewrite_text(text, updates).unwrap()
    }

    fn parse(text: &str) -> Result<EnvFile, ParseError> {
        EnvFile::parse(text, OWN)
    }

    fn updates() -> Vec<(&'static str, String)> {
        vec![
            ("WITHINGS_REFRESH_TOKEN", "new-r".into()),
            ("WITHINGS_ACCESS_TOKEN", "new-a".into()),
        ]
    }

    #[test]
    fn keeps_comments_order_export_and_crlf() {
        let text = "# creds\r\nWITHINGS_CLIENT_ID=abc\r\nexport WITHINGS_REFRESH_TOKEN=\"old\"\r\n\r\nWITHINGS_ACCESS_TOKEN = old # x\r\nOTHER='keep me'\r\n";
        let out = rewrite(text, &updates());
        assert_eq!(
            out,
            "# creds\r\nWITHINGS_CLIENT_ID=abc\r\nexport WITHINGS_REFRESH_TOKEN=new-r\r\n\r\nWITHINGS_ACCESS_TOKEN=new-a\r\nOTHER='keep me'\r\n"
        );
    }

    #[test]
    fn a_repeated_key_takes_its_last_value_as_bash_does_and_is_reported_by_line() {
        let text = "WITHINGS_REFRESH_TOKEN=first\nA=1\nA=2\nexport WITHINGS_REFRESH_TOKEN=second\n# WITHINGS_REFRESH_TOKEN=comment\nWITHINGS_REFRESH_TOKEN='last'\n";
        let file = parse(text).unwrap();
        assert_eq!(file.get("WITHINGS_REFRESH_TOKEN"), Some("last"));
        assert_eq!(file.get("A"), Some("2"), "other keys too");
        assert_eq!(
            file.repeated_keys(),
            [RepeatedKey {
                key: "WITHINGS_REFRESH_TOKEN".into(),
                lines: vec![1, 4, 6]
            }],
            "only the caller's keys are reported"
        );
        assert!(parse("WITHINGS_REFRESH_TOKEN=a\n").unwrap().repeated_keys().is_empty());
    }

    #[test]
    fn duplicate_keys_are_all_rewritten() {
        let out = rewrite("WITHINGS_REFRESH_TOKEN=a\nWITHINGS_REFRESH_TOKEN=b\n", &updates()[..1]);
        assert_eq!(out, "WITHINGS_REFRESH_TOKEN=new-r\nWITHINGS_REFRESH_TOKEN=new-r\n");
    }

    #[test]
    fn missing_keys_are_appended_after_a_newline() {
        let out = rewrite("A=1", &updates());
        assert_eq!(out, "A=1\nWITHINGS_REFRESH_TOKEN=new-r\nWITHINGS_ACCESS_TOKEN=new-a\n");
    }

    #[test]
    fn multi_line_values_of_other_keys_are_left_alone() {
        let text = "CERT=\"line1\nWITHINGS_REFRESH_TOKEN=inside\n\"\nWITHINGS_REFRESH_TOKEN=old\n";
        let out = rewrite(text, &updates()[..1]);
        assert_eq!(
            out,
            "CERT=\"line1\nWITHINGS_REFRESH_TOKEN=inside\n\"\nWITHINGS_REFRESH_TOKEN=new-r\n"
        );
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        let f = |v: &str| format_value(v).unwrap();
        assert_eq!(f("2025-01-15T12:00:00Z"), "2025-01-15T12:00:00Z");
        assert_eq!(f("a b"), "'a b'");
        assert_eq!(f("a\"$b"), "'a\"$b'");
        assert_eq!(f("it's"), "\"it's\"");
        assert_eq!(f("a\\b\""), "\"a\\\\b\\\"\"");
        assert_eq!(f("it's $5"), "'it'\\''s $5'");
        assert_eq!(f("a\\"), "'a'\\\\");
        assert_eq!(f("\\`x`"), "\\\\'`x`'");
        assert_eq!(f(""), "''");
    }

    #[test]
    fn control_characters_are_never_written() {
        for bad in ["a\nb", "a\rb", "a\0b", "a\u{7f}b", "\t", "x\u{85}"] {
            assert_eq!(format_value(bad), Err(UnwritableValue), "{bad:?}");
        }
        let err = rewrite_text(
            "A=1\n",
            &[
                ("WITHINGS_ACCESS_TOKEN", "ok".into()),
                ("WITHINGS_REFRESH_TOKEN", "x\ny".into()),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            RewriteError::Unwritable(UnwritableVariable {
                key: "WITHINGS_REFRESH_TOKEN".into()
            })
        );
        assert!(!err.to_string().contains('x'), "names no value: {err}");
    }

    #[test]
    fn an_unwritable_value_leaves_the_env_file_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "WITHINGS_REFRESH_TOKEN=old\n").unwrap();
        let err = rewrite_file(&path, &[("WITHINGS_REFRESH_TOKEN", "new\nEVIL=1".into())], None).unwrap_err();
        assert!(err.to_string().contains("WITHINGS_REFRESH_TOKEN"), "{err}");
        assert!(!err.to_string().contains("EVIL"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "WITHINGS_REFRESH_TOKEN=old\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".env"]);
    }

    #[test]
    fn lines_neither_dotenv_reader_takes_are_skipped_by_number_when_they_set_none_of_our_keys() {
        let text = "\u{feff}NOTE=\"never closed\nPAIR=\"x\" y\nWITHINGS_CLIENT_ID=abc\n'=1\nLAST=ok\n";
        let file = parse(text).unwrap();
        assert_eq!(file.get("WITHINGS_CLIENT_ID"), Some("abc"));
        assert_eq!(file.get("LAST"), Some("ok"));
        assert_eq!(file.get("NOTE"), None);
        assert_eq!(file.skipped_lines(), [1, 2, 4]);
    }

    /// Each line and what python-dotenv 1.2 (`dotenv.parser.parse_stream`)
    /// makes of it, where dotenvy refuses the line.
    #[test]
    fn lines_only_python_dotenv_reads_are_read_as_it_reads_them() {
        for (line, key, value) in [
            ("APP_NAME=My App", "APP_NAME", Some("My App")),
            ("export  A = v v  ", "A", Some("v v")),
            ("A=b c  # a comment", "A", Some("b c")),
            ("A=b c#not a comment", "A", Some("b c#not a comment")),
            ("APP=It's mine", "APP", Some("It's mine")),
            ("my-key=1", "my-key", Some("1")),
            ("'q k'=1", "q k", Some("1")),
            ("FLAG", "FLAG", None),
            ("FLAG # set elsewhere", "FLAG", None),
            ("TAB=\"a\\tb\"", "TAB", Some("a\tb")),
            ("ESC=\"a\\qb\"", "ESC", Some("a\\qb")),
            ("Q='x\\'y z'", "Q", Some("x'y z")),
            ("BACK='a\\'", "BACK", Some("a\\")),
        ] {
            assert_eq!(
                python_dotenv_binding(line),
                Some((key.to_owned(), value.map(str::to_owned))),
                "{line}"
            );
            assert!(
                !dotenvy_reads(line) || line.starts_with("export"),
                "dotenvy reads {line}"
            );
            let file = parse(&format!("{line}\n")).unwrap();
            assert_eq!(file.get(key), value, "{line}");
            assert!(file.skipped_lines().is_empty(), "{line}");
        }
        for unreadable in ["A=\"x\" y", "NOTE=\"never closed", "'=1", "=1", "  # comment"] {
            assert_eq!(python_dotenv_binding(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn the_last_assignment_wins_whichever_reader_takes_it() {
        let file = parse("A=x y\nA=z\nB=1\nB=two words\nC=$B\n").unwrap();
        assert_eq!(file.get("A"), Some("z"));
        assert_eq!(file.get("B"), Some("two words"));
        let file = parse("WITHINGS_CLIENT_ID=a b\nWITHINGS_CLIENT_ID=c\n").unwrap();
        assert_eq!(file.get("WITHINGS_CLIENT_ID"), Some("c"));
        assert_eq!(file.repeated_keys()[0].lines, [1, 2]);
    }

    #[test]
    fn lines_only_python_dotenv_reads_survive_a_rewrite_byte_for_byte() {
        let text = "APP_NAME=My App\r\nexport GREETING = hello there   # hi\r\nFLAG\r\nWITHINGS_REFRESH_TOKEN=old\r\n";
        let out = rewrite(text, &updates());
        assert_eq!(
            out,
            "APP_NAME=My App\r\nexport GREETING = hello there   # hi\r\nFLAG\r\nWITHINGS_REFRESH_TOKEN=new-r\r\nWITHINGS_ACCESS_TOKEN=new-a\r\n"
        );
        assert_eq!(parse(&out).unwrap().get("GREETING"), Some("hello there"));
    }

    #[test]
    fn a_bad_line_setting_our_key_names_its_real_line_and_no_value() {
        for (text, line) in [
            ("A=1\n\n# c\nWITHINGS_REFRESH_TOKEN=\"s3cret-unterminated\nB=2\n", 4),
            ("A=1\nexport WITHINGS_CLIENT_ID=\"s3cret\" two\n", 2),
            ("\u{feff}WITHINGS_ACCESS_TOKEN='s3cret\n", 1),
            ("A=1\nWITHINGS_CLIENT_ID\n", 2),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(&err, ParseError::BadLine { line: l, .. } if *l == line),
                "{text:?}: {err}"
            );
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn an_unterminated_quote_elsewhere_never_swallows_our_keys() {
        let text = "NOTE=\"never closed\nWITHINGS_REFRESH_TOKEN=old\nAPP=It's mine\nWITHINGS_ACCESS_TOKEN=a\n";
        let file = parse(text).unwrap();
        assert_eq!(file.get("WITHINGS_REFRESH_TOKEN"), Some("old"));
        assert_eq!(file.get("WITHINGS_ACCESS_TOKEN"), Some("a"));
        assert_eq!(file.get("APP"), Some("It's mine"), "as python-dotenv reads it");
        assert_eq!(file.skipped_lines(), [1]);
        // The rewriter agrees: it replaces line 2 in place and appends nothing.
        let out = rewrite(text, &updates());
        assert_eq!(
            out,
            "NOTE=\"never closed\nWITHINGS_REFRESH_TOKEN=new-r\nAPP=It's mine\nWITHINGS_ACCESS_TOKEN=new-a\n"
        );
    }

    #[test]
    fn a_last_line_reads_the_same_with_or_without_a_newline() {
        for text in ["A=1\nB = ", "A=1\nB = \n"] {
            let file = parse(text).unwrap();
            assert_eq!(file.get("B"), Some(""), "{text:?}");
            assert!(file.skipped_lines().is_empty(), "{text:?}");
        }
    }

    #[test]
    fn a_rewrite_that_would_be_read_back_differently_is_refused() {
        // Line 1's quote is closed by line 2's today (a span dotenvy refuses,
        // so line 2 is read on its own); the new value has no quote, and
        // line 3's would close line 1's, taking the token in.
        let text = "QUOTE='open\nWITHINGS_ACCESS_TOKEN='old a'\nQUOTE='open\n";
        assert_eq!(parse(text).unwrap().get("WITHINGS_ACCESS_TOKEN"), Some("old a"));
        let err = rewrite_text(text, &updates()).unwrap_err();
        assert_eq!(err, RewriteError::QuoteLeftOpen { line: 1 });
    }

    #[test]
    fn a_multi_line_value_of_our_key_is_replaced_whole() {
        let out = rewrite("WITHINGS_REFRESH_TOKEN=\"a\nb\"\nNEXT=1\n", &updates()[..1]);
        assert_eq!(out, "WITHINGS_REFRESH_TOKEN=new-r\nNEXT=1\n");
    }

    #[test]
    fn a_byte_order_mark_is_ignored_and_kept() {
        let text = "\u{feff}WITHINGS_REFRESH_TOKEN=old\r\nA=1\r\n";
        assert_eq!(parse(text).unwrap().get("WITHINGS_REFRESH_TOKEN"), Some("old"));
        let out = rewrite(text, &updates());
        assert_eq!(
            out,
            "\u{feff}WITHINGS_REFRESH_TOKEN=new-r\r\nA=1\r\nWITHINGS_ACCESS_TOKEN=new-a\r\n"
        );
        assert_eq!(
            rewrite("\u{feff}", &updates()[..1]),
            "\u{feff}WITHINGS_REFRESH_TOKEN=new-r\n"
        );
    }

    /// Any character but a control one, with the ones quoting cares about
    /// drawn far more often than chance would.
    fn printable_value() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            3 => proptest::sample::select(vec!['\'', '"', '\\', '$', '`', ' ', '#', '{', '}', '(', ')', '!', '~', '=', 'a']),
            1 => any::<char>().prop_map(|c| if c.is_control() { '_' } else { c }),
        ];
        proptest::collection::vec(c, 0..24).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn every_printable_value_reads_back_exactly(value in printable_value()) {
            let formatted = format_value(&value).unwrap();
            let text = format!("A=1\nKEY={formatted}\nB=2\n");
            let file = parse(&text).unwrap();
            prop_assert_eq!(file.get("KEY"), Some(value.as_str()), "{}", text);
            prop_assert_eq!(file.get("A"), Some("1"));
            prop_assert_eq!(file.get("B"), Some("2"));
            prop_assert!(file.skipped_lines().is_empty());
            // And through the rewriter, into an existing assignment.
            let out = rewrite_text("KEY=old\nB=2\n", &[("KEY", value.clone())]).unwrap();
            let rewritten = parse(&out).unwrap();
            prop_assert_eq!(rewritten.get("KEY"), Some(value.as_str()));
        }

        #[test]
        fn a_value_with_a_control_character_is_refused(
            before in printable_value(),
            c in proptest::sample::select(('\0'..' ').chain(['\u{7f}']).chain('\u{80}'..'\u{a0}').collect::<Vec<_>>()),
            after in printable_value(),
        ) {
            prop_assert_eq!(format_value(&format!("{before}{c}{after}")), Err(UnwritableValue));
        }
    }

    proptest! {
        /// Whatever the mix of repeated keys, each reads as its last line
        /// says (as bash `source` would), and the caller's repeated keys are
        /// reported with exactly the lines that set them.
        #[test]
        fn a_repeated_key_always_reads_as_its_last_assignment(
            lines in proptest::collection::vec((0..3usize, "[a-z0-9]{1,6}", any::<bool>()), 0..10),
        ) {
            const KEYS: [&str; 3] = ["WITHINGS_REFRESH_TOKEN", "WITHINGS_ACCESS_TOKEN", "OTHER"];
            let text: String = lines
                .iter()
                .map(|(k, v, export)| format!("{}{}={v}\n", if *export { "export " } else { "" }, KEYS[*k]))
                .collect();
            let file = parse(&text).unwrap();
            for (k, key) in KEYS.iter().enumerate() {
                let last = lines.iter().rev().find(|(i, _, _)| *i == k).map(|(_, v, _)| v.as_str());
                prop_assert_eq!(file.get(key), last, "{}", text);
                let set_on: Vec<usize> = lines.iter().enumerate().filter(|(_, (i, _, _))| *i == k).map(|(n, _)| n + 1).collect();
                let reported = file.repeated_keys().iter().find(|r| r.key == *key).map(|r| r.lines.clone());
                let expected = (OWN.contains(key) && set_on.len() > 1).then_some(set_on);
                prop_assert_eq!(reported, expected, "{}", text);
            }
        }
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
            let out = rewrite(&text, &updates());
            // Every line that is not a token assignment survives unchanged and in order.
            let keep = |t: &str| t.split_inclusive('\n')
                .filter(|l| !l.contains("WITHINGS_REFRESH_TOKEN") && !l.contains("WITHINGS_ACCESS_TOKEN"))
                .map(str::to_owned).collect::<Vec<_>>();
            prop_assert_eq!(keep(&text), keep(&out));
            // And the file reads back with the new values.
            let parsed = parse(&out).unwrap();
            prop_assert_eq!(parsed.get("WITHINGS_REFRESH_TOKEN"), Some("new-r"));
            prop_assert_eq!(parsed.get("WITHINGS_ACCESS_TOKEN"), Some("new-a"));
            // Rewriting twice changes nothing more.
            prop_assert_eq!(rewrite(&out, &updates()), out.clone());
        }
    }

    /// Lines other apps' dotenv readers accept and dotenvy does not, some of
    /// which open a quote they never close.
    fn foreign_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("APP_NAME=My App".to_owned()),
            Just("APP=It's mine".to_owned()),
            Just("NOTE=\"never closed".to_owned()),
            Just("QUOTE='open".to_owned()),
            Just("my-key=1".to_owned()),
            Just("FLAG".to_owned()),
            Just("TAB=\"a\\tb\"".to_owned()),
            Just("end\"".to_owned()),
            "[a-z' \"=#]{0,12}",
        ]
    }

    proptest! {
        /// However broken the other lines, the file is read, our keys are
        /// rewritten and read back, and no other line changes its fate. Only
        /// a quote some line opens and a later line closes (a multi-line value
        /// for dotenvy and python-dotenv alike) may hold our lines inside.
        #[test]
        fn foreign_lines_never_stop_a_read_or_hide_our_keys(
            lines in proptest::collection::vec(prop_oneof![
                3 => foreign_line(),
                1 => Just("WITHINGS_REFRESH_TOKEN=old".to_owned()),
                1 => Just("WITHINGS_ACCESS_TOKEN='old a'".to_owned()),
            ], 0..14),
        ) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let before = parse(&text).unwrap();
            let no_quotes = !lines.iter().any(|l| !l.starts_with("WITHINGS_") && l.contains(['\'', '"']));
            for key in ["WITHINGS_REFRESH_TOKEN", "WITHINGS_ACCESS_TOKEN"] {
                if no_quotes && lines.iter().any(|l| l.starts_with(key)) {
                    prop_assert!(before.get(key).is_some(), "{} in {:?}", key, text);
                }
            }
            let out = match rewrite_text(&text, &updates()) {
                Ok(out) => out,
                // Refused, so the file is left as it was: only when a quote
                // some foreign line opens could take a rewritten line in.
                Err(RewriteError::QuoteLeftOpen { .. }) => {
                    prop_assert!(!no_quotes, "{:?}", text);
                    return Ok(());
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            };
            let after = parse(&out).unwrap();
            prop_assert_eq!(after.get("WITHINGS_REFRESH_TOKEN"), Some("new-r"), "{:?}", out);
            prop_assert_eq!(after.get("WITHINGS_ACCESS_TOKEN"), Some("new-a"), "{:?}", out);
            prop_assert_eq!(after.skipped_lines(), before.skipped_lines(), "{:?}", out);
            prop_assert_eq!(rewrite(&out, &updates()), out.clone());
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
                        expected.push_str(&format!("{prefix}{name}={}{nl}", format_value(&updates[*key].1).unwrap()));
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
                expected.push_str(&format!("{key}={}{newline}", format_value(value).unwrap()));
            }
            let out = rewrite(&text, &updates);
            prop_assert_eq!(&out, &expected);
            prop_assert_eq!(rewrite(&out, &updates), out.clone());
            // Whatever a dotenv reader made of the file, it now reads the new
            // values and every other key exactly as before.
            if let Ok(before) = parse(&text) {
                let after = parse(&out);
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
