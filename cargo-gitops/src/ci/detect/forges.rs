//! The CI of code hosts, which knows the repository it builds: GitHub Actions (and Forgejo's
//! and Gitea's runners), GitLab CI, Azure Pipelines and Bitbucket Pipelines. Each reader turns
//! its provider's documented variables into a `Runner`; which provider runs the job, and the
//! rules every reader follows (empty is unset, tag before branch), are `detect`'s.

use std::path::PathBuf;

use super::{PullRequest, Runner, Vars, branch, differ, tag};

/// GitHub Actions, and Forgejo's and Gitea's runners, which set the same `GITHUB_*` variables.
/// `GITHUB_REF` is the full ref; in a `pull_request` run it is `refs/pull/N/merge` and the
/// source branch is `GITHUB_HEAD_REF`, and whether it comes from a fork is in the event file.
pub(super) fn actions(vars: &Vars<'_>) -> Runner {
    let repository = vars.get("GITHUB_REPOSITORY");
    let event = vars.get("GITHUB_EVENT_NAME");
    let payload: Option<serde_json::Value> = vars
        .get("GITHUB_EVENT_PATH")
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    // Every event that names a repository names its default branch.
    let default_branch = payload
        .as_ref()
        .and_then(|p| p["repository"]["default_branch"].as_str())
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    let pull_request = match (event.as_deref(), vars.get("GITHUB_HEAD_REF")) {
        (Some("pull_request" | "pull_request_target"), Some(source_branch)) => {
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
        default_branch,
        ..Runner::default()
    }
}

/// GitLab CI: `CI_COMMIT_TAG` in tag pipelines, `CI_COMMIT_BRANCH` in branch pipelines, and in
/// merge request pipelines (where `CI_COMMIT_BRANCH` is unset) the source branch.
pub(super) fn gitlab(vars: &Vars<'_>) -> Runner {
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
        default_branch: vars.get("CI_DEFAULT_BRANCH"),
        ref_variables: &[
            "CI_COMMIT_TAG",
            "CI_COMMIT_BRANCH",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
        ],
        sha_variable: "CI_COMMIT_SHA",
        ..Runner::default()
    }
}

/// Azure Pipelines: `BUILD_SOURCEBRANCH` is the full ref (`BUILD_SOURCEBRANCHNAME` is only its
/// last segment, so it is not used); a pull request build (`BUILD_REASON=PullRequest`) gives its
/// source branch, full on Azure Repos and bare for GitHub repositories.
pub(super) fn azure(vars: &Vars<'_>) -> Runner {
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
pub(super) fn bitbucket(vars: &Vars<'_>) -> Runner {
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
