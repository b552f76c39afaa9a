//! GitLab CI `rules:` derived from the environment definitions: branch globs as anchored RE2
//! patterns on `$CI_COMMIT_BRANCH` with the matcher's semantics, SemVer tag selectors as
//! patterns on `$CI_COMMIT_TAG`, and for each environment the `when: never` rules for the refs
//! an earlier environment takes. It owns the conditions only: jobs and the YAML around them
//! are `gitlab_pipeline`'s, and which environment a ref belongs to is `environment`'s.

use serde::Serialize;

use crate::environment::{BranchPattern, Environment, TagSelector};
use crate::error::Error;

/// One entry of a job's `rules:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The `if:` expression.
    pub condition: String,
    /// `when: never`: an earlier environment takes these refs.
    pub never: bool,
}

/// One literal character of a pattern, as RE2 and the regex crate both read it, inside a
/// GitLab `/…/` pattern: `/` is escaped (it would end the pattern), other punctuation written
/// as a hex escape, so that nothing in a name can act as syntax.
fn escape_char(c: char, out: &mut String) {
    match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => out.push(c),
        '/' => out.push_str("\\/"),
        c if c.is_ascii() => out.push_str(&format!("\\x{:02X}", c as u32)),
        c => out.push_str(&format!("\\x{{{:X}}}", c as u32)),
    }
}

/// A branch glob as an anchored regular expression with the matcher's semantics (globset with
/// `/` matched only literally): `*` any run of characters but `/`, `**` as a whole pattern
/// anything, `**/` at the start any leading folders (or none), `/**` at the end anything below,
/// `/**/` inside any number of folders, `[…]` a class (a negated class may take `/`, as in
/// globset).
pub fn branch_regex(pattern: &BranchPattern) -> String {
    let chars: Vec<char> = pattern.as_str().chars().collect();
    let mut out = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        if chars[i..].starts_with(&['*', '*']) {
            let (regex, next) = double_star(&chars, i);
            out.push_str(regex);
            i = next;
            continue;
        }
        match chars[i] {
            '*' => {
                out.push_str("[^\\/]*");
                i += 1;
            }
            '[' => i = class(&chars, i, &mut out),
            c => {
                escape_char(c, &mut out);
                i += 1;
            }
        }
    }
    out.push('$');
    out
}

/// The `**` at `i`: what it matches where it stands, and where the pattern goes on.
fn double_star(chars: &[char], i: usize) -> (&'static str, usize) {
    let at_start = i == 0;
    let after = i + 2;
    let followed_by_slash = chars.get(after) == Some(&'/');
    let preceded_by_slash = i > 0 && chars[i - 1] == '/';
    if at_start && after == chars.len() {
        return (".*", after);
    }
    if at_start && followed_by_slash {
        return ("(?:.*\\/)?", after + 1);
    }
    if preceded_by_slash && after == chars.len() {
        // The `/` before is already written: anything below it.
        return (".*", after);
    }
    if preceded_by_slash && followed_by_slash {
        // `a/**/b`: the `/` before is written; zero or more folders, then `b`.
        return ("(?:.*\\/)?", after + 1);
    }
    // Elsewhere `**` is two stars: each a run of characters but `/`.
    ("[^\\/]*", after)
}

/// The `[…]` class that starts at `i`, written to `out`; returns where the pattern goes on.
fn class(chars: &[char], i: usize, out: &mut String) -> usize {
    let mut j = i + 1;
    let negated = matches!(chars.get(j), Some('!' | '^'));
    if negated {
        j += 1;
    }
    // A `]` first in the class is a member, as in globs.
    let start = j;
    while j < chars.len() && (chars[j] != ']' || j == start) {
        j += 1;
    }
    // As globset reads a class: a negated one may take `/`.
    out.push_str(if negated { "[^" } else { "[" });
    let members = &chars[start..j.min(chars.len())];
    let mut k = 0;
    while k < members.len() {
        if k + 2 < members.len() && members[k + 1] == '-' {
            escape_char(members[k], out);
            out.push('-');
            escape_char(members[k + 2], out);
            k += 3;
        } else {
            escape_char(members[k], out);
            k += 1;
        }
    }
    out.push(']');
    j + 1
}

/// A tag selector as an anchored regular expression: strict SemVer (no leading zeros, optional
/// `v`, optional build metadata), with no pre-release for `stable`, or a pre-release whose text
/// starts with the channel; a configured regex as it is.
pub fn tag_regex(selector: &TagSelector) -> Result<String, Error> {
    const NUMBER: &str = "(?:0|[1-9][0-9]*)";
    const BUILD: &str = "(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?";
    const IDENTIFIER: &str = "(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
    let core = format!("^v?{NUMBER}\\.{NUMBER}\\.{NUMBER}");
    match selector {
        TagSelector::SemverStable => Ok(format!("{core}{BUILD}$")),
        TagSelector::SemverChannel(channel) => {
            if channel.chars().all(|c| c.is_ascii_digit()) {
                return Err(Error::usage(format!(
                    "channel `{channel}` is all digits, which GitLab rules cannot match as SemVer requires; give the channel a letter"
                )));
            }
            // The channel has a letter, so its first identifier is alphanumeric whatever follows.
            Ok(format!(
                "{core}-{channel}[0-9A-Za-z-]*(?:\\.{IDENTIFIER})*{BUILD}$"
            ))
        }
        TagSelector::Regex(re) => Ok(re.as_str().to_owned()),
    }
}

/// `text` inside GitLab's `/…/`: every `/` not already escaped gets a backslash.
fn slash_escaped(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '/' => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out
}

/// `$VARIABLE =~ /regex/`, guarded by `$VARIABLE` (defined and not empty) when the pattern
/// also matches the empty text, since GitLab matches an undefined variable as `""`.
fn matches_condition(variable: &str, regex: &str) -> Result<String, Error> {
    if regex.contains(|c: char| c.is_control()) {
        return Err(Error::usage(format!(
            "`{}` has a control character, which no git ref has; fix the pattern",
            regex.escape_debug()
        )));
    }
    if regex == "^.*$" {
        return Ok(format!("${variable}"));
    }
    let compiled = regex::Regex::new(regex).map_err(|e| {
        Error::usage(format!(
            "`{regex}` is not a regular expression GitLab can use: {}",
            e.to_string().lines().last().unwrap_or_default()
        ))
    })?;
    let condition = format!("${variable} =~ /{}/", slash_escaped(regex));
    Ok(if compiled.is_match("") {
        format!("${variable} && {condition}")
    } else {
        condition
    })
}

/// The `if:` of a branch pattern: `==` for a plain name, a pattern match for a glob.
pub fn branch_condition(pattern: &BranchPattern) -> Result<String, Error> {
    let name = pattern.as_str();
    if !pattern.has_wildcard() && !name.contains(['"', '\\']) {
        if name.contains(|c: char| c.is_control()) {
            return Err(Error::usage(format!(
                "branch `{}` has a control character, which git refuses; fix the pattern",
                name.escape_debug()
            )));
        }
        // GitLab's string literals have no escapes: a name with `"` goes through a pattern.
        return Ok(format!("$CI_COMMIT_BRANCH == \"{name}\""));
    }
    matches_condition("CI_COMMIT_BRANCH", &branch_regex(pattern))
}

/// The `if:` of a tag selector.
pub fn tag_condition(selector: &TagSelector) -> Result<String, Error> {
    matches_condition("CI_COMMIT_TAG", &tag_regex(selector)?)
}

/// Whether two tag selectors may take the same tag: stable and channel releases never do, two
/// channels only when one's name starts the other's, a regex always may.
fn tags_may_overlap(earlier: &TagSelector, own: &TagSelector) -> bool {
    match (earlier, own) {
        (TagSelector::SemverStable, TagSelector::SemverStable) => true,
        (TagSelector::SemverStable, TagSelector::SemverChannel(_))
        | (TagSelector::SemverChannel(_), TagSelector::SemverStable) => false,
        (TagSelector::SemverChannel(a), TagSelector::SemverChannel(b)) => {
            a.starts_with(b.as_str()) || b.starts_with(a.as_str())
        }
        _ => true,
    }
}

/// Whether an earlier environment's branch pattern may take a branch one of `own` takes: a
/// plain name when one of `own` matches it, a glob unless every one of `own` is a plain name
/// it does not match.
fn branches_may_overlap(earlier: &BranchPattern, own: &[BranchPattern]) -> bool {
    // The text before a pattern's first wildcard: two globs whose fixed starts differ (`test/`
    // and `sit/`) take no branch in common.
    let fixed = |p: &BranchPattern| {
        let text = p.as_str();
        text[..text.find(['*', '[']).unwrap_or(text.len())].to_owned()
    };
    if earlier.has_wildcard() {
        let theirs = fixed(earlier);
        own.iter().any(|p| {
            if p.has_wildcard() {
                let ours = fixed(p);
                ours.starts_with(&theirs) || theirs.starts_with(&ours)
            } else {
                earlier.matches(p.as_str())
            }
        })
    } else {
        own.iter().any(|p| p.matches(earlier.as_str()))
    }
}

/// The rules of the environment at `index`: first `when: never` for what earlier environments
/// take of its refs, then one rule per branch pattern and tag selector of its own.
pub fn rules(environments: &[Environment], index: usize) -> Result<Vec<Rule>, Error> {
    let env = &environments[index];
    let mut rules = Vec::new();
    for earlier in &environments[..index] {
        for pattern in &earlier.branches {
            if branches_may_overlap(pattern, &env.branches) {
                rules.push(Rule {
                    condition: branch_condition(pattern)?,
                    never: true,
                });
            }
        }
        if let (Some(theirs), Some(ours)) = (&earlier.tags, &env.tags)
            && tags_may_overlap(theirs, ours)
        {
            rules.push(Rule {
                condition: tag_condition(theirs)?,
                never: true,
            });
        }
    }
    if env.branches.iter().any(BranchPattern::has_wildcard) {
        for pattern in &env.exclude_branches {
            rules.push(Rule {
                condition: branch_condition(pattern)?,
                never: true,
            });
        }
    }
    for pattern in &env.branches {
        rules.push(Rule {
            condition: branch_condition(pattern)?,
            never: false,
        });
    }
    if let Some(selector) = &env.tags {
        rules.push(Rule {
            condition: tag_condition(selector)?,
            never: false,
        });
    }
    let mut seen = Vec::new();
    rules.retain(|rule| {
        let new = !seen.contains(rule);
        seen.push(rule.clone());
        new
    });
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environment;

    fn pattern(text: &str) -> BranchPattern {
        BranchPattern::new(text).unwrap()
    }

    #[test]
    fn branch_patterns_become_anchored_patterns_with_the_matchers_semantics() {
        let patterns = [
            "main",
            "test/*",
            "**",
            "*",
            "sit/**",
            "**/hotfix",
            "a/**/b",
            "release-*",
            "v[0-9].x",
            "[^a]*",
            "x**y",
            "feature/*/wip",
            "we.ird@na#me",
            "ü/*",
        ];
        let branches = [
            "main",
            "main2",
            "test/uat1",
            "test/a/b",
            "test/",
            "sit",
            "sit/a",
            "sit/a/b",
            "hotfix",
            "x/hotfix",
            "x/y/hotfix",
            "a/b",
            "a/x/b",
            "a/x/y/b",
            "ab",
            "release-1",
            "release-1/x",
            "v1.x",
            "vx.x",
            "v1ax",
            "a",
            "b",
            "/x",
            "xy",
            "xzy",
            "x/y",
            "feature/a/wip",
            "feature/a/b/wip",
            "we.ird@na#me",
            "weXird@na#me",
            "ü/a",
            "u/a",
        ];
        for source in patterns {
            let glob = pattern(source);
            let regex = regex::Regex::new(&branch_regex(&glob)).unwrap();
            for branch in branches {
                assert_eq!(
                    regex.is_match(branch),
                    glob.matches(branch),
                    "{source} ({}) on {branch}",
                    branch_regex(&glob)
                );
            }
        }
    }

    #[test]
    fn conditions_read_as_gitlab_documents_them() {
        assert_eq!(
            branch_condition(&pattern("main")).unwrap(),
            "$CI_COMMIT_BRANCH == \"main\""
        );
        assert_eq!(
            branch_condition(&pattern("test/*")).unwrap(),
            "$CI_COMMIT_BRANCH =~ /^test\\/[^\\/]*$/"
        );
        assert_eq!(
            branch_condition(&pattern("**")).unwrap(),
            "$CI_COMMIT_BRANCH"
        );
        assert_eq!(
            branch_condition(&pattern("*")).unwrap(),
            "$CI_COMMIT_BRANCH && $CI_COMMIT_BRANCH =~ /^[^\\/]*$/"
        );
        assert_eq!(
            branch_condition(&pattern("say\"hi\"")).unwrap(),
            "$CI_COMMIT_BRANCH =~ /^say\\x22hi\\x22$/"
        );
    }

    #[test]
    fn default_rules_exclude_what_earlier_environments_take() {
        let envs = environment::defaults();
        let of = |name: &str| {
            let index = envs.iter().position(|e| e.name == name).unwrap();
            rules(&envs, index)
                .unwrap()
                .into_iter()
                .map(|r| (r.condition, r.never))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            of("development"),
            [
                ("$CI_COMMIT_BRANCH =~ /^test\\/[^\\/]*$/".to_owned(), true),
                ("$CI_COMMIT_BRANCH == \"main\"".to_owned(), true),
                ("$CI_COMMIT_BRANCH == \"gh-pages\"".to_owned(), true),
                ("$CI_COMMIT_BRANCH =~ /^dependabot\\/.*$/".to_owned(), true),
                ("$CI_COMMIT_BRANCH =~ /^renovate\\/.*$/".to_owned(), true),
                ("$CI_COMMIT_BRANCH".to_owned(), false),
            ]
        );
        assert_eq!(
            of("staging"),
            [("$CI_COMMIT_BRANCH == \"main\"".to_owned(), false)]
        );
        // Channels and stable releases never take the same tag: no exclusions.
        assert_eq!(of("beta").len(), 1);
    }

    #[test]
    fn semver_patterns_agree_with_the_selectors() {
        let tags = [
            "v1.2.3",
            "1.2.3",
            "v1.2.3+build.5",
            "v1.2.3+001",
            "v01.2.3",
            "v1.02.3",
            "v1.2.03",
            "v1.2",
            "vv1.2.3",
            "V1.2.3",
            "v1.2.3-alpha.1",
            "v1.2.3-alpha1",
            "1.2.3-beta2",
            "v1.2.3-alphabet",
            "v1.2.3-alpha.01",
            "v1.2.3-alpha..1",
            "v1.2.3-alpha.1+b",
            "v1.2.3-alpha-x",
            "v1.2.3-rc1",
            "v1.2.3-",
            "v1.2.3+",
            "nightly",
            "release-1",
            "",
        ];
        let selectors = [
            TagSelector::SemverStable,
            TagSelector::SemverChannel("alpha".into()),
            TagSelector::SemverChannel("beta".into()),
        ];
        for selector in &selectors {
            let regex = regex::Regex::new(&tag_regex(selector).unwrap()).unwrap();
            let env = Environment {
                tags: Some(selector.clone()),
                ..environment::defaults().remove(0)
            };
            for tag in tags {
                let expected = env
                    .matches(&environment::GitRef::Tag(tag.to_owned()))
                    .is_some();
                assert_eq!(regex.is_match(tag), expected, "{selector:?} on {tag:?}");
            }
        }
    }
}
