//! CI servers that build from any code host: Woodpecker, Buildkite, CircleCI and Jenkins.
//! Each reader turns its provider's documented variables into a `Runner`; which provider runs
//! the job, and the rules every reader follows (empty is unset, tag before branch), are
//! `detect`'s.

use super::{PullRequest, Runner, Vars, branch, differ, tag};

/// Woodpecker: like GitLab's names, but in a pull request `CI_COMMIT_BRANCH` is the *target*
/// branch; the source is `CI_COMMIT_SOURCE_BRANCH`. Woodpecker does not say whether a request
/// comes from a fork.
pub(super) fn woodpecker(vars: &Vars<'_>) -> Runner {
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
pub(super) fn buildkite(vars: &Vars<'_>) -> Runner {
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
pub(super) fn circleci(vars: &Vars<'_>) -> Runner {
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

/// Jenkins: a multibranch pipeline gives `TAG_NAME`, `BRANCH_NAME` and, for a change request,
/// `CHANGE_ID` with its source `CHANGE_BRANCH` (`CHANGE_FORK` is set for forks). Without the
/// branch plugin, the git plugin's `GIT_LOCAL_BRANCH`, else `GIT_BRANCH` less its `origin/`.
pub(super) fn jenkins(vars: &Vars<'_>) -> Runner {
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
