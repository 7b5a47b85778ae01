//! The page the browser is shown when it comes back from a consent: a few
//! words and a status, never a token or a code.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Result;
use crate::rotation::Rotation;

/// The browser's answer: a few words, never a token or a code.
pub(crate) struct Page {
    status: StatusCode,
    title: &'static str,
    text: String,
}

impl Page {
    pub(crate) fn of(exchanged: &Result<Rotation>) -> Page {
        match exchanged {
            Ok(_) => Page {
                status: StatusCode::OK,
                title: "Logged in",
                text: "withings-token saved the new tokens. You can close this tab; the terminal shows the rest."
                    .into(),
            },
            Err(e) => Page {
                status: match e.exit_code() {
                    3 | 4 => StatusCode::BAD_REQUEST,
                    5 => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                },
                title: "Login failed",
                text: format!("{e} [{}]. The terminal says what to do next.", e.code()),
            },
        }
    }

    /// A callback without this login's state: not its redirect.
    pub(crate) fn not_this_login() -> Page {
        Page {
            status: StatusCode::BAD_REQUEST,
            title: "Not this login",
            text: "This request does not carry the state of the login withings-token is waiting for, so it was ignored and nothing was sent. The login goes on waiting for the redirect of its own consent.".into(),
        }
    }

    /// A request whose `Host` names something else than this listener.
    pub(crate) fn foreign_host() -> Page {
        Page {
            status: StatusCode::MISDIRECTED_REQUEST,
            title: "Wrong address",
            text: "This withings-token login answers only requests to its own loopback address; this one named another host and was refused.".into(),
        }
    }

    pub(crate) fn ended() -> Page {
        Page {
            status: StatusCode::GONE,
            title: "Login already ended",
            text: "This withings-token login has already ended; the terminal says how.".into(),
        }
    }

    fn html(&self) -> String {
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>withings-token: {title}</title></head>\n\
<body><h1>{title}</h1><p>{text}</p></body></html>\n",
            title = escape_html(self.title),
            text = escape_html(&self.text)
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let headers = [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ];
        (self.status, headers, self.html()).into_response()
    }
}

fn escape_html(text: &str) -> String {
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
    fn pages_escape_what_they_show() {
        let page = Page {
            status: StatusCode::BAD_REQUEST,
            title: "Login failed",
            text: "<script>alert('x')</script> & \"more\"".into(),
        };
        let html = page.html();
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"));
        assert!(!html.contains("<script>"));
    }
}
