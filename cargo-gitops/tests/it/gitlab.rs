//! `cargo gitops init-workflows --ci gitlab`: snapshots of the generated GitLab CI file, GitLab's
//! own schema (check-jsonschema), the drift check, the values that would reach YAML or a shell
//! line, and the rule logic itself: a small evaluator of `rules:` as GitLab documents them
//! (first match wins, `when: never`, `== != =~ !~ && ||`, parentheses, an undefined variable is
//! null and matches as "") runs each job's rules for a table of refs, and the jobs that would
//! run must be exactly the one of the environment `cargo gitops env` picks, or none.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::Dir;
use yaml_rust2::{Yaml, YamlLoader};

const SHA: &str = "b4b9fda0123456789abcdef0123456789abcdef0";
const PIN: &str = "0f4c1d2e3b4a59687766554433221100ffeeddccbbaa99887766554433221100";

fn default_config() -> String {
    format!(
        r#"[workspace]

[workspace.metadata.gitops]
registry = "registry.gitlab.com/acme"
image = "shop"
ci = ["gitlab"]

[workspace.metadata.gitops.install.sha256]
x86_64-unknown-linux-musl = "{PIN}"
aarch64-unknown-linux-musl = "{PIN}"
"#
    )
}

/// Testing environments of their own, a `sit/**` glob, a regex tag environment, podman, another
/// registry with a login from CI/CD variables, a stage and a job image of its own.
fn custom_config() -> String {
    format!(
        r#"[workspace]

[workspace.metadata.gitops]
registry = "registry.example.com/team"
image = "shop"
builder = "podman"
ci = ["github", "gitlab"]
# GitHub's login and install pins, for the workflows written beside the GitLab file.
registry-secrets = {{ username = "REGISTRY_USER", password = "REGISTRY_PASSWORD" }}

[workspace.metadata.gitops.install]
base-url = "https://downloads.example.com/cargo-gitops"

[workspace.metadata.gitops.install.sha256]
x86_64-unknown-linux-musl = "{PIN}"
aarch64-unknown-linux-musl = "{PIN}"
x86_64-apple-darwin = "{PIN}"
aarch64-apple-darwin = "{PIN}"

[workspace.metadata.gitops.gitlab]
image = "quay.io/podman/stable:v5@sha256:{PIN}"
stage = "release"
registry-variables = {{ username = "REGISTRY_USER", password = "REGISTRY_PASSWORD" }}


[[workspace.metadata.gitops.environments]]
name = "production"

[[workspace.metadata.gitops.environments]]
name = "alpha"

[[workspace.metadata.gitops.environments]]
name = "releases"
tags = {{ regex = "release-[0-9]+" }}
format = "rel-{{sha}}-{{timestamp}}"

[[workspace.metadata.gitops.environments]]
name = "uat1"
branches = ["test/uat1"]
format = "uat1-{{sha}}-{{timestamp}}"

[[workspace.metadata.gitops.environments]]
name = "testing"
branches = ["test/*"]

[[workspace.metadata.gitops.environments]]
name = "sit"
branches = ["sit/**"]
format = "sit-{{branch}}-{{sha}}-{{timestamp}}"

[[workspace.metadata.gitops.environments]]
name = "staging"

[[workspace.metadata.gitops.environments]]
name = "development"
"#
    )
}

/// A temp repository with `config` as its Cargo.toml and one commit.
fn repository(config: &str) -> Dir {
    let dir = Dir::git_repo();
    dir.create("Cargo.toml", config);
    dir.commit("first");
    dir
}

const GENERATED: &str = ".gitlab/gitops.gitlab-ci.yml";

/// Generates into `dir` and returns the generated file.
fn generate(dir: &Dir) -> String {
    dir.command()
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .expect_exit(0);
    std::fs::read_to_string(dir.join(GENERATED)).unwrap()
}

#[test]
fn snapshots() {
    let dir = repository(&default_config());
    insta::assert_snapshot!("gitlab__default", generate(&dir));
    insta::assert_snapshot!(
        "gitlab__root",
        std::fs::read_to_string(dir.join(".gitlab-ci.yml")).unwrap()
    );
    let dir = repository(&custom_config());
    insta::assert_snapshot!("gitlab__custom", generate(&dir));
}

pub(crate) fn check_jsonschema(dir: &Path, files: &[&str]) {
    let output = Command::new("check-jsonschema")
        .args([
            "--builtin-schema",
            "vendor.gitlab-ci",
            "--data-transform",
            "gitlab-ci",
            "--regex-variant",
            "nonunicode",
        ])
        .args(files)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("check-jsonschema must be installed (.ci/test installs it): {e}")
        });
    assert!(
        output.status.success(),
        "check-jsonschema failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn generated_files_pass_gitlabs_schema() {
    for config in [default_config(), custom_config()] {
        let dir = repository(&config);
        generate(&dir);
        check_jsonschema(dir.path(), &[GENERATED, ".gitlab-ci.yml"]);
    }
}

#[test]
fn the_schema_check_catches_a_broken_file() {
    let dir = Dir::new();
    dir.create(
        "bad.gitlab-ci.yml",
        "job:\n  script: 1\n  rules: [{when: sometimes}]\n",
    );
    let status = Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.gitlab-ci", "bad.gitlab-ci.yml"])
        .current_dir(dir.path())
        .output()
        .expect("check-jsonschema runs");
    assert!(!status.status.success());
}

// ---------------------------------------------------------------------------------------------
// The rule evaluator
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Variable(String),
    Text(String),
    Pattern(String, String),
    Null,
    Op(&'static str),
    Open,
    Close,
}

fn tokenize(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if c.is_whitespace() {
            i += 1;
        } else if let Some(op) = ["==", "!=", "=~", "!~", "&&", "||"]
            .into_iter()
            .find(|op| *op == two)
        {
            tokens.push(Token::Op(op));
            i += 2;
        } else if c == '(' {
            tokens.push(Token::Open);
            i += 1;
        } else if c == ')' {
            tokens.push(Token::Close);
            i += 1;
        } else if c == '$' {
            let start = i + 1;
            i = start;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Variable(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            // GitLab's string literals have no escapes.
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .expect("closed string")
                + i
                + 1;
            tokens.push(Token::Text(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if c == '/' {
            let mut j = i + 1;
            let mut body = String::new();
            while chars[j] != '/' {
                if chars[j] == '\\' {
                    body.push(chars[j]);
                    j += 1;
                }
                body.push(chars[j]);
                j += 1;
            }
            j += 1;
            let mut flags = String::new();
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                flags.push(chars[j]);
                j += 1;
            }
            tokens.push(Token::Pattern(body, flags));
            i = j;
        } else if expr[i..].starts_with("null") {
            tokens.push(Token::Null);
            i += 4;
        } else {
            panic!("unexpected `{c}` in {expr}");
        }
    }
    tokens
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Text(String),
    Pattern(String, String),
    Bool(bool),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Text(text) => !text.is_empty(),
            Value::Pattern(..) => true,
            Value::Bool(b) => *b,
        }
    }
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    vars: &'a BTreeMap<&'a str, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Token {
        self.at += 1;
        self.tokens[self.at - 1].clone()
    }

    fn or(&mut self) -> Value {
        let mut value = self.and();
        while self.peek() == Some(&Token::Op("||")) {
            self.next();
            let right = self.and();
            value = Value::Bool(value.truthy() || right.truthy());
        }
        value
    }

    fn and(&mut self) -> Value {
        let mut value = self.comparison();
        while self.peek() == Some(&Token::Op("&&")) {
            self.next();
            let right = self.comparison();
            value = Value::Bool(value.truthy() && right.truthy());
        }
        value
    }

    fn comparison(&mut self) -> Value {
        let left = self.operand();
        let op = match self.peek() {
            Some(Token::Op(op)) if ["==", "!=", "=~", "!~"].contains(op) => *op,
            _ => return left,
        };
        self.next();
        let right = self.operand();
        let matches = |left: &Value, right: &Value| {
            let Value::Pattern(body, flags) = right else {
                panic!("=~ takes a /pattern/ on the right, got {right:?}")
            };
            let text = match left {
                Value::Text(text) => text.clone(),
                // An undefined variable is matched as "".
                Value::Null => String::new(),
                other => panic!("cannot match {other:?}"),
            };
            let prefix = if flags.contains('i') { "(?i)" } else { "" };
            regex::Regex::new(&format!("{prefix}{body}"))
                .unwrap_or_else(|e| panic!("/{body}/ is not valid: {e}"))
                .is_match(&text)
        };
        Value::Bool(match op {
            "==" => left == right,
            "!=" => left != right,
            "=~" => matches(&left, &right),
            "!~" => !matches(&left, &right),
            _ => unreachable!(),
        })
    }

    fn operand(&mut self) -> Value {
        match self.next() {
            Token::Open => {
                let value = self.or();
                assert_eq!(self.next(), Token::Close);
                value
            }
            Token::Variable(name) => self
                .vars
                .get(name.as_str())
                .map_or(Value::Null, |v| Value::Text(v.clone())),
            Token::Text(text) => Value::Text(text),
            Token::Pattern(body, flags) => Value::Pattern(body, flags),
            Token::Null => Value::Null,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `rules:if` as GitLab evaluates it.
fn evaluate(expr: &str, vars: &BTreeMap<&str, String>) -> bool {
    let mut parser = Parser {
        tokens: tokenize(expr),
        at: 0,
        vars,
    };
    let value = parser.or();
    assert_eq!(parser.at, parser.tokens.len(), "trailing tokens in {expr}");
    value.truthy()
}

/// The jobs of a pipeline GitLab would create for these variables: per job, the first rule
/// that matches decides (`when: never` drops the job), and a job no rule matches is not added.
fn jobs_that_run(pipeline: &Yaml, vars: &BTreeMap<&str, String>) -> Vec<String> {
    let mut jobs = Vec::new();
    for (key, job) in pipeline.as_hash().expect("a mapping") {
        let name = key.as_str().expect("string keys");
        if name.starts_with('.') || job["rules"].is_badvalue() {
            continue;
        }
        let decided =
            job["rules"]
                .as_vec()
                .expect("rules is a list")
                .iter()
                .find(|rule| match rule["if"].as_str() {
                    Some(expr) => evaluate(expr, vars),
                    None => true,
                });
        if let Some(rule) = decided
            && rule["when"].as_str() != Some("never")
        {
            jobs.push(name.to_owned());
        }
    }
    jobs
}

/// The predefined variables of a push pipeline of `git_ref`.
fn pipeline_variables(git_ref: &str) -> BTreeMap<&'static str, String> {
    let mut vars = BTreeMap::from([("CI_PIPELINE_SOURCE", "push".to_owned())]);
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        vars.insert("CI_COMMIT_TAG", tag.to_owned());
        vars.insert("CI_COMMIT_REF_NAME", tag.to_owned());
    } else {
        let branch = git_ref.strip_prefix("refs/heads/").unwrap();
        vars.insert("CI_COMMIT_BRANCH", branch.to_owned());
        vars.insert("CI_COMMIT_REF_NAME", branch.to_owned());
    }
    vars
}

#[test]
fn the_evaluator_follows_gitlabs_documented_semantics() {
    let vars = BTreeMap::from([("A", "main".to_owned()), ("EMPTY", String::new())]);
    let cases = [
        ("$A", true),
        ("$EMPTY", false),
        ("$UNDEFINED", false),
        ("$UNDEFINED == null", true),
        ("$UNDEFINED == \"\"", false),
        ("$UNDEFINED != \"\"", true),
        ("$EMPTY == \"\"", true),
        ("$UNDEFINED =~ /^v/", false),
        ("$UNDEFINED !~ /^v/", true),
        ("$UNDEFINED =~ /^.*$/", true),
        ("$A == 'main'", true),
        ("$A =~ /^MAIN$/i", true),
        ("$A =~ /^MAIN$/", false),
        ("$A == \"x\" || $A == \"main\" && $EMPTY", false),
        ("($A == \"x\" || $A == \"main\") && $A", true),
        ("$A =~ /^ma\\x69n$/", true),
        ("$A =~ /^m\\/?ain$/", true),
    ];
    for (expr, expected) in cases {
        assert_eq!(evaluate(expr, &vars), expected, "{expr}");
    }
}

/// Asserts, for each ref, that the jobs GitLab would run are the job of the environment
/// `cargo gitops env` picks, or none.
fn assert_rules_agree_with_env(config: &str, refs: &[&str]) {
    let dir = repository(config);
    let pipeline = &YamlLoader::load_from_str(&generate(&dir)).unwrap()[0];
    for git_ref in refs {
        let expected: Vec<String> = {
            let got = dir
                .command()
                .args(["env", "--format", "json", "--ref", git_ref, "--sha", SHA])
                .json();
            got["environment"]
                .as_str()
                .map(|env| format!("gitops-{env}"))
                .into_iter()
                .collect()
        };
        let running = jobs_that_run(pipeline, &pipeline_variables(git_ref));
        assert_eq!(running, expected, "{git_ref}");
    }
}

const REFS: &[&str] = &[
    "refs/heads/main",
    "refs/heads/test/uat1",
    "refs/heads/test/uat2",
    "refs/heads/test/a/b",
    "refs/heads/feature/x",
    "refs/heads/main-fix",
    "refs/heads/test",
    "refs/heads/sit/a/b",
    "refs/heads/sit",
    "refs/heads/v1.2.3",
    "refs/heads/release-1",
    "refs/heads/gh-pages",
    "refs/heads/dependabot/cargo/serde-1.0.200",
    "refs/heads/renovate/all",
    "refs/heads/gh-pages-preview",
    "refs/tags/v1.2.3",
    "refs/tags/1.2.3",
    "refs/tags/v1.2.3+build.5",
    "refs/tags/v1.2.3-alpha.1",
    "refs/tags/v1.1.0-alpha1",
    "refs/tags/1.2.3-beta2",
    "refs/tags/v1.2.3-rc1",
    "refs/tags/nightly",
    "refs/tags/v01.2.3",
    "refs/tags/release-1",
    "refs/tags/release-x",
    "refs/tags/main",
];

#[test]
fn default_rules_run_exactly_the_job_env_picks() {
    assert_rules_agree_with_env(&default_config(), REFS);
}

#[test]
fn custom_rules_run_exactly_the_job_env_picks() {
    assert_rules_agree_with_env(&custom_config(), REFS);
}

#[test]
fn merge_request_pipelines_run_no_deployment_job() {
    let dir = repository(&default_config());
    let pipeline = &YamlLoader::load_from_str(&generate(&dir)).unwrap()[0];
    let vars = BTreeMap::from([
        ("CI_PIPELINE_SOURCE", "merge_request_event".to_owned()),
        ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "main".to_owned()),
        ("CI_COMMIT_REF_NAME", "main".to_owned()),
    ]);
    assert_eq!(jobs_that_run(pipeline, &vars), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// What each job declares
// ---------------------------------------------------------------------------------------------

#[test]
fn jobs_name_their_environment_tier_and_resource_group() {
    let dir = repository(&default_config());
    let pipeline = &YamlLoader::load_from_str(&generate(&dir)).unwrap()[0];
    let cases = [
        ("production", "production", "gitops-production", false),
        ("alpha", "production", "gitops-alpha", false),
        (
            "testing",
            "testing",
            "gitops-testing-$CI_COMMIT_REF_SLUG",
            true,
        ),
        ("staging", "staging", "gitops-staging", false),
        (
            "development",
            "development",
            "gitops-development-$CI_COMMIT_REF_SLUG",
            true,
        ),
    ];
    for (env, tier, group, interruptible) in cases {
        let job = &pipeline[format!("gitops-{env}").as_str()];
        assert_eq!(job["extends"].as_str(), Some(".gitops"), "{env}");
        assert_eq!(job["environment"]["name"].as_str(), Some(env));
        assert_eq!(job["environment"]["deployment_tier"].as_str(), Some(tier));
        assert_eq!(job["resource_group"].as_str(), Some(group));
        assert_eq!(
            job["interruptible"].as_bool().unwrap_or(false),
            interruptible
        );
        assert_eq!(job["variables"]["GITOPS_ENVIRONMENT"].as_str(), Some(env));
    }
    let base = &pipeline[".gitops"];
    let image = base["image"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^docker:[0-9.]+-cli@sha256:[0-9a-f]{64}$")
            .unwrap()
            .is_match(image),
        "{image}"
    );
    assert_eq!(
        base["variables"]["GITOPS_SHA256_X86_64_UNKNOWN_LINUX_MUSL"].as_str(),
        Some(PIN)
    );
    assert_eq!(
        base["artifacts"]["reports"]["dotenv"].as_str(),
        Some("gitops.env")
    );
    let scripts: Vec<&str> = base["before_script"]
        .as_vec()
        .unwrap()
        .iter()
        .chain(base["script"].as_vec().unwrap())
        .map(|s| s.as_str().unwrap())
        .collect();
    let all = scripts.join("\n");
    assert!(all.contains("but the workflow pins $want"), "{all}");
    assert!(
        all.contains(
            "docker login --username \"$CI_REGISTRY_USER\" --password-stdin \"$CI_REGISTRY\""
        ),
        "{all}"
    );
    assert!(
        all.contains(
            "cargo-gitops build --environment \"$GITOPS_ENVIRONMENT\" --format gitlab --dotenv gitops.env"
        ),
        "{all}"
    );
}

/// What a job image ships, as far as the install fragment is concerned: Alpine's busybox
/// (docker:cli, the default job image: wget, no curl, no bash), a full Debian Rust image
/// (curl and bash), and a slim one without apt-get to fall back on (neither downloader).
const ALPINE_BUSYBOX: &[&str] = &[
    "sh",
    "wget",
    "tar",
    "gzip",
    "sha256sum",
    "mktemp",
    "sed",
    "tail",
    "head",
    "cut",
    "uname",
    "cp",
    "mkdir",
    "id",
    "cat",
];
const DEBIAN_WITH_CURL: &[&str] = &[
    "bash",
    "sh",
    "curl",
    "tar",
    "gzip",
    "sha256sum",
    "mktemp",
    "sed",
    "tail",
    "head",
    "cut",
    "uname",
    "cp",
    "mkdir",
    "id",
    "cat",
];
const NO_DOWNLOADER: &[&str] = &[
    "bash",
    "sh",
    "tar",
    "gzip",
    "sha256sum",
    "mktemp",
    "sed",
    "tail",
    "head",
    "cut",
    "uname",
    "cp",
    "mkdir",
    "id",
    "cat",
];

/// The job's install fragment and variables, for a configuration pinning `sha` for this
/// machine's Linux target.
fn install_fragment(sha: &str) -> (String, BTreeMap<String, String>) {
    let config = default_config().replace(
        &format!("x86_64-unknown-linux-musl = \"{PIN}\""),
        &format!("x86_64-unknown-linux-musl = \"{sha}\""),
    );
    let dir = repository(&config);
    let pipeline = &YamlLoader::load_from_str(&generate(&dir)).unwrap()[0];
    let install = pipeline[".gitops"]["before_script"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .find(|s| s.contains("GITOPS_RELEASE_BASE_URL"))
        .expect("an install fragment")
        .to_owned();
    let variables = pipeline[".gitops"]["variables"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (install, variables)
}

/// Runs the fragment as a GitLab job's shell would, with only `programs` on PATH and the
/// release served at `base`; the binary goes into `into` instead of /usr/local/bin.
fn run_fragment(
    fragment: &str,
    variables: &BTreeMap<String, String>,
    programs: &[&str],
    base: &str,
    into: &Path,
) -> std::process::Output {
    let (_bin, path) = crate::support::path_with_only(programs);
    let shell = if programs.contains(&"bash") {
        "bash"
    } else {
        "sh"
    };
    let temp = Dir::new();
    Command::new(Path::new(&path).join(shell))
        .arg("-c")
        .arg(fragment)
        .env_clear()
        .env("PATH", &path)
        .env("TMPDIR", temp.path())
        .env("GITLAB_CI", "true")
        .envs(variables)
        .env("GITOPS_RELEASE_BASE_URL", base)
        .env("GITOPS_INSTALL_DIR", into)
        .output()
        .unwrap()
}

#[test]
fn the_install_fragment_installs_the_release_on_each_default_job_image() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let releases = Dir::new();
    let (archive, sha) = crate::workflow_install::release(
        releases.path(),
        "x86_64-unknown-linux-musl",
        env!("CARGO_PKG_VERSION"),
    );
    // The release workflow's layout, under the name install.rs defines once.
    assert!(archive.ends_with(format!(
        "cargo-gitops-v{0}/cargo-gitops-x86_64-unknown-linux-musl-v{0}.tar.gz",
        env!("CARGO_PKG_VERSION")
    )));
    let base = crate::workflow_install::serve(releases.path());
    let (fragment, variables) = install_fragment(&sha);
    assert_eq!(variables["GITOPS_INSTALL_DIR"], "/usr/local/bin");
    assert!(
        !variables.contains_key("GITOPS_INSTALL_URL"),
        "{variables:?}"
    );
    assert!(
        !variables.keys().any(|k| k.ends_with("_APPLE_DARWIN")),
        "{variables:?}"
    );
    for programs in [ALPINE_BUSYBOX, DEBIAN_WITH_CURL] {
        let into = Dir::new();
        let output = run_fragment(&fragment, &variables, programs, &base, into.path());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{programs:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("installed cargo-gitops 0.1.0 for x86_64-unknown-linux-musl"));
        let version = Command::new(into.join("cargo-gitops"))
            .arg("--version")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            "cargo-gitops 0.1.0"
        );
    }
}

#[test]
fn the_install_fragment_refuses_a_tampered_archive_and_a_missing_downloader_with_one_line() {
    if std::env::consts::ARCH != "x86_64" {
        return;
    }
    let releases = Dir::new();
    crate::workflow_install::release(
        releases.path(),
        "x86_64-unknown-linux-musl",
        env!("CARGO_PKG_VERSION"),
    );
    let base = crate::workflow_install::serve(releases.path());
    let (fragment, variables) = install_fragment(PIN);
    let cases: [(&[&str], &str); 2] = [
        (ALPINE_BUSYBOX, &format!("but the workflow pins {PIN}")),
        (NO_DOWNLOADER, "the image has neither curl nor wget"),
    ];
    for (programs, needle) in cases {
        let into = Dir::new();
        let output = run_fragment(&fragment, &variables, programs, &base, into.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: install cargo-gitops: "),
            "{stderr}"
        );
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!into.join("cargo-gitops").exists());
    }
}

// ---------------------------------------------------------------------------------------------
// Drift, the root pipeline, configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn drift_is_checked_like_the_github_workflows() {
    let dir = repository(&default_config());
    generate(&dir);
    let (_, stderr) = dir
        .command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .succeeds();
    assert_eq!(stderr, "1 workflows are up to date\n");
    // The config's `ci` chooses the same set without the flag.
    dir.command()
        .args(["init-workflows", "--check"])
        .expect_exit(0);
    let path = dir.join(GENERATED);
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("when: never", "when: always");
    std::fs::write(&path, edited).unwrap();
    let output = dir
        .command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .expect_exit(1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("--- a/{GENERATED}\n+++ b/{GENERATED}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("-      when: always\n+      when: never\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "error: 1 generated file(s) differ from what the configuration generates; run `cargo gitops init-workflows --ci gitlab` and commit the result\n"
    );
}

#[test]
fn the_root_pipeline_is_written_once_and_never_overwritten() {
    let dir = repository(&default_config());
    generate(&dir);
    let root = std::fs::read_to_string(dir.join(".gitlab-ci.yml")).unwrap();
    assert!(
        root.contains("include:\n  - local: .gitlab/gitops.gitlab-ci.yml\n"),
        "{root}"
    );
    std::fs::write(dir.join(".gitlab-ci.yml"), "test:\n  script: [make]\n").unwrap();
    let (_, stderr) = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .succeeds();
    assert_eq!(
        std::fs::read_to_string(dir.join(".gitlab-ci.yml")).unwrap(),
        "test:\n  script: [make]\n"
    );
    assert!(
        stderr.contains("warning: .gitlab-ci.yml does not mention .gitlab/gitops.gitlab-ci.yml"),
        "{stderr}"
    );
}

#[test]
fn both_cis_from_the_config_and_github_unchanged() {
    let dir = repository(&custom_config());
    dir.command().args(["init-workflows", "-q"]).expect_exit(0);
    assert!(dir.join(GENERATED).is_file());
    assert!(dir.join(".github/workflows/gitops-pipeline.yml").is_file());
    // --ci gitlab alone leaves the GitHub workflows alone, and does not call them stale.
    dir.command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .expect_exit(0);
}

#[test]
fn values_that_would_reach_yaml_or_a_shell_line_are_refused() {
    let digest = "0".repeat(64);
    let cases: Vec<(String, &str)> = vec![
        (
            "[workspace.metadata.gitops.gitlab]\nimage = \"docker:27-cli\"".to_owned(),
            "workspace.metadata.gitops.gitlab.image: `docker:27-cli` is not an image pinned by digest; write NAME[:TAG]@sha256:<64 hex>",
        ),
        (
            format!(
                "[workspace.metadata.gitops.gitlab]\nservices = [\"docker@sha256:{digest}\\nx: y\"]"
            ),
            "workspace.metadata.gitops.gitlab.services: `docker@sha256:0000000000000000000000000000000000000000000000000000000000000000\\nx: y` is not an image pinned by digest; write NAME[:TAG]@sha256:<64 hex>",
        ),
        (
            "[workspace.metadata.gitops.gitlab]\nregistry-variables = { username = \"U; rm -rf /\", password = \"P\" }".to_owned(),
            "workspace.metadata.gitops.gitlab.registry-variables: `U; rm -rf /` is not a CI/CD variable name; use letters, digits and `_`, not starting with a digit",
        ),
        (
            "[workspace.metadata.gitops.gitlab]\ninstall-url = \"https://x.example/$CI_JOB_TOKEN\"".to_owned(),
            "workspace.metadata.gitops.gitlab.install-url: is replaced by install.base-url (releases at {base}/cargo-gitops-v{version}/, as the release workflow publishes them); move the mirror's address there and remove this key",
        ),
        (
            "[workspace.metadata.gitops.gitlab]\ninstall-sha256 = \"ABC\"".to_owned(),
            "workspace.metadata.gitops.gitlab.install-sha256: is replaced by the per-platform [install.sha256] table the GitHub workflows use; run `cargo gitops pins update` to write it, then remove this key",
        ),
        (
            "[workspace.metadata.gitops.gitlab]\nstage = \"deploy: x\"".to_owned(),
            "workspace.metadata.gitops.gitlab.stage: `deploy: x` is not a plain stage name; use letters, digits and `_ . -`",
        ),
        (
            "[workspace.metadata.gitops.gitlab]\nunknown = 1".to_owned(),
            "unknown field `unknown`",
        ),
        (
            "ci = [\"jenkins\"]".to_owned(),
            "unknown variant `jenkins`",
        ),
    ];
    for (extra, message) in cases {
        let (key_table, rest) = match extra.strip_prefix("[workspace.metadata.gitops.gitlab]\n") {
            Some(rest) => ("[workspace.metadata.gitops.gitlab]\n", rest),
            None => ("", extra.as_str()),
        };
        let config = if key_table.is_empty() {
            format!(
                "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"registry.gitlab.com/acme\"\nimage = \"shop\"\n{rest}\n"
            )
        } else {
            format!(
                "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"registry.gitlab.com/acme\"\nimage = \"shop\"\n\n{key_table}{rest}\n"
            )
        };
        let dir = repository(&config);
        let line = dir
            .command()
            .args(["init-workflows", "--ci", "gitlab"])
            .usage_error();
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains(message), "{extra}:\n{line}");
    }
}

#[test]
fn an_unpinned_install_is_refused() {
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"registry.gitlab.com/acme\"\nimage = \"shop\"\n",
    );
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert_eq!(
        line,
        "error: configuration key `install.sha256` is not set: a prebuilt install checks the archive of cargo-gitops 0.1.0 against a pinned SHA-256; run `cargo gitops pins update` to write them, or set install.mode = \"cargo\""
    );
    assert!(!dir.join(GENERATED).exists());
}

#[test]
fn keyless_signing_is_refused_for_gitlab_instead_of_leaving_images_unsigned() {
    let config = default_config().replace(
        "ci = [\"gitlab\"]\n",
        "ci = [\"gitlab\"]\nsign = \"keyless\"\n",
    );
    assert!(config.contains("sign = \"keyless\""), "{config}");
    let dir = repository(&config);
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert!(
        line.starts_with("error: configuration key `sign`: \"keyless\" signs in the generated GitHub workflow only"),
        "{line}"
    );
    assert!(!dir.join(GENERATED).exists());
    // With a key, the pipeline is written: the key reaches the job as a CI/CD variable.
    let dir = repository(
        &default_config().replace("ci = [\"gitlab\"]\n", "ci = [\"gitlab\"]\nsign = \"key\"\n"),
    );
    generate(&dir);
}

// ---------------------------------------------------------------------------------------------
// Several images: one file, a job per image and environment
// ---------------------------------------------------------------------------------------------

/// The install pins every configuration below carries, for the table it sits in.
fn pins(table: &str) -> String {
    format!(
        "\n[{table}]\nx86_64-unknown-linux-musl = \"{PIN}\"\naarch64-unknown-linux-musl = \"{PIN}\"\n"
    )
}

/// A Cargo workspace of two Rust services built natively (so each has a compile cache), on a
/// Rust job image.
fn two_service_workspace() -> Dir {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [\"services/api\", \"services/worker\"]\n\n[workspace.metadata.gitops]\nregistry = \"registry.gitlab.com/acme\"\nbuilder = \"native\"\nci = [\"gitlab\"]\n\n[workspace.metadata.gitops.gitlab]\nimage = \"rust:1.95-slim@sha256:{PIN}\"\n{}",
            pins("workspace.metadata.gitops.install.sha256")
        ),
    );
    for service in ["api", "worker"] {
        dir.create(
            format!("services/{service}/Cargo.toml"),
            format!(
                "[package]\nname = \"{service}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\nimage = \"{service}\"\n"
            ),
        );
        dir.create(format!("services/{service}/src/main.rs"), "fn main() {}\n");
    }
    dir.commit("two services");
    dir
}

/// A `gitops.toml` repository of two images built from Dockerfiles, one a Node app, with a
/// `deploy` table: each environment gets a deploy job after both builds.
fn two_image_gitops_toml(images: &str) -> Dir {
    let dir = Dir::git_repo();
    dir.create(
        "gitops.toml",
        format!(
            "registry = \"registry.gitlab.com/acme\"\nci = [\"gitlab\"]\n{}\n[deploy]\nrepository = \"https://gitlab.com/acme/fleet.git\"\ncredential = \"FLEET_TOKEN\"\n\n{images}",
            pins("install.sha256")
        ),
    );
    dir.create(
        "api/Dockerfile",
        "FROM scratch\nCOPY index.txt /index.txt\n",
    );
    dir.create("api/index.txt", "api\n");
    dir.create(
        "web/package.json",
        r#"{"name": "web", "version": "1.4.0", "main": "server.js"}"#,
    );
    dir.create(
        "web/server.js",
        "require('http').createServer((q, s) => s.end('ok')).listen(8080);\n",
    );
    dir.create(
        "web/Dockerfile",
        "FROM node:20-alpine\nWORKDIR /app\nCOPY . .\nCMD [\"node\", \"server.js\"]\n",
    );
    dir.commit("two images");
    dir
}

const TWO_IMAGES: &str = "[images.api]\ndockerfile = \"api/Dockerfile\"\ncontext = \"api\"\n\n[images.web]\ndockerfile = \"web/Dockerfile\"\ncontext = \"web\"\n";

fn load(dir: &Dir) -> Yaml {
    YamlLoader::load_from_str(&generate(dir)).unwrap().remove(0)
}

/// The build jobs of a multi-image file: (job name, image, environment).
fn build_jobs(pipeline: &Yaml) -> Vec<(String, String, String)> {
    pipeline
        .as_hash()
        .unwrap()
        .keys()
        .filter_map(|key| {
            let name = key.as_str()?;
            let mut parts = name.split(':');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("gitops"), Some(image), Some(env), None) => {
                    Some((name.to_owned(), image.to_owned(), env.to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn several_images_get_one_file_that_passes_gitlabs_schema() {
    for dir in [two_service_workspace(), two_image_gitops_toml(TWO_IMAGES)] {
        let pipeline = load(&dir);
        check_jsonschema(dir.path(), &[GENERATED, ".gitlab-ci.yml"]);
        // What every job shares is there once: one hidden job, one install fragment.
        let text = std::fs::read_to_string(dir.join(GENERATED)).unwrap();
        assert_eq!(text.matches("\n.gitops:\n").count(), 1, "{text}");
        assert_eq!(text.matches("GITOPS_RELEASE_BASE_URL: ").count(), 1);
        assert_eq!(text.matches("base=${GITOPS_RELEASE_BASE_URL:-}").count(), 1);
        let hidden: Vec<&str> = pipeline
            .as_hash()
            .unwrap()
            .keys()
            .filter_map(|k| k.as_str())
            .filter(|k| k.starts_with('.'))
            .collect();
        assert_eq!(hidden, [".gitops"]);
        // A shallow clone of a known depth: the build fetches an older commit itself.
        assert_eq!(
            pipeline[".gitops"]["variables"]["GIT_DEPTH"].as_str(),
            Some("20")
        );
        // Testing, staging and development build each image; each release (production and
        // its channels) is one job that promotes both as a set.
        assert_eq!(build_jobs(&pipeline).len(), 2 * 3, "{text}");
        for release in RELEASES {
            let job = &pipeline[format!("gitops:{release}").as_str()];
            let script = job["script"][0].as_str().unwrap_or_default();
            assert!(
                script
                    .starts_with("cargo-gitops build --all --environment \"$GITOPS_ENVIRONMENT\""),
                "{text}"
            );
            assert_eq!(
                job["resource_group"].as_str(),
                Some(format!("gitops/{release}").as_str())
            );
        }
    }
}

/// The environments that track tags only: one job promotes every image to each, as a set.
const RELEASES: [&str; 3] = ["production", "alpha", "beta"];

/// For each ref, the jobs GitLab would run are, for each image, the job of the environment
/// `cargo gitops env -p IMAGE` picks, and that environment's deploy job when there is one.
fn assert_each_image_runs_the_job_env_picks(dir: &Dir, images: &[&str], deploy: bool) {
    let pipeline = load(dir);
    let refs = [
        "refs/heads/main",
        "refs/heads/feature/login",
        "refs/heads/test/uat1",
        "refs/tags/v1.2.3",
        "refs/tags/v1.3.0-beta.1",
        "refs/tags/nightly",
    ];
    for git_ref in refs {
        let mut expected = Vec::new();
        let mut environments = Vec::new();
        for image in images {
            let got = dir
                .command()
                .args(["env", "-p", image, "--format", "json"])
                .args(["--ref", git_ref, "--sha", SHA])
                .json();
            if let Some(env) = got["environment"].as_str() {
                let job = if RELEASES.contains(&env) {
                    format!("gitops:{env}")
                } else {
                    format!("gitops:{image}:{env}")
                };
                if !expected.contains(&job) {
                    expected.push(job);
                }
                environments.push(env.to_owned());
            }
        }
        environments.dedup();
        if deploy {
            expected.extend(
                environments
                    .iter()
                    .map(|env| format!("gitops-{env}-deploy")),
            );
        }
        let mut running = jobs_that_run(&pipeline, &pipeline_variables(git_ref));
        running.sort();
        expected.sort();
        assert_eq!(running, expected, "{git_ref}");
        if git_ref != "refs/tags/nightly" {
            assert_eq!(environments.len(), 1, "{git_ref}: {environments:?}");
        }
    }
}

#[test]
fn for_main_a_branch_and_a_tag_each_image_runs_the_job_of_the_environment_env_picks() {
    assert_each_image_runs_the_job_env_picks(&two_service_workspace(), &["api", "worker"], false);
    assert_each_image_runs_the_job_env_picks(
        &two_image_gitops_toml(TWO_IMAGES),
        &["api", "web"],
        true,
    );
}

#[test]
fn each_images_job_has_its_own_name_resource_group_cache_and_package() {
    let dir = two_service_workspace();
    let pipeline = load(&dir);
    let jobs = build_jobs(&pipeline);
    let mut groups = Vec::new();
    let mut caches = Vec::new();
    for (name, image, env) in &jobs {
        let job = &pipeline[name.as_str()];
        assert_eq!(job["extends"].as_str(), Some(".gitops"), "{name}");
        assert_eq!(job["environment"]["name"].as_str(), Some(env.as_str()));
        assert_eq!(
            job["variables"]["GITOPS_ENVIRONMENT"].as_str(),
            Some(env.as_str())
        );
        let group = job["resource_group"].as_str().unwrap().to_owned();
        let per_branch = matches!(env.as_str(), "testing" | "development");
        let want = if per_branch {
            format!("gitops/{image}/{env}/$CI_COMMIT_REF_SLUG")
        } else {
            format!("gitops/{image}/{env}")
        };
        assert_eq!(group, want, "{name}");
        assert_eq!(job["interruptible"].as_bool().unwrap_or(false), per_branch);
        let prefix = job["cache"]["key"]["prefix"].as_str().unwrap().to_owned();
        assert!(prefix.ends_with(&format!("-{image}")), "{name}: {prefix}");
        assert_eq!(
            job["cache"]["key"]["files"].as_vec().unwrap()[0].as_str(),
            Some("Cargo.lock")
        );
        // The script line builds this job's package, and only it.
        let builds: Vec<&str> = job["script"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(|line| line.as_str())
            .filter(|line| line.contains("cargo-gitops build"))
            .collect();
        assert_eq!(
            builds,
            [format!(
                "cargo-gitops build -p {image} --environment \"$GITOPS_ENVIRONMENT\" --reuse-unchanged --retag-with builtin --format gitlab --dotenv gitops.env"
            )],
            "{name}"
        );
        groups.push(group);
        caches.push((image.clone(), prefix));
    }
    groups.sort();
    groups.dedup();
    assert_eq!(groups.len(), jobs.len(), "{groups:?}");
    caches.sort();
    caches.dedup();
    assert_eq!(caches.len(), 2, "one cache key per service: {caches:?}");
    // The hidden job holds no cache (each service has its own) and no build line of its own.
    assert!(pipeline[".gitops"]["cache"].is_badvalue());
    assert!(pipeline[".gitops"]["script"].is_badvalue());
}

#[test]
fn each_environments_deploy_job_needs_all_its_builds() {
    let dir = two_image_gitops_toml(TWO_IMAGES);
    let pipeline = load(&dir);
    for env in [
        "production",
        "alpha",
        "beta",
        "testing",
        "staging",
        "development",
    ] {
        let deploy = &pipeline[format!("gitops-{env}-deploy").as_str()];
        let needs: Vec<(&str, Option<bool>)> = deploy["needs"]
            .as_vec()
            .unwrap_or_else(|| panic!("{env}: no deploy job"))
            .iter()
            .map(|need| (need["job"].as_str().unwrap(), need["artifacts"].as_bool()))
            .collect();
        let api = format!("gitops:api:{env}");
        let web = format!("gitops:web:{env}");
        let set = format!("gitops:{env}");
        if RELEASES.contains(&env) {
            // After the one job that promoted the set.
            assert_eq!(needs, [(set.as_str(), Some(false))], "{env}");
            assert_eq!(deploy["rules"], pipeline[set.as_str()]["rules"], "{env}");
            assert_eq!(deploy["script"][0].as_str(), Some("cargo-gitops deploy"));
            continue;
        }
        assert_eq!(
            needs,
            [(api.as_str(), Some(false)), (web.as_str(), Some(false))]
        );
        // It runs exactly when its builds do, and deploys every image at once.
        assert_eq!(deploy["rules"], pipeline[api.as_str()]["rules"], "{env}");
        assert_eq!(
            deploy["resource_group"].as_str(),
            Some(format!("gitops-deploy-{env}").as_str())
        );
        assert_eq!(deploy["script"][0].as_str(), Some("cargo-gitops deploy"));
    }
}

#[test]
fn a_package_name_that_would_break_yaml_or_shell_is_refused() {
    for name in [
        "\"web; rm -rf /\"",
        "\"web\\\"\\nx: y\"",
        "\"web$CI_JOB_TOKEN\"",
    ] {
        let images = TWO_IMAGES.replace(
            "[images.web]\n",
            &format!("[images.{name}]\nimage = \"web\"\n"),
        );
        let dir = two_image_gitops_toml(&images);
        let line = dir
            .command()
            .args(["init-workflows", "--ci", "gitlab"])
            .usage_error();
        assert!(
            line.starts_with("error: configuration key `package.name`: `web")
                && line.ends_with(
                    "is not a cargo package name (ASCII letters, digits, `-` and `_`, not starting with a digit)"
                ),
            "{name}: {line}"
        );
        assert!(!dir.join(GENERATED).exists());
    }
}

/// The Docker CLI image the generated jobs default to, and a podman image, for the Dockerfile
/// service's own `gitlab.image`.
const DOCKER_CLI: &str =
    "docker:27.4.0-cli@sha256:561338cb111f09a755c9c28e00b66a2466a3dacd88bca6f2f0aeaf909e95730a";
const PODMAN: &str = "quay.io/podman/stable:v5@sha256:0f4c1d2e3b4a59687766554433221100ffeeddccbbaa99887766554433221100";

/// A monorepo's mix: a Cargo workspace of two Rust services built natively on a Rust job image
/// (the shared table's builder), and a third package built from its Dockerfile with `builder`
/// on its own job image, all deploying with the shared `deploy` table.
fn mixed_workspace(builder: &str) -> Dir {
    let dir = two_service_workspace();
    let root = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    dir.create(
        "Cargo.toml",
        format!(
            "{}\n[workspace.metadata.gitops.deploy]\nrepository = \"https://gitlab.com/acme/fleet.git\"\ncredential = \"FLEET_TOKEN\"\n",
            root.replace(
                "\"services/worker\"]",
                "\"services/worker\", \"services/web\"]"
            )
        ),
    );
    let image = if builder == "podman" {
        PODMAN
    } else {
        DOCKER_CLI
    };
    dir.create(
        "services/web/Cargo.toml",
        format!(
            "[package]\nname = \"web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.gitops]\nimage = \"web\"\nbuilder = \"{builder}\"\ndockerfile = \"services/web/Dockerfile\"\ncontext = \"services/web\"\n\n[package.metadata.gitops.gitlab]\nimage = \"{image}\"\n"
        ),
    );
    dir.create("services/web/src/main.rs", "fn main() {}\n");
    dir.create(
        "services/web/Dockerfile",
        "FROM node:20-alpine\nWORKDIR /app\nCOPY . .\nCMD [\"node\", \"server.js\"]\n",
    );
    dir.commit("a Dockerfile service");
    dir
}

/// A job as GitLab runs it: its `extends` resolved, hashes merged key by key (deeply), any
/// other value, lists included, replaced by the extending job's.
fn effective(pipeline: &Yaml, name: &str) -> Yaml {
    fn merge(base: &mut Yaml, over: &Yaml) {
        match (base, over) {
            (Yaml::Hash(base), Yaml::Hash(over)) => {
                for (key, value) in over {
                    match base.get_mut(key) {
                        Some(known) => merge(known, value),
                        None => {
                            base.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            (base, over) => *base = over.clone(),
        }
    }
    let job = &pipeline[name];
    assert!(!job.is_badvalue(), "no job {name}");
    let mut resolved = match job["extends"].as_str() {
        Some(parent) => effective(pipeline, parent),
        None => Yaml::Hash(Default::default()),
    };
    let mut own = job.clone();
    if let Yaml::Hash(hash) = &mut own {
        hash.remove(&Yaml::String("extends".to_owned()));
    }
    merge(&mut resolved, &own);
    resolved
}

fn hidden_jobs(pipeline: &Yaml) -> Vec<String> {
    pipeline
        .as_hash()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .filter(|k| k.starts_with('.'))
        .map(str::to_owned)
        .collect()
}

fn strings(list: &Yaml) -> Vec<&str> {
    list.as_vec()
        .unwrap_or_else(|| panic!("not a list: {list:?}"))
        .iter()
        .map(|item| item.as_str().unwrap())
        .collect()
}

#[test]
fn native_services_beside_a_dockerfile_service_get_a_hidden_job_per_setup() {
    for builder in ["buildx", "podman"] {
        let dir = mixed_workspace(builder);
        let pipeline = load(&dir);
        check_jsonschema(dir.path(), &[GENERATED, ".gitlab-ci.yml"]);
        let text = std::fs::read_to_string(dir.join(GENERATED)).unwrap();
        let own = format!(".gitops-{builder}");
        assert_eq!(
            hidden_jobs(&pipeline),
            [".gitops", ".gitops-native", own.as_str()],
            "{text}"
        );
        // What every setup shares is there once: the stage, the registry, the install's
        // variables and, by its anchor, its script.
        let common = &pipeline[".gitops"];
        assert_eq!(common["stage"].as_str(), Some("deploy"));
        assert!(common["image"].is_badvalue() && common["before_script"].is_badvalue());
        assert_eq!(
            common["variables"]["GITOPS_REGISTRY"].as_str(),
            Some("registry.gitlab.com")
        );
        assert_eq!(common["variables"]["GIT_DEPTH"].as_str(), Some("20"));
        assert_eq!(text.matches("GITOPS_RELEASE_BASE_URL: ").count(), 1);
        assert_eq!(text.matches("base=${GITOPS_RELEASE_BASE_URL:-}").count(), 1);
        assert_eq!(text.matches("&gitops-install").count(), 1, "{text}");
        assert_eq!(text.matches("*gitops-install").count(), 1, "{text}");

        // The native setup: the Rust image, its targets, the compile under the project.
        let native = effective(&pipeline, ".gitops-native");
        assert!(
            native["image"]
                .as_str()
                .unwrap()
                .starts_with("rust:1.95-slim@sha256:"),
            "{text}"
        );
        assert!(native["services"].is_badvalue());
        assert_eq!(
            native["variables"]["CARGO_HOME"].as_str(),
            Some("$CI_PROJECT_DIR/.cargo")
        );
        assert!(native["variables"]["DOCKER_HOST"].is_badvalue());
        let native_script = strings(&native["before_script"]);
        assert!(native_script[0].contains("rustup target add"), "{text}");
        // The Dockerfile setup: its builder's image, services and login.
        let dockerfile = effective(&pipeline, &own);
        let dockerfile_script = strings(&dockerfile["before_script"]);
        assert!(
            native["variables"]["GITOPS_RUST_TARGETS"]
                .as_str()
                .is_some()
        );
        assert!(dockerfile["variables"]["CARGO_HOME"].is_badvalue());
        assert!(dockerfile["variables"]["GITOPS_VERSION"].as_str().is_some());
        if builder == "buildx" {
            assert_eq!(dockerfile["image"].as_str(), Some(DOCKER_CLI));
            assert_eq!(
                dockerfile["services"][0]["alias"].as_str(),
                Some("docker"),
                "{text}"
            );
            assert_eq!(
                dockerfile["variables"]["DOCKER_HOST"].as_str(),
                Some("tcp://docker:2376")
            );
            assert_eq!(
                dockerfile_script[dockerfile_script.len() - 2..],
                [
                    "docker context create gitops",
                    "docker buildx create --use gitops"
                ]
            );
        } else {
            assert_eq!(dockerfile["image"].as_str(), Some(PODMAN));
            assert!(dockerfile["services"].is_badvalue(), "{text}");
            assert!(dockerfile["variables"]["DOCKER_HOST"].is_badvalue());
        }
        let login = dockerfile_script.last().unwrap();
        let login = if builder == "buildx" {
            dockerfile_script[dockerfile_script.len() - 3]
        } else {
            login
        };
        assert!(
            login.contains(&format!(
                "| {} login --username \"$CI_REGISTRY_USER\"",
                if builder == "buildx" {
                    "docker"
                } else {
                    "podman"
                }
            )),
            "{login}"
        );
        // The one install script, in both setups (the alias is the anchor's text).
        let install = |script: &[&str]| -> String {
            script
                .iter()
                .find(|line| line.contains("base=${GITOPS_RELEASE_BASE_URL:-}"))
                .unwrap_or_else(|| panic!("no install in {script:?}"))
                .to_string()
        };
        assert_eq!(install(&native_script), install(&dockerfile_script));
        assert!(native_script[2].contains("export GITOPS_REGISTRY_USER="));

        // Each image's jobs extend its own setup, and its build line fits that setup's login.
        let jobs = build_jobs(&pipeline);
        assert_eq!(jobs.len(), 3 * 3, "{text}");
        for (name, image, _) in &jobs {
            let job = &pipeline[name.as_str()];
            let built = effective(&pipeline, name);
            let line = strings(&job["script"])[0].to_owned();
            if image == "web" {
                assert_eq!(job["extends"].as_str(), Some(own.as_str()), "{name}");
                assert!(job["cache"].is_badvalue(), "{name}");
                assert!(!line.contains("--retag-with"), "{line}");
                assert_eq!(built["image"], dockerfile["image"], "{name}");
            } else {
                assert_eq!(job["extends"].as_str(), Some(".gitops-native"), "{name}");
                let prefix = job["cache"]["key"]["prefix"].as_str().unwrap();
                assert!(prefix.ends_with(&format!("-{image}")), "{name}: {prefix}");
                assert!(line.contains(" --retag-with builtin "), "{line}");
                assert_eq!(built["before_script"], native["before_script"], "{name}");
            }
            assert!(line.starts_with(&format!("cargo-gitops build -p {image} ")));
            assert_eq!(built["stage"].as_str(), Some("deploy"));
            assert!(built["variables"]["GITOPS_VERSION"].as_str().is_some());
            assert!(built["variables"]["GITOPS_ENVIRONMENT"].as_str().is_some());
        }
        // A release's one job and the deploy jobs act for every image with the first image's
        // setup: one registry, one login.
        for release in RELEASES {
            let job = &pipeline[format!("gitops:{release}").as_str()];
            assert_eq!(job["extends"].as_str(), Some(".gitops-native"), "{release}");
            assert_eq!(
                strings(&job["script"]),
                [
                    "cargo-gitops build --all --environment \"$GITOPS_ENVIRONMENT\" --retag-with builtin"
                ]
            );
        }
        for env in RELEASES
            .iter()
            .chain(&["testing", "staging", "development"])
        {
            let deploy = &pipeline[format!("gitops-{env}-deploy").as_str()];
            assert_eq!(deploy["extends"].as_str(), Some(".gitops-native"), "{env}");
            assert_eq!(strings(&deploy["script"]), ["cargo-gitops deploy"]);
        }
    }
}

#[test]
fn for_main_a_branch_and_a_tag_each_image_of_a_mixed_workspace_runs_the_job_env_picks() {
    for builder in ["buildx", "podman"] {
        assert_each_image_runs_the_job_env_picks(
            &mixed_workspace(builder),
            &["api", "worker", "web"],
            true,
        );
    }
}

#[test]
fn a_mixed_workspace_reports_no_drift_after_generating() {
    let dir = mixed_workspace("buildx");
    generate(&dir);
    let (_, stderr) = dir
        .command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .succeeds();
    assert_eq!(stderr, "1 workflows are up to date\n");
}

#[test]
fn setups_of_the_same_builder_are_named_by_their_first_image() {
    let dir = mixed_workspace("buildx");
    // The worker on a Rust image of its own: a second native setup.
    let manifest = std::fs::read_to_string(dir.join("services/worker/Cargo.toml")).unwrap();
    dir.create(
        "services/worker/Cargo.toml",
        format!(
            "{manifest}\n[package.metadata.gitops.gitlab]\nimage = \"rust:1.96-slim@sha256:{PIN}\"\n"
        ),
    );
    let pipeline = load(&dir);
    check_jsonschema(dir.path(), &[GENERATED]);
    assert_eq!(
        hidden_jobs(&pipeline),
        [
            ".gitops",
            ".gitops-native-api",
            ".gitops-native-worker",
            ".gitops-buildx"
        ]
    );
    for (image, setup) in [
        ("api", ".gitops-native-api"),
        ("worker", ".gitops-native-worker"),
        ("web", ".gitops-buildx"),
    ] {
        let job = &pipeline[format!("gitops:{image}:staging").as_str()];
        assert_eq!(job["extends"].as_str(), Some(setup), "{image}");
    }
    assert_eq!(
        pipeline["gitops:production"]["extends"].as_str(),
        Some(".gitops-native-api")
    );
}

#[test]
fn images_that_cannot_share_a_registry_login_are_refused_with_the_key() {
    // Another registry for the Dockerfile service: a release's one job logs in once.
    let dir = mixed_workspace("buildx");
    let manifest = std::fs::read_to_string(dir.join("services/web/Cargo.toml")).unwrap();
    dir.create(
        "services/web/Cargo.toml",
        manifest.replace(
            "image = \"web\"\n",
            "image = \"web\"\nregistry = \"ghcr.io/acme\"\n",
        ),
    );
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert_eq!(
        line,
        "error: the GitLab pipeline's jobs share one stage, install and registry login (a release's job and the deploy job act for every image), and images `api` and `web` set `registry` differently; set it once in the shared table ([workspace.metadata.gitops] or gitops.toml's top level), or generate the pipeline of one image with -p"
    );
    assert!(!dir.join(GENERATED).exists());
    // One image's pipeline, as before.
    dir.command()
        .args(["init-workflows", "-q", "--ci", "gitlab", "-p", "web"])
        .succeeds();
    check_jsonschema(dir.path(), &[GENERATED]);

    // The login's CI/CD variables of its own for one image of a gitops.toml.
    let images = TWO_IMAGES.replace(
        "[images.web]\n",
        "[images.web]\nbuilder = \"podman\"\ngitlab = { registry-variables = { username = \"WEB_USER\", password = \"WEB_PASSWORD\" } }\n",
    );
    let dir = two_image_gitops_toml(&images);
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert!(
        line.contains("images `api` and `web` set `gitlab.registry-variables` differently"),
        "{line}"
    );
}

#[test]
fn a_buildx_and_a_podman_image_get_a_setup_each() {
    let images = TWO_IMAGES.replace(
        "[images.web]\n",
        &format!("[images.web]\nbuilder = \"podman\"\ngitlab = {{ image = \"{PODMAN}\" }}\n"),
    );
    let dir = two_image_gitops_toml(&images);
    let pipeline = load(&dir);
    check_jsonschema(dir.path(), &[GENERATED]);
    assert_eq!(
        hidden_jobs(&pipeline),
        [".gitops", ".gitops-buildx", ".gitops-podman"]
    );
    assert_eq!(
        pipeline["gitops:web:staging"]["extends"].as_str(),
        Some(".gitops-podman")
    );
    assert_eq!(
        pipeline["gitops:production"]["extends"].as_str(),
        Some(".gitops-buildx")
    );
    assert_each_image_runs_the_job_env_picks(&dir, &["api", "web"], true);
}

#[test]
fn drift_is_checked_for_the_file_of_several_images() {
    let dir = two_image_gitops_toml(TWO_IMAGES);
    generate(&dir);
    let (_, stderr) = dir
        .command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .succeeds();
    assert_eq!(stderr, "1 workflows are up to date\n");
    let path = dir.join(GENERATED);
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("build -p web ", "build -p api ");
    std::fs::write(&path, edited).unwrap();
    let output = dir
        .command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .expect_exit(1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("--- a/{GENERATED}\n+++ b/{GENERATED}\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains("-    - cargo-gitops build -p api "),
        "{stdout}"
    );
    assert!(
        stdout.contains("+    - cargo-gitops build -p web "),
        "{stdout}"
    );
    // Another image added to the configuration is drift too.
    generate(&dir);
    let config = std::fs::read_to_string(dir.join("gitops.toml")).unwrap();
    dir.create(
        "gitops.toml",
        format!("{config}\n[images.jobs]\ndockerfile = \"api/Dockerfile\"\ncontext = \"api\"\n"),
    );
    let output = dir
        .command()
        .args(["init-workflows", "--check", "--ci", "gitlab"])
        .expect_exit(1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("+\"gitops:jobs:staging\":"), "{stdout}");
}

#[test]
fn snapshot_of_two_images() {
    let dir = two_image_gitops_toml(TWO_IMAGES);
    insta::assert_snapshot!("gitlab__two_images", generate(&dir));
}

#[test]
fn snapshot_of_native_services_beside_a_dockerfile_service() {
    let dir = mixed_workspace("buildx");
    insta::assert_snapshot!("gitlab__mixed_setups", generate(&dir));
}

#[test]
fn a_deploy_job_of_several_images_needs_every_image_to_deploy_to_the_same_environments() {
    let deploy = "[deploy]\nrepository = \"https://gitlab.com/acme/fleet.git\"\ncredential = \"FLEET_TOKEN\"\n";
    // A deploy table for one image only: the deploy job would fail on the other.
    let dir = two_service_workspace();
    let manifest = std::fs::read_to_string(dir.join("services/api/Cargo.toml")).unwrap();
    dir.create(
        "services/api/Cargo.toml",
        format!(
            "{manifest}\n{}",
            deploy.replace("[deploy]", "[package.metadata.gitops.deploy]")
        ),
    );
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert_eq!(
        line,
        "error: the GitLab deploy job runs `cargo gitops deploy` for every image of an environment, and worker has no `deploy` table; give every image one (or put it in the shared table), or none"
    );
    // Environments of its own for one image: a ref could need a build that is not there.
    let dir = two_service_workspace();
    let root = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    dir.create(
        "Cargo.toml",
        format!(
            "{root}\n{}",
            deploy.replace("[deploy]", "[workspace.metadata.gitops.deploy]")
        ),
    );
    dir.command()
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .succeeds();
    check_jsonschema(dir.path(), &[GENERATED]);
    dir.create(
        "services/api/Cargo.toml",
        format!(
            "{manifest}\n[[package.metadata.gitops.environments]]\nname = \"staging\"\nbranches = [\"trunk\"]\n"
        ),
    );
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert_eq!(
        line,
        "error: the GitLab deploy job deploys every image of an environment at once, and images `api` and `worker` define their environments differently; define them once in the shared table, or run `cargo gitops deploy -p NAME` in jobs of your own"
    );
}
