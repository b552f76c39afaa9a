//! End-to-end checks of the built demo-app binary: HTTP answers over loopback, shutdown on
//! SIGTERM/SIGINT, the one-line failures for a taken port or a bad setting, and staying up
//! when the environment is hostile (no file descriptors left, a malformed tokio variable).
//!
//! The client is a raw `TcpStream` on purpose: it shows exactly which bytes the server sent
//! (a HEAD answer must carry no body at all), and it needs no dependency.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Upper bound on every wait, so a hung server fails the test instead of the whole run.
const DEADLINE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(5);

/// The binary under test, killed and reaped on drop whatever happened to the test.
struct Proc {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    /// Each stderr line as it arrives, for reading the start-up line before the exit.
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(env: &[(&str, &str)]) -> Self {
        Self::spawn_limited(env, None)
    }

    /// Like `spawn`, with file descriptor numbers capped below `fd_limit` if given.
    fn spawn_limited(env: &[(&str, &str)], fd_limit: Option<libc::rlim_t>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_demo-app"));
        if let Some(limit) = fd_limit {
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: the closure runs between fork and exec, where only async-signal-safe
            // calls are allowed; it calls setrlimit(2) and reads errno, and allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .env_clear()
            // Were anything to panic, the output would carry a backtrace: the assertions
            // that stderr is one line without "panicked" would then fail loudly.
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn demo-app");
        let pipe = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(pipe).lines() {
                let line = line.expect("read demo-app stderr");
                text.push_str(&line);
                text.push('\n');
                // The receiver may be gone (the test no longer listens); the text is kept.
                let _ = sender.send(line);
            }
            text
        });
        Self {
            child,
            stderr: Some(stderr),
            lines,
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions. The child is not reaped
        // until `wait_exit` or drop, so its pid cannot yet belong to another process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits (bounded) for the process to exit; returns its status and everything it wrote
    /// to stderr.
    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "demo-app still running after {DEADLINE:?}"
            );
            thread::sleep(POLL);
        };
        let stderr = self.stderr.take().expect("stderr already collected");
        (status, stderr.join().expect("stderr reader"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A demo-app serving on a loopback port, ready to answer.
struct Server {
    proc: Proc,
    port: u16,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[("HOST", "127.0.0.1")], None)
    }

    /// Starts demo-app with `env` besides `PORT`, and its file descriptors capped by
    /// `fd_limit` if given. `PORT=0` lets the kernel pick the port and the start-up line
    /// names it: a port picked by the test and released before demo-app binds it could be
    /// taken meanwhile by another test's server, which would then answer in its place.
    fn start_with(env: &[(&str, &str)], fd_limit: Option<libc::rlim_t>) -> Self {
        let mut env = env.to_vec();
        env.push(("PORT", "0"));
        let mut proc = Proc::spawn_limited(&env, fd_limit);
        let line = match proc.lines.recv_timeout(DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let (status, stderr) = proc.wait_exit();
                panic!("demo-app printed no start-up line ({status}): {stderr}");
            }
        };
        let port = line
            .strip_prefix("demo-app listening on http://")
            .and_then(|address| address.rsplit_once(':'))
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .unwrap_or_else(|| panic!("unexpected start-up line: {line:?}"));
        assert_ne!(port, 0, "the start-up line names port 0: {line:?}");
        Self { proc, port }
    }

    fn get(&self, method: &str, path: &str) -> Response {
        let mut stream = connect(self.port);
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("send request");
        read_until_close(&mut stream)
    }

    /// Waits (bounded) until the port refuses connections, i.e. the listener is closed.
    fn wait_until_refused(&self) {
        let start = Instant::now();
        loop {
            match TcpStream::connect(addr(self.port)) {
                Err(err) if err.kind() == ErrorKind::ConnectionRefused => return,
                _ => {}
            }
            assert!(
                start.elapsed() < DEADLINE,
                "port {} still accepts connections after {DEADLINE:?}",
                self.port
            );
            thread::sleep(POLL);
        }
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(addr(port)).expect("connect to demo-app");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(DEADLINE))
        .expect("write timeout");
    stream
}

/// Waits (bounded) until the server's end of `client`'s connection has nothing left in its
/// receive queue, i.e. the server process has read everything sent so far. Reads the
/// kernel's socket table (Linux, IPv4), where `rx_queue` is the unread byte count.
fn wait_until_server_has_read(server_port: u16, client: &TcpStream) {
    let client_port = client.local_addr().expect("local_addr").port();
    // Ports appear in upper-case hex after the address: "0100007F:1F90".
    let local = format!(":{server_port:04X}");
    let remote = format!(":{client_port:04X}");
    let start = Instant::now();
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let unread = table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local_addr, remote_addr, queues) = (fields[1], fields[2], fields[4]);
            (local_addr.ends_with(&local) && remote_addr.ends_with(&remote)).then(|| {
                let rx = queues.split_once(':').expect("tx:rx").1;
                u32::from_str_radix(rx, 16).expect("hex rx_queue")
            })
        });
        match unread {
            Some(0) => return,
            Some(_) => {}
            None => panic!("no socket {local} <- {remote} in /proc/net/tcp"),
        }
        assert!(
            start.elapsed() < DEADLINE,
            "demo-app did not read the request within {DEADLINE:?}"
        );
        thread::sleep(POLL);
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Self {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..split]).expect("headers are UTF-8");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("header has a colon");
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Self {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let value = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "{name} sent twice: {self:?}");
        value
    }

    fn body(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }
}

fn read_until_close(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    Response::parse(&raw)
}

/// Reads one response on a kept-alive connection, trusting its Content-Length.
fn read_one(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0; 1024];
    loop {
        let n = stream.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed mid-response: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let partial = Response::parse(&raw[..end + 4]);
            let length: usize = partial
                .header("content-length")
                .expect("content-length")
                .parse()
                .expect("numeric content-length");
            if raw.len() >= end + 4 + length {
                return Response::parse(&raw);
            }
        }
    }
}

/// Asserts a start-up failure: the given exit code and exactly one stderr line, no panic.
fn assert_fails_with_one_line(env: &[(&str, &str)], code: i32) -> String {
    let (status, stderr) = Proc::spawn(env).wait_exit();
    assert_eq!(status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr:?}");
    assert!(stderr.ends_with('\n'), "stderr: {stderr:?}");
    stderr.trim_end().to_owned()
}

#[test]
fn root_is_hello_world_as_html() {
    let server = Server::start();
    let response = server.get("GET", "/");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("13"));
    assert_eq!(response.body(), "Hello, World!");
}

#[test]
fn api_is_the_hello_world_json_document() {
    let server = Server::start();
    let response = server.get("GET", "/api");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body(), r#"{"hello":"world"}"#);
}

#[test]
fn unknown_paths_are_404() {
    let server = Server::start();
    for path in ["/nope", "/api/", "/API", "/api/extra", "/index.html"] {
        let response = server.get("GET", path);
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert_eq!(response.body(), "", "{path}");
    }
}

#[test]
fn other_methods_on_known_paths_are_405() {
    let server = Server::start();
    for (method, path) in [
        ("POST", "/api"),
        ("PUT", "/api"),
        ("DELETE", "/"),
        ("PATCH", "/"),
    ] {
        let response = server.get(method, path);
        assert_eq!(response.status, 405, "{method} {path}: {response:?}");
        assert_eq!(
            response.header("allow"),
            Some("GET,HEAD"),
            "{method} {path}"
        );
    }
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let server = Server::start();
    for (path, content_type, length) in [
        ("/", "text/html; charset=utf-8", "13"),
        ("/api", "application/json", "17"),
    ] {
        let response = server.get("HEAD", path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(response.header("content-length"), Some(length), "{path}");
        // The connection was read to EOF, so this is everything the server sent.
        assert!(response.body.is_empty(), "{path}: {response:?}");
    }
}

#[test]
fn connections_are_kept_alive_between_requests() {
    let server = Server::start();
    let mut stream = connect(server.port);
    for path in ["/", "/api", "/"] {
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
        let response = read_one(&mut stream);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.header("connection"), None, "{path}: {response:?}");
    }
}

#[test]
fn sigterm_exits_0_and_logs_the_address_then_the_signal() {
    let mut server = Server::start();
    assert_eq!(server.get("GET", "/api").status, 200);
    server.proc.signal(libc::SIGTERM);
    let (status, stderr) = server.proc.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let port = server.port;
    assert_eq!(
        stderr,
        format!(
            "demo-app listening on http://127.0.0.1:{port}\n\
             demo-app: received SIGTERM, finishing open requests\n"
        )
    );
    assert!(
        TcpStream::connect(addr(port)).is_err(),
        "port {port} still open"
    );
}

#[test]
fn listens_on_all_interfaces_when_host_is_unset() {
    let mut server = Server::start_with(&[], None);
    assert_eq!(server.get("GET", "/").status, 200);
    server.proc.signal(libc::SIGTERM);
    let (status, stderr) = server.proc.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let port = server.port;
    assert!(
        stderr.starts_with(&format!("demo-app listening on http://0.0.0.0:{port}\n")),
        "{stderr}"
    );
}

#[test]
fn sigint_exits_0() {
    let mut server = Server::start();
    server.proc.signal(libc::SIGINT);
    let (status, stderr) = server.proc.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("received SIGINT"), "stderr: {stderr}");
}

#[test]
fn sigterm_stops_accepting_but_finishes_a_request_in_flight() {
    let mut server = Server::start();
    let mut stream = connect(server.port);
    // Half a request: the server has started reading it when the signal arrives.
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send first half");
    // Until the server has read those bytes the connection counts as idle and would be
    // closed on the signal, so wait for them to leave its socket's receive queue.
    wait_until_server_has_read(server.port, &stream);
    server.proc.signal(libc::SIGTERM);

    server.wait_until_refused();
    assert!(
        server.proc.is_running(),
        "demo-app exited with a request still open"
    );

    stream.write_all(b"\r\n").expect("send second half");
    let response = read_until_close(&mut stream);
    assert_eq!(response.status, 200);
    assert_eq!(response.body(), r#"{"hello":"world"}"#);
    // Told not to reuse the connection, since the server is going away.
    assert_eq!(response.header("connection"), Some("close"));

    let (status, stderr) = server.proc.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn sigterm_closes_idle_kept_alive_connections() {
    let mut server = Server::start();
    let mut stream = connect(server.port);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    assert_eq!(read_one(&mut stream).status, 200);

    // An idle client must not hold the process up until the orchestrator's SIGKILL.
    server.proc.signal(libc::SIGTERM);
    let (status, stderr) = server.proc.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("read to EOF");
    assert!(rest.is_empty(), "unexpected bytes after close: {rest:?}");
}

#[test]
fn survives_running_out_of_file_descriptors() {
    const FD_LIMIT: usize = 32;
    let mut server = Server::start_with(&[("HOST", "127.0.0.1")], Some(FD_LIMIT as libc::rlim_t));
    // More connections than the server may hold descriptors for: once it runs out, accept
    // fails with EMFILE and axum backs off on a timer before trying again. A runtime
    // without its timer enabled panics right there.
    let held: Vec<TcpStream> = (0..FD_LIMIT + 8).map(|_| connect(server.port)).collect();
    thread::sleep(Duration::from_millis(300));
    assert!(
        server.proc.is_running(),
        "demo-app died when out of descriptors"
    );

    drop(held);
    let response = server.get("GET", "/api");
    assert_eq!(response.status, 200);
    assert_eq!(response.body(), r#"{"hello":"world"}"#);

    server.proc.signal(libc::SIGTERM);
    let (status, stderr) = server.proc.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn a_malformed_tokio_worker_threads_is_ignored() {
    // tokio panics on this variable when it is not a number, unless the worker count is
    // set in code; it is, so a stray value in the environment cannot crash the service.
    let server = Server::start_with(
        &[("HOST", "127.0.0.1"), ("TOKIO_WORKER_THREADS", "abc")],
        None,
    );
    assert_eq!(server.get("GET", "/api").status, 200);
}

#[test]
fn port_in_use_is_one_line_naming_the_address_and_exit_1() {
    let taken = TcpListener::bind(addr(0)).expect("bind a port to occupy");
    let port = taken.local_addr().expect("local_addr").port();
    let line = assert_fails_with_one_line(&[("HOST", "127.0.0.1"), ("PORT", &port.to_string())], 1);
    assert_eq!(
        line,
        format!(
            "demo-app: cannot listen on 127.0.0.1:{port}: address already in use \
             (set PORT to a free port)"
        )
    );
    drop(taken);
}

#[test]
fn bad_port_is_one_line_naming_the_value_and_exit_2() {
    for bad in ["abc", "70000", "", "-1"] {
        let line = assert_fails_with_one_line(&[("HOST", "127.0.0.1"), ("PORT", bad)], 2);
        assert!(
            line.starts_with(&format!("demo-app: PORT=\"{bad}\" is not a port number")),
            "{line}"
        );
        assert!(line.contains("set PORT to"), "{line}");
    }
}

#[test]
fn bad_host_is_one_line_naming_the_value_and_exit_2() {
    let line = assert_fails_with_one_line(&[("HOST", "localhost"), ("PORT", "8080")], 2);
    assert!(
        line.starts_with("demo-app: HOST=\"localhost\" is not an IP address"),
        "{line}"
    );
    assert!(line.contains("set HOST to"), "{line}");
}
