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

use std::collections::BTreeMap;
use std::path::Path;

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

/// Whether a URL may be fetched: https, or plain http to this machine only (tests, a local mirror).
fn allowed_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// GETs a small text file.
pub fn fetch_text(url: &str) -> Result<String, Error> {
    if !allowed_url(url) {
        return Err(Error::usage(format!(
            "`{}` is not an https URL (plain http is for 127.0.0.1 and localhost only)",
            grammar::shown(url)
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

/// The table prefix of the gitops settings in a configuration file: a workspace's, a lone
/// package's, or none in `gitops.toml`.
pub fn table_prefix(path: &Path, text: &str) -> Result<&'static str, Error> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::Config {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: e.message().to_owned(),
    })?;
    Ok(if table.contains_key("workspace") {
        "workspace.metadata.gitops"
    } else if table.contains_key("package") {
        "package.metadata.gitops"
    } else {
        ""
    })
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

/// The tables `update` writes, as TOML to paste (`--print`) or to put in place.
pub fn render(prefix: &str, update: &Update) -> String {
    let mut out = String::new();
    if !update.actions.is_empty() {
        out.push_str(&format!("[{}]\n", join(prefix, "actions")));
        out.push_str(&actions_body(update));
    }
    if let Some((version, checksums)) = &update.install {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "[{}]\nversion = {}\n\n[{}]\n",
            join(prefix, "install"),
            quoted(version),
            join(prefix, "install.sha256")
        ));
        out.push_str(&sha256_body(checksums));
    }
    out
}

fn actions_body(update: &Update) -> String {
    update
        .actions
        .iter()
        .map(|(action, pin)| {
            format!(
                "{} = {{ sha = {}, version = {} }}\n",
                quoted(action),
                quoted(&pin.sha),
                quoted(&pin.version)
            )
        })
        .collect()
}

fn sha256_body(checksums: &BTreeMap<String, String>) -> String {
    checksums
        .iter()
        .map(|(target, sha)| format!("{target} = {}\n", quoted(sha)))
        .collect()
}

/// The dotted key of a table header line (`[a."b.c" . d]` → `a.b.c.d`), or `None` for any
/// other line, including `[[array]]` headers.
fn header_key(line: &str) -> Option<String> {
    let line = line.trim();
    if !line.starts_with('[') || line.starts_with("[[") {
        return None;
    }
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in line[1..].chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.') => parts.push(std::mem::take(&mut current)),
            (None, ']') => {
                parts.push(current);
                return Some(parts.iter().map(|p| p.trim()).collect::<Vec<_>>().join("."));
            }
            (None, c) if c.is_whitespace() => {}
            (None, c) => current.push(c),
        }
    }
    None
}

/// Any header line: a table's or an array of tables'.
fn is_header(line: &str) -> bool {
    header_key(line).is_some() || line.trim_start().starts_with("[[")
}

/// The line range of table `key`'s body: from after its header to the next header.
fn section(lines: &[&str], key: &str) -> Option<(usize, usize)> {
    let start = lines
        .iter()
        .position(|l| header_key(l).as_deref() == Some(key))?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| is_header(l))
        .map_or(lines.len(), |i| start + 1 + i);
    Some((start + 1, end))
}

/// Puts `body` as the whole body of table `key`, appending the table when it is not there.
fn replace_table(text: &str, key: &str, body: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match section(&lines, key) {
        Some((start, end)) => {
            // Keep the blank lines and comments that lead into the next table.
            let mut keep = end;
            while keep > start && {
                let line = lines[keep - 1].trim();
                line.is_empty() || line.starts_with('#')
            } {
                keep -= 1;
            }
            let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
            out.extend(body.lines().map(str::to_owned));
            out.extend(lines[keep..].iter().map(|l| l.to_string()));
            out.join("\n") + "\n"
        }
        None => {
            let mut out = text.trim_end().to_owned();
            out.push_str(&format!("\n\n[{key}]\n{body}"));
            out
        }
    }
}

/// Sets `name = value` in table `key` (replacing a one-line value), creating the table when
/// it is not there.
fn set_key(text: &str, key: &str, name: &str, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some((start, end)) = section(&lines, key) else {
        return replace_table(text, key, &format!("{name} = {value}\n"));
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let existing = (start..end).find(|&i| {
        lines[i]
            .split_once('=')
            .is_some_and(|(k, _)| k.trim().trim_matches('"') == name)
    });
    match existing {
        Some(i) => out[i] = format!("{name} = {value}"),
        None => out.insert(start, format!("{name} = {value}")),
    }
    out.join("\n") + "\n"
}

/// The table at dotted `prefix` in `table`.
fn at<'t>(table: &'t toml::Table, prefix: &str) -> Option<&'t toml::Table> {
    let mut current = table;
    for part in prefix.split('.').filter(|p| !p.is_empty()) {
        current = current.get(part)?.as_table()?;
    }
    Some(current)
}

fn at_mut<'t>(table: &'t mut toml::Table, prefix: &str) -> Option<&'t mut toml::Table> {
    let mut current = table;
    for part in prefix.split('.').filter(|p| !p.is_empty()) {
        current = current.get_mut(part)?.as_table_mut()?;
    }
    Some(current)
}

/// The configuration without what `pins update` owns, to compare before and after.
fn without_pins(mut table: toml::Table, prefix: &str) -> toml::Table {
    if let Some(gitops) = at_mut(&mut table, prefix) {
        gitops.remove("actions");
        let empty = match gitops.get_mut("install").and_then(|i| i.as_table_mut()) {
            Some(install) => {
                install.remove("version");
                install.remove("sha256");
                install.is_empty()
            }
            None => false,
        };
        if empty {
            gitops.remove("install");
        }
    }
    table
}

/// The configuration file with `update` written into it, checked by parsing it back.
pub fn rewrite(path: &Path, text: &str, update: &Update) -> Result<String, Error> {
    let prefix = table_prefix(path, text)?;
    let mut new = text.to_owned();
    if !update.actions.is_empty() {
        new = replace_table(&new, &join(prefix, "actions"), &actions_body(update));
    }
    if let Some((version, checksums)) = &update.install {
        new = set_key(&new, &join(prefix, "install"), "version", &quoted(version));
        new = replace_table(
            &new,
            &join(prefix, "install.sha256"),
            &sha256_body(checksums),
        );
    }
    let refuse = |why: &str| {
        Error::Refused(format!(
            "cannot write the pins into {} safely ({why}); run `cargo gitops pins update --print` and paste the tables by hand",
            path.display()
        ))
    };
    let before: toml::Table = text.parse().map_err(|_| refuse("it is not valid TOML"))?;
    let after: toml::Table = new
        .parse()
        .map_err(|_| refuse("the tables are written in a form this rewrite does not edit"))?;
    let gitops = at(&after, prefix).ok_or_else(|| refuse("no gitops table after the rewrite"))?;
    if !update.actions.is_empty() {
        let expected: toml::Table = render_table(&actions_body(update));
        if gitops.get("actions").and_then(|a| a.as_table()) != Some(&expected) {
            return Err(refuse("the actions table did not come out as written"));
        }
    }
    if let Some((version, checksums)) = &update.install {
        let install = gitops.get("install").and_then(|i| i.as_table());
        let ok = install.is_some_and(|i| {
            i.get("version").and_then(|v| v.as_str()) == Some(version.as_str())
                && i.get("sha256").and_then(|s| s.as_table())
                    == Some(&render_table(&sha256_body(checksums)))
        });
        if !ok {
            return Err(refuse("the install table did not come out as written"));
        }
    }
    if without_pins(before, prefix) != without_pins(after, prefix) {
        return Err(refuse("other settings would have changed"));
    }
    Ok(new)
}

fn render_table(body: &str) -> toml::Table {
    body.parse().expect("the rendered body is valid TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn update() -> Update {
        Update {
            actions: BTreeMap::from([(
                "actions/checkout".to_owned(),
                Pin {
                    sha: "1".repeat(40),
                    version: "v7.0.2".to_owned(),
                },
            )]),
            install: Some((
                "0.2.0".to_owned(),
                BTreeMap::from([("x86_64-apple-darwin".to_owned(), "b".repeat(64))]),
            )),
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_rewrite_replaces_only_the_pins_and_keeps_the_rest() {
        let text = "[workspace]\nmembers = [\"a\"]\n\n# the gitops settings\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\" # where\n\n[workspace.metadata.gitops.actions]\n\"actions/checkout\" = { sha = \"3d3c42e5aac5ba805825da76410c181273ba90b1\", version = \"v7.0.1\" }\n\n# install settings\n[ workspace.metadata.gitops.\"install\" ]\nmode = \"prebuilt\"\nversion = \"0.1.0\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\n";
        let new = rewrite(Path::new("Cargo.toml"), text, &update()).unwrap();
        assert!(new.contains("# the gitops settings\n"), "{new}");
        assert!(
            new.contains("registry = \"ghcr.io/acme\" # where\n"),
            "{new}"
        );
        assert!(new.contains("\"actions/checkout\" = { sha = \"1111111111111111111111111111111111111111\", version = \"v7.0.2\" }\n\n# install settings\n"), "{new}");
        assert!(
            new.contains("mode = \"prebuilt\"\nversion = \"0.2.0\"\n"),
            "{new}"
        );
        assert!(
            new.contains(
                "[workspace.metadata.gitops.install.sha256]\nx86_64-apple-darwin = \"bbbb"
            ),
            "{new}"
        );
        assert!(!new.contains("0.1.0"), "{new}");
        // Twice is the same as once.
        assert_eq!(
            rewrite(Path::new("Cargo.toml"), &new, &update()).unwrap(),
            new
        );
    }

    #[test]
    fn the_tables_are_added_where_there_are_none() {
        let text = "[package]\nname = \"shop\"\n\n[package.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n";
        let new = rewrite(Path::new("Cargo.toml"), text, &update()).unwrap();
        let table: toml::Table = new.parse().unwrap();
        let gitops = at(&table, "package.metadata.gitops").unwrap();
        assert_eq!(gitops["install"]["version"].as_str(), Some("0.2.0"));
        assert_eq!(
            gitops["actions"]["actions/checkout"]["version"].as_str(),
            Some("v7.0.2")
        );
        let plain = rewrite(
            Path::new("gitops.toml"),
            "image = \"ghcr.io/acme/shop\"\n",
            &update(),
        )
        .unwrap();
        assert!(
            plain.contains("\n[actions]\n") && plain.contains("\n[install.sha256]\n"),
            "{plain}"
        );
    }

    #[test]
    fn a_form_the_rewrite_cannot_edit_is_refused_not_damaged() {
        let text = "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\ninstall = { mode = \"prebuilt\" }\n";
        let err = rewrite(Path::new("Cargo.toml"), text, &update())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--print"), "{err}");
    }
}
