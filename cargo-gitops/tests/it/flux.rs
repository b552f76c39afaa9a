//! `cargo gitops flux` proved the way Flux would use it. The manifests the real binary prints
//! are parsed as YAML (never re-derived), and each `ImagePolicy` is run by a selection engine
//! written here from Flux's documented semantics over a tag history of every environment and
//! branch, rendered by the library's own tag code: each policy must pick the newest tag of its
//! own environment and branch, and admit no tag of any other.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use crate::support::{Dir, TestCommand, gitops_manifest};
use cargo_gitops::config::{self, Config};
use cargo_gitops::deployment::deployment_for;
use cargo_gitops::environment::{GitRef, parse_semver_tag};
use regex::Regex;
use yaml_rust2::{Yaml, YamlLoader};

const API_VERSION: &str = "image.toolkit.fluxcd.io/v1";

// ---------------------------------------------------------------------------------------------
// The selection engine: Flux's image-reflector semantics, as documented.
// ---------------------------------------------------------------------------------------------

/// An `ImagePolicy` as read from the YAML.
#[derive(Debug, Clone)]
struct FluxPolicy {
    name: String,
    environment: String,
    branch: Option<String>,
    repository: String,
    pattern: Option<Regex>,
    extract: Option<String>,
    choice: Choice,
}

#[derive(Debug, Clone)]
enum Choice {
    /// `numerical.order`: `asc` picks the largest number, `desc` the smallest.
    Numerical { ascending: bool },
    /// `semver.range`.
    Semver(Range),
}

/// A Masterminds range: `||` of space- or comma-separated comparators.
#[derive(Debug, Clone)]
struct Range(Vec<Vec<(String, semver::Version)>>);

impl Range {
    fn parse(text: &str) -> Range {
        let groups = text
            .split("||")
            .map(|group| {
                group
                    .split([' ', ','])
                    .filter(|c| !c.is_empty())
                    .map(|comparator| {
                        let op_len = comparator
                            .find(|c: char| c.is_ascii_digit() || c == 'v')
                            .unwrap_or_else(|| panic!("unsupported comparator `{comparator}`"));
                        let (op, version) = comparator.split_at(op_len);
                        assert!(
                            matches!(op, ">=" | ">" | "<=" | "<" | "=" | "" | "!="),
                            "the engine does not know the operator `{op}` of `{text}`"
                        );
                        let version = semver::Version::parse(version.trim_start_matches('v'))
                            .unwrap_or_else(|e| panic!("range version `{version}`: {e}"));
                        (op.to_owned(), version)
                    })
                    .collect()
            })
            .collect();
        Range(groups)
    }

    /// Masterminds' check: a pre-release version only satisfies a comparator whose own
    /// version has a pre-release; otherwise versions compare by SemVer precedence.
    fn admits(&self, v: &semver::Version) -> bool {
        self.0.iter().any(|group| {
            group.iter().all(|(op, c)| {
                if !v.pre.is_empty() && c.pre.is_empty() {
                    return false;
                }
                let order = precedence(v).cmp(&precedence(c));
                match op.as_str() {
                    ">=" => order.is_ge(),
                    ">" => order.is_gt(),
                    "<=" => order.is_le(),
                    "<" => order.is_lt(),
                    "!=" => order.is_ne(),
                    _ => order.is_eq(),
                }
            })
        })
    }
}

/// SemVer precedence ignores build metadata.
fn precedence(v: &semver::Version) -> (u64, u64, u64, semver::Prerelease) {
    (v.major, v.minor, v.patch, v.pre.clone())
}

/// Flux's strict SemVer parse, which allows a leading `v`.
fn flux_semver(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

impl FluxPolicy {
    /// The tags the filter admits, as Flux keeps them: extracted value → original tag, a later
    /// tag with the same value replacing an earlier one.
    fn filter(&self, tags: &[String]) -> HashMap<String, String> {
        let mut kept = HashMap::new();
        for tag in tags {
            let value = match &self.pattern {
                // Flux looks for a match anywhere in the tag: anchoring is the pattern's job.
                Some(pattern) => {
                    let Some(captures) = pattern.captures(tag) else {
                        continue;
                    };
                    match &self.extract {
                        // Go's ExpandString: `$name` and `${name}` expand to the named group.
                        Some(template) if !template.is_empty() => {
                            let mut out = String::new();
                            captures.expand(template, &mut out);
                            out
                        }
                        _ => tag.clone(),
                    }
                }
                None => tag.clone(),
            };
            kept.insert(value, tag.clone());
        }
        kept
    }

    /// Every tag the pattern admits, before values that collide are merged.
    fn admitted(&self, tags: &[String]) -> BTreeSet<String> {
        tags.iter()
            .filter(|tag| self.pattern.as_ref().is_none_or(|p| p.is_match(tag)))
            .cloned()
            .collect()
    }

    /// The tag Flux would select, or why it would fail.
    fn select(&self, tags: &[String]) -> Result<String, String> {
        let kept = self.filter(tags);
        if kept.is_empty() {
            return Err("no tag passes the filter".to_owned());
        }
        match &self.choice {
            Choice::Numerical { ascending } => {
                let mut best: Option<(f64, &String)> = None;
                for (value, tag) in &kept {
                    let number: f64 = value
                        .parse()
                        .map_err(|_| format!("`{value}` (from {tag}) is not a number"))?;
                    let better = match best {
                        None => true,
                        Some((b, _)) if *ascending => number >= b,
                        Some((b, _)) => number <= b,
                    };
                    if better {
                        best = Some((number, tag));
                    }
                }
                Ok(best.expect("not empty").1.clone())
            }
            Choice::Semver(range) => kept
                .iter()
                .filter_map(|(value, tag)| flux_semver(value).map(|v| (v, tag)))
                .filter(|(v, _)| range.admits(v))
                .max_by(|a, b| precedence(&a.0).cmp(&precedence(&b.0)))
                .map(|(_, tag)| tag.clone())
                .ok_or_else(|| "no version satisfies the range".to_owned()),
        }
    }
}

fn text<'y>(yaml: &'y Yaml, what: &str) -> &'y str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {yaml:?}"))
}

/// Reads every document; returns the ImageRepositories (name → image) and the ImagePolicies.
fn parse(yaml: &str) -> (BTreeMap<String, String>, Vec<FluxPolicy>) {
    let docs = YamlLoader::load_from_str(yaml).expect("the output is YAML");
    let mut repositories = BTreeMap::new();
    let mut policies = Vec::new();
    let object_name = Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap();
    for doc in &docs {
        assert_eq!(text(&doc["apiVersion"], "apiVersion"), API_VERSION);
        let name = text(&doc["metadata"]["name"], "metadata.name").to_owned();
        assert!(
            object_name.is_match(&name) && name.len() <= 253,
            "`{name}` is not a Kubernetes object name"
        );
        let spec = &doc["spec"];
        match text(&doc["kind"], "kind") {
            "ImageRepository" => {
                repositories.insert(name, text(&spec["image"], "spec.image").to_owned());
            }
            "ImagePolicy" => {
                let annotations = &doc["metadata"]["annotations"];
                let policy = &spec["policy"];
                let choice = if !policy["numerical"].is_badvalue() {
                    Choice::Numerical {
                        ascending: text(&policy["numerical"]["order"], "order") == "asc",
                    }
                } else if !policy["semver"].is_badvalue() {
                    Choice::Semver(Range::parse(text(&policy["semver"]["range"], "range")))
                } else {
                    panic!("policy {name} has no numerical or semver choice: {policy:?}")
                };
                let filter = &spec["filterTags"];
                policies.push(FluxPolicy {
                    name,
                    environment: text(&annotations["cargo-gitops/environment"], "environment")
                        .to_owned(),
                    branch: annotations["cargo-gitops/branch"]
                        .as_str()
                        .map(str::to_owned),
                    repository: text(&spec["imageRepositoryRef"]["name"], "repository").to_owned(),
                    pattern: filter["pattern"]
                        .as_str()
                        .map(|p| Regex::new(p).unwrap_or_else(|e| panic!("pattern `{p}`: {e}"))),
                    extract: filter["extract"].as_str().map(str::to_owned),
                    choice,
                });
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    for policy in &policies {
        assert!(
            repositories.contains_key(&policy.repository),
            "{} reads `{}`, which is not in the output",
            policy.name,
            policy.repository
        );
    }
    (repositories, policies)
}

#[test]
fn the_engine_catches_the_usual_mistakes() {
    let tags: Vec<String> = [
        "dev-main-aaaaaaa-1000000005",
        "dev-main-fix-bbbbbbb-1000000009",
        "dev-main-ccccccc-1000000001",
        "dev-main-latest",
    ]
    .map(String::from)
    .to_vec();
    let policy = |pattern: &str, extract: &str, ascending: bool| FluxPolicy {
        name: "p".into(),
        environment: "development".into(),
        branch: Some("main".into()),
        repository: "r".into(),
        pattern: Some(Regex::new(pattern).unwrap()),
        extract: Some(extract.into()),
        choice: Choice::Numerical { ascending },
    };
    let right = policy(
        r"^dev-main-(?P<sha>[0-9a-f]{7})-(?P<ts>[0-9]{10})$",
        "$ts",
        true,
    );
    assert_eq!(right.select(&tags).unwrap(), "dev-main-aaaaaaa-1000000005");
    // Unanchored: another branch's newer tag wins.
    let unanchored = policy(r"dev-main-.*-(?P<ts>[0-9]+)", "$ts", true);
    assert_eq!(
        unanchored.select(&tags).unwrap(),
        "dev-main-fix-bbbbbbb-1000000009"
    );
    // `desc` picks the oldest.
    let descending = policy(
        r"^dev-main-(?P<sha>[0-9a-f]{7})-(?P<ts>[0-9]{10})$",
        "$ts",
        false,
    );
    assert_eq!(
        descending.select(&tags).unwrap(),
        "dev-main-ccccccc-1000000001"
    );
    // `ts` without `$` extracts the same text from every tag: nothing to order.
    let no_dollar = policy(
        r"^dev-main-(?P<sha>[0-9a-f]{7})-(?P<ts>[0-9]{10})$",
        "ts",
        true,
    );
    assert!(no_dollar.select(&tags).is_err());

    // A range without a pre-release never admits one; a range with one does.
    assert!(!Range::parse(">=0.0.0").admits(&semver::Version::parse("2.0.0-alpha.1").unwrap()));
    assert!(
        Range::parse(">=0.0.0-alpha").admits(&semver::Version::parse("2.0.0-alpha.1").unwrap())
    );
    assert!(Range::parse(">=0.0.0-alpha").admits(&semver::Version::parse("1.0.0").unwrap()));
}

// ---------------------------------------------------------------------------------------------
// A tag history, rendered by the library.
// ---------------------------------------------------------------------------------------------

/// One pipeline run: the ref, when, and what it produced.
#[derive(Debug, Clone)]
struct Build {
    git_ref: GitRef,
    timestamp: u64,
    environment: String,
    /// The environment's primary tag (what a policy may select).
    tag: String,
}

struct History {
    builds: Vec<Build>,
    /// Every tag in the registry: primary, `latest` and lookup tags.
    tags: Vec<String>,
}

fn sha_of(n: u64) -> String {
    let mixed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    format!(
        "{:016x}{:016x}{:08x}",
        mixed,
        mixed.rotate_left(17),
        n as u32
    )
}

/// Runs the "pipeline" for each ref at its time; the same commit may be built for several refs
/// (a promotion), so lookup tags repeat.
fn history(config: &Config, runs: &[(GitRef, u64, u64)]) -> History {
    let mut builds = Vec::new();
    let mut tags = BTreeSet::new();
    for (git_ref, commit, timestamp) in runs {
        let deployment = deployment_for(config, git_ref, &sha_of(*commit), *timestamp).unwrap();
        let Some(environment) = deployment.environment else {
            continue;
        };
        tags.extend(deployment.tags.iter().cloned());
        tags.insert(deployment.lookup_tag.clone());
        builds.push(Build {
            git_ref: git_ref.clone(),
            timestamp: *timestamp,
            environment,
            tag: deployment.tags[0].clone(),
        });
    }
    History {
        builds,
        tags: tags.into_iter().collect(),
    }
}

fn branch(name: &str) -> GitRef {
    GitRef::Branch(name.to_owned())
}

fn tag(name: &str) -> GitRef {
    GitRef::Tag(name.to_owned())
}

/// The builds a policy of `environment` (for `branch`, when it tags per branch) stands for.
fn own_builds<'h>(h: &'h History, environment: &str, branch: Option<&str>) -> Vec<&'h Build> {
    h.builds
        .iter()
        .filter(|b| b.environment == environment)
        .filter(|b| match (branch, &b.git_ref) {
            (Some(wanted), GitRef::Branch(name)) => name == wanted,
            (Some(_), _) => false,
            (None, _) => true,
        })
        .collect()
}

/// The tags that count as newest: the latest timestamp, or the highest version.
fn newest(builds: &[&Build], by_version: bool) -> BTreeSet<String> {
    if by_version {
        let version = |b: &Build| match &b.git_ref {
            GitRef::Tag(t) => precedence(&parse_semver_tag(t).unwrap()),
            _ => unreachable!("version-ordered environments follow tags"),
        };
        let best = builds.iter().map(|b| version(b)).max().unwrap();
        builds
            .iter()
            .filter(|b| version(b) == best)
            .map(|b| b.tag.clone())
            .collect()
    } else {
        let best = builds.iter().map(|b| b.timestamp).max().unwrap();
        builds
            .iter()
            .filter(|b| b.timestamp == best)
            .map(|b| b.tag.clone())
            .collect()
    }
}

/// Every policy admits only its own environment's (and branch's) tags, and selects the newest
/// of them, whatever order the registry lists tags in.
fn check_policies(h: &History, policies: &[FluxPolicy]) {
    let mut reversed = h.tags.clone();
    reversed.reverse();
    for policy in policies {
        let own = own_builds(h, &policy.environment, policy.branch.as_deref());
        assert!(
            !own.is_empty(),
            "{}: the history has no build for it",
            policy.name
        );
        let own_tags: BTreeSet<String> = own.iter().map(|b| b.tag.clone()).collect();
        let admitted = policy.admitted(&h.tags);
        if let Some(tag) = admitted.difference(&own_tags).next() {
            panic!(
                "{} admits `{tag}`, which is not a tag of {} {:?}",
                policy.name, policy.environment, policy.branch
            );
        }
        assert_eq!(
            admitted, own_tags,
            "{} must admit every tag of its own",
            policy.name
        );
        let expected = newest(&own, matches!(policy.choice, Choice::Semver(_)));
        for listing in [&h.tags, &reversed] {
            let selected = policy
                .select(listing)
                .unwrap_or_else(|e| panic!("{}: {e}", policy.name));
            assert!(
                expected.contains(&selected),
                "{} selected `{selected}`, expected one of {expected:?}",
                policy.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary.
// ---------------------------------------------------------------------------------------------

/// A directory with a `Cargo.toml` whose image is `ghcr.io/acme/shop` (not a repository: the
/// command reads no git).
struct Project {
    dir: Dir,
}

impl Project {
    fn new(extra_config: &str) -> Project {
        let dir = Dir::new();
        dir.create(
            "Cargo.toml",
            gitops_manifest("ghcr.io/acme", "shop", extra_config),
        );
        Project { dir }
    }

    fn config(&self) -> Config {
        config::load(&config::Source {
            manifest_path: Some(&self.dir.join("Cargo.toml")),
            ..config::Source::search(self.dir.path())
        })
        .unwrap()
    }

    /// `cargo gitops flux ARGS`.
    fn flux_command(&self, args: &[&str]) -> TestCommand {
        let mut command = self.dir.command();
        command.arg("flux").args(args);
        command
    }

    /// `cargo gitops flux ARGS`: exit 0; returns stdout and stderr.
    fn flux(&self, args: &[&str]) -> (String, String) {
        self.flux_command(args).succeeds()
    }

    /// `cargo gitops flux ARGS` that must fail with exit 2 and one line; returns it.
    fn flux_usage_error(&self, args: &[&str]) -> String {
        self.flux_command(args).usage_error()
    }
}

fn with_branches<'a>(branches: &[&'a str]) -> Vec<&'a str> {
    branches.iter().flat_map(|b| ["--branch", *b]).collect()
}

const LONG: &str = "feature/a-very-long-branch-name-that-keeps-going-and-going-well-past-what-fits-in-a-docker-tag-once-the-sha-and-timestamp-are-added";

#[test]
fn default_policies_pick_the_newest_tag_of_their_own_environment() {
    let project = Project::new("");
    let config = project.config();
    // Branch names that are prefixes of others, differ only in case or in a `.`, and one
    // long enough to be cut.
    let dev_branches = [
        "feature",
        "feature-x",
        "feature/login",
        "main-fix",
        "release.1",
        "releasex1",
        "fix#12@home",
        "test",
        "test/uat1/extra",
        LONG,
    ];
    let test_branches = ["test/uat1", "test/uat10", "test/uat"];
    let mut runs: Vec<(GitRef, u64, u64)> = Vec::new();
    let mut commit = 0;
    let mut run = |git_ref: GitRef, timestamp: u64| {
        commit += 1;
        runs.push((git_ref, commit, timestamp));
    };
    // Every branch builds three times; the same second recurs across branches and
    // environments, and within `feature` (two builds in its newest second).
    // Built, but followed by no policy: only the case tells it from `feature`.
    let unfollowed = ["Feature", "main"];
    for (i, name) in dev_branches
        .iter()
        .chain(&test_branches)
        .chain(&unfollowed)
        .enumerate()
    {
        let i = i as u64;
        run(branch(name), 1_700_000_000 + i);
        run(branch(name), 1_700_000_500 - i);
        run(branch(name), 1_700_001_000);
    }
    run(branch("feature"), 1_700_001_000);
    run(branch("main-fix"), 1_700_002_000);
    // Releases: creation order is not version order.
    for (name, timestamp) in [
        ("v1.0.0", 1_700_000_100),
        ("v1.1.1+build.7", 1_700_000_200),
        ("v1.1.0", 1_700_000_300),
        ("v0.9.0", 1_700_000_400),
        ("v1.1.0-alpha.2", 1_700_000_150),
        ("v1.1.0-alpha.10", 1_700_000_160),
        ("v2.0.0-alpha.1", 1_700_000_170),
        ("v1.1.0-alpha.3", 1_700_000_900),
        ("v1.2.0-beta.1", 1_700_000_180),
        ("1.2.0-beta.2", 1_700_000_190),
        ("v1.0.0-rc.1", 1_700_000_950),
        ("nightly", 1_700_000_960),
    ] {
        run(tag(name), timestamp);
    }
    let h = history(&config, &runs);
    assert!(h.tags.iter().any(|t| t.starts_with("commit-")));
    assert!(h.tags.iter().any(|t| t.ends_with("-latest")));

    let mut asked: Vec<&str> = dev_branches.to_vec();
    asked.extend(test_branches);
    let (yaml, _) = project.flux(&with_branches(&asked));
    let (repositories, policies) = parse(&yaml);
    assert_eq!(
        repositories,
        BTreeMap::from([("shop".to_owned(), "ghcr.io/acme/shop".to_owned())])
    );
    let mut covered: Vec<(String, Option<String>)> = policies
        .iter()
        .map(|p| (p.environment.clone(), p.branch.clone()))
        .collect();
    covered.sort();
    let mut expected: Vec<(String, Option<String>)> = ["production", "alpha", "beta", "staging"]
        .iter()
        .map(|e| (e.to_string(), None))
        .chain(
            test_branches
                .iter()
                .map(|b| ("testing".to_owned(), Some(b.to_string()))),
        )
        .chain(
            dev_branches
                .iter()
                .map(|b| ("development".to_owned(), Some(b.to_string()))),
        )
        .collect();
    expected.sort();
    assert_eq!(covered, expected);
    check_policies(&h, &policies);
}

#[test]
fn configured_environments_get_policies_that_keep_apart() {
    let project = Project::new(
        r#"
[[workspace.metadata.gitops.environments]]
name = "production"

[[workspace.metadata.gitops.environments]]
name = "rc"
tags = { semver = "rc" }
format = "rel-{version}"

[[workspace.metadata.gitops.environments]]
name = "nightly"
tags = { regex = "^nightly-[0-9]+$" }
format = "nightly-{sha}-{timestamp}"

[[workspace.metadata.gitops.environments]]
name = "uat1"
branches = ["test/uat1"]
format = "uat1-{sha}-{timestamp}"

[[workspace.metadata.gitops.environments]]
name = "sit"
branches = ["sit/*"]
format = "{env}-{name}-{sha40}-{timestamp}"
image = "shop-sit"

[[workspace.metadata.gitops.environments]]
name = "staging"

[[workspace.metadata.gitops.environments]]
name = "development"
format = "dev-{timestamp}-{branch}-{sha}"
"#,
    );
    let config = project.config();
    let mut runs = Vec::new();
    let refs = [
        branch("test/uat1"),
        branch("sit/a"),
        branch("sit/a-b"),
        branch("sit/b"),
        branch("main"),
        branch("main-2"),
        branch("a"),
        branch("a-b"),
        tag("nightly-1"),
        tag("nightly-2"),
    ];
    for (i, git_ref) in refs.iter().enumerate() {
        for round in 0..3u64 {
            runs.push((
                git_ref.clone(),
                (i as u64) * 10 + round,
                1_700_000_000 + round * 100 + (i as u64 % 3),
            ));
        }
    }
    for (i, name) in [
        "v1.0.0",
        "v1.0.1-rc.1",
        "v1.0.1-rc.2",
        "v1.0.1",
        "v1.1.0-rc.1",
    ]
    .iter()
    .enumerate()
    {
        runs.push((tag(name), 500 + i as u64, 1_700_000_000));
    }
    let h = history(&config, &runs);

    let (yaml, stderr) = project.flux(&with_branches(&[
        "sit/a", "sit/a-b", "sit/b", "a", "a-b", "main-2",
    ]));
    let (repositories, policies) = parse(&yaml);
    assert_eq!(
        repositories,
        BTreeMap::from([
            ("shop".to_owned(), "ghcr.io/acme/shop".to_owned()),
            ("shop-sit".to_owned(), "ghcr.io/acme/shop-sit".to_owned()),
        ])
    );
    // The single-branch environment needs no --branch.
    let uat1 = policies.iter().find(|p| p.environment == "uat1").unwrap();
    assert_eq!(uat1.branch, None);
    assert_eq!(uat1.name, "shop-uat1");
    for policy in policies.iter().filter(|p| p.environment == "sit") {
        assert_eq!(policy.repository, "shop-sit");
    }
    assert!(stderr.is_empty(), "{stderr}");
    // The sit images live in their own repository: check each repository's tags apart.
    let (sit, rest): (Vec<FluxPolicy>, Vec<FluxPolicy>) =
        policies.into_iter().partition(|p| p.environment == "sit");
    let split = |keep_sit: bool| History {
        builds: h
            .builds
            .iter()
            .filter(|b| (b.environment == "sit") == keep_sit)
            .cloned()
            .collect(),
        tags: h.tags.clone(),
    };
    check_policies(&split(true), &sit);
    check_policies(&split(false), &rest);
}

#[test]
fn environments_that_tag_per_branch_say_what_they_need() {
    let project = Project::new("");
    let (yaml, stderr) = project.flux(&[]);
    let (_, policies) = parse(&yaml);
    let environments: Vec<&str> = policies.iter().map(|p| p.environment.as_str()).collect();
    assert_eq!(environments, ["production", "alpha", "beta", "staging"]);
    assert!(
        stderr.contains("environment `testing` tags per branch"),
        "{stderr}"
    );
    assert!(
        stderr.contains("environment `development` tags per branch"),
        "{stderr}"
    );
    assert!(stderr.contains("--branch"), "{stderr}");

    // Branches that sanitising alone would make equal get tags of their own (the hash rule),
    // so each policy selects its own branch's images and never the other's.
    for pair in [
        ["feature/login", "feature-login"],
        [&format!("{LONG}-1"), &format!("{LONG}-2")],
    ] {
        let (yaml, _) = project.flux(&with_branches(&pair));
        let (_, policies) = parse(&yaml);
        let pattern_of = |branch: &str| {
            policies
                .iter()
                .find(|p| p.branch.as_deref() == Some(branch))
                .and_then(|p| p.pattern.clone())
                .unwrap_or_else(|| panic!("a policy for {branch}"))
        };
        let config = project.config();
        for (own, other) in [(pair[0], pair[1]), (pair[1], pair[0])] {
            let deployment = deployment_for(
                &config,
                &GitRef::Branch(own.to_owned()),
                "abcdef0123456789abcdef0123456789abcdef01",
                1_700_000_000,
            )
            .unwrap();
            assert!(pattern_of(own).is_match(&deployment.tags[0]), "{own}");
            assert!(
                !pattern_of(other).is_match(&deployment.tags[0]),
                "{other} took {own}'s"
            );
        }
    }
    // Two that only the object name makes equal are refused.
    let error = project.flux_usage_error(&["--branch", "Fix", "--branch", "fix"]);
    assert!(error.contains("two policies would be named"), "{error}");
}

#[test]
fn options_reach_the_manifests() {
    let project = Project::new("");
    let (yaml, _) = project.flux(&[
        "--namespace",
        "apps",
        "--interval",
        "1m30s",
        "--secret-ref",
        "ghcr-login",
        "--name-prefix",
        "web",
        "--branch",
        "it's",
    ]);
    let docs = YamlLoader::load_from_str(&yaml).unwrap();
    let repository = &docs[0];
    assert_eq!(repository["kind"].as_str(), Some("ImageRepository"));
    assert_eq!(repository["metadata"]["name"].as_str(), Some("web"));
    assert_eq!(repository["metadata"]["namespace"].as_str(), Some("apps"));
    assert_eq!(repository["spec"]["interval"].as_str(), Some("1m30s"));
    assert_eq!(
        repository["spec"]["secretRef"]["name"].as_str(),
        Some("ghcr-login")
    );
    for doc in &docs[1..] {
        assert_eq!(doc["metadata"]["namespace"].as_str(), Some("apps"));
        assert_eq!(
            doc["spec"]["imageRepositoryRef"]["name"].as_str(),
            Some("web")
        );
        assert!(
            doc["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("web-"),
            "{doc:?}"
        );
    }
    // A quote in a branch name survives YAML quoting.
    let (_, policies) = parse(&yaml);
    let quoted = policies
        .iter()
        .find(|p| p.branch.as_deref() == Some("it's"))
        .unwrap();
    assert_eq!(quoted.name, "web-development-it-s-24ceef1c");
    assert!(
        quoted
            .pattern
            .as_ref()
            .unwrap()
            .is_match("dev-it-s-24ceef1c-abcdef0-1700000000")
    );

    // Every string is single-quoted, so the output does not depend on YAML's plain-scalar rules.
    for line in yaml.lines().filter(|l| !l.starts_with('#') && *l != "---") {
        if let Some((_, value)) = line.split_once(": ") {
            assert!(
                value.starts_with('\'') || value == "true",
                "unquoted value: {line}"
            );
        }
    }

    let error = project.flux_usage_error(&["--interval", "5 minutes"]);
    assert!(error.contains("--interval"), "{error}");
    let error = project.flux_usage_error(&["--namespace", "Flux_System"]);
    assert!(error.contains("--namespace"), "{error}");
    let error = project.flux_usage_error(&["--name-prefix", "Web App"]);
    assert!(error.contains("web-app"), "{error}");
}

#[test]
fn output_file_and_markers() {
    let project = Project::new("");
    let file = project.dir.join("deploy/flux.yaml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let (stdout, stderr) = project.flux(&["--output", file.to_str().unwrap()]);
    assert!(stdout.is_empty());
    assert!(stderr.contains("wrote"), "{stderr}");
    let (again, _) = project.flux(&[]);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        again,
        "deterministic"
    );

    let (marker, _) = project.flux(&["--marker", "staging"]);
    assert_eq!(
        marker,
        "image: ghcr.io/acme/shop:stg-latest # {\"$imagepolicy\": \"flux-system:shop-staging\"}\n"
    );
    let (marker, _) = project.flux(&["--marker", "testing", "--branch", "test/uat1"]);
    assert_eq!(
        marker,
        "image: ghcr.io/acme/shop:tst-uat1-latest # {\"$imagepolicy\": \"flux-system:shop-testing-uat1\"}\n"
    );
    let error = project.flux_usage_error(&["--marker", "development"]);
    assert!(
        error.contains("no policy for environment `development`"),
        "{error}"
    );
}

#[test]
fn without_an_image_it_says_what_to_configure() {
    let dir = Dir::new();
    dir.create("Cargo.toml", "[workspace]\n");
    let output = dir.command().args(["flux"]).expect_exit(2);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("no image is configured"), "{stderr}");
}

/// The README shows the manifests for this repository's own demo-app: they must be what the
/// tool prints today.
#[test]
fn readme_shows_the_real_output() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("\n## Continuous delivery with Flux")
        .nth(1)
        .expect("README has a \"Continuous delivery with Flux\" section");
    let command_line = section
        .lines()
        .find_map(|l| l.strip_prefix("$ cargo gitops flux"))
        .expect("the section shows the command it ran");
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a yaml block");
    let stdout = TestCommand::new(&root)
        .arg("flux")
        .args(command_line.split_whitespace())
        .stdout();
    assert_eq!(
        stdout, block,
        "README's Flux manifests are out of date: run `cargo gitops flux{command_line}` and paste its output"
    );
}

#[test]
fn hostile_options_are_refused_and_never_reach_the_yaml() {
    let project = Project::new("");
    for (args, expected) in [
        (
            vec!["--branch", "feature/x\n  injected: true"],
            "is not a branch name git accepts",
        ),
        (vec!["--branch", "a b"], "is not a branch name git accepts"),
        (
            vec!["--namespace", "ns\nkind: Secret"],
            "is not a Kubernetes namespace name",
        ),
        (vec!["--interval", "5m\nx: y"], "is not a Go duration"),
        (
            vec!["--secret-ref", "s\"x"],
            "is not a Kubernetes secret name",
        ),
    ] {
        let line = project.flux_usage_error(&args);
        assert!(line.contains(expected), "{args:?}: {line}");
    }
}
