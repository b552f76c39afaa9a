//! The main job, `cargo gitops build`: look the commit's image up by its lookup tag; retag it
//! when it exists, otherwise build it once and push it; and never let an environment tag point
//! at an image that is not complete. The programs it drives are `builder`'s and `retagger`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::builder::{self, BuildSpec};
use crate::build::native;
use crate::build::retag::Retagger;
use crate::config::{BuilderKind, Config};
use crate::deployment::Deployment;
use crate::environment::{self, GitRef};
use crate::error::Error;
use crate::progress::Progress;
use crate::registry::client::Repository;

/// What the job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Built,
    Retagged,
    None,
}

/// The job's result, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub action: Action,
    pub digest: Option<String>,
    pub image: Option<String>,
    pub tags: Vec<String>,
    pub lookup_tag: String,
    pub environment: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// The OCI image layout written instead of pushing, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<PathBuf>,
}

/// Settings of one run that do not come from the configuration file alone.
pub struct Job<'a> {
    pub config: &'a Config,
    pub deployment: &'a Deployment,
    pub builder: BuilderKind,
    pub retagger: &'a Retagger,
    pub progress: &'a Progress,
    /// `org.opencontainers.image.source`, when known.
    pub source_url: Option<String>,
    /// A folder for the builder's metadata files.
    pub scratch_dir: &'a Path,
    /// `--output oci:DIR`: write an OCI image layout instead of pushing (native builds).
    pub output: Option<PathBuf>,
    /// Every timestamp inside a native image: `SOURCE_DATE_EPOCH`, else the commit's time.
    pub epoch: u64,
}

/// How many times the tags are brought back onto the lookup tag's digest when concurrent
/// runs for the same commit keep moving them.
const CONVERGE_ROUNDS: usize = 5;

impl Job<'_> {
    fn report(&self, action: Action, digest: Option<String>) -> Report {
        let d = self.deployment;
        Report {
            action,
            digest,
            image: d.image.clone(),
            tags: d.tags.clone(),
            lookup_tag: d.lookup_tag.clone(),
            environment: d.environment.clone(),
            git_ref: d.git_ref.clone(),
            sha: d.sha.clone(),
            layout: None,
        }
    }

    fn target(&self) -> Result<Repository, Error> {
        let image = self.deployment.image.as_deref().ok_or(Error::NoImage)?;
        Repository::parse(image)
    }

    /// Where an earlier build of this commit may be: the target repository first, then the
    /// other environments' repositories (a promotion across repositories).
    fn candidates(&self, target: &Repository) -> Result<Vec<Repository>, Error> {
        let mut candidates = vec![target.clone()];
        for env in &self.config.environments {
            if let Some(image) = self.config.image_for(Some(env)) {
                let repository = Repository::parse(&image)?;
                if !candidates.contains(&repository) {
                    candidates.push(repository);
                }
            }
        }
        Ok(candidates)
    }

    /// Runs the job: lookup, then retag or build.
    pub fn run(&self) -> Result<Report, Error> {
        if self.deployment.environment.is_none() {
            return Ok(self.report(Action::None, None));
        }
        if let Some(dir) = self.layout_dir() {
            return self.build_layout(&dir);
        }
        let target = self.target()?;
        let lookup_tag = &self.deployment.lookup_tag;
        for repository in self.candidates(&target)? {
            let found = self.progress.step(
                &format!("lookup {}", repository.with_tag(lookup_tag)),
                || self.retagger.lookup(&repository, lookup_tag),
            )?;
            if let Some(digest) = found {
                let mut tags = self.deployment.tags.clone();
                if repository != target {
                    tags.insert(0, lookup_tag.clone());
                }
                self.progress
                    .step(&format!("retag {digest} as {}", tags.join(", ")), || {
                        self.retagger.retag(&repository, &digest, &target, &tags)
                    })?;
                return Ok(self.report(Action::Retagged, Some(digest)));
            }
        }
        let spec = self.build_spec(&target);
        let digest = self.build(&spec)?;
        Ok(self.report(Action::Built, Some(digest)))
    }

    /// The commands the job would run, for `--dry-run`: the lookup, then both branches.
    pub fn describe(&self) -> Result<Vec<String>, Error> {
        let mut lines = Vec::new();
        if self.deployment.environment.is_none() {
            lines.push(format!(
                "# no environment tracks {}: nothing to do",
                self.deployment.git_ref
            ));
            return Ok(lines);
        }
        if let Some(dir) = self.layout_dir() {
            lines.extend(self.describe_compile()?);
            lines.push(format!(
                "# then pack the binary as an OCI image layout in {}",
                dir.display()
            ));
            return Ok(lines);
        }
        let target = self.target()?;
        let lookup_tag = &self.deployment.lookup_tag;
        lines.push("# 1. look up an earlier build of this commit".to_owned());
        for repository in self.candidates(&target)? {
            lines.push(
                match self.retagger.lookup_command(&repository, lookup_tag) {
                    Some(command) => command.display(),
                    None => format!(
                        "# built-in client: HEAD /v2/{}/manifests/{lookup_tag} on {}",
                        repository.name, repository.registry
                    ),
                },
            );
        }
        lines.push("# 2a. found DIGEST: retag it".to_owned());
        let commands =
            self.retagger
                .retag_commands(&target, "DIGEST", &target, &self.deployment.tags);
        if commands.is_empty() {
            lines.push(format!(
                "# built-in client: GET /v2/{}/manifests/DIGEST, then PUT the same bytes as {}",
                target.name,
                self.deployment.tags.join(", ")
            ));
        }
        lines.extend(commands.iter().map(|c| c.display()));
        lines.push("# 2b. not found: build once and push".to_owned());
        let spec = self.build_spec(&target);
        match self.builder {
            BuilderKind::Buildx => lines.push(builder::buildx_build(&spec).display()),
            BuilderKind::Podman => {
                lines.push(builder::podman_build(&spec).display());
                let (lookup_tag, env_tags) = spec
                    .tags
                    .split_first()
                    .expect("the lookup tag is always first");
                for (i, tag) in env_tags.iter().enumerate() {
                    lines.push(builder::podman_push(&spec, tag, &self.digest_file(tag)).display());
                    if i == 0 {
                        lines.push(format!(
                            "# then, unless it exists: point {lookup_tag} at the digest just pushed"
                        ));
                    }
                }
            }
            BuilderKind::Native => {
                lines.extend(self.describe_compile()?);
                lines.push(format!(
                    "# built-in client: upload the layer and config blobs, then PUT the manifest as {}",
                    spec.tags.join(", ")
                ));
            }
        }
        Ok(lines)
    }

    /// The cargo commands of a native build, one per platform.
    fn describe_compile(&self) -> Result<Vec<String>, Error> {
        let binary = native::find_binary(&self.native_spec())?;
        Ok(self
            .native_targets()?
            .iter()
            .map(|target| {
                native::compile_command(&binary, target, &self.manifest(), self.epoch).display()
            })
            .collect())
    }

    fn digest_file(&self, tag: &str) -> std::path::PathBuf {
        self.scratch_dir.join(format!("digest-{tag}"))
    }

    fn build_spec(&self, target: &Repository) -> BuildSpec {
        let config = self.config;
        let d = self.deployment;
        let env = config
            .environments
            .iter()
            .find(|e| Some(&e.name) == d.environment.as_ref());
        let title = target
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&target.name)
            .to_owned();
        let mut tags = vec![d.lookup_tag.clone()];
        tags.extend(d.tags.iter().cloned());
        BuildSpec {
            repository: target.clone(),
            tags,
            dockerfile: config.dockerfile(),
            context: config.context(),
            labels: self.labels(&title),
            build_args: env.map(|e| e.build_args.clone()).unwrap_or_default(),
            platforms: config.build.platforms.clone(),
            buildx_builder: std::env::var("BUILDX_BUILDER")
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| config.build.buildx_builder.clone()),
            cache_from: config.build.cache_from.clone(),
            cache_to: config.build.cache_to.clone(),
            insecure_registries: config.build.insecure_registries.clone(),
            metadata_file: self.scratch_dir.join("buildx-metadata.json"),
            epoch: self.epoch,
        }
    }

    /// The OCI labels every build carries.
    fn labels(&self, title: &str) -> BTreeMap<String, String> {
        let d = self.deployment;
        let version = match GitRef::from_full(&d.git_ref) {
            GitRef::Tag(tag) => environment::parse_semver_tag(&tag).map(|v| v.to_string()),
            _ => None,
        }
        // Not the primary tag: it holds the build time, and labels must not change per build.
        .unwrap_or_else(|| d.sha[..7.min(d.sha.len())].to_owned());
        let mut labels = BTreeMap::from([
            (
                "org.opencontainers.image.revision".to_owned(),
                d.sha.clone(),
            ),
            ("org.opencontainers.image.version".to_owned(), version),
            (
                "org.opencontainers.image.created".to_owned(),
                // The source's time, not the clock's: a rebuild of one commit keeps its labels.
                crate::time::rfc3339(self.epoch),
            ),
            (
                "org.opencontainers.image.title".to_owned(),
                title.to_owned(),
            ),
            (
                "cargo-gitops.environment".to_owned(),
                d.environment.clone().unwrap_or_default(),
            ),
        ]);
        if let Some(source) = &self.source_url {
            labels.insert("org.opencontainers.image.source".to_owned(), source.clone());
        }
        labels
    }

    /// Builds and pushes; the lookup tag goes first, so the image is complete before any
    /// environment tag names it. Then brings every tag onto the lookup tag's digest.
    fn build(&self, spec: &BuildSpec) -> Result<String, Error> {
        let (lookup_tag, env_tags) = spec
            .tags
            .split_first()
            .expect("the lookup tag is always first");
        match self.builder {
            BuilderKind::Buildx => {
                self.progress
                    .step("build and push with docker buildx", || {
                        builder::buildx_build(spec).run()
                    })?;
                // buildx records what it pushed; no digest there means nothing was pushed,
                // whatever its exit code said. The digest that counts is the lookup tag's,
                // which `converge` reads next.
                let metadata =
                    std::fs::read_to_string(&spec.metadata_file).map_err(|source| Error::Read {
                        what: spec.metadata_file.display().to_string(),
                        source,
                    })?;
                builder::digest_from_buildx_metadata(&metadata)?;
            }
            BuilderKind::Native => {
                let image = self.native_image()?;
                let client = self.retagger.client(&spec.repository.registry)?;
                let base_client = self.base_client()?;
                self.progress.step(
                    &format!("push {}", spec.repository.with_tag(lookup_tag)),
                    || {
                        image.push(
                            &client,
                            base_client.as_deref(),
                            &spec.repository,
                            lookup_tag,
                        )
                    },
                )?;
            }
            BuilderKind::Podman => {
                self.progress
                    .step("build with podman", || builder::podman_build(spec).run())?;
                let (primary, others) = env_tags
                    .split_first()
                    .expect("an environment always has a primary tag");
                self.push_with_podman(spec, primary)?;
                self.progress.step(
                    &format!("claim {}", spec.repository.with_tag(lookup_tag)),
                    || self.claim_lookup(spec, primary, lookup_tag),
                )?;
                for tag in others {
                    self.push_with_podman(spec, tag)?;
                }
            }
        }
        self.progress
            .step("check that every tag names the same image", || {
                self.converge(&spec.repository, lookup_tag, env_tags)
            })
    }

    fn push_with_podman(&self, spec: &BuildSpec, tag: &str) -> Result<(), Error> {
        self.progress
            .step(&format!("push {}", spec.repository.with_tag(tag)), || {
                builder::podman_push(spec, tag, &self.digest_file(tag))
                    .run()
                    .map(drop)
            })
    }

    /// Points the lookup tag at what podman pushed as `primary`, unless another run for this
    /// commit got there first (then its image is the commit's, and `converge` moves this run's
    /// tags onto it). A claim is a HEAD and a PUT, so racing runs rarely both find it free;
    /// the image is complete before any tag names it, whichever run wins.
    fn claim_lookup(&self, spec: &BuildSpec, primary: &str, lookup_tag: &str) -> Result<(), Error> {
        if self
            .retagger
            .lookup(&spec.repository, lookup_tag)?
            .is_some()
        {
            return Ok(());
        }
        let file = self.digest_file(primary);
        let digest = std::fs::read_to_string(&file).map_err(|source| Error::Read {
            what: file.display().to_string(),
            source,
        })?;
        self.retagger.retag(
            &spec.repository,
            digest.trim(),
            &spec.repository,
            &[lookup_tag.to_owned()],
        )
    }

    /// Where a native build writes an OCI layout instead of pushing: `--output`, or
    /// `target/gitops/<name>` when no registry is configured.
    fn layout_dir(&self) -> Option<PathBuf> {
        if self.builder != BuilderKind::Native {
            return None;
        }
        self.output.clone().or_else(|| {
            (self.deployment.image.is_none() || self.config.registry.is_none()).then(|| {
                let name = self.image_title().unwrap_or_else(|| "image".to_owned());
                self.config
                    .root_dir
                    .join("target")
                    .join("gitops")
                    .join(name.replace('/', "-"))
            })
        })
    }

    /// What a native image is called when no registry names it: the image, else the package.
    fn image_title(&self) -> Option<String> {
        self.config
            .image_name
            .clone()
            .or_else(|| self.config.package.clone())
    }

    fn manifest(&self) -> PathBuf {
        self.config
            .manifest
            .clone()
            .unwrap_or_else(|| self.config.root_dir.join("Cargo.toml"))
    }

    fn native_spec(&self) -> native::NativeSpec {
        let labels = self.labels(&self.image_title().unwrap_or_default());
        native::NativeSpec {
            manifest: self.manifest(),
            package: self.config.package.clone(),
            bin: self.config.build.bin.clone(),
            platforms: self.config.build.platforms.clone(),
            epoch: self.epoch,
            exposed_ports: self.config.build.exposed_ports.clone(),
            env: self.config.build.image_env.clone(),
            labels,
            base: self.config.build.base.clone(),
        }
    }

    /// The Rust targets for the configured platforms, all checked before anything compiles.
    fn native_targets(&self) -> Result<Vec<native::Target>, Error> {
        let installed = native::installed_targets()?;
        let platforms = if self.config.build.platforms.is_empty() {
            vec![native::host_platform().to_owned()]
        } else {
            self.config.build.platforms.clone()
        };
        platforms
            .iter()
            .map(|p| native::target_for(p, &installed))
            .collect()
    }

    fn base_client(
        &self,
    ) -> Result<Option<std::sync::Arc<crate::registry::client::RegistryClient>>, Error> {
        match &self.config.build.base {
            Some(base) => {
                let repository = Repository::parse(base.split('@').next().unwrap_or(base))?;
                Ok(Some(self.retagger.client(&repository.registry)?))
            }
            None => Ok(None),
        }
    }

    /// Compiles for every platform and packs the image (nothing is pushed).
    fn native_image(&self) -> Result<crate::build::image::Image, Error> {
        let spec = self.native_spec();
        let binary = native::find_binary(&spec)?;
        let targets = self.native_targets()?;
        let base_client = self.base_client()?;
        let mut bases = Vec::new();
        for target in &targets {
            bases.push(match (&spec.base, &base_client) {
                (Some(base), Some(client)) => {
                    Some(self.progress.step(&format!("read base image {base}"), || {
                        native::fetch_base(client, base, target)
                    })?)
                }
                _ => None,
            });
        }
        let mut built = Vec::new();
        for target in targets {
            self.progress.step(
                &format!("compile {} for {}", binary.bin, target.triple),
                || native::compile_command(&binary, &target, &spec.manifest, self.epoch).run(),
            )?;
            let path = native::binary_path(&binary, &target);
            built.push((target, path));
        }
        self.progress.step("pack the image", || {
            native::pack(&spec, &binary, &built, &bases)
        })
    }

    fn build_layout(&self, dir: &Path) -> Result<Report, Error> {
        let image = self.native_image()?;
        let mut tags = vec![self.deployment.lookup_tag.clone()];
        tags.extend(self.deployment.tags.iter().cloned());
        let base_client = self.base_client()?;
        self.progress
            .step(&format!("write OCI image layout {}", dir.display()), || {
                image.write_layout(dir, &tags, base_client.as_deref())
            })?;
        if self.output.is_none() {
            self.progress.note(&format!(
                "no registry is configured, so the image was written to {}; set `registry` and `image` in [workspace.metadata.gitops] to push",
                dir.display()
            ));
        }
        let mut report = self.report(Action::Built, Some(image.digest().to_owned()));
        report.layout = Some(dir.to_path_buf());
        Ok(report)
    }

    /// Makes every environment tag point at the digest the lookup tag has now. Two runs for the
    /// same commit may race; each ends by checking, so the last one leaves one digest.
    fn converge(
        &self,
        repository: &Repository,
        lookup_tag: &str,
        tags: &[String],
    ) -> Result<String, Error> {
        for _ in 0..CONVERGE_ROUNDS {
            let digest = self
                .retagger
                .lookup(repository, lookup_tag)?
                .ok_or_else(|| Error::Registry {
                    registry: repository.registry.clone(),
                    step: "check".to_owned(),
                    message: format!(
                        "{} is missing right after the push; check the registry",
                        repository.with_tag(lookup_tag)
                    ),
                })?;
            let mut stale = Vec::new();
            for tag in tags {
                if self.retagger.lookup(repository, tag)?.as_deref() != Some(digest.as_str()) {
                    stale.push(tag.clone());
                }
            }
            if stale.is_empty() {
                return Ok(digest);
            }
            self.retagger
                .retag(repository, &digest, repository, &stale)?;
        }
        Err(Error::Registry {
            registry: repository.registry.clone(),
            step: "check".to_owned(),
            message: format!(
                "the tags of {repository} kept moving; another job for the same commit may be running, run again once it ends"
            ),
        })
    }
}
