//! Tiny HTTP/1.1 servers on a loopback address of the test's choosing (`127.0.0.1`,
//! `127.0.0.2`): each answers every request as its function says (one request per
//! connection, `Connection: close`) and records the request, headers included, so a test can
//! prove what reached it (no `Authorization`) and how often (the requests of one operation).
//! Bounded: at most `MAX_REQUESTS` are answered, each socket times out, and dropping the
//! server stops it.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::proxy::{Conn, header_lines};

/// More requests than any test needs; past this the server closes connections unanswered.
const MAX_REQUESTS: usize = 500;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
    /// The body as sent (a forge API's JSON, for tests that check its fields).
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// An `Answer` from borrowed parts.
pub fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let headers = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    (status, headers, body.to_vec())
}

type Respond = dyn Fn(&Recorded) -> Answer + Send + Sync;

pub struct Stub {
    /// `IP:PORT`.
    pub addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Recorded>>>,
    accept: Option<JoinHandle<()>>,
}

impl Stub {
    /// Listens on a free port of `ip` and answers with `respond`.
    pub fn start(ip: &str, respond: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Respond> = Arc::new(respond);
        let accept = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if seen.lock().unwrap().len() >= MAX_REQUESTS {
                        let _ = stream.shutdown(Shutdown::Both);
                        continue;
                    }
                    let (respond, seen) = (respond.clone(), seen.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &*respond, &seen);
                    });
                }
            })
        };
        Stub {
            addr,
            stop,
            seen,
            accept: Some(accept),
        }
    }

    /// The requests so far, oldest first.
    pub fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(stream: TcpStream, respond: &Respond, seen: &Mutex<Vec<Recorded>>) -> std::io::Result<()> {
    let mut conn = Conn::new(stream)?;
    let head = String::from_utf8_lossy(&conn.read_head()?).into_owned();
    let mut parts = head.split(' ');
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
        conn.read_chunked()?
    } else {
        let length = value("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        conn.read_exact_n(length)?
    };
    let request = Recorded {
        method,
        path,
        headers,
        body_len: body.len(),
        body,
    };
    // Recorded before answering, so the record is complete when the client has its answer.
    seen.lock().unwrap().push(request.clone());
    let (status, extra, answer) = respond(&request);
    let mut response = format!("HTTP/1.1 {status} Stub\r\n");
    for (k, v) in &extra {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    // A `Content-Length` of the function's own wins: a body shorter than it is a cut answer.
    if !extra
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        response.push_str(&format!("Content-Length: {}\r\n", answer.len()));
    }
    response.push_str("Connection: close\r\n\r\n");
    conn.stream.write_all(response.as_bytes())?;
    if request.method != "HEAD" {
        conn.stream.write_all(&answer)?;
    }
    conn.stream.flush()?;
    conn.stream.shutdown(Shutdown::Both)
}
