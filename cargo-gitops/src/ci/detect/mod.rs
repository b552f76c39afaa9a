//! Which CI system runs the job, and what its documented variables say about the build: the
//! ref (a tag, a branch, or the source branch of a pull or merge request), the commit, whether
//! a request comes from a fork, and the files a job reports through. One reader per provider,
//! tried in a fixed order because some runners set several providers' markers (Forgejo's sets
//! `FORGEJO_ACTIONS`, `GITEA_ACTIONS` and `GITHUB_ACTIONS`). An empty variable counts as unset,
//! and on every provider the tag variable is read before the branch one, since some put the
//! tag name in the branch variable too. The readers themselves are in `forges` (the CI of code
//! hosts) and `standalone` (CI servers for any host). Choosing the environment is
//! `deployment`'s job.

mod forges;
mod standalone;

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
    /// The repository's default branch, where the CI says (GitHub's event payload, GitLab's
    /// `CI_DEFAULT_BRANCH`): the default staging environment follows it.
    pub default_branch: Option<String>,
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
    "CI_DEFAULT_BRANCH",
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
        Ci::Forgejo | Ci::Gitea | Ci::Github => forges::actions(&vars),
        Ci::Gitlab => forges::gitlab(&vars),
        Ci::Woodpecker => standalone::woodpecker(&vars),
        Ci::Buildkite => standalone::buildkite(&vars),
        Ci::Circleci => standalone::circleci(&vars),
        Ci::Azure => forges::azure(&vars),
        Ci::Bitbucket => forges::bitbucket(&vars),
        Ci::Jenkins => standalone::jenkins(&vars),
    };
    runner.ci = Some(ci);
    runner
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
