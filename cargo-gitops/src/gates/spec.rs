//! The `gates` table of an environment as written and as checked: which gates it has, with
//! their settings, strictly validated (an unknown gate, a duration that is not `30m`, a
//! previous environment that does not exist are configuration errors). Owns the grammar of
//! the table only; reading it from the file is `config`'s, running the gates the rest of
//! `gates`'. Kept free of everything above the vocabulary, since `config` reads it.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// One gate, by the name the table and `--skip-gate` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Gate {
    Previous,
    Soak,
    Signature,
    Provenance,
    Sbom,
    Status,
    Approval,
}

impl Gate {
    pub fn name(self) -> &'static str {
        match self {
            Gate::Previous => "previous",
            Gate::Soak => "soak",
            Gate::Signature => "signature",
            Gate::Provenance => "provenance",
            Gate::Sbom => "sbom",
            Gate::Status => "status",
            Gate::Approval => "approval",
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The table as written: `gates = { previous = "staging", soak = "30m", signature = true }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGates {
    pub previous: Option<String>,
    pub soak: Option<String>,
    pub signature: Option<RawSignature>,
    pub provenance: Option<bool>,
    pub sbom: Option<RawSbom>,
    pub status: Option<String>,
    pub approval: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "true, false, or a table such as { key = \"cosign.pub\" }"
)]
pub enum RawSignature {
    Enabled(bool),
    Table(RawSignatureTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignatureTable {
    /// A public key PEM file, relative to the configuration's folder.
    pub key: Option<PathBuf>,
    /// Keyless: a regular expression the certificate's identity must match, whole.
    pub identity: Option<String>,
    /// Keyless: the OIDC issuer that vouched for the identity.
    pub issuer: Option<String>,
    /// Keyless: the Sigstore trusted root (`trusted_root.json`), relative to the
    /// configuration's folder.
    #[serde(rename = "trusted-root")]
    pub trusted_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "true, false, or a table such as { deny = [\"openssl-sys\"] }"
)]
pub enum RawSbom {
    Enabled(bool),
    Table(RawSbomTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSbomTable {
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Which key a signature must verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureKey {
    /// The public half of the key the tool signs with (`sign = "key"`), read when checked.
    SigningKey,
    /// A public key PEM file (absolute, resolved against the configuration's folder).
    File(PathBuf),
    /// A Fulcio certificate chaining to the trusted root, naming this identity.
    Keyless(Keyless),
}

/// What a keyless signature is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyless {
    /// The identity's pattern, anchored; `None`: the repository's own GitHub workflows.
    pub identity: Option<String>,
    pub issuer: String,
    /// The trusted root file (absolute).
    pub trusted_root: PathBuf,
}

/// The OIDC issuer of GitHub Actions' job tokens: the default for keyless signatures.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// The gates of one environment, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// The environment whose current image this one must be.
    pub previous: Option<String>,
    /// How long the image must have carried the previous environment's tag, in seconds,
    /// with the text it was written as.
    pub soak: Option<(u64, String)>,
    pub signature: Option<SignatureKey>,
    pub provenance: bool,
    /// An SBOM must be attached; these crates must not be in it.
    pub sbom: Option<Vec<String>>,
    /// The commit status or check run that must be successful on the source commit.
    pub status: Option<String>,
    /// The environment's deploy must go through a pull request.
    pub approval: bool,
}

impl Gates {
    /// The gates configured, in the order they are checked.
    pub fn list(&self) -> Vec<Gate> {
        let mut gates = Vec::new();
        if self.previous.is_some() {
            gates.push(Gate::Previous);
        }
        if self.soak.is_some() {
            gates.push(Gate::Soak);
        }
        if self.signature.is_some() {
            gates.push(Gate::Signature);
        }
        if self.provenance {
            gates.push(Gate::Provenance);
        }
        if self.sbom.is_some() {
            gates.push(Gate::Sbom);
        }
        if self.status.is_some() {
            gates.push(Gate::Status);
        }
        if self.approval {
            gates.push(Gate::Approval);
        }
        gates
    }

    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    /// What deploy must ask before it writes: whether this environment's manifests may only
    /// change through a pull request that a person merges (the `approval` gate).
    pub fn requires_pull_request(&self) -> bool {
        self.approval
    }

    /// `previous = staging, soak = 30m, signature`: for plans and progress lines.
    pub fn summary(&self) -> String {
        self.list()
            .iter()
            .map(|gate| match gate {
                Gate::Previous => format!("previous = {}", self.previous.as_deref().unwrap_or("")),
                Gate::Soak => format!(
                    "soak = {}",
                    self.soak.as_ref().map_or("", |(_, text)| text.as_str())
                ),
                Gate::Status => format!("status = {}", self.status.as_deref().unwrap_or("")),
                other => other.name().to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A bad value in the table: the gate's key (`soak`, `signature.key`) and what is wrong.
pub type Invalid = (String, String);

/// Checks `raw`. `root`: the configuration's folder, for key files; `signs_with_key`:
/// whether `sign = "key"` is set, which `signature = true` then verifies with;
/// `environments`: every configured environment's name, for `previous`.
pub fn check(
    raw: &RawGates,
    root: &std::path::Path,
    signs_with_key: bool,
    environments: &[&str],
    own_name: &str,
) -> Result<Gates, Invalid> {
    let bad = |key: &str, message: String| (key.to_owned(), message);
    let previous = match &raw.previous {
        Some(name) if name == own_name => {
            return Err(bad(
                "previous",
                format!("`{name}` is this environment itself; name the one before it"),
            ));
        }
        Some(name) if !environments.contains(&name.as_str()) => {
            return Err(bad(
                "previous",
                format!(
                    "`{}` is not a configured environment; use one of: {}",
                    name.escape_debug(),
                    environments.join(", ")
                ),
            ));
        }
        other => other.clone(),
    };
    let soak = match &raw.soak {
        Some(text) => {
            let seconds = parse_duration(text).map_err(|m| bad("soak", m))?;
            if previous.is_none() {
                return Err(bad(
                    "soak",
                    "measures time in the previous environment; add `previous = \"staging\"` (or the one before this)".to_owned(),
                ));
            }
            Some((seconds, text.clone()))
        }
        None => None,
    };
    let signature = match &raw.signature {
        None | Some(RawSignature::Enabled(false)) => None,
        Some(RawSignature::Enabled(true)) if signs_with_key => Some(SignatureKey::SigningKey),
        Some(RawSignature::Enabled(true)) => {
            return Err(bad(
                "signature",
                "has no key to verify with; give `signature = { key = \"cosign.pub\" }` (a public key PEM), or set `sign = \"key\"` to verify with the signing key's public half".to_owned(),
            ));
        }
        Some(RawSignature::Table(table))
            if table.identity.is_some()
                || table.issuer.is_some()
                || table.trusted_root.is_some() =>
        {
            if table.key.is_some() {
                return Err(bad(
                    "signature",
                    "has both a key and keyless settings (identity, issuer, trusted-root); keep the one the images are signed with".to_owned(),
                ));
            }
            let Some(trusted_root) = &table.trusted_root else {
                return Err(bad(
                    "signature.trusted-root",
                    "is needed to check a keyless signature: the Sigstore trusted root (trusted_root.json) its certificate must chain to; commit Sigstore's (from its TUF repository) or your own Sigstore's, and name it here".to_owned(),
                ));
            };
            if let Some(pattern) = &table.identity {
                anchored(pattern).map_err(|m| bad("signature.identity", m))?;
            }
            if let Some(issuer) = &table.issuer
                && !issuer.starts_with("https://")
            {
                return Err(bad(
                    "signature.issuer",
                    format!(
                        "`{}` is not an OIDC issuer URL (https://…, e.g. {GITHUB_ACTIONS_ISSUER})",
                        issuer.escape_debug()
                    ),
                ));
            }
            Some(SignatureKey::Keyless(Keyless {
                identity: table.identity.clone(),
                issuer: table
                    .issuer
                    .clone()
                    .unwrap_or_else(|| GITHUB_ACTIONS_ISSUER.to_owned()),
                trusted_root: root.join(trusted_root),
            }))
        }
        Some(RawSignature::Table(table)) => match &table.key {
            Some(path) => Some(SignatureKey::File(root.join(path))),
            None => {
                return Err(bad(
                    "signature",
                    "names no key; give `key = \"cosign.pub\"` (a public key PEM)".to_owned(),
                ));
            }
        },
    };
    let sbom = match &raw.sbom {
        None | Some(RawSbom::Enabled(false)) => None,
        Some(RawSbom::Enabled(true)) => Some(Vec::new()),
        Some(RawSbom::Table(table)) => {
            if let Some(name) = table.deny.iter().find(|n| !is_crate_name(n)) {
                return Err(bad(
                    "sbom.deny",
                    format!(
                        "`{}` is not a crate name (letters, digits, `-` and `_`)",
                        name.escape_debug()
                    ),
                ));
            }
            Some(table.deny.clone())
        }
    };
    let status = match &raw.status {
        Some(name) if !is_status_name(name) => {
            return Err(bad(
                "status",
                format!(
                    "`{}` is not a status or check name (letters, digits, spaces and `-_./:()`, at most 100)",
                    name.escape_debug()
                ),
            ));
        }
        other => other.clone(),
    };
    Ok(Gates {
        previous,
        soak,
        signature,
        provenance: raw.provenance.unwrap_or(false),
        sbom,
        status,
        approval: raw.approval.unwrap_or(false),
    })
}

fn is_crate_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A commit status context or check run name as GitHub, Flux and Argo CD write them
/// (`flux/production`, `argocd/app (prod)`); nothing that could break a line or a query.
fn is_status_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_./:()".contains(&b))
}

/// `pattern` compiled to match a whole identity, or why it does not compile.
pub fn anchored(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
        format!(
            "`{}` is not a regular expression: {}",
            pattern.escape_debug(),
            e.to_string().lines().last().unwrap_or_default()
        )
    })
}

/// `30m`, `2h`, `45s`, `1d`, or several (`1h30m`), in seconds; at least one second.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let wrong = || {
        format!(
            "`{}` is not a duration; write a number and a unit, such as \"45s\", \"30m\", \"2h\" or \"1d\"",
            text.escape_debug()
        )
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(wrong()),
        };
        let number: u64 = digits.parse().map_err(|_| wrong())?;
        total = number
            .checked_mul(unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(wrong)?;
        digits.clear();
        any = true;
    }
    if !digits.is_empty() || !any || total == 0 {
        return Err(wrong());
    }
    Ok(total)
}

/// Seconds as the refusals say them: `29m 12s`, `1h 5m`, `45s`.
pub fn format_duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        for bad in [
            "",
            "30",
            "m",
            "30 m",
            "-1m",
            "0s",
            "1.5h",
            "30min",
            "99999999999999999999d",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
        assert_eq!(format_duration(1752), "29m 12s");
        assert_eq!(format_duration(3900), "1h 5m");
        assert_eq!(format_duration(0), "0s");
    }

    fn raw(text: &str) -> RawGates {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn tables_are_checked() {
        let root = std::path::Path::new("/repo");
        let envs = ["staging", "production"];
        let gates = check(
            &raw("previous = \"staging\"\nsoak = \"30m\"\nsignature = true\nprovenance = true"),
            root,
            true,
            &envs,
            "production",
        )
        .unwrap();
        assert_eq!(
            gates.list(),
            [
                Gate::Previous,
                Gate::Soak,
                Gate::Signature,
                Gate::Provenance
            ]
        );
        assert_eq!(gates.soak, Some((1800, "30m".to_owned())));
        assert_eq!(gates.signature, Some(SignatureKey::SigningKey));
        assert_eq!(
            gates.summary(),
            "previous = staging, soak = 30m, signature, provenance"
        );
        let keyed = check(
            &raw("signature = { key = \"keys/cosign.pub\" }\nsbom = { deny = [\"openssl-sys\"] }\napproval = true"),
            root,
            false,
            &envs,
            "production",
        )
        .unwrap();
        assert_eq!(
            keyed.signature,
            Some(SignatureKey::File("/repo/keys/cosign.pub".into()))
        );
        assert_eq!(keyed.sbom, Some(vec!["openssl-sys".to_owned()]));
        assert!(keyed.requires_pull_request());

        for (text, key, says) in [
            (
                "previous = \"qa\"",
                "previous",
                "not a configured environment",
            ),
            (
                "previous = \"production\"",
                "previous",
                "this environment itself",
            ),
            ("soak = \"30m\"", "soak", "add `previous"),
            (
                "previous = \"staging\"\nsoak = \"half an hour\"",
                "soak",
                "not a duration",
            ),
            ("signature = true", "signature", "no key to verify with"),
            (
                "signature = { identity = \"x\" }",
                "signature.trusted-root",
                "is needed to check a keyless signature",
            ),
            (
                "signature = { identity = \"(\", trusted-root = \"root.json\" }",
                "signature.identity",
                "not a regular expression",
            ),
            (
                "signature = { issuer = \"github\", trusted-root = \"root.json\" }",
                "signature.issuer",
                "not an OIDC issuer URL",
            ),
            (
                "signature = { key = \"k.pub\", trusted-root = \"root.json\" }",
                "signature",
                "has both a key and keyless settings",
            ),
            (
                "sbom = { deny = [\"a b\"] }",
                "sbom.deny",
                "not a crate name",
            ),
            ("status = \"ok\\nbad\"", "status", "not a status"),
        ] {
            let (got_key, message) =
                check(&raw(text), root, false, &envs, "production").unwrap_err();
            assert_eq!(got_key, key, "{text}");
            assert!(message.contains(says), "{text}: {message}");
        }
        assert!(toml::from_str::<RawGates>("colour = true").is_err());
    }
}
