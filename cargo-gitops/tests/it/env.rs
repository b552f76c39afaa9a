//! `cargo gitops env` end to end: the real binary, run in real git repositories made with the
//! `git` command line in temporary directories. Covers how the ref is found (branch, detached
//! HEAD at a tag, GitHub Actions variables, flags, shallow clones), the environment and tags it
//! gets with the defaults and with configuration, the output formats, and the errors.

use crate::support::{Dir, TestCommand, git_in};
use serde_json::{Value, json};

/// The design's example build time; every test passes it so that tags are exact.
const TS: &str = "1654880868";

/// A commit id for tests that do not need a repository.
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// `cargo gitops env --format json --timestamp TS` plus `args`, run in `dir`; exit 0.
fn env_json(dir: &Dir, args: &[&str]) -> Value {
    dir.command()
        .args(["env", "--format", "json", "--timestamp", TS])
        .args(args)
        .json()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn sha7(sha: &str) -> &str {
    &sha[..7]
}

/// Docker's tag grammar, written out independently of the library.
fn assert_valid_tag(tag: &str) {
    let grammar = regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap();
    assert!(grammar.is_match(tag), "not a valid Docker tag: {tag:?}");
    assert!(tag.len() <= 128, "{tag:?} is {} characters", tag.len());
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

#[test]
fn cargo_passes_gitops_as_the_first_argument() {
    let dir = Dir::git_repo_with_commit();
    let direct = env_json(&dir, &[]);
    let via_cargo = dir
        .command()
        .args(["gitops", "env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(direct, via_cargo);
    assert_eq!(direct["environment"], "staging");
}

#[test]
fn help_exits_0_and_mentions_the_subcommand() {
    // The top level lists `env` with its one-line description, however the column is aligned.
    let listed = regex::Regex::new(
        r"(?m)^  env +Print the environment and image tags of the current commit$",
    )
    .unwrap();
    let usage = regex::Regex::new(r"(?m)^Usage: cargo gitops \[OPTIONS\] <COMMAND>$").unwrap();
    let env_usage = regex::Regex::new(r"(?m)^Usage: cargo gitops env \[OPTIONS\]$").unwrap();
    let dir = Dir::new();
    let cases: &[(&[&str], &[&regex::Regex])] = &[
        (&["--help"], &[&usage, &listed]),
        (&["gitops", "--help"], &[&usage, &listed]),
        (&["gitops", "-h"], &[&usage, &listed]),
        (&["help", "env"], &[&env_usage]),
        (&["env", "--help"], &[&env_usage]),
        (&["gitops", "env", "--help"], &[&env_usage]),
        (&["gitops", "env", "-h"], &[&env_usage]),
    ];
    for (args, patterns) in cases {
        let stdout = dir.command().args(*args).stdout();
        for pattern in *patterns {
            assert!(
                pattern.is_match(&stdout),
                "{args:?}: no {pattern} in\n{stdout}"
            );
        }
    }
    // The subcommand's own help describes its flags.
    let stdout = dir.command().args(["gitops", "env", "--help"]).stdout();
    for flag in [
        "--ref",
        "--sha",
        "--timestamp",
        "--format",
        "--manifest-path",
        "--package",
    ] {
        assert!(stdout.contains(flag), "no {flag} in\n{stdout}");
    }
}

#[test]
fn human_output_is_aligned_text() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    let stdout = dir.command().args(["env", "--timestamp", TS]).stdout();
    let s7 = sha7(&sha);
    assert_eq!(
        stdout,
        format!(
            "ref          refs/heads/main\n\
             sha          {sha}\n\
             environment  staging\n\
             image        none (set registry and image in the config)\n\
             tags         stg-{s7}-{TS}\n\
             \x20            stg-latest\n\
             lookup tag   commit-{sha}\n\
             ci           none\n"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Branches
// ---------------------------------------------------------------------------------------------

/// Checks the tags of a branch deployment: exact values, Docker grammar, and that the sha and
/// timestamp survive any shortening.
fn assert_branch_tags(label: &str, got: &Value, environment: &str, expected: &[String], sha: &str) {
    assert_eq!(got["environment"], environment, "{label}");
    let tags = strings(&got["tags"]);
    assert_eq!(tags, expected, "{label}");
    for tag in &tags {
        assert_valid_tag(tag);
    }
    let suffix = format!("-{}-{TS}", sha7(sha));
    assert!(tags[0].ends_with(&suffix), "{label}: {}", tags[0]);
    assert!(tags[1].ends_with("-latest"), "{label}: {}", tags[1]);
}

#[test]
fn checked_out_branches_choose_environment_and_tags() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    let s = sha7(&sha);
    // (branch, environment, primary tag, latest tag). Names that lose characters carry 8 hex
    // of the name's sha256 (`printf %s NAME | sha256sum`).
    let cases: &[(&str, &str, String, &str)] = &[
        ("main", "staging", format!("stg-{s}-{TS}"), "stg-latest"),
        (
            "test/uat1",
            "testing",
            format!("tst-uat1-{s}-{TS}"),
            "tst-uat1-latest",
        ),
        (
            "feature/login",
            "development",
            format!("dev-feature--login-{s}-{TS}"),
            "dev-feature--login-latest",
        ),
        // `*` in `test/*` stops at `/`: deeper branches are development's.
        (
            "test/uat/1",
            "development",
            format!("dev-test--uat--1-{s}-{TS}"),
            "dev-test--uat--1-latest",
        ),
        (
            "main-fix",
            "development",
            format!("dev-main-fix-{s}-{TS}"),
            "dev-main-fix-latest",
        ),
        (
            "Feature/UPPER_case",
            "development",
            format!("dev-Feature--UPPER_case-{s}-{TS}"),
            "dev-Feature--UPPER_case-latest",
        ),
        (
            "issue#12@home",
            "development",
            format!("dev-issue-12-home-4639c6f2-{s}-{TS}"),
            "dev-issue-12-home-4639c6f2-latest",
        ),
        // Each run of other characters becomes one `-`; the `-` in the name is kept.
        (
            "fix/café-ümlaut",
            "development",
            format!("dev-fix-caf---mlaut-438146d3-{s}-{TS}"),
            "dev-fix-caf---mlaut-438146d3-latest",
        ),
        (
            "release/v1.2.3",
            "development",
            format!("dev-release--v1.2.3-{s}-{TS}"),
            "dev-release--v1.2.3-latest",
        ),
        (
            "日本語/ブランチ",
            "development",
            format!("dev-6f7c2296-{s}-{TS}"),
            "dev-6f7c2296-latest",
        ),
    ];
    for (branch, environment, primary, latest) in cases {
        dir.git(["checkout", "--quiet", "-B", branch]);
        let got = env_json(&dir, &[]);
        assert_eq!(got["ref"], format!("refs/heads/{branch}"));
        assert_eq!(got["sha"], sha.as_str());
        assert_branch_tags(
            branch,
            &got,
            environment,
            &[primary.clone(), (*latest).to_owned()],
            &sha,
        );
    }
}

#[test]
fn odd_names_git_accepts_are_sanitised_when_given_with_ref() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    let s = sha7(&sha);
    // (--ref value, branch part in the tag); git's ref-name rules accept each of these. Each
    // name loses characters, so the part ends with 8 hex of the name's sha256
    // (`printf %s NAME | sha256sum`); a name that loses everything is the hash alone.
    let cases = [
        ("-leading-dash", "leading-dash-bb224188"),
        ("-ÄÖÜ-x", "x-449fbb9b"),
        ("###", "56dc6d47"),
        ("Fix#12@home", "Fix-12-home-d1c0a051"),
    ];
    for (name, part) in cases {
        let got = env_json(&dir, &[&format!("--ref={name}"), "--sha", "HEAD"]);
        assert_eq!(got["ref"], format!("refs/heads/{name}"), "{name:?}");
        assert_branch_tags(
            name,
            &got,
            "development",
            &[format!("dev-{part}-{s}-{TS}"), format!("dev-{part}-latest")],
            &sha,
        );
    }
}

#[test]
fn names_git_refuses_are_one_line_errors_when_given_with_ref() {
    let dir = Dir::git_repo_with_commit();
    let cases = [
        ".hidden",
        "..-.x",
        "refs/heads/.dot/-dash",
        "with space",
        "tab\tand\nnewline",
        "a..b~c^d:e?f*g[h\\i",
        "",
        "refs/heads/",
        "test/",
        "x.lock",
    ];
    for name in cases {
        let line = dir
            .command()
            .args(["env", "--format", "json"])
            .arg(format!("--ref={name}"))
            .expect_error(2);
        assert!(
            line.contains("is not a valid git ref name"),
            "{name:?}: {line}"
        );
    }
}

#[test]
fn a_250_character_branch_is_shortened_but_keeps_sha_and_timestamp() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    let s = sha7(&sha);

    // Made with git: `feature/` and 242 `x`.
    let branch = format!("feature/{}", "x".repeat(242));
    assert_eq!(branch.len(), 250);
    dir.git(["checkout", "--quiet", "-b", &branch]);
    let got = env_json(&dir, &[]);
    let readable = format!("feature--{}", "x".repeat(242));
    // Cut names keep `-` and 8 hex of the name's sha256: 128 - "dev-" - "-<sha7>-<ts>" - 9 =
    // 96 characters of branch; 128 - "dev-" - "-latest" - 9 = 108.
    let hash = "60d4fbb0";
    let expected = [
        format!("dev-{}-{hash}-{s}-{TS}", &readable[..96]),
        format!("dev-{}-{hash}-latest", &readable[..108]),
    ];
    assert_branch_tags(&branch, &got, "development", &expected, &sha);
    assert_eq!(strings(&got["tags"])[0].len(), 128);
    assert_eq!(strings(&got["tags"])[1].len(), 128);

    // Given with --ref: 250 characters of mixed text (`é` is 2 bytes, one character).
    let mixed: String = "Ab/é#1.".chars().cycle().take(250).collect();
    assert_eq!(mixed.chars().count(), 250);
    let got = env_json(&dir, &["--sha", "HEAD", "--ref", &mixed]);
    let tags = strings(&got["tags"]);
    assert_eq!(got["environment"], "development");
    for tag in &tags {
        assert_valid_tag(tag);
        assert_eq!(tag.len(), 128, "{tag}");
    }
    assert!(tags[0].starts_with("dev-Ab-1.Ab-1.Ab-"), "{}", tags[0]);
    assert!(tags[0].ends_with(&format!("-{s}-{TS}")), "{}", tags[0]);
    assert!(tags[1].starts_with("dev-Ab-1.Ab-1.Ab-"), "{}", tags[1]);
    assert!(tags[1].ends_with("-latest"), "{}", tags[1]);

    // A testing branch with a long name: `{name}` is shortened the same way.
    let long_test = format!("test/{}", "u".repeat(245));
    let got = env_json(&dir, &["--sha", "HEAD", "--ref", &long_test]);
    let expected = [
        format!("tst-{}-c9f8330b-{s}-{TS}", "u".repeat(96)),
        format!("tst-{}-c9f8330b-latest", "u".repeat(108)),
    ];
    assert_branch_tags(&long_test, &got, "testing", &expected, &sha);
}

// ---------------------------------------------------------------------------------------------
// Tags on a detached HEAD
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum TagKind {
    Annotated,
    Lightweight,
}

fn tag(dir: &Dir, name: &str, kind: TagKind) {
    match kind {
        TagKind::Annotated => dir.git(["tag", "-a", "-m", &format!("release {name}"), name]),
        TagKind::Lightweight => dir.git(["tag", name]),
    };
}

#[test]
fn semver_tags_at_a_detached_head() {
    use TagKind::*;
    let cases: &[(&str, TagKind, &str, &[&str])] = &[
        (
            "v1.2.3",
            Annotated,
            "production",
            &["prd-1.2.3", "prd-latest"],
        ),
        (
            "v1.2.3",
            Lightweight,
            "production",
            &["prd-1.2.3", "prd-latest"],
        ),
        (
            "1.2.3",
            Annotated,
            "production",
            &["prd-1.2.3", "prd-latest"],
        ),
        (
            "1.2.3",
            Lightweight,
            "production",
            &["prd-1.2.3", "prd-latest"],
        ),
        (
            "v1.2.3+build.5",
            Annotated,
            "production",
            &["prd-1.2.3_build.5", "prd-latest"],
        ),
        (
            "v1.1.0-alpha1",
            Annotated,
            "alpha",
            &["prd-1.1.0-alpha1", "prd-alpha-latest"],
        ),
        (
            "v1.0.3-beta2",
            Lightweight,
            "beta",
            &["prd-1.0.3-beta2", "prd-beta-latest"],
        ),
    ];
    for (name, kind, environment, expected) in cases {
        for packed in [false, true] {
            let label = format!("{name} {kind:?} packed={packed}");
            let dir = Dir::git_repo();
            dir.commit("older");
            // A higher version on the parent commit must not count: it is not at HEAD.
            tag(&dir, "v9.9.9", *kind);
            let sha = dir.commit("release");
            tag(&dir, name, *kind);
            dir.git(["checkout", "--quiet", "--detach", name]);
            if packed {
                dir.git(["pack-refs", "--all"]);
            }
            let got = env_json(&dir, &[]);
            assert_eq!(got["ref"], format!("refs/tags/{name}"), "{label}");
            assert_eq!(got["sha"], sha.as_str(), "{label}");
            assert_eq!(got["environment"], *environment, "{label}");
            assert_eq!(strings(&got["tags"]), *expected, "{label}");
            assert_eq!(got["lookup_tag"], format!("commit-{sha}"), "{label}");
        }
    }
}

#[test]
fn other_tags_have_nothing_to_deploy() {
    for name in ["v01.2.3", "release-1", "nightly", "v1.0.0-rc1", "1.2"] {
        for kind in [TagKind::Annotated, TagKind::Lightweight] {
            let dir = Dir::git_repo_with_commit();
            let sha = dir.head();
            tag(&dir, name, kind);
            dir.git(["checkout", "--quiet", "--detach", name]);
            let output = dir
                .command()
                .args(["env", "--format", "json", "--timestamp", TS])
                .expect_exit(0);
            let got: Value = crate::support::json(&output.stdout);
            assert_eq!(
                got,
                json!({
                    "ref": format!("refs/tags/{name}"),
                    "sha": sha,
                    "environment": null,
                    "tags": [],
                    "lookup_tag": format!("commit-{sha}"),
                    "image": null,
                    "timestamp": 1654880868,
                    "ci": null,
                    "pull_request": null,
                }),
                "{name} {kind:?}"
            );
            assert_eq!(
                String::from_utf8(output.stderr).unwrap(),
                format!("no environment tracks refs/tags/{name}: nothing to deploy\n"),
                "{name} {kind:?}"
            );
            // -q keeps stderr for errors only.
            let quiet = dir
                .command()
                .args(["env", "-q", "--format", "json", "--timestamp", TS])
                .expect_exit(0);
            assert!(quiet.stderr.is_empty(), "{name} {kind:?}");
        }
    }
}

#[test]
fn the_highest_semver_tag_at_head_wins() {
    use TagKind::*;
    type TagsAtHead = &'static [(&'static str, TagKind)];
    // (tags at HEAD, the ref chosen, environment, primary tag)
    let cases: &[(TagsAtHead, &str, &str, &str)] = &[
        (
            &[
                ("v1.2.3", Annotated),
                ("v1.10.0", Lightweight),
                ("v1.9.9", Annotated),
                ("nightly", Lightweight),
                ("release-1", Annotated),
            ],
            "v1.10.0",
            "production",
            "prd-1.10.0",
        ),
        (
            &[
                ("zzz", Lightweight),
                ("v2.0.0", Annotated),
                ("2.0.0-beta1", Lightweight),
            ],
            "v2.0.0",
            "production",
            "prd-2.0.0",
        ),
        // A pre-release of a higher version is higher: the alpha channel gets it.
        (
            &[("v1.9.0", Annotated), ("v2.0.0-alpha1", Annotated)],
            "v2.0.0-alpha1",
            "alpha",
            "prd-2.0.0-alpha1",
        ),
    ];
    for (tags, chosen, environment, primary) in cases {
        for packed in [false, true] {
            let dir = Dir::git_repo_with_commit();
            for (name, kind) in *tags {
                tag(&dir, name, *kind);
            }
            dir.git(["checkout", "--quiet", "--detach", tags[0].0]);
            if packed {
                dir.git(["pack-refs", "--all"]);
            }
            let got = env_json(&dir, &[]);
            assert_eq!(
                got["ref"],
                format!("refs/tags/{chosen}"),
                "{tags:?} packed={packed}"
            );
            assert_eq!(got["environment"], *environment, "{tags:?}");
            assert_eq!(strings(&got["tags"])[0], *primary, "{tags:?}");
        }
    }
}

#[test]
fn a_nested_annotated_tag_at_head_is_found() {
    let dir = Dir::git_repo_with_commit();
    dir.git(["tag", "-a", "-m", "inner", "inner"]);
    dir.git(["tag", "-a", "-m", "outer", "v3.0.0", "inner"]);
    dir.git(["tag", "-d", "inner"]);
    dir.git(["checkout", "--quiet", "--detach", "v3.0.0"]);
    // The tag peels to HEAD (`git tag --points-at` before git 2.42 does not peel nested tags).
    assert_eq!(
        dir.git(["rev-parse", "v3.0.0^{commit}"]),
        dir.git(["rev-parse", "HEAD"])
    );
    let got = env_json(&dir, &[]);
    assert_eq!(got["ref"], "refs/tags/v3.0.0");
    assert_eq!(strings(&got["tags"]), ["prd-3.0.0", "prd-latest"]);
}

#[test]
fn a_branch_checked_out_wins_over_tags_at_head() {
    let dir = Dir::git_repo_with_commit();
    tag(&dir, "v1.2.3", TagKind::Annotated);
    let got = env_json(&dir, &[]);
    assert_eq!(got["ref"], "refs/heads/main");
    assert_eq!(got["environment"], "staging");
}

// ---------------------------------------------------------------------------------------------
// --ref and --sha
// ---------------------------------------------------------------------------------------------

#[test]
fn ref_and_sha_flags() {
    let dir = Dir::git_repo_with_commit();
    let first = dir.head();
    let second = dir.commit("second");
    tag(&dir, "v1.2.3", TagKind::Annotated);
    dir.git(["tag", "both"]);
    dir.git(["branch", "both"]);
    dir.git(["branch", "test/uat1", &first]);
    // (args, ref, sha, environment)
    let cases: &[(&[&str], String, &str, &str)] = &[
        // A short name is a tag when the repository has that tag and no such branch.
        (
            &["--ref", "v1.2.3"],
            "refs/tags/v1.2.3".into(),
            &second,
            "production",
        ),
        (
            &["--ref", "both"],
            "refs/heads/both".into(),
            &second,
            "development",
        ),
        // A branch the repository has: its commit, not HEAD's.
        (
            &["--ref", "test/uat1"],
            "refs/heads/test/uat1".into(),
            &first,
            "testing",
        ),
        // A ref it does not have needs --sha: "what if this commit were pushed there".
        (
            &["--ref", "feature/new", "--sha", "HEAD"],
            "refs/heads/feature/new".into(),
            &second,
            "development",
        ),
        (
            &["--ref", "refs/tags/v7.0.0", "--sha", "HEAD"],
            "refs/tags/v7.0.0".into(),
            &second,
            "production",
        ),
        (
            &["--sha", "HEAD~1"],
            "refs/heads/main".into(),
            &first,
            "staging",
        ),
        (
            &["--sha", &first[..10]],
            "refs/heads/main".into(),
            &first,
            "staging",
        ),
        (
            &["--ref", "main", "--sha", &first.to_uppercase()],
            "refs/heads/main".into(),
            &first,
            "staging",
        ),
    ];
    for (args, git_ref, sha, environment) in cases {
        let got = env_json(&dir, args);
        assert_eq!(got["ref"], git_ref.as_str(), "{args:?}");
        assert_eq!(got["sha"], *sha, "{args:?}");
        assert_eq!(got["environment"], *environment, "{args:?}");
        assert_eq!(got["lookup_tag"], format!("commit-{sha}"), "{args:?}");
    }
    // Without --sha, a ref the repository does not have is refused, saying what it has; a
    // SemVer tag that does not exist yet never becomes a development branch.
    for git_ref in ["feature/new", "v1.2.0-beta.1", "refs/tags/v1.0.3"] {
        let line = dir
            .command()
            .args(["env", "--format", "json", "--ref", git_ref])
            .usage_error();
        assert!(line.contains("is not in this repository (it has branches both, main, test/uat1; tags both, v1.2.3)"), "{line}");
        assert!(line.contains("pass --sha too"), "{line}");
    }
}

#[test]
fn ref_and_full_sha_work_outside_a_repository() {
    let dir = Dir::new();
    for (git_ref, full, environment) in [
        ("refs/heads/main", "refs/heads/main", "staging"),
        ("test/uat3", "refs/heads/test/uat3", "testing"),
        ("refs/tags/v1.2.3", "refs/tags/v1.2.3", "production"),
    ] {
        let got = env_json(&dir, &["--ref", git_ref, "--sha", SHA]);
        assert_eq!(got["ref"], full);
        assert_eq!(got["sha"], SHA);
        assert_eq!(got["environment"], environment);
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn json_has_every_field_with_exact_values() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    dir.git(["checkout", "--quiet", "-b", "test/uat1"]);
    let got = env_json(&dir, &[]);
    let keys: Vec<&str> = got
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "ci",
            "environment",
            "image",
            "lookup_tag",
            "pull_request",
            "ref",
            "sha",
            "tags",
            "timestamp"
        ]
    );
    let hex40 = regex::Regex::new("^[0-9a-f]{40}$").unwrap();
    assert!(hex40.is_match(got["sha"].as_str().unwrap()), "{got}");
    assert_eq!(
        got,
        json!({
            "ref": "refs/heads/test/uat1",
            "sha": sha,
            "environment": "testing",
            "tags": [format!("tst-uat1-{}-{TS}", sha7(&sha)), "tst-uat1-latest"],
            "lookup_tag": format!("commit-{sha}"),
            "image": null,
            "timestamp": 1654880868,
            "ci": null,
            "pull_request": null,
        })
    );
}

#[test]
fn image_references_are_checked_and_the_correction_shown() {
    let dir = Dir::git_repo_with_commit();
    let manifest = |registry: &str, image: &str, staging: &str| {
        format!(
            r#"
[workspace]

[workspace.metadata.gitops]
registry = "{registry}"
image = "{image}"

[[workspace.metadata.gitops.environments]]
name = "staging"
image = "{staging}"

[[workspace.metadata.gitops.environments]]
name = "development"
"#
        )
    };
    dir.create(
        "Cargo.toml",
        manifest("ghcr.io/au2001/", "gitops-demo-app", "demo-app-staging"),
    );
    let got = env_json(&dir, &[]);
    assert_eq!(got["image"], "ghcr.io/au2001/demo-app-staging");
    let got = env_json(&dir, &["--sha", "HEAD", "--ref", "feature/x"]);
    assert_eq!(got["image"], "ghcr.io/au2001/gitops-demo-app");
    // No environment: still the configured image.
    let got = env_json(&dir, &["--sha", "HEAD", "--ref", "refs/tags/v1.2.3"]);
    assert_eq!(got["environment"], Value::Null);
    assert_eq!(got["image"], "ghcr.io/au2001/gitops-demo-app");

    // Each bad reference is refused (exit 2), naming the key and showing the corrected value.
    let cases = [
        (
            manifest("GHCR.io/Au2001/", "app", "app"),
            "workspace.metadata.gitops.registry: `GHCR.io/Au2001/` has uppercase letters; write `ghcr.io/au2001/`",
        ),
        (
            manifest("ghcr.io/o", "GitOps-Demo-App", "app"),
            "workspace.metadata.gitops.image: `GitOps-Demo-App`: repository names are lowercase; write `gitops-demo-app`",
        ),
        (
            manifest("ghcr.io/o", "app", "Demo-App"),
            "workspace.metadata.gitops.environments[0].image: `Demo-App`: repository names are lowercase; write `demo-app`",
        ),
        (
            manifest("ghcr.io/au2001", "app:latest", "app"),
            "workspace.metadata.gitops.image: `app:latest` holds a tag; tags come from the environment: write `app`",
        ),
        (
            manifest("ghcr.io/au2001", "app@sha256:0123", "app"),
            "`app@sha256:0123` holds a digest",
        ),
        (
            manifest("ghcr.io", "ghcr.io/other/x", "app"),
            "repeats a registry host (`ghcr.io`) that `registry` already gives; write image = \"other/x\"",
        ),
        (
            manifest("ghcr.io/acme", "ghcr.io/acme/app", "app"),
            "repeats a registry host (`ghcr.io`) that `registry` already gives; write image = \"app\"",
        ),
        (
            manifest("ghcr.io/acme", "ghcr.io/other/app", "app"),
            "repeats a registry host (`ghcr.io`) that `registry` already gives; write registry = \"ghcr.io\" and image = \"other/app\", or drop the host from image",
        ),
        (
            manifest("localhost:99999", "app", "app"),
            "workspace.metadata.gitops.registry: port `99999` of `localhost:99999` is not between 1 and 65535",
        ),
    ];
    for (text, expected) in cases {
        dir.create("Cargo.toml", text);
        let line = dir
            .command()
            .args(["env", "--format", "json"])
            .usage_error();
        assert!(line.contains(expected), "{expected}\n{line}");
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions
// ---------------------------------------------------------------------------------------------

fn in_actions(cmd: &mut TestCommand, git_ref: &str, sha: &str) {
    cmd.env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_SHA", sha);
}

#[test]
fn github_actions_variables_work_outside_a_repository() {
    let dir = Dir::new();
    let mut cmd = dir.command();
    in_actions(&mut cmd, "refs/heads/test/uat2", SHA);
    let got = cmd
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(
        got,
        json!({
            "ref": "refs/heads/test/uat2",
            "sha": SHA,
            "environment": "testing",
            "tags": [format!("tst-uat2-0123456-{TS}"), "tst-uat2-latest"],
            "lookup_tag": format!("commit-{SHA}"),
            "image": null,
            "timestamp": 1654880868,
            "ci": "github",
            "pull_request": null,
        })
    );
}

#[test]
fn github_actions_pull_request_refs_have_nothing_to_deploy() {
    let dir = Dir::new();
    let mut cmd = dir.command();
    in_actions(&mut cmd, "refs/pull/4/merge", SHA);
    let output = cmd
        .args(["env", "--format", "json", "--timestamp", TS])
        .expect_exit(0);
    let got: Value = crate::support::json(&output.stdout);
    assert_eq!(got["ref"], "refs/pull/4/merge");
    assert_eq!(got["environment"], Value::Null);
    assert_eq!(got["tags"], json!([]));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "no environment tracks refs/pull/4/merge: nothing to deploy\n"
    );
}

#[test]
fn github_actions_tag_push_on_a_detached_head() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    tag(&dir, "v1.1.0-alpha1", TagKind::Annotated);
    dir.git(["checkout", "--quiet", "--detach", "v1.1.0-alpha1"]);
    let mut cmd = dir.command();
    in_actions(&mut cmd, "refs/tags/v1.1.0-alpha1", &sha);
    let got = cmd
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(got["environment"], "alpha");
    assert_eq!(
        strings(&got["tags"]),
        ["prd-1.1.0-alpha1", "prd-alpha-latest"]
    );
}

#[test]
fn github_format_appends_to_github_output() {
    let dir = Dir::new();
    let output_file = dir.join("github_output");
    std::fs::write(&output_file, "earlier=1\n").unwrap();
    let mut cmd = dir.command();
    in_actions(&mut cmd, "refs/heads/test/uat2", SHA);
    let stdout = cmd
        .env("GITHUB_OUTPUT", &output_file)
        .args(["env", "--format", "github", "--timestamp", TS])
        .stdout();
    assert_eq!(stdout, "");
    let expected_outputs = format!(
        "ref=refs/heads/test/uat2\n\
         sha={SHA}\n\
         environment=testing\n\
         tag=tst-uat2-0123456-{TS}\n\
         tags<<GITOPS_EOF\n\
         tst-uat2-0123456-{TS}\n\
         tst-uat2-latest\n\
         GITOPS_EOF\n\
         lookup_tag=commit-{SHA}\n\
         image=\n\
         timestamp={TS}\n"
    );
    assert_eq!(
        std::fs::read_to_string(&output_file).unwrap(),
        format!("earlier=1\n{expected_outputs}")
    );

    // Without GITHUB_OUTPUT the same lines go to stdout.
    let mut cmd = dir.command();
    in_actions(&mut cmd, "refs/heads/test/uat2", SHA);
    let stdout = cmd
        .args(["env", "--format", "github", "--timestamp", TS])
        .stdout();
    assert_eq!(stdout, expected_outputs);

    // Nothing to deploy: empty values, not missing keys.
    let mut cmd = dir.command();
    in_actions(&mut cmd, "refs/tags/nightly", SHA);
    let stdout = cmd
        .args(["env", "--format", "github", "--timestamp", TS])
        .stdout();
    assert_eq!(
        stdout,
        format!(
            "ref=refs/tags/nightly\nsha={SHA}\nenvironment=\ntag=\ntags=\n\
             lookup_tag=commit-{SHA}\nimage=\ntimestamp={TS}\n"
        )
    );
}

#[test]
fn flags_override_github_variables() {
    let dir = Dir::new();
    let other = "abcdef0123456789abcdef0123456789abcdef01";
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["--ref", "refs/tags/v2.0.0"],
            "refs/tags/v2.0.0",
            SHA,
            "production",
        ),
        (&["--sha", other], "refs/heads/test/uat2", other, "testing"),
        (
            &[
                "--ref",
                "main",
                "--sha",
                "ABCDEF0123456789ABCDEF0123456789ABCDEF01",
            ],
            "refs/heads/main",
            other,
            "staging",
        ),
    ];
    for (args, git_ref, sha, environment) in cases {
        let mut cmd = dir.command();
        in_actions(&mut cmd, "refs/heads/test/uat2", SHA);
        let got = cmd
            .args(["env", "--format", "json", "--timestamp", TS])
            .args(*args)
            .json();
        assert_eq!(got["ref"], *git_ref, "{args:?}");
        assert_eq!(got["sha"], *sha, "{args:?}");
        assert_eq!(got["environment"], *environment, "{args:?}");
    }
}

#[test]
fn github_actions_without_its_variables_is_a_usage_error() {
    let dir = Dir::git_repo_with_commit();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("GITHUB_ACTIONS", "true")], "GITHUB_REF"),
        (
            &[("GITHUB_ACTIONS", "true"), ("GITHUB_REF", "")],
            "GITHUB_REF",
        ),
        (
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/heads/main"),
            ],
            "GITHUB_SHA",
        ),
    ];
    for (vars, missing) in cases {
        let mut cmd = dir.command();
        for (key, value) in *vars {
            cmd.env(key, value);
        }
        let output = cmd
            .args(["env", "--format", "json", "--timestamp", TS])
            .expect_exit(2);
        let message = format!(
            "GITHUB_ACTIONS is true but {missing} is not set; pass --ref and --sha, or run inside a GitHub Actions job"
        );
        assert_eq!(
            String::from_utf8(output.stderr).unwrap(),
            format!("error: {message}\n")
        );
        // And once as a workflow command, so the run's page shows it.
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            format!("::error::{message}\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Shallow clones
// ---------------------------------------------------------------------------------------------

#[test]
fn linked_worktrees_work() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    let worktree = Dir::new();
    let path = worktree.join("wt");
    let path = path.to_str().expect("temp paths are UTF-8");
    dir.git(["worktree", "add", "--quiet", "-b", "test/uat9", path]);
    let got = worktree
        .command_in("wt")
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(got["ref"], "refs/heads/test/uat9");
    assert_eq!(got["sha"], sha.as_str());
    assert_eq!(got["environment"], "testing");
}

#[test]
fn shallow_clones_work() {
    let origin = Dir::git_repo_with_commit();
    origin.commit("second");
    let tagged = origin.commit("third");
    tag(&origin, "v1.2.3", TagKind::Annotated);
    let head = origin.commit("fourth");
    let url = format!("file://{}", origin.path().display());

    let clones = Dir::new();
    git_in(
        clones.path(),
        ["clone", "--quiet", "--depth", "1", &url, "branch"],
    );
    assert_eq!(
        git_in(
            &clones.join("branch"),
            ["rev-parse", "--is-shallow-repository"]
        ),
        "true"
    );
    let got = clones
        .command_in("branch")
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(got["ref"], "refs/heads/main");
    assert_eq!(got["sha"], head.as_str());
    assert_eq!(
        strings(&got["tags"]),
        [format!("stg-{}-{TS}", sha7(&head)), "stg-latest".to_owned()]
    );

    // As actions/checkout does for a tag push: one commit, detached at the tag.
    git_in(
        clones.path(),
        [
            "clone", "--quiet", "--depth", "1", "--branch", "v1.2.3", &url, "tag",
        ],
    );
    let got = clones
        .command_in("tag")
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(got["ref"], "refs/tags/v1.2.3");
    assert_eq!(got["sha"], tagged.as_str());
    assert_eq!(strings(&got["tags"]), ["prd-1.2.3", "prd-latest"]);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn not_a_git_repository() {
    let dir = Dir::new();
    let line = dir.command().args(["env", "--timestamp", TS]).usage_error();
    assert_eq!(
        line,
        format!(
            "error: {} is not in a git repository; run inside one, or pass both --ref and --sha",
            dir.path().display()
        )
    );
}

#[test]
fn a_repository_without_commits() {
    let dir = Dir::git_repo();
    let line = dir.command().args(["env", "--timestamp", TS]).usage_error();
    assert_eq!(
        line,
        "error: the repository has no commit yet; commit something first, or pass --sha"
    );
}

#[test]
fn a_detached_head_without_tags() {
    let dir = Dir::git_repo_with_commit();
    dir.git(["checkout", "--quiet", "--detach"]);
    let line = dir.command().args(["env", "--timestamp", TS]).usage_error();
    assert!(
        line.contains("HEAD is detached and no tag points at it"),
        "{line}"
    );
}

#[test]
fn bad_flag_values() {
    let dir = Dir::git_repo_with_commit();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--timestamp", "12"],
            "error: --timestamp 12 is not a 10-digit Unix time in seconds; give a value between 1000000000 and 9999999999",
        ),
        (
            &["--timestamp", "10000000000"],
            "error: --timestamp 10000000000 is not a 10-digit Unix time",
        ),
        (
            &["-p", "nosuchpkg"],
            "error: package `nosuchpkg` not found: there is no gitops.toml or Cargo.toml here or above",
        ),
        (
            &["--sha", "nosuchrev"],
            "error: --sha `nosuchrev` is not a commit in this repository",
        ),
        (
            &["--manifest-path", "nowhere/Cargo.toml"],
            "error: manifest `nowhere/Cargo.toml` does not exist",
        ),
    ];
    for (args, start) in cases {
        let line = dir.command().arg("env").args(*args).usage_error();
        assert!(line.starts_with(start), "{args:?}: {line}");
    }
}

#[test]
fn malformed_configuration() {
    let env_with = |fields: &str| {
        format!(
            "[workspace]\n\n[workspace.metadata.gitops]\n\n\
             [[workspace.metadata.gitops.environments]]\nname = \"staging\"\n{fields}\n"
        )
    };
    let key = "workspace.metadata.gitops.environments[0]";
    // (Cargo.toml, what the line says after the file name)
    let cases: Vec<(String, String)> = vec![
        (
            "[workspace]\n[workspace.metadata.gitops\nregistry = \"x\"\n".to_owned(),
            ":2: unclosed table, expected `]`".to_owned(),
        ),
        (
            env_with("formt = \"stg-{sha}-{timestamp}\""),
            format!(":7: {key}.formt: unknown field `formt`, expected one of"),
        ),
        (
            "[workspace.metadata.gitops]\nregistory = \"ghcr.io\"\n".to_owned(),
            ":2: workspace.metadata.gitops.registory: unknown field `registory`".to_owned(),
        ),
        (
            env_with("format = \"stg-{sha}\""),
            format!(": {key}.format: `stg-{{sha}}` cannot be ordered: add {{timestamp}}"),
        ),
        (
            env_with("format = \"stg-{timestamp}\""),
            format!(": {key}.format: `stg-{{timestamp}}` cannot identify the commit: add {{sha}}"),
        ),
        (
            env_with("format = \"stg+{sha}-{timestamp}\""),
            format!(": {key}.format: `stg+{{sha}}-{{timestamp}}`: character '+' is not allowed"),
        ),
        (
            env_with("format = \"stg-{shaa}-{timestamp}\""),
            format!(": {key}.format: `stg-{{shaa}}-{{timestamp}}`: unknown placeholder `{{shaa}}`"),
        ),
        (
            env_with("latest = \"stg-{sha}\""),
            format!(": {key}.latest: `stg-{{sha}}` uses {{sha}}, which changes with each deploy"),
        ),
        (
            env_with("branches = [\"main[\"]"),
            format!(": {key}.branches: `main[` is not a valid branch pattern"),
        ),
        (
            "[workspace.metadata.gitops]\nenvironments = []\n".to_owned(),
            ": workspace.metadata.gitops.environments: no environments are configured".to_owned(),
        ),
        (
            "[workspace.metadata.gitops]\nenvironments = [{ name = \"uat\", branches = [\"uat/*\"] }]\n"
                .to_owned(),
            ": workspace.metadata.gitops.environments[0].format: environment `uat` needs a `format`"
                .to_owned(),
        ),
    ];
    for (manifest, expected) in &cases {
        let dir = Dir::git_repo_with_commit();
        dir.create("Cargo.toml", manifest);
        let line = dir.command().args(["env", "--timestamp", TS]).usage_error();
        let file = dir.join("Cargo.toml");
        let prefix = format!("error: {}{expected}", file.display());
        assert!(
            line.starts_with(&prefix),
            "\n  got: {line}\n want: {prefix}…"
        );
    }
}

#[test]
fn a_bad_tag_regex_is_a_one_line_error() {
    let dir = Dir::git_repo_with_commit();
    dir.create(
        "Cargo.toml",
        "[workspace.metadata.gitops]\n\n[[workspace.metadata.gitops.environments]]\n\
         name = \"release\"\ntags = { regex = \"(\" }\nformat = \"rel-{sha}-{timestamp}\"\n",
    );
    let line = dir.command().args(["env", "--timestamp", TS]).usage_error();
    let prefix = format!(
        "error: {}: workspace.metadata.gitops.environments[0].tags.regex: `(` is not a valid regular expression",
        dir.join("Cargo.toml").display()
    );
    assert!(line.starts_with(&prefix), "{line}");
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// A repository whose one commit, on `main`, adds a `Cargo.toml` with `manifest`; and its sha.
fn configured_repo(manifest: &str) -> (Dir, String) {
    let dir = Dir::git_repo();
    dir.create("Cargo.toml", manifest);
    let sha = dir.commit("configured");
    (dir, sha)
}

/// For each (`--ref`, environment, tags), with `extra` flags, the deployment must be exactly that; `None` means
/// nothing to deploy (exit 0).
fn assert_routes(dir: &Dir, extra: &[&str], cases: &[(&str, Option<&str>, Vec<String>)]) {
    for (git_ref, environment, tags) in cases {
        let mut args = vec!["--ref", git_ref];
        if !extra.contains(&"--sha") {
            args.extend(["--sha", "HEAD"]);
        }
        args.extend_from_slice(extra);
        let got = env_json(dir, &args);
        assert_eq!(
            got["environment"].as_str(),
            *environment,
            "{git_ref} {extra:?}"
        );
        assert_eq!(strings(&got["tags"]), *tags, "{git_ref} {extra:?}");
    }
}

#[test]
fn configuration_overrides_adds_and_removes_environments() {
    let (dir, sha) = configured_repo(
        r#"
[workspace]

[workspace.metadata.gitops]
registry = "registry.example.com/acme"
image = "shop"

# Added, and listed first.
[[workspace.metadata.gitops.environments]]
name = "uat"
branches = ["uat/*"]
format = "uat-{name}-{sha}-{timestamp}"

# Overridden: same branches as the default, other format.
[[workspace.metadata.gitops.environments]]
name = "staging"
format = "staging-{timestamp}-{sha}"

[[workspace.metadata.gitops.environments]]
name = "production"

# testing, alpha, beta and development are left out.
"#,
    );
    let s = sha7(&sha);
    assert_routes(
        &dir,
        &[],
        &[
            (
                "main",
                Some("staging"),
                vec![format!("staging-{TS}-{s}"), "staging-latest".into()],
            ),
            (
                "uat/team-a",
                Some("uat"),
                vec![format!("uat-team-a-{s}-{TS}"), "uat-team-a-latest".into()],
            ),
            (
                "refs/tags/v1.2.3",
                Some("production"),
                vec!["prd-1.2.3".into(), "prd-latest".into()],
            ),
            ("feature/login", None, vec![]),
            ("test/uat1", None, vec![]),
            ("refs/tags/v1.1.0-alpha1", None, vec![]),
        ],
    );
    let got = env_json(&dir, &[]);
    assert_eq!(got["image"], "registry.example.com/acme/shop");

    // A feature branch says plainly that there is nothing to deploy.
    let output = dir
        .command()
        .args([
            "env",
            "--ref",
            "feature/login",
            "--sha",
            "HEAD",
            "--timestamp",
            TS,
        ])
        .expect_exit(0);
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "no environment tracks refs/heads/feature/login: nothing to deploy\n"
    );
}

#[test]
fn configured_order_decides_which_environment_wins() {
    let (dir, sha) = configured_repo(
        r#"
[workspace.metadata.gitops]
environments = [
    { name = "development" },
    { name = "staging" },
    { name = "testing" },
]
"#,
    );
    let s = sha7(&sha);
    // development (`**`) comes first, so it takes every branch.
    assert_routes(
        &dir,
        &[],
        &[
            (
                "main",
                Some("development"),
                vec![format!("dev-main-{s}-{TS}"), "dev-main-latest".into()],
            ),
            (
                "test/uat1",
                Some("development"),
                vec![
                    format!("dev-test--uat1-{s}-{TS}"),
                    "dev-test--uat1-latest".into(),
                ],
            ),
            ("refs/tags/v1.2.3", None, vec![]),
        ],
    );
}

#[test]
fn regex_tags_and_latest_off() {
    let (dir, sha) = configured_repo(
        r#"
[workspace.metadata.gitops]

[[workspace.metadata.gitops.environments]]
name = "production"

[[workspace.metadata.gitops.environments]]
name = "release"
tags = { regex = "^release-\\d+$" }
format = "rel-{sha}-{timestamp}"
latest = false

[[workspace.metadata.gitops.environments]]
name = "staging"
latest = false

[[workspace.metadata.gitops.environments]]
name = "development"
latest = "dev-{branch}-current"
"#,
    );
    let s = sha7(&sha);
    assert_routes(
        &dir,
        &[],
        &[
            (
                "refs/tags/release-7",
                Some("release"),
                vec![format!("rel-{s}-{TS}")],
            ),
            ("refs/tags/release-x", None, vec![]),
            ("refs/tags/prerelease-7", None, vec![]),
            (
                "refs/tags/v1.2.3",
                Some("production"),
                vec!["prd-1.2.3".into(), "prd-latest".into()],
            ),
            ("main", Some("staging"), vec![format!("stg-{s}-{TS}")]),
            (
                "feature/login",
                Some("development"),
                vec![
                    format!("dev-feature--login-{s}-{TS}"),
                    "dev-feature--login-current".into(),
                ],
            ),
        ],
    );
    // The same tag found on a detached HEAD.
    tag(&dir, "release-7", TagKind::Annotated);
    dir.git(["checkout", "--quiet", "--detach", "release-7"]);
    let got = env_json(&dir, &[]);
    assert_eq!(got["ref"], "refs/tags/release-7");
    assert_eq!(got["environment"], "release");
    assert_eq!(strings(&got["tags"]), [format!("rel-{s}-{TS}")]);
}

#[test]
fn build_args_give_a_lookup_tag_of_their_own() {
    let (dir, sha) = configured_repo(
        r#"
[workspace.metadata.gitops]

[[workspace.metadata.gitops.environments]]
name = "staging"
build-args = { PROFILE = "staging" }

[[workspace.metadata.gitops.environments]]
name = "testing"
build-args = {}

[[workspace.metadata.gitops.environments]]
name = "development"
build-args = { RUST_LOG = "debug", PROFILE = "staging" }
"#,
    );
    // 16 hex of the sha256 of the sorted pairs, each key and value preceded by its length as
    // 8 big-endian bytes (so no two sets of arguments share an encoding).
    for (git_ref, lookup) in [
        ("main", format!("commit-{sha}-30f5b685e61d6656")),
        ("feature/x", format!("commit-{sha}-1580be01c59cb9d6")),
        ("test/uat1", format!("commit-{sha}")),
    ] {
        let got = env_json(&dir, &["--sha", "HEAD", "--ref", git_ref]);
        assert_eq!(got["lookup_tag"], lookup, "{git_ref}");
        // The image tags themselves do not change.
        assert!(strings(&got["tags"])[0].ends_with(&format!("-{}-{TS}", sha7(&sha))));
    }
}

/// A workspace of three packages: `api` and `web` ship images, `common` does not.
fn workspace_with_packages() -> (Dir, String) {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        r#"
[workspace]
resolver = "3"
members = ["crates/*"]

[workspace.metadata.gitops]
registry = "registry.example.com/acme"
"#,
    );
    let package = |name: &str, metadata: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n{metadata}"
        )
    };
    dir.create(
        "crates/api/Cargo.toml",
        package("api", "[package.metadata.gitops]\nimage = \"shop-api\"\n"),
    );
    dir.create(
        "crates/web/Cargo.toml",
        package(
            "web",
            "[package.metadata.gitops]\nimage = \"shop-web\"\n\n\
             [[package.metadata.gitops.environments]]\nname = \"staging\"\n\
             format = \"web-{sha}-{timestamp}\"\n",
        ),
    );
    dir.create("crates/common/Cargo.toml", package("common", ""));
    let sha = dir.commit("workspace");
    (dir, sha)
}

#[test]
fn package_metadata_is_chosen_with_p() {
    let (dir, sha) = workspace_with_packages();
    let s = sha7(&sha);
    assert_routes(
        &dir,
        &["-p", "web"],
        &[
            (
                "main",
                Some("staging"),
                vec![format!("web-{s}-{TS}"), "web-latest".into()],
            ),
            // web's environments replace the defaults entirely.
            ("feature/x", None, vec![]),
        ],
    );
    assert_routes(
        &dir,
        &["--package", "api"],
        &[(
            "main",
            Some("staging"),
            vec![format!("stg-{s}-{TS}"), "stg-latest".into()],
        )],
    );
    // A package without a table of its own: the workspace's settings.
    assert_routes(
        &dir,
        &["-p", "common"],
        &[(
            "feature/x",
            Some("development"),
            vec![
                format!("dev-feature--x-{s}-{TS}"),
                "dev-feature--x-latest".into(),
            ],
        )],
    );
    for (package, git_ref, image) in [
        ("web", "main", "registry.example.com/acme/shop-web"),
        ("web", "feature/x", "registry.example.com/acme/shop-web"),
        ("api", "main", "registry.example.com/acme/shop-api"),
        // No image configured: the package's name.
        ("common", "main", "registry.example.com/acme/common"),
    ] {
        let got = env_json(&dir, &["-p", package, "--sha", "HEAD", "--ref", git_ref]);
        assert_eq!(got["image"], image, "-p {package} --ref {git_ref}");
    }

    // Inside a package's directory, that package is the one.
    let got = dir
        .command_in("crates/web")
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(got["image"], "registry.example.com/acme/shop-web");
    assert_eq!(strings(&got["tags"])[0], format!("web-{s}-{TS}"));
}

#[test]
fn several_shipping_packages_show_as_a_set_without_p() {
    let (dir, _) = workspace_with_packages();
    let got = dir
        .command()
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    let packages: Vec<&str> = got["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["package"].as_str().unwrap())
        .collect();
    assert_eq!(packages, ["api", "web"], "{got}");
    // GitLab's dotenv report is one image's.
    let line = dir
        .command()
        .args(["env", "--format", "gitlab", "--timestamp", TS])
        .usage_error();
    assert!(line.contains("add -p NAME"), "{line}");
    let line = dir
        .command()
        .args(["env", "-p", "nosuchpkg", "--timestamp", TS])
        .usage_error();
    assert!(
        line.starts_with("error: package `nosuchpkg` is not in the workspace at "),
        "{line}"
    );
    assert!(line.ends_with("known packages: api, common, web"), "{line}");
}

#[test]
fn without_cargo_toml_the_defaults_apply() {
    let dir = Dir::git_repo_with_commit();
    let sha = dir.head();
    assert!(!dir.join("Cargo.toml").exists());
    let s = sha7(&sha);
    assert_routes(
        &dir,
        &[],
        &[
            (
                "refs/tags/v1.2.3",
                Some("production"),
                vec!["prd-1.2.3".into(), "prd-latest".into()],
            ),
            (
                "refs/tags/v1.1.0-alpha1",
                Some("alpha"),
                vec!["prd-1.1.0-alpha1".into(), "prd-alpha-latest".into()],
            ),
            (
                "refs/tags/v1.0.3-beta2",
                Some("beta"),
                vec!["prd-1.0.3-beta2".into(), "prd-beta-latest".into()],
            ),
            (
                "test/uat1",
                Some("testing"),
                vec![format!("tst-uat1-{s}-{TS}"), "tst-uat1-latest".into()],
            ),
            (
                "main",
                Some("staging"),
                vec![format!("stg-{s}-{TS}"), "stg-latest".into()],
            ),
            (
                "feature/login",
                Some("development"),
                vec![
                    format!("dev-feature--login-{s}-{TS}"),
                    "dev-feature--login-latest".into(),
                ],
            ),
            ("refs/tags/nightly", None, vec![]),
            ("refs/pull/4/merge", None, vec![]),
        ],
    );
    // From a subdirectory too: the repository is found above.
    dir.create_dir("src/deep");
    let got = dir
        .command_in("src/deep")
        .args(["env", "--format", "json", "--timestamp", TS])
        .json();
    assert_eq!(got["environment"], "staging");
    assert_eq!(got["image"], Value::Null);
}

#[test]
fn a_root_package_listed_as_its_own_workspace_member_is_one_package() {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\nregistry = \"ghcr.io/acme\"\n\n[workspace]\nmembers = [\".\", \"lib\"]\n",
    );
    dir.create(
        "lib/Cargo.toml",
        "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    dir.create("src/main.rs", "fn main() {}\n");
    dir.create("lib/src/lib.rs", "\n");
    dir.commit("app and its library");
    let env = env_json(&dir, &[]);
    assert_eq!(env["image"], "ghcr.io/acme/app", "{env}");
}

/// GitHub Pages' and the update bots' branches (pushed with read-only tokens) deploy nowhere
/// by default; `exclude-branches` replaces the list, and `[]` lets development take them.
#[test]
fn pages_and_bot_branches_deploy_nowhere_unless_exclude_branches_says_otherwise() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let environment = |dir: &Dir, branch: &str| {
        env_json(dir, &["--ref", branch, "--sha", sha])["environment"].clone()
    };
    let defaults = Dir::new();
    for branch in ["gh-pages", "dependabot/cargo/serde-1.0.200", "renovate/all"] {
        assert_eq!(environment(&defaults, branch), Value::Null, "{branch}");
    }
    assert_eq!(
        environment(&defaults, "gh-pages-preview"),
        json!("development")
    );
    assert_eq!(environment(&defaults, "feature/x"), json!("development"));

    let own = Dir::new();
    own.create(
        "gitops.toml",
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\nexclude-branches = [\"wip/**\"]\n",
    );
    assert_eq!(environment(&own, "wip/a"), Value::Null);
    assert_eq!(environment(&own, "dependabot/x"), json!("development"));
    // An explicit branch is never excluded: staging keeps `main` whatever the list says.
    let main = Dir::new();
    main.create(
        "gitops.toml",
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\nexclude-branches = [\"main\"]\n",
    );
    assert_eq!(environment(&main, "main"), json!("staging"));
}

/// A repository whose default branch is not `main`: staging follows the branch the CI names as
/// default (GitLab's `CI_DEFAULT_BRANCH`, GitHub's event payload), else `origin/HEAD`, and the
/// generated triggers with it; with neither and no `main`, every `env` warns.
#[test]
fn staging_follows_the_default_branch_when_it_is_not_main() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    // A clone of a repository whose HEAD is `master`.
    let upstream = Dir::git_repo();
    upstream.git(["checkout", "-q", "-b", "master"]);
    upstream.create(
        "gitops.toml",
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\n",
    );
    upstream.commit("first");
    let clone_parent = Dir::new();
    let clone = clone_parent.join("clone");
    clone_parent.git([
        "clone",
        "-q",
        upstream.path().to_str().unwrap(),
        clone.to_str().unwrap(),
    ]);
    let env_in = |args: &[&str], vars: &[(&str, &str)]| {
        let mut command = TestCommand::new(&clone);
        command
            .args(["env", "--format", "json", "--timestamp", TS])
            .args(args);
        for (key, value) in vars {
            command.env(key, value);
        }
        command.json()
    };
    assert_eq!(env_in(&[], &[])["environment"], json!("staging"));
    assert_eq!(
        env_in(&["--ref", "main", "--sha", sha], &[])["environment"],
        json!("development")
    );
    // The CI's word wins over origin/HEAD.
    let gitlab = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_BRANCH", "trunk"),
        ("CI_COMMIT_SHA", sha),
        ("CI_DEFAULT_BRANCH", "trunk"),
    ];
    assert_eq!(env_in(&[], &gitlab)["environment"], json!("staging"));
    let event = clone_parent.join("event.json");
    std::fs::write(&event, r#"{"repository": {"default_branch": "develop"}}"#).unwrap();
    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REF", "refs/heads/develop"),
        ("GITHUB_SHA", sha),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
    ];
    assert_eq!(env_in(&[], &github)["environment"], json!("staging"));

    // The generated staging workflow triggers on `master`.
    std::fs::write(
        clone.join("gitops.toml"),
        format!(
            "registry = \"ghcr.io/acme\"\nimage = \"web\"\n\n[install.sha256]\nx86_64-unknown-linux-musl = \"{}\"\n",
            "a".repeat(64)
        ),
    )
    .unwrap();
    TestCommand::new(&clone)
        .args(["init-workflows", "-q"])
        .expect_exit(0);
    let staging =
        std::fs::read_to_string(clone.join(".github/workflows/gitops-staging.yml")).unwrap();
    assert!(
        staging.contains("branches:\n      - \"master\"\n"),
        "{staging}"
    );
    let development =
        std::fs::read_to_string(clone.join(".github/workflows/gitops-development.yml")).unwrap();
    assert!(development.contains("- \"!master\""), "{development}");

    // No main, no origin/HEAD: a warning on every run.
    let lone = Dir::git_repo();
    lone.git(["checkout", "-q", "-b", "master"]);
    lone.create(
        "gitops.toml",
        "registry = \"ghcr.io/acme\"\nimage = \"web\"\n",
    );
    lone.commit("first");
    let output = lone
        .command()
        .args(["env", "--timestamp", TS])
        .expect_exit(0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: staging follows `main`, which this repository does not have"),
        "{stderr}"
    );
}
