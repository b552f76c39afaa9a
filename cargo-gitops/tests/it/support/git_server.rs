//! A real git server on loopback: `git-daemon` with pushes enabled (`--enable=receive-pack`),
//! serving the bare repositories of a temporary folder on `127.0.0.1` and a free port. It lives
//! as long as the value (dropping it ends the daemon), and each connection it serves times out.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::registry::free_port;
use super::repo::{Dir, git_in};

pub struct GitServer {
    child: Child,
    port: u16,
    base: Dir,
}

impl GitServer {
    pub fn start() -> GitServer {
        let base = Dir::new();
        let port = free_port();
        // git-daemon itself, not `git daemon`: the `git` wrapper would start it as a child of
        // its own, which killing the wrapper leaves running.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("run git --exec-path");
        let exec_path = String::from_utf8(exec_path.stdout).unwrap();
        let child = Command::new(std::path::Path::new(exec_path.trim()).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
                "--timeout=30",
                "--init-timeout=10",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.path().display()),
                &base.path().display().to_string(),
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        GitServer { child, port, base }
    }

    /// `git://127.0.0.1:PORT/NAME.git`.
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }

    /// The bare repository's folder.
    pub fn git_dir(&self, name: &str) -> std::path::PathBuf {
        self.base.join(format!("{name}.git"))
    }

    /// Creates bare repository `NAME.git` whose `main` holds `files`, in one commit.
    pub fn create(&self, name: &str, files: &[(&str, &str)]) {
        let work = Dir::git_repo();
        for (path, contents) in files {
            work.create(path, contents);
        }
        work.commit("manifests");
        git_in(
            self.base.path(),
            ["init", "--quiet", "--bare", &format!("{name}.git")],
        );
        // Like a protected branch: a forced push would be refused, so none can slip through.
        git_in(
            &self.git_dir(name),
            ["config", "receive.denyNonFastForwards", "true"],
        );
        git_in(
            work.path(),
            ["push", "--quiet", &self.url(name), "main:main"],
        );
        git_in(
            &self.git_dir(name),
            ["symbolic-ref", "HEAD", "refs/heads/main"],
        );
    }

    /// `git` in the bare repository; stdout, trimmed.
    pub fn git<const N: usize>(&self, name: &str, args: [&str; N]) -> String {
        git_in(&self.git_dir(name), args)
    }

    /// The commit `main` is at.
    pub fn head(&self, name: &str) -> String {
        self.git(name, ["rev-parse", "main"])
    }

    /// A file as `main` has it, byte for byte.
    pub fn file(&self, name: &str, path: &str) -> String {
        let output = Command::new("git")
            .arg("--git-dir")
            .arg(self.git_dir(name))
            .args(["show", &format!("main:{path}")])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("run git show");
        assert!(output.status.success(), "no {path} on main of {name}");
        String::from_utf8(output.stdout).expect("UTF-8")
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
