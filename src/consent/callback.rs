//! Where the browser comes back after a loopback consent, decided before
//! anything is bound or stored: the loopback WITHINGS_REDIRECT_URI as
//! written when there is one (its port and path are fixed by the callback
//! registered with Withings), else `http://127.0.0.1:PORT/callback`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::Url;

use crate::error::{Error, Result};
use crate::redact::visible;

/// The default callback is `http://127.0.0.1:8585/callback`.
pub const DEFAULT_PORT: u16 = 8585;
const DEFAULT_PATH: &str = "/callback";

/// Where the browser comes back, decided before anything is bound or stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The loopback address to listen on.
    pub listen: SocketAddr,
    /// The redirect URI sent to Withings: the setting as written, or the default.
    pub redirect_uri: String,
    /// Its path: the only one answered as the callback.
    pub path: String,
    /// It is WITHINGS_REDIRECT_URI (so `--port` cannot move it).
    pub from_setting: bool,
}

/// The loopback WITHINGS_REDIRECT_URI when there is one, else the default
/// callback on `port` (or 8585).
pub fn plan_callback(port: Option<u16>, configured: Option<&str>) -> Result<Callback> {
    if let Some(text) = configured
        && let Some((url, ip)) = loopback(text)
    {
        return from_setting(port, text, &url, ip);
    }
    let port = port.unwrap_or(DEFAULT_PORT);
    Ok(Callback {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        redirect_uri: format!("http://127.0.0.1:{port}{DEFAULT_PATH}"),
        path: DEFAULT_PATH.to_owned(),
        from_setting: false,
    })
}

/// The URL and the address to listen on, when `text` names a loopback host.
/// `localhost` is listened for on 127.0.0.1: browsers fall back to it.
fn loopback(text: &str) -> Option<(Url, IpAddr)> {
    let url = Url::parse(text).ok()?;
    let ip = match url.host()? {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        url::Host::Domain(_) => return None,
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
    };
    ip.is_loopback().then_some((url, ip))
}

/// The registered loopback callback: its port is fixed, so a `--port`
/// that differs could only end in Withings refusing the redirect.
fn from_setting(flag: Option<u16>, text: &str, url: &Url, ip: IpAddr) -> Result<Callback> {
    let shown = visible(text);
    let port = url.port_or_known_default().unwrap_or(0);
    if url.scheme() != "http" || port == 0 {
        return Err(Error::config(
            format!(
                "WITHINGS_REDIRECT_URI ({shown}) is a loopback URL that `login` cannot listen on: it needs http:// and a port"
            ),
            "register and set a callback such as http://127.0.0.1:8585/callback, or use `withings-token auth-url`, then `exchange`",
        ));
    }
    if let Some(flag) = flag
        && flag != port
    {
        return Err(Error::config(
            format!(
                "--port {flag} differs from the port of WITHINGS_REDIRECT_URI ({shown}); Withings redirects only to the registered callback"
            ),
            format!(
                "drop --port (login then listens on {port}), or change WITHINGS_REDIRECT_URI and the callback registered with Withings to port {flag}"
            ),
        ));
    }
    Ok(Callback {
        listen: SocketAddr::new(ip, port),
        redirect_uri: text.to_owned(),
        path: url.path().to_owned(),
        from_setting: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_loopback_setting_the_default_callback_is_used() {
        for configured in [None, Some("https://example.com/callback"), Some("not a url")] {
            let c = plan_callback(None, configured).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:8585");
            assert_eq!(c.redirect_uri, "http://127.0.0.1:8585/callback");
            assert_eq!(c.path, "/callback");
            assert!(!c.from_setting);
        }
        let c = plan_callback(Some(9000), Some("https://example.com/callback")).unwrap();
        assert_eq!(c.redirect_uri, "http://127.0.0.1:9000/callback");
        assert_eq!(c.listen.port(), 9000);
    }

    #[test]
    fn a_loopback_setting_is_the_callback_as_written() {
        let c = plan_callback(None, Some("http://localhost:7777/oauth/withings")).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7777");
        assert_eq!(c.redirect_uri, "http://localhost:7777/oauth/withings");
        assert_eq!(c.path, "/oauth/withings");
        assert!(c.from_setting);
        let c = plan_callback(Some(7777), Some("http://127.0.0.2:7777")).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.2:7777");
        assert_eq!(c.redirect_uri, "http://127.0.0.2:7777");
        assert_eq!(c.path, "/");
        let c = plan_callback(None, Some("http://[::1]:7000/cb")).unwrap();
        assert_eq!(c.listen.to_string(), "[::1]:7000");
    }

    #[test]
    fn a_port_flag_that_moves_a_registered_loopback_callback_is_refused() {
        let e = plan_callback(Some(9000), Some("http://127.0.0.1:8585/callback")).unwrap_err();
        assert_eq!(e.code(), "CONFIGURATION_ERROR");
        assert!(e.to_string().contains("--port 9000 differs"), "{e}");
        assert!(e.action().contains("WITHINGS_REDIRECT_URI"), "{}", e.action());
        for unusable in ["https://127.0.0.1:8585/callback", "http://127.0.0.1:0/callback"] {
            assert_eq!(
                plan_callback(None, Some(unusable)).unwrap_err().exit_code(),
                3,
                "{unusable}"
            );
        }
    }
}
