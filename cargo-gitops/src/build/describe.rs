//! How a plan is shown by `--dry-run`: the lookup, then every branch `Plan::after` gives (found
//! in each candidate repository, or missing), each step with the exact commands or built-in
//! client requests a run makes for it; as shell lines with `#` comments, or as JSON. What the
//! steps are is `plan`'s business; this module only renders them.

use serde::Serialize;

use crate::build::plan::{Attestation, Digest, Outcome, Plan, Step};
use crate::build::retag::Retagger;
use crate::registry::client::Repository;
use crate::registry::referrers::Expect;

/// The condition of a request made only where the registry has no referrers API.
pub const WITHOUT_REFERRERS_API: &str = "without the referrers API";

/// The condition of the referrers tag's write (and read back) after the artifact manifests
/// are stored: once for all the documents attached to one subject.
pub const UNLESS_OCI_SUBJECT: &str = "unless the registry answered with OCI-Subject: the referrers tag index, as read, with the new entries added, written back";

/// The condition of what attaching sends once the referrers are read: each artifact
/// manifest (`ARTIFACT_DIGEST`, one per document, in order) and its blobs.
pub const UNLESS_ATTACHED: &str = "unless attached already; all at once";

/// The condition of reading a referrers tag back after writing it, for a build's own
/// documents: a new image's tag (missing when the referrers were read) has no other writers
/// but runs of its commit, which attach the same bytes.
pub const READ_BACK_UNLESS_NEW: &str =
    "unless the registry answered with OCI-Subject, and only if the referrers tag existed before";

/// Stands for the digest the lookup finds.
pub const FOUND: &str = "DIGEST";

/// A dry run, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub environment: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub lookup_tag: String,
    pub tags: Vec<String>,
    /// Tags that never move to another commit.
    pub immutable: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the upper-case names in commands stand for.
    pub placeholders: Vec<Placeholder>,
    /// One step per candidate repository, in order; the first that finds the image wins.
    pub lookup: Vec<StepView>,
    /// What follows each outcome of the lookup.
    pub outcomes: Vec<Branch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Placeholder {
    pub name: &'static str,
    pub meaning: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Branch {
    pub when: String,
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub title: String,
    pub actions: Vec<Line>,
}

/// One thing a step does: a command it runs, a request the built-in client sends, or a
/// note; `when` says on what condition, when it is not always.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    #[serde(flatten)]
    pub what: What,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    Run(String),
    Request(String),
    Note(String),
}

const PLACEHOLDERS: &[(&str, &str)] = &[
    (FOUND, "the digest the lookup found"),
    (
        "PUSHED_DIGEST",
        "the digest `podman push` wrote to its digest file",
    ),
    (
        "BUILT_DIGEST",
        "the digest docker buildx wrote to its metadata file",
    ),
    ("IMAGE_DIGEST", "the digest of the image the tool packed"),
    (
        "LOOKUP_DIGEST",
        "the digest the lookup tag names once claimed",
    ),
    (
        "ARTIFACT_DIGEST",
        "the digest of the artifact manifest that attaches a document",
    ),
];

/// The whole plan, every branch computed by `Plan::after`.
pub fn describe(plan: &Plan, retagger: &Retagger) -> Description {
    let lookup: Vec<StepView> = plan.lookup.iter().map(|s| view(s, retagger)).collect();
    let outcomes = match (&plan.environment, &plan.target) {
        (None, _) => Vec::new(),
        (Some(_), None) => vec![Branch {
            when: "always (nothing is looked up)".to_owned(),
            steps: views(&plan.after(&Outcome::Missing), retagger),
        }],
        (Some(_), Some(_)) => plan
            .outcomes(FOUND)
            .iter()
            .map(|outcome| Branch {
                when: match outcome {
                    Outcome::Found { repository, .. } => {
                        format!("found as {FOUND} in {repository}")
                    }
                    Outcome::Missing => "not found: build once".to_owned(),
                },
                steps: views(&plan.after(outcome), retagger),
            })
            .collect(),
    };
    let note = plan
        .environment
        .is_none()
        .then(|| format!("no environment tracks {}: nothing to do", plan.git_ref));
    let shown = serde_json::to_string(&(&lookup, &outcomes)).unwrap_or_default();
    Description {
        environment: plan.environment.clone(),
        git_ref: plan.git_ref.clone(),
        sha: plan.sha.clone(),
        lookup_tag: plan.lookup_tag.clone(),
        tags: plan.tags.clone(),
        immutable: plan.immutable.clone(),
        note,
        placeholders: PLACEHOLDERS
            .iter()
            .filter(|(name, _)| names(&shown, name))
            .map(|&(name, meaning)| Placeholder { name, meaning })
            .collect(),
        lookup,
        outcomes,
    }
}

/// Whether `text` has `name` as a word of its own (`DIGEST`, not the end of `IMAGE_DIGEST`).
fn names(text: &str, name: &str) -> bool {
    let part_of_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(name).any(|(at, _)| {
        !part_of_word(text[..at].chars().next_back())
            && !part_of_word(text[at + name.len()..].chars().next())
    })
}

fn views(steps: &[Step], retagger: &Retagger) -> Vec<StepView> {
    steps.iter().map(|s| view(s, retagger)).collect()
}

fn shown(digest: &Digest) -> String {
    match digest {
        Digest::Known(digest) => digest.clone(),
        Digest::File(_) => "PUSHED_DIGEST".to_owned(),
        Digest::BuildxMetadata(_) => "BUILT_DIGEST".to_owned(),
        Digest::Packed => "IMAGE_DIGEST".to_owned(),
        Digest::Claimed => "LOOKUP_DIGEST".to_owned(),
    }
}

fn line(what: What, when: Option<&str>) -> Line {
    Line {
        what,
        when: when.map(str::to_owned),
    }
}

/// The condition of what a lookup does once it finds the image.
pub const IF_FOUND: &str = "if found";

/// How the retagger looks `tag` up: its command, or the built-in client's request.
fn lookup_lines(retagger: &Retagger, repository: &Repository, tag: &str) -> Line {
    let what = match retagger.lookup_command(repository, tag) {
        Some(command) => What::Run(command.display()),
        None => What::Request(Retagger::builtin_lookup_request(repository, tag)),
    };
    line(what, None)
}

/// How the retagger gives `digest` of `source` the `tags` in `target`.
fn retag_lines(
    retagger: &Retagger,
    (source, digest, target): (&Repository, &str, &Repository),
    tags: &[String],
    when: Option<&str>,
) -> Vec<Line> {
    let commands = retagger.retag_commands(source, digest, target, tags);
    if retagger.kind.program().is_some() {
        return commands
            .iter()
            .map(|c| line(What::Run(c.display()), when))
            .collect();
    }
    Retagger::builtin_retag_requests(source, digest, target, tags)
        .into_iter()
        .map(|text| {
            let request = ["HEAD ", "GET ", "PUT ", "POST "]
                .iter()
                .any(|m| text.starts_with(m));
            line(
                if request {
                    What::Request(text)
                } else {
                    What::Note(text)
                },
                when,
            )
        })
        .collect()
}

/// One step with what it does.
pub fn view(step: &Step, retagger: &Retagger) -> StepView {
    let note = |text: String, when: Option<&str>| vec![line(What::Note(text), when)];
    let actions = match step {
        Step::Lookup { repository, tag } => {
            let found = Some(IF_FOUND);
            vec![
                lookup_lines(retagger, repository, tag),
                line(
                    What::Request(format!(
                        "GET {}/v2/{}/manifests/DIGEST",
                        repository.registry, repository.name
                    )),
                    found,
                ),
                line(
                    What::Note("built-in client: the manifest's bytes must hash to DIGEST, and its org.opencontainers.image.revision annotation, else its config's label (an index: its first platform's), must be this commit; otherwise the run stops before any tag moves".to_owned()),
                    found,
                ),
            ]
        }
        Step::Guard {
            repository,
            tag,
            allowed,
        } => {
            let mut lines = vec![lookup_lines(retagger, repository, tag)];
            lines.extend(note(
                "read that image's commit (built-in client: its revision label, else the commit-* tag naming it) and refuse unless it is this one".to_owned(),
                Some(match allowed {
                    Some(_) => "if the tag names an image other than DIGEST",
                    None => "if the tag exists",
                }),
            ));
            lines
        }
        Step::Run { command, .. } => vec![line(What::Run(command.display()), None)],
        Step::ReadBase { reference, target } => note(
            format!(
                "built-in client: GET the manifest of {reference}, its {}/{} manifest and config",
                target.os, target.architecture
            ),
            None,
        ),
        Step::WriteDependencyList {
            triple,
            path,
            bytes,
        } => note(
            format!(
                "write {} ({} bytes): the crates linked for {triple}, in cargo-auditable's format, for the linker to put in the binary's .dep-v0 section",
                path.display(),
                bytes.len()
            ),
            None,
        ),
        Step::Pack => note(
            "pack each binary as one layer with its config and manifest, in memory".to_owned(),
            None,
        ),
        Step::Attest {
            repository,
            digest,
            attestation,
        } => batch_lines(repository, digest, &attested(attestation), Expect::Either),
        Step::Push {
            repository,
            attestation: Some(attestation),
        } => {
            let mut lines = note(
                "the documents' requests below go at the same time as the image's blobs and manifest".to_owned(),
                None,
            );
            lines.extend(batch_lines(
                repository,
                &Digest::Packed,
                &attested(attestation),
                Expect::New,
            ));
            lines
        }
        Step::CopyReferrers {
            source,
            digest,
            target,
        } => copy_referrers_lines(source, digest, target),
        Step::Sign {
            repository,
            digest,
            key,
        } => {
            let mut lines = Vec::new();
            if *digest == Digest::Claimed {
                lines.push(line(
                    What::Note(
                        "nothing is sent when the claimed image is the one this run signed before claiming"
                            .to_owned(),
                    ),
                    None,
                ));
            }
            lines.extend(batch_lines(
                repository,
                digest,
                &[signature(key)],
                Expect::Either,
            ));
            lines
        }
        Step::Attach {
            repository,
            digest,
            artifacts,
        } => {
            let documents: Vec<String> = artifacts
                .iter()
                .map(|a| format!("{} ({} bytes)", a.artifact_type, a.bytes.len()))
                .collect();
            batch_lines(repository, digest, &documents, Expect::Either)
        }
        Step::Gates {
            environment,
            repository,
            digest,
            gates,
        } => gate_lines(environment, repository, digest, gates),
        _ => tag_actions(step, retagger),
    };
    StepView {
        title: step.title(),
        actions,
    }
}

/// What a build attaches, a description each: its documents, then its signature.
fn attested(attestation: &Attestation) -> Vec<String> {
    let mut documents: Vec<String> = attestation
        .artifact_types
        .iter()
        .map(|artifact_type| {
            format!(
                "the {artifact_type} document (an SBOM to its platform's manifest, the provenance to the image)"
            )
        })
        .collect();
    documents.extend(attestation.sign.as_ref().map(signature));
    documents
}

/// The signature a step makes with the key from `key`, as a document it attaches.
fn signature(key: &crate::supply::sign::KeySource) -> String {
    format!(
        "the signature made with the ECDSA P-256 key from {key} (an in-toto statement of the digest in a DSSE envelope, as a sigstore bundle: what `cosign sign` writes)"
    )
}

/// What attaching `documents` to `digest` in one batch sends (`referrers::attach_all`): the
/// subject's manifest, unless the run packed it; its referrers, read once; then, for the
/// documents not attached already, the blobs at once, the artifact manifests at once, and
/// the referrers tag written once and read back.
fn batch_lines(
    repository: &Repository,
    digest: &Digest,
    documents: &[String],
    expect: Expect,
) -> Vec<Line> {
    let subject = shown(digest);
    let base = format!("{}/v2/{}", repository.registry, repository.name);
    let hex = subject.strip_prefix("sha256:").unwrap_or(&subject);
    let mut lines: Vec<Line> = subject_line(repository, digest).into_iter().collect();
    lines.extend(documents.iter().map(|what| {
        line(
            What::Note(format!(
                "attach {what} to {subject} as a referrer unless it is attached already"
            )),
            None,
        )
    }));
    lines.push(line(
        What::Request(format!("GET {base}/referrers/{subject}")),
        Some(match expect {
            Expect::New => {
                "404 without the referrers API; the referrers tag is read at the same time"
            }
            Expect::Either => "404 without the referrers API: then the referrers tag is read",
        }),
    ));
    lines.push(line(
        What::Request(format!("GET {base}/manifests/sha256-{hex}")),
        Some(WITHOUT_REFERRERS_API),
    ));
    lines.push(line(
        What::Note(format!(
            "upload to {repository}, all at once, the empty config unless it is there (HEAD, then POST and PUT) and each document (POST and PUT)"
        )),
        match expect {
            Expect::New => Some("while the referrers are read"),
            Expect::Either => Some(UNLESS_ATTACHED),
        },
    ));
    lines.extend(documents.iter().map(|_| {
        line(
            What::Request(format!("PUT {base}/manifests/ARTIFACT_DIGEST")),
            Some(UNLESS_ATTACHED),
        )
    }));
    lines.push(line(
        What::Request(format!("PUT {base}/manifests/sha256-{hex}")),
        Some(UNLESS_OCI_SUBJECT),
    ));
    let read_back = match expect {
        Expect::New => READ_BACK_UNLESS_NEW,
        Expect::Either => UNLESS_OCI_SUBJECT,
    };
    lines.push(line(
        What::Request(format!("GET {base}/manifests/sha256-{hex}")),
        Some(read_back),
    ));
    lines.push(line(
        What::Note(
            "read back, the index is written again (3 times at most) while another writer's replaced it"
                .to_owned(),
        ),
        Some(read_back),
    ));
    lines
}

/// The request that reads the manifest `digest` in `repository`, which what is attached to
/// it names as its subject: once per step that attaches, unless the run packed the image
/// itself.
fn subject_line(repository: &Repository, digest: &Digest) -> Option<Line> {
    (*digest != Digest::Packed).then(|| {
        line(
            What::Request(format!(
                "GET {}/v2/{}/manifests/{}",
                repository.registry,
                repository.name,
                shown(digest)
            )),
            None,
        )
    })
}

/// The built-in client's requests that copy what is attached to `digest`.
fn copy_referrers_lines(source: &Repository, digest: &str, target: &Repository) -> Vec<Line> {
    let from = format!("{}/v2/{}", source.registry, source.name);
    let to = format!("{}/v2/{}", target.registry, target.name);
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let mut lines = vec![
        line(
            What::Request(format!("GET {from}/referrers/{digest}")),
            Some("404 without the referrers API: then the referrers tag is read"),
        ),
        line(
            What::Request(format!("GET {from}/manifests/sha256-{hex}")),
            Some(WITHOUT_REFERRERS_API),
        ),
        line(
            What::Note(format!(
                "if it has referrers: list {target}'s the same way; for each one not there, GET it, copy its blobs (HEAD, then mount or upload) and PUT {to}/manifests/<its digest>; then add those the registry did not answer with OCI-Subject for to {to}/manifests/sha256-{hex}, in one write, read back"
            )),
            None,
        ),
    ];
    for suffix in crate::registry::referrers::COSIGN_TAG_SUFFIXES {
        lines.push(line(
            What::Request(format!("GET {from}/manifests/sha256-{hex}.{suffix}")),
            None,
        ));
        lines.push(line(
            What::Note(format!(
                "copy it with its blobs, then PUT {to}/manifests/sha256-{hex}.{suffix}"
            )),
            Some("if it exists and the target's differs"),
        ));
    }
    lines
}

/// What checking the gates reads (it writes nothing): one line per gate.
fn gate_lines(
    environment: &str,
    repository: &Repository,
    digest: &Option<Digest>,
    gates: &crate::gates::Gates,
) -> Vec<Line> {
    use crate::gates::Gate;
    let Some(digest) = digest else {
        return vec![line(
            What::Note(format!(
                "before anything is built: every gate of `{environment}` about the image refuses (no image of this commit exists yet, and the build would tag it before it could be checked); a status gate is read, GET $GITHUB_API_URL/repos/OWNER/REPO/commits/SHA/status"
            )),
            None,
        )];
    };
    let subject = shown(digest);
    let mut lines = vec![line(
        What::Note(format!(
            "built-in client, reads only: refuse, before any tag moves, unless every gate of `{environment}` passes (--skip-gate NAME --reason \"…\" skips one)"
        )),
        None,
    )];
    for gate in gates.list() {
        let text = match gate {
            Gate::Signature => format!(
                "signature: a sigstore bundle referrer of {repository}@{subject} verifies with the configured key and names this digest"
            ),
            Gate::Provenance => format!(
                "provenance: an SLSA v1 referrer of {repository}@{subject} names this digest, this repository and commit"
            ),
            Gate::Sbom => format!(
                "sbom: an SBOM referrer of {repository}@{subject} (or of its platform manifests){}",
                match gates.sbom.as_deref() {
                    Some(deny) if !deny.is_empty() => format!(" lists none of {}", deny.join(", ")),
                    _ => String::new(),
                }
            ),
            Gate::Previous => format!(
                "previous: the newest tag of `{}` names {subject}",
                gates.previous.as_deref().unwrap_or_default()
            ),
            Gate::Soak => format!(
                "soak: a tag of `{}` for this commit has named {subject} for at least {}",
                gates.previous.as_deref().unwrap_or_default(),
                gates.soak.as_ref().map_or("", |(_, text)| text.as_str())
            ),
            Gate::Status => format!(
                "status: GET $GITHUB_API_URL/repos/OWNER/REPO/commits/SHA/status (then check-runs?check_name=…) says `{}` is success",
                gates.status.as_deref().unwrap_or_default()
            ),
            Gate::Approval => {
                "approval: recorded for deploy, which changes this environment's manifests through a pull request only".to_owned()
            }
        };
        lines.push(line(What::Note(text), None));
    }
    lines.push(line(
        What::Note(format!(
            "once every gate passed or was skipped: a record of them ({}) is attached to the image in the target repository, unless attached already, just before its tags move",
            crate::gates::record::MEDIA_TYPE
        )),
        None,
    ));
    lines
}

/// What a step that moves tags does.
fn tag_actions(step: &Step, retagger: &Retagger) -> Vec<Line> {
    match step {
        Step::Claim {
            source,
            digest,
            target,
            tag,
        } => {
            let mut lines = vec![lookup_lines(retagger, target, tag)];
            let when = format!("if {tag} does not exist");
            lines.extend(retag_lines(
                retagger,
                (source, &shown(digest), target),
                std::slice::from_ref(tag),
                Some(&when),
            ));
            lines
        }
        Step::Retag {
            repository,
            digest,
            tags,
        } => retag_lines(
            retagger,
            (repository, &shown(digest), repository),
            tags,
            None,
        ),
        Step::Converge {
            repository,
            lookup_tag,
            tags,
            ..
        } => {
            let mut lines = vec![lookup_lines(retagger, repository, lookup_tag)];
            lines.extend(tags.iter().map(|t| lookup_lines(retagger, repository, t)));
            lines.extend(retag_lines(
                retagger,
                (repository, "LOOKUP_DIGEST", repository),
                tags,
                Some("only the tags not on LOOKUP_DIGEST (a versioned one only if it names this commit), then check again"),
            ));
            // Once no tag moved: the lookup tag again, in case a racing run wrote it.
            lines.push(lookup_lines(retagger, repository, lookup_tag));
            lines
        }
        _ => Vec::new(),
    }
}

impl Description {
    /// The dry run as shell lines: commands as they run, everything else as `#` comments.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(note) = &self.note {
            out.push_str(&format!("# {note}\n"));
            return out;
        }
        for placeholder in &self.placeholders {
            out.push_str(&format!(
                "# {}: {}\n",
                placeholder.name, placeholder.meaning
            ));
        }
        if !self.lookup.is_empty() {
            out.push_str(&format!(
                "# 1. look up {} in each repository in turn; the first that has it wins\n",
                self.lookup_tag
            ));
            for step in &self.lookup {
                push_actions(&mut out, &step.actions);
            }
        }
        for (i, branch) in self.outcomes.iter().enumerate() {
            let number = match self.outcomes.len() {
                1 => "2".to_owned(),
                _ => format!("2{}", char::from(b'a' + (i % 26) as u8)),
            };
            out.push_str(&format!("# {number}. {}\n", branch.when));
            for step in &branch.steps {
                out.push_str(&format!("## {}\n", step.title));
                push_actions(&mut out, &step.actions);
            }
        }
        out
    }
}

fn push_actions(out: &mut String, actions: &[Line]) {
    for action in actions {
        let when = action
            .when
            .as_ref()
            .map(|w| format!("  # {w}"))
            .unwrap_or_default();
        match &action.what {
            What::Run(command) => out.push_str(&format!("{command}{when}\n")),
            What::Request(request) => {
                out.push_str(&format!("# built-in client: {request}{when}\n"))
            }
            What::Note(note) => out.push_str(&format!("# {note}{when}\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_whole_words() {
        assert!(names("docker://r@DIGEST docker://r:t", "DIGEST"));
        assert!(!names("PUT /v2/r/manifests/IMAGE_DIGEST", "DIGEST"));
        assert!(names("PUT /v2/r/manifests/IMAGE_DIGEST", "IMAGE_DIGEST"));
        assert!(!names("DIGESTS", "DIGEST"));
    }
}
