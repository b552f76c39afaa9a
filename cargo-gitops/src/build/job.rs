//! The main job, `cargo gitops build`: the settings of one run, and the run itself, which
//! executes its plan step by step: the lookup, then the steps `Plan::after` gives for what
//! the lookup found, and the report. What the steps are is `plan`'s business; claiming and
//! converging tags is `converge`'s; the programs are `builder`'s, `native`'s and `retag`'s.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::build::converge;
use crate::build::image::{Base, Image};
use crate::build::native::{self, Target};
use crate::build::plan::{Digest, Outcome, Plan, Step};
use crate::build::retag::Retagger;
use crate::config::{BuilderKind, Config};
use crate::deployment::Deployment;
use crate::error::Error;
use crate::progress::Progress;
use crate::registry::client::{RegistryClient, Repository};

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

/// What a run has learnt so far, for the steps that need it.
#[derive(Default)]
struct State {
    bases: Vec<Option<Base>>,
    image: Option<Image>,
    claimed: Option<String>,
    digest: Option<String>,
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
        }
    }

    /// Runs `plan`: the lookup, then what follows its outcome.
    pub fn run(&self, plan: &Plan) -> Result<Report, Error> {
        if plan.environment.is_none() {
            return Ok(self.report(Action::None, None));
        }
        let outcome = self.look_up(plan)?;
        let mut state = State::default();
        for step in plan.after(&outcome) {
            self.progress
                .step(&step.title(), || self.execute(plan, &step, &mut state))?;
        }
        let action = match outcome {
            Outcome::Found { .. } => Action::Retagged,
            Outcome::Missing => Action::Built,
        };
        let mut report = self.report(action, state.digest);
        if let Some(dir) = &plan.layout {
            if self.output.is_none() {
                self.progress.note(&format!(
                    "no registry is configured, so the image was written to {}; set `registry` and `image` in [workspace.metadata.gitops] to push",
                    dir.display()
                ));
            }
            report.layout = Some(dir.clone());
        }
        Ok(report)
    }

    /// The plan's lookups in order, until one finds the image.
    fn look_up(&self, plan: &Plan) -> Result<Outcome, Error> {
        for step in &plan.lookup {
            let Step::Lookup { repository, tag } = step else {
                return Err(Error::Internal(format!(
                    "a plan's lookup holds another step: {step:?}"
                )));
            };
            let found = self
                .progress
                .step(&step.title(), || self.retagger.lookup(repository, tag))?;
            if let Some(digest) = found {
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
            Step::Pack => self.pack(plan, state)?,
            Step::Push { repository } => {
                let image = packed(state)?;
                let client = self.retagger.client(&repository.registry)?;
                let base_client = match &plan.native.as_ref().and_then(|n| n.spec.base.clone()) {
                    Some(base) => Some(self.base_client(base)?),
                    None => None,
                };
                image.push(&client, base_client.as_deref(), repository, image.digest())?;
            }
            Step::WriteLayout { dir, tags } => self.write_layout(plan, dir, tags, state)?,
            _ => self.execute_tags(plan, step, state)?,
        }
        Ok(())
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
                state.claimed = Some(converge::claim(
                    self.retagger,
                    source,
                    &digest,
                    target,
                    tag,
                )?);
            }
            Step::Retag {
                repository,
                digest,
                tags,
            } => {
                let digest = resolve(digest, state)?;
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
        image.write_layout(dir, tags, base_client.as_deref())?;
        state.digest = Some(image.digest().to_owned());
        Ok(())
    }

    /// The built-in client of a base image's registry.
    fn base_client(&self, base: &str) -> Result<std::sync::Arc<RegistryClient>, Error> {
        let repository = Repository::parse(base.split('@').next().unwrap_or(base))?;
        self.retagger.client(&repository.registry)
    }
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
