//! The `status` gate: a named commit status, or else a check run of that name, is successful
//! on the source commit (what Flux's notification-controller and Argo CD notifications post
//! after a healthy rollout). On GitHub, through its REST API, two GETs at most:
//! `/repos/{owner}/{repo}/commits/{sha}/status`, then `…/check-runs?check_name=NAME`; the
//! token is `GITOPS_STATUS_TOKEN`, else `GITHUB_TOKEN`, and `GITHUB_API_URL` moves the API
//! (GitHub Enterprise, tests on loopback). In a GitLab job (`GITLAB_CI`), through GitLab's API
//! (`CI_API_V4_URL`, project `CI_PROJECT_ID`), one GET:
//! `/projects/{id}/repository/commits/{sha}/statuses?name=NAME`, with the token of
//! `GITOPS_STATUS_TOKEN`. A token goes to the API's origin only, and is never shown.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, quote_external};
use crate::gates::Answer;
use crate::gates::evidence::normalize_repository;

/// The API unless `GITHUB_API_URL` says otherwise.
pub const DEFAULT_API: &str = "https://api.github.com";

/// How long one request may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read.
const MAX_ANSWER: u64 = 4 << 20;

/// A token, shown by name only.
#[derive(Clone)]
pub struct Token {
    value: String,
    from: &'static str,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(from {})", self.from)
    }
}

/// Where commit statuses are read: the API, the repository (`owner/repo`) and the token.
#[derive(Debug, Clone)]
pub struct Forge {
    pub api: String,
    /// `owner/repo`; without it, taken from the repository's URL when it is on GitHub.
    pub repository: Option<String>,
    pub token: Option<Token>,
    /// In a GitLab job: the project's numeric id, whose statuses GitLab's API gives.
    pub gitlab_project: Option<String>,
}

/// GitLab's API unless `CI_API_V4_URL` says otherwise.
pub const DEFAULT_GITLAB_API: &str = "https://gitlab.com/api/v4";

impl Forge {
    /// From the environment a GitHub Actions job has: `GITHUB_API_URL`, `GITHUB_REPOSITORY`,
    /// and the token in `GITOPS_STATUS_TOKEN` or `GITHUB_TOKEN`.
    pub fn from_env() -> Forge {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if var("GITLAB_CI").is_some() {
            // The job token may not read commit statuses: a token of its own, by name.
            return Forge {
                api: var("CI_API_V4_URL").unwrap_or_else(|| DEFAULT_GITLAB_API.to_owned()),
                repository: None,
                token: var("GITOPS_STATUS_TOKEN").map(|value| Token {
                    value,
                    from: "GITOPS_STATUS_TOKEN",
                }),
                gitlab_project: var("CI_PROJECT_ID"),
            };
        }
        let token = ["GITOPS_STATUS_TOKEN", "GITHUB_TOKEN"]
            .into_iter()
            .find_map(|from| var(from).map(|value| Token { value, from }));
        Forge {
            api: var("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_API.to_owned()),
            repository: var("GITHUB_REPOSITORY"),
            token,
            gitlab_project: None,
        }
    }

    /// `owner/repo`, checked, from the setting or from a `github.com` URL.
    fn repository(&self, source_url: Option<&str>) -> Option<String> {
        let name = match &self.repository {
            Some(name) => name.clone(),
            None => {
                let normalized = normalize_repository(source_url?);
                normalized.strip_prefix("github.com/")?.to_owned()
            }
        };
        let mut parts = name.split('/');
        let ok = |p: Option<&str>| {
            p.is_some_and(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    && p != "."
                    && p != ".."
            })
        };
        (ok(parts.next()) && ok(parts.next()) && parts.next().is_none()).then_some(name)
    }

    fn get(&self, url: &str) -> Result<serde_json::Value, Error> {
        let failed = |message: String| Error::Registry {
            registry: self.api.clone(),
            step: "read commit status".to_owned(),
            message,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            // A redirect could take the token elsewhere.
            .max_redirects(0)
            .user_agent(concat!("cargo-gitops/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let gitlab = self.gitlab_project.is_some();
        let mut request = agent.get(url);
        request = if gitlab {
            request.header("Accept", "application/json")
        } else {
            request
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
        };
        match (&self.token, gitlab) {
            (Some(token), true) => request = request.header("PRIVATE-TOKEN", &token.value),
            (Some(token), false) => {
                request = request.header("Authorization", &format!("Bearer {}", token.value));
            }
            (None, _) => {}
        }
        let mut response = request.call().map_err(|e| {
            failed(format!(
                "{}; check {}",
                quote_external(&e.to_string()),
                if gitlab {
                    "CI_API_V4_URL"
                } else {
                    "GITHUB_API_URL"
                }
            ))
        })?;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 | 403 | 404 if gitlab => {
                return Err(failed(format!(
                    "HTTP {status}; give a token that may read the project's commit statuses (`read_api`) in the masked CI/CD variable GITOPS_STATUS_TOKEN"
                )));
            }
            401 | 403 | 404 => {
                return Err(failed(format!(
                    "HTTP {status}; give a token that may read the repository's statuses and checks in GITOPS_STATUS_TOKEN or GITHUB_TOKEN (`statuses: read`, `checks: read`)"
                )));
            }
            _ => return Err(failed(format!("HTTP {status}; try again"))),
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| failed(quote_external(&e.to_string())))?;
        serde_json::from_str(&text).map_err(|_| failed("the answer is not JSON".to_owned()))
    }
}

/// `name` as a query value.
fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `status` gate for `name` on commit `sha`.
pub(crate) fn check(
    forge: &Forge,
    name: &str,
    sha: &str,
    source_url: Option<&str>,
) -> Result<Answer, Error> {
    if !crate::urls::allowed(&forge.api) {
        return Err(Error::usage(format!(
            "{} `{}` is not an https URL without credentials (plain http is for 127.0.0.1 and localhost only)",
            if forge.gitlab_project.is_some() {
                "CI_API_V4_URL"
            } else {
                "GITHUB_API_URL"
            },
            quote_external(&forge.api)
        )));
    }
    if let Some(project) = &forge.gitlab_project {
        return check_gitlab(forge, project, name, sha);
    }
    let Some(repository) = forge.repository(source_url) else {
        return Ok(Err(
            "cannot tell which GitHub repository to read statuses from; set GITHUB_REPOSITORY=owner/repo".to_owned(),
        ));
    };
    let base = format!(
        "{}/repos/{repository}/commits/{sha}",
        forge.api.trim_end_matches('/')
    );
    let combined = forge.get(&format!("{base}/status?per_page=100"))?;
    if let Some(status) = combined["statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["context"] == name)
    {
        let state = status["state"].as_str().unwrap_or("unknown");
        return Ok(if state == "success" {
            Ok(format!("commit status `{name}` is success"))
        } else {
            Err(format!(
                "commit status `{name}` on {sha} is {}, not success; wait for it, or fix what it reports",
                quote_external(state)
            ))
        });
    }
    let checks = forge.get(&format!("{base}/check-runs?check_name={}", escape(name)))?;
    let runs: Vec<&serde_json::Value> = checks["check_runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["name"] == name)
        .collect();
    if runs.is_empty() {
        return Ok(Err(format!(
            "commit {sha} has no status or check run named `{name}`; wait until it is posted (by Flux, Argo CD or CI), or check the name"
        )));
    }
    if let Some(run) = runs.iter().find(|r| r["conclusion"] != "success") {
        let state = run["conclusion"]
            .as_str()
            .or_else(|| run["status"].as_str())
            .unwrap_or("unknown");
        return Ok(Err(format!(
            "check run `{name}` on {sha} is {}, not success; wait for it, or fix what it reports",
            quote_external(state)
        )));
    }
    Ok(Ok(format!("check run `{name}` is success")))
}

/// The `status` gate on GitLab: the newest commit status named `name` is `success`.
fn check_gitlab(forge: &Forge, project: &str, name: &str, sha: &str) -> Result<Answer, Error> {
    if project.is_empty() || !project.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Err(format!(
            "CI_PROJECT_ID `{}` is not a GitLab project id; run the gate in the project's own pipeline",
            quote_external(project)
        )));
    }
    let url = format!(
        "{}/projects/{project}/repository/commits/{sha}/statuses?name={}&per_page=100",
        forge.api.trim_end_matches('/'),
        escape(name)
    );
    let statuses = forge.get(&url)?;
    // GitLab lists the newest status of each name first.
    let Some(status) = statuses
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == name)
    else {
        return Ok(Err(format!(
            "commit {sha} has no commit status named `{name}`; wait until it is posted (by Flux, Argo CD or CI), or check the name"
        )));
    };
    let state = status["status"].as_str().unwrap_or("unknown");
    Ok(if state == "success" {
        Ok(format!("commit status `{name}` is success"))
    } else {
        Err(format!(
            "commit status `{name}` on {sha} is {}, not success; wait for it, or fix what it reports",
            quote_external(state)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_urls() {
        let forge = Forge {
            api: DEFAULT_API.to_owned(),
            repository: None,
            token: Some(Token {
                value: "ghp_SECRET".to_owned(),
                from: "GITHUB_TOKEN",
            }),
            gitlab_project: None,
        };
        assert_eq!(
            forge.repository(Some("https://github.com/Acme/App.git")),
            Some("acme/app".to_owned())
        );
        assert_eq!(forge.repository(Some("https://gitlab.com/acme/app")), None);
        let named = Forge {
            repository: Some("acme/../x".to_owned()),
            ..forge.clone()
        };
        assert_eq!(named.repository(None), None);
        assert!(!format!("{forge:?}").contains("SECRET"));
        assert_eq!(escape("argocd/app (prod)"), "argocd%2Fapp%20%28prod%29");
    }
}
