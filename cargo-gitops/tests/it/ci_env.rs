//! Where the ref comes from in each CI: the real binary, run with an environment scrubbed of
//! every CI variable the tool reads, plus one CI's documented variables. For each provider a
//! table of pipelines (branch, tag, pull or merge request, fork) and what `cargo gitops env`
//! makes of it; then the errors when a CI leaves out a variable, the flags that override, and
//! the dotenv report of `--format gitlab`.

use crate::support::{Dir, TestCommand};
use serde_json::{Value, json};

const TS: &str = "1654880868";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A request's build as `env` reports it: number, source branch, fork, withheld from.
type Request = (
    Option<&'static str>,
    &'static str,
    Option<bool>,
    Option<&'static str>,
);

/// One pipeline of one CI, and what `env` must say about it.
struct Case {
    label: &'static str,
    vars: &'static [(&'static str, &'static str)],
    ci: &'static str,
    git_ref: &'static str,
    environment: Option<&'static str>,
    pull_request: Option<Request>,
}

fn env_json(cmd: &mut TestCommand) -> Value {
    cmd.args(["env", "--format", "json", "--timestamp", TS])
        .json()
}

fn run_cases(cases: &[Case]) {
    let dir = Dir::new();
    for case in cases {
        let mut cmd = dir.command();
        for (key, value) in case.vars {
            cmd.env(key, value);
        }
        let got = env_json(&mut cmd);
        let label = case.label;
        assert_eq!(got["ci"], case.ci, "{label}: {got}");
        assert_eq!(got["ref"], case.git_ref, "{label}: {got}");
        assert_eq!(got["sha"], SHA, "{label}: {got}");
        assert_eq!(
            got["environment"],
            json!(case.environment),
            "{label}: {got}"
        );
        if case.environment.is_none() {
            assert_eq!(got["tags"], json!([]), "{label}: {got}");
        }
        let expected_request = case.pull_request.map(|(number, source, fork, withheld)| {
            json!({
                "number": number,
                "source_branch": source,
                "fork": fork,
                "withheld_from": withheld,
            })
        });
        assert_eq!(
            got["pull_request"],
            json!(expected_request),
            "{label}: {got}"
        );
    }
}

#[test]
fn github_actions() {
    run_cases(&[
        Case {
            label: "branch push",
            vars: &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/heads/main"),
                ("GITHUB_SHA", SHA),
            ],
            ci: "github",
            git_ref: "refs/heads/main",
            environment: Some("staging"),
            pull_request: None,
        },
        Case {
            label: "tag push",
            vars: &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/tags/v1.2.3"),
                ("GITHUB_SHA", SHA),
                ("GITHUB_REF_NAME", "v1.2.3"),
            ],
            ci: "github",
            git_ref: "refs/tags/v1.2.3",
            environment: Some("production"),
            pull_request: None,
        },
        Case {
            label: "pull request whose fork status is unknown (no event file)",
            vars: &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", "pull_request"),
                ("GITHUB_REF", "refs/pull/7/merge"),
                ("GITHUB_HEAD_REF", "feature/x"),
                ("GITHUB_SHA", SHA),
            ],
            ci: "github",
            git_ref: "refs/heads/feature/x",
            environment: None,
            pull_request: Some((Some("7"), "feature/x", None, Some("development"))),
        },
        Case {
            label: "empty values are unset",
            vars: &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", "pull_request"),
                ("GITHUB_HEAD_REF", ""),
                ("GITHUB_REF", "refs/heads/test/uat1"),
                ("GITHUB_SHA", SHA),
            ],
            ci: "github",
            git_ref: "refs/heads/test/uat1",
            environment: Some("testing"),
            pull_request: None,
        },
    ]);
}

/// A `pull_request` event file as the runner writes it, from `head` into `base`.
fn event_file(dir: &Dir, head: &str, base: &str) -> std::path::PathBuf {
    let path = dir.join(format!("event-{}.json", head.replace('/', "-")));
    let payload = json!({
        "pull_request": {
            "number": 12,
            "head": { "repo": { "full_name": head } },
            "base": { "repo": { "full_name": base } },
        }
    });
    std::fs::write(&path, payload.to_string()).unwrap();
    path
}

#[test]
fn github_pull_requests_deploy_only_from_this_repository_to_the_catch_all() {
    let dir = Dir::new();
    // (label, event's head repository, source branch, environment, withheld from)
    type PullRequestCase<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
    let cases: &[PullRequestCase] = &[
        (
            "same repository",
            "acme/shop",
            "feature/x",
            Some("development"),
            None,
        ),
        (
            "fork",
            "mallory/shop",
            "feature/x",
            None,
            Some("development"),
        ),
        (
            "fork named main",
            "mallory/shop",
            "main",
            None,
            Some("staging"),
        ),
        (
            "same repository from main",
            "acme/shop",
            "main",
            None,
            Some("staging"),
        ),
        (
            "from a testing branch",
            "acme/shop",
            "test/uat1",
            None,
            Some("testing"),
        ),
    ];
    for (label, head, source, environment, withheld) in cases {
        let event = event_file(&dir, head, "acme/shop");
        let mut cmd = dir.command();
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_REPOSITORY", "acme/shop")
            .env("GITHUB_REF", "refs/pull/12/merge")
            .env("GITHUB_HEAD_REF", source)
            .env("GITHUB_SHA", SHA);
        let output = cmd
            .args(["env", "--format", "json", "--timestamp", TS])
            .expect_exit(0);
        let got = crate::support::json(&output.stdout);
        assert_eq!(got["ref"], format!("refs/heads/{source}"), "{label}");
        assert_eq!(got["environment"], json!(environment), "{label}: {got}");
        assert_eq!(
            got["pull_request"],
            json!({
                "number": "12",
                "source_branch": source,
                "fork": *head != "acme/shop",
                "withheld_from": withheld,
            }),
            "{label}"
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        match withheld {
            Some(env) => assert!(
                stderr.starts_with(&format!(
                    "pull request #12 from `{source}` would deploy to `{env}`, but "
                )) && stderr.ends_with(": nothing to deploy\n"),
                "{label}: {stderr}"
            ),
            None => assert_eq!(stderr, "", "{label}"),
        }
    }
}

#[test]
fn forgejo_and_gitea() {
    run_cases(&[
        Case {
            label: "forgejo sets every marker; forgejo wins",
            vars: &[
                ("FORGEJO_ACTIONS", "true"),
                ("GITEA_ACTIONS", "true"),
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/heads/feature/a"),
                ("GITHUB_SHA", SHA),
            ],
            ci: "forgejo",
            git_ref: "refs/heads/feature/a",
            environment: Some("development"),
            pull_request: None,
        },
        Case {
            label: "gitea",
            vars: &[
                ("GITEA_ACTIONS", "true"),
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REF", "refs/tags/v1.1.0-alpha1"),
                ("GITHUB_SHA", SHA),
            ],
            ci: "gitea",
            git_ref: "refs/tags/v1.1.0-alpha1",
            environment: Some("alpha"),
            pull_request: None,
        },
    ]);
}

#[test]
fn gitlab_ci() {
    run_cases(&[
        Case {
            label: "branch pipeline",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI", "true"),
                ("CI_COMMIT_BRANCH", "test/uat1"),
                ("CI_COMMIT_REF_NAME", "test/uat1"),
                ("CI_COMMIT_SHA", SHA),
                ("CI_PIPELINE_SOURCE", "push"),
            ],
            ci: "gitlab",
            git_ref: "refs/heads/test/uat1",
            environment: Some("testing"),
            pull_request: None,
        },
        Case {
            label: "tag pipeline",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_TAG", "v1.0.3-beta2"),
                ("CI_COMMIT_BRANCH", ""),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "gitlab",
            git_ref: "refs/tags/v1.0.3-beta2",
            environment: Some("beta"),
            pull_request: None,
        },
        Case {
            label: "a tag no environment tracks",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI_COMMIT_TAG", "nightly"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "gitlab",
            git_ref: "refs/tags/nightly",
            environment: None,
            pull_request: None,
        },
        Case {
            label: "merge request from this project",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI_PIPELINE_SOURCE", "merge_request_event"),
                ("CI_MERGE_REQUEST_IID", "4"),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/x"),
                ("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "10"),
                ("CI_PROJECT_ID", "10"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "gitlab",
            git_ref: "refs/heads/feature/x",
            environment: Some("development"),
            pull_request: Some((Some("4"), "feature/x", Some(false), None)),
        },
        Case {
            label: "merge request from a fork named main",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI_PIPELINE_SOURCE", "merge_request_event"),
                ("CI_MERGE_REQUEST_IID", "5"),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "main"),
                ("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "99"),
                ("CI_PROJECT_ID", "10"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "gitlab",
            git_ref: "refs/heads/main",
            environment: None,
            pull_request: Some((Some("5"), "main", Some(true), Some("staging"))),
        },
        Case {
            label: "merge request from this project's testing branch",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI_PIPELINE_SOURCE", "merge_request_event"),
                ("CI_MERGE_REQUEST_IID", "6"),
                ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "test/uat1"),
                ("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "10"),
                ("CI_PROJECT_ID", "10"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "gitlab",
            git_ref: "refs/heads/test/uat1",
            environment: None,
            pull_request: Some((Some("6"), "test/uat1", Some(false), Some("testing"))),
        },
        Case {
            label: "external pull request from a fork",
            vars: &[
                ("GITLAB_CI", "true"),
                ("CI_PIPELINE_SOURCE", "external_pull_request_event"),
                ("CI_EXTERNAL_PULL_REQUEST_IID", "8"),
                ("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME", "feature/y"),
                ("CI_EXTERNAL_PULL_REQUEST_SOURCE_REPOSITORY", "mallory/shop"),
                ("CI_EXTERNAL_PULL_REQUEST_TARGET_REPOSITORY", "acme/shop"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "gitlab",
            git_ref: "refs/heads/feature/y",
            environment: None,
            pull_request: Some((Some("8"), "feature/y", Some(true), Some("development"))),
        },
    ]);
}

#[test]
fn woodpecker() {
    run_cases(&[
        Case {
            label: "push",
            vars: &[
                ("CI", "woodpecker"),
                ("CI_PIPELINE_EVENT", "push"),
                ("CI_COMMIT_BRANCH", "main"),
                ("CI_COMMIT_REF", "refs/heads/main"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "woodpecker",
            git_ref: "refs/heads/main",
            environment: Some("staging"),
            pull_request: None,
        },
        Case {
            label: "tag, whose branch variable is still set",
            vars: &[
                ("CI", "woodpecker"),
                ("CI_PIPELINE_EVENT", "tag"),
                ("CI_COMMIT_TAG", "1.2.3"),
                ("CI_COMMIT_BRANCH", "main"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "woodpecker",
            git_ref: "refs/tags/1.2.3",
            environment: Some("production"),
            pull_request: None,
        },
        Case {
            label: "pull request: the source branch, not CI_COMMIT_BRANCH (the target); no fork signal",
            vars: &[
                ("CI", "woodpecker"),
                ("CI_PIPELINE_EVENT", "pull_request"),
                ("CI_COMMIT_BRANCH", "main"),
                ("CI_COMMIT_SOURCE_BRANCH", "feature/z"),
                ("CI_COMMIT_PULL_REQUEST", "3"),
                ("CI_COMMIT_SHA", SHA),
            ],
            ci: "woodpecker",
            git_ref: "refs/heads/feature/z",
            environment: None,
            pull_request: Some((Some("3"), "feature/z", None, Some("development"))),
        },
    ]);
}

#[test]
fn buildkite() {
    run_cases(&[
        Case {
            label: "branch",
            vars: &[
                ("BUILDKITE", "true"),
                ("BUILDKITE_BRANCH", "feature/b"),
                ("BUILDKITE_COMMIT", SHA),
                ("BUILDKITE_PULL_REQUEST", "false"),
            ],
            ci: "buildkite",
            git_ref: "refs/heads/feature/b",
            environment: Some("development"),
            pull_request: None,
        },
        Case {
            label: "tag push, with the tag in the branch variable too",
            vars: &[
                ("BUILDKITE", "true"),
                ("BUILDKITE_TAG", "v2.0.0"),
                ("BUILDKITE_BRANCH", "v2.0.0"),
                ("BUILDKITE_COMMIT", SHA),
            ],
            ci: "buildkite",
            git_ref: "refs/tags/v2.0.0",
            environment: Some("production"),
            pull_request: None,
        },
        Case {
            label: "pull request from this repository",
            vars: &[
                ("BUILDKITE", "true"),
                ("BUILDKITE_BRANCH", "feature/b"),
                ("BUILDKITE_COMMIT", SHA),
                ("BUILDKITE_PULL_REQUEST", "21"),
                (
                    "BUILDKITE_PULL_REQUEST_REPO",
                    "git://github.com/acme/shop.git",
                ),
                ("BUILDKITE_REPO", "git://github.com/acme/shop.git"),
            ],
            ci: "buildkite",
            git_ref: "refs/heads/feature/b",
            environment: Some("development"),
            pull_request: Some((Some("21"), "feature/b", Some(false), None)),
        },
    ]);
}

#[test]
fn buildkite_head_is_resolved_in_the_checkout() {
    let dir = Dir::git_repo_with_commit();
    let head = dir.head();
    let got = env_json(
        dir.command()
            .env("BUILDKITE", "true")
            .env("BUILDKITE_BRANCH", "main")
            .env("BUILDKITE_COMMIT", "HEAD"),
    );
    assert_eq!(got["sha"], head);
    assert_eq!(got["environment"], "staging");
}

#[test]
fn circleci() {
    run_cases(&[
        Case {
            label: "branch, with a pull request open from it: still a branch build",
            vars: &[
                ("CIRCLECI", "true"),
                ("CIRCLE_BRANCH", "test/uat2"),
                ("CIRCLE_SHA1", SHA),
                ("CIRCLE_PULL_REQUEST", "https://github.com/acme/shop/pull/9"),
            ],
            ci: "circleci",
            git_ref: "refs/heads/test/uat2",
            environment: Some("testing"),
            pull_request: None,
        },
        Case {
            label: "tag",
            vars: &[
                ("CIRCLECI", "true"),
                ("CIRCLE_TAG", "v1.2.3"),
                ("CIRCLE_SHA1", SHA),
            ],
            ci: "circleci",
            git_ref: "refs/tags/v1.2.3",
            environment: Some("production"),
            pull_request: None,
        },
        Case {
            label: "pull request from a fork",
            vars: &[
                ("CIRCLECI", "true"),
                ("CIRCLE_BRANCH", "pull/9"),
                ("CIRCLE_PR_NUMBER", "9"),
                ("CIRCLE_PR_USERNAME", "mallory"),
                ("CIRCLE_SHA1", SHA),
            ],
            ci: "circleci",
            git_ref: "refs/heads/pull/9",
            environment: None,
            pull_request: Some((Some("9"), "pull/9", Some(true), Some("development"))),
        },
    ]);
}

#[test]
fn azure_pipelines() {
    run_cases(&[
        Case {
            label: "branch: the full ref, not the last segment of its name",
            vars: &[
                ("TF_BUILD", "True"),
                ("BUILD_SOURCEBRANCH", "refs/heads/feature/tools"),
                ("BUILD_SOURCEBRANCHNAME", "tools"),
                ("BUILD_SOURCEVERSION", SHA),
                ("BUILD_REASON", "IndividualCI"),
            ],
            ci: "azure",
            git_ref: "refs/heads/feature/tools",
            environment: Some("development"),
            pull_request: None,
        },
        Case {
            label: "tag",
            vars: &[
                ("TF_BUILD", "True"),
                ("BUILD_SOURCEBRANCH", "refs/tags/v3.0.0"),
                ("BUILD_SOURCEVERSION", SHA),
            ],
            ci: "azure",
            git_ref: "refs/tags/v3.0.0",
            environment: Some("production"),
            pull_request: None,
        },
        Case {
            label: "pull request from this repository (Azure Repos, full source ref)",
            vars: &[
                ("TF_BUILD", "True"),
                ("BUILD_REASON", "PullRequest"),
                ("BUILD_SOURCEBRANCH", "refs/pull/5/merge"),
                ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/feature/p"),
                ("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "5"),
                ("SYSTEM_PULLREQUEST_ISFORK", "False"),
                ("BUILD_SOURCEVERSION", SHA),
            ],
            ci: "azure",
            git_ref: "refs/heads/feature/p",
            environment: Some("development"),
            pull_request: Some((Some("5"), "feature/p", Some(false), None)),
        },
        Case {
            label: "pull request from a fork (GitHub repository, bare source name)",
            vars: &[
                ("TF_BUILD", "True"),
                ("BUILD_REASON", "PullRequest"),
                ("BUILD_SOURCEBRANCH", "refs/pull/6/merge"),
                ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "main"),
                ("SYSTEM_PULLREQUEST_ISFORK", "True"),
                ("BUILD_SOURCEVERSION", SHA),
            ],
            ci: "azure",
            git_ref: "refs/heads/main",
            environment: None,
            pull_request: Some((None, "main", Some(true), Some("staging"))),
        },
    ]);
}

#[test]
fn bitbucket_pipelines() {
    run_cases(&[
        Case {
            label: "branch",
            vars: &[
                ("CI", "true"),
                ("BITBUCKET_BUILD_NUMBER", "17"),
                ("BITBUCKET_BRANCH", "main"),
                ("BITBUCKET_COMMIT", SHA),
            ],
            ci: "bitbucket",
            git_ref: "refs/heads/main",
            environment: Some("staging"),
            pull_request: None,
        },
        Case {
            label: "tag",
            vars: &[
                ("BITBUCKET_BUILD_NUMBER", "18"),
                ("BITBUCKET_TAG", "v1.2.3-alpha.1"),
                ("BITBUCKET_COMMIT", SHA),
            ],
            ci: "bitbucket",
            git_ref: "refs/tags/v1.2.3-alpha.1",
            environment: Some("alpha"),
            pull_request: None,
        },
        Case {
            label: "pull request (Bitbucket runs none for forks)",
            vars: &[
                ("BITBUCKET_BUILD_NUMBER", "19"),
                ("BITBUCKET_BRANCH", "feature/q"),
                ("BITBUCKET_PR_ID", "2"),
                ("BITBUCKET_PR_DESTINATION_BRANCH", "main"),
                ("BITBUCKET_COMMIT", SHA),
            ],
            ci: "bitbucket",
            git_ref: "refs/heads/feature/q",
            environment: Some("development"),
            pull_request: Some((Some("2"), "feature/q", Some(false), None)),
        },
    ]);
}

#[test]
fn jenkins() {
    run_cases(&[
        Case {
            label: "multibranch branch",
            vars: &[
                ("JENKINS_URL", "https://jenkins.example.com/"),
                ("BRANCH_NAME", "test/uat1"),
                ("GIT_COMMIT", SHA),
            ],
            ci: "jenkins",
            git_ref: "refs/heads/test/uat1",
            environment: Some("testing"),
            pull_request: None,
        },
        Case {
            label: "multibranch tag",
            vars: &[
                ("JENKINS_URL", "https://jenkins.example.com/"),
                ("TAG_NAME", "v1.2.3"),
                ("BRANCH_NAME", "v1.2.3"),
                ("GIT_COMMIT", SHA),
            ],
            ci: "jenkins",
            git_ref: "refs/tags/v1.2.3",
            environment: Some("production"),
            pull_request: None,
        },
        Case {
            label: "git plugin: the remote's name is dropped, slashes kept",
            vars: &[
                ("JENKINS_URL", "https://jenkins.example.com/"),
                ("GIT_BRANCH", "origin/feature/j"),
                ("GIT_COMMIT", SHA),
            ],
            ci: "jenkins",
            git_ref: "refs/heads/feature/j",
            environment: Some("development"),
            pull_request: None,
        },
        Case {
            label: "change request from a fork",
            vars: &[
                ("JENKINS_URL", "https://jenkins.example.com/"),
                ("BRANCH_NAME", "PR-24"),
                ("CHANGE_ID", "24"),
                ("CHANGE_BRANCH", "feature/k"),
                ("CHANGE_FORK", "mallory"),
                ("GIT_COMMIT", SHA),
            ],
            ci: "jenkins",
            git_ref: "refs/heads/feature/k",
            environment: None,
            pull_request: Some((Some("24"), "feature/k", Some(true), Some("development"))),
        },
    ]);
}

#[test]
fn a_ci_without_its_variables_is_a_one_line_usage_error() {
    let dir = Dir::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("GITLAB_CI", "true"), ("CI_COMMIT_SHA", SHA)],
            "GITLAB_CI is true but none of CI_COMMIT_TAG, CI_COMMIT_BRANCH, CI_MERGE_REQUEST_SOURCE_BRANCH_NAME is set; pass --ref and --sha, or run inside a GitLab CI job",
        ),
        (
            &[("GITLAB_CI", "true"), ("CI_COMMIT_BRANCH", "main")],
            "GITLAB_CI is true but CI_COMMIT_SHA is not set; pass --ref and --sha, or run inside a GitLab CI job",
        ),
        (
            &[("CI", "woodpecker"), ("CI_COMMIT_SHA", SHA)],
            "CI is woodpecker but none of CI_COMMIT_TAG, CI_COMMIT_BRANCH, CI_COMMIT_SOURCE_BRANCH is set; pass --ref and --sha, or run inside a Woodpecker job",
        ),
        (
            &[("BUILDKITE", "true"), ("BUILDKITE_BRANCH", "main")],
            "BUILDKITE is true but BUILDKITE_COMMIT is not set; pass --ref and --sha, or run inside a Buildkite job",
        ),
        (
            &[("CIRCLECI", "true"), ("CIRCLE_SHA1", SHA)],
            "CIRCLECI is true but none of CIRCLE_TAG, CIRCLE_BRANCH is set; pass --ref and --sha, or run inside a CircleCI job",
        ),
        (
            &[("BITBUCKET_BUILD_NUMBER", "1"), ("BITBUCKET_COMMIT", SHA)],
            "BITBUCKET_BUILD_NUMBER is set but none of BITBUCKET_TAG, BITBUCKET_BRANCH is set; pass --ref and --sha, or run inside a Bitbucket Pipelines job",
        ),
        (
            &[("JENKINS_URL", "https://j/"), ("BRANCH_NAME", "main")],
            "JENKINS_URL is set but GIT_COMMIT is not set; pass --ref and --sha, or run inside a Jenkins job",
        ),
    ];
    for (vars, message) in cases {
        let mut cmd = dir.command();
        for (key, value) in *vars {
            cmd.env(key, value);
        }
        let line = cmd
            .args(["env", "--format", "json", "--timestamp", TS])
            .usage_error();
        assert_eq!(line, format!("error: {message}"), "{vars:?}");
    }
    // Azure gets the error once more as a logging command, on stdout, on one line.
    let output = dir
        .command()
        .env("TF_BUILD", "True")
        .env("BUILD_SOURCEBRANCH", "refs/heads/main")
        .args(["env", "--timestamp", TS])
        .expect_exit(2);
    let message = "TF_BUILD is true but BUILD_SOURCEVERSION is not set; pass --ref and --sha, or run inside an Azure Pipelines job";
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("##vso[task.logissue type=error]{message}\n")
    );
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        format!("error: {message}\n")
    );
}

#[test]
fn flags_override_any_ci() {
    let dir = Dir::new();
    let other = "abcdef0123456789abcdef0123456789abcdef01";
    let got = env_json(
        dir.command()
            .env("GITLAB_CI", "true")
            .env("CI_COMMIT_BRANCH", "feature/x")
            .env("CI_COMMIT_SHA", SHA)
            .args(["--ref", "refs/tags/v1.2.3", "--sha", other]),
    );
    assert_eq!(got["ref"], "refs/tags/v1.2.3");
    assert_eq!(got["sha"], other);
    assert_eq!(got["environment"], "production");
    assert_eq!(got["ci"], "gitlab");
    // A --ref in a merge request pipeline is the ref: no request is reported any more.
    let got = env_json(
        dir.command()
            .env("GITLAB_CI", "true")
            .env("CI_MERGE_REQUEST_IID", "3")
            .env("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "main")
            .env("CI_COMMIT_SHA", SHA)
            .args(["--ref", "refs/heads/feature/y"]),
    );
    assert_eq!(got["environment"], "development");
    assert_eq!(got["pull_request"], Value::Null);
}

#[test]
fn human_output_names_the_ci_and_the_request() {
    let dir = Dir::new();
    let stdout = dir
        .command()
        .env("GITLAB_CI", "true")
        .env("CI_PIPELINE_SOURCE", "merge_request_event")
        .env("CI_MERGE_REQUEST_IID", "4")
        .env("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature/x")
        .env("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "10")
        .env("CI_PROJECT_ID", "10")
        .env("CI_COMMIT_SHA", SHA)
        .args(["env", "--timestamp", TS])
        .stdout();
    assert!(stdout.contains("\nci           GitLab CI\n"), "{stdout}");
    assert!(
        stdout.ends_with("\npull request 4 from feature/x\n"),
        "{stdout}"
    );
}

#[test]
fn gitlab_format_is_a_dotenv_report() {
    let dir = Dir::new();
    let gitlab = |cmd: &mut TestCommand| {
        cmd.env("GITLAB_CI", "true")
            .env("CI_COMMIT_BRANCH", "test/uat2")
            .env("CI_COMMIT_SHA", SHA);
    };
    let expected = format!(
        "GITOPS_REF=refs/heads/test/uat2\n\
         GITOPS_SHA={SHA}\n\
         GITOPS_ENVIRONMENT=testing\n\
         GITOPS_TAG=tst-uat2-0123456-{TS}\n\
         GITOPS_TAGS=tst-uat2-0123456-{TS},tst-uat2-latest\n\
         GITOPS_LOOKUP_TAG=commit-{SHA}\n\
         GITOPS_IMAGE=\n\
         GITOPS_TIMESTAMP={TS}\n"
    );
    let mut cmd = dir.command();
    gitlab(&mut cmd);
    let stdout = cmd
        .args(["env", "--format", "gitlab", "--timestamp", TS])
        .stdout();
    assert_eq!(stdout, expected);
    // GitLab's rules for the file: KEY=VALUE lines, keys of A-Z 0-9 _, no quotes, no blanks.
    let line = regex::Regex::new(r"^[A-Z0-9_]+=[^\n\x22\x27]*$").unwrap();
    assert!(stdout.lines().all(|l| line.is_match(l)), "{stdout}");

    // --dotenv writes the file, replacing what was there, and prints nothing.
    let path = dir.join("out/gitops.env");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(&path, "OLD=1\n").unwrap();
    let mut cmd = dir.command();
    gitlab(&mut cmd);
    let stdout = cmd
        .args(["env", "--format", "gitlab", "--timestamp", TS, "--dotenv"])
        .arg(&path)
        .stdout();
    assert_eq!(stdout, "");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
}

#[test]
fn gitlab_format_and_dotenv_are_refused_where_they_mean_nothing() {
    let dir = Dir::git_repo_with_commit();
    let line = dir
        .command()
        .args(["env", "--dotenv", "x.env"])
        .usage_error();
    assert_eq!(
        line,
        "error: --dotenv writes the report of --format gitlab; add --format gitlab or drop --dotenv"
    );
    for command in ["flux", "init-workflows"] {
        let line = dir
            .command()
            .args([command, "--format", "gitlab"])
            .usage_error();
        assert_eq!(
            line,
            format!("error: {command} has no dotenv report; drop --format gitlab")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// What `build` reports to each CI
// ---------------------------------------------------------------------------------------------

use crate::support::{Fixture, Registry};

/// The generated GitLab job's command, run with a GitLab branch pipeline's variables: the
/// dotenv report carries the digest and the tags, comma-separated.
#[test]
fn build_in_gitlab_writes_the_dotenv_report() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let dotenv = fixture.path().join("gitops.env");
    let stdout = fixture
        .build("builtin", &["--build-with", "podman", "--timestamp", TS])
        .args(["--environment", "staging", "--format", "gitlab", "--dotenv"])
        .arg(&dotenv)
        .env("GITLAB_CI", "true")
        .env("CI_COMMIT_BRANCH", "main")
        .env("CI_COMMIT_SHA", &sha)
        .stdout();
    assert_eq!(stdout, "");
    let digest = registry
        .digest("fixture", &format!("commit-{sha}"))
        .unwrap();
    let text = std::fs::read_to_string(&dotenv).unwrap();
    assert_eq!(
        text,
        format!(
            "GITOPS_ACTION=built\nGITOPS_BUILT=true\nGITOPS_DIGEST={digest}\n\
             GITOPS_IMAGE={}/fixture\nGITOPS_TAGS=stg-{}-{TS},stg-latest\n\
             GITOPS_ENVIRONMENT=staging\nGITOPS_REF=refs/heads/main\nGITOPS_SHA={sha}\n",
            registry.host(),
            &sha[..7]
        )
    );
}

/// Buildkite: the summary goes to `buildkite-agent annotate` when the program is there (a stub
/// that records its arguments); Azure: to a file the agent uploads, named by a logging command.
#[test]
fn build_reports_to_buildkite_and_azure() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let stubs = fixture.path().join("stubs");
    std::fs::create_dir_all(&stubs).unwrap();
    let recorded = fixture.path().join("annotate.args");
    let agent = stubs.join("buildkite-agent");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n",
            recorded.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&agent)
        .status()
        .unwrap();
    let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap());
    fixture
        .build("builtin", &["--build-with", "podman", "--timestamp", TS])
        .env("PATH", &path)
        .env("BUILDKITE", "true")
        .env("BUILDKITE_BRANCH", "main")
        .env("BUILDKITE_COMMIT", &sha)
        .succeeds();
    let args = std::fs::read_to_string(&recorded).unwrap();
    assert!(
        args.starts_with(
            "annotate\n--style\nsuccess\n--context\ncargo-gitops\n### cargo gitops build\n"
        ),
        "{args}"
    );
    assert!(
        args.contains("| action | `retagged` |") || args.contains("| action | `built` |"),
        "{args}"
    );

    let temp = fixture.path().join("agent-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let stdout = fixture
        .build("builtin", &["--build-with", "podman", "--timestamp", TS])
        .env("TF_BUILD", "True")
        .env("BUILD_SOURCEBRANCH", "refs/heads/main")
        .env("BUILD_SOURCEVERSION", &sha)
        .env("AGENT_TEMPDIRECTORY", &temp)
        .stdout();
    let command = stdout
        .lines()
        .find(|l| l.starts_with("##vso[task.uploadsummary]"))
        .unwrap_or_else(|| panic!("no uploadsummary in {stdout}"));
    let file = command.trim_start_matches("##vso[task.uploadsummary]");
    assert!(file.starts_with(temp.to_str().unwrap()), "{file}");
    let summary = std::fs::read_to_string(file).unwrap();
    assert!(summary.contains("| action | `retagged` |"), "{summary}");
}

#[test]
fn release_writes_a_dotenv_report() {
    let dir = Dir::git_repo();
    dir.git(["config", "user.name", "Release Tester"]);
    dir.git(["config", "user.email", "release@example.com"]);
    dir.create("README", "hello\n");
    dir.commit("first");
    let head = dir.head();
    let stdout = dir
        .command()
        .args(["release", "1.0.0", "--format", "gitlab"])
        .stdout();
    assert_eq!(
        stdout,
        format!(
            "GITOPS_TAG=v1.0.0\nGITOPS_VERSION=1.0.0\nGITOPS_COMMIT={head}\nGITOPS_PUSHED=false\n"
        )
    );
}
