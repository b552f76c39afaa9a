//! The Rust toolchain and the compile cache of a native build (`builder = "native"`) in a
//! generated pipeline: which Rust targets the runner installs, the script that installs them
//! with plain `rustup` (no third-party action), and what the cache keeps between runs, so that
//! a second run compiles only what changed.
//!
//! The targets are the musl ones of the configured platforms: the native build prefers a
//! musl target when it is installed (static by nature), so installing it decides the build.

use serde::Serialize;

use super::grammar;
use crate::config::{BuilderKind, Config};
use crate::error::Error;

/// The toolchain step's script. Values come from `env:`; what it prints for the cache key
/// (`release-commit` of rustc) is rustc's own, never configuration.
pub const SCRIPT: &str = r#"set -euo pipefail
# The repository's rust-toolchain file when it has one, else the stable toolchain.
if [ -f rust-toolchain.toml ] || [ -f rust-toolchain ]; then
  rustup toolchain install
else
  rustup toolchain install stable --profile minimal
  rustup default stable
fi
# No platforms configured: the image is for the runner's own architecture.
targets=${GITOPS_RUST_TARGETS:-}
if [ -z "$targets" ]; then
  case "$(uname -m)" in
    x86_64 | amd64) targets=x86_64-unknown-linux-musl ;;
    aarch64 | arm64) targets=aarch64-unknown-linux-musl ;;
    *) echo "::error::native builds make linux/amd64 and linux/arm64 images; set platforms in the configuration" >&2; exit 1 ;;
  esac
fi
for target in $targets; do
  rustup target add "$target"
done
release="$(rustc -vV | sed -n 's/^release: //p')"
commit="$(rustc -vV | sed -n 's/^commit-hash: //p' | cut -c1-12)"
echo "toolchain=$release-$commit" >>"$GITHUB_OUTPUT"
rustc --version
"#;

/// What cargo keeps between runs: downloaded crates and git dependencies (registry index and
/// sources are rebuilt from these), and the target folder with the compiled dependencies.
pub const CACHE_PATHS: [&str; 4] = [
    "~/.cargo/registry/index/",
    "~/.cargo/registry/cache/",
    "~/.cargo/git/db/",
    "target/",
];

/// A native build's toolchain and cache, ready for the templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Toolchain {
    /// The Rust targets, space-separated; empty means the runner's architecture.
    pub targets: String,
    /// The part of the cache key that names what the cache holds, before the toolchain.
    pub key_prefix: String,
    pub script: &'static str,
    pub paths: Vec<&'static str>,
}

/// The toolchain a native build needs, or `None` for the other builders.
pub fn plan(config: &Config) -> Result<Option<Toolchain>, Error> {
    if config.build.builder != Some(BuilderKind::Native) {
        return Ok(None);
    }
    let mut targets: Vec<&str> = Vec::new();
    for (index, platform) in config.build.platforms.iter().enumerate() {
        let target = musl_target(platform).ok_or_else(|| {
            grammar::refuse(
                &format!("platforms[{index}]"),
                platform,
                "a platform native builds make (linux/amd64 or linux/arm64); build others with builder = \"buildx\"",
            )
        })?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let targets = targets.join(" ");
    let key_targets = if targets.is_empty() {
        "host".to_owned()
    } else {
        targets.replace(' ', "+")
    };
    Ok(Some(Toolchain {
        key_prefix: format!("gitops-native-{key_targets}"),
        targets,
        script: SCRIPT,
        paths: CACHE_PATHS.to_vec(),
    }))
}

/// The GitLab job's compile cache: GitLab caches only paths inside the project, so the job's
/// `CARGO_HOME` is `.cargo` there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitlabCache {
    /// The cache key's prefix: the targets and the job image's digest (its toolchain), before
    /// the hash GitLab takes of the lock file.
    pub prefix: String,
    pub paths: Vec<&'static str>,
}

/// What the GitLab job of a native build caches, for a job image pinned by digest.
pub fn gitlab_cache(toolchain: &Toolchain, image: &str) -> GitlabCache {
    let digest = image
        .rsplit_once("@sha256:")
        .map_or("", |(_, hex)| &hex[..hex.len().min(12)]);
    GitlabCache {
        prefix: format!("{}-{digest}", toolchain.key_prefix),
        paths: vec![
            ".cargo/registry/index/",
            ".cargo/registry/cache/",
            ".cargo/git/db/",
            "target/",
        ],
    }
}

/// The musl target of an image platform, as the native build names platforms.
fn musl_target(platform: &str) -> Option<&'static str> {
    match platform {
        "linux/amd64" => Some("x86_64-unknown-linux-musl"),
        "linux/arm64" | "linux/arm64/v8" => Some("aarch64-unknown-linux-musl"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_give_musl_targets_and_others_are_refused() {
        assert_eq!(
            musl_target("linux/arm64/v8"),
            Some("aarch64-unknown-linux-musl")
        );
        assert_eq!(
            musl_target("linux/amd64"),
            Some("x86_64-unknown-linux-musl")
        );
        assert_eq!(musl_target("linux/s390x"), None);
        assert_eq!(musl_target("linux/amd64\nrm -rf /"), None);
    }

    #[test]
    fn github_expands_nothing_in_the_script() {
        assert!(!SCRIPT.contains("${{"));
    }
}
