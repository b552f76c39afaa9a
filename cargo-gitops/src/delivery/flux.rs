//! Flux image automation: for each environment, the tag filter that admits its tags and no
//! other environment's (an anchored pattern derived from its tag format) with the ordering that
//! picks the newest, written as `image.toolkit.fluxcd.io/v1` `ImagePolicy` and
//! `ImageRepository` manifests, and the marker comment a deployment manifest carries. It writes
//! text only: it never talks to a cluster or a registry, and tag text itself is `tags`' job.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::config::Config;
use crate::environment::{self, Environment, GitRef, TagSelector};
use crate::error::Error;
use crate::registry::client::{Repository, is_plain_http};
use crate::tags::{self, Part, Placeholder, TagValues};

/// The Flux API the manifests are written for.
pub const API_VERSION: &str = "image.toolkit.fluxcd.io/v1";

/// The capture group holding `{timestamp}`, which numerical policies extract.
pub const TIMESTAMP_GROUP: &str = "ts";
/// The capture group holding `{version}`, which SemVer policies extract.
pub const VERSION_GROUP: &str = "version";
/// The capture groups holding `{sha}` and `{sha40}`.
pub const SHA_GROUP: &str = "sha";
pub const SHA40_GROUP: &str = "sha40";

/// Values used to render example tags; any value of the same length gives the same shape.
const EXAMPLE_SHA40: &str = "b4b9fda0123456789abcdef0123456789abcdef0";
const EXAMPLE_TIMESTAMP: u64 = 1_654_880_868;

/// How an environment's tags are told apart from every other tag, and which one is newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    /// A regular expression anchored at both ends, in the syntax Go's RE2 (Flux) and the
    /// `regex` crate share.
    pub pattern: String,
    pub order: Order,
}

/// What makes one tag newer than another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// The largest `{timestamp}`, read as a number.
    Timestamp,
    /// The highest `{version}` that satisfies `range` (Masterminds semantics: a pre-release
    /// is only admitted by a range that names one).
    Semver { range: String },
}

impl TagFilter {
    /// Flux's `filterTags.extract`: the capture group the ordering reads.
    pub fn extract(&self) -> String {
        match self.order {
            Order::Timestamp => format!("${TIMESTAMP_GROUP}"),
            Order::Semver { .. } => format!("${VERSION_GROUP}"),
        }
    }
}

/// The branch a per-branch format (`{branch}`, `{name}`) is made for.
#[derive(Debug, Clone, Copy)]
pub enum BranchChoice<'a> {
    /// One branch, with its `{name}` (the branch without the pattern's fixed prefix).
    Exact { branch: &'a str, name: &'a str },
    /// Any branch of the environment, for listing its whole history.
    Any,
}

/// Tag text is `[A-Za-z0-9_.-]`, where `.` is the only regex metacharacter; anything else
/// that is not a word character or `-` is escaped too, which RE2 and `regex` both read as
/// the character itself.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const NUMBER: &str = "(?:0|[1-9][0-9]*)";
const IDENTIFIER: &str = "[0-9A-Za-z-]+";

/// `{version}` as it appears in tags, without build metadata: what Flux can parse as SemVer.
fn version_pattern(selector: Option<&TagSelector>) -> String {
    let core = format!(r"{NUMBER}\.{NUMBER}\.{NUMBER}");
    let dotted = format!(r"(?:\.{IDENTIFIER})*");
    match selector {
        Some(TagSelector::SemverStable) => core,
        // The selector's rule: the pre-release starts with the channel name.
        Some(TagSelector::SemverChannel(channel)) => {
            format!("{core}-{}[0-9A-Za-z-]*{dotted}", escape(channel))
        }
        _ => format!("{core}(?:-{IDENTIFIER}{dotted})?"),
    }
}

/// Build metadata, written `_…` in tags because `+` is not allowed there. It stays outside
/// the captured version: Flux's strict SemVer parser would not read `_`.
fn build_suffix() -> String {
    format!(r"(?:_{IDENTIFIER}(?:\.{IDENTIFIER})*)?")
}

/// The filter that admits exactly the tags `env` gives (for one branch, or for any), never its
/// `latest` tag, its lookup tags, or another environment's tags.
pub fn tag_filter(env: &Environment, branch: BranchChoice<'_>) -> Result<TagFilter, Error> {
    let format = &env.format;
    let pieces = format.parts();
    let per_branch = format.is_per_branch();
    let exact = match branch {
        BranchChoice::Exact { branch, name } if per_branch => {
            Some(shortened_branch(env, pieces, branch, name)?)
        }
        _ => None,
    };
    let mut pattern = String::from("^");
    // Go's RE2 rejects a group name used twice; only the first use of a value is captured.
    let mut named = BTreeSet::new();
    let mut group = |name: &'static str, inner: &str| {
        if named.insert(name) {
            format!("(?P<{name}>{inner})")
        } else {
            format!("(?:{inner})")
        }
    };
    for piece in pieces {
        let part = match piece {
            Part::Literal(text) => escape(text),
            Part::Placeholder(p) => match p {
                Placeholder::Sha => group(SHA_GROUP, "[0-9a-f]{7}"),
                Placeholder::Sha40 => group(SHA40_GROUP, "[0-9a-f]{40}"),
                // Timestamps are 10 digits (`deployment` enforces it).
                Placeholder::Timestamp => group(TIMESTAMP_GROUP, "[0-9]{10}"),
                Placeholder::Version => {
                    let inner = version_pattern(env.tags.as_ref());
                    group(VERSION_GROUP, &inner) + &build_suffix()
                }
                Placeholder::Env => escape(&tags::sanitise(&env.name)),
                Placeholder::Branch | Placeholder::Name => match &exact {
                    Some((branch, name)) => escape(if *p == Placeholder::Branch {
                        branch
                    } else {
                        name
                    }),
                    None => "[A-Za-z0-9_.-]*".to_owned(),
                },
            },
        };
        pattern.push_str(&part);
    }
    pattern.push('$');

    let semver_selector = env.tags.as_ref().is_some_and(TagSelector::is_semver);
    let order = if semver_selector && format.uses(Placeholder::Version) {
        Order::Semver {
            range: match &env.tags {
                Some(TagSelector::SemverChannel(channel)) => format!(">=0.0.0-{channel}"),
                _ => ">=0.0.0".to_owned(),
            },
        }
    } else {
        Order::Timestamp
    };
    let filter = TagFilter { pattern, order };
    self_check(env, &filter, exact.is_some().then_some(branch))?;
    Ok(filter)
}

/// The branch and name exactly as they appear in this environment's tags, taken from the
/// tag the format renders, so the rule (readable names, hashes, shortening) lives in `tags`.
fn shortened_branch(
    env: &Environment,
    pieces: &[Part],
    branch: &str,
    name: &str,
) -> Result<(String, String), Error> {
    let values = example_values(env, Some(branch), Some(name), None);
    let rendered = env
        .format
        .render_pieces(&values)
        .map_err(|source| Error::Tag {
            environment: env.name.clone(),
            source,
        })?;
    let piece_of = |wanted: Placeholder| {
        pieces
            .iter()
            .zip(&rendered)
            .find(|(part, _)| **part == Part::Placeholder(wanted))
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    Ok((piece_of(Placeholder::Branch), piece_of(Placeholder::Name)))
}

fn example_values<'a>(
    env: &'a Environment,
    branch: Option<&'a str>,
    name: Option<&'a str>,
    version: Option<&'a str>,
) -> TagValues<'a> {
    TagValues {
        branch,
        name,
        sha40: EXAMPLE_SHA40,
        timestamp: EXAMPLE_TIMESTAMP,
        version,
        env: &env.name,
    }
}

/// Checks the pattern against a tag the format really renders, so that a pattern that
/// cannot match its own environment is never written out.
fn self_check(
    env: &Environment,
    filter: &TagFilter,
    branch: Option<BranchChoice<'_>>,
) -> Result<(), Error> {
    let regex = regex::Regex::new(&filter.pattern)
        .map_err(|e| pattern_bug(env, &format!("`{}` does not compile: {e}", filter.pattern)))?;
    let version = match &env.tags {
        Some(TagSelector::SemverChannel(channel)) => format!("1.2.3-{channel}.1"),
        _ => "1.2.3".to_owned(),
    };
    let (branch, name) = match branch {
        Some(BranchChoice::Exact { branch, name }) => (Some(branch), Some(name)),
        _ => (Some("feature/example"), Some("example")),
    };
    let example = example_values(env, branch, name, Some(&version));
    match env.format.render(&example) {
        Ok(tag) if !regex.is_match(&tag) => Err(pattern_bug(
            env,
            &format!("`{}` does not match its own tag `{tag}`", filter.pattern),
        )),
        _ => Ok(()),
    }
}

fn pattern_bug(env: &Environment, detail: &str) -> Error {
    Error::usage(format!(
        "cannot derive a tag pattern for environment `{}` from `{}`: {detail}; please report this",
        env.name, env.format
    ))
}

/// What `cargo gitops flux` is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Branches to follow in environments whose tags name the branch.
    pub branches: Vec<String>,
    pub namespace: String,
    pub interval: String,
    pub secret_ref: Option<String>,
    /// The start of every object name [default: the image's name].
    pub name_prefix: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            branches: Vec::new(),
            namespace: "flux-system".to_owned(),
            interval: "5m".to_owned(),
            secret_ref: None,
            name_prefix: None,
        }
    }
}

/// One `ImageRepository`: the image that policies read tags from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRepository {
    pub name: String,
    pub image: String,
    /// Plain HTTP, as the tool itself speaks to this registry.
    pub insecure: bool,
}

/// One `ImagePolicy`: the newest tag of one environment (and branch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub environment: String,
    pub branch: Option<String>,
    /// The `ImageRepository` it reads.
    pub repository: String,
    pub image: String,
    pub filter: TagFilter,
    /// The environment's moving tag, a sensible first value for a deployment's image.
    pub latest_tag: Option<String>,
    /// The format, for the comment above the policy.
    pub format: String,
}

/// Everything `cargo gitops flux` writes, and what it has to say about what it left out.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub namespace: String,
    pub interval: String,
    pub secret_ref: Option<String>,
    pub repositories: Vec<ImageRepository>,
    pub policies: Vec<Policy>,
    /// Environments without a policy and ambiguities, one sentence each, for stderr.
    pub notes: Vec<String>,
}

/// The manifests of several images in one set: each image's repositories and policies, their
/// object names apart (each image's names start with its own name). Two objects of one name are
/// refused.
pub fn plan_each(configs: &[Config], options: &Options) -> Result<Manifests, Error> {
    if configs.len() > 1 && options.name_prefix.is_some() {
        return Err(Error::usage(
            "--name-prefix would give every image's objects the same names; drop it, or pass -p for one image",
        ));
    }
    let mut all: Option<Manifests> = None;
    for config in configs {
        let manifests = plan(config, options)?;
        match &mut all {
            None => all = Some(manifests),
            Some(all) => {
                all.repositories.extend(manifests.repositories);
                all.policies.extend(manifests.policies);
                all.notes.extend(manifests.notes);
            }
        }
    }
    let all = all.ok_or_else(|| Error::Internal("no configuration to plan".to_owned()))?;
    let mut names = std::collections::HashSet::new();
    for name in all
        .repositories
        .iter()
        .map(|r| &r.name)
        .chain(all.policies.iter().map(|p| &p.name))
    {
        if !names.insert(name) {
            return Err(Error::usage(format!(
                "two images give Flux objects named `{name}`; give one of them another `image` name, or pass -p for one image"
            )));
        }
    }
    Ok(all)
}

/// Works out the repositories and policies for the configured environments.
pub fn plan(config: &Config, options: &Options) -> Result<Manifests, Error> {
    check_options(options)?;
    let main_image = config.image_for(None).ok_or(Error::NoImage)?;
    let prefix = match &options.name_prefix {
        Some(prefix) => prefix.clone(),
        None => {
            let repository = Repository::parse(&main_image)?;
            let last = repository.name.rsplit('/').next().unwrap_or_default();
            let prefix = object_name(&[last]);
            if prefix.is_empty() {
                return Err(Error::usage(format!(
                    "image `{main_image}` gives no usable object name; pass --name-prefix"
                )));
            }
            prefix
        }
    };

    let mut requested: Vec<(String, &Environment, String)> = Vec::new();
    for branch in &options.branches {
        if branch.is_empty() {
            return Err(Error::usage("--branch needs a branch name"));
        }
        let found = environment::resolve(&config.environments, &GitRef::Branch(branch.clone()))
            .ok_or_else(|| {
                Error::usage(format!(
                    "no environment tracks branch `{branch}`; check the name, or the `branches` of the environments in Cargo.toml"
                ))
            })?;
        let name = found.name.clone().unwrap_or_else(|| branch.clone());
        requested.push((branch.clone(), found.environment, name));
    }

    let mut manifests = Manifests {
        namespace: options.namespace.clone(),
        interval: options.interval.clone(),
        secret_ref: options.secret_ref.clone(),
        repositories: Vec::new(),
        policies: Vec::new(),
        notes: Vec::new(),
    };
    for env in &config.environments {
        let image = config
            .image_for(Some(env))
            .expect("the main image is configured, so every environment has one");
        let repository = match manifests.repositories.iter().find(|r| r.image == image) {
            Some(existing) => existing.name.clone(),
            None => {
                let name = if image == main_image {
                    prefix.clone()
                } else {
                    object_name(&[&prefix, &env.name])
                };
                let registry = Repository::parse(&image)?.registry;
                manifests.repositories.push(ImageRepository {
                    name: name.clone(),
                    image: image.clone(),
                    insecure: is_plain_http(&registry, &config.build.insecure_registries),
                });
                name
            }
        };
        let per_branch = env.format.is_per_branch();
        let policy = |name: String, branch: Option<(&str, &str)>| -> Result<Policy, Error> {
            let choice = match branch {
                Some((branch, name)) => BranchChoice::Exact { branch, name },
                None => BranchChoice::Any,
            };
            let values = example_values(env, branch.map(|b| b.0), branch.map(|b| b.1), None);
            let latest_tag = env.latest_tag(&values).and_then(Result::ok);
            Ok(Policy {
                name,
                environment: env.name.clone(),
                branch: branch.map(|b| b.0.to_owned()),
                repository: repository.clone(),
                image: image.clone(),
                filter: tag_filter(env, choice)?,
                latest_tag,
                format: env.format.to_string(),
            })
        };
        if !per_branch {
            manifests
                .policies
                .push(policy(object_name(&[&prefix, &env.name]), None)?);
            continue;
        }
        // Branches named outright in the configuration, then those asked for, once each.
        let mut branches: Vec<(String, String)> = Vec::new();
        for pattern in env.branches.iter().filter(|p| !p.has_wildcard()) {
            let branch = pattern.as_str().to_owned();
            if let Some(found) =
                environment::resolve(&config.environments, &GitRef::Branch(branch.clone()))
                && found.environment.name == env.name
            {
                branches.push((branch.clone(), found.name.unwrap_or(branch)));
            }
        }
        for (branch, _, name) in requested.iter().filter(|(_, e, _)| e.name == env.name) {
            if !branches.iter().any(|(b, _)| b == branch) {
                branches.push((branch.clone(), name.clone()));
            }
        }
        if branches.is_empty() {
            manifests.notes.push(format!(
                "environment `{}` tags per branch (`{}`), so it has no policy without --branch; add --branch NAME for each branch to follow",
                env.name, env.format
            ));
        }
        for (branch, name) in &branches {
            // The object is named after the branch as its tags show it, so names that
            // sanitising would merge (`feature/a`, `feature-a`) get objects of their own.
            let (branch_piece, name_piece) =
                shortened_branch(env, env.format.parts(), branch, name)?;
            let piece = if env.format.uses(Placeholder::Name) {
                name_piece
            } else {
                branch_piece
            };
            let policy = policy(
                object_name(&[&prefix, &env.name, &piece]),
                Some((branch, name)),
            )?;
            manifests.policies.push(policy);
        }
    }
    for (i, policy) in manifests.policies.iter().enumerate() {
        if let Some(other) = manifests.policies[..i]
            .iter()
            .find(|p| p.name == policy.name)
        {
            if other.filter == policy.filter {
                return Err(Error::usage(format!(
                    "branches `{}` and `{}` give the same tags in environment `{}`, so no policy can tell them apart; pass only one of them",
                    other.branch.as_deref().unwrap_or_default(),
                    policy.branch.as_deref().unwrap_or_default(),
                    policy.environment
                )));
            }
            return Err(Error::usage(format!(
                "two policies would be named `{}` ({} and {}); pass only one of those branches, or a different --name-prefix",
                policy.name,
                describe(other),
                describe(policy)
            )));
        }
    }
    note_channel_prefixes(config, &mut manifests.notes);
    Ok(manifests)
}

fn describe(policy: &Policy) -> String {
    match &policy.branch {
        Some(branch) => format!("environment {}, branch {branch}", policy.environment),
        None => format!("environment {}", policy.environment),
    }
}

/// A channel whose name starts another's (`b` and `beta`) also admits that channel's tags:
/// RE2 has no look-ahead to exclude them, so the user is told.
fn note_channel_prefixes(config: &Config, notes: &mut Vec<String>) {
    let channels: Vec<&str> = config
        .environments
        .iter()
        .filter_map(|env| match &env.tags {
            Some(TagSelector::SemverChannel(channel)) => Some(channel.as_str()),
            _ => None,
        })
        .collect();
    for short in &channels {
        for long in &channels {
            if long != short && long.starts_with(short) {
                notes.push(format!(
                    "channel `{short}` is the start of channel `{long}`, so its policy also selects `{long}` pre-releases; rename one of them"
                ));
            }
        }
    }
}

/// A Kubernetes object name from parts: lowercase, `-` between parts and for any run of other
/// characters, at most 253 characters (a DNS subdomain name).
pub fn object_name(parts: &[&str]) -> String {
    let mut name = String::new();
    for part in parts {
        let mut last_dash = name.is_empty() || name.ends_with('-');
        if !name.is_empty() && !last_dash {
            name.push('-');
            last_dash = true;
        }
        for c in part.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                name.push(c);
                last_dash = false;
            } else if c == '-' && !name.is_empty() {
                // Kept as written, so `feature--a` and `feature-a` name different objects.
                name.push('-');
                last_dash = true;
            } else if !last_dash {
                name.push('-');
                last_dash = true;
            }
        }
    }
    let mut name = name.trim_matches('-').to_owned();
    name.truncate(253);
    name.trim_end_matches('-').to_owned()
}

/// Whether `name` is a DNS label (`max` ≤ 63) or subdomain-style name made of such labels.
fn is_dns_name(name: &str, max: usize, dots: bool) -> bool {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    !name.is_empty()
        && name.len() <= max
        && if dots {
            name.split('.').all(label_ok)
        } else {
            label_ok(name)
        }
}

fn check_options(options: &Options) -> Result<(), Error> {
    // Branch names go into YAML (quoted) and object names: only names git accepts are taken.
    for branch in &options.branches {
        crate::git::check_ref_name(&GitRef::Branch(branch.clone())).map_err(|_| {
            Error::usage(format!(
                "--branch `{}` is not a branch name git accepts; give the branch as git names it",
                branch.escape_debug()
            ))
        })?;
    }
    if !is_dns_name(&options.namespace, 63, false) {
        return Err(Error::usage(format!(
            "--namespace `{}` is not a Kubernetes namespace name; use lowercase letters, digits and `-` (at most 63)",
            options.namespace.escape_debug()
        )));
    }
    let duration = regex::Regex::new(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
        .expect("the duration pattern is valid");
    if !duration.is_match(&options.interval) {
        return Err(Error::usage(format!(
            "--interval `{}` is not a Go duration; write it like 5m, 1h or 1m30s",
            options.interval.escape_debug()
        )));
    }
    if let Some(secret) = &options.secret_ref
        && !is_dns_name(secret, 253, true)
    {
        return Err(Error::usage(format!(
            "--secret-ref `{}` is not a Kubernetes secret name; use lowercase letters, digits, `-` and `.`",
            secret.escape_debug()
        )));
    }
    if let Some(prefix) = &options.name_prefix
        && (!is_dns_name(prefix, 200, false))
    {
        return Err(Error::usage(format!(
            "--name-prefix `{}` cannot start Kubernetes object names; use lowercase letters, digits and `-`, such as `{}`",
            prefix.escape_debug(),
            object_name(&[prefix])
        )));
    }
    Ok(())
}

/// A YAML single-quoted scalar: no escapes apply inside, so regular expressions keep their
/// backslashes, and a `'` is written twice.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The manifests as YAML documents, in a fixed order: repositories, then policies in the
/// order of the environments.
pub fn render(manifests: &Manifests) -> String {
    let mut out = String::new();
    let images: Vec<&str> = manifests
        .repositories
        .iter()
        .map(|r| r.image.as_str())
        .collect();
    let _ = writeln!(
        out,
        "# Flux image automation for {}, generated by `cargo gitops flux`.",
        images.join(", ")
    );
    out.push_str(
        "# Each ImagePolicy selects the newest tag of one environment and never another's.\n",
    );
    for repository in &manifests.repositories {
        out.push_str("---\n");
        let _ = writeln!(out, "apiVersion: {}", quote(API_VERSION));
        let _ = writeln!(out, "kind: {}", quote("ImageRepository"));
        metadata(&mut out, &repository.name, &manifests.namespace, &[]);
        out.push_str("spec:\n");
        let _ = writeln!(out, "  image: {}", quote(&repository.image));
        let _ = writeln!(out, "  interval: {}", quote(&manifests.interval));
        if let Some(secret) = &manifests.secret_ref {
            out.push_str("  secretRef:\n");
            let _ = writeln!(out, "    name: {}", quote(secret));
        }
        if repository.insecure {
            out.push_str("  insecure: true\n");
        }
    }
    for policy in &manifests.policies {
        out.push_str("---\n");
        let subject = match &policy.branch {
            Some(branch) => format!("{}, branch {branch}", policy.environment),
            None => policy.environment.clone(),
        };
        let rule = match &policy.filter.order {
            Order::Timestamp => "newest {timestamp}".to_owned(),
            Order::Semver { range } if range.contains('-') => {
                "highest pre-release of its channel".to_owned()
            }
            Order::Semver { .. } => "highest stable {version}".to_owned(),
        };
        let _ = writeln!(out, "# {subject}: {}, {rule}", policy.format);
        let _ = writeln!(out, "apiVersion: {}", quote(API_VERSION));
        let _ = writeln!(out, "kind: {}", quote("ImagePolicy"));
        let mut annotations = vec![("cargo-gitops/environment", policy.environment.as_str())];
        if let Some(branch) = &policy.branch {
            annotations.push(("cargo-gitops/branch", branch.as_str()));
        }
        metadata(&mut out, &policy.name, &manifests.namespace, &annotations);
        out.push_str("spec:\n");
        out.push_str("  imageRepositoryRef:\n");
        let _ = writeln!(out, "    name: {}", quote(&policy.repository));
        // Tags are immutable (sha and timestamp, or version), so the digest is read once.
        let _ = writeln!(out, "  digestReflectionPolicy: {}", quote("IfNotPresent"));
        out.push_str("  filterTags:\n");
        let _ = writeln!(out, "    pattern: {}", quote(&policy.filter.pattern));
        let _ = writeln!(out, "    extract: {}", quote(&policy.filter.extract()));
        out.push_str("  policy:\n");
        match &policy.filter.order {
            Order::Timestamp => {
                out.push_str("    numerical:\n");
                let _ = writeln!(out, "      order: {}", quote("asc"));
            }
            Order::Semver { range } => {
                out.push_str("    semver:\n");
                let _ = writeln!(out, "      range: {}", quote(range));
            }
        }
    }
    out
}

fn metadata(out: &mut String, name: &str, namespace: &str, annotations: &[(&str, &str)]) {
    out.push_str("metadata:\n");
    let _ = writeln!(out, "  name: {}", quote(name));
    let _ = writeln!(out, "  namespace: {}", quote(namespace));
    out.push_str("  labels:\n");
    let _ = writeln!(
        out,
        "    app.kubernetes.io/managed-by: {}",
        quote("cargo-gitops")
    );
    if !annotations.is_empty() {
        out.push_str("  annotations:\n");
        for (key, value) in annotations {
            let _ = writeln!(out, "    {key}: {}", quote(value));
        }
    }
}

/// The `image:` lines, with Flux's setter marker, that a deployment of `environment` carries:
/// one per policy of that environment.
pub fn markers(manifests: &Manifests, environment: &str) -> Result<Vec<String>, Error> {
    let lines: Vec<String> = manifests
        .policies
        .iter()
        .filter(|p| p.environment == environment)
        .map(|p| {
            let marker = format!(
                "# {{\"$imagepolicy\": \"{}:{}\"}}",
                manifests.namespace, p.name
            );
            match &p.latest_tag {
                Some(tag) => format!("image: {}:{tag} {marker}", p.image),
                None => marker,
            }
        })
        .collect();
    if !lines.is_empty() {
        return Ok(lines);
    }
    let known: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for p in &manifests.policies {
            if !seen.contains(&p.environment.as_str()) {
                seen.push(&p.environment);
            }
        }
        seen
    };
    Err(Error::usage(format!(
        "no policy for environment `{environment}`; policies exist for {} (environments that tag per branch need --branch)",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Environment {
        environment::defaults()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap()
    }

    #[test]
    fn default_patterns() {
        let dev = tag_filter(
            &env("development"),
            BranchChoice::Exact {
                branch: "feature/v1.2",
                name: "feature/v1.2",
            },
        )
        .unwrap();
        assert_eq!(
            dev.pattern,
            r"^dev-feature--v1\.2-(?P<sha>[0-9a-f]{7})-(?P<ts>[0-9]{10})$"
        );
        assert_eq!(dev.extract(), "$ts");
        let prod = tag_filter(&env("production"), BranchChoice::Any).unwrap();
        assert_eq!(
            prod.order,
            Order::Semver {
                range: ">=0.0.0".into()
            }
        );
        assert_eq!(prod.extract(), "$version");
        let alpha = tag_filter(&env("alpha"), BranchChoice::Any).unwrap();
        assert_eq!(
            alpha.order,
            Order::Semver {
                range: ">=0.0.0-alpha".into()
            }
        );
    }

    #[test]
    fn long_branches_are_cut_as_tags_are() {
        let long = "x".repeat(200);
        let filter = tag_filter(
            &env("development"),
            BranchChoice::Exact {
                branch: &long,
                name: &long,
            },
        )
        .unwrap();
        // What is cut keeps an 8-hex hash of the whole name: `-` and 8 characters.
        let kept = 128 - "dev-".len() - "-b4b9fda-1654880868".len() - 9;
        let hash = regex::Regex::new(&format!("dev-{}-[0-9a-f]{{8}}-", "x".repeat(kept))).unwrap();
        assert!(hash.is_match(&filter.pattern), "{}", filter.pattern);
        assert!(!filter.pattern.contains(&"x".repeat(kept + 1)));
    }

    #[test]
    fn object_names() {
        assert_eq!(
            object_name(&["gitops-demo-app", "testing", "uat1"]),
            "gitops-demo-app-testing-uat1"
        );
        assert_eq!(
            object_name(&["App", "development", "Feature/Login_x"]),
            "app-development-feature-login-x"
        );
        assert_eq!(object_name(&["--a", "", "b--"]), "a-b");
    }

    #[test]
    fn quoting_doubles_single_quotes() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote(r"^a\.b$"), r"'^a\.b$'");
    }
}
