//! The forge side of pull-request mode: finding the deploy's own open pull request (GitHub) or
//! merge request (GitLab) by its branch, opening one, or updating its title and body. Exactly
//! these endpoints are used: GitHub `GET /repos/{owner}/{repo}/pulls?head=…&base=…&state=open`,
//! `POST /repos/{owner}/{repo}/pulls`, `PATCH /repos/{owner}/{repo}/pulls/{number}`; GitLab
//! `GET /projects/{id}/merge_requests?source_branch=…&target_branch=…&state=opened`,
//! `POST /projects/{id}/merge_requests`, `PUT /projects/{id}/merge_requests/{iid}`. The token
//! goes in a header to the API's origin only and is never shown. Git itself is `repository`'s.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::ForgeKind;
use crate::error::{Error, quote_external};

use super::repository::Token;

/// A forge's API for one project.
#[derive(Debug, Clone)]
pub struct Forge {
    pub kind: ForgeKind,
    /// `https://api.github.com`, `https://gitlab.example.com/api/v4`.
    pub api: String,
    /// `owner/name` (GitLab: the project's full path).
    pub project: String,
}

/// A pull or merge request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// The number (GitLab: the iid).
    pub number: u64,
    pub url: String,
}

/// `host` and `owner/name` of a git URL (`https://host/owner/name.git`, `git@host:owner/name`).
fn host_and_path(url: &str) -> Option<(String, String)> {
    let (host, path) = match url.split_once("://") {
        Some((_, rest)) => {
            let (authority, path) = rest.split_once('/')?;
            let host = authority.rsplit('@').next()?.to_owned();
            (host, path.to_owned())
        }
        None => {
            let (user_host, path) = url.split_once(':')?;
            (user_host.rsplit('@').next()?.to_owned(), path.to_owned())
        }
    };
    let path = path
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .to_owned();
    Some((host, path))
}

impl Forge {
    /// The forge of the manifests repository `url`: as configured, else github.com's or a
    /// GitLab's (a host with `gitlab` in its name) API.
    pub fn resolve(
        url: &str,
        kind: Option<ForgeKind>,
        api: Option<&str>,
        project: Option<&str>,
    ) -> Result<Forge, Error> {
        let (host, path) = host_and_path(url).unwrap_or_default();
        let kind = match kind {
            Some(kind) => kind,
            None if host == "github.com" => ForgeKind::Github,
            None if host.contains("gitlab") => ForgeKind::Gitlab,
            None => {
                return Err(Error::usage(format!(
                    "cannot tell which forge serves {url} for its pull requests; set `deploy.forge` (\"github\" or \"gitlab\") and `deploy.forge-api`"
                )));
            }
        };
        let api = match (api, kind) {
            (Some(api), _) => api.trim_end_matches('/').to_owned(),
            (None, ForgeKind::Github) if host == "github.com" => {
                "https://api.github.com".to_owned()
            }
            (None, ForgeKind::Github) => format!("https://{host}/api/v3"),
            (None, ForgeKind::Gitlab) => format!("https://{host}/api/v4"),
        };
        if !crate::urls::allowed(&api) {
            return Err(Error::usage(format!(
                "`deploy.forge-api` {api} is not an https URL without credentials (plain http is for 127.0.0.1 and localhost only)"
            )));
        }
        let project = project.map_or(path, str::to_owned);
        if project.split('/').count() < 2 {
            return Err(Error::usage(format!(
                "cannot tell the forge project of {url}; set `deploy.forge-project` (\"owner/name\")"
            )));
        }
        Ok(Forge { kind, api, project })
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .max_redirects(0)
            .user_agent(concat!("cargo-gitops/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent()
    }

    fn project_path(&self) -> String {
        match self.kind {
            ForgeKind::Github => format!("/repos/{}", self.project),
            ForgeKind::Gitlab => format!("/projects/{}", self.project.replace('/', "%2F")),
        }
    }

    /// Sends one request; the answer's JSON, or an error naming the step (never the token).
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: &Token,
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", self.api);
        let agent = Forge::agent();
        let auth = match self.kind {
            ForgeKind::Github => ("Authorization", format!("Bearer {}", token.value)),
            ForgeKind::Gitlab => ("PRIVATE-TOKEN", token.value.clone()),
        };
        let failed = |message: String| {
            Error::Deploy(format!("{} {method} {path} failed: {message}", self.api))
        };
        let mut response = match (method, body) {
            ("GET", _) => agent
                .get(&url)
                .header(auth.0, &auth.1)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .call(),
            (_, body) => {
                let request = match method {
                    "POST" => agent.post(&url),
                    "PATCH" => agent.patch(&url),
                    _ => agent.put(&url),
                };
                request
                    .header(auth.0, &auth.1)
                    .header("Accept", "application/vnd.github+json")
                    .header("X-GitHub-Api-Version", "2022-11-28")
                    .send_json(body.cloned().unwrap_or(Value::Null))
            }
        }
        .map_err(|e| {
            failed(format!(
                "{}; check that it is reachable",
                quote_external(&e.to_string())
            ))
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        if status == 401 || status == 403 {
            return Err(failed(format!(
                "HTTP {status}: the token in ${} was refused; check that it may open pull requests there",
                token.variable
            )));
        }
        if !(200..300).contains(&status) {
            let said: String = quote_external(&text).chars().take(200).collect();
            return Err(failed(format!("HTTP {status}: {said}")));
        }
        serde_json::from_str(&text).map_err(|_| failed("the answer is not JSON".to_owned()))
    }

    /// The open request from `branch` into `base`, if there is one.
    pub fn find(
        &self,
        branch: &str,
        base: &str,
        token: &Token,
    ) -> Result<Option<PullRequest>, Error> {
        let owner = self.project.split('/').next().unwrap_or_default();
        let path = match self.kind {
            ForgeKind::Github => format!(
                "{}/pulls?head={}&base={}&state=open",
                self.project_path(),
                query(&format!("{owner}:{branch}")),
                query(base)
            ),
            ForgeKind::Gitlab => format!(
                "{}/merge_requests?source_branch={}&target_branch={}&state=opened",
                self.project_path(),
                query(branch),
                query(base)
            ),
        };
        let found = self.send("GET", &path, None, token)?;
        Ok(found
            .as_array()
            .and_then(|list| list.first())
            .and_then(|first| self.read(first)))
    }

    fn read(&self, value: &Value) -> Option<PullRequest> {
        let number = match self.kind {
            ForgeKind::Github => value["number"].as_u64()?,
            ForgeKind::Gitlab => value["iid"].as_u64()?,
        };
        let url = value[match self.kind {
            ForgeKind::Github => "html_url",
            ForgeKind::Gitlab => "web_url",
        }]
        .as_str()
        .unwrap_or_default()
        .to_owned();
        Some(PullRequest { number, url })
    }

    /// Opens a request from `branch` into `base`.
    pub fn create(
        &self,
        branch: &str,
        base: &str,
        title: &str,
        body: &str,
        token: &Token,
    ) -> Result<PullRequest, Error> {
        let (path, payload) = match self.kind {
            ForgeKind::Github => (
                format!("{}/pulls", self.project_path()),
                json!({"title": title, "head": branch, "base": base, "body": body}),
            ),
            ForgeKind::Gitlab => (
                format!("{}/merge_requests", self.project_path()),
                json!({"title": title, "source_branch": branch, "target_branch": base, "description": body, "remove_source_branch": true}),
            ),
        };
        let created = self.send("POST", &path, Some(&payload), token)?;
        self.read(&created).ok_or_else(|| {
            Error::Deploy(format!(
                "{} answered the new pull request without its number",
                self.api
            ))
        })
    }

    /// Replaces the title and body of request `number`.
    pub fn update(
        &self,
        number: u64,
        title: &str,
        body: &str,
        token: &Token,
    ) -> Result<PullRequest, Error> {
        let (method, path, payload) = match self.kind {
            ForgeKind::Github => (
                "PATCH",
                format!("{}/pulls/{number}", self.project_path()),
                json!({"title": title, "body": body}),
            ),
            ForgeKind::Gitlab => (
                "PUT",
                format!("{}/merge_requests/{number}", self.project_path()),
                json!({"title": title, "description": body}),
            ),
        };
        let updated = self.send(method, &path, Some(&payload), token)?;
        self.read(&updated).ok_or_else(|| {
            Error::Deploy(format!(
                "{} answered the update without the pull request's number",
                self.api
            ))
        })
    }
}

/// A query value, percent-encoded.
fn query(text: &str) -> String {
    crate::registry::client::query_escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forges_and_projects_from_urls() {
        let github = Forge::resolve("https://github.com/acme/fleet.git", None, None, None).unwrap();
        assert_eq!(
            (github.api.as_str(), github.project.as_str()),
            ("https://api.github.com", "acme/fleet")
        );
        let gitlab = Forge::resolve(
            "git@gitlab.example.com:group/sub/fleet.git",
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(gitlab.kind, ForgeKind::Gitlab);
        assert_eq!(gitlab.api, "https://gitlab.example.com/api/v4");
        assert_eq!(gitlab.project_path(), "/projects/group%2Fsub%2Ffleet");
        assert!(Forge::resolve("https://git.example.com/a/b.git", None, None, None).is_err());
        assert!(
            Forge::resolve(
                "https://github.com/a/b.git",
                None,
                Some("http://example.com"),
                None
            )
            .is_err()
        );
        let local = Forge::resolve(
            "git://127.0.0.1:9/acme/fleet.git",
            Some(ForgeKind::Github),
            Some("http://127.0.0.1:8/"),
            None,
        )
        .unwrap();
        assert_eq!(local.api, "http://127.0.0.1:8");
    }
}
