//! The deploy job of the generated workflows: present only with a `deploy` table, after the
//! pipeline, one at a time per environment, with exactly the permissions its mode needs
//! (`contents: write` for this repository, a named secret for another one, `pull-requests:
//! write` only in pull-request mode), the token passed through `env:` only. Every variant
//! passes zizmor, check-jsonschema, actionlint and shellcheck.

use yaml_rust2::{Yaml, YamlLoader};

use crate::workflows::{generate, repository, validate_dir};

const BASE: &str =
    "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\n";

fn generated(extra: &str) -> Vec<(String, Yaml)> {
    let dir = repository(&format!("{BASE}{extra}"));
    let files = generate(&dir);
    // Shellcheck too, on each generated `run:` (the deploy step's included).
    validate_dir(&dir);
    files
        .into_iter()
        .map(|(name, text)| {
            let yaml = YamlLoader::load_from_str(&text).unwrap().remove(0);
            (name, yaml)
        })
        .collect()
}

fn workflow<'a>(files: &'a [(String, Yaml)], env: &str) -> &'a Yaml {
    &files
        .iter()
        .find(|(name, _)| name == &format!("gitops-{env}.yml"))
        .unwrap_or_else(|| panic!("no workflow for {env}"))
        .1
}

fn permissions(job: &Yaml) -> Vec<(String, String)> {
    job["permissions"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn without_a_deploy_table_there_is_no_deploy_job() {
    let files = generated("");
    for (_, yaml) in &files {
        assert!(yaml["jobs"]["deploy"].is_badvalue());
    }
}

#[test]
fn this_repository_in_push_mode_gets_contents_write_and_pull_requests_only_in_production() {
    let files = generated(
        "\n[workspace.metadata.gitops.deploy]\npath = \"deploy/{environment}\"\ncredential = \"GITHUB_TOKEN\"\n",
    );
    let staging = &workflow(&files, "staging")["jobs"]["deploy"];
    assert_eq!(staging["needs"].as_str(), Some("pipeline"));
    assert_eq!(
        staging["if"].as_str(),
        Some("needs.pipeline.outputs.environment != ''")
    );
    assert_eq!(
        permissions(staging),
        [
            ("contents".to_owned(), "write".to_owned()),
            ("packages".to_owned(), "read".to_owned())
        ]
    );
    assert_eq!(
        staging["concurrency"]["group"].as_str(),
        Some("gitops-staging-deploy")
    );
    assert_eq!(
        staging["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false)
    );
    let steps = staging["steps"].as_vec().unwrap();
    let run = steps.last().unwrap();
    assert_eq!(
        run["env"]["GITHUB_TOKEN"].as_str(),
        Some("${{ secrets.GITHUB_TOKEN }}")
    );
    assert!(!run["run"].as_str().unwrap().contains("${{"));
    for step in steps {
        if let Some(uses) = step["uses"].as_str() {
            let sha = uses.split_once('@').unwrap().1;
            assert_eq!(sha.len(), 40, "{uses} is pinned to a commit");
        }
    }
    // Production deploys by pull request by default: it alone may write pull requests.
    let production = &workflow(&files, "production")["jobs"]["deploy"];
    assert_eq!(
        permissions(production),
        [
            ("contents".to_owned(), "write".to_owned()),
            ("pull-requests".to_owned(), "write".to_owned()),
            ("packages".to_owned(), "read".to_owned())
        ]
    );
}

#[test]
fn another_repository_takes_a_named_secret_and_only_reads_this_one() {
    let files = generated(
        "\n[workspace.metadata.gitops.deploy]\nrepository = \"https://github.com/acme/fleet.git\"\ncredential = \"FLEET_TOKEN\"\nmode = \"push\"\n",
    );
    for env in ["staging", "production"] {
        let job = &workflow(&files, env)["jobs"]["deploy"];
        assert_eq!(
            permissions(job),
            [
                ("contents".to_owned(), "read".to_owned()),
                ("packages".to_owned(), "read".to_owned())
            ],
            "{env}"
        );
        let run = job["steps"].as_vec().unwrap().last().unwrap();
        assert_eq!(
            run["env"]["FLEET_TOKEN"].as_str(),
            Some("${{ secrets.FLEET_TOKEN }}")
        );
    }
}

#[test]
fn a_deploy_job_without_a_credential_or_with_a_reserved_secret_is_refused() {
    let dir = repository(&format!(
        "{BASE}\n[workspace.metadata.gitops.deploy]\npath = \"deploy\"\n"
    ));
    let line = dir.command().args(["init-workflows"]).usage_error();
    assert!(line.contains("needs `deploy.credential`"), "{line}");
    let dir = repository(&format!(
        "{BASE}\n[workspace.metadata.gitops.deploy]\nrepository = \"https://github.com/acme/fleet.git\"\ncredential = \"GITHUB_TOKEN\"\n"
    ));
    let line = dir.command().args(["init-workflows"]).usage_error();
    assert!(line.contains("can only write to this repository"), "{line}");
}

/// GitLab: a deploy job per environment after its build job, one at a time, with the rules of
/// the build job; GitLab's own schema accepts the file.
#[test]
fn gitlab_gets_a_deploy_job_after_each_build_job() {
    let pin = "0".repeat(64);
    let base = format!(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"registry.gitlab.com/acme\"\nimage = \"shop\"\nci = [\"gitlab\"]\n\n[workspace.metadata.gitops.install.sha256]\nx86_64-unknown-linux-musl = \"{pin}\"\naarch64-unknown-linux-musl = \"{pin}\"\n"
    );
    let without = repository(&base);
    without
        .command()
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .expect_exit(0);
    let plain = std::fs::read_to_string(without.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    assert!(!plain.contains("deploy:"), "{plain}");

    let dir = repository(&format!(
        "{base}\n[workspace.metadata.gitops.deploy]\nrepository = \"https://gitlab.com/acme/fleet.git\"\ncredential = \"FLEET_TOKEN\"\n"
    ));
    dir.command()
        .args(["init-workflows", "-q", "--ci", "gitlab"])
        .expect_exit(0);
    crate::gitlab::check_jsonschema(dir.path(), &[".gitlab/gitops.gitlab-ci.yml"]);
    let text = std::fs::read_to_string(dir.join(".gitlab/gitops.gitlab-ci.yml")).unwrap();
    let yaml = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let job = &yaml["gitops-staging-deploy"];
    assert_eq!(job["extends"].as_str(), Some(".gitops"));
    assert_eq!(job["needs"][0].as_str(), Some("gitops-staging"));
    assert_eq!(
        job["resource_group"].as_str(),
        Some("gitops-deploy-staging")
    );
    assert_eq!(job["script"][0].as_str(), Some("cargo-gitops deploy"));
    assert_eq!(job["rules"], yaml["gitops-staging"]["rules"]);
    assert!(
        !text.contains("FLEET_TOKEN:"),
        "the token is a CI/CD variable, never written"
    );

    let dir = repository(&format!(
        "{base}\n[workspace.metadata.gitops.deploy]\nrepository = \"https://gitlab.com/acme/fleet.git\"\n"
    ));
    let line = dir
        .command()
        .args(["init-workflows", "--ci", "gitlab"])
        .usage_error();
    assert!(line.contains("needs `deploy.credential`"), "{line}");
}
