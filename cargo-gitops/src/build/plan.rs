//! The plan of one `cargo gitops build`, as one value that a run executes and `--dry-run`
//! prints: the lookup of the commit's image in each candidate repository, then the steps that
//! follow one outcome of it, computed by `Plan::after` (one function for the run and for each
//! branch the dry run shows): guard versioned tags; then retag what the target repository
//! has, or copy it from another candidate, or build it with the builder's exact commands; in
//! those two cases, claim the lookup tag and converge every tag onto it. Evidence goes with
//! the image before any environment tag names it: a build's documents and signature (its
//! `Attestation`, sent with the push of a native image or right after a podman push),
//! referrers copied along with an image from another repository, the signature (`Sign`) of
//! whatever image the lookup tag names, and the documents given to attach (`Attach`), each on
//! the digest the tags will name. Executing a step
//! is `job`'s business, showing one `describe`'s; the commands are `builder`'s, `native`'s and
//! `retag`'s.

use std::path::PathBuf;

use crate::build::builder::{self, BuildSpec};
use crate::build::evidence::Documents;
use crate::build::job::Job;
use crate::build::labels::Origin;
use crate::build::native::{self, Binary, NativeSpec, Target};
use crate::config::{BuilderKind, Config};
use crate::environment::Environment;
use crate::error::Error;
use crate::gates::Gates;
use crate::process::Command;
use crate::registry::client::Repository;
use crate::registry::referrers::Artifact;
use crate::supply::crates::LinkedCrates;
use crate::supply::sign::KeySource;
use crate::tags::Placeholder;

/// What the lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The lookup tag exists in `repository` (a candidate), naming `digest`.
    Found {
        repository: Repository,
        digest: String,
    },
    /// No candidate has the lookup tag: build.
    Missing,
}

/// Where a step takes a digest that may only be known while the plan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digest {
    /// Known when the step is made: what the lookup found.
    Known(String),
    /// Written by `podman push --digestfile`.
    File(PathBuf),
    /// Recorded by `docker buildx build --metadata-file`.
    BuildxMetadata(PathBuf),
    /// The image packed by the plan's `Pack` step.
    Packed,
    /// What the lookup tag names once claimed: this run's image, or an earlier run's.
    Claimed,
}

/// What a build attaches to the image it made, in one batch of requests: the plan's
/// `documents` and, given a key, the image's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The documents' artifact types, in order: one SBOM per platform, then the provenance.
    pub artifact_types: Vec<String>,
    /// The key to sign the image with (`Sign` after the claim then has nothing left to do,
    /// unless another run's image won the claim).
    pub sign: Option<KeySource>,
}

impl Attestation {
    /// What the build attaches, if anything: `documents` and, with `sign`, the signature.
    fn of(documents: Option<&Documents>, sign: Option<&KeySource>) -> Option<Attestation> {
        let artifact_types = documents.map(Documents::artifact_types).unwrap_or_default();
        (!artifact_types.is_empty() || sign.is_some()).then(|| Attestation {
            artifact_types,
            sign: sign.cloned(),
        })
    }

    /// `application/spdx+json, application/vnd.in-toto+json and the signature`.
    fn summary(&self) -> String {
        let mut parts = self.artifact_types.clone();
        if self.sign.is_some() {
            parts.push("the signature".to_owned());
        }
        match parts.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => "nothing".to_owned(),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Which digest `tag` names in `repository`, if any.
    Lookup { repository: Repository, tag: String },
    /// Refuse when `tag` (a versioned tag) already names an image of another commit; an
    /// image with the `allowed` digest is this commit's.
    Guard {
        repository: Repository,
        tag: String,
        allowed: Option<String>,
    },
    /// A builder's command (compile, build, push).
    Run { title: String, command: Command },
    /// Read a native image's base (pinned by digest) for one platform.
    ReadBase { reference: String, target: Target },
    /// Write the object file that links the list of `triple`'s crates into its binary
    /// (cargo-auditable's format), before the compile that links it.
    WriteDependencyList {
        triple: String,
        path: PathBuf,
        bytes: Vec<u8>,
    },
    /// Pack the compiled binaries into an image, in memory.
    Pack,
    /// Push the packed image to `repository` by digest, with no tag; with an `attestation`,
    /// attach its documents and signature at the same time: the distribution spec has
    /// registries accept referrers pushed before their subject, so the two share the wait.
    Push {
        repository: Repository,
        attestation: Option<Attestation>,
    },
    /// Write the packed image as an OCI image layout named by `tags`.
    WriteLayout { dir: PathBuf, tags: Vec<String> },
    /// Point `tag` in `target` at `digest` (from `source`), unless it exists: the first
    /// complete image of a commit wins, and the lookup tag never moves.
    Claim {
        source: Repository,
        digest: Digest,
        target: Repository,
        tag: String,
    },
    /// Give the image `digest` of `repository` the `tags`: the run's digest, unless a
    /// `Converge` follows.
    Retag {
        repository: Repository,
        digest: Digest,
        tags: Vec<String>,
    },
    /// Copy what is attached to `digest` in `source` (its OCI referrers, and cosign's `.sig`,
    /// `.att` and `.sbom` tags) into `target`, with the built-in client whatever the
    /// retagger: copies made by other tools leave them behind.
    CopyReferrers {
        source: Repository,
        digest: String,
        target: Repository,
    },
    /// Sign `digest` in `repository` with the key from `key` (cosign's format, attached as a
    /// referrer), unless that key signed it already.
    Sign {
        repository: Repository,
        digest: Digest,
        key: KeySource,
    },
    /// Attach the build's documents and signature (`attestation`) to the image `digest`
    /// just pushed to `repository`, before any tag names it, so whoever finds the image by
    /// its lookup tag finds them too.
    Attest {
        repository: Repository,
        digest: Digest,
        attestation: Attestation,
    },
    /// Attach `artifacts` (documents made before the plan ran: SBOMs, provenance) to `digest`
    /// in `repository` as OCI referrers, each unless it is attached already.
    Attach {
        repository: Repository,
        digest: Digest,
        artifacts: Vec<Artifact>,
    },
    /// Check the promotion gates of `environment` for the image `digest` in `repository`,
    /// before any tag moves; a refusal ends the run with nothing changed.
    Gates {
        environment: String,
        repository: Repository,
        /// `None` before a build: no image exists yet for the gates to look at.
        digest: Option<Digest>,
        gates: Gates,
    },
    /// Bring every one of `tags` onto the digest the lookup tag names, until none moves;
    /// `immutable` ones only when they name no other commit.
    Converge {
        repository: Repository,
        lookup_tag: String,
        tags: Vec<String>,
        immutable: Vec<String>,
    },
}

/// What a native build compiles and packs.
#[derive(Debug, Clone)]
pub struct NativeBuild {
    pub spec: NativeSpec,
    pub binary: Binary,
    pub targets: Vec<Target>,
    /// Per target, when its SBOM is on: the dependency list object linked into the binary
    /// (its path and bytes).
    pub dependency_lists: Vec<(PathBuf, Vec<u8>)>,
}

/// The plan of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub environment: Option<String>,
    pub git_ref: String,
    /// The commit whose image the tags name: this one, or the one `--image-of` gives.
    pub sha: String,
    /// `--image-of`: that image is retagged if it exists, and nothing is ever built.
    pub image_of: Option<String>,
    /// Where the tags go; `None` when nothing is pushed (no environment, or a layout).
    pub target: Option<Repository>,
    pub lookup_tag: String,
    /// The environment's tags, primary first.
    pub tags: Vec<String>,
    /// The tags that never move to another commit (versioned ones, without `{timestamp}`).
    pub immutable: Vec<String>,
    /// One `Lookup` per candidate repository, in order: the first that has the tag wins.
    pub lookup: Vec<Step>,
    /// The OCI image layout a native build writes instead of pushing.
    pub layout: Option<PathBuf>,
    /// The builder's steps, up to an image in the target (or a layout).
    build: Vec<Step>,
    /// Where the built image's digest comes from.
    built: Digest,
    pub(crate) native: Option<NativeBuild>,
    /// Where the signing key is, when the tool signs.
    pub signing: Option<KeySource>,
    /// Documents to attach to the image.
    pub attachments: Vec<Artifact>,
    /// The documents a build attaches to what it makes (`Attest`, and image layouts).
    pub documents: Option<Documents>,
    /// The environment's promotion gates, when it has any.
    pub gates: Option<Gates>,
    /// The builder names the image by an environment tag as it pushes (podman): nothing is
    /// left to gate after it.
    tags_as_it_pushes: bool,
}

impl Plan {
    /// The plan of `job`. Reads the workspace for native builds (`cargo metadata`, the
    /// installed targets); speaks to no registry.
    pub fn new(job: &Job<'_>) -> Result<Plan, Error> {
        let d = job.deployment;
        let mut plan = Plan {
            environment: d.environment.clone(),
            git_ref: d.git_ref.clone(),
            sha: job.image_of.clone().unwrap_or_else(|| d.sha.clone()),
            image_of: job.image_of.clone(),
            target: None,
            lookup_tag: d.lookup_tag.clone(),
            tags: d.tags.clone(),
            immutable: Vec::new(),
            lookup: Vec::new(),
            layout: None,
            build: Vec::new(),
            built: Digest::Packed,
            native: None,
            signing: job.signing.clone(),
            attachments: job.attachments.clone(),
            documents: None,
            gates: d
                .environment
                .as_deref()
                .map(|name| job.config.gates_of(name))
                .filter(|gates| !gates.is_empty()),
            tags_as_it_pushes: job.builder == BuilderKind::Podman,
        };
        let Some(env) = environment(job.config, d.environment.as_deref()) else {
            return Ok(plan);
        };
        if !env.format.uses(Placeholder::Timestamp) {
            plan.immutable = d.tags.first().cloned().into_iter().collect();
        }
        if let Some(commit) = &job.image_of {
            if job.output.is_some() {
                return Err(Error::usage(
                    "--image-of retags an image in the registry; drop --output",
                ));
            }
            // Build arguments filled from the ref or commit make each commit's image its own.
            if env.build_args.values().any(|v| {
                ["{sha}", "{ref}", "{version}"]
                    .iter()
                    .any(|p| v.contains(p))
            }) {
                return Err(Error::usage(format!(
                    "environment `{}` has build-args made from the commit or ref ({{sha}}, {{ref}}, {{version}}), so each commit gets an image built for it; build without --image-of",
                    env.name
                )));
            }
            plan.lookup_tag = crate::tags::lookup_tag(commit, &env.build_args);
            let target = Repository::parse(d.image.as_deref().ok_or(Error::NoImage)?)?;
            plan.lookup = lookups(job, &target, &plan.lookup_tag)?;
            plan.target = Some(target);
            return Ok(plan);
        }
        if let Some(dir) = layout_dir(job) {
            let image =
                crate::build::labels::title(job.config).unwrap_or_else(|| "image".to_owned());
            let (native, documents) = native_build(job, &image)?;
            plan.documents = Some(documents);
            plan.build = native_steps(&native);
            let mut tags = vec![d.lookup_tag.clone()];
            tags.extend(d.tags.iter().cloned());
            plan.build.push(Step::WriteLayout {
                dir: dir.clone(),
                tags,
            });
            plan.layout = Some(dir);
            plan.native = Some(native);
            return Ok(plan);
        }
        let target = Repository::parse(d.image.as_deref().ok_or(Error::NoImage)?)?;
        plan.lookup = lookups(job, &target, &d.lookup_tag)?;
        let (steps, built) = builder_steps(job, &target, &mut plan)?;
        plan.build = steps;
        plan.built = built;
        plan.target = Some(target);
        Ok(plan)
    }

    /// The outcomes a lookup can have, for showing every branch: found (as `digest`) in each
    /// candidate, or missing.
    pub fn outcomes(&self, digest: &str) -> Vec<Outcome> {
        let mut outcomes: Vec<Outcome> = self
            .lookup
            .iter()
            .filter_map(|step| match step {
                Step::Lookup { repository, .. } => Some(Outcome::Found {
                    repository: repository.clone(),
                    digest: digest.to_owned(),
                }),
                _ => None,
            })
            .collect();
        // An image that is not there is an error for `--image-of`, which never builds.
        if self.image_of.is_none() {
            outcomes.push(Outcome::Missing);
        }
        outcomes
    }

    /// The steps that follow `outcome`: the one function a run and a dry run both use.
    pub fn after(&self, outcome: &Outcome) -> Vec<Step> {
        if self.environment.is_none() {
            return Vec::new();
        }
        let Some(target) = &self.target else {
            return self.build.clone();
        };
        let allowed = match outcome {
            Outcome::Found { digest, .. } => Some(digest.clone()),
            Outcome::Missing => None,
        };
        let mut steps: Vec<Step> = self
            .immutable
            .iter()
            .map(|tag| Step::Guard {
                repository: target.clone(),
                tag: tag.clone(),
                allowed: allowed.clone(),
            })
            .collect();
        let claim = |source: &Repository, digest: Digest| Step::Claim {
            source: source.clone(),
            digest,
            target: target.clone(),
            tag: self.lookup_tag.clone(),
        };
        let retag = |digest: Digest| Step::Retag {
            repository: target.clone(),
            digest,
            tags: self.tags.clone(),
        };
        // The gates come before any step that writes to the registry: for an image found,
        // first of all; for a build, once the image is complete and before the lookup tag
        // is claimed.
        let gates = |repository: &Repository, digest: Option<Digest>| {
            self.gates.as_ref().map(|gates| Step::Gates {
                environment: self.environment.clone().unwrap_or_default(),
                repository: repository.clone(),
                digest,
                gates: gates.clone(),
            })
        };
        if let Outcome::Found { repository, digest } = outcome {
            steps.splice(0..0, gates(repository, Some(Digest::Known(digest.clone()))));
        }
        match outcome {
            // The lookup tag names `digest` and never moves: tagging it is converging.
            Outcome::Found { repository, digest } if repository == target => {
                steps.extend(self.evidence(target, Digest::Known(digest.clone())));
                steps.push(retag(Digest::Known(digest.clone())));
                return steps;
            }
            Outcome::Found { repository, digest } => {
                steps.push(claim(repository, Digest::Known(digest.clone())));
                steps.push(Step::CopyReferrers {
                    source: repository.clone(),
                    digest: digest.clone(),
                    target: target.clone(),
                });
                steps.extend(self.evidence(target, Digest::Claimed));
                steps.push(retag(Digest::Claimed));
            }
            Outcome::Missing if self.image_of.is_some() => return Vec::new(),
            Outcome::Missing => {
                // Gates that no new image can pass (it ran nowhere yet), and any gate before a
                // builder that tags as it pushes, are checked before anything is built.
                let first = self.gates.as_ref().is_some_and(|g| {
                    self.tags_as_it_pushes || g.previous.is_some() || g.soak.is_some()
                });
                if first {
                    steps.extend(gates(target, None));
                }
                steps.extend(self.build.iter().cloned());
                if !first && let Some(gates) = gates(target, Some(self.built.clone())) {
                    // The gates see what this run vouches for: a builder that does not sign
                    // as it pushes (buildx), and the documents given to attach, go first on
                    // the digest built; after the claim they have nothing left to do unless
                    // another run's image won it.
                    steps.extend(self.evidence(target, self.built.clone()));
                    steps.push(gates);
                }
                steps.push(claim(target, self.built.clone()));
                steps.extend(self.evidence(target, Digest::Claimed));
                steps.push(retag(Digest::Claimed));
            }
        }
        steps.push(Step::Converge {
            repository: target.clone(),
            lookup_tag: self.lookup_tag.clone(),
            tags: self.tags.clone(),
            immutable: self.immutable.clone(),
        });
        steps
    }
}

impl Plan {
    /// Whether a run of this plan signs the image (in every outcome of the lookup, or none).
    pub fn signs(&self) -> bool {
        self.signing.is_some() && self.environment.is_some() && self.target.is_some()
    }

    /// The signature and the attachments of the image `digest` in `target`, as configured.
    fn evidence(&self, target: &Repository, digest: Digest) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Some(key) = &self.signing {
            steps.push(Step::Sign {
                repository: target.clone(),
                digest: digest.clone(),
                key: key.clone(),
            });
        }
        if !self.attachments.is_empty() {
            steps.push(Step::Attach {
                repository: target.clone(),
                digest,
                artifacts: self.attachments.clone(),
            });
        }
        steps
    }
}

fn environment<'c>(config: &'c Config, name: Option<&str>) -> Option<&'c Environment> {
    config
        .environments
        .iter()
        .find(|e| Some(e.name.as_str()) == name)
}

/// Where an earlier build of this commit may be: the target repository first, then the
/// other environments' repositories (a promotion across repositories).
fn candidates(config: &Config, target: &Repository) -> Result<Vec<Repository>, Error> {
    let mut candidates = vec![target.clone()];
    for env in &config.environments {
        if let Some(image) = config.image_for(Some(env)) {
            let repository = Repository::parse(&image)?;
            if !candidates.contains(&repository) {
                candidates.push(repository);
            }
        }
    }
    Ok(candidates)
}

/// The builder's steps up to a complete image in `target`, and where its digest comes from.
fn builder_steps(
    job: &Job<'_>,
    target: &Repository,
    plan: &mut Plan,
) -> Result<(Vec<Step>, Digest), Error> {
    if job.builder == BuilderKind::Native {
        let (native, documents) = native_build(job, &target.to_string())?;
        let mut steps = native_steps(&native);
        steps.push(Step::Push {
            repository: target.clone(),
            attestation: Attestation::of(Some(&documents), job.signing.as_ref()),
        });
        plan.documents = Some(documents);
        plan.native = Some(native);
        return Ok((steps, Digest::Packed));
    }
    let spec = build_spec(job, target);
    if job.builder == BuilderKind::Podman {
        plan.documents = Some(Documents::podman(job, &spec));
    }
    Ok(match job.builder {
        BuilderKind::Buildx => (
            vec![Step::Run {
                title: "build and push with docker buildx".to_owned(),
                command: builder::buildx_build(&spec),
            }],
            Digest::BuildxMetadata(spec.metadata_file.clone()),
        ),
        _ => {
            let digest_file = job.scratch_dir.join(format!("digest-{}", spec.push_tag));
            let push = Step::Run {
                title: format!("push {}", spec.repository.with_tag(&spec.push_tag)),
                command: builder::podman_push(&spec, &digest_file),
            };
            let build = Step::Run {
                title: "build with podman".to_owned(),
                command: builder::podman_build(&spec),
            };
            let mut steps = vec![build, push];
            if let Some(attestation) =
                Attestation::of(plan.documents.as_ref(), job.signing.as_ref())
            {
                steps.push(Step::Attest {
                    repository: target.clone(),
                    digest: Digest::File(digest_file.clone()),
                    attestation,
                });
            }
            (steps, Digest::File(digest_file))
        }
    })
}

/// One lookup of `tag` per repository the image may already be in, in order.
fn lookups(job: &Job<'_>, target: &Repository, tag: &str) -> Result<Vec<Step>, Error> {
    Ok(candidates(job.config, target)?
        .into_iter()
        .map(|repository| Step::Lookup {
            repository,
            tag: tag.to_owned(),
        })
        .collect())
}

/// The labels of this commit's image, whatever the environment.
fn origin(job: &Job<'_>) -> Origin {
    Origin::new(
        job.config,
        &job.deployment.sha,
        job.source_url.clone(),
        job.epoch,
    )
}

fn build_spec(job: &Job<'_>, target: &Repository) -> BuildSpec {
    let config = job.config;
    let (cache_from, cache_to) = if config.build.registry_cache {
        builder::registry_cache(target, &config.build.insecure_registries)
    } else {
        (
            config.build.cache_from.clone(),
            config.build.cache_to.clone(),
        )
    };
    BuildSpec {
        repository: target.clone(),
        push_tag: job.deployment.tags.first().cloned().unwrap_or_default(),
        dockerfile: config.dockerfile(),
        context: config.context(),
        labels: origin(job).labels(),
        build_args: job.deployment.build_args.clone(),
        platforms: config.build.platforms.clone(),
        buildx_builder: std::env::var("BUILDX_BUILDER")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| config.build.buildx_builder.clone()),
        cache_from,
        cache_to,
        insecure_registries: config.build.insecure_registries.clone(),
        metadata_file: job.scratch_dir.join("buildx-metadata.json"),
        epoch: job.epoch,
        sbom: config.build.sbom(BuilderKind::Buildx),
        provenance: config.build.provenance(BuilderKind::Buildx),
    }
}

/// Where a native build writes an OCI layout instead of pushing: `--output`, or
/// `target/gitops/<name>` when no registry is configured.
fn layout_dir(job: &Job<'_>) -> Option<PathBuf> {
    if job.builder != BuilderKind::Native {
        return None;
    }
    let config = job.config;
    job.output.clone().or_else(|| {
        (job.deployment.image.is_none() || config.registry.is_none()).then(|| {
            let name = crate::build::labels::title(config).unwrap_or_else(|| "image".to_owned());
            config
                .root_dir
                .join("target")
                .join("gitops")
                .join(name.replace('/', "-"))
        })
    })
}

/// What a native build compiles, and the documents it attaches to `image`.
fn native_build(job: &Job<'_>, image: &str) -> Result<(NativeBuild, Documents), Error> {
    let config = job.config;
    let spec = NativeSpec {
        manifest: config
            .manifest
            .clone()
            .unwrap_or_else(|| config.root_dir.join("Cargo.toml")),
        package: config.package.clone(),
        bin: config.build.bin.clone(),
        platforms: config.build.platforms.clone(),
        epoch: job.epoch,
        exposed_ports: config.build.exposed_ports.clone(),
        env: config.build.image_env.clone(),
        build_env: config.build.build_env.clone(),
        include: config
            .build
            .include
            .iter()
            .map(|i| (config.root_dir.join(&i.from), i.to.clone()))
            .collect(),
        workdir: config.build.workdir.clone(),
        args: config.build.args.clone(),
        labels: origin(job).labels(),
        base: config.build.base.clone(),
    };
    let binary = native::find_binary(&spec)?;
    // Every platform's target is checked before anything compiles.
    let installed = native::installed_targets()?;
    let platforms = if spec.platforms.is_empty() {
        vec![native::host_platform().to_owned()]
    } else {
        spec.platforms.clone()
    };
    let targets = platforms
        .iter()
        .map(|p| native::target_for(p, &installed))
        .collect::<Result<Vec<_>, _>>()?;
    // The crates are resolved (cargo reads the lock file, compiles nothing) even for a dry
    // run: the SBOM and the dependency list show what would be linked. Only they need them.
    let mut crates = Vec::new();
    let mut dependency_lists = Vec::new();
    if config.build.sbom(BuilderKind::Native) {
        for target in &targets {
            let linked = LinkedCrates::resolve(&spec.manifest, &binary.package, &target.triple)?;
            let dir = crate::supply::auditable::object_dir(&binary.target_dir, &target.triple);
            dependency_lists.push(crate::supply::auditable::object_for(
                &linked,
                &target.triple,
                &dir,
            )?);
            crates.push(linked);
        }
    }
    let documents = Documents::native(job, &spec, &binary, &targets, &crates, image);
    Ok((
        NativeBuild {
            spec,
            binary,
            targets,
            dependency_lists,
        },
        documents,
    ))
}

/// Read the bases, compile for each platform, pack.
fn native_steps(native: &NativeBuild) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(base) = &native.spec.base {
        steps.extend(native.targets.iter().map(|target| Step::ReadBase {
            reference: base.clone(),
            target: target.clone(),
        }));
    }
    for (i, target) in native.targets.iter().enumerate() {
        let command = match native.dependency_lists.get(i) {
            Some((path, bytes)) => {
                steps.push(Step::WriteDependencyList {
                    triple: target.triple.clone(),
                    path: path.clone(),
                    bytes: bytes.clone(),
                });
                native::compile_command_embedding(
                    &native.binary,
                    target,
                    &native.spec.manifest,
                    native.spec.epoch,
                    path,
                )
            }
            None => native::compile_command(
                &native.binary,
                target,
                &native.spec.manifest,
                native.spec.epoch,
            ),
        };
        steps.push(Step::Run {
            title: format!("compile {} for {}", native.binary.bin, target.triple),
            command,
        });
    }
    steps.push(Step::Pack);
    steps
}

impl Step {
    /// What the step does, in a few words: the progress line of a run, the heading of a step
    /// in a dry run.
    pub fn title(&self) -> String {
        match self {
            Step::Lookup { repository, tag } => format!("lookup {}", repository.with_tag(tag)),
            Step::Guard {
                repository, tag, ..
            } => format!(
                "check that {} names no other commit",
                repository.with_tag(tag)
            ),
            Step::Run { title, .. } => title.clone(),
            Step::ReadBase { reference, .. } => format!("read base image {reference}"),
            Step::WriteDependencyList { triple, .. } => {
                format!("write the list of crates linked for {triple}")
            }
            Step::Pack => "pack the image".to_owned(),
            Step::Attest {
                repository,
                attestation,
                ..
            } => format!(
                "attach {} to the image in {repository}",
                attestation.summary()
            ),
            Step::Push {
                repository,
                attestation: None,
            } => format!("push the image to {repository} by digest"),
            Step::Push {
                repository,
                attestation: Some(attestation),
            } => format!(
                "push the image to {repository} by digest, attaching {}",
                attestation.summary()
            ),
            Step::WriteLayout { dir, .. } => format!("write OCI image layout {}", dir.display()),
            Step::Claim { target, tag, .. } => {
                format!("claim {} unless it exists", target.with_tag(tag))
            }
            Step::Retag {
                repository, tags, ..
            } => format!("tag {repository} as {}", tags.join(", ")),
            Step::Converge { .. } => "check that every tag names the same image".to_owned(),
            Step::Gates {
                environment, gates, ..
            } => format!("check the gates of `{environment}`: {}", gates.summary()),
            Step::CopyReferrers { source, target, .. } => {
                format!("copy the signatures and referrers from {source} to {target}")
            }
            Step::Sign { repository, .. } => format!("sign the image in {repository}"),
            Step::Attach {
                repository,
                artifacts,
                ..
            } => format!(
                "attach {} to the image in {repository}",
                artifacts
                    .iter()
                    .map(|a| a.artifact_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}
