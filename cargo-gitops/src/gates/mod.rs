//! Promotion gates: what an image must show before an environment's tags may name it — a
//! signature that verifies, a provenance for this commit and repository, an SBOM, the
//! previous environment running it, long enough, a successful commit status — checked by
//! `check`, before any tag or manifest moves, by `build` (its retag path) and by `deploy`.
//! A refused gate is one line saying what failed and what to do; nothing is changed here,
//! ever: every request is a read. `spec` owns the table's grammar; `evidence` the gates
//! reading what is attached to the image, `previous` the ones reading the previous
//! environment's tags, `status` the forge's commit statuses, `record` what a promotion
//! leaves with the image of the gates it passed (attached by the caller once they pass).
//! The `approval` gate is deploy's to enforce (`Gates::requires_pull_request`): a retag has
//! no pull request to wait for.

mod evidence;
mod previous;
pub mod record;
pub mod spec;
mod status;

use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::registry::client::{Digest, RegistryClient, Repository};
use crate::supply::sign::SigningKey;
pub use record::Record;
pub use spec::{Gate, Gates};
pub use status::Forge;

/// What a promotion is, for its gates.
pub struct Promotion<'a> {
    pub config: &'a Config,
    /// The environment whose tags are about to move.
    pub environment: &'a str,
    /// Where the image is now: the target repository, or the one it is copied from.
    pub repository: &'a Repository,
    /// The image; `None` when no image of the commit exists yet and this run would build it
    /// where the gates could not look first (every gate about the image then refuses).
    pub digest: Option<&'a Digest>,
    /// The commit being promoted, 40 hex digits.
    pub sha: &'a str,
    /// This repository, as the CI or `git remote get-url origin` gives it.
    pub source_url: Option<&'a str>,
    /// The key the tool signs with, when it does (`signature = true` verifies with it).
    pub signing_key: Option<&'a SigningKey>,
    /// The built-in client of a registry.
    pub clients: &'a (dyn Fn(&str) -> Result<Arc<RegistryClient>, Error> + Sync),
    /// Where commit statuses are read.
    pub forge: &'a Forge,
    /// Unix seconds now, for `soak`.
    pub now: u64,
}

/// Gates not to check this time, and why (`--skip-gate NAME --reason "…"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skips {
    pub gates: Vec<Gate>,
    pub reason: Option<String>,
}

/// How one gate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    /// Not checked, on request; the reason is the detail.
    Skipped,
    /// Not a question for this command: `approval` is deploy's.
    Deferred,
    Refused,
}

/// One gate's result, as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    #[serde(serialize_with = "gate_name")]
    pub gate: Gate,
    pub outcome: Outcome,
    /// What was found (passed), what failed and what to do (refused), or the reason given
    /// for skipping.
    pub detail: String,
}

fn gate_name<S: serde::Serializer>(gate: &Gate, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(gate.name())
}

/// A gate's answer: passed (with what showed it) or refused (with what failed and what to
/// do next).
pub(crate) type Answer = Result<String, String>;

/// `--skip-gate` names only gates the environment has: skipping one it lacks is a mistake
/// worth saying.
pub fn check_skips(gates: &Gates, environment: &str, skips: &Skips) -> Result<(), Error> {
    if let Some(gate) = skips.gates.iter().find(|g| !gates.list().contains(g)) {
        return Err(Error::usage(format!(
            "environment `{environment}` has no `{gate}` gate to skip; drop --skip-gate {gate}"
        )));
    }
    if !skips.gates.is_empty() && skips.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::usage(
            "--skip-gate needs --reason \"…\" saying why, which the report records",
        ));
    }
    Ok(())
}

/// Checks every gate of `gates` for `promotion`, except the skipped ones, and says how each
/// ended; any refusal is `Error::GatesRefused`, one line per refused gate. Only reads: the
/// registry (referrers, tags, manifests) and, for `status`, the forge's API.
pub fn check(
    promotion: &Promotion<'_>,
    gates: &Gates,
    skips: &Skips,
) -> Result<Vec<Checked>, Error> {
    check_skips(gates, promotion.environment, skips)?;
    let client = (promotion.clients)(&promotion.repository.registry)?;
    let unbuilt = Digest::of(b"");
    let digest = promotion.digest.unwrap_or(&unbuilt);
    let mut attached = evidence::Attached::new(&client, promotion.repository, digest);
    let mut previous = previous::Previous::new(promotion, digest);
    let mut results = Vec::new();
    for gate in gates.list() {
        if skips.gates.contains(&gate) {
            results.push(Checked {
                gate,
                outcome: Outcome::Skipped,
                detail: crate::error::quote_external(skips.reason.as_deref().unwrap_or_default()),
            });
            continue;
        }
        let answer = match gate {
            Gate::Signature | Gate::Provenance | Gate::Sbom | Gate::Previous | Gate::Soak
                if promotion.digest.is_none() =>
            {
                Err(format!(
                    "no image of commit {} exists yet, so there is nothing to check before this run builds and tags one; build it for an earlier environment and promote it from there",
                    &promotion.sha[..promotion.sha.len().min(7)]
                ))
            }
            Gate::Signature => {
                let verifier =
                    evidence::verifier(gates, promotion.signing_key, promotion.source_url)?;
                attached.signature(&verifier)?
            }
            Gate::Provenance => attached.provenance(promotion.sha, promotion.source_url)?,
            Gate::Sbom => attached.sbom(gates.sbom.as_deref().unwrap_or_default())?,
            Gate::Previous => previous.runs_it(gates)?,
            Gate::Soak => previous.soaked(gates)?,
            Gate::Status => status::check(
                promotion.forge,
                gates.status.as_deref().unwrap_or_default(),
                promotion.sha,
                promotion.source_url,
            )?,
            Gate::Approval => {
                results.push(Checked {
                    gate,
                    outcome: Outcome::Deferred,
                    detail: "checked by deploy: the environment's manifests change only through a pull request".to_owned(),
                });
                continue;
            }
        };
        results.push(match answer {
            Ok(detail) => Checked {
                gate,
                outcome: Outcome::Passed,
                detail,
            },
            Err(detail) => Checked {
                gate,
                outcome: Outcome::Refused,
                detail,
            },
        });
    }
    let refusals: Vec<String> = results
        .iter()
        .filter(|c| c.outcome == Outcome::Refused)
        .map(|c| format!("{}: {}", c.gate, c.detail))
        .collect();
    if refusals.is_empty() {
        Ok(results)
    } else {
        Err(Error::GatesRefused {
            environment: promotion.environment.to_owned(),
            digest: promotion.digest.map_or_else(
                || "the image this run would build".to_owned(),
                Digest::to_string,
            ),
            refusals,
        })
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
