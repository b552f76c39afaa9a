//! Builders: the programs that turn a Dockerfile into an image in a registry (`docker buildx
//! build --push`, or `podman build` then `podman push`), as exact command lines. Deciding
//! whether to build at all is `pipeline`'s job; moving tags afterwards is `retagger`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::Error;
use crate::process::Command;
use crate::registry::client::{Repository, is_plain_http};

/// Everything a build needs, whatever the builder.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub repository: Repository,
    /// The lookup tag first, then the environment's tags.
    pub tags: Vec<String>,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub build_args: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    /// A named buildx builder (`BUILDX_BUILDER` or config), e.g. a remote BuildKit.
    pub buildx_builder: Option<String>,
    pub cache_from: Vec<String>,
    pub cache_to: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// Where the builder writes what it pushed, to read back the digest.
    pub metadata_file: PathBuf,
    /// The source's time (`SOURCE_DATE_EPOCH` or the commit's): timestamps in the image come
    /// from it, so two builds of one commit can give one digest.
    pub epoch: u64,
}

impl BuildSpec {
    fn plain_http(&self) -> bool {
        is_plain_http(&self.repository.registry, &self.insecure_registries)
    }

    fn common_args(&self) -> Vec<String> {
        let mut args = vec!["--file".to_owned(), self.dockerfile.display().to_string()];
        for tag in &self.tags {
            args.push("--tag".to_owned());
            args.push(self.repository.with_tag(tag));
        }
        for (key, value) in &self.labels {
            args.push("--label".to_owned());
            args.push(format!("{key}={value}"));
        }
        for (key, value) in &self.build_args {
            args.push("--build-arg".to_owned());
            args.push(format!("{key}={value}"));
        }
        if !self.platforms.is_empty() {
            args.push("--platform".to_owned());
            args.push(self.platforms.join(","));
        }
        args
    }
}

/// `docker buildx build --push`: one command builds and pushes every tag; the digest comes
/// back through `--metadata-file`.
pub fn buildx_build(spec: &BuildSpec) -> Command {
    let mut command = Command::new("docker").args(["buildx", "build"]);
    command = if spec.plain_http() {
        // `--push` would use TLS; this output pushes to a plain-HTTP registry.
        command.args(["--output", "type=image,push=true,registry.insecure=true"])
    } else {
        command.arg("--push")
    };
    if let Some(builder) = &spec.buildx_builder {
        command = command.args(["--builder", builder.as_str()]);
    }
    command = command.args(spec.common_args());
    if !spec.build_args.contains_key("SOURCE_DATE_EPOCH") {
        // BuildKit takes the image's timestamps from this build argument.
        command = command.args([
            "--build-arg".to_owned(),
            format!("SOURCE_DATE_EPOCH={}", spec.epoch),
        ]);
    }
    command = command.args([
        "--metadata-file".to_owned(),
        spec.metadata_file.display().to_string(),
    ]);
    for cache in &spec.cache_from {
        command = command.args(["--cache-from", cache.as_str()]);
    }
    for cache in &spec.cache_to {
        command = command.args(["--cache-to", cache.as_str()]);
    }
    command.arg(spec.context.display().to_string())
}

/// `podman build` with every tag; pushing is separate (`podman_push`).
pub fn podman_build(spec: &BuildSpec) -> Command {
    Command::new("podman")
        .arg("build")
        .args(["--timestamp".to_owned(), spec.epoch.to_string()])
        .args(spec.common_args())
        .arg(spec.context.display().to_string())
}

/// `podman push` of one tag, writing the pushed digest to `digest_file`.
pub fn podman_push(spec: &BuildSpec, tag: &str, digest_file: &std::path::Path) -> Command {
    let mut command = Command::new("podman").arg("push");
    if spec.plain_http() {
        command = command.arg("--tls-verify=false");
    }
    command
        .args(["--digestfile".to_owned(), digest_file.display().to_string()])
        .arg(spec.repository.with_tag(tag))
}

/// The digest buildx recorded in its metadata file.
pub fn digest_from_buildx_metadata(text: &str) -> Result<String, Error> {
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "containerimage.digest")]
        digest: String,
    }
    serde_json::from_str::<Metadata>(text)
        .map(|m| m.digest)
        .map_err(|e| Error::Registry {
            registry: "docker buildx".to_owned(),
            step: "build".to_owned(),
            message: format!(
                "the metadata file has no image digest ({e}); is docker buildx recent enough?"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BuildSpec {
        BuildSpec {
            repository: Repository::parse("ghcr.io/au2001/app").unwrap(),
            tags: vec![
                "commit-abc".into(),
                "stg-abc1234-1654880868".into(),
                "stg-latest".into(),
            ],
            dockerfile: "demo-app/Dockerfile".into(),
            context: ".".into(),
            labels: BTreeMap::from([("org.opencontainers.image.revision".into(), "abc".into())]),
            build_args: BTreeMap::from([("PROFILE".into(), "release".into())]),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            buildx_builder: Some("remote".into()),
            cache_from: vec!["type=gha".into()],
            cache_to: vec!["type=gha,mode=max".into()],
            insecure_registries: vec![],
            metadata_file: "/tmp/meta.json".into(),
            epoch: 1_654_880_000,
        }
    }

    #[test]
    fn buildx_argv() {
        let command = buildx_build(&spec());
        assert_eq!(command.program(), "docker");
        assert_eq!(
            command.argv(),
            [
                "buildx",
                "build",
                "--push",
                "--builder",
                "remote",
                "--file",
                "demo-app/Dockerfile",
                "--tag",
                "ghcr.io/au2001/app:commit-abc",
                "--tag",
                "ghcr.io/au2001/app:stg-abc1234-1654880868",
                "--tag",
                "ghcr.io/au2001/app:stg-latest",
                "--label",
                "org.opencontainers.image.revision=abc",
                "--build-arg",
                "PROFILE=release",
                "--platform",
                "linux/amd64,linux/arm64",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1654880000",
                "--metadata-file",
                "/tmp/meta.json",
                "--cache-from",
                "type=gha",
                "--cache-to",
                "type=gha,mode=max",
                ".",
            ]
        );
    }

    #[test]
    fn podman_argv() {
        let mut spec = spec();
        spec.repository = Repository::parse("127.0.0.1:5000/app").unwrap();
        spec.platforms.clear();
        assert_eq!(
            podman_push(&spec, "commit-abc", "/tmp/d".as_ref()).argv(),
            [
                "push",
                "--tls-verify=false",
                "--digestfile",
                "/tmp/d",
                "127.0.0.1:5000/app:commit-abc"
            ]
        );
        let build = podman_build(&spec);
        assert_eq!(
            build.argv()[..5],
            [
                "build",
                "--timestamp",
                "1654880000",
                "--file",
                "demo-app/Dockerfile"
            ]
        );
        assert_eq!(build.argv().last(), Some(&"."));
    }

    #[test]
    fn buildx_metadata_digest() {
        let digest = digest_from_buildx_metadata(
            r#"{"containerimage.digest":"sha256:abc","image.name":"x"}"#,
        )
        .unwrap();
        assert_eq!(digest, "sha256:abc");
        assert!(digest_from_buildx_metadata("{}").is_err());
    }
}
