//! Writing pins into the configuration file: the tool owns the `actions` table, the
//! `install.sha256` table (each rewritten whole) and the `install.version` key of the gitops
//! table; every other line is kept byte for byte, and the result is parsed back and refused
//! unless it carries the new values and nothing else changed.

use std::collections::BTreeMap;
use std::path::Path;

use super::Update;
use crate::error::Error;

const WORKSPACE: &str = "workspace.metadata.gitops";
const PACKAGE: &str = "package.metadata.gitops";

/// The table prefix of the gitops settings in a configuration file, where the settings are: a
/// package's table that already holds pins (it overrides the workspace's), else the
/// workspace's table, else the package's; in a manifest with neither table, the workspace's
/// if it is one, else the package's; none in `gitops.toml`. A `[workspace]` table alone (a
/// single crate that keeps itself out of an enclosing workspace) does not move the settings.
pub fn table_prefix(path: &Path, text: &str) -> Result<&'static str, Error> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::Config {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: e.message().to_owned(),
    })?;
    let package = at(&table, PACKAGE);
    let pinned = package.is_some_and(|t| t.contains_key("actions") || t.contains_key("install"));
    Ok(if pinned {
        PACKAGE
    } else if at(&table, WORKSPACE).is_some() {
        WORKSPACE
    } else if package.is_some() {
        PACKAGE
    } else if table.contains_key("workspace") {
        WORKSPACE
    } else if table.contains_key("package") {
        PACKAGE
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
    use crate::config::Pin;

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
    fn the_pins_go_into_the_table_that_holds_the_settings() {
        let prefix = |text: &str| table_prefix(Path::new("Cargo.toml"), text).unwrap();
        // A single crate with an empty [workspace] table: its package table holds the settings.
        let single = "[package]\nname = \"shop\"\n\n[workspace]\n\n[package.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n";
        assert_eq!(prefix(single), PACKAGE);
        let new = rewrite(Path::new("Cargo.toml"), single, &update()).unwrap();
        let table: toml::Table = new.parse().unwrap();
        assert!(
            at(&table, "package.metadata.gitops.actions").is_some(),
            "{new}"
        );
        assert!(at(&table, "workspace.metadata").is_none(), "{new}");
        assert_eq!(
            prefix(
                "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"a\"\n\n[package]\nname = \"a\"\n"
            ),
            WORKSPACE
        );
        // Both tables: the package's pins override the workspace's, so they are updated there.
        assert_eq!(
            prefix(
                "[workspace.metadata.gitops]\nimage = \"a\"\n\n[package]\nname = \"a\"\n\n[package.metadata.gitops.actions]\n"
            ),
            PACKAGE
        );
        assert_eq!(
            prefix("[workspace]\n\n[package]\nname = \"a\"\n"),
            WORKSPACE
        );
        assert_eq!(prefix("[package]\nname = \"a\"\n"), PACKAGE);
        assert_eq!(prefix("image = \"ghcr.io/acme/shop\"\n"), "");
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
