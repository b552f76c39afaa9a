//! The one rule for where the tool sends a request that may carry a token or fetch what it
//! trusts (a release checksum, a forge API, commit statuses): https, or plain http to this
//! machine only, never with credentials written into the URL. Registry URLs are `registry`'s.

/// Whether `url` may be asked. The host is the parsed URL's, not a prefix: in
/// `http://127.0.0.1:80@mirror.example/` it is `mirror.example`, and that URL is refused.
pub fn allowed(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    let Some(authority) = uri.authority() else {
        return false;
    };
    if authority.as_str().contains('@') {
        return false;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_a_parsed_loopback_host_is_asked() {
        for url in [
            "https://github.com/acme/releases",
            "https://api.github.com",
            "http://127.0.0.1:8080/releases",
            "http://127.0.0.1:8080",
            "http://localhost/releases",
            "http://[::1]:8080/releases",
        ] {
            assert!(allowed(url), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080@mirror.example:8080/releases",
            "http://localhost@mirror.example/releases",
            "http://127.0.0.1.mirror.example/releases",
            "http://mirror.example/releases",
            "http://example.com",
            "https://user:secret@github.com/releases",
            "ftp://127.0.0.1/releases",
            "127.0.0.1/releases",
        ] {
            assert!(!allowed(url), "{url}");
        }
    }
}
