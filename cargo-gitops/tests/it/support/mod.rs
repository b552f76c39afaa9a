//! Test support shared by every integration test, in the manner of ripgrep's `tests/util.rs`:
//! temporary directories and git repositories made with the real `git` command line (`repo`),
//! the command under test run in them with a scrubbed environment, with its JSON and its error
//! lines read back (`command`), and the real parts some tests need: Debian's `docker-registry`,
//! podman on storage of its own, and fixture repositories whose image is `FROM scratch`
//! (`registry`); BuildKit behind a docker buildx builder (`buildkit`); a fault-injecting proxy
//! in front of a registry (`proxy`); a `git daemon` that takes pushes (`git_server`); and tiny HTTP servers that record what reaches them and
//! answer as told (`fake`).
//!
//! The one test binary (`tests/it/main.rs`) declares it once; every test module uses it.

mod buildkit;
mod command;
mod fake;
mod git_server;
mod proxy;
mod registry;
mod repo;

pub use buildkit::Buildkit;
pub use command::{TestCommand, docker_config_with_buildx, json, printed};
pub use fake::{Recorded, Stub, answer};
pub use git_server::GitServer;
pub use proxy::{Fault, Proxy};
pub use registry::{
    Fixture, Podman, Registry, free_port, path_with_only, run_bounded, run_together,
    scratch_context, sha256, static_binary,
};
pub use repo::{Dir, git_in, gitops_manifest};

use std::path::{Path, PathBuf};

/// A directory of this test process's own, kept for its whole run, for what is made once and
/// shared by every test in it (the static binary, the empty logins).
fn process_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cargo-gitops-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the test process's directory");
        dir
    })
}
