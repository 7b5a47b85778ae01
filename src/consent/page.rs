//! The pages a browser is shown at the end of a consent: `login`'s
//! loopback listener and `serve`'s re-consent (`/auth/start`,
//! `/auth/callback`). A few words, a status, and when something went wrong
//! its code and what to do; never a token or a code. Everything shown is
//! escaped, and every page forbids scripts, frames, forms and referrers.

use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Result;
use crate::rotation::Rotation;

/// No script, image, frame or form, and no base to rebase links on: the
/// page is words and its own inline style.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers of every consent answer, pages and redirects alike: never
/// cached (a redirect carries a fresh state), never a `Referer` (the
/// address may be a one-time link), no type sniffing, and the policy above.
pub(crate) const SAFE_HEADERS: [(HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
];

/// The browser's answer: a few words, never a token or a code.
#[derive(Debug)]
pub(crate) struct Page {
    status: StatusCode,
    title: String,
    text: String,
    /// What to do next, when something went wrong.
    action: Option<String>,
    /// The stable code of what went wrong, for a person reporting it.
    code: Option<String>,
}

impl Page {
    pub(crate) fn new(status: StatusCode, title: impl Into<String>, text: impl Into<String>) -> Page {
        Page {
            status,
            title: title.into(),
            text: text.into(),
            action: None,
            code: None,
        }
    }

    pub(crate) fn with_action(mut self, action: impl Into<String>) -> Page {
        self.action = Some(action.into());
        self
    }

    pub(crate) fn with_code(mut self, code: &str) -> Page {
        self.code = Some(code.to_owned());
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn title(&self) -> &str {
        &self.title
    }

    pub(crate) fn of(exchanged: &Result<Rotation>) -> Page {
        match exchanged {
            Ok(_) => Page::new(
                StatusCode::OK,
                "Logged in",
                "withings-token saved the new tokens. You can close this tab; the terminal shows the rest.",
            ),
            Err(e) => Page::new(
                match e.exit_code() {
                    3 | 4 => StatusCode::BAD_REQUEST,
                    5 => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                },
                "Login failed",
                format!("{e} [{}]. The terminal says what to do next.", e.code()),
            ),
        }
    }

    /// A callback without this login's state: not its redirect.
    pub(crate) fn not_this_login() -> Page {
        Page::new(
            StatusCode::BAD_REQUEST,
            "Not this login",
            "This request does not carry the state of the login withings-token is waiting for, so it was ignored and nothing was sent. The login goes on waiting for the redirect of its own consent.",
        )
    }

    /// A request whose `Host` names something else than this listener.
    pub(crate) fn foreign_host() -> Page {
        Page::new(
            StatusCode::MISDIRECTED_REQUEST,
            "Wrong address",
            "This withings-token login answers only requests to its own loopback address; this one named another host and was refused.",
        )
    }

    pub(crate) fn ended() -> Page {
        Page::new(
            StatusCode::GONE,
            "Login already ended",
            "This withings-token login has already ended; the terminal says how.",
        )
    }

    fn html(&self) -> String {
        let mut body = format!("<h1>{}</h1>\n<p>{}</p>\n", escape(&self.title), escape(&self.text));
        if let Some(action) = &self.action {
            body.push_str(&format!("<p><strong>What to do:</strong> {}</p>\n", escape(action)));
        }
        if let Some(code) = &self.code {
            body.push_str(&format!(
                "<p><small>Error code: <code>{}</code></small></p>\n",
                escape(code)
            ));
        }
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>withings-token: {title}</title>\
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:2em auto;padding:0 1em}}</style>\
</head>\n<body>\n{body}</body></html>\n",
            title = escape(&self.title),
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let content_type = [(header::CONTENT_TYPE, "text/html; charset=utf-8")];
        (self.status, content_type, SAFE_HEADERS, self.html()).into_response()
    }
}

/// `text` as HTML text or a quoted attribute value: the five characters
/// that could end either, or start markup, written as references.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_writes_the_five_markup_characters_as_references() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;", "an entity is shown, not read");
        assert_eq!(escape("plain words, é"), "plain words, é");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = Page::new(
            StatusCode::BAD_REQUEST,
            "Login <failed>",
            "<script>alert('x')</script> & \"more\"",
        )
        .with_action("<b>retry</b>")
        .with_code("<CODE>");
        let html = page.html();
        assert!(
            html.contains("<title>withings-token: Login &lt;failed&gt;</title>"),
            "{html}"
        );
        assert!(html.contains("<h1>Login &lt;failed&gt;</h1>"), "{html}");
        assert!(
            html.contains("<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;</p>"),
            "{html}"
        );
        assert!(
            html.contains("<strong>What to do:</strong> &lt;b&gt;retry&lt;/b&gt;</p>"),
            "{html}"
        );
        assert!(html.contains("<code>&lt;CODE&gt;</code>"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
    }

    #[test]
    fn every_page_is_html_that_is_never_cached_framed_or_referred() {
        let response = Page::new(StatusCode::GONE, "Gone", "words").into_response();
        assert_eq!(response.status(), StatusCode::GONE);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    }
}
