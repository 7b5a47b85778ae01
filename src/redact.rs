//! What may be shown of text that came from outside or holds a secret:
//! values we sent (and secrets this process holds) scrubbed from servers'
//! texts, URLs without their credentials, and the characters a terminal or
//! a log reader would act on written as escapes. Errors, log lines and
//! output take servers' and settings' text through here.

use url::Url;

/// Secrets this process holds that a server could echo without being sent
/// them (Railway keeps `WITHINGS_CLIENT_SECRET` among a service's
/// variables): [`scrub`] removes them too. Kept by slot (a store's refresh
/// token, a setting), two generations each: a server can still echo the
/// set before the last rotation, never an older one, and a service that
/// rotates for months keeps as many secrets as it has slots.
static KNOWN_SECRETS: std::sync::Mutex<SecretMemory> = std::sync::Mutex::new(SecretMemory::new());

/// Adds `secret` to what [`scrub`] removes from every server's text, as
/// the newest of `slot` (see [`SecretMemory::remember`]).
pub fn remember_secret(slot: &str, secret: &str) {
    crate::locked(&KNOWN_SECRETS).remember(slot, secret);
}

/// The last two distinct secrets of each slot, newest first.
struct SecretMemory {
    by_slot: std::collections::BTreeMap<String, [Option<String>; 2]>,
}

impl SecretMemory {
    const fn new() -> SecretMemory {
        SecretMemory {
            by_slot: std::collections::BTreeMap::new(),
        }
    }

    /// Makes `secret` the newest of `slot`; the one it displaces is kept
    /// as the previous, the older one forgotten. Remembering the previous
    /// then the newest again (each read of a store) changes nothing.
    fn remember(&mut self, slot: &str, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let kept = match self.by_slot.get_mut(slot) {
            Some(kept) => kept,
            None => self.by_slot.entry(slot.to_owned()).or_default(),
        };
        let [newest, previous] = kept;
        if newest.as_deref() == Some(secret) {
            return;
        }
        if previous.as_deref() == Some(secret) {
            std::mem::swap(newest, previous);
            return;
        }
        *previous = newest.replace(secret.to_owned());
    }

    fn secrets(&self) -> impl Iterator<Item = &str> {
        self.by_slot.values().flatten().flatten().map(String::as_str)
    }
}

/// Whether `value` holds, as it is, one of `sent` (whatever its length)
/// or a secret this process knows (the current or previous generation of
/// a store's tokens, a credential): an answer header passed on from a
/// server must not (the proxy's).
pub fn holds_secret(value: &[u8], sent: &[&str]) -> bool {
    let holds = |secret: &str| value.windows(secret.len()).any(|window| window == secret.as_bytes());
    if sent.iter().any(|secret| !secret.is_empty() && holds(secret)) {
        return true;
    }
    let known = crate::locked(&KNOWN_SECRETS);
    let mut secrets = known.secrets().filter(|secret| secret.len() >= 6);
    secrets.any(holds)
}

/// Replaces every value in `sent` (of 6 characters or more: shorter ones
/// would blank out ordinary words) wherever it occurs in `text`, also in
/// its form- and JSON-encoded spellings. Servers quote their input in error
/// texts; no value we sent may reach an error, a log line or the output
/// through them. Scrub before [`clip`]: a cut could halve a value and hide
/// it from the match. The result is [`visible`]: the match runs on the
/// server's own bytes, then its control characters are escaped.
pub fn scrub(text: &str, sent: &[&str]) -> String {
    let known = crate::locked(&KNOWN_SECRETS);
    let known = known.secrets();
    let mut spellings: Vec<String> = Vec::new();
    for value in sent.iter().copied().chain(known).filter(|v| v.chars().count() >= 6) {
        let form: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let json = serde_json::to_string(value).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        spellings.extend([(*value).to_owned(), form, json]);
    }
    // Longest first, so that a value containing another goes whole.
    spellings.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    spellings.dedup();
    let scrubbed = spellings
        .iter()
        .filter(|v| !v.is_empty())
        .fold(text.to_owned(), |text, value| {
            text.replace(value.as_str(), "[redacted]")
        });
    visible(&scrubbed)
}

/// Cuts a server's message to a readable length on a character boundary,
/// [`visible`] (trimmed first, so that a trailing newline goes, not shown).
pub fn clip(text: &str) -> String {
    const MAX: usize = 200;
    let text = visible(text.trim());
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A URL as logs and messages show it: scheme, host, port and path. The
/// userinfo (`user:password@`), the query (`?token=`) and the fragment are
/// left out: settings such as `WITHINGS_API_URL` may carry a credential
/// there, and none may reach a log line or an error.
pub fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both fail only for a URL without a host, which has no userinfo.
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.set_query(None);
    shown.set_fragment(None);
    visible(shown.as_str())
}

/// `text` with every character a terminal or a log reader would act on
/// written as a Rust escape (`\u{1b}`): the C0 controls (CR and LF too:
/// one message stays one line), DEL, the C1 controls, the line and
/// paragraph separators, and the bidi embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069). Everything else is shown as it is.
pub fn visible(text: &str) -> String {
    let acted_on = |c: char| c.is_control() || matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(acted_on) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acted_on(c) {
            shown.extend(c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_keep_two_generations_per_slot_and_no_more() {
        let mut memory = SecretMemory::new();
        memory.remember("client secret", "client-secret-value");
        memory.remember("store access", "access-token-00000");
        let rotated = |n: u32| format!("refresh-token-{n:05}");
        for n in 1..=10_000 {
            // As each read of a store does: its previous token, then its current one.
            memory.remember("store refresh", &rotated(n - 1));
            memory.remember("store refresh", &rotated(n));
            memory.remember("store access", &format!("access-token-{n:05}"));
            assert_eq!(memory.secrets().count(), 5, "after rotation {n}");
        }
        let mut kept: Vec<&str> = memory.secrets().collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [
                "access-token-09999",
                "access-token-10000",
                "client-secret-value",
                "refresh-token-09999",
                "refresh-token-10000",
            ]
        );
    }

    #[test]
    fn the_previous_generation_is_still_scrubbed_an_older_one_is_not() {
        let slot = "redact test store refresh";
        for token in ["generation-one-token", "generation-two-token", "generation-three-token"] {
            remember_secret(slot, token);
        }
        assert_eq!(
            scrub("generation-three-token generation-two-token generation-one-token", &[]),
            "[redacted] [redacted] generation-one-token"
        );
    }

    #[test]
    fn scrub_removes_every_sent_value_and_its_encodings() {
        let sent = ["refresh+token/value", "client-secret-value", "short"];
        let text = "bad refresh+token/value (refresh%2Btoken%2Fvalue), secret client-secret-value, short";
        assert_eq!(
            scrub(text, &sent),
            "bad [redacted] ([redacted]), secret [redacted], short"
        );
        let quoted = scrub(r#"{"v":"a\"quoted\"value"}"#, &["a\"quoted\"value"]);
        assert_eq!(quoted, r#"{"v":"[redacted]"}"#);
    }

    #[test]
    fn scrub_takes_a_value_whole_when_another_is_inside_it() {
        let text = scrub("token abcdef-123456 seen", &["abcdef", "abcdef-123456"]);
        assert_eq!(text, "token [redacted] seen");
    }

    #[test]
    fn upstream_text_is_shown_with_its_controls_escaped() {
        let hostile = "a\u{1b}]0;TITLE\u{7}b\r\nerror: fake\u{7f}\u{9b}\u{202e}\u{2066}\u{2069}\u{2028}\tz";
        let shown = r"a\u{1b}]0;TITLE\u{7}b\u{d}\u{a}error: fake\u{7f}\u{9b}\u{202e}\u{2066}\u{2069}\u{2028}\u{9}z";
        assert_eq!(visible(hostile), shown);
        assert_eq!(clip(hostile), shown);
        assert_eq!(scrub(hostile, &[]), shown);
        assert_eq!(visible("ordinary é 日本 ‐ text"), "ordinary é 日本 ‐ text");
        // Still one whole match for a secret around a control character.
        assert_eq!(scrub("x secret\u{1b}value y", &["secret\u{1b}value"]), "x [redacted] y");
        // Trimmed before it is escaped: a trailing newline goes.
        assert_eq!(clip("  message\r\n"), "message");
    }

    #[test]
    fn a_shown_url_keeps_scheme_host_port_and_path_only() {
        let shown = |text: &str| Url::parse(text).map(|url| shown_url(&url)).unwrap_or_default();
        assert_eq!(
            shown("https://user:p%40ss@api.example.com:8443/v2/oauth2?token=SECRET&x=1#frag"),
            "https://api.example.com:8443/v2/oauth2"
        );
        assert_eq!(shown("http://user@[::1]:9/graphql/v2?"), "http://[::1]:9/graphql/v2");
        assert_eq!(shown("https://:only-password@example.com/"), "https://example.com/");
        assert_eq!(shown("https://example.com"), "https://example.com/");
    }

    #[test]
    fn clip_respects_char_boundaries() {
        let long = "é".repeat(300);
        assert_eq!(clip(&long).chars().count(), 201);
        assert_eq!(clip(" short "), "short");
    }
}
