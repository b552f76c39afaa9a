//! `cargo gitops pins update`: the newest pins, from the network, written into the
//! configuration file.
//!
//! - The install pin: the release's combined checksum file,
//!   `{base}/cargo-gitops-v{version}/cargo-gitops-v{version}.sha256sums` (`sha256sum` lines),
//!   gives the SHA-256 of each target's archive.
//! - Action pins: `git ls-remote --tags {actions-base}/OWNER/REPO` lists each action's tags;
//!   annotated tags are peeled to their commit (the `^{}` line), and the highest release tag
//!   of the pin's current major (`v4.x.y`; for `v0.x`, of its minor) is chosen, or of any
//!   major with `--major`.
//! - The file: the tool owns three places in the gitops table: the `actions` table, the
//!   `install.sha256` table (each rewritten whole) and the `install.version` key. Everything
//!   else is kept byte for byte; the result is parsed back and refused unless it carries the new
//!   values and nothing else changed (then `--print` gives the tables to paste by hand).

mod manifest;

use std::collections::BTreeMap;

use super::{grammar, install};
use crate::config::{Pin, WorkflowSettings};
use crate::error::Error;

/// Where actions are cloned from unless `--actions-base` says otherwise.
pub const DEFAULT_ACTIONS_BASE: &str = "https://github.com";

/// A release tag's version: `v4.3.0`, `4.3.0` or `v0.5`, never a pre-release or a bare major
/// (`v4` is a tag that moves).
pub fn tag_version(tag: &str) -> Option<(u64, u64, u64)> {
    let digits = tag.strip_prefix('v').unwrap_or(tag);
    let parts: Vec<&str> = digits.split('.').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut numbers = [0u64; 3];
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty()
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
        {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    Some((numbers[0], numbers[1], numbers[2]))
}

/// Tag name → commit, from `git ls-remote --tags` output: a peeled line (`TAG^{}`, the commit
/// of an annotated tag) wins over the tag object's own line.
pub fn parse_ls_remote(text: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    let mut peeled = BTreeMap::new();
    for line in text.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        let Some(tag) = name.trim().strip_prefix("refs/tags/") else {
            continue;
        };
        match tag.strip_suffix("^{}") {
            Some(tag) => peeled.insert(tag.to_owned(), sha.trim().to_owned()),
            None => tags.insert(tag.to_owned(), sha.trim().to_owned()),
        };
    }
    tags.extend(peeled);
    tags
}

/// The tag to pin: the highest release of the current pin's line (same major; same minor
/// under 1.0), or the highest of all with `any_major`. Ties (`v0.5` and `v0.5.0`) go to the
/// longer name.
pub fn choose(
    current: &str,
    tags: &BTreeMap<String, String>,
    any_major: bool,
) -> Option<(String, String)> {
    let now = tag_version(current);
    tags.iter()
        .filter_map(|(tag, sha)| tag_version(tag).map(|v| (v, tag, sha)))
        .filter(|(v, _, _)| {
            any_major
                || now.is_some_and(|now| v.0 == now.0 && (now.0 > 0 || v.1 == now.1) && *v >= now)
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.len().cmp(&b.1.len())))
        .map(|(_, tag, sha)| (tag.clone(), sha.clone()))
}

/// Target → SHA-256 from a release's `.sha256sums` (`HEX  NAME` or `HEX *NAME` lines), for
/// the archives of `version`.
pub fn parse_checksums(text: &str, version: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(sha), Some(name)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = name.trim_start_matches('*');
        for (_, _, target) in install::TARGETS {
            if name == install::archive_name(target, version) && grammar::sha256("", sha).is_ok() {
                found.insert(target.to_owned(), sha.to_owned());
            }
        }
    }
    found
}

/// GETs a small text file.
pub fn fetch_text(url: &str) -> Result<String, Error> {
    if !crate::urls::allowed(url) {
        // Whatever precedes an `@` may be a password: it is not shown.
        let shown = match url.split_once('@') {
            Some((_, after)) => format!("***@{}", grammar::shown(after)),
            None => grammar::shown(url),
        };
        return Err(Error::usage(format!(
            "`{shown}` is not an https URL without credentials (plain http is for 127.0.0.1 and localhost only)"
        )));
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .user_agent(concat!("cargo-gitops/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    let mut response = agent.get(url).call().map_err(|e| Error::Registry {
        registry: url.to_owned(),
        step: "download".to_owned(),
        message: e.to_string(),
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(Error::Registry {
            registry: url.to_owned(),
            step: "download".to_owned(),
            message: format!(
                "HTTP {status}; check the version (--release) and the release base (--release-base)"
            ),
        });
    }
    response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| Error::Registry {
            registry: url.to_owned(),
            step: "download".to_owned(),
            message: e.to_string(),
        })
}

/// The tags of a repository, through `git ls-remote --tags`.
pub fn remote_tags(url: &str) -> Result<BTreeMap<String, String>, Error> {
    let output = crate::process::Command::new("git")
        .args(["ls-remote", "--tags", "--", url])
        .env("GIT_TERMINAL_PROMPT", "0")
        .run()?;
    Ok(parse_ls_remote(&String::from_utf8_lossy(&output.stdout)))
}

/// What `pins update` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Every action pin to write, by action.
    pub actions: BTreeMap<String, Pin>,
    /// The install version and its checksums by target, when the install is `prebuilt`.
    pub install: Option<(String, BTreeMap<String, String>)>,
    /// What was kept or skipped, one line each.
    pub notes: Vec<String>,
}

/// The newest install pin of `version` from `release_base`.
pub fn install_update(
    release_base: &str,
    version: &str,
) -> Result<(BTreeMap<String, String>, Vec<String>), Error> {
    grammar::semver("--release", version)?;
    let url = format!(
        "{}/{}/{}",
        release_base.trim_end_matches('/'),
        install::release_tag(version),
        install::checksums_name(version)
    );
    let checksums = parse_checksums(&fetch_text(&url)?, version);
    if checksums.is_empty() {
        return Err(Error::Refused(format!(
            "{url} lists no archive of cargo-gitops {version}; is this the right release?"
        )));
    }
    let notes = install::TARGETS
        .iter()
        .filter(|(_, _, t)| !checksums.contains_key(*t))
        .map(|(_, _, t)| format!("{t}: not in {url}; runners of that platform cannot install"))
        .collect();
    Ok((checksums, notes))
}

/// The newest pin of each action in `used`, from `actions_base`.
pub fn action_updates(
    settings: &WorkflowSettings,
    used: &[String],
    actions_base: &str,
    any_major: bool,
) -> Result<(BTreeMap<String, Pin>, Vec<String>), Error> {
    let mut pins = BTreeMap::new();
    let mut notes = Vec::new();
    for action in used {
        let Some(current) = settings.pins.get(action) else {
            continue;
        };
        let repository: Vec<&str> = action.splitn(3, '/').take(2).collect();
        let url = format!(
            "{}/{}",
            actions_base.trim_end_matches('/'),
            repository.join("/")
        );
        let tags = remote_tags(&url)?;
        match choose(&current.version, &tags, any_major) {
            Some((version, sha)) => {
                grammar::commit_sha(&format!("{url} tag {version}"), &sha)?;
                if version != current.version || sha != current.sha {
                    notes.push(format!("{action}: {} -> {version}", current.version));
                }
                pins.insert(action.clone(), Pin { sha, version });
            }
            None => {
                notes.push(format!(
                    "{action}: kept {} (no release tag of its line at {url})",
                    current.version
                ));
                pins.insert(action.clone(), current.clone());
            }
        }
    }
    Ok((pins, notes))
}

pub use manifest::{render, rewrite, table_prefix};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_credentials_is_refused_without_showing_them() {
        let error = fetch_text("https://user:secret@github.com/x").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn annotated_tags_are_peeled_to_their_commit() {
        let text = "aaaa\trefs/tags/v1.0.0\nbbbb\trefs/tags/v1.0.0^{}\ncccc\trefs/tags/v1.1.0\n";
        let tags = parse_ls_remote(text);
        assert_eq!(tags["v1.0.0"], "bbbb");
        assert_eq!(tags["v1.1.0"], "cccc");
    }

    #[test]
    fn the_highest_release_of_the_current_line_is_chosen() {
        let tags: BTreeMap<String, String> = [
            "v4",
            "v4.1.0",
            "v4.3.0",
            "v4.10.1",
            "v5.0.0",
            "v4.11.0-rc1",
            "v04.99.0",
        ]
        .iter()
        .map(|t| (t.to_string(), format!("sha-{t}")))
        .collect();
        assert_eq!(
            choose("v4.1.0", &tags, false),
            Some(("v4.10.1".into(), "sha-v4.10.1".into()))
        );
        assert_eq!(
            choose("v4.1.0", &tags, true),
            Some(("v5.0.0".into(), "sha-v5.0.0".into()))
        );
        assert_eq!(choose("stable", &tags, false), None);
        let zero: BTreeMap<String, String> = ["v0.4", "v0.5", "v0.5.1", "v0.6"]
            .iter()
            .map(|t| (t.to_string(), t.to_string()))
            .collect();
        assert_eq!(choose("v0.5", &zero, false).unwrap().0, "v0.5.1");
    }

    #[test]
    fn checksum_lines_give_each_targets_archive() {
        let sha = "a".repeat(64);
        let text = format!(
            "{sha}  cargo-gitops-x86_64-unknown-linux-musl-v1.0.0.tar.gz\n{sha} *cargo-gitops-aarch64-apple-darwin-v1.0.0.tar.gz\n{sha}  cargo-gitops-x86_64-apple-darwin-v0.9.0.tar.gz\nnonsense\n"
        );
        let found = parse_checksums(&text, "1.0.0");
        assert_eq!(
            found.keys().collect::<Vec<_>>(),
            ["aarch64-apple-darwin", "x86_64-unknown-linux-musl"]
        );
    }
}
