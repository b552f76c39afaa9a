//! Set promotion: the services of a repository that ships several images move into an
//! environment together or not at all. Every service is prepared first (its image looked up,
//! checked to be this commit's, its gates passed) while no tag moves; then the tags move
//! service by service, and when one fails, the tags already moved are put back: a tag that
//! named an image before names it again, a tag that is new is deleted. A registry that deletes
//! no tags (Distribution 2.x) leaves the new ones, which the error names. What each service's
//! steps are is `build`'s; which services kept an earlier image is `affected`'s.

use serde::Serialize;

use crate::build::job::{Job, Report};
use crate::build::plan::Plan;
use crate::build::retag::Retagger;
use crate::error::Error;
use crate::progress::Progress;
use crate::registry::client::Repository;

/// One service of the set: its name, its job and that job's plan.
pub struct Member<'a> {
    pub package: String,
    pub job: Job<'a>,
    pub plan: Plan,
}

/// What `promote` did, as `build --all --format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    pub environment: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    pub services: Vec<ServiceReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub package: String,
    #[serde(flatten)]
    pub report: Report,
}

/// One tag as it was before the set moved: the digest it named, if any; the member whose tag
/// it is, and the digest this run moves it to.
#[derive(Debug, Clone)]
struct Before {
    member: usize,
    repository: Repository,
    tag: String,
    digest: Option<String>,
    moved_to: Option<String>,
}

/// How putting one tag back went.
enum Undone {
    /// It names what it named before, or is gone again.
    Restored,
    /// It is new and stays: the registry deletes no tags.
    Left,
    /// Another run moved it since: it is that run's now, and left as it is.
    Theirs,
}

/// Promotes every member or none. No tag moves until every member is prepared; a member with
/// no image of this commit ends the run before anything moves, since a set promotion retags
/// and never builds.
pub fn promote(
    members: Vec<Member<'_>>,
    retagger: &Retagger,
    progress: &Progress,
) -> Result<SetReport, Error> {
    let first = members
        .first()
        .ok_or_else(|| Error::Internal("a set promotion of no service".to_owned()))?;
    let mut set = SetReport {
        environment: first.plan.environment.clone(),
        git_ref: first.plan.git_ref.clone(),
        sha: first.plan.sha.clone(),
        services: Vec::new(),
    };
    let mut prepared = Vec::with_capacity(members.len());
    for member in &members {
        let ready = member.job.prepare(&member.plan)?;
        if ready.acts() && ready.found().is_none() {
            return Err(Error::Promotion(format!(
                "`{}` has no image of commit {} ({} is not in {}), so no tag of the set moved; a set promotion only retags: build it first (its own pipeline, or `cargo gitops build -p {}`), then run again",
                member.package,
                member.plan.sha,
                member.plan.lookup_tag,
                member
                    .plan
                    .target
                    .as_ref()
                    .map_or("the registry".to_owned(), ToString::to_string),
                member.package
            )));
        }
        prepared.push(ready);
    }
    let moved_to: Vec<Option<String>> = prepared
        .iter()
        .map(|ready| ready.found().map(str::to_owned))
        .collect();
    let before = snapshot(&members, &moved_to, retagger)?;
    for (index, (member, ready)) in members.iter().zip(prepared).enumerate() {
        match member.job.finish(&member.plan, ready) {
            Ok(report) => set.services.push(ServiceReport {
                package: member.package.clone(),
                report,
            }),
            Err(failure) => {
                let touched: Vec<&Before> = before.iter().filter(|b| b.member <= index).collect();
                return Err(undo(&member.package, &touched, retagger, progress, failure));
            }
        }
    }
    Ok(set)
}

/// What every member's environment tags name before any moves.
fn snapshot(
    members: &[Member<'_>],
    moved_to: &[Option<String>],
    retagger: &Retagger,
) -> Result<Vec<Before>, Error> {
    let mut before = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let Some(target) = &member.plan.target else {
            continue;
        };
        for tag in &member.plan.tags {
            before.push(Before {
                member: index,
                repository: target.clone(),
                tag: tag.clone(),
                digest: retagger.lookup(target, tag)?,
                moved_to: moved_to.get(index).cloned().flatten(),
            });
        }
    }
    Ok(before)
}

/// Puts back every tag of `touched` that moved, and says how that went in the error that ends
/// the run, with `failure` as its cause.
fn undo(
    package: &str,
    touched: &[&Before],
    retagger: &Retagger,
    progress: &Progress,
    failure: Error,
) -> Error {
    let mut restored = 0;
    let mut left = Vec::new();
    for before in touched {
        match undo_one(before, retagger) {
            Ok(Some(Undone::Restored)) => restored += 1,
            Ok(Some(Undone::Left)) => left.push(format!(
                "{} (new, and the registry did not delete it: it may delete no tags; delete it there)",
                before.repository.with_tag(&before.tag)
            )),
            Ok(Some(Undone::Theirs)) => left.push(format!(
                "{} (another run moved it since; left as that run set it)",
                before.repository.with_tag(&before.tag)
            )),
            Ok(None) => {}
            Err(err) => left.push(format!(
                "{} ({err})",
                before.repository.with_tag(&before.tag)
            )),
        }
    }
    progress.note(&format!(
        "the set promotion stopped at `{package}`; {restored} tag(s) put back as they were"
    ));
    let outcome = if left.is_empty() {
        format!(
            "every tag already moved was put back ({restored}), so the environment is as it was"
        )
    } else {
        format!(
            "{restored} tag(s) were put back, and {} could not be: {}",
            left.len(),
            left.join(", ")
        )
    };
    Error::SetPromotion {
        package: package.to_owned(),
        outcome,
        source: Box::new(failure),
    }
}

/// Puts one tag back when it moved: `None` when it had not.
fn undo_one(before: &Before, retagger: &Retagger) -> Result<Option<Undone>, Error> {
    let now = retagger.lookup(&before.repository, &before.tag)?;
    if now == before.digest {
        return Ok(None);
    }
    // Only what this run set is put back: a tag on any other digest is another run's.
    if now.is_some() && now != before.moved_to {
        return Ok(Some(Undone::Theirs));
    }
    match &before.digest {
        Some(digest) => {
            retagger.retag(
                &before.repository,
                digest,
                &before.repository,
                std::slice::from_ref(&before.tag),
            )?;
            Ok(Some(Undone::Restored))
        }
        None => {
            let client = retagger.client(&before.repository.registry)?;
            client.delete_tag(&before.repository.name, &before.tag)?;
            // Whatever the registry answered (some answer 404 to a delete they refuse), the
            // tag is gone only when a lookup no longer finds it.
            Ok(Some(
                if retagger.lookup(&before.repository, &before.tag)?.is_none() {
                    Undone::Restored
                } else {
                    Undone::Left
                },
            ))
        }
    }
}
