//! Real parts for integration tests: Debian's `docker-registry` on a free loopback port with
//! storage in a temp dir (optionally behind htpasswd), or `olareg` (a registry with the OCI 1.1
//! referrers API) with storage in memory, either read back through its HTTP API and its
//! request log; podman on storage of its own; and fixture repositories whose Dockerfile is
//! `FROM scratch` plus a statically linked binary.

use std::io::Read;
use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::command::{TestCommand, no_logins};
use super::repo::{Dir, gitops_manifest};

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Which registry program serves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    /// Debian's `docker-registry` (distribution 2.8): no referrers API.
    Distribution,
    /// `olareg` (built by .ci/install-tools): the OCI 1.1 referrers API, `OCI-Subject` on a
    /// manifest PUT, `OCI-Filters-Applied: artifactType`; storage in memory.
    Olareg,
}

/// A running `docker-registry` or `olareg`, stopped when dropped.
pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    dir: Dir,
    htpasswd: Option<PathBuf>,
    server: Server,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_inner(None)
    }

    /// A registry that requires basic authentication (`htpasswd -B`).
    pub fn start_with_user(user: &str, password: &str) -> Registry {
        Registry::start_inner(Some((user, password)))
    }

    /// A registry with storage of its own on `port`, e.g. that of one just stopped: a fresh
    /// registry at the address a fixture's configuration already names.
    pub fn start_on(port: u16) -> Registry {
        let mut registry = Registry {
            child: None,
            port,
            dir: Dir::new(),
            htpasswd: None,
            server: Server::Distribution,
        };
        registry.restart();
        registry
    }

    /// `olareg serve --store-type mem` on a free loopback port: a registry with the OCI 1.1
    /// referrers API. Its requests (`-v trace`) go to its log, read by `requests`. A restart
    /// starts it empty: its storage is its memory.
    pub fn start_olareg() -> Registry {
        let mut registry = Registry {
            child: None,
            port: 0,
            dir: Dir::new(),
            htpasswd: None,
            server: Server::Olareg,
        };
        registry.restart();
        registry
    }

    fn start_inner(user: Option<(&str, &str)>) -> Registry {
        let dir = Dir::new();
        let htpasswd = user.map(|(user, password)| {
            let path = dir.join("htpasswd");
            let status = Command::new("htpasswd")
                .args(["-Bbc", path.to_str().unwrap(), user, password])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd (Debian apache2-utils) must be installed: .ci/test installs it");
            assert!(status.success());
            path
        });
        let mut registry = Registry {
            child: None,
            port: 0,
            dir,
            htpasswd,
            server: Server::Distribution,
        };
        registry.restart();
        registry
    }

    /// Starts (again) on a free port, or on the same port after a stop; storage is kept.
    pub fn restart(&mut self) {
        for _ in 0..5 {
            if self.port == 0 || self.child.is_some() {
                self.port = free_port();
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .unwrap();
            let mut command = match self.server {
                Server::Distribution => {
                    self.write_config();
                    let mut command = Command::new("docker-registry");
                    command.arg("serve").arg(self.dir.join("config.yml"));
                    command
                }
                Server::Olareg => {
                    let mut command = olareg();
                    command
                        .args(["serve", "--store-type", "mem", "--addr", "127.0.0.1"])
                        .args(["--port", &self.port.to_string(), "-v", "trace"])
                        // As the docker-registry config enables delete: tags can be removed.
                        .arg("--api-delete")
                        .current_dir(self.dir.path());
                    command
                }
            };
            let child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "{:?} must be installed (.ci/test installs it): {e}",
                        command.get_program()
                    )
                });
            self.child = Some(child);
            if self.wait_ready() {
                return;
            }
            self.stop();
            self.port = 0;
        }
        panic!(
            "{:?} did not start; see {}",
            self.server,
            self.log_path().display()
        );
    }

    fn write_config(&self) {
        let auth = match &self.htpasswd {
            Some(path) => format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                path.display()
            ),
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{auth}http:\n  addr: 127.0.0.1:{}\n",
            self.dir.join("data").display(),
            self.port
        );
        std::fs::write(self.dir.join("config.yml"), config).unwrap();
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && child.try_wait().unwrap().is_some()
            {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills the registry at once, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    /// The API requests in the access log, as `METHOD /path STATUS` (the path with its query,
    /// as sent), oldest first.
    pub fn requests(&self) -> Vec<String> {
        let mut bytes = Vec::new();
        std::fs::File::open(self.log_path())
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if self.server == Server::Olareg {
            return text.lines().filter_map(olareg_request).collect();
        }
        text.lines()
            .filter_map(|line| {
                let start = line
                    .find("\"HEAD ")
                    .or_else(|| line.find("\"GET "))
                    .or_else(|| line.find("\"PUT "))
                    .or_else(|| line.find("\"POST "))
                    .or_else(|| line.find("\"PATCH "))
                    .or_else(|| line.find("\"DELETE "))?;
                let rest = &line[start + 1..];
                let end = rest.find('"')?;
                let request = rest[..end].trim_end_matches(" HTTP/1.1");
                let status = rest[end + 1..].split_whitespace().next().unwrap_or("");
                Some(format!("{request} {status}"))
            })
            .collect()
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
    }

    fn authorise<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        auth: Option<(&str, &str)>,
    ) -> ureq::RequestBuilder<B> {
        match auth {
            Some((user, password)) => {
                use base64::Engine as _;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                request.header("Authorization", format!("Basic {token}"))
            }
            None => request,
        }
    }

    /// The tags of a repository, sorted, through `GET /v2/<name>/tags/list`.
    pub fn tags(&self, name: &str) -> Vec<String> {
        self.tags_as(name, None)
    }

    pub fn tags_as(&self, name: &str, auth: Option<(&str, &str)>) -> Vec<String> {
        let url = format!("http://{}/v2/{name}/tags/list?n=100000", self.host());
        let mut response = self.authorise(self.agent().get(&url), auth).call().unwrap();
        if response.status() == 404 {
            return Vec::new();
        }
        assert_eq!(response.status(), 200, "tags list of {name}");
        let json: serde_json::Value = response.body_mut().read_json().unwrap();
        let mut tags: Vec<String> = json["tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The digest of a tag, from the registry's `Docker-Content-Digest`, checked against the
    /// bytes it serves.
    pub fn digest(&self, name: &str, reference: &str) -> Option<String> {
        self.digest_as(name, reference, None)
    }

    pub fn digest_as(
        &self,
        name: &str,
        reference: &str,
        auth: Option<(&str, &str)>,
    ) -> Option<String> {
        let (bytes, _, header) = self.manifest_as(name, reference, auth)?;
        let computed = sha256(&bytes);
        assert_eq!(
            header, computed,
            "registry header and manifest bytes disagree"
        );
        Some(computed)
    }

    /// The manifest bytes, media type and header digest of a tag or digest.
    pub fn manifest(&self, name: &str, reference: &str) -> Option<(Vec<u8>, String, String)> {
        self.manifest_as(name, reference, None)
    }

    pub fn manifest_as(
        &self,
        name: &str,
        reference: &str,
        auth: Option<(&str, &str)>,
    ) -> Option<(Vec<u8>, String, String)> {
        let url = format!("http://{}/v2/{name}/manifests/{reference}", self.host());
        let mut response = self
            .authorise(
                self.agent().get(&url).header("Accept", MANIFEST_ACCEPT),
                auth,
            )
            .call()
            .unwrap();
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200, "manifest {name}:{reference}");
        let header = |n: &str| {
            response
                .headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let media_type = header("content-type");
        let digest = header("docker-content-digest");
        let bytes = response.body_mut().read_to_vec().unwrap();
        Some((bytes, media_type, digest))
    }

    /// The access log once it has stopped growing: the registry writes a line just after it
    /// answers, so a test that reads the log at once may miss the last request.
    pub fn settled_requests(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.requests();
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.requests();
            if now.len() == last.len() || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// The requests logged after the first `before` ones, once the log has stopped growing.
    pub fn requests_since(&self, before: usize) -> Vec<String> {
        self.settled_requests()[before..].to_vec()
    }

    /// The bytes of a blob, through `GET /v2/<name>/blobs/<digest>`, checked against it.
    pub fn blob(&self, name: &str, digest: &str) -> Vec<u8> {
        let url = format!("http://{}/v2/{name}/blobs/{digest}", self.host());
        let mut response = self.agent().get(&url).call().unwrap();
        assert_eq!(response.status(), 200, "blob {name}@{digest}");
        let bytes = response.body_mut().read_to_vec().unwrap();
        assert_eq!(sha256(&bytes), digest, "blob bytes and digest disagree");
        bytes
    }

    /// Uploads a blob to repository `name` in one request pair (POST, then PUT with the
    /// digest), as a client would (for set-up only); returns its digest.
    pub fn put_blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let base = format!("http://{}", self.host());
        let response = self
            .agent()
            .post(format!("{base}/v2/{name}/blobs/uploads/"))
            .send_empty()
            .unwrap();
        assert_eq!(response.status(), 202, "start upload");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .agent()
            .put(format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
        assert_eq!(response.status(), 201, "finish upload");
        digest
    }

    /// Stores `bytes` as a manifest under `reference`, as a client would (for set-up only).
    pub fn put_manifest(&self, name: &str, reference: &str, bytes: &[u8], media_type: &str) {
        let url = format!("http://{}/v2/{name}/manifests/{reference}", self.host());
        let response = self
            .agent()
            .put(&url)
            .header("Content-Type", media_type)
            .send(bytes)
            .unwrap();
        assert_eq!(response.status(), 201, "PUT manifest {name}:{reference}");
    }
}

/// `olareg` from the tools .ci/install-tools builds (`~/.cache/cargo-gitops-tools/bin`), else
/// from `PATH`.
fn olareg() -> Command {
    let built = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cache/cargo-gitops-tools/bin/olareg"))
        .filter(|path| path.is_file());
    Command::new(built.map_or_else(|| "olareg".into(), |path| path.into_os_string()))
}

/// One request of olareg's trace log (`msg=ServeHTTP … method=GET url=/v2/… status=200 …`)
/// as `METHOD /path STATUS`.
fn olareg_request(line: &str) -> Option<String> {
    if !line.contains("msg=ServeHTTP") {
        return None;
    }
    let field = |key: &str| -> Option<String> {
        let start = line.find(&format!(" {key}="))? + key.len() + 2;
        let rest = &line[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => return Some(value),
                    c => value.push(c),
                }
            }
            None
        } else {
            Some(rest.split(' ').next().unwrap_or("").to_owned())
        }
    };
    Some(format!(
        "{} {} {}",
        field("method")?,
        field("url")?,
        field("status")?
    ))
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A statically linked program, built once per test binary, to put in `FROM scratch` images.
pub fn static_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let dir = super::process_dir();
            let source = dir.join("hello.c");
            std::fs::write(
                &source,
                "#include <unistd.h>\nint main(void){write(1,\"hello\\n\",6);return 0;}\n",
            )
            .unwrap();
            let binary = dir.join("hello");
            let status = Command::new("cc")
                .args(["-static", "-Os", "-o"])
                .arg(&binary)
                .arg(&source)
                .status()
                .expect("a C compiler (cc) is needed for the fixture binary");
            assert!(status.success(), "cc -static failed");
            binary
        })
        .clone()
}

/// Writes a `FROM scratch` Dockerfile and the static binary it copies into `dir`.
fn write_scratch_image(dir: &Dir) {
    std::fs::copy(static_binary(), dir.join("hello")).unwrap();
    dir.create(
        "Dockerfile",
        "FROM scratch\nCOPY hello /hello\nUSER 65532\nENTRYPOINT [\"/hello\"]\n",
    );
}

/// A git repository whose image is `FROM scratch` plus a static binary, configured for a
/// registry, with one commit on `main`. It is a `Dir`: `git`, `head` and `path` are its own.
pub struct Fixture {
    pub repo: Dir,
    pub image: String,
}

impl Fixture {
    pub fn new(registry: &str, image: &str) -> Fixture {
        let repo = Dir::git_repo();
        write_scratch_image(&repo);
        repo.create("Cargo.toml", gitops_manifest(registry, image, ""));
        repo.commit("first");
        Fixture {
            repo,
            image: image.to_owned(),
        }
    }

    /// `cargo-gitops` in the fixture, outside any CI, with no login and podman on vfs storage.
    pub fn command(&self) -> TestCommand {
        let mut command = self.repo.command();
        command.timeout(Duration::from_secs(120));
        command
    }

    /// `cargo gitops build --retag-with RETAGGER` plus `args`, in the fixture.
    pub fn build(&self, retagger: &str, args: &[&str]) -> TestCommand {
        let mut command = self.command();
        command.args(["build", "--retag-with", retagger]).args(args);
        command
    }
}

impl Deref for Fixture {
    type Target = Dir;

    fn deref(&self) -> &Dir {
        &self.repo
    }
}

/// A `PATH` holding only the named programs (as links), to prove which ones a run uses.
pub fn path_with_only(programs: &[&str]) -> (Dir, String) {
    let dir = Dir::new();
    for program in programs {
        let found = which(program).unwrap_or_else(|| panic!("{program} must be installed"));
        std::os::unix::fs::symlink(found, dir.join(program)).unwrap();
    }
    let path = dir.path().display().to_string();
    (dir, path)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `command` under coreutils `timeout`: killed once it has run for `seconds`.
fn bounded(command: &Command, seconds: u64) -> Command {
    let mut bounded = Command::new("timeout");
    bounded
        .arg(seconds.to_string())
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        bounded.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => bounded.env(key, value),
            None => bounded.env_remove(key),
        };
    }
    bounded
}

/// Starts every command at once, each killed after `seconds`, and waits for them all;
/// returns their outputs in order.
pub fn run_together(commands: &[Command], seconds: u64) -> Vec<std::process::Output> {
    let children: Vec<Child> = commands
        .iter()
        .map(|command| {
            bounded(command, seconds)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a run")
        })
        .collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().expect("wait for a run"))
        .collect()
}

/// Runs a program with a time limit (coreutils `timeout`); panics with its output when it fails.
/// Returns its standard output.
pub fn run_bounded(command: &mut Command, seconds: u64) -> String {
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let output = bounded(command, seconds)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{program:?} {args:?} ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A folder holding a `FROM scratch` Dockerfile and the static binary: a build context.
pub fn scratch_context() -> Dir {
    let dir = Dir::new();
    write_scratch_image(&dir);
    dir
}

/// podman with storage of its own (vfs, in a temp dir), so tests running side by side share
/// no images, no locks and no manifest lists. Never pulls: images are `FROM scratch`.
pub struct Podman {
    dir: Dir,
}

impl Podman {
    pub fn new() -> Podman {
        Podman { dir: Dir::new() }
    }

    /// A `storage.conf` naming this storage, for `CONTAINERS_STORAGE_CONF`: a podman the tool
    /// runs then starts from nothing, as on a fresh CI runner.
    pub fn storage_conf(&self) -> PathBuf {
        let path = self.dir.join("storage.conf");
        let conf = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            self.dir.join("root").display(),
            self.dir.join("run").display()
        );
        std::fs::write(&path, conf).unwrap();
        path
    }

    /// `podman` with this storage; run it with `run_bounded`.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .env("STORAGE_DRIVER", "vfs")
            // No logins: the machine's own never leak in, and `--creds` is the only way to log in.
            .env("REGISTRY_AUTH_FILE", no_logins().1);
        command
    }

    /// Runs podman with `args` (at most two minutes); returns its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        run_bounded(self.command().args(args), 120)
    }

    /// Builds `context` as `image` (`localhost/NAME:TAG`), for `platform` when given.
    pub fn build(&self, context: &Path, image: &str, platform: Option<&str>) {
        self.build_labelled(context, image, platform, &[]);
    }

    /// `build`, the image labelled with `labels` (`KEY=VALUE`).
    pub fn build_labelled(
        &self,
        context: &Path,
        image: &str,
        platform: Option<&str>,
        labels: &[String],
    ) {
        let mut args = vec!["build", "-q", "--no-cache", "-t", image];
        if let Some(platform) = platform {
            args.extend(["--platform", platform]);
        }
        for label in labels {
            args.extend(["--label", label.as_str()]);
        }
        args.push(context.to_str().unwrap());
        self.run(&args);
    }

    /// Pushes a local image to `destination` (`HOST/NAME:TAG`) over plain HTTP, in `format`
    /// (`v2s2` or `oci`), logging in with `creds` (`user:password`) when given.
    pub fn push(&self, image: &str, destination: &str, format: &str, creds: Option<&str>) {
        let mut args = vec!["push", "-q", "--tls-verify=false", "--format", format];
        if let Some(creds) = creds {
            args.extend(["--creds", creds]);
        }
        args.extend([image, destination]);
        self.run(&args);
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}
