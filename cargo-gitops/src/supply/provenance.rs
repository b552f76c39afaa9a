//! Build provenance as an in-toto Statement v1 whose predicate is SLSA Provenance v1: which
//! image (name and digest) was built, from which source commit, by which builder, with which
//! parameters and inputs (base image, Cargo.lock).
//!
//! Owns the statement's shape and bytes; where its inputs come from (the job, the registry) and
//! attaching or signing it are other layers' work. Only what is the same for every build of
//! one commit goes in: no environment, tag, ref, path of this machine, wall-clock time or run
//! identifier, so the statement is as reproducible as the image it describes. `startedOn` and
//! `finishedOn` are therefore the commit's time, not the build's.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The media type (and artifact type) of an in-toto statement in JSON.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";

/// How the image was built; each names a build type URI describing its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildType {
    /// `--build-with native`: cargo compiles, cargo-gitops packs.
    Native,
    Podman,
    Buildx,
}

impl BuildType {
    /// The `buildType` URI, one per driver and revision of its parameters (SLSA does not
    /// require it to resolve; the README's "Supply chain" section documents them).
    pub fn uri(self) -> String {
        let kind = match self {
            BuildType::Native => "native",
            BuildType::Podman => "podman",
            BuildType::Buildx => "buildx",
        };
        format!("{}/build-types/{kind}/v1", env!("CARGO_PKG_REPOSITORY"))
    }
}

/// The image the statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The image's repository, without tag: `ghcr.io/acme/web`.
    pub name: String,
    /// `sha256:<64 hex>` of its manifest (or index).
    pub digest: String,
}

/// The parameters a user chose, the same in every environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExternalParameters {
    /// The command that built it, without environment-specific flags:
    /// `cargo gitops build --build-with native`.
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// `os/arch[/variant]`, as configured; empty means the builder's own.
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(rename = "buildArgs", skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
}

/// The commit the image was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCommit {
    /// The repository, as `git remote get-url origin` gives it (credentials are removed).
    pub repository: String,
    /// The 40 hex digits of the commit.
    pub commit: String,
}

/// Who ran the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

impl Builder {
    /// The builder of this run: a GitHub-hosted or self-hosted GitHub Actions runner when
    /// `env` says so, else cargo-gitops itself. Never a runner's name or a run's number,
    /// which would make two builds of one commit differ.
    pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Builder {
        let set = |key: &str| env(key).filter(|v| !v.is_empty());
        let id = if set("GITHUB_ACTIONS").as_deref() == Some("true") {
            match set("RUNNER_ENVIRONMENT").as_deref() {
                Some("github-hosted") => "https://github.com/actions/runner/github-hosted",
                _ => "https://github.com/actions/runner/self-hosted",
            }
            .to_owned()
        } else {
            format!("pkg:cargo/cargo-gitops@{}", env!("CARGO_PKG_VERSION"))
        };
        Builder {
            id,
            version: BTreeMap::from([(
                "cargo-gitops".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )]),
        }
    }
}

/// A base image the build started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// `gcr.io/distroless/static`, without tag or digest.
    pub repository: String,
    /// `sha256:<64 hex>`.
    pub digest: String,
}

/// Everything the statement says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub subjects: Vec<Subject>,
    pub build_type: BuildType,
    pub external: ExternalParameters,
    /// Rust targets and the epoch of timestamps inside the image: derived by the tool, not
    /// chosen by the user.
    pub internal: BTreeMap<String, serde_json::Value>,
    pub source: SourceCommit,
    pub base: Option<BaseImage>,
    /// The bytes of the Cargo.lock the build used, if any (only their digest is written).
    pub cargo_lock: Option<Vec<u8>>,
    pub builder: Builder,
    /// Unix seconds of the commit.
    pub commit_time: u64,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate<'a> {
    build_definition: BuildDefinition<'a>,
    run_details: RunDetails<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition<'a> {
    build_type: String,
    external_parameters: &'a ExternalParameters,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    internal_parameters: &'a BTreeMap<String, serde_json::Value>,
    resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Serialize)]
struct RunDetails<'a> {
    builder: BuilderJson<'a>,
    metadata: Metadata,
}

#[derive(Serialize)]
struct BuilderJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    version: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    started_on: String,
    finished_on: String,
}

/// in-toto's ResourceDescriptor, the fields used here.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDescriptor {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    digest: BTreeMap<&'static str, String>,
}

/// `sha256:<hex>` as in-toto's digest set `{"sha256": "<hex>"}`, checked.
fn digest_set(digest: &str, what: &str) -> Result<BTreeMap<&'static str, String>, Error> {
    let parsed = crate::registry::oci::Digest::parse(digest)
        .map_err(|e| Error::Internal(format!("the {what} digest for provenance: {e}")))?;
    Ok(BTreeMap::from([("sha256", parsed.hex().to_owned())]))
}

/// The repository as an in-toto `git+` URI, with any `user:password@` removed: a token in a
/// CI clone URL must never end up in a published document.
fn git_uri(repository: &str) -> String {
    let without_credentials = match repository.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}/{path}")
            }
            None => repository.to_owned(),
        },
        None => repository.to_owned(),
    };
    if without_credentials.starts_with("git+") {
        without_credentials
    } else {
        format!("git+{without_credentials}")
    }
}

impl Provenance {
    /// The statement as JSON bytes, the same for the same inputs.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        if self.subjects.is_empty() {
            return Err(Error::Internal(
                "a provenance statement needs the image it describes".to_owned(),
            ));
        }
        let commit = &self.source.commit;
        if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Internal(format!(
                "the source commit for provenance is `{commit}`, not 40 hex digits"
            )));
        }
        let subject = self
            .subjects
            .iter()
            .map(|s| {
                Ok(ResourceDescriptor {
                    name: Some(s.name.clone()),
                    uri: None,
                    digest: digest_set(&s.digest, "image")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        // Without a known remote the commit is still named; a made-up URI would mislead.
        let mut resolved = vec![ResourceDescriptor {
            name: None,
            uri: (!self.source.repository.is_empty()).then(|| git_uri(&self.source.repository)),
            digest: BTreeMap::from([("gitCommit", commit.to_ascii_lowercase())]),
        }];
        if let Some(base) = &self.base {
            resolved.push(ResourceDescriptor {
                name: Some("base image".to_owned()),
                uri: Some(format!("oci://{}", base.repository)),
                digest: digest_set(&base.digest, "base image")?,
            });
        }
        if let Some(lock) = &self.cargo_lock {
            resolved.push(ResourceDescriptor {
                name: Some("Cargo.lock".to_owned()),
                uri: None,
                digest: BTreeMap::from([("sha256", crate::supply::sha256_hex(lock))]),
            });
        }
        let time = crate::time::rfc3339(self.commit_time);
        let statement = Statement {
            kind: STATEMENT_TYPE,
            subject,
            predicate_type: PREDICATE_TYPE,
            predicate: Predicate {
                build_definition: BuildDefinition {
                    build_type: self.build_type.uri(),
                    external_parameters: &self.external,
                    internal_parameters: &self.internal,
                    resolved_dependencies: resolved,
                },
                run_details: RunDetails {
                    builder: BuilderJson {
                        id: &self.builder.id,
                        version: &self.builder.version,
                    },
                    metadata: Metadata {
                        started_on: time.clone(),
                        finished_on: time,
                    },
                },
            },
        };
        let mut bytes = serde_json::to_vec_pretty(&statement)
            .map_err(|e| Error::Internal(format!("the provenance does not serialize: {e}")))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    pub(crate) fn example() -> Provenance {
        Provenance {
            subjects: vec![Subject {
                name: "localhost:5000/hello".into(),
                digest: format!("sha256:{}", "a".repeat(64)),
            }],
            build_type: BuildType::Native,
            external: ExternalParameters {
                command: "cargo gitops build --build-with native".into(),
                package: Some("hello".into()),
                bin: Some("hello".into()),
                platforms: vec!["linux/amd64".into()],
                ..ExternalParameters::default()
            },
            internal: BTreeMap::from([
                ("sourceDateEpoch".to_owned(), json!(1_654_880_868)),
                ("targets".to_owned(), json!(["x86_64-unknown-linux-gnu"])),
            ]),
            source: SourceCommit {
                repository: "https://x-access-token:secret@github.com/acme/hello.git".into(),
                commit: SHA.into(),
            },
            base: Some(BaseImage {
                repository: "gcr.io/distroless/static".into(),
                digest: format!("sha256:{}", "b".repeat(64)),
            }),
            cargo_lock: Some(b"version = 4\n".to_vec()),
            builder: Builder::detect(&|_| None),
            commit_time: 1_654_880_868,
        }
    }

    #[test]
    fn the_statement_has_the_in_toto_and_slsa_shape() {
        let bytes = example().to_json().unwrap();
        assert_eq!(bytes, example().to_json().unwrap(), "not deterministic");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["_type"], STATEMENT_TYPE);
        assert_eq!(doc["predicateType"], PREDICATE_TYPE);
        assert_eq!(
            doc["subject"],
            json!([{"name": "localhost:5000/hello", "digest": {"sha256": "a".repeat(64)}}])
        );
        let definition = &doc["predicate"]["buildDefinition"];
        assert!(
            definition["buildType"]
                .as_str()
                .unwrap()
                .starts_with("https://github.com/")
        );
        assert_eq!(
            definition["externalParameters"],
            json!({
                "command": "cargo gitops build --build-with native",
                "package": "hello",
                "bin": "hello",
                "platforms": ["linux/amd64"]
            })
        );
        assert_eq!(
            definition["resolvedDependencies"],
            json!([
                {"uri": "git+https://github.com/acme/hello.git", "digest": {"gitCommit": SHA}},
                {"name": "base image", "uri": "oci://gcr.io/distroless/static", "digest": {"sha256": "b".repeat(64)}},
                {"name": "Cargo.lock", "digest": {"sha256": crate::supply::sha256_hex(b"version = 4\n")}}
            ])
        );
        let run = &doc["predicate"]["runDetails"];
        assert_eq!(
            run["builder"]["id"],
            format!("pkg:cargo/cargo-gitops@{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(
            run["metadata"],
            json!({"startedOn": "2022-06-10T17:07:48Z", "finishedOn": "2022-06-10T17:07:48Z"})
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
    }

    #[test]
    fn github_runners_are_the_builder_there() {
        let hosted = Builder::detect(&|k| match k {
            "GITHUB_ACTIONS" => Some("true".into()),
            "RUNNER_ENVIRONMENT" => Some("github-hosted".into()),
            _ => None,
        });
        assert_eq!(hosted.id, "https://github.com/actions/runner/github-hosted");
        let own = Builder::detect(&|k| (k == "GITHUB_ACTIONS").then(|| "true".into()));
        assert_eq!(own.id, "https://github.com/actions/runner/self-hosted");
    }

    #[test]
    fn bad_digests_and_commits_are_refused() {
        let mut bad = example();
        bad.subjects[0].digest = "sha256:xyz".into();
        assert!(bad.to_json().is_err());
        let mut bad = example();
        bad.source.commit = "main".into();
        assert!(bad.to_json().is_err());
        let mut bad = example();
        bad.subjects.clear();
        assert!(bad.to_json().is_err());
    }

    #[test]
    fn repository_uris_lose_credentials() {
        assert_eq!(
            git_uri("https://u:p@example.com/a/b.git"),
            "git+https://example.com/a/b.git"
        );
        assert_eq!(
            git_uri("ssh://git@example.com/a/b.git"),
            "git+ssh://example.com/a/b.git"
        );
        assert_eq!(
            git_uri("git+https://example.com/a"),
            "git+https://example.com/a"
        );
    }
}
