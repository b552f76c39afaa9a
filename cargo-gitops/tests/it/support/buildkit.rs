//! A BuildKit daemon of the test's own behind a docker buildx builder: `buildkitd` on a unix
//! socket in a temp dir (nothing listens on the network), and a `remote` buildx builder with a
//! unique name pointing at it, kept in a `DOCKER_CONFIG` of its own that holds no login and
//! the buildx plugin. The
//! builder is removed and the daemon killed when the value is dropped.
//!
//! One daemon per test that needs it: it starts in about a second, and a daemon held in a
//! static would outlive the test process (statics are never dropped).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::registry::run_bounded;
use super::repo::Dir;

/// How long the daemon may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `buildkitd` and the buildx builder that reaches it.
pub struct Buildkit {
    child: Option<Child>,
    dir: Dir,
    name: String,
}

impl Buildkit {
    /// Starts `buildkitd` (from PATH; `.ci/test` puts the pinned one there, and its OCI worker
    /// needs `runc`), waits for its socket, and creates the builder.
    pub fn start() -> Buildkit {
        let dir = Dir::new();
        let log = std::fs::File::create(dir.join("buildkitd.log")).unwrap();
        let child = Command::new("buildkitd")
            .arg("--addr")
            .arg(format!("unix://{}", dir.join("buildkitd.sock").display()))
            .arg("--root")
            .arg(dir.join("root"))
            // Copies instead of overlay mounts: works whatever the temp dir is on (overlay
            // inside a container), and the fixture images are tiny.
            .args(["--oci-worker-snapshotter", "native"])
            .args(["--containerd-worker", "false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("buildkitd must be on PATH: .ci/test builds it (.ci/install-tools)");
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cargo-gitops-test-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let mut buildkit = Buildkit {
            child: Some(child),
            dir,
            name,
        };
        buildkit.wait_ready();
        link_buildx_plugin(&buildkit.docker_config());
        run_bounded(
            buildkit
                .docker()
                .args(["buildx", "create", "--driver", "remote", "--name"])
                .arg(&buildkit.name)
                .arg(buildkit.endpoint()),
            60,
        );
        buildkit
    }

    fn wait_ready(&mut self) {
        let socket = self.socket();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(&socket).is_ok() {
                return;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                self.stop();
                panic!(
                    "buildkitd did not answer on {} ({}):\n{}",
                    socket.display(),
                    match exited {
                        Some(status) => format!("it exited, {status}"),
                        None => format!("not within {START_TIMEOUT:?}"),
                    },
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("buildkitd.sock")
    }

    /// The daemon's address, `unix:///…/buildkitd.sock`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The builder's name, for `BUILDX_BUILDER` or `--builder`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `DOCKER_CONFIG` the builder is stored in (and no login): a run that uses the builder
    /// needs it.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.join("docker-config")
    }

    /// What the daemon has logged, to explain a failure.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("buildkitd.log")).unwrap_or_default()
    }

    /// `docker` with this builder's configuration.
    fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_CONFIG", self.docker_config());
        command
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Links the buildx plugin into `docker_config`'s `cli-plugins`, where the docker CLI looks
/// first: the plugin is found whatever is installed machine-wide. It is the `buildx` on PATH
/// (`.ci/install-tools` builds it), else a machine-wide `docker-buildx`.
pub(super) fn link_buildx_plugin(docker_config: &Path) {
    let plugins = docker_config.join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("buildx"));
    let machine_wide = [
        "/usr/local/lib/docker/cli-plugins",
        "/usr/libexec/docker/cli-plugins",
    ]
    .into_iter()
    .map(|dir| Path::new(dir).join("docker-buildx"));
    let plugin = on_path
        .chain(machine_wide)
        .find(|p| p.is_file())
        .expect("docker buildx must be installed: .ci/test builds it (.ci/install-tools)");
    std::os::unix::fs::symlink(plugin, plugins.join("docker-buildx")).unwrap();
}

impl Drop for Buildkit {
    fn drop(&mut self) {
        // Remove the builder while its daemon still answers; never fail a test from a drop.
        let _ = Command::new("timeout")
            .arg("30")
            .arg("docker")
            .args(["buildx", "rm", "--force", self.name.as_str()])
            .env("DOCKER_CONFIG", self.docker_config())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        self.stop();
    }
}
