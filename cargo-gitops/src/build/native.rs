//! Native image builds: a crate's binary compiled by cargo, statically linked, and packed into
//! an OCI image without a Dockerfile or a daemon (what `ko` does for Go). Platforms map to Rust
//! targets here; the image format and where it goes are `image`'s job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::build::image::{self, Base, Image, LayerFile, RunConfig};
use crate::error::{Error, quote_external};
use crate::process::Command;
use crate::registry::client::{Parsed, RegistryClient, Repository, Scope};
use crate::registry::oci::ImageConfig;
use crate::supply::crates::LinkedCrates;

/// The user native images run as (`nonroot` in distroless images).
pub const USER: &str = "65532";

/// What to compile and how to describe it.
#[derive(Debug, Clone)]
pub struct NativeSpec {
    /// The workspace's `Cargo.toml`.
    pub manifest: PathBuf,
    pub package: Option<String>,
    pub bin: Option<String>,
    /// `os/arch[/variant]`; empty means this machine's.
    pub platforms: Vec<String>,
    /// Every timestamp in the image: `SOURCE_DATE_EPOCH`, else the commit's time.
    pub epoch: u64,
    pub exposed_ports: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// A base image pinned by digest (`gcr.io/distroless/static@sha256:…`).
    pub base: Option<String>,
    /// Environment variables of the compile, as a Dockerfile's `ENV` before `cargo build`.
    pub build_env: BTreeMap<String, String>,
    /// Files and folders copied into the image: (the path on this machine, the path inside).
    pub include: Vec<(PathBuf, String)>,
    /// The image's working directory; `/` when not set.
    pub workdir: Option<String>,
    /// The entrypoint's arguments (`Cmd`).
    pub args: Vec<String>,
}

/// A Rust target that builds for an image platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub triple: String,
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

/// The platform of this machine, as images name it.
pub fn host_platform() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    }
}

/// Picks the installed Rust target for a platform: musl when installed (static by nature),
/// else glibc with `+crt-static`. `installed` lists the targets the toolchain has.
pub fn target_for(platform: &str, installed: &[String]) -> Result<Target, Error> {
    let (architecture, variant, arch) = match platform {
        "linux/amd64" => ("amd64", None, "x86_64"),
        "linux/arm64" | "linux/arm64/v8" => ("arm64", Some("v8"), "aarch64"),
        other => {
            return Err(Error::usage(format!(
                "platform `{other}` is not supported by native builds; use linux/amd64 or linux/arm64, or --build-with buildx"
            )));
        }
    };
    let candidates = [
        format!("{arch}-unknown-linux-musl"),
        format!("{arch}-unknown-linux-gnu"),
    ];
    let triple = candidates
        .iter()
        .find(|t| installed.contains(t))
        .ok_or_else(|| {
            Error::usage(format!(
                "platform {platform} needs the Rust target {}: run `rustup target add {}`",
                candidates[0], candidates[0]
            ))
        })?;
    Ok(Target {
        triple: triple.clone(),
        os: "linux",
        architecture,
        variant,
    })
}

/// The targets the active toolchain has libraries for.
pub fn installed_targets() -> Result<Vec<String>, Error> {
    let output = Command::new("rustc").args(["--print", "sysroot"]).run()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let rustlib = sysroot.join("lib").join("rustlib");
    Ok(std::fs::read_dir(&rustlib)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("lib").is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default())
}

/// The package and binary to pack, and where cargo puts build output.
#[derive(Debug, Clone)]
pub struct Binary {
    pub package: String,
    pub bin: String,
    pub target_dir: PathBuf,
    pub workspace_root: PathBuf,
    /// The compile's own environment variables (`build-env`).
    pub build_env: BTreeMap<String, String>,
}

/// Finds the binary through `cargo metadata`.
pub fn find_binary(spec: &NativeSpec) -> Result<Binary, Error> {
    let output = Command::new(&cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(spec.manifest.display().to_string())
        .run()?;
    let metadata = cargo_metadata::MetadataCommand::parse(String::from_utf8_lossy(&output.stdout))
        .map_err(|e| Error::Build {
            tool: "`cargo metadata`".to_owned(),
            message: format!(
                "its output is not the workspace's metadata ({e}); check that `cargo` is cargo 1.70 or later"
            ),
        })?;
    let packages = metadata.workspace_packages();
    let package = match &spec.package {
        Some(name) => packages
            .iter()
            .find(|p| p.name.as_str() == name.as_str())
            .ok_or_else(|| {
                Error::usage(format!(
                    "package `{name}` is not in the workspace; check -p"
                ))
            })?,
        None => match (metadata.root_package(), packages.as_slice()) {
            (Some(root), _) => root,
            (None, [only]) => only,
            (None, []) => {
                return Err(Error::usage(
                    "this workspace has no package to pack; add one with a binary target, or point --manifest-path at one",
                ));
            }
            (None, _) => {
                return Err(Error::usage(
                    "choose the package to pack with -p; this workspace has several",
                ));
            }
        },
    };
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.as_str())
        .collect();
    let bin = match (&spec.bin, bins.as_slice()) {
        (Some(bin), _) if bins.contains(&bin.as_str()) => bin.clone(),
        (Some(bin), _) => {
            return Err(Error::usage(format!(
                "package `{}` has no binary `{bin}`; it has: {}",
                package.name,
                bins.join(", ")
            )));
        }
        (None, [only]) => (*only).to_owned(),
        (None, []) => {
            return Err(Error::usage(format!(
                "package `{}` has no binary target; native builds pack a binary, so choose another package with -p",
                package.name
            )));
        }
        (None, many) => {
            return Err(Error::usage(format!(
                "package `{}` has several binaries ({}); set `bin` in the configuration",
                package.name,
                many.join(", ")
            )));
        }
    };
    Ok(Binary {
        package: package.name.to_string(),
        bin,
        target_dir: metadata.target_directory.into_std_path_buf(),
        workspace_root: metadata.workspace_root.into_std_path_buf(),
        build_env: spec.build_env.clone(),
    })
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The command that compiles `binary` for `target`: release, statically linked, with paths
/// of this machine remapped so two checkouts build the same bytes.
pub fn compile_command(binary: &Binary, target: &Target, manifest: &Path, epoch: u64) -> Command {
    compile(binary, target, epoch)
        .args(["build", "--release", "--manifest-path"])
        .arg(manifest.display().to_string())
        .args(selection(binary, target))
}

/// [`compile_command`] that also links `dependency_object` (`supply::auditable`), the
/// crates' list scanners read from the binary. `cargo rustc` passes the linker arguments to
/// the binary's own crate only: in RUSTFLAGS they would reach every crate, and a change of the
/// object's path would then rebuild them all, where here only the binary is linked again.
pub fn compile_command_embedding(
    binary: &Binary,
    target: &Target,
    manifest: &Path,
    epoch: u64,
    dependency_object: &Path,
) -> Command {
    compile(binary, target, epoch)
        .args(["rustc", "--release", "--manifest-path"])
        .arg(manifest.display().to_string())
        .args(selection(binary, target))
        .arg("--")
        .args(crate::supply::auditable::rustc_args(dependency_object))
}

/// Resolves the crates `binary` links for `target` and writes the object that embeds their
/// list beside cargo's output; returns the crates (for the SBOM, which lists the same ones)
/// and the object's path for [`compile_command_embedding`].
pub fn dependency_object(
    binary: &Binary,
    target: &Target,
    manifest: &Path,
) -> Result<(LinkedCrates, PathBuf), Error> {
    let crates = LinkedCrates::resolve(manifest, &binary.package, &target.triple)?;
    let dir = crate::supply::auditable::object_dir(&binary.target_dir, &target.triple);
    let object = crate::supply::auditable::write_object(&crates, &target.triple, &dir)?;
    Ok((crates, object))
}

fn selection<'a>(binary: &'a Binary, target: &'a Target) -> [&'a str; 6] {
    [
        "-p",
        binary.package.as_str(),
        "--bin",
        binary.bin.as_str(),
        "--target",
        target.triple.as_str(),
    ]
}

/// Cargo with the environment of a native compile: the flags and `SOURCE_DATE_EPOCH`.
fn compile(binary: &Binary, target: &Target, epoch: u64) -> Command {
    let cargo_home = std::env::var("CARGO_HOME")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|h| format!("{h}/.cargo")))
        .unwrap_or_default();
    let mut rustflags = vec!["-C target-feature=+crt-static".to_owned()];
    rustflags.push(format!(
        "--remap-path-prefix={}=/build",
        binary.workspace_root.display()
    ));
    if !cargo_home.is_empty() {
        rustflags.push(format!("--remap-path-prefix={cargo_home}=/cargo"));
    }
    // Target-scoped flags leave build scripts and proc macros (compiled for the host) alone,
    // but cargo ignores them when RUSTFLAGS is set: then ours join the user's, encoded.
    let user_flags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .ok()
        .filter(|f| !f.is_empty())
        .map(|f| f.split('\x1f').map(str::to_owned).collect::<Vec<_>>())
        .or_else(|| {
            std::env::var("RUSTFLAGS")
                .ok()
                .filter(|f| !f.trim().is_empty())
                .map(|f| f.split_whitespace().map(str::to_owned).collect())
        });
    let (variable, value) = match user_flags {
        Some(mut flags) => {
            flags.extend(rustflags.join(" ").split(' ').map(str::to_owned));
            ("CARGO_ENCODED_RUSTFLAGS".to_owned(), flags.join("\x1f"))
        }
        None => (
            format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                target.triple.to_uppercase().replace('-', "_")
            ),
            rustflags.join(" "),
        ),
    };
    let mut command = Command::new(&cargo());
    for (name, value) in &binary.build_env {
        command = command.env(name, value.clone());
    }
    command
        .env(&variable, value)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
}

/// Where cargo leaves the binary.
pub fn binary_path(binary: &Binary, target: &Target) -> PathBuf {
    binary
        .target_dir
        .join(&target.triple)
        .join("release")
        .join(&binary.bin)
}

/// Reads a base image pinned by digest, for one platform.
pub fn fetch_base(
    client: &RegistryClient,
    reference: &str,
    target: &Target,
) -> Result<Base, Error> {
    let (repository, digest) = reference
        .split_once('@')
        .filter(|(_, d)| d.starts_with("sha256:"))
        .ok_or_else(|| {
            Error::usage(format!(
                "base image `{reference}` is not pinned by digest; write REPOSITORY@sha256:…"
            ))
        })?;
    let repository = Repository::parse(repository)?;
    let scope = Scope::pull(&repository.name);
    let unreadable = |what: &str, e: serde_json::Error| Error::Registry {
        registry: repository.registry.clone(),
        step: "read base image".to_owned(),
        message: format!("not {what}: {}", quote_external(&e.to_string())),
    };
    let manifest = client.get_manifest(&repository.name, digest, &scope)?;
    let mut parsed = manifest
        .parse()
        .map_err(|e| unreadable("a JSON manifest", e))?;
    if let Parsed::Index(index) = &parsed {
        let child = index
            .for_platform(target.os, target.architecture)
            .ok_or_else(|| {
                Error::usage(format!(
                    "base image `{reference}` has no {}/{} image",
                    target.os, target.architecture
                ))
            })?;
        let manifest = client.get_manifest(&repository.name, &child.digest, &scope)?;
        parsed = manifest
            .parse()
            .map_err(|e| unreadable("a JSON manifest", e))?;
    }
    let Parsed::Image(image) = parsed else {
        return Err(Error::Registry {
            registry: repository.registry.clone(),
            step: "read base image".to_owned(),
            message: format!(
                "the {}/{} entry of base image `{reference}` is an index, not an image",
                target.os, target.architecture
            ),
        });
    };
    let bytes = client.get_blob(&repository.name, &image.config)?;
    let typed: ImageConfig =
        serde_json::from_slice(&bytes).map_err(|e| unreadable("an image config", e))?;
    if typed.rootfs.diff_ids.len() != image.layers.len() {
        return Err(Error::Registry {
            registry: repository.registry.clone(),
            step: "read base image".to_owned(),
            message: format!(
                "the config of base image `{reference}` lists {} layers and its manifest {}",
                typed.rootfs.diff_ids.len(),
                image.layers.len()
            ),
        });
    }
    let config = serde_json::from_slice(&bytes).map_err(|e| unreadable("an image config", e))?;
    Ok(Base {
        repository,
        config,
        layers: image.layers,
    })
}

/// Packs compiled binaries (one per target) into an image.
pub fn pack(
    spec: &NativeSpec,
    binary: &Binary,
    built: &[(Target, PathBuf)],
    base: &[Option<Base>],
) -> Result<Image, Error> {
    let created = crate::time::rfc3339(spec.epoch);
    let path_in_image = format!("usr/local/bin/{}", binary.bin);
    let run = RunConfig {
        entrypoint: vec![format!("/{path_in_image}")],
        cmd: spec.args.clone(),
        working_dir: spec.workdir.clone().unwrap_or_else(|| "/".to_owned()),
        user: USER.to_owned(),
        exposed_ports: spec.exposed_ports.clone(),
        env: spec.env.clone(),
        labels: spec.labels.clone(),
    };
    let mut included = Vec::new();
    for (from, to) in &spec.include {
        included_files(from, to.trim_start_matches('/'), &mut included)?;
    }
    let mut platforms = Vec::new();
    for ((target, path), base) in built.iter().zip(base) {
        let contents = std::fs::read(path).map_err(|source| Error::Read {
            what: path.display().to_string(),
            source,
        })?;
        let mut files = vec![LayerFile {
            path: path_in_image.clone(),
            contents,
            mode: 0o755,
        }];
        files.extend(included.iter().cloned());
        let layer = image::deterministic_layer(&files, spec.epoch)?;
        platforms.push(image::assemble(
            (target.os, target.architecture, target.variant),
            &run,
            layer,
            base.as_ref(),
            &created,
        ));
    }
    let base_repository = base.iter().flatten().next().map(|b| b.repository.clone());
    Ok(Image::new(platforms, base_repository))
}

/// What the final stage of a Dockerfile does that a native build does not do by itself, with
/// the key that carries each over: `ENV` (image-env, or build-env for the compile), `COPY` and
/// `ADD` of the repository's files (include), `RUN` (nothing: a native image has no shell
/// step), `WORKDIR` (workdir), `CMD` (args), `EXPOSE` (exposed-ports). A `COPY --from` of an
/// earlier stage is the binary, which the native build packs itself.
pub fn dockerfile_gaps(dockerfile: &str) -> Vec<String> {
    // Continuation lines joined, comments dropped, only the last stage kept.
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_stage = lines
        .iter()
        .rposition(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
        })
        .map_or(&lines[..], |at| &lines[at + 1..]);
    let mut gaps = Vec::new();
    for line in last_stage {
        let mut words = line.split_whitespace();
        let instruction = words.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = words.collect();
        let advice = match instruction.as_str() {
            "ENV" => "set it in image-env (or build-env, for the compile)",
            "COPY" | "ADD" if rest.iter().any(|w| w.starts_with("--from")) => continue,
            "COPY" | "ADD" => "list it in include = [{ from, to }]",
            "RUN" => "a native image runs no build step: do it before the build, or in the program",
            "WORKDIR" => "set workdir",
            "CMD" => "set args",
            "EXPOSE" => "set exposed-ports",
            "USER" => "native images run as user 65532",
            _ => continue,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let shown: String = words.join(" ").chars().take(60).collect();
        gaps.push(format!("`{}`: {advice}", grammar_safe(&shown)));
    }
    gaps
}

/// A Dockerfile line as it can be shown on one terminal line.
fn grammar_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The files under `from` (a file, or a folder walked in name order), each at its path under
/// `to` in the image: executable ones 0755, others 0644. A symbolic link is refused, since
/// its target may lie outside the repository.
fn included_files(from: &Path, to: &str, out: &mut Vec<LayerFile>) -> Result<(), Error> {
    let read_error = |source| Error::Read {
        what: format!("{} (include)", from.display()),
        source,
    };
    let meta = std::fs::symlink_metadata(from).map_err(read_error)?;
    if meta.file_type().is_symlink() {
        return Err(Error::usage(format!(
            "include: `{}` is a symbolic link; include what it points at instead",
            from.display()
        )));
    }
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(from)
            .map_err(read_error)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        entries.sort();
        for entry in entries {
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            included_files(&entry, &format!("{to}/{name}"), out)?;
        }
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt as _;
    let contents = std::fs::read(from).map_err(read_error)?;
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    out.push(LayerFile {
        path: to.to_owned(),
        contents,
        mode,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_stage_of_a_dockerfile_says_what_a_native_build_leaves_out() {
        let dockerfile = "FROM rust:1 AS builder\nENV SQLX_OFFLINE=true\nRUN cargo build --release\n\nFROM debian:12-slim\n# runtime\nWORKDIR /app\nRUN apt-get update \\\n && apt-get install -y ca-certificates\nCOPY --from=builder /target/release/app app\nCOPY configuration configuration\nENV APP_ENVIRONMENT=production\nEXPOSE 8000\nENTRYPOINT [\"./app\"]\n";
        let gaps = dockerfile_gaps(dockerfile);
        assert_eq!(gaps.len(), 5, "{gaps:#?}");
        assert!(
            gaps[0].starts_with("`WORKDIR /app`: set workdir"),
            "{gaps:#?}"
        );
        assert!(
            gaps[1].starts_with("`RUN apt-get update && apt-get install"),
            "{gaps:#?}"
        );
        assert!(gaps[2].contains("`COPY configuration configuration`: list it in include"));
        assert!(gaps[3].contains("`ENV APP_ENVIRONMENT=production`: set it in image-env"));
        assert!(gaps[4].contains("`EXPOSE 8000`: set exposed-ports"));
    }

    #[test]
    fn platforms_map_to_installed_targets() {
        let installed = vec!["x86_64-unknown-linux-gnu".to_owned()];
        let target = target_for("linux/amd64", &installed).unwrap();
        assert_eq!(
            (target.triple.as_str(), target.architecture),
            ("x86_64-unknown-linux-gnu", "amd64")
        );
        let with_musl = vec![
            "x86_64-unknown-linux-gnu".to_owned(),
            "x86_64-unknown-linux-musl".to_owned(),
        ];
        assert_eq!(
            target_for("linux/amd64", &with_musl).unwrap().triple,
            "x86_64-unknown-linux-musl"
        );
        let err = target_for("linux/arm64", &installed)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "platform linux/arm64 needs the Rust target aarch64-unknown-linux-musl: run `rustup target add aarch64-unknown-linux-musl`"
        );
        assert!(target_for("windows/amd64", &installed).is_err());
    }

    #[test]
    fn compile_command_is_static_and_remaps_paths() {
        let binary = Binary {
            package: "demo-app".into(),
            bin: "demo-app".into(),
            target_dir: "/w/target".into(),
            workspace_root: "/w".into(),
            build_env: BTreeMap::from([("SQLX_OFFLINE".to_owned(), "true".to_owned())]),
        };
        let target = target_for("linux/amd64", &["x86_64-unknown-linux-gnu".to_owned()]).unwrap();
        let command = compile_command(&binary, &target, Path::new("/w/Cargo.toml"), 1_654_880_868);
        let shown = command.display();
        assert!(shown.contains("SQLX_OFFLINE=true"), "{shown}");
        assert!(shown.contains("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS='-C target-feature=+crt-static --remap-path-prefix=/w=/build"), "{shown}");
        assert!(shown.contains("SOURCE_DATE_EPOCH=1654880868"), "{shown}");
        assert_eq!(
            command.argv(),
            [
                "build",
                "--release",
                "--manifest-path",
                "/w/Cargo.toml",
                "-p",
                "demo-app",
                "--bin",
                "demo-app",
                "--target",
                "x86_64-unknown-linux-gnu"
            ]
        );
        assert_eq!(
            binary_path(&binary, &target),
            Path::new("/w/target/x86_64-unknown-linux-gnu/release/demo-app")
        );
    }

    #[test]
    fn the_embedding_command_links_the_object_into_the_binary_only() {
        let binary = Binary {
            package: "demo-app".into(),
            bin: "demo-app".into(),
            target_dir: "/w/target".into(),
            workspace_root: "/w".into(),
            build_env: BTreeMap::new(),
        };
        let target = target_for("linux/amd64", &["x86_64-unknown-linux-gnu".to_owned()]).unwrap();
        let manifest = Path::new("/w/Cargo.toml");
        let plain = compile_command(&binary, &target, manifest, 1);
        let embedding =
            compile_command_embedding(&binary, &target, manifest, 1, Path::new("/w/dep.o"));
        // The same flags for every crate (no dependency rebuilt), the object after `--`.
        let shown = plain
            .display()
            .replacen(" build --release ", " rustc --release ", 1);
        assert!(embedding.display().starts_with(&shown), "{shown}");
        assert_eq!(embedding.argv()[0], "rustc");
        assert_eq!(plain.argv()[1..], embedding.argv()[1..10]);
        assert_eq!(
            embedding.argv()[10..],
            [
                "--",
                "-C",
                "link-arg=/w/dep.o",
                "-C",
                "link-arg=-Wl,--undefined=AUDITABLE_VERSION_INFO"
            ]
        );
    }
}
