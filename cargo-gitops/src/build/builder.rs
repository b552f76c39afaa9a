//! Builders: the programs that turn a Dockerfile into an image in a registry (`docker buildx
//! build` pushing by digest, or `podman build` then `podman push`), as exact command lines, and
//! what their failures mean. Deciding whether to build at all is `plan`'s job; claiming the
//! lookup tag and moving tags afterwards is `converge`'s and `retag`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::process::Command;
use crate::registry::client::{Repository, is_plain_http};

/// Everything a build needs, whatever the builder.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub repository: Repository,
    /// The one tag podman pushes (the environment's primary tag); buildx pushes by digest.
    pub push_tag: String,
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
    /// buildx: attach BuildKit's SBOM (`--sbom=true`) to the pushed image.
    pub sbom: bool,
    /// buildx: attach BuildKit's provenance in full (`--provenance=mode=max`), not only the
    /// minimal one BuildKit adds by default.
    pub provenance: bool,
}

impl BuildSpec {
    fn plain_http(&self) -> bool {
        is_plain_http(&self.repository.registry, &self.insecure_registries)
    }

    fn common_args(&self) -> Vec<String> {
        let mut args = vec!["--file".to_owned(), self.dockerfile.display().to_string()];
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

/// `docker buildx build` that pushes the image by digest, with no tag: the lookup tag is
/// claimed afterwards, and environment tags follow it. The digest comes back through
/// `--metadata-file`.
pub fn buildx_build(spec: &BuildSpec) -> Command {
    let mut output = format!(
        "type=image,name={},push-by-digest=true,push=true",
        spec.repository
    );
    if spec.plain_http() {
        output.push_str(",registry.insecure=true");
    }
    let mut command = Command::new("docker")
        .args(["buildx", "build", "--output"])
        .arg(output);
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
    if spec.sbom {
        command = command.arg("--sbom=true");
    }
    if spec.provenance {
        command = command.arg("--provenance=mode=max");
    }
    command.arg(spec.context.display().to_string())
}

/// The tag of a repository that holds buildx's cache of its builds.
pub const CACHE_TAG: &str = "buildcache";

/// The default cache of buildx builds: in the image's own repository, under [`CACHE_TAG`],
/// every stage's layers (`mode=max`, so that a cargo-chef `cook` stage is reused while the
/// lock file stays the same). It needs only the login that pushes the image, unlike
/// `type=gha`, whose runtime token a workflow's `run:` step never gets.
pub fn registry_cache(
    repository: &Repository,
    insecure_registries: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut reference = format!("type=registry,ref={}:{CACHE_TAG}", repository);
    if is_plain_http(&repository.registry, insecure_registries) {
        reference.push_str(",registry.insecure=true");
    }
    let to = format!("{reference},mode=max");
    (vec![reference], vec![to])
}

/// `podman build`, naming the image by the tag it is pushed as; pushing is `podman_push`.
pub fn podman_build(spec: &BuildSpec) -> Command {
    Command::new("podman")
        .arg("build")
        .args(["--timestamp".to_owned(), spec.epoch.to_string()])
        .args(spec.common_args())
        .args(["--tag".to_owned(), spec.repository.with_tag(&spec.push_tag)])
        .arg(spec.context.display().to_string())
}

/// `podman push` of the built image's tag, writing the pushed digest to `digest_file`.
pub fn podman_push(spec: &BuildSpec, digest_file: &Path) -> Command {
    let mut command = Command::new("podman").arg("push");
    if spec.plain_http() {
        command = command.arg("--tls-verify=false");
    }
    command
        .args(["--digestfile".to_owned(), digest_file.display().to_string()])
        .arg(spec.repository.with_tag(&spec.push_tag))
}

/// What to do when docker has no buildx plugin, for a build.
const BUILDX_HINT: &str = "docker has no buildx plugin (`docker buildx version` fails); install the plugin (https://docs.docker.com/go/buildx/), or use --build-with podman or --build-with native";

/// Whether `docker buildx …` failed because docker has no buildx plugin: docker then reads
/// `buildx` as an unknown command, or its flags as its own.
pub fn says_buildx_is_missing(command: &Command, output: &str) -> bool {
    command.program() == "docker"
        && command.argv().first() == Some(&"buildx")
        && (output.contains("unknown command: docker buildx")
            || output.contains("is not a docker command")
            || (output.contains("unknown flag: --")
                && output.contains("Usage:  docker [OPTIONS] COMMAND")))
}

/// Checks that docker has the buildx plugin before a build runs, quietly: without it docker
/// answers `docker buildx build …` with pages of its own usage, which a CI log would show
/// before the one line that says what is wrong.
pub fn check_buildx(command: &Command) -> Result<(), Error> {
    if command.program() != "docker" || command.argv().first() != Some(&"buildx") {
        return Ok(());
    }
    let probe = Command::new("docker").args(["buildx", "version"]);
    match probe.run() {
        Ok(_) => Ok(()),
        Err(Error::CommandFailed { .. }) => Err(Error::ToolMissing {
            tool: "docker buildx".to_owned(),
            hint: BUILDX_HINT.to_owned(),
        }),
        Err(other) => Err(other),
    }
}

/// Turns a builder's failure into what it means, when it is known: a missing buildx plugin,
/// a registry that refused podman's push for want of a login. Anything else is kept as is.
pub fn explain(command: &Command, error: Error) -> Error {
    let Error::CommandFailed { output, .. } = &error else {
        return error;
    };
    if says_buildx_is_missing(command, output) {
        return Error::ToolMissing {
            tool: "docker buildx".to_owned(),
            hint: BUILDX_HINT.to_owned(),
        };
    }
    let lower = output.to_lowercase();
    if command.program() == "podman"
        && command.argv().first() == Some(&"push")
        && (lower.contains("unauthorized") || lower.contains("authentication required"))
    {
        let registry = command
            .argv()
            .last()
            .and_then(|image| image.split('/').next())
            .unwrap_or_default()
            .to_owned();
        return Error::Build {
            tool: "`podman push`".to_owned(),
            message: format!(
                "{registry} refused it as unauthorized; run `podman login {registry}` (podman keeps its own logins), then run again"
            ),
        };
    }
    error
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
        .map_err(|e| Error::Build {
            tool: "docker buildx".to_owned(),
            message: format!(
                "its metadata file has no image digest ({e}); update docker buildx to 0.10 or later"
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BuildSpec {
        BuildSpec {
            repository: Repository::parse("ghcr.io/au2001/app").unwrap(),
            push_tag: "stg-abc1234-1654880868".into(),
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
            sbom: false,
            provenance: false,
        }
    }

    #[test]
    fn buildx_asks_buildkit_for_its_sbom_and_full_provenance_when_configured() {
        let command = buildx_build(&BuildSpec {
            sbom: true,
            provenance: true,
            ..spec()
        });
        let argv = command.argv();
        let context = argv.iter().position(|a| *a == ".").unwrap();
        assert_eq!(
            argv[context - 2..],
            ["--sbom=true", "--provenance=mode=max", "."]
        );
        assert!(
            !buildx_build(&spec())
                .argv()
                .iter()
                .any(|a| a.starts_with("--sbom"))
        );
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
                "--output",
                "type=image,name=ghcr.io/au2001/app,push-by-digest=true,push=true",
                "--builder",
                "remote",
                "--file",
                "demo-app/Dockerfile",
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
            podman_push(&spec, "/tmp/d".as_ref()).argv(),
            [
                "push",
                "--tls-verify=false",
                "--digestfile",
                "/tmp/d",
                "127.0.0.1:5000/app:stg-abc1234-1654880868"
            ]
        );
        assert_eq!(
            buildx_build(&spec).argv()[..4],
            [
                "buildx",
                "build",
                "--output",
                "type=image,name=127.0.0.1:5000/app,push-by-digest=true,push=true,registry.insecure=true"
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
        assert_eq!(
            build.argv()[build.argv().len() - 3..],
            ["--tag", "127.0.0.1:5000/app:stg-abc1234-1654880868", "."]
        );
    }

    #[test]
    fn failures_that_mean_something_else() {
        let failed = |output: &str| Error::CommandFailed {
            command: "x".into(),
            status: "exit code 125".into(),
            output: output.into(),
        };
        let buildx = buildx_build(&spec());
        let no_plugin = "unknown flag: --output\n\nUsage:  docker [OPTIONS] COMMAND [ARG...]\n\nRun 'docker --help' for more information";
        let error = explain(&buildx, failed(no_plugin)).to_string();
        assert!(
            error.starts_with("`docker buildx` is not installed: docker has no buildx plugin")
                && error.contains("--build-with podman"),
            "{error}"
        );
        let other = explain(&buildx, failed("ERROR: failed to solve: no such file"));
        assert!(matches!(other, Error::CommandFailed { .. }), "{other:?}");
        let mut local = spec();
        local.repository = Repository::parse("127.0.0.1:5000/app").unwrap();
        let push = podman_push(&local, "/tmp/d".as_ref());
        let refused = "Error: trying to reuse blob sha256:0 at destination: checking whether a blob sha256:0 exists in 127.0.0.1:5000/app: authentication required";
        assert_eq!(
            explain(&push, failed(refused)).to_string(),
            "`podman push` failed: 127.0.0.1:5000 refused it as unauthorized; run `podman login 127.0.0.1:5000` (podman keeps its own logins), then run again"
        );
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
