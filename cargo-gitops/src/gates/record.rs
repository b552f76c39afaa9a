//! The record a promotion leaves of its gates: an OCI artifact attached to the image (so it
//! travels with it, like its signature) saying which environment's gates it passed, which
//! were skipped and why. What it says is in the artifact manifest's annotations, which a
//! referrers listing carries, so `history` reads it without fetching anything more. The same
//! outcome for the same environment gives the same bytes, so a rerun adds nothing.

use std::collections::BTreeMap;

use crate::gates::{Checked, Outcome};
use crate::registry::client::Descriptor;
use crate::registry::referrers::{Artifact, artifact_type_of};

/// The artifact type (and layer media type) of a gate record.
pub const MEDIA_TYPE: &str = "application/vnd.cargo-gitops.gates.v1+json";

const ENVIRONMENT: &str = "dev.cargo-gitops.gates.environment";
const PASSED: &str = "dev.cargo-gitops.gates.passed";
const SKIPPED: &str = "dev.cargo-gitops.gates.skipped";
const REASON: &str = "dev.cargo-gitops.gates.reason";

/// What a gate record says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    pub environment: String,
    pub passed: Vec<String>,
    pub skipped: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Record {
    /// The record of `checked`, the gates of `environment` as a run ended them.
    pub fn of(environment: &str, checked: &[Checked], reason: Option<&str>) -> Record {
        let named = |outcome: Outcome| -> Vec<String> {
            checked
                .iter()
                .filter(|c| c.outcome == outcome)
                .map(|c| c.gate.name().to_owned())
                .collect()
        };
        let skipped = named(Outcome::Skipped);
        Record {
            environment: environment.to_owned(),
            passed: named(Outcome::Passed),
            reason: (!skipped.is_empty())
                .then(|| reason.map(crate::error::quote_external))
                .flatten(),
            skipped,
        }
    }

    /// The record as a document to attach.
    pub fn artifact(&self) -> Artifact {
        let mut annotations = BTreeMap::from([
            (ENVIRONMENT.to_owned(), self.environment.clone()),
            (PASSED.to_owned(), self.passed.join(",")),
            (SKIPPED.to_owned(), self.skipped.join(",")),
        ]);
        if let Some(reason) = &self.reason {
            annotations.insert(REASON.to_owned(), reason.clone());
        }
        Artifact {
            artifact_type: MEDIA_TYPE.to_owned(),
            media_type: MEDIA_TYPE.to_owned(),
            bytes: serde_json::to_vec(self).expect("a record always serialises"),
            annotations,
        }
    }

    /// The record a referrer's descriptor carries, if it is one (of any environment).
    pub fn from_descriptor(descriptor: &Descriptor) -> Option<Record> {
        if artifact_type_of(descriptor) != Some(MEDIA_TYPE) {
            return None;
        }
        let get = |key: &str| descriptor.annotations.get(key);
        let list = |key: &str| -> Vec<String> {
            get(key)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Record {
            environment: get(ENVIRONMENT)?.clone(),
            passed: list(PASSED),
            skipped: list(SKIPPED),
            reason: get(REASON).cloned(),
        })
    }

    /// `signature, provenance` or `previous; skipped soak (hotfix)`, for a history table.
    pub fn summary(&self) -> String {
        let mut text = self.passed.join(",");
        if !self.skipped.is_empty() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!(
                "skipped {} ({})",
                self.skipped.join(","),
                self.reason.as_deref().unwrap_or("")
            ));
        }
        if text.is_empty() {
            "-".to_owned()
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::Gate;

    #[test]
    fn a_record_round_trips_through_its_descriptor() {
        let checked = [
            Checked {
                gate: Gate::Previous,
                outcome: Outcome::Passed,
                detail: "runs it".into(),
            },
            Checked {
                gate: Gate::Soak,
                outcome: Outcome::Skipped,
                detail: "hotfix".into(),
            },
            Checked {
                gate: Gate::Approval,
                outcome: Outcome::Deferred,
                detail: String::new(),
            },
        ];
        let record = Record::of("production", &checked, Some("hotfix\napproved"));
        assert_eq!(record.reason.as_deref(), Some("hotfix\\napproved"));
        let artifact = record.artifact();
        assert_eq!(
            artifact,
            Record::of("production", &checked, Some("hotfix\napproved")).artifact()
        );
        let descriptor: Descriptor = serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 1,
            "artifactType": MEDIA_TYPE,
            "annotations": artifact.annotations,
        }))
        .unwrap();
        let read = Record::from_descriptor(&descriptor).unwrap();
        assert_eq!(read, record);
        assert_eq!(read.summary(), "previous skipped soak (hotfix\\napproved)");
    }
}
