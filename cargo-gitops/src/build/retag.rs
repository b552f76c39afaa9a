//! Retaggers: finding an image by its lookup tag and giving it more tags without rebuilding,
//! digest kept byte for byte — with `crane`, `docker buildx imagetools`, `skopeo`, or the
//! built-in registry client. The HTTP side of the built-in one lives in `registry`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::RetaggerKind;
use crate::error::{Error, quote_external};
use crate::process::{Command, on_path};
use crate::registry::client::{
    ClientOptions, Digest, RegistryClient, Repository, Scope, is_plain_http,
};
use crate::registry::credentials::{self, Credential};

/// `crane` when it is installed, otherwise the built-in client.
pub fn default_retagger() -> RetaggerKind {
    if on_path("crane") {
        RetaggerKind::Crane
    } else {
        RetaggerKind::Builtin
    }
}

/// A retagger with its settings and, for the built-in one, a client per registry.
pub struct Retagger {
    pub kind: RetaggerKind,
    options: ClientOptions,
    explicit_credential: Option<Credential>,
    clients: std::sync::Mutex<HashMap<String, Arc<RegistryClient>>>,
}

impl Retagger {
    pub fn new(
        kind: RetaggerKind,
        options: ClientOptions,
        explicit_credential: Option<Credential>,
    ) -> Retagger {
        Retagger {
            kind,
            options,
            explicit_credential,
            clients: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The built-in client for a registry, made once.
    pub fn client(&self, registry: &str) -> Result<Arc<RegistryClient>, Error> {
        let mut clients = self.clients.lock().expect("client cache lock");
        if let Some(client) = clients.get(registry) {
            return Ok(client.clone());
        }
        let credential = credentials::for_registry(registry, self.explicit_credential.as_ref())?;
        let client = Arc::new(RegistryClient::new(registry, credential, &self.options));
        clients.insert(registry.to_owned(), client.clone());
        Ok(client)
    }

    /// Requests the built-in clients have sent so far.
    pub fn request_count(&self) -> u32 {
        self.clients
            .lock()
            .expect("client cache lock")
            .values()
            .map(|c| c.request_count())
            .sum()
    }

    fn plain_http(&self, repository: &Repository) -> bool {
        is_plain_http(&repository.registry, &self.options.insecure_registries)
    }

    /// The command that looks up `tag`, or `None` for the built-in client.
    pub fn lookup_command(&self, repository: &Repository, tag: &str) -> Option<Command> {
        let image = repository.with_tag(tag);
        match self.kind {
            RetaggerKind::Crane => Some(
                self.crane_flags(Command::new("crane").arg("digest"), repository)
                    .arg(image),
            ),
            RetaggerKind::Imagetools => Some(
                Command::new("docker")
                    .args([
                        "buildx",
                        "imagetools",
                        "inspect",
                        "--format",
                        "{{json .Manifest}}",
                    ])
                    .arg(image),
            ),
            RetaggerKind::Skopeo => {
                let mut command = Command::new("skopeo").args(["inspect", "--raw"]);
                if self.plain_http(repository) {
                    command = command.arg("--tls-verify=false");
                }
                Some(command.arg(format!("docker://{image}")))
            }
            RetaggerKind::Builtin => None,
        }
    }

    /// The digest `tag` points at, or `None` when there is no such tag.
    pub fn lookup(&self, repository: &Repository, tag: &str) -> Result<Option<String>, Error> {
        let Some(command) = self.lookup_command(repository, tag) else {
            let client = self.client(&repository.registry)?;
            let digest =
                client.manifest_digest(&repository.name, tag, &Scope::pull(&repository.name))?;
            return Ok(digest.map(String::from));
        };
        let output = match command.run().map_err(|e| explain(&command, e)) {
            Ok(output) => output,
            Err(Error::CommandFailed { output, .. }) if says_not_found(&output) => return Ok(None),
            Err(err) => return Err(err),
        };
        let unreadable = |detail: String| Error::Registry {
            registry: repository.registry.clone(),
            step: "lookup".to_owned(),
            message: format!(
                "cannot read the digest {} printed: {detail}",
                match self.kind {
                    RetaggerKind::Imagetools => "docker buildx imagetools",
                    kind => kind.program().unwrap_or("the retagger"),
                }
            ),
        };
        let digest = match self.kind {
            // `--raw` prints the manifest exactly as stored, so its hash is the digest.
            RetaggerKind::Skopeo => Digest::of(&output.stdout),
            RetaggerKind::Imagetools => {
                #[derive(Deserialize)]
                struct Inspected {
                    digest: Digest,
                }
                serde_json::from_slice::<Inspected>(&output.stdout)
                    .map(|m| m.digest)
                    .map_err(|e| unreadable(quote_external(&e.to_string())))?
            }
            _ => Digest::parse(String::from_utf8_lossy(&output.stdout).trim())
                .map_err(|e| unreadable(e.to_string()))?,
        };
        Ok(Some(digest.into()))
    }

    /// The commands that give `digest` (in `source`) the `tags` in `target`; empty for the
    /// built-in client, which speaks to the registry itself.
    pub fn retag_commands(
        &self,
        source: &Repository,
        digest: &str,
        target: &Repository,
        tags: &[String],
    ) -> Vec<Command> {
        let from = source.with_digest(digest);
        match self.kind {
            RetaggerKind::Crane if source == target => tags
                .iter()
                .map(|tag| {
                    self.crane_flags(Command::new("crane").arg("tag"), target)
                        .args([from.clone(), tag.clone()])
                })
                .collect(),
            RetaggerKind::Crane => tags
                .iter()
                .map(|tag| {
                    self.crane_flags(Command::new("crane").arg("copy"), target)
                        .args([from.clone(), target.with_tag(tag)])
                })
                .collect(),
            RetaggerKind::Imagetools => {
                let mut command = Command::new("docker").args([
                    "buildx",
                    "imagetools",
                    "create",
                    "--prefer-index=false",
                ]);
                for tag in tags {
                    command = command.args(["--tag".to_owned(), target.with_tag(tag)]);
                }
                vec![command.arg(from)]
            }
            RetaggerKind::Skopeo => tags
                .iter()
                .map(|tag| {
                    let mut command =
                        Command::new("skopeo").args(["copy", "--all", "--preserve-digests"]);
                    if self.plain_http(source) {
                        command = command.arg("--src-tls-verify=false");
                    }
                    if self.plain_http(target) {
                        command = command.arg("--dest-tls-verify=false");
                    }
                    command.args([
                        format!("docker://{from}"),
                        format!("docker://{}", target.with_tag(tag)),
                    ])
                })
                .collect(),
            RetaggerKind::Builtin => Vec::new(),
        }
    }

    /// What the built-in client sends to look `tag` up: one request.
    pub fn builtin_lookup_request(repository: &Repository, tag: &str) -> String {
        format!(
            "HEAD {}/v2/{}/manifests/{tag}",
            repository.registry, repository.name
        )
    }

    /// What the built-in client does in `retag`, one line per request (or group of blob
    /// requests, whose digests only the manifest names), in order.
    pub fn builtin_retag_requests(
        source: &Repository,
        digest: &str,
        target: &Repository,
        tags: &[String],
    ) -> Vec<String> {
        let manifest = |repository: &Repository, reference: &str| {
            format!(
                "{}/v2/{}/manifests/{reference}",
                repository.registry, repository.name
            )
        };
        let mut lines = vec![format!("GET {}", manifest(source, digest))];
        if source != target {
            lines.push(format!(
                "copy each manifest and blob it names into {target} (HEAD, then mount or upload what is missing)"
            ));
            lines.push(format!("PUT {}", manifest(target, digest)));
        }
        lines.extend(
            tags.iter()
                .map(|tag| format!("PUT {}", manifest(target, tag))),
        );
        lines
    }

    /// Gives the image `digest` of `source` every tag in `tags` in `target`, keeping the digest.
    /// Across repositories the image's content is brought over first (mounted or streamed),
    /// so no tag ever points at an incomplete image.
    pub fn retag(
        &self,
        source: &Repository,
        digest: &str,
        target: &Repository,
        tags: &[String],
    ) -> Result<(), Error> {
        // An image is retagged by its digest only; an empty or partial one (a builder's digest
        // file left empty) is an error here, not a tag lookup.
        let parsed = Digest::parse(digest).map_err(|e| Error::Registry {
            registry: source.registry.clone(),
            step: "retag".to_owned(),
            message: format!("cannot retag: {e}"),
        })?;
        let digest = parsed.as_str();
        if self.kind != RetaggerKind::Builtin {
            for command in self.retag_commands(source, digest, target, tags) {
                command.run().map_err(|e| explain(&command, e))?;
            }
            return Ok(());
        }
        let target_client = self.client(&target.registry)?;
        let source_client = self.client(&source.registry)?;
        let scope = if source == target {
            Scope::push(&target.name)
        } else {
            Scope::pull(&source.name)
        };
        let manifest = source_client.get_manifest(&source.name, digest, &scope)?;
        if source != target {
            target_client.copy_image(&source_client, &source.name, &manifest, &target.name)?;
        }
        let push = Scope::push(&target.name);
        for tag in tags {
            target_client.put_manifest(&target.name, tag, &manifest, &push)?;
        }
        Ok(())
    }

    fn crane_flags(&self, command: Command, repository: &Repository) -> Command {
        if self.plain_http(repository) {
            command.arg("--insecure")
        } else {
            command
        }
    }
}

/// What to do when the retagger's program is missing: another retagger, not another builder.
fn retagger_hint(program: &str) -> String {
    match program {
        "docker" => "install Docker with the buildx plugin (https://docs.docker.com/go/buildx/), or use --retag-with builtin (or crane, skopeo)".to_owned(),
        other => crate::process::install_hint(other),
    }
}

/// A retagger's failure as what it means: a missing program or buildx plugin names the
/// retaggers to use instead. Anything else is kept as is.
fn explain(command: &Command, error: Error) -> Error {
    match &error {
        Error::ToolMissing { tool, .. } => Error::ToolMissing {
            tool: tool.clone(),
            hint: retagger_hint(tool),
        },
        Error::CommandFailed { output, .. }
            if crate::build::builder::says_buildx_is_missing(command, output) =>
        {
            Error::ToolMissing {
                tool: "docker buildx".to_owned(),
                hint: "docker has no buildx plugin (it answers `docker buildx` with its own usage, e.g. `unknown flag: --format`); install the plugin (https://docs.docker.com/go/buildx/), or use --retag-with builtin (or crane, skopeo)".to_owned(),
            }
        }
        _ => error,
    }
}

/// Whether a tool's error output says the tag or repository does not exist.
fn says_not_found(output: &str) -> bool {
    // Only the registry's own codes (as crane and skopeo relay them) and imagetools' exact
    // wording: a proxy's 404 page or a missing helper must fail, not trigger a rebuild.
    let lower = output.to_lowercase();
    [
        "manifest unknown",
        "manifest_unknown",
        "name unknown",
        "name_unknown",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
        || output
            .lines()
            .any(|line| line.starts_with("ERROR: ") && line.ends_with(": not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retagger(kind: RetaggerKind) -> Retagger {
        Retagger::new(kind, ClientOptions::default(), None)
    }

    fn repo(text: &str) -> Repository {
        Repository::parse(text).unwrap()
    }

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn crane_argv() {
        let r = retagger(RetaggerKind::Crane);
        let app = repo("ghcr.io/o/app");
        assert_eq!(
            r.lookup_command(&app, "commit-abc").unwrap().argv(),
            ["digest", "ghcr.io/o/app:commit-abc"]
        );
        let commands = r.retag_commands(
            &app,
            DIGEST,
            &app,
            &["prd-1.0.0".into(), "prd-latest".into()],
        );
        let argvs: Vec<Vec<&str>> = commands.iter().map(|c| c.argv()).collect();
        assert_eq!(
            argvs,
            [
                vec!["tag", &format!("ghcr.io/o/app@{DIGEST}"), "prd-1.0.0"],
                vec!["tag", &format!("ghcr.io/o/app@{DIGEST}"), "prd-latest"],
            ]
        );
        let local = repo("127.0.0.1:5000/app");
        let copy = r.retag_commands(
            &repo("127.0.0.1:5000/app-staging"),
            DIGEST,
            &local,
            &["prd-1.0.0".into()],
        );
        assert_eq!(
            copy[0].argv(),
            [
                "copy",
                "--insecure",
                &format!("127.0.0.1:5000/app-staging@{DIGEST}"),
                "127.0.0.1:5000/app:prd-1.0.0"
            ]
        );
    }

    #[test]
    fn imagetools_argv_keeps_the_manifest() {
        let r = retagger(RetaggerKind::Imagetools);
        let app = repo("ghcr.io/o/app");
        let commands = r.retag_commands(
            &app,
            DIGEST,
            &app,
            &["prd-1.0.0".into(), "prd-latest".into()],
        );
        assert_eq!(commands.len(), 1);
        assert_eq!(
            commands[0].argv(),
            [
                "buildx",
                "imagetools",
                "create",
                "--prefer-index=false",
                "--tag",
                "ghcr.io/o/app:prd-1.0.0",
                "--tag",
                "ghcr.io/o/app:prd-latest",
                &format!("ghcr.io/o/app@{DIGEST}"),
            ]
        );
        assert_eq!(
            r.lookup_command(&app, "commit-abc").unwrap().argv(),
            [
                "buildx",
                "imagetools",
                "inspect",
                "--format",
                "{{json .Manifest}}",
                "ghcr.io/o/app:commit-abc"
            ]
        );
    }

    #[test]
    fn skopeo_argv() {
        let r = retagger(RetaggerKind::Skopeo);
        let app = repo("localhost:5000/app");
        assert_eq!(
            r.lookup_command(&app, "t").unwrap().argv(),
            [
                "inspect",
                "--raw",
                "--tls-verify=false",
                "docker://localhost:5000/app:t"
            ]
        );
        let commands = r.retag_commands(&app, DIGEST, &app, &["a".into()]);
        assert_eq!(
            commands[0].argv(),
            [
                "copy",
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://localhost:5000/app@{DIGEST}"),
                "docker://localhost:5000/app:a",
            ]
        );
    }

    #[test]
    fn a_retag_needs_a_well_formed_digest() {
        let r = retagger(RetaggerKind::Builtin);
        let app = repo("127.0.0.1:9/app");
        for bad in ["", "sha256:abc", "latest"] {
            let err = r
                .retag(&app, bad, &app, &["a".into()])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("127.0.0.1:9: retag failed: cannot retag: `"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn not_found_messages() {
        assert!(says_not_found(
            "Error: reading manifest commit-x in 127.0.0.1:5000/app: manifest unknown"
        ));
        assert!(says_not_found(
            "MANIFEST_UNKNOWN: manifest unknown; map[Tag:commit-x]"
        ));
        assert!(says_not_found(
            "ERROR: 127.0.0.1:5000/app:commit-x: not found"
        ));
        assert!(!says_not_found("connection refused"));
        assert!(!says_not_found(
            "unexpected status from proxy: 404 Not Found"
        ));
        assert!(!says_not_found(
            "docker-credential-gcloud: not found in PATH"
        ));
    }
}
