//! The main job, `cargo gitops build`: the settings of one run, and the run itself, which
//! executes its plan step by step: the lookup, then the steps `Plan::after` gives for what
//! the lookup found (signing and attaching evidence among them), and the report. What the steps are is `plan`'s business; claiming and
//! converging tags is `converge`'s; the programs are `builder`'s, `native`'s and `retag`'s.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::converge;
use crate::build::evidence;
use crate::build::image::{Base, Image};
use crate::build::native::{self, Target};
use crate::build::plan::{Attestation, Digest, Outcome, Plan, Step};
use crate::build::retag::Retagger;
use crate::config::{BuilderKind, Config};
use crate::deployment::Deployment;
use crate::error::Error;
use crate::gates::{Checked, Forge, Gates, Promotion, Skips};
use crate::progress::Progress;
use crate::registry::client::{Descriptor, RegistryClient, Repository, Scope};
use crate::registry::referrers::{self, Artifact, Expect, artifact_type_of};
use crate::supply::sign::{self, KeySource, SigningKey};

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
    /// Signatures and documents attached to the image, or copied along with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// The environment's promotion gates and how each ended (a skipped one with its
    /// reason).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Checked>,
}

/// One piece of evidence the run attached to the image, or copied along with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `signed`, `attached`, `copied` (from the repository the image came from), or
    /// `recorded` (the gates it passed).
    pub action: &'static str,
    /// The referrer's artifact type (`application/vnd.dev.sigstore.bundle.v0.3+json`), or
    /// `null` for one of cosign's tags.
    pub artifact_type: Option<String>,
    /// The artifact manifest's digest, or the cosign tag (`sha256-<hex>.sig`).
    pub reference: String,
    /// Whether it was there already (nothing was written).
    pub already: bool,
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
    /// Where the signing key is, when the tool signs (`sign = "key"`, `--signing-key`).
    pub signing: Option<KeySource>,
    /// The key itself, read before the run; `None` for a dry run, which never reads it.
    pub key: Option<&'a SigningKey>,
    /// Documents to attach to the image as referrers.
    pub attachments: Vec<Artifact>,
    /// `--image-of`: the commit whose image the tags name instead of this one's, for a
    /// service that has not changed since (`affected`); that image is retagged, never built.
    pub image_of: Option<String>,
    /// Gates not to check (`--skip-gate`), with the reason.
    pub skips: Skips,
    /// Where the `status` gate reads commit statuses.
    pub forge: Forge,
}

/// A run `Job::prepare` began: what its lookup found (`None` for a ref no environment
/// tracks), and the steps still to take.
pub struct Prepared {
    outcome: Option<Outcome>,
    state: State,
    rest: Vec<Step>,
}

impl Prepared {
    /// The image the lookup found, when it found one: a promotion, no build.
    pub fn found(&self) -> Option<&str> {
        match &self.outcome {
            Some(Outcome::Found { digest, .. }) => Some(digest),
            _ => None,
        }
    }

    /// Whether the run has an environment to act for.
    pub fn acts(&self) -> bool {
        self.outcome.is_some()
    }
}

/// What a run has learnt so far, for the steps that need it.
#[derive(Default)]
struct State {
    bases: Vec<Option<Base>>,
    image: Option<Image>,
    claimed: Option<String>,
    digest: Option<String>,
    evidence: Vec<Evidence>,
    gates: Vec<Checked>,
    /// The record of the gates, to attach to the image before the environment's tags move.
    gate_record: Option<Artifact>,
    /// The images this run signed along with their documents, before claiming: the `Sign`
    /// step after the claim has nothing to do for them.
    signed: Vec<String>,
    /// The digests tags may move onto: the one this run built, and those found to be the
    /// commit's image (`converge::check_commit`).
    verified: Vec<String>,
}

impl State {
    /// Keeps what `attest` attached to the image `top` for the report, and that the image is
    /// signed when it signed it.
    fn record(&mut self, attested: Vec<Evidence>, attestation: &Attestation, top: &Descriptor) {
        self.evidence.extend(attested);
        if attestation.sign.is_some() {
            self.signed.push(top.digest.to_string());
        }
    }
}

impl Job<'_> {
    /// The plan of this run (see `Plan::new`).
    pub fn plan(&self) -> Result<Plan, Error> {
        Plan::new(self)
    }

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
            evidence: Vec::new(),
            gates: Vec::new(),
        }
    }

    /// Runs `plan`: the lookup, then what follows its outcome.
    pub fn run(&self, plan: &Plan) -> Result<Report, Error> {
        let prepared = self.prepare(plan)?;
        self.finish(plan, prepared)
    }

    /// The part of a run that moves no tag: the lookup, and the checks that open what
    /// follows it (the gates, and that no versioned tag names another commit's image). A set
    /// promotion prepares every service before it finishes any.
    pub fn prepare(&self, plan: &Plan) -> Result<Prepared, Error> {
        let mut prepared = Prepared {
            outcome: None,
            state: State::default(),
            rest: Vec::new(),
        };
        if plan.environment.is_none() {
            return Ok(prepared);
        }
        let outcome = self.look_up(plan, &mut prepared.state)?;
        if let (Outcome::Missing, Some(commit)) = (&outcome, &plan.image_of) {
            return Err(Error::ImageOfMissing {
                commit: commit.clone(),
                lookup_tag: plan.lookup_tag.clone(),
            });
        }
        let mut steps = plan.after(&outcome).into_iter().peekable();
        while let Some(step) =
            steps.next_if(|s| matches!(s, Step::Gates { .. } | Step::Guard { .. }))
        {
            self.progress.step(&step.title(), || {
                self.execute(plan, &step, &mut prepared.state)
            })?;
        }
        prepared.rest = steps.collect();
        prepared.outcome = Some(outcome);
        Ok(prepared)
    }

    /// The rest of a run `prepare` began: building, evidence and the tags.
    pub fn finish(&self, plan: &Plan, prepared: Prepared) -> Result<Report, Error> {
        let Prepared {
            outcome,
            mut state,
            rest,
        } = prepared;
        let Some(outcome) = outcome else {
            return Ok(self.report(Action::None, None));
        };
        for step in rest {
            self.progress
                .step(&step.title(), || self.execute(plan, &step, &mut state))?;
        }
        let action = match outcome {
            Outcome::Found { .. } => Action::Retagged,
            Outcome::Missing => Action::Built,
        };
        let mut report = self.report(action, state.digest);
        report.evidence = state.evidence;
        report.gates = state.gates;
        if let Some(dir) = &plan.layout {
            if self.output.is_none() {
                self.progress.note(&format!(
                    "no registry is configured, so the image was written to {}; set `registry` and `image` in the configuration to push",
                    dir.display()
                ));
            }
            report.layout = Some(dir.clone());
        }
        Ok(report)
    }

    /// The plan's lookups in order, until one finds the image, which must then be the
    /// commit's (`converge::check_commit`): what a registry says a tag names is checked.
    fn look_up(&self, plan: &Plan, state: &mut State) -> Result<Outcome, Error> {
        for step in &plan.lookup {
            let Step::Lookup { repository, tag } = step else {
                return Err(Error::Internal(format!(
                    "a plan's lookup holds another step: {step:?}"
                )));
            };
            let found = self.progress.step(&step.title(), || {
                let found = self.retagger.lookup(repository, tag)?;
                if let Some(digest) = &found {
                    converge::check_commit(self.retagger, repository, tag, digest, &plan.sha)?;
                }
                Ok(found)
            })?;
            if let Some(digest) = found {
                state.verified.push(digest.clone());
                return Ok(Outcome::Found {
                    repository: repository.clone(),
                    digest,
                });
            }
        }
        Ok(Outcome::Missing)
    }

    /// Executes one step after the lookup.
    fn execute(&self, plan: &Plan, step: &Step, state: &mut State) -> Result<(), Error> {
        match step {
            Step::Lookup { repository, tag } => {
                self.retagger.lookup(repository, tag)?;
            }
            Step::Guard {
                repository,
                tag,
                allowed,
            } => converge::guard(
                self.retagger,
                repository,
                tag,
                &plan.sha,
                allowed.as_deref(),
            )?,
            Step::Run { command, .. } => {
                crate::build::builder::check_buildx(command)?;
                self.progress
                    .run(command)
                    .map_err(|e| crate::build::builder::explain(command, e))?;
            }
            Step::ReadBase { reference, target } => {
                let client = self.base_client(reference)?;
                state
                    .bases
                    .push(Some(native::fetch_base(&client, reference, target)?));
            }
            Step::WriteDependencyList { path, bytes, .. } => {
                crate::files::write_whole(path, bytes)?;
            }
            Step::Pack => self.pack(plan, state)?,
            Step::Attest {
                repository,
                digest,
                attestation,
            } => {
                let (_, top) = self.subject(repository, &resolve(digest, state)?)?;
                let attested =
                    self.attest(plan, repository, &top, attestation, Expect::Either, state)?;
                state.record(attested, attestation, &top);
            }
            Step::Push {
                repository,
                attestation,
            } => {
                let image = packed(state)?;
                let client = self.retagger.client(&repository.registry)?;
                let base_client = match &plan.native.as_ref().and_then(|n| n.spec.base.clone()) {
                    Some(base) => Some(self.base_client(base)?),
                    None => None,
                };
                let push =
                    || image.push(&client, base_client.as_deref(), repository, image.digest());
                let Some(attestation) = attestation else {
                    return push();
                };
                // The image this run packed is known byte for byte: no need to read it back.
                let top = evidence::descriptor(&image.top().media_type, &image.top().bytes);
                let (pushed, attested) = std::thread::scope(|scope| {
                    let attested = scope.spawn(|| {
                        self.attest(plan, repository, &top, attestation, Expect::New, state)
                    });
                    let pushed = push();
                    (pushed, attested.join())
                });
                pushed?;
                let attested = attested.map_err(|_| {
                    Error::Internal("the thread attaching the documents panicked".to_owned())
                })??;
                state.record(attested, attestation, &top);
            }
            Step::WriteLayout { dir, tags } => self.write_layout(plan, dir, tags, state)?,
            Step::CopyReferrers {
                source,
                digest,
                target,
            } => self.copy_referrers(source, digest, target, state)?,
            Step::Sign {
                repository,
                digest,
                key,
            } => {
                let digest = resolve(digest, state)?;
                if state.signed.contains(&digest) {
                    return Ok(());
                }
                let key = self.signing_key(key)?;
                let (client, subject) = self.subject(repository, &digest)?;
                let signed =
                    sign::sign(&client, &repository.name, &subject, key, Some(self.epoch))?;
                state.evidence.push(Evidence {
                    action: "signed",
                    artifact_type: Some(sign::BUNDLE_MEDIA_TYPE.to_owned()),
                    reference: signed.descriptor.digest.to_string(),
                    already: signed.already,
                });
            }
            Step::Attach {
                repository,
                digest,
                artifacts,
            } => {
                let (client, subject) = self.subject(repository, &resolve(digest, state)?)?;
                let documents: Vec<(Descriptor, Artifact)> = artifacts
                    .iter()
                    .map(|artifact| (subject.clone(), artifact.clone()))
                    .collect();
                let attached =
                    referrers::attach_all(&client, &repository.name, &documents, Expect::Either)?;
                for (artifact, attached) in artifacts.iter().zip(attached) {
                    state.evidence.push(Evidence {
                        action: "attached",
                        artifact_type: Some(artifact.artifact_type.clone()),
                        reference: attached.descriptor.digest.to_string(),
                        already: attached.already,
                    });
                }
            }
            Step::Gates {
                environment,
                repository,
                digest,
                gates,
            } => {
                let digest = digest.as_ref().map(|d| resolve(d, state)).transpose()?;
                state.gates =
                    self.check_gates(plan, environment, repository, digest.as_deref(), gates)?;
                // What passed (and what was skipped, and why) goes with the image into the
                // target repository, before the environment's tags name it (`Retag`).
                state.gate_record = Some(
                    crate::gates::Record::of(
                        environment,
                        &state.gates,
                        self.skips.reason.as_deref(),
                    )
                    .artifact(),
                );
            }
            _ => self.execute_tags(plan, step, state)?,
        }
        Ok(())
    }

    /// The one call into `gates` a run makes, before any tag moves.
    fn check_gates(
        &self,
        plan: &Plan,
        environment: &str,
        repository: &Repository,
        digest: Option<&str>,
        gates: &Gates,
    ) -> Result<Vec<Checked>, Error> {
        let digest = digest
            .map(crate::registry::client::Digest::parse)
            .transpose()
            .map_err(|e| {
                Error::Internal(format!("a plan checks the gates of a bad digest: {e}"))
            })?;
        let clients = |registry: &str| self.retagger.client(registry);
        let promotion = Promotion {
            config: self.config,
            environment,
            repository,
            digest: digest.as_ref(),
            sha: &plan.sha,
            source_url: self.source_url.as_deref(),
            signing_key: self.key,
            clients: &clients,
            forge: &self.forge,
            now: crate::gates::now(),
        };
        crate::gates::check(&promotion, gates, &self.skips)
    }

    /// Executes a step that moves tags.
    fn execute_tags(&self, plan: &Plan, step: &Step, state: &mut State) -> Result<(), Error> {
        match step {
            Step::Claim {
                source,
                digest,
                target,
                tag,
            } => {
                let digest = resolve(digest, state)?;
                let claimed =
                    converge::claim(self.retagger, source, &digest, target, tag, &plan.sha)?;
                // This run's image, the one found (checked), or another run's that `claim`
                // checked.
                state.verified.push(claimed.clone());
                state.claimed = Some(claimed);
            }
            Step::Retag {
                repository,
                digest,
                tags,
            } => {
                let digest = resolve(digest, state)?;
                if let Some(record) = state.gate_record.take() {
                    let (client, subject) = self.subject(repository, &digest)?;
                    let recorded = referrers::attach(&client, &repository.name, &subject, &record)?;
                    state.evidence.push(Evidence {
                        action: "recorded",
                        artifact_type: Some(record.artifact_type.clone()),
                        reference: recorded.descriptor.digest.to_string(),
                        already: recorded.already,
                    });
                }
                self.retagger.retag(repository, &digest, repository, tags)?;
                state.digest = Some(digest);
            }
            Step::Converge {
                repository,
                lookup_tag,
                tags,
                immutable,
            } => {
                state.digest = Some(converge::converge(
                    self.retagger,
                    repository,
                    lookup_tag,
                    tags,
                    immutable,
                    &plan.sha,
                    &mut state.verified,
                )?);
            }
            other => {
                return Err(Error::Internal(format!(
                    "a step that moves no tag was taken for one: {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// The built-in client of `repository`'s registry, and the descriptor of its manifest
    /// `digest`: the subject of what is attached to it.
    fn subject(
        &self,
        repository: &Repository,
        digest: &str,
    ) -> Result<(std::sync::Arc<RegistryClient>, Descriptor), Error> {
        let client = self.retagger.client(&repository.registry)?;
        let manifest =
            client.get_manifest(&repository.name, digest, &Scope::pull(&repository.name))?;
        let descriptor = Descriptor {
            media_type: manifest.media_type.clone(),
            digest: manifest.digest.clone(),
            size: manifest.bytes.len() as u64,
            urls: Vec::new(),
            platform: None,
            annotations: Default::default(),
            other: Default::default(),
        };
        Ok((client, descriptor))
    }

    /// Copies the referrers and cosign tags of `digest` from `source` into `target`, and says
    /// what it copied.
    fn copy_referrers(
        &self,
        source: &Repository,
        digest: &str,
        target: &Repository,
        state: &mut State,
    ) -> Result<(), Error> {
        let subject = crate::registry::client::Digest::parse(digest).map_err(|e| {
            Error::Internal(format!("a plan copies the referrers of a bad digest: {e}"))
        })?;
        let source_client = self.retagger.client(&source.registry)?;
        let target_client = self.retagger.client(&target.registry)?;
        let copied = referrers::copy(
            &target_client,
            &source_client,
            &source.name,
            &target.name,
            &subject,
        )?;
        self.progress.note(&format!(
            "copied from {source} to {target}: {}",
            copied.summary()
        ));
        for referrer in &copied.referrers {
            state.evidence.push(Evidence {
                action: "copied",
                artifact_type: artifact_type_of(referrer).map(str::to_owned),
                reference: referrer.digest.to_string(),
                already: false,
            });
        }
        for tag in &copied.tags {
            state.evidence.push(Evidence {
                action: "copied",
                artifact_type: None,
                reference: tag.clone(),
                already: false,
            });
        }
        Ok(())
    }

    /// Attaches the plan's documents to the image `top` in `repository` (each SBOM to its
    /// platform's manifest, the provenance to the image) and, given a key, its signature:
    /// all in one batch of requests. What was attached, and whether it was there already.
    fn attest(
        &self,
        plan: &Plan,
        repository: &Repository,
        top: &Descriptor,
        attestation: &Attestation,
        expect: Expect,
        state: &State,
    ) -> Result<Vec<Evidence>, Error> {
        let client = self.retagger.client(&repository.registry)?;
        let mut documents = match &plan.documents {
            Some(documents) => {
                documents.attachments(&repository.to_string(), top, &platform_descriptors(state))?
            }
            None => Vec::new(),
        };
        if let Some(key) = &attestation.sign {
            let key = self.signing_key(key)?;
            let signature = sign::signature(key, &top.digest, Some(self.epoch));
            documents.push((top.clone(), signature));
        }
        let attached = referrers::attach_all(&client, &repository.name, &documents, expect).map_err(
            |err| match err {
                // A registry that refuses OCI artifacts would otherwise stop every build with
                // no way out but reading this module.
                Error::Registry {
                    registry,
                    step,
                    message,
                } => Error::Registry {
                    registry,
                    step,
                    message: format!(
                        "{message}; if this registry cannot store OCI artifacts, set sbom = false and provenance = false{} to build without attaching documents",
                        if attestation.sign.is_some() { " and sign = \"none\"" } else { "" }
                    ),
                },
                other => other,
            },
        )?;
        Ok(documents
            .iter()
            .zip(attached)
            .map(|((_, artifact), attached)| Evidence {
                action: if artifact.artifact_type == sign::BUNDLE_MEDIA_TYPE {
                    "signed"
                } else {
                    "attached"
                },
                artifact_type: Some(artifact.artifact_type.clone()),
                reference: attached.descriptor.digest.to_string(),
                already: attached.already,
            })
            .collect())
    }

    /// The signing key read before the run, which a step signing with `from` needs.
    fn signing_key(&self, from: &KeySource) -> Result<&SigningKey, Error> {
        self.key.ok_or_else(|| Error::SigningKey {
            from: from.to_string(),
            message: "it was not read before the run; please report this".to_owned(),
        })
    }

    /// Packs what the compile steps left (on the bases read, if any).
    fn pack(&self, plan: &Plan, state: &mut State) -> Result<(), Error> {
        let native = plan
            .native
            .as_ref()
            .ok_or_else(|| Error::Internal("a plan packs an image it never compiled".into()))?;
        let built: Vec<(Target, PathBuf)> = native
            .targets
            .iter()
            .map(|target| (target.clone(), native::binary_path(&native.binary, target)))
            .collect();
        if state.bases.is_empty() {
            state.bases = vec![None; native.targets.len()];
        }
        state.image = Some(native::pack(
            &native.spec,
            &native.binary,
            &built,
            &state.bases,
        )?);
        Ok(())
    }

    fn write_layout(
        &self,
        plan: &Plan,
        dir: &Path,
        tags: &[String],
        state: &mut State,
    ) -> Result<(), Error> {
        let image = packed(state)?;
        let base_client = match plan.native.as_ref().and_then(|n| n.spec.base.clone()) {
            Some(base) => Some(self.base_client(&base)?),
            None => None,
        };
        let attachments = match &plan.documents {
            Some(documents) => {
                let top = image.top();
                let name =
                    crate::build::labels::title(self.config).unwrap_or_else(|| "image".to_owned());
                documents.attachments(
                    &name,
                    &evidence::descriptor(&top.media_type, &top.bytes),
                    &platform_descriptors(state),
                )?
            }
            None => Vec::new(),
        };
        image.write_layout(dir, tags, base_client.as_deref(), &attachments)?;
        state.digest = Some(image.digest().to_owned());
        Ok(())
    }

    /// The built-in client of a base image's registry.
    fn base_client(&self, base: &str) -> Result<std::sync::Arc<RegistryClient>, Error> {
        let repository = Repository::parse(base.split('@').next().unwrap_or(base))?;
        self.retagger.client(&repository.registry)
    }
}

/// The platform manifests of the image this run packed, if it packed one.
fn platform_descriptors(state: &State) -> Vec<Descriptor> {
    state.image.as_ref().map_or_else(Vec::new, |image| {
        image
            .platforms
            .iter()
            .map(|p| evidence::descriptor(&p.manifest.media_type, &p.manifest.bytes))
            .collect()
    })
}

fn packed(state: &State) -> Result<&Image, Error> {
    state
        .image
        .as_ref()
        .ok_or_else(|| Error::Internal("a plan uses an image before packing it".into()))
}

/// The digest a step names, now that the steps before it ran.
fn resolve(digest: &Digest, state: &State) -> Result<String, Error> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| Error::Read {
            what: path.display().to_string(),
            source,
        })
    };
    match digest {
        Digest::Known(digest) => Ok(digest.clone()),
        Digest::File(path) => Ok(read(path)?.trim().to_owned()),
        // buildx records what it pushed; no digest there means nothing was pushed, whatever
        // its exit code said.
        Digest::BuildxMetadata(path) => {
            crate::build::builder::digest_from_buildx_metadata(&read(path)?)
        }
        Digest::Packed => Ok(packed(state)?.digest().to_owned()),
        Digest::Claimed => state
            .claimed
            .clone()
            .ok_or_else(|| Error::Internal("a plan retags before it claims".into())),
    }
}
