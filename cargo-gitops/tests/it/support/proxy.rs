//! A fault-injecting HTTP/1.1 proxy in front of a real registry: one request per connection
//! (every answer says `Connection: close`), forwarded unless its rule says otherwise: answer
//! in its place, cut the body, trickle an answer byte by byte, delay it, or close. It logs every request
//! as `METHOD /path STATUS`, and its rule sees each request's `Host` and `Authorization`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does with one request.
#[derive(Clone)]
pub enum Fault {
    Forward,
    /// Answer with this status, headers and body without asking the registry.
    Answer(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Forward, then pass on the head and only half the body of the answer, and close.
    CutBody,
    /// Close the connection without answering.
    Close,
    /// Answer without `Content-Length`: the body ends when the connection closes.
    Unsized(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Answer with the whole `Content-Length` at once, then the body one byte per interval.
    Trickle(u16, Vec<(&'static str, String)>, Vec<u8>, Duration),
    /// Wait this long (at most the proxy's own timeout), then forward: a slow registry.
    Delay(Duration),
}

impl Fault {
    pub fn status(status: u16) -> Fault {
        Fault::Answer(status, Vec::new(), Vec::new())
    }
}

/// A request as the proxy's rule sees it: its 0-based index among all requests, method, path,
/// and the `Host` and `Authorization` headers.
pub struct Seen<'a> {
    pub index: usize,
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub authorization: Option<&'a str>,
}

type Rule = dyn Fn(&Seen<'_>) -> Fault + Send + Sync;

pub struct Proxy {
    pub addr: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

const PROXY_TIMEOUT: Duration = Duration::from_secs(10);

impl Proxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:upstream`, doing what `rule`
    /// says for each request.
    pub fn start(
        upstream: u16,
        rule: impl Fn(&Seen<'_>) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Rule> = Arc::new(rule);
        let counter = Arc::new(AtomicUsize::new(0));
        let accept = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (rule, log, counter) = (rule.clone(), log.clone(), counter.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, upstream, &*rule, &log, &counter);
                    });
                }
            })
        };
        Proxy {
            addr,
            stop,
            log,
            accept: Some(accept),
        }
    }

    /// Each request as `METHOD /path STATUS`, with ` injected`, ` cut` or ` closed` when the
    /// proxy did not simply pass it on.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A socket with what has been read from it but not yet used.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(super) fn new(stream: TcpStream) -> std::io::Result<Conn> {
        stream.set_read_timeout(Some(PROXY_TIMEOUT))?;
        stream.set_write_timeout(Some(PROXY_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Bytes up to and including `\r\n\r\n`.
    pub(super) fn read_head(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(self.buf.drain(..end + 4).collect());
            }
            if self.buf.len() > 64 * 1024 {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
            self.fill()?;
        }
    }

    pub(super) fn read_exact_n(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            self.fill()?;
        }
    }

    /// A chunked body, de-chunked.
    pub(super) fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            if size == 0 {
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.read_exact_n(size)?);
            self.read_exact_n(2)?;
        }
    }

    fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let mut rest = std::mem::take(&mut self.buf);
        self.stream.read_to_end(&mut rest)?;
        Ok(rest)
    }
}

/// Writes a response head; `length` is its `Content-Length`, if any.
fn answer_with(
    stream: &mut TcpStream,
    status: u16,
    extra: &[(&'static str, String)],
    length: Option<usize>,
) -> std::io::Result<()> {
    let mut response = format!("HTTP/1.1 {status} Injected\r\n");
    for (k, v) in extra {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(length) = length {
        response.push_str(&format!("Content-Length: {length}\r\n"));
    }
    response.push_str("Connection: close\r\n\r\n");
    stream.write_all(response.as_bytes())
}

/// Header lines of a head (after its first line), as (name, value).
pub(super) fn header_lines(head: &str) -> Vec<(String, String)> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn serve(
    client: TcpStream,
    upstream: u16,
    rule: &Rule,
    log: &Mutex<Vec<String>>,
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    let mut client = Conn::new(client)?;
    let head = String::from_utf8_lossy(&client.read_head()?).into_owned();
    let request_line = head.split("\r\n").next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers = header_lines(&head);
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        client.read_chunked()?
    } else {
        let length = value("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        client.read_exact_n(length)?
    };
    let index = counter.fetch_add(1, Ordering::SeqCst);
    let host = value("host").unwrap_or_default();
    let authorization = value("authorization");
    let fault = rule(&Seen {
        index,
        method: &method,
        path: &path,
        host: &host,
        authorization: authorization.as_deref(),
    });
    let record = |entry: String| log.lock().unwrap().push(entry);
    match fault {
        Fault::Close => {
            record(format!("{method} {path} closed"));
            client.stream.shutdown(Shutdown::Both)
        }
        Fault::Answer(status, extra, answer) => {
            record(format!("{method} {path} {status} injected"));
            answer_with(&mut client.stream, status, &extra, Some(answer.len()))?;
            client.stream.write_all(&answer)?;
            client.stream.shutdown(Shutdown::Both)
        }
        Fault::Unsized(status, extra, answer) => {
            record(format!("{method} {path} {status} injected"));
            answer_with(&mut client.stream, status, &extra, None)?;
            client.stream.write_all(&answer)?;
            client.stream.shutdown(Shutdown::Both)
        }
        Fault::Trickle(status, extra, answer, every) => {
            record(format!("{method} {path} {status} trickled"));
            answer_with(&mut client.stream, status, &extra, Some(answer.len()))?;
            for byte in answer {
                std::thread::sleep(every);
                client.stream.write_all(&[byte])?;
            }
            client.stream.shutdown(Shutdown::Both)
        }
        Fault::Delay(wait) => {
            std::thread::sleep(wait.min(PROXY_TIMEOUT));
            forward(
                &mut client,
                upstream,
                &request_line,
                &headers,
                &body,
                false,
                &record,
                &method,
                &path,
            )
        }
        Fault::Forward | Fault::CutBody => {
            let cut = matches!(fault, Fault::CutBody);
            forward(
                &mut client,
                upstream,
                &request_line,
                &headers,
                &body,
                cut,
                &record,
                &method,
                &path,
            )
        }
    }
}

/// Sends the request on to the registry and its answer back, the body cut in half with `cut`.
#[allow(clippy::too_many_arguments)]
fn forward(
    client: &mut Conn,
    upstream: u16,
    request_line: &str,
    headers: &[(String, String)],
    body: &[u8],
    cut: bool,
    record: &dyn Fn(String),
    method: &str,
    path: &str,
) -> std::io::Result<()> {
    let mut server = Conn::new(TcpStream::connect(("127.0.0.1", upstream))?)?;
    let mut forward = format!("{request_line}\r\n");
    for (k, v) in headers {
        let skip = ["connection", "content-length", "transfer-encoding"];
        if !skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
            forward.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if !body.is_empty() || method == "PUT" || method == "POST" {
        forward.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    forward.push_str("Connection: close\r\n\r\n");
    server.stream.write_all(forward.as_bytes())?;
    server.stream.write_all(body)?;
    let response_head = String::from_utf8_lossy(&server.read_head()?).into_owned();
    let answer = server.read_to_end()?;
    let status_line = response_head.split("\r\n").next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).unwrap_or("?").to_owned();
    let mut back = format!("{status_line}\r\n");
    for (k, v) in header_lines(&response_head) {
        if !k.eq_ignore_ascii_case("connection") {
            back.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    back.push_str("Connection: close\r\n\r\n");
    // Logged before the client can see the answer, so the log is complete when it returns.
    record(format!(
        "{method} {path} {status}{}",
        if cut { " cut" } else { "" }
    ));
    client.stream.write_all(back.as_bytes())?;
    if cut {
        client.stream.write_all(&answer[..answer.len() / 2])?;
    } else {
        client.stream.write_all(&answer)?;
    }
    client.stream.flush()?;
    client.stream.shutdown(Shutdown::Both)
}
