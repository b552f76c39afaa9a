//! Which CI system runs the job, and what its documented variables say about the build: the
//! ref (a tag, a branch, or the source branch of a pull or merge request), the commit, whether
//! a request comes from a fork, and the files a job reports through. One reader per provider,
//! tried in a fixed order because some runners set several providers' markers (Forgejo's sets
//! `FORGEJO_ACTIONS`, `GITEA_ACTIONS` and `GITHUB_ACTIONS`). An empty variable counts as unset,
//! and on every provider the tag variable is read before the branch one, since some put the
//! tag name in the branch variable too. Choosing the environment is `deployment`'s job.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Error;

/// A CI system this tool reads, in detection order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ci {
    Forgejo,
    Gitea,
    Github,
    Gitlab,
    Woodpecker,
    Buildkite,
    Circleci,
    Azure,
    Bitbucket,
    Jenkins,
}

impl Ci {
    /// Every provider, in the order they are detected: the first whose marker is set wins.
    pub const ALL: [Ci; 10] = [
        Ci::Forgejo,
        Ci::Gitea,
        Ci::Github,
        Ci::Gitlab,
        Ci::Woodpecker,
        Ci::Buildkite,
        Ci::Circleci,
        Ci::Azure,
        Ci::Bitbucket,
        Ci::Jenkins,
    ];

    /// The identifier in JSON output and configuration (`gitlab`).
    pub fn id(self) -> &'static str {
        match self {
            Ci::Forgejo => "forgejo",
            Ci::Gitea => "gitea",
            Ci::Github => "github",
            Ci::Gitlab => "gitlab",
            Ci::Woodpecker => "woodpecker",
            Ci::Buildkite => "buildkite",
            Ci::Circleci => "circleci",
            Ci::Azure => "azure",
            Ci::Bitbucket => "bitbucket",
            Ci::Jenkins => "jenkins",
        }
    }

    /// The product's name, for people (`GitLab CI`).
    pub fn name(self) -> &'static str {
        match self {
            Ci::Forgejo => "Forgejo Actions",
            Ci::Gitea => "Gitea Actions",
            Ci::Github => "GitHub Actions",
            Ci::Gitlab => "GitLab CI",
            Ci::Woodpecker => "Woodpecker",
            Ci::Buildkite => "Buildkite",
            Ci::Circleci => "CircleCI",
            Ci::Azure => "Azure Pipelines",
            Ci::Bitbucket => "Bitbucket Pipelines",
            Ci::Jenkins => "Jenkins",
        }
    }

    /// Runners of GitHub's workflow syntax: `$GITHUB_OUTPUT`, the step summary and workflow
    /// commands (`::group::`, `::error::`) work the same on all three.
    pub fn is_actions(self) -> bool {
        matches!(self, Ci::Forgejo | Ci::Gitea | Ci::Github)
    }

    /// The variable that says "this is the provider", and the value it must have (`None`: any
    /// value that is not empty).
    fn marker(self) -> (&'static str, Option<&'static str>) {
        match self {
            Ci::Forgejo => ("FORGEJO_ACTIONS", Some("true")),
            Ci::Gitea => ("GITEA_ACTIONS", Some("true")),
            Ci::Github => ("GITHUB_ACTIONS", Some("true")),
            Ci::Gitlab => ("GITLAB_CI", Some("true")),
            Ci::Woodpecker => ("CI", Some("woodpecker")),
            Ci::Buildkite => ("BUILDKITE", Some("true")),
            Ci::Circleci => ("CIRCLECI", Some("true")),
            // Azure sets `True`; compared without case.
            Ci::Azure => ("TF_BUILD", Some("true")),
            Ci::Bitbucket => ("BITBUCKET_BUILD_NUMBER", None),
            Ci::Jenkins => ("JENKINS_URL", None),
        }
    }

    /// How the marker reads in a sentence (`GITLAB_CI is true`).
    fn marker_text(self) -> String {
        match self.marker() {
            (name, Some(value)) => format!("{name} is {value}"),
            (name, None) => format!("{name} is set"),
        }
    }

    fn is_marked(self, vars: &Vars<'_>) -> bool {
        let (name, expected) = self.marker();
        match (vars.get(name), expected) {
            (Some(value), Some(expected)) => value.eq_ignore_ascii_case(expected),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// A pull or merge request build: its ref is the source branch, but it deploys only where
/// `deployment` allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// The request's number (`12`), when the CI gives it.
    pub number: Option<String>,
    pub source_branch: String,
    /// `true` from a fork, `false` from this repository, `None` when the CI does not say.
    pub fork: Option<bool>,
    /// The environment the source branch would have deployed to, had this been a push; set by
    /// `deployment` when it refuses to deploy the request.
    pub withheld_from: Option<String>,
}

/// What the CI running this process says, read once from the environment.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    /// `None` outside CI, or in a CI this tool does not know.
    pub ci: Option<Ci>,
    /// The full ref built (`refs/heads/main`, `refs/tags/v1.2.3`), when the CI gave one.
    pub git_ref: Option<String>,
    /// The commit built, as the CI gave it (Buildkite may say `HEAD`).
    pub sha: Option<String>,
    pub pull_request: Option<PullRequest>,
    /// The repository's web address, for `org.opencontainers.image.source`.
    pub source_url: Option<String>,
    /// `$GITHUB_OUTPUT` (GitHub, Forgejo, Gitea).
    pub output_file: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY` (GitHub, Forgejo, Gitea).
    pub summary_file: Option<PathBuf>,
    /// Azure's `$AGENT_TEMPDIRECTORY`, where a summary file is left for the agent to upload.
    pub temp_dir: Option<PathBuf>,
    /// The variables the ref is read from, for the error when none is set.
    ref_variables: &'static [&'static str],
    sha_variable: &'static str,
}

impl Runner {
    /// Reads the process environment.
    pub fn from_env() -> Runner {
        detect(&|name| std::env::var(name).ok())
    }

    /// Whether a step runs under GitHub's workflow syntax (GitHub, Forgejo, Gitea).
    pub fn is_actions(&self) -> bool {
        self.ci.is_some_and(Ci::is_actions)
    }

    /// The error for a CI that did not give the ref (or, with `sha`, the commit).
    pub fn missing(&self, sha: bool) -> Error {
        let ci = self.ci.expect("only a detected CI has variables to miss");
        let missing = match (sha, self.ref_variables) {
            (true, _) => format!("{} is not set", self.sha_variable),
            (false, [one]) => format!("{one} is not set"),
            (false, many) => format!("none of {} is set", many.join(", ")),
        };
        Error::MissingCiVariable {
            marker: ci.marker_text(),
            missing,
            ci: match ci {
                Ci::Azure => "an Azure Pipelines",
                _ => ci.name(),
            },
        }
    }
}

/// Every variable a reader below may look at: tests scrub them all so that the environment of
/// the machine running them cannot leak in.
pub const VARIABLES: &[&str] = &[
    // markers
    "FORGEJO_ACTIONS",
    "GITEA_ACTIONS",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CI",
    "BUILDKITE",
    "CIRCLECI",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "JENKINS_URL",
    // GitHub, Forgejo, Gitea
    "GITHUB_REF",
    "GITHUB_SHA",
    "GITHUB_EVENT_NAME",
    "GITHUB_HEAD_REF",
    "GITHUB_EVENT_PATH",
    "GITHUB_REPOSITORY",
    "GITHUB_SERVER_URL",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    // GitLab
    "CI_COMMIT_TAG",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_SHA",
    "CI_PIPELINE_SOURCE",
    "CI_MERGE_REQUEST_IID",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_MERGE_REQUEST_SOURCE_PROJECT_ID",
    "CI_PROJECT_ID",
    "CI_EXTERNAL_PULL_REQUEST_IID",
    "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME",
    "CI_EXTERNAL_PULL_REQUEST_SOURCE_REPOSITORY",
    "CI_EXTERNAL_PULL_REQUEST_TARGET_REPOSITORY",
    "CI_PROJECT_URL",
    // Woodpecker (CI_COMMIT_TAG, CI_COMMIT_BRANCH, CI_COMMIT_SHA as GitLab's)
    "CI_PIPELINE_EVENT",
    "CI_COMMIT_SOURCE_BRANCH",
    "CI_COMMIT_PULL_REQUEST",
    "CI_REPO_URL",
    // Buildkite
    "BUILDKITE_TAG",
    "BUILDKITE_BRANCH",
    "BUILDKITE_COMMIT",
    "BUILDKITE_PULL_REQUEST",
    "BUILDKITE_PULL_REQUEST_REPO",
    "BUILDKITE_REPO",
    // CircleCI
    "CIRCLE_TAG",
    "CIRCLE_BRANCH",
    "CIRCLE_SHA1",
    "CIRCLE_PR_NUMBER",
    "CIRCLE_PR_USERNAME",
    // Azure Pipelines
    "BUILD_SOURCEBRANCH",
    "BUILD_SOURCEVERSION",
    "BUILD_REASON",
    "SYSTEM_PULLREQUEST_SOURCEBRANCH",
    "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER",
    "SYSTEM_PULLREQUEST_ISFORK",
    "AGENT_TEMPDIRECTORY",
    // Bitbucket Pipelines
    "BITBUCKET_TAG",
    "BITBUCKET_BRANCH",
    "BITBUCKET_COMMIT",
    "BITBUCKET_PR_ID",
    "BITBUCKET_GIT_HTTP_ORIGIN",
    // Jenkins
    "TAG_NAME",
    "CHANGE_ID",
    "CHANGE_BRANCH",
    "CHANGE_FORK",
    "BRANCH_NAME",
    "GIT_LOCAL_BRANCH",
    "GIT_BRANCH",
    "GIT_COMMIT",
];

/// The variables, with empty values read as unset.
struct Vars<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        debug_assert!(
            VARIABLES.contains(&name),
            "{name} is missing from VARIABLES"
        );
        (self.get)(name).filter(|value| !value.is_empty())
    }
}

fn branch(name: String) -> String {
    format!("refs/heads/{name}")
}

fn tag(name: String) -> String {
    format!("refs/tags/{name}")
}

/// Whether two values the CI gives are the same, `None` when either is missing.
fn differ(a: Option<String>, b: Option<String>) -> Option<bool> {
    Some(a? != b?)
}

/// Detects the CI from its marker and reads its variables; outside CI, an empty `Runner`.
pub fn detect(get: &dyn Fn(&str) -> Option<String>) -> Runner {
    let vars = Vars { get };
    let Some(ci) = Ci::ALL.into_iter().find(|ci| ci.is_marked(&vars)) else {
        return Runner::default();
    };
    let mut runner = match ci {
        Ci::Forgejo | Ci::Gitea | Ci::Github => actions(&vars),
        Ci::Gitlab => gitlab(&vars),
        Ci::Woodpecker => woodpecker(&vars),
        Ci::Buildkite => buildkite(&vars),
        Ci::Circleci => circleci(&vars),
        Ci::Azure => azure(&vars),
        Ci::Bitbucket => bitbucket(&vars),
        Ci::Jenkins => jenkins(&vars),
    };
    runner.ci = Some(ci);
    runner
}

/// GitHub Actions, and Forgejo's and Gitea's runners, which set the same `GITHUB_*` variables.
/// `GITHUB_REF` is the full ref; in a `pull_request` run it is `refs/pull/N/merge` and the
/// source branch is `GITHUB_HEAD_REF`, and whether it comes from a fork is in the event file.
fn actions(vars: &Vars<'_>) -> Runner {
    let repository = vars.get("GITHUB_REPOSITORY");
    let event = vars.get("GITHUB_EVENT_NAME");
    let pull_request = match (event.as_deref(), vars.get("GITHUB_HEAD_REF")) {
        (Some("pull_request" | "pull_request_target"), Some(source_branch)) => {
            let payload: Option<serde_json::Value> = vars
                .get("GITHUB_EVENT_PATH")
                .and_then(|path| std::fs::read(path).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            let request = payload.as_ref().map(|p| &p["pull_request"]);
            let head_repository = request
                .and_then(|r| r["head"]["repo"]["full_name"].as_str())
                .map(str::to_owned);
            let number = request
                .and_then(|r| r["number"].as_u64())
                .map(|n| n.to_string())
                .or_else(|| {
                    vars.get("GITHUB_REF").and_then(|r| {
                        r.strip_prefix("refs/pull/")
                            .and_then(|rest| rest.split('/').next())
                            .map(str::to_owned)
                    })
                });
            Some(PullRequest {
                number,
                source_branch,
                fork: differ(head_repository, repository.clone()),
                withheld_from: None,
            })
        }
        _ => None,
    };
    let source_url = match (vars.get("GITHUB_SERVER_URL"), &repository) {
        (Some(server), Some(repository)) => Some(format!("{server}/{repository}")),
        _ => None,
    };
    Runner {
        git_ref: match &pull_request {
            Some(request) => Some(branch(request.source_branch.clone())),
            None => vars.get("GITHUB_REF"),
        },
        sha: vars.get("GITHUB_SHA"),
        pull_request,
        source_url,
        output_file: vars.get("GITHUB_OUTPUT").map(PathBuf::from),
        summary_file: vars.get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        ref_variables: &["GITHUB_REF"],
        sha_variable: "GITHUB_SHA",
        ..Runner::default()
    }
}

/// GitLab CI: `CI_COMMIT_TAG` in tag pipelines, `CI_COMMIT_BRANCH` in branch pipelines, and in
/// merge request pipelines (where `CI_COMMIT_BRANCH` is unset) the source branch.
fn gitlab(vars: &Vars<'_>) -> Runner {
    let source = vars.get("CI_PIPELINE_SOURCE");
    let pull_request = if source.as_deref() == Some("external_pull_request_event") {
        vars.get("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME")
            .map(|source_branch| PullRequest {
                number: vars.get("CI_EXTERNAL_PULL_REQUEST_IID"),
                source_branch,
                fork: differ(
                    vars.get("CI_EXTERNAL_PULL_REQUEST_SOURCE_REPOSITORY"),
                    vars.get("CI_EXTERNAL_PULL_REQUEST_TARGET_REPOSITORY"),
                ),
                withheld_from: None,
            })
    } else if source.as_deref() == Some("merge_request_event")
        || vars.get("CI_MERGE_REQUEST_IID").is_some()
    {
        vars.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
            .map(|source_branch| PullRequest {
                number: vars.get("CI_MERGE_REQUEST_IID"),
                source_branch,
                fork: differ(
                    vars.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"),
                    vars.get("CI_PROJECT_ID"),
                ),
                withheld_from: None,
            })
    } else {
        None
    };
    let git_ref = vars
        .get("CI_COMMIT_TAG")
        .map(tag)
        .or_else(|| match &pull_request {
            Some(request) => Some(branch(request.source_branch.clone())),
            None => vars.get("CI_COMMIT_BRANCH").map(branch),
        });
    Runner {
        git_ref,
        sha: vars.get("CI_COMMIT_SHA"),
        pull_request,
        source_url: vars.get("CI_PROJECT_URL"),
        ref_variables: &[
            "CI_COMMIT_TAG",
            "CI_COMMIT_BRANCH",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        ],
        sha_variable: "CI_COMMIT_SHA",
        ..Runner::default()
    }
}

/// Woodpecker: like GitLab's names, but in a pull request `CI_COMMIT_BRANCH` is the *target*
/// branch; the source is `CI_COMMIT_SOURCE_BRANCH`. Woodpecker does not say whether a request
/// comes from a fork.
fn woodpecker(vars: &Vars<'_>) -> Runner {
    let pull_request = match vars.get("CI_PIPELINE_EVENT").as_deref() {
        Some("pull_request" | "pull_request_closed") => {
            vars.get("CI_COMMIT_SOURCE_BRANCH")
                .map(|source_branch| PullRequest {
                    number: vars.get("CI_COMMIT_PULL_REQUEST"),
                    source_branch,
                    fork: None,
                    withheld_from: None,
                })
        }
        _ => None,
    };
    let git_ref = vars
        .get("CI_COMMIT_TAG")
        .map(tag)
        .or_else(|| match &pull_request {
            Some(request) => Some(branch(request.source_branch.clone())),
            None => vars.get("CI_COMMIT_BRANCH").map(branch),
        });
    Runner {
        git_ref,
        sha: vars.get("CI_COMMIT_SHA"),
        pull_request,
        source_url: vars.get("CI_REPO_URL"),
        ref_variables: &[
            "CI_COMMIT_TAG",
            "CI_COMMIT_BRANCH",
            "CI_COMMIT_SOURCE_BRANCH",
        ],
        sha_variable: "CI_COMMIT_SHA",
        ..Runner::default()
    }
}

/// Buildkite: `BUILDKITE_TAG` first (on a tag push `BUILDKITE_BRANCH` holds the tag name too);
/// in a pull request build `BUILDKITE_PULL_REQUEST` is its number (else `false`) and
/// `BUILDKITE_BRANCH` its source branch. `BUILDKITE_COMMIT` may be `HEAD`, which git resolves.
fn buildkite(vars: &Vars<'_>) -> Runner {
    let branch_name = vars.get("BUILDKITE_BRANCH");
    let pull_request = match (vars.get("BUILDKITE_PULL_REQUEST"), &branch_name) {
        (Some(number), Some(source_branch)) if number != "false" => Some(PullRequest {
            number: Some(number),
            source_branch: source_branch.clone(),
            fork: differ(
                vars.get("BUILDKITE_PULL_REQUEST_REPO"),
                vars.get("BUILDKITE_REPO"),
            ),
            withheld_from: None,
        }),
        _ => None,
    };
    Runner {
        git_ref: vars
            .get("BUILDKITE_TAG")
            .map(tag)
            .or(branch_name.map(branch)),
        sha: vars.get("BUILDKITE_COMMIT"),
        pull_request,
        ref_variables: &["BUILDKITE_TAG", "BUILDKITE_BRANCH"],
        sha_variable: "BUILDKITE_COMMIT",
        ..Runner::default()
    }
}

/// CircleCI builds branches, not merges: a build of a branch that has a pull request open is a
/// branch build like any other. Only a request from a fork (`CIRCLE_PR_NUMBER`,
/// `CIRCLE_PR_USERNAME`, set for forks only) is a pull request build here.
fn circleci(vars: &Vars<'_>) -> Runner {
    let branch_name = vars.get("CIRCLE_BRANCH");
    let fork_number = vars.get("CIRCLE_PR_NUMBER");
    let pull_request = match (&branch_name, &fork_number, vars.get("CIRCLE_PR_USERNAME")) {
        (Some(source_branch), Some(_), _) | (Some(source_branch), None, Some(_)) => {
            Some(PullRequest {
                number: fork_number.clone(),
                source_branch: source_branch.clone(),
                fork: Some(true),
                withheld_from: None,
            })
        }
        _ => None,
    };
    Runner {
        git_ref: vars.get("CIRCLE_TAG").map(tag).or(branch_name.map(branch)),
        sha: vars.get("CIRCLE_SHA1"),
        pull_request,
        ref_variables: &["CIRCLE_TAG", "CIRCLE_BRANCH"],
        sha_variable: "CIRCLE_SHA1",
        ..Runner::default()
    }
}

/// Azure Pipelines: `BUILD_SOURCEBRANCH` is the full ref (`BUILD_SOURCEBRANCHNAME` is only its
/// last segment, so it is not used); a pull request build (`BUILD_REASON=PullRequest`) gives its
/// source branch, full on Azure Repos and bare for GitHub repositories.
fn azure(vars: &Vars<'_>) -> Runner {
    let pull_request = match (
        vars.get("BUILD_REASON").as_deref(),
        vars.get("SYSTEM_PULLREQUEST_SOURCEBRANCH"),
    ) {
        (Some("PullRequest"), Some(source)) => Some(PullRequest {
            number: vars.get("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER"),
            source_branch: source
                .strip_prefix("refs/heads/")
                .unwrap_or(&source)
                .to_owned(),
            fork: vars
                .get("SYSTEM_PULLREQUEST_ISFORK")
                .map(|v| v.eq_ignore_ascii_case("true")),
            withheld_from: None,
        }),
        _ => None,
    };
    Runner {
        git_ref: match &pull_request {
            Some(request) => Some(branch(request.source_branch.clone())),
            None => vars.get("BUILD_SOURCEBRANCH"),
        },
        sha: vars.get("BUILD_SOURCEVERSION"),
        pull_request,
        temp_dir: vars.get("AGENT_TEMPDIRECTORY").map(PathBuf::from),
        ref_variables: &["BUILD_SOURCEBRANCH"],
        sha_variable: "BUILD_SOURCEVERSION",
        ..Runner::default()
    }
}

/// Bitbucket Pipelines: `BITBUCKET_TAG` and `BITBUCKET_BRANCH` are exclusive; a pull request
/// pipeline (`BITBUCKET_PR_ID`) gives its source branch as `BITBUCKET_BRANCH`. Bitbucket does
/// not run pipelines for requests from forks.
fn bitbucket(vars: &Vars<'_>) -> Runner {
    let branch_name = vars.get("BITBUCKET_BRANCH");
    let pull_request = match (vars.get("BITBUCKET_PR_ID"), &branch_name) {
        (Some(number), Some(source_branch)) => Some(PullRequest {
            number: Some(number),
            source_branch: source_branch.clone(),
            fork: Some(false),
            withheld_from: None,
        }),
        _ => None,
    };
    Runner {
        git_ref: vars
            .get("BITBUCKET_TAG")
            .map(tag)
            .or(branch_name.map(branch)),
        sha: vars.get("BITBUCKET_COMMIT"),
        pull_request,
        source_url: vars.get("BITBUCKET_GIT_HTTP_ORIGIN"),
        ref_variables: &["BITBUCKET_TAG", "BITBUCKET_BRANCH"],
        sha_variable: "BITBUCKET_COMMIT",
        ..Runner::default()
    }
}

/// Jenkins: a multibranch pipeline gives `TAG_NAME`, `BRANCH_NAME` and, for a change request,
/// `CHANGE_ID` with its source `CHANGE_BRANCH` (`CHANGE_FORK` is set for forks). Without the
/// branch plugin, the git plugin's `GIT_LOCAL_BRANCH`, else `GIT_BRANCH` less its `origin/`.
fn jenkins(vars: &Vars<'_>) -> Runner {
    let pull_request = match (vars.get("CHANGE_ID"), vars.get("CHANGE_BRANCH")) {
        (Some(number), Some(source_branch)) => Some(PullRequest {
            number: Some(number),
            source_branch,
            fork: Some(vars.get("CHANGE_FORK").is_some()),
            withheld_from: None,
        }),
        _ => None,
    };
    let branch_name = match &pull_request {
        Some(request) => Some(request.source_branch.clone()),
        None => vars
            .get("BRANCH_NAME")
            .or_else(|| vars.get("GIT_LOCAL_BRANCH"))
            .or_else(|| {
                vars.get("GIT_BRANCH").map(|name| {
                    name.strip_prefix("origin/")
                        .map(str::to_owned)
                        .unwrap_or(name)
                })
            }),
    };
    Runner {
        git_ref: vars.get("TAG_NAME").map(tag).or(branch_name.map(branch)),
        sha: vars.get("GIT_COMMIT"),
        pull_request,
        ref_variables: &["TAG_NAME", "BRANCH_NAME", "GIT_LOCAL_BRANCH", "GIT_BRANCH"],
        sha_variable: "GIT_COMMIT",
        ..Runner::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(vars: &[(&str, &str)]) -> Runner {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        detect(&move |name| map.get(name).cloned())
    }

    #[test]
    fn forgejo_wins_over_the_markers_its_runner_also_sets() {
        let runner = run(&[
            ("FORGEJO_ACTIONS", "true"),
            ("GITEA_ACTIONS", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("GITLAB_CI", "true"),
        ]);
        assert_eq!(runner.ci, Some(Ci::Forgejo));
        assert_eq!(run(&[("GITEA_ACTIONS", "true")]).ci, Some(Ci::Gitea));
        assert_eq!(run(&[("TF_BUILD", "True")]).ci, Some(Ci::Azure));
        assert_eq!(run(&[("GITHUB_ACTIONS", "false")]).ci, None);
        assert_eq!(run(&[("JENKINS_URL", "")]).ci, None);
        // Woodpecker's CI_COMMIT_* look like GitLab's: the marker decides, not the variables.
        let woodpecker = run(&[
            ("CI", "woodpecker"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_SHA", "abc"),
        ]);
        assert_eq!(woodpecker.ci, Some(Ci::Woodpecker));
        assert_eq!(run(&[("CI_COMMIT_BRANCH", "main")]).ci, None);
    }

    #[test]
    fn tags_are_read_before_branches() {
        let cases: &[&[(&str, &str)]] = &[
            &[
                ("BUILDKITE", "true"),
                ("BUILDKITE_TAG", "v1.2.3"),
                ("BUILDKITE_BRANCH", "v1.2.3"),
            ],
            &[
                ("JENKINS_URL", "x"),
                ("TAG_NAME", "v1.2.3"),
                ("BRANCH_NAME", "v1.2.3"),
            ],
            &[
                ("CI", "woodpecker"),
                ("CI_COMMIT_TAG", "v1.2.3"),
                ("CI_COMMIT_BRANCH", "main"),
            ],
        ];
        for vars in cases {
            assert_eq!(
                run(vars).git_ref.as_deref(),
                Some("refs/tags/v1.2.3"),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn jenkins_git_branch_loses_only_its_remote() {
        let runner = run(&[("JENKINS_URL", "x"), ("GIT_BRANCH", "origin/feature/a")]);
        assert_eq!(runner.git_ref.as_deref(), Some("refs/heads/feature/a"));
    }

    #[test]
    fn missing_variables_are_named() {
        let runner = run(&[("GITLAB_CI", "true")]);
        assert_eq!(
            runner.missing(false).to_string(),
            "GITLAB_CI is true but none of CI_COMMIT_TAG, CI_COMMIT_BRANCH, CI_MERGE_REQUEST_SOURCE_BRANCH_NAME is set; pass --ref and --sha, or run inside a GitLab CI job"
        );
        assert_eq!(
            run(&[("GITHUB_ACTIONS", "true")]).missing(true).to_string(),
            "GITHUB_ACTIONS is true but GITHUB_SHA is not set; pass --ref and --sha, or run inside a GitHub Actions job"
        );
    }
}
