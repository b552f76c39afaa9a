//! Registry logins in the generated pipeline: one per registry any environment pushes to,
//! each with that registry's own credential (GITHUB_TOKEN for ghcr.io only, OIDC for ECR and
//! Artifact Registry, named secrets for Docker Hub and any other), the least permissions
//! that need, and the refusal of a registry whose login is not configured.

use yaml_rust2::{Yaml, YamlLoader};

use crate::workflows::{generate, repository, validate_dir};

const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const GAR: &str = "europe-west1-docker.pkg.dev";

fn config(image: &str, logins: &str) -> String {
    format!("[workspace]\n\n[workspace.metadata.gitops]\nimage = \"{image}\"\n{logins}")
}

fn ecr_login() -> String {
    format!(
        "\n[workspace.metadata.gitops.registry-logins.\"{ECR}\"]\naws-role = \"arn:aws:iam::123456789012:role/gitops-push\"\n"
    )
}

fn gar_login() -> String {
    format!(
        "\n[workspace.metadata.gitops.registry-logins.\"{GAR}\"]\nworkload-identity-provider = \"projects/123456789/locations/global/workloadIdentityPools/github/providers/shop\"\nservice-account = \"gitops@acme-prod.iam.gserviceaccount.com\"\n"
    )
}

const DOCKER_HUB_LOGIN: &str = "\n[workspace.metadata.gitops.registry-logins.\"docker.io\"]\nusername-secret = \"DOCKERHUB_USERNAME\"\npassword-secret = \"DOCKERHUB_TOKEN\"\n";
const PRIVATE_LOGIN: &str = "\n[workspace.metadata.gitops.registry-logins.\"registry.example.com:5000\"]\nusername-secret = \"REGISTRY_USER\"\npassword-secret = \"REGISTRY_PASSWORD\"\n";

/// Generates, snapshots the pipeline and the production workflow under `name`, and returns
/// them parsed.
fn generated(name: &str, config: &str) -> (Yaml, Yaml, String) {
    let dir = repository(config);
    let files = generate(&dir);
    let file = |wanted: &str| files.iter().find(|(n, _)| n == wanted).unwrap().1.clone();
    let pipeline = file("gitops-pipeline.yml");
    let production = file("gitops-production.yml");
    insta::assert_snapshot!(format!("logins_{name}__pipeline"), pipeline);
    insta::assert_snapshot!(format!("logins_{name}__production"), production);
    (
        YamlLoader::load_from_str(&pipeline).unwrap().remove(0),
        YamlLoader::load_from_str(&production).unwrap().remove(0),
        pipeline,
    )
}

/// The permissions a job grants, as `name: level` pairs.
fn permissions(job: &Yaml) -> Vec<String> {
    job["permissions"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{}: {}", k.as_str().unwrap(), v.as_str().unwrap()))
        .collect()
}

fn uses(pipeline: &Yaml) -> Vec<String> {
    pipeline["jobs"]["build"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["uses"].as_str())
        .map(|u| u.split('@').next().unwrap().to_owned())
        .collect()
}

fn check(
    name: &str,
    config: &str,
    expected_permissions: &[&str],
    expected_secrets: &[&str],
    expected_actions: &[&str],
) -> String {
    let (pipeline, production, text) = generated(name, config);
    let wanted: Vec<String> = expected_permissions.iter().map(|s| s.to_string()).collect();
    assert_eq!(permissions(&pipeline["jobs"]["build"]), wanted, "{name}");
    assert_eq!(
        permissions(&production["jobs"]["pipeline"]),
        wanted,
        "{name}"
    );
    let secrets: Vec<&str> = production["jobs"]["pipeline"]["secrets"]
        .as_hash()
        .map(|h| h.keys().map(|k| k.as_str().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(secrets, expected_secrets, "{name}");
    let declared: Vec<&str> = pipeline["on"]["workflow_call"]["secrets"]
        .as_hash()
        .map(|h| h.keys().map(|k| k.as_str().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(declared, expected_secrets, "{name}");
    let logins: Vec<String> = uses(&pipeline)
        .into_iter()
        .filter(|u| !["actions/checkout", "docker/setup-buildx-action"].contains(&u.as_str()))
        .collect();
    assert_eq!(logins, expected_actions, "{name}");
    text
}

#[test]
fn ghcr_io_is_logged_in_to_with_github_token_and_packages_write() {
    let text = check(
        "ghcr",
        &config("ghcr.io/acme/shop", ""),
        &["contents: read", "packages: write"],
        &[],
        &["docker/login-action"],
    );
    assert!(text.contains("password: ${{ secrets.GITHUB_TOKEN }}"));
}

#[test]
fn ecr_is_logged_in_to_with_an_aws_role_through_oidc() {
    let text = check(
        "ecr",
        &config(&format!("{ECR}/shop"), &ecr_login()),
        &["contents: read", "id-token: write"],
        &[],
        &[
            "aws-actions/configure-aws-credentials",
            "aws-actions/amazon-ecr-login",
        ],
    );
    assert!(!text.contains("GITHUB_TOKEN"), "{text}");
    assert!(text.contains("aws-region: \"eu-west-1\""), "{text}");
}

#[test]
fn artifact_registry_is_logged_in_to_with_workload_identity_federation() {
    let text = check(
        "gar",
        &config(&format!("{GAR}/acme-prod/shop/shop"), &gar_login()),
        &["contents: read", "id-token: write"],
        &[],
        &["google-github-actions/auth", "docker/login-action"],
    );
    assert!(!text.contains("GITHUB_TOKEN"), "{text}");
    assert!(
        text.contains("password: ${{ steps.login-1.outputs.access_token }}"),
        "{text}"
    );
    assert!(text.contains("create_credentials_file: false"), "{text}");
}

#[test]
fn docker_hub_and_a_private_registry_are_logged_in_to_with_named_secrets() {
    for (name, image, login, user, password) in [
        (
            "docker_hub",
            "docker.io/acme/shop",
            DOCKER_HUB_LOGIN,
            "DOCKERHUB_USERNAME",
            "DOCKERHUB_TOKEN",
        ),
        (
            "private",
            "registry.example.com:5000/acme/shop",
            PRIVATE_LOGIN,
            "REGISTRY_USER",
            "REGISTRY_PASSWORD",
        ),
    ] {
        let mut secrets = [user, password];
        secrets.sort();
        let text = check(
            name,
            &config(image, login),
            &["contents: read"],
            &secrets,
            &["docker/login-action"],
        );
        assert!(!text.contains("GITHUB_TOKEN"), "{text}");
        assert!(
            text.contains(&format!("password: ${{{{ secrets.{password} }}}}")),
            "{text}"
        );
    }
}

#[test]
fn every_registry_an_environment_pushes_to_gets_its_own_login_and_the_files_validate() {
    let environments = format!(
        "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\nimage = \"{ECR}/shop\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"beta\"\nimage = \"{GAR}/acme-prod/shop/shop\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"testing\"\nimage = \"docker.io/acme/shop\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\nimage = \"registry.example.com:5000/acme/shop\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"development\"\n"
    );
    let config = config(
        "ghcr.io/acme/shop",
        &format!(
            "{environments}{}{}{DOCKER_HUB_LOGIN}{PRIVATE_LOGIN}",
            ecr_login(),
            gar_login()
        ),
    );
    check(
        "all",
        &config,
        &["contents: read", "packages: write", "id-token: write"],
        &[
            "DOCKERHUB_TOKEN",
            "DOCKERHUB_USERNAME",
            "REGISTRY_PASSWORD",
            "REGISTRY_USER",
        ],
        &[
            "docker/login-action",
            "aws-actions/configure-aws-credentials",
            "aws-actions/amazon-ecr-login",
            "google-github-actions/auth",
            "docker/login-action",
            "docker/login-action",
            "docker/login-action",
        ],
    );
    let dir = repository(&config);
    generate(&dir);
    validate_dir(&dir);
    // GITHUB_TOKEN goes to the ghcr.io login alone.
    let text = std::fs::read_to_string(dir.join(".github/workflows/gitops-pipeline.yml")).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    for step in doc["jobs"]["build"]["steps"].as_vec().unwrap() {
        let mut yaml = String::new();
        yaml_rust2::YamlEmitter::new(&mut yaml).dump(step).unwrap();
        if yaml.contains("GITHUB_TOKEN") {
            assert_eq!(step["with"]["registry"].as_str(), Some("ghcr.io"), "{yaml}");
        }
    }
}

#[test]
fn a_registry_without_a_configured_login_is_refused_naming_the_key_to_set() {
    for (image, key) in [
        (
            "docker.io/acme/shop".to_owned(),
            "registry-logins.\"docker.io\".username-secret",
        ),
        (
            "registry.example.com:5000/acme/shop".to_owned(),
            "registry-logins.\"registry.example.com:5000\".username-secret",
        ),
        (
            format!("{ECR}/shop"),
            "registry-logins.\"123456789012.dkr.ecr.eu-west-1.amazonaws.com\".aws-role",
        ),
        (
            format!("{GAR}/p/r/shop"),
            "registry-logins.\"europe-west1-docker.pkg.dev\".workload-identity-provider",
        ),
    ] {
        let dir = repository(&config(&image, ""));
        let line = dir.command().args(["init-workflows"]).one_line_error(2);
        assert!(line.contains(key), "{image}: {line}");
        assert!(!dir.join(".github/workflows").exists());
    }
    // Half a login is no login.
    let dir = repository(&config(
        "docker.io/acme/shop",
        "\n[workspace.metadata.gitops.registry-logins.\"docker.io\"]\nusername-secret = \"U\"\n",
    ));
    let line = dir.command().args(["init-workflows"]).one_line_error(2);
    assert!(line.contains("password-secret"), "{line}");
}
