//! The `environments` list of the configuration turned into checked environments: names,
//! tracked branches and tags, tag formats and latest tags, build arguments, each inherited from
//! the default environment of the same name when not given. Whether two environments can give
//! the same tag is `collisions`' question.

use std::collections::HashSet;
use std::path::Path;

use super::raw::{RawEnvironment, RawLatest, RawTags};
use crate::environment::{self, BranchPattern, Environment, Latest, TagSelector};
use crate::error::Error;
use crate::tags::{Placeholder, TagFormat};

/// Names the key of one environment in errors.
struct Site<'a> {
    file: &'a Path,
    table: &'a str,
    index: usize,
}

impl Site<'_> {
    fn bad(&self, field: &str, message: String) -> Error {
        Error::Config {
            file: self.file.to_path_buf(),
            line: None,
            key: format!("{}.environments[{}].{field}", self.table, self.index),
            message,
        }
    }
}

/// Builds the configured environments, in order. Linear in their number.
pub fn build(raw: &[RawEnvironment], file: &Path, table: &str) -> Result<Vec<Environment>, Error> {
    let defaults = environment::defaults();
    let mut built: Vec<Environment> = Vec::with_capacity(raw.len());
    let mut names = HashSet::with_capacity(raw.len());
    for (index, raw_env) in raw.iter().enumerate() {
        let site = Site { file, table, index };
        let name = raw_env.name.as_str();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(site.bad(
                "name",
                format!(
                    "`{}` is not a valid environment name; use letters, digits, `-` and `_`",
                    name.escape_debug()
                ),
            ));
        }
        if !names.insert(name) {
            return Err(site.bad(
                "name",
                format!("environment `{name}` is listed twice; names must be unique"),
            ));
        }
        let inherited = defaults.iter().find(|d| d.name == name);
        built.push(build_one(raw_env, inherited, &site)?);
    }
    if built.is_empty() {
        return Err(Error::Config {
            file: file.to_path_buf(),
            line: None,
            key: format!("{table}.environments"),
            message: "no environments are configured; remove the key to use the defaults"
                .to_owned(),
        });
    }
    Ok(built)
}

fn build_one(
    raw: &RawEnvironment,
    inherited: Option<&Environment>,
    site: &Site<'_>,
) -> Result<Environment, Error> {
    let name = raw.name.as_str();
    let branches = match &raw.branches {
        Some(patterns) => patterns
            .iter()
            .map(|p| {
                BranchPattern::new(p).map_err(|e| {
                    site.bad(
                        "branches",
                        format!("`{}` is not a valid branch pattern: {e}", p.escape_debug()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => inherited.map(|d| d.branches.clone()).unwrap_or_default(),
    };
    let tags = match &raw.tags {
        Some(raw_tags) => Some(tag_selector(raw_tags, site)?),
        None => inherited.and_then(|d| d.tags.clone()),
    };
    if branches.is_empty() && tags.is_none() {
        return Err(site.bad(
            "branches",
            format!("environment `{name}` tracks no refs; give `branches` or `tags`"),
        ));
    }
    let format: TagFormat = match &raw.format {
        Some(text) => text
            .parse()
            .map_err(|e| site.bad("format", format!("`{}`: {e}", text.escape_debug())))?,
        None => inherited.map(|d| d.format.clone()).ok_or_else(|| {
            site.bad(
                "format",
                format!(
                    "environment `{name}` needs a `format`, e.g. \"{name}-{{sha}}-{{timestamp}}\""
                ),
            )
        })?,
    };
    let latest = match &raw.latest {
        Some(raw_latest) => latest(raw_latest, site)?,
        None => inherited.map_or(Latest::FromFormat, |d| d.latest.clone()),
    };
    let build_args = raw.build_args.clone().unwrap_or_default();
    if let Some(bad_key) = build_args
        .keys()
        .find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(site.bad(
            "build-args",
            format!(
                "`{}` is not a valid build argument name; use letters, digits and `_`",
                bad_key.escape_debug()
            ),
        ));
    }
    let environment = Environment {
        name: name.to_owned(),
        branches,
        tags,
        format,
        latest,
        build_args,
        image: raw.image.clone(),
        // `resolve` sets them from `exclude-branches`, for every environment at once.
        exclude_branches: Vec::new(),
    };
    environment
        .check_format()
        .map_err(|message| site.bad("format", message))?;
    Ok(environment)
}

fn tag_selector(raw: &RawTags, site: &Site<'_>) -> Result<TagSelector, Error> {
    match (&raw.semver, &raw.regex) {
        (Some(track), None) if track == "stable" => Ok(TagSelector::SemverStable),
        (Some(track), None)
            if !track.is_empty() && track.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Ok(TagSelector::SemverChannel(track.clone()))
        }
        (Some(track), None) => Err(site.bad(
            "tags.semver",
            format!(
                "`{}` is neither \"stable\" nor a channel name (letters and digits, e.g. \"alpha\")",
                track.escape_debug()
            ),
        )),
        (None, Some(expr)) => regex::Regex::new(&format!("^(?:{expr})$"))
            .map(TagSelector::Regex)
            .map_err(|e| {
                site.bad(
                    "tags.regex",
                    format!(
                        "`{}` is not a valid regular expression: {}",
                        expr.escape_debug(),
                        last_line(&e.to_string())
                    ),
                )
            }),
        _ => Err(site.bad(
            "tags",
            "give exactly one of `semver` (\"stable\" or a channel name) and `regex`".to_owned(),
        )),
    }
}

fn latest(raw: &RawLatest, site: &Site<'_>) -> Result<Latest, Error> {
    let text = match raw {
        RawLatest::Enabled(false) => return Ok(Latest::Off),
        RawLatest::Enabled(true) => return Ok(Latest::FromFormat),
        RawLatest::Format(text) => text,
    };
    let format: TagFormat = text
        .parse()
        .map_err(|e| site.bad("latest", format!("`{}`: {e}", text.escape_debug())))?;
    if let Some(p) = format.placeholders().find(|p| {
        matches!(
            p,
            Placeholder::Sha | Placeholder::Sha40 | Placeholder::Timestamp | Placeholder::Version
        )
    }) {
        return Err(site.bad(
            "latest",
            format!(
                "`{text}` uses {{{}}}, which changes with each deploy; a latest tag must not",
                p.name()
            ),
        ));
    }
    Ok(Latest::Format(format))
}

/// The last non-empty line of a multi-line message (the regex crate puts the reason there),
/// so errors stay on one line.
fn last_line(text: &str) -> &str {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim();
    line.strip_prefix("error: ").unwrap_or(line)
}
