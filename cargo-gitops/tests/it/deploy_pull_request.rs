//! `cargo gitops deploy` in pull-request mode: the commit goes to the deploy's own branch on a
//! real `git daemon`, and the pull (merge) request is opened, then updated, through a loopback
//! server that implements exactly the forge endpoints the tool uses, with every request
//! asserted (method, path, token header, body fields). No forge runs here: Gitea and Forgejo
//! take far too long to build on this machine, so no test pretends to be one; the test against
//! github.com itself is ignored.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::signing::push_image;
use crate::support::{Dir, GitServer, Recorded, Registry, Stub, answer};

const KUSTOMIZATION: &str =
    "resources: []\nimages:\n  - name: REGISTRY/api\n    newTag: prd-1.0.0 # in production\n";

struct Forge {
    stub: Stub,
}

/// A GitHub or GitLab API holding at most one open request, numbered 7.
fn forge(gitlab: bool) -> Forge {
    let open: Arc<Mutex<bool>> = Arc::new(Mutex::new(false));
    let stub = Stub::start("127.0.0.1", move |request| {
        let mut open = open.lock().unwrap();
        let one = if gitlab {
            json!({"iid": 7, "web_url": "http://forge/acme/fleet/-/merge_requests/7"})
        } else {
            json!({"number": 7, "html_url": "http://forge/acme/fleet/pull/7"})
        };
        let body = match request.method.as_str() {
            "GET" if *open => json!([one]),
            "GET" => json!([]),
            "POST" => {
                *open = true;
                one
            }
            _ => one,
        };
        let status = if request.method == "POST" { 201 } else { 200 };
        answer(
            status,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    });
    Forge { stub }
}

struct Release {
    source: Dir,
    registry: Registry,
    server: GitServer,
}

impl Release {
    fn new(forge: &Forge, kind: &str) -> Release {
        let registry = Registry::start();
        let server = GitServer::start();
        server.create(
            "acme/fleet",
            &[(
                "apps/production/kustomization.yaml",
                &KUSTOMIZATION.replace("REGISTRY", &registry.host()),
            )],
        );
        let source = Dir::git_repo();
        source.create(
            "gitops.toml",
            format!(
                "registry = \"{}\"\nimage = \"api\"\n\n[deploy]\nrepository = \"{}\"\npath = \"apps/{{environment}}\"\ncredential = \"FLEET_TOKEN\"\nforge = \"{kind}\"\nforge-api = \"http://{}\"\n",
                registry.host(),
                server.url("acme/fleet"),
                forge.stub.addr
            ),
        );
        source.commit("first");
        Release {
            source,
            registry,
            server,
        }
    }

    /// Tags HEAD `version` and pushes its image as `build` would; its digest.
    fn release(&self, version: &str) -> String {
        self.source.git(["tag", version]);
        let env = self
            .source
            .command()
            .args(["--ref", version, "env", "--format", "json"])
            .json();
        let content = format!("api {version}");
        let digest = push_image(
            &self.registry,
            "api",
            env["lookup_tag"].as_str().unwrap(),
            content.as_bytes(),
        )
        .digest
        .to_string();
        push_image(
            &self.registry,
            "api",
            env["tags"][0].as_str().unwrap(),
            content.as_bytes(),
        );
        digest
    }

    fn deploy(&self, version: &str) -> Value {
        self.source
            .command()
            .args(["--ref", version, "deploy", "--format", "json"])
            .env("FLEET_TOKEN", "tok-77-secret")
            .json()
    }
}

fn body(request: &Recorded) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[test]
fn github_pull_request_is_opened_then_updated_never_duplicated_and_main_is_untouched() {
    let forge = forge(false);
    let release = Release::new(&forge, "github");
    let main_before = release.server.head("acme/fleet");
    let first = release.release("v1.1.0");
    let report = release.deploy("v1.1.0");
    assert_eq!(report[0]["result"], "pull-request-opened", "{report}");
    assert_eq!(report[0]["pull_request"]["number"], 7);
    let branch = "cargo-gitops/production/api";
    assert_eq!(report[0]["pull_request_branch"], branch);
    assert_eq!(
        release.server.head("acme/fleet"),
        main_before,
        "main only moves when the request is merged"
    );
    let proposed = release.server.git(
        "acme/fleet",
        [
            "show",
            &format!("{branch}:apps/production/kustomization.yaml"),
        ],
    );
    assert!(
        proposed.contains(&format!(
            "newTag: prd-1.1.0 # in production\n    digest: {first}"
        )),
        "{proposed}"
    );

    release.source.create("CHANGELOG.md", "a fix\n");
    release.source.commit("a fix");
    let second = release.release("v1.2.0");
    release.source.commit("next");
    let report = release.deploy("v1.2.0");
    assert_eq!(report[0]["result"], "pull-request-updated", "{report}");
    // A rerun for the same commit changes nothing and calls no write endpoint.
    let report = release.deploy("v1.2.0");
    assert_eq!(report[0]["result"], "up-to-date", "{report}");

    let seen = forge.stub.seen();
    let calls: Vec<(String, String)> = seen
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let find = format!("/repos/acme/fleet/pulls?head=acme%3A{branch}&base=main&state=open");
    assert_eq!(
        calls,
        [
            ("GET".to_owned(), find.clone()),
            ("POST".to_owned(), "/repos/acme/fleet/pulls".to_owned()),
            ("GET".to_owned(), find.clone()),
            ("PATCH".to_owned(), "/repos/acme/fleet/pulls/7".to_owned()),
            ("GET".to_owned(), find),
        ]
    );
    for request in &seen {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer tok-77-secret")
        );
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
    }
    let created = body(&seen[1]);
    assert_eq!(created["head"], branch);
    assert_eq!(created["base"], "main");
    assert_eq!(
        created["title"],
        "deploy production: 1 image of ".to_owned() + &release.source.rev("v1.1.0").unwrap()[..7]
    );
    let text = created["body"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "| `{}/api` | `prd-1.0.0@(none)` | `prd-1.1.0@{first}` | no | no |",
            release.registry.host()
        )),
        "{text}"
    );
    // Whether each image is signed and has provenance: these test images carry neither.
    assert!(
        text.contains("| image | from | to | signed | provenance |"),
        "{text}"
    );
    assert!(
        text.contains(&release.source.rev("v1.1.0").unwrap()),
        "{text}"
    );
    let updated = body(&seen[3]);
    let text = updated["body"].as_str().unwrap();
    // The source commits after the image it replaces (v1.1.0's) up to this one.
    let v110 = release.source.rev("v1.1.0").unwrap();
    let v120 = release.source.rev("v1.2.0").unwrap();
    let between = release
        .source
        .git(["rev-list", "--reverse", &format!("{v110}..{v120}")]);
    let shown: Vec<String> = between
        .lines()
        .map(|sha| format!("`{}`", &sha[..7]))
        .collect();
    assert!(!shown.is_empty());
    assert!(
        text.contains(&format!(
            "Source commits since the image each replaces:\n\n- `{}/api`: {}\n",
            release.registry.host(),
            shown.join(", ")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("| `prd-1.1.0@{first}` | `prd-1.2.0@{second}` |")),
        "{text}"
    );
    assert_eq!(
        updated.as_object().unwrap().len(),
        2,
        "only title and body change: {updated}"
    );
    // The branch holds both deploys, one on the other: never forced.
    let log = release.server.git(
        "acme/fleet",
        ["rev-list", "--count", &format!("main..{branch}")],
    );
    assert_eq!(log, "2");
}

#[test]
fn gitlab_merge_request_is_opened_with_the_private_token_header() {
    let forge = forge(true);
    let release = Release::new(&forge, "gitlab");
    release.release("v1.1.0");
    let report = release.deploy("v1.1.0");
    assert_eq!(report[0]["result"], "pull-request-opened", "{report}");
    let seen = forge.stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].path,
        "/projects/acme%2Ffleet/merge_requests?source_branch=cargo-gitops/production/api&target_branch=main&state=opened"
    );
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].path, "/projects/acme%2Ffleet/merge_requests");
    for request in &seen {
        assert_eq!(request.header("private-token"), Some("tok-77-secret"));
        assert_eq!(request.header("authorization"), None);
    }
    let created = body(&seen[1]);
    assert_eq!(created["source_branch"], "cargo-gitops/production/api");
    assert_eq!(created["target_branch"], "main");
    assert!(
        created["description"]
            .as_str()
            .unwrap()
            .contains("prd-1.1.0@sha256:")
    );
}

#[test]
#[ignore = "needs github.com and a token for a test repository (GITOPS_TEST_GITHUB_REPO, GITOPS_TEST_GITHUB_TOKEN)"]
fn github_com_pull_request() {
    let repo = std::env::var("GITOPS_TEST_GITHUB_REPO").expect("GITOPS_TEST_GITHUB_REPO");
    let token = std::env::var("GITOPS_TEST_GITHUB_TOKEN").expect("GITOPS_TEST_GITHUB_TOKEN");
    let forge = cargo_gitops::deploy::forge::Forge::resolve(
        &format!("https://github.com/{repo}.git"),
        None,
        None,
        None,
    )
    .unwrap();
    let token = cargo_gitops::deploy::repository::Token {
        variable: "GITOPS_TEST_GITHUB_TOKEN".to_owned(),
        value: token,
    };
    forge
        .find("cargo-gitops/test/none", "main", &token)
        .unwrap();
}
