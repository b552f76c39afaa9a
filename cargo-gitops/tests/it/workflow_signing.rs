//! Signing and attestation in the generated workflows: `sign = "key"` passes one named secret
//! to the build step through `env:`, `sign = "keyless"` signs with cosign and the job's OIDC
//! token, `github-attestation` attests the build provenance; each adds exactly the
//! permissions it needs, to the jobs that run it, and the defaults change nothing. Every set
//! passes the real validators, and the README's excerpt is what the generator writes.

use yaml_rust2::{Yaml, YamlLoader};

use crate::workflows::{generate, repository, validate_dir};

const BASE: &str =
    "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"ghcr.io/acme\"\nimage = \"shop\"\n";

/// A PEM the environment holds while the workflows are generated: it must go nowhere.
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLITERALKEYVALUE\n-----END PRIVATE KEY-----\n";

fn config(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// Generates the workflows for `config` (with a signing key in the environment, which the
/// generator must not read), runs the validators, and returns the files by name, parsed.
fn generated(config: &str) -> Vec<(String, String, Yaml)> {
    let dir = repository(config);
    dir.command()
        .env("GITOPS_SIGNING_KEY", PEM)
        .env("RELEASE_KEY", PEM)
        .args(["init-workflows", "-q"])
        .expect_exit(0);
    validate_dir(&dir);
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir.join(".github/workflows"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            (e.file_name().into_string().unwrap(), text)
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 7);
    files
        .into_iter()
        .map(|(name, text)| {
            assert!(!text.contains("LITERALKEYVALUE"), "{name} holds the key");
            let doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
            (name, text, doc)
        })
        .collect()
}

/// The permissions of a job (or of the workflow, with `doc`), as `name: level`.
fn permissions(node: &Yaml) -> Vec<String> {
    node["permissions"]
        .as_hash()
        .unwrap_or_else(|| panic!("no permissions mapping in {node:?}"))
        .iter()
        .map(|(k, v)| format!("{}: {}", k.as_str().unwrap(), v.as_str().unwrap()))
        .collect()
}

fn steps(pipeline: &Yaml) -> &Vec<Yaml> {
    pipeline["jobs"]["build"]["steps"].as_vec().unwrap()
}

fn step<'a>(pipeline: &'a Yaml, name: &str) -> Option<(usize, &'a Yaml)> {
    steps(pipeline)
        .iter()
        .enumerate()
        .find(|(_, s)| s["name"].as_str() == Some(name))
}

fn file<'a>(files: &'a [(String, String, Yaml)], name: &str) -> &'a (String, String, Yaml) {
    files.iter().find(|(n, _, _)| n == name).unwrap()
}

/// Checks what every generated set must hold: `permissions: {}` at the top of each workflow,
/// `expected` on the pipeline's job and on each environment's call, and nowhere else; no
/// `${{` in any `run:`. Returns the pipeline.
fn check_permissions(files: &[(String, String, Yaml)], expected: &[&str]) -> Yaml {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    for (name, _, doc) in files {
        assert!(
            doc["permissions"].as_hash().is_some_and(|h| h.is_empty()),
            "{name}: the workflow's own permissions must be {{}}"
        );
        let jobs = doc["jobs"].as_hash().unwrap();
        assert_eq!(jobs.len(), 1, "{name}");
        for (job, body) in jobs {
            assert_eq!(permissions(body), expected, "{name}: job {job:?}");
            for step in body["steps"].as_vec().into_iter().flatten() {
                if let Some(run) = step["run"].as_str() {
                    assert!(!run.contains("${{"), "{name}: an expression in run: {run}");
                }
                assert!(
                    step["permissions"].is_badvalue(),
                    "{name}: a step with permissions"
                );
            }
        }
    }
    file(files, "gitops-pipeline.yml").2.clone()
}

/// The build step, and that nothing signs or attests after it unless asked.
fn build_step(pipeline: &Yaml) -> (usize, &Yaml) {
    step(pipeline, "build or retag").expect("the build step")
}

#[test]
fn no_signing_configured_changes_nothing() {
    let plain = repository(BASE);
    let explicit = repository(&config("sign = \"none\"\ngithub-attestation = false\n"));
    let plain_files = generate(&plain);
    assert_eq!(plain_files, generate(&explicit));
    for (name, text) in &plain_files {
        for word in ["cosign", "attest", "id-token", "SIGNING", "secrets:\n"] {
            assert!(!text.contains(word), "{name} mentions {word:?}:\n{text}");
        }
    }
}

#[test]
fn sign_key_passes_the_named_secret_to_the_build_step_only_and_adds_no_permission() {
    for (extra, secret) in [
        ("sign = \"key\"\n", "GITOPS_SIGNING_KEY"),
        (
            "sign = \"key\"\nsigning-key-env = \"RELEASE_KEY\"\nregistry-secrets = { username = \"REGISTRY_USER\", password = \"REGISTRY_PASSWORD\" }\n",
            "RELEASE_KEY",
        ),
    ] {
        let files = generated(&config(extra));
        let logins = extra.contains("registry-secrets");
        let expected: &[&str] = if logins {
            &["contents: read"]
        } else {
            &["contents: read", "packages: write"]
        };
        let pipeline = check_permissions(&files, expected);
        let reference = format!("${{{{ secrets.{secret} }}}}");

        // The build step reads it from its env, under the variable the build reads.
        let (index, build) = build_step(&pipeline);
        assert_eq!(build["env"][secret].as_str(), Some(reference.as_str()));
        assert_eq!(index, steps(&pipeline).len() - 1, "nothing runs after it");
        // No other step sees it.
        for (i, other) in steps(&pipeline).iter().enumerate() {
            if i != index {
                assert!(other["env"][secret].is_badvalue(), "step {i} sees the key");
            }
        }
        // Declared by the pipeline, passed by name by each environment's workflow.
        let declared = &pipeline["on"]["workflow_call"]["secrets"][secret];
        assert_eq!(declared["required"].as_bool(), Some(true));
        let mut callers = 0;
        for (name, text, doc) in &files {
            if name != "gitops-pipeline.yml" {
                let passed = &doc["jobs"]["pipeline"]["secrets"];
                assert_eq!(passed[secret].as_str(), Some(reference.as_str()), "{name}");
                let mut names: Vec<&str> = passed
                    .as_hash()
                    .unwrap()
                    .keys()
                    .map(|k| k.as_str().unwrap())
                    .collect();
                names.sort_unstable();
                let mut wanted = vec![secret];
                if logins {
                    wanted.extend(["REGISTRY_PASSWORD", "REGISTRY_USER"]);
                }
                wanted.sort_unstable();
                assert_eq!(names, wanted, "{name}");
                callers += 1;
            }
            // The name only ever appears as a secret's key or as `secrets.NAME`.
            for line in text.lines().filter(|l| l.contains(secret)) {
                let line = line.trim();
                assert!(
                    line == format!("{secret}:") || line == format!("{secret}: {reference}"),
                    "{name}: {line}"
                );
            }
            assert!(
                !text.contains("cosign") && !text.contains("attest"),
                "{name}"
            );
        }
        assert_eq!(callers, 6);
    }
}

#[test]
fn keyless_signing_installs_cosign_and_signs_the_digest_with_the_jobs_oidc_token() {
    let files = generated(&config("sign = \"keyless\"\n"));
    let pipeline = check_permissions(
        &files,
        &["contents: read", "packages: write", "id-token: write"],
    );
    let (build, _) = build_step(&pipeline);
    let (install, installer) = step(&pipeline, "install cosign").unwrap();
    let (sign, signer) = step(&pipeline, "sign the image with the job's OIDC token").unwrap();
    assert_eq!((install, sign), (build + 1, build + 2));
    let uses = installer["uses"].as_str().unwrap();
    assert_eq!(
        uses,
        "sigstore/cosign-installer@6f9f17788090df1f26f669e9d70d6ae9567deba6"
    );
    let text = &file(&files, "gitops-pipeline.yml").1;
    assert!(text.contains(&format!("uses: {uses} # v4.1.2\n")), "{text}");
    assert_eq!(installer["with"]["cosign-release"].as_str(), Some("v3.1.3"));
    // Both run only when the build step reported an image and a digest.
    for step in [installer, signer] {
        let condition = step["if"].as_str().unwrap();
        assert_eq!(
            condition,
            "steps.gitops.outputs.digest != '' && steps.gitops.outputs.image != ''"
        );
    }
    assert_eq!(
        signer["run"].as_str(),
        Some("cosign sign --yes \"$GITOPS_IMAGE@$GITOPS_DIGEST\"")
    );
    assert_eq!(
        signer["env"]["GITOPS_IMAGE"].as_str(),
        Some("${{ steps.gitops.outputs.image }}")
    );
    assert_eq!(
        signer["env"]["GITOPS_DIGEST"].as_str(),
        Some("${{ steps.gitops.outputs.digest }}")
    );
    assert!(step(&pipeline, "attest the build provenance").is_none());
    assert!(pipeline["on"]["workflow_call"]["secrets"].is_badvalue());
    for (name, text, _) in &files {
        assert!(!text.contains("attestations"), "{name}");
    }
}

#[test]
fn the_attestation_step_attests_builds_and_pushes_to_the_registry_with_its_permissions() {
    // On its own, on a registry logged in to with secrets (no packages: write, no OIDC login).
    let files = generated(
        "[workspace]\n\n[workspace.metadata.gitops]\nregistry = \"registry.example.com/team\"\nimage = \"shop\"\nregistry-secrets = { username = \"REGISTRY_USER\", password = \"REGISTRY_PASSWORD\" }\ngithub-attestation = true\n",
    );
    let pipeline = check_permissions(
        &files,
        &["contents: read", "id-token: write", "attestations: write"],
    );
    let (build, _) = build_step(&pipeline);
    let (index, attest) = step(&pipeline, "attest the build provenance").unwrap();
    assert_eq!(index, build + 1);
    assert_eq!(
        attest["uses"].as_str(),
        Some("actions/attest-build-provenance@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32")
    );
    assert!(
        file(&files, "gitops-pipeline.yml")
            .1
            .contains("@a2bbfa25375fe432b6a289bc6b6cd05ecd0c4c32 # v4.1.0\n")
    );
    let with = &attest["with"];
    assert_eq!(
        with["subject-name"].as_str(),
        Some("${{ steps.gitops.outputs.image }}")
    );
    assert_eq!(
        with["subject-digest"].as_str(),
        Some("${{ steps.gitops.outputs.digest }}")
    );
    assert_eq!(with["push-to-registry"].as_bool(), Some(true));
    assert_eq!(with["create-storage-record"].as_bool(), Some(false));
    assert_eq!(with.as_hash().unwrap().len(), 4);
    let condition = attest["if"].as_str().unwrap();
    assert!(
        condition.starts_with("steps.gitops.outputs.built == 'true' && ")
            && condition.contains("steps.gitops.outputs.digest != ''"),
        "{condition}"
    );
    assert!(step(&pipeline, "install cosign").is_none());

    // With keyless signing: both, and the permissions once each.
    let files = generated(&config("sign = \"keyless\"\ngithub-attestation = true\n"));
    let pipeline = check_permissions(
        &files,
        &[
            "contents: read",
            "packages: write",
            "id-token: write",
            "attestations: write",
        ],
    );
    let names: Vec<&str> = steps(&pipeline)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .skip_while(|n| *n != "build or retag")
        .collect();
    assert_eq!(
        names,
        [
            "build or retag",
            "install cosign",
            "sign the image with the job's OIDC token",
            "attest the build provenance"
        ]
    );
    insta::assert_snapshot!(
        "signing_keyless_attestation__pipeline",
        &file(&files, "gitops-pipeline.yml").1
    );
    insta::assert_snapshot!(
        "signing_keyless_attestation__production",
        &file(&files, "gitops-production.yml").1
    );
}

#[test]
fn a_signing_key_secret_that_cannot_be_passed_safely_is_refused() {
    let cases = [
        ("signing-key-env = \"GITHUB_TOKEN\"\n", "GITHUB_"),
        ("signing-key-env = \"GITOPS_ENVIRONMENT\"\n", "build step"),
        (
            "signing-key-env = \"REGISTRY_PASSWORD\"\nregistry-secrets = { username = \"REGISTRY_USER\", password = \"REGISTRY_PASSWORD\" }\n",
            "registry login",
        ),
    ];
    for (setting, message) in cases {
        let dir = repository(&config(&format!("sign = \"key\"\n{setting}")));
        let line = dir.command().args(["init-workflows"]).expect_error(2);
        assert!(
            line.contains("signing-key-env") && line.contains(message),
            "{setting}: {line}"
        );
        assert!(!dir.join(".github/workflows").exists(), "{setting}");
    }
    // A bad value of the attestation key is the configuration's error, with its key.
    let dir = repository(&config("github-attestation = \"yes\"\n"));
    let line = dir.command().args(["init-workflows"]).expect_error(2);
    assert!(line.contains("github-attestation"), "{line}");
}

/// The README's excerpt of a keyless, attesting pipeline: each part (split at `# …`) is what
/// the generator writes, in order, at the indentation the README shows.
#[test]
fn the_readme_excerpt_is_what_the_generator_writes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("**Signing in the generated workflow.**")
        .expect("the README's paragraph");
    let block = &readme[start..];
    let block = &block[block.find("```yaml\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let dir = repository(&config("sign = \"keyless\"\ngithub-attestation = true\n"));
    let pipeline = generate(&dir)
        .into_iter()
        .find(|(n, _)| n == "gitops-pipeline.yml")
        .unwrap()
        .1;
    let mut from = 0;
    let parts: Vec<&str> = block.split("# …\n").collect();
    assert_eq!(parts.len(), 3, "{block}");
    for part in parts {
        let found = pipeline[from..]
            .find(part)
            .unwrap_or_else(|| panic!("not in the pipeline (in this order):\n{part}\n{pipeline}"));
        from += found + part.len();
    }
}

#[test]
fn a_status_gate_grants_reading_statuses_and_checks_and_hands_the_job_token_to_the_build_only() {
    let mut environments = String::from(
        "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\ngates = { previous = \"staging\", status = \"flux/production\" }\n",
    );
    for name in ["alpha", "beta", "testing", "staging", "development"] {
        environments.push_str(&format!(
            "\n[[workspace.metadata.gitops.environments]]\nname = \"{name}\"\n"
        ));
    }
    let files = generated(&config(&environments));
    // One job promotes to every environment, and a called job gets no more than its caller
    // grants: each call grants reading statuses and checks.
    let pipeline = check_permissions(
        &files,
        &[
            "contents: read",
            "packages: write",
            "statuses: read",
            "checks: read",
        ],
    );
    let (index, build) = build_step(&pipeline);
    assert_eq!(
        build["env"]["GITOPS_STATUS_TOKEN"].as_str(),
        Some("${{ github.token }}")
    );
    for (i, other) in steps(&pipeline).iter().enumerate() {
        if i != index {
            assert!(
                other["env"]["GITOPS_STATUS_TOKEN"].is_badvalue(),
                "step {i}"
            );
        }
    }
    // Gates without a status gate change nothing in the generated files.
    let plain = repository(BASE);
    let gated = repository(&config(
        "\n[[workspace.metadata.gitops.environments]]\nname = \"production\"\ngates = { previous = \"staging\", soak = \"30m\", provenance = true }\n\n[[workspace.metadata.gitops.environments]]\nname = \"alpha\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"beta\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"testing\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"staging\"\n\n[[workspace.metadata.gitops.environments]]\nname = \"development\"\n",
    ));
    assert_eq!(generate(&plain), generate(&gated));
}
