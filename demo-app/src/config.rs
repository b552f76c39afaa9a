//! Reading the listen address from the environment (`HOST`, `PORT`), the only settings.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Port used when `PORT` is unset; the image's `EXPOSE` says the same.
pub const DEFAULT_PORT: u16 = 8080;

/// Address used when `HOST` is unset: every interface, since inside a container the
/// loopback interface is unreachable from outside.
pub const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Where to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub host: IpAddr,
    /// 0 lets the kernel pick a free port; the start-up line then shows which.
    pub port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST,
            port: DEFAULT_PORT,
        }
    }
}

impl Config {
    /// Reads `HOST` and `PORT` from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Like [`Config::from_env`], with variables looked up through `lookup`, so parsing can
    /// be tested without touching the process-wide environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        // A set-but-empty variable is rejected rather than defaulted: it usually means a
        // template rendered nothing, and silently falling back would hide that.
        if let Some(value) = lookup("HOST") {
            config.host = parse(&value).ok_or(ConfigError::Host(value))?;
        }
        if let Some(value) = lookup("PORT") {
            config.port = parse(&value).ok_or(ConfigError::Port(value))?;
        }
        Ok(config)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

fn parse<T: std::str::FromStr>(value: &OsStr) -> Option<T> {
    value.to_str()?.parse().ok()
}

/// A `HOST` or `PORT` value that cannot be used, kept raw so the message can quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Host(OsString),
    Port(OsString),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` quotes and escapes the value, so a stray newline or non-UTF-8 byte cannot
        // break the one-line message.
        match self {
            Self::Host(value) => write!(
                f,
                "HOST={value:?} is not an IP address (set HOST to an address such as 0.0.0.0, 127.0.0.1 or ::)"
            ),
            Self::Port(value) => write!(
                f,
                "PORT={value:?} is not a port number (set PORT to a number from 1 to 65535)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn lookup(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        })
    }

    #[test]
    fn defaults_to_all_interfaces_on_8080() {
        let config = lookup(&[]).unwrap();
        assert_eq!(config.addr(), "0.0.0.0:8080".parse().unwrap());
    }

    #[test]
    fn host_and_port_override_the_defaults() {
        let config = lookup(&[("HOST", "127.0.0.1"), ("PORT", "3000")]).unwrap();
        assert_eq!(config.addr(), "127.0.0.1:3000".parse().unwrap());

        let config = lookup(&[("HOST", "::")]).unwrap();
        assert_eq!(config.host, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(config.addr().to_string(), "[::]:8080");
    }

    #[test]
    fn rejects_ports_that_are_not_u16() {
        for bad in ["abc", "70000", "-1", "", " 80", "80.0"] {
            let err = lookup(&[("PORT", bad)]).unwrap_err();
            assert_eq!(err, ConfigError::Port(bad.into()));
            let message = err.to_string();
            assert!(message.contains(&format!("PORT={bad:?}")), "{message}");
            assert!(message.contains("set PORT to"), "{message}");
        }
    }

    #[test]
    fn rejects_hosts_that_are_not_ip_addresses() {
        for bad in ["localhost", "0.0.0.0:80", "", "256.0.0.1"] {
            let err = lookup(&[("HOST", bad)]).unwrap_err();
            assert_eq!(err, ConfigError::Host(bad.into()));
            assert!(err.to_string().contains("set HOST to"));
        }
    }

    #[test]
    fn messages_stay_on_one_line() {
        let err = lookup(&[("PORT", "80\n80")]).unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_values_are_errors_not_defaults() {
        use std::os::unix::ffi::OsStringExt;
        let raw = OsString::from_vec(vec![b'8', 0xff]);
        let err = Config::from_lookup(|name| (name == "PORT").then(|| raw.clone())).unwrap_err();
        assert_eq!(err, ConfigError::Port(raw));
    }
}
