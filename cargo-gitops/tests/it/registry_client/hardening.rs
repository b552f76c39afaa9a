//! The built-in client's hardening, tried for real against stub servers, the fault proxy and
//! a real `docker-registry`: one retry budget per operation (the README's attempts and
//! deadline, counted request by request), where credentials and tokens go (the registry's own
//! origin and its token realm; never an upload `Location` or a redirect to another origin,
//! never plain HTTP to a host neither loopback nor listed), the bounds on pages, sizes and
//! digests (what will not change is not tried again), and registry text that must never
//! become a GitHub Actions workflow command.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{
    OCI_MANIFEST, PASSWORD, TARGET_TAGS, USER, builtin, fast_options, push_podman, repo, strings,
};
use crate::support::{Dir, Fault, Fixture, Podman, Proxy, Registry, Stub, answer, printed};
use cargo_gitops::registry::client::{ClientOptions, RegistryClient, RetryPolicy, Scope};
use cargo_gitops::registry::credentials::Credential;
use cargo_gitops::registry::oci::Descriptor;

// ---------------------------------------------------------------------------------------------
// 8. One retry budget per operation: attempts and a deadline, as the README documents them.

/// Options with `attempts` tries, a `budget` (the operation's deadline) and short waits.
fn budget_options(attempts: u32, budget: Duration) -> ClientOptions {
    ClientOptions {
        retry: RetryPolicy {
            attempts,
            budget,
            base_delay: Duration::from_millis(50),
        },
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

fn descriptor(bytes: &[u8]) -> Descriptor {
    serde_json::from_value(serde_json::json!({
        "mediaType": "application/octet-stream",
        "digest": crate::support::sha256(bytes),
        "size": bytes.len(),
    }))
    .unwrap()
}

fn requests_of(stub: &Stub) -> Vec<String> {
    stub.seen()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The README: "up to 5 attempts within 60 s". A server that always answers 503 gets exactly
/// five requests from one lookup and five upload tries from one blob upload, with the
/// default policy, well within its deadline.
#[test]
fn one_operation_makes_exactly_the_documented_attempts_within_its_deadline() {
    let server = Stub::start("127.0.0.1", |r| match r.method.as_str() {
        "HEAD" if r.path.contains("/blobs/") => answer(404, &[], b""),
        "POST" => answer(202, &[("Location", "/v2/app/blobs/uploads/s1")], b""),
        _ => answer(503, &[], b""),
    });
    let client = RegistryClient::new(&server.addr, None, &ClientOptions::default());
    let started = Instant::now();
    let err = client
        .manifest_digest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    let elapsed = started.elapsed();
    assert_eq!(err, format!("{}: lookup failed: HTTP 503", server.addr));
    assert_eq!(
        requests_of(&server),
        vec!["HEAD /v2/app/manifests/commit-a"; 5]
    );
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");

    let blob = vec![1u8; 1000];
    let digest = crate::support::sha256(&blob);
    let started = Instant::now();
    let err = client
        .upload_blob("app", &digest, &blob)
        .unwrap_err()
        .to_string();
    let elapsed = started.elapsed();
    assert_eq!(
        err,
        format!("{}: upload blob failed: HTTP 503", server.addr)
    );
    let upload: Vec<String> = requests_of(&server).split_off(5);
    let mut expected = vec![format!("HEAD /v2/app/blobs/{digest}")];
    for _ in 0..5 {
        // Each try opens a session of its own: a failed one may be gone.
        expected.push("POST /v2/app/blobs/uploads/".to_owned());
        expected.push(format!("PUT /v2/app/blobs/uploads/s1?digest={digest}"));
    }
    assert_eq!(upload, expected);
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    assert_eq!(client.request_count(), 16);
}

/// 503s and cut bodies, one after the other, share one budget: five tries in all, not five
/// tries of five requests each.
#[test]
fn answers_and_cut_bodies_draw_on_one_budget() {
    let counter = Arc::new(AtomicUsize::new(0));
    let server = {
        let counter = counter.clone();
        Stub::start("127.0.0.1", move |_| {
            if counter.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                answer(503, &[], b"")
            } else {
                // Announces 100 bytes and sends 10: a connection cut part-way.
                answer(200, &[("Content-Length", "100")], &[b'{'; 10])
            }
        })
    };
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client
        .get_manifest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    assert_eq!(server.seen().len(), 5, "{:?}", requests_of(&server));
    assert_eq!(
        err,
        format!("{}: read manifest failed: HTTP 503", server.addr)
    );
}

/// With attempts to spare, the deadline ends the operation: no wait is begun that would end
/// after it.
#[test]
fn the_deadline_ends_an_operation_that_has_attempts_left() {
    let server = Stub::start("127.0.0.1", |_| answer(503, &[], b""));
    let client = RegistryClient::new(
        &server.addr,
        None,
        &budget_options(100, Duration::from_secs(2)),
    );
    let started = Instant::now();
    let err = client
        .manifest_digest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    let sent = server.seen().len();
    assert!((2..100).contains(&sent), "{sent} requests");
    assert_eq!(
        err,
        format!(
            "{}: lookup failed: gave up after {sent} attempts in {:.1}s (retry budget 2s); try again later",
            server.addr,
            // The message's own figure, read back: it is the elapsed time at that moment.
            err.split(" in ")
                .nth(1)
                .and_then(|t| t.split('s').next())
                .and_then(|t| t.parse::<f64>().ok())
                .unwrap()
        )
    );
}

/// A manifest trickled at one byte a second: no single read waits long, yet the operation
/// ends at its 2 s deadline, and is not tried again.
#[test]
fn a_trickled_manifest_fails_at_the_deadline() {
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let body = manifest.to_vec();
    let proxy = Proxy::start(1, move |_| {
        Fault::Trickle(
            200,
            vec![("Content-Type", OCI_MANIFEST.to_owned())],
            body.clone(),
            Duration::from_secs(1),
        )
    });
    let client = RegistryClient::new(
        &proxy.addr,
        None,
        &budget_options(5, Duration::from_secs(2)),
    );
    let started = Instant::now();
    let err = client
        .get_manifest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert!(
        err.starts_with(&format!(
            "{}: read manifest failed: gave up after 1 attempts in",
            proxy.addr
        )) && err.ends_with(
            "(retry budget 2s): no complete answer before the deadline; try again later"
        ),
        "{err}"
    );
    assert_eq!(proxy.log(), ["GET /v2/app/manifests/commit-a 200 trickled"]);
}

// ---------------------------------------------------------------------------------------------
// 9. Where credentials go: the registry's own origin and its token realm, nowhere else.

/// A registry that wants `Basic` credentials, played by a stub: its upload session's
/// `Location` names `upload_to`, another origin.
fn basic_registry_sending_uploads_to(upload_to: String) -> Stub {
    let expected = {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        format!("Basic {token}")
    };
    Stub::start("127.0.0.1", move |r| {
        if r.header("authorization") != Some(expected.as_str()) {
            return answer(401, &[("WWW-Authenticate", "Basic realm=\"test\"")], b"");
        }
        match r.method.as_str() {
            "HEAD" => answer(404, &[], b""),
            "POST" => answer(
                202,
                &[("Location", &format!("{upload_to}/upload/1?_state=x"))],
                b"",
            ),
            _ => answer(400, &[], b""),
        }
    })
}

#[test]
fn credentials_never_follow_an_upload_location_to_another_origin() {
    let blob = vec![2u8; 5000];
    let digest = crate::support::sha256(&blob);
    let elsewhere = [
        Stub::start("127.0.0.2", |_| answer(201, &[], b"")),
        Stub::start("127.0.0.1", |_| answer(201, &[], b"")),
    ];
    for capture in &elsewhere {
        let registry = basic_registry_sending_uploads_to(format!("http://{}", capture.addr));
        let client = RegistryClient::new(
            &registry.addr,
            Some(Credential::new(USER, PASSWORD)),
            &fast_options(),
        );
        client.upload_blob("app", &digest, &blob).unwrap();
        let seen = capture.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].method, "PUT");
        assert_eq!(seen[0].path, format!("/upload/1?_state=x&digest={digest}"));
        assert_eq!(seen[0].body_len, blob.len());
        assert_eq!(seen[0].header("authorization"), None, "{}", capture.addr);
        // The registry itself did get the credential (after its challenge).
        assert!(registry.seen().iter().skip(1).all(|r| {
            r.header("authorization")
                .is_some_and(|a| a.starts_with("Basic "))
        }));
    }
}

/// A registry that hands out bearer tokens from its own `/token`, and redirects blob reads
/// to `blob_at` (a CDN, as Docker Hub and others do) and `/v2/app/blobs/moved` to itself.
fn bearer_registry_redirecting_blobs_to(blob_at: String) -> Stub {
    Stub::start("127.0.0.1", move |r| {
        let host = r.header("host").unwrap_or_default().to_owned();
        if r.path.starts_with("/token?") {
            return match r.header("authorization") {
                Some(a) if a.starts_with("Basic ") => {
                    answer(200, &[], br#"{"token":"secret-token"}"#)
                }
                _ => answer(401, &[], b""),
            };
        }
        if r.header("authorization") != Some("Bearer secret-token") {
            let challenge = format!("Bearer realm=\"http://{host}/token\",service=\"stub\"");
            return answer(401, &[("WWW-Authenticate", &challenge)], b"");
        }
        if r.path.ends_with("/blobs/moved") {
            return answer(
                307,
                &[("Location", &format!("{blob_at}/cdn/blob?sig=1"))],
                b"",
            );
        }
        answer(307, &[("Location", "/v2/app/blobs/moved")], b"")
    })
}

#[test]
fn credentials_never_follow_a_redirect_to_another_origin() {
    let blob = b"a layer, served by a CDN".to_vec();
    let served = blob.clone();
    let elsewhere = [
        Stub::start("127.0.0.2", move |_| answer(200, &[], &served)),
        {
            let served = blob.clone();
            Stub::start("127.0.0.1", move |_| answer(200, &[], &served))
        },
    ];
    for cdn in &elsewhere {
        let registry = bearer_registry_redirecting_blobs_to(format!("http://{}", cdn.addr));
        let client = RegistryClient::new(
            &registry.addr,
            Some(Credential::new(USER, PASSWORD)),
            &fast_options(),
        );
        assert_eq!(client.get_blob("app", &descriptor(&blob)).unwrap(), blob);
        let seen = cdn.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].path, "/cdn/blob?sig=1");
        assert_eq!(seen[0].header("authorization"), None, "{}", cdn.addr);
        // Within the registry's own origin the token goes along, hop after hop.
        let own: Vec<(String, Option<String>)> = registry
            .seen()
            .iter()
            .map(|r| {
                (
                    r.path.split('?').next().unwrap().to_owned(),
                    r.header("authorization")
                        .map(|a| a.split(' ').next().unwrap().to_owned()),
                )
            })
            .collect();
        let digest = crate::support::sha256(&blob);
        assert_eq!(
            own,
            [
                (format!("/v2/app/blobs/{digest}"), None),
                ("/token".to_owned(), Some("Basic".to_owned())),
                (format!("/v2/app/blobs/{digest}"), Some("Bearer".to_owned())),
                ("/v2/app/blobs/moved".to_owned(), Some("Bearer".to_owned())),
            ]
        );
    }
}

/// A token realm over plain HTTP on a host that is neither loopback nor listed: nothing is
/// sent there (192.0.2.1 is TEST-NET-1, so a connection would hang, not fail).
#[test]
fn no_request_goes_over_plain_http_to_a_host_neither_loopback_nor_listed() {
    let registry = Stub::start("127.0.0.1", |_| {
        answer(
            401,
            &[(
                "WWW-Authenticate",
                "Bearer realm=\"http://192.0.2.1/token\",service=\"x\"",
            )],
            b"",
        )
    });
    let client = RegistryClient::new(
        &registry.addr,
        Some(Credential::new(USER, PASSWORD)),
        &fast_options(),
    );
    let started = Instant::now();
    let err = client
        .manifest_digest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        err,
        format!(
            "{}: authenticate failed: refusing to send a request over plain HTTP to http://192.0.2.1, which is neither loopback nor listed with --insecure-registry",
            registry.addr
        )
    );
    assert_eq!(registry.seen().len(), 1);
}

/// A promotion from a registry that hands out bearer tokens to another registry: the target,
/// behind a proxy that records every `Authorization`, never sees the source's token.
#[test]
fn a_token_for_one_registry_is_never_sent_to_another() {
    let source = Registry::start();
    let target = Registry::start();
    let podman = Podman::new();
    let digest = push_podman(&podman, &source, "app", "commit-a", "oci", None);
    let source_proxy = Proxy::start(source.port, |s| {
        if s.path.starts_with("/token?") {
            let body = serde_json::json!({ "token": "source-only-token" });
            return Fault::Answer(200, Vec::new(), body.to_string().into_bytes());
        }
        if s.authorization == Some("Bearer source-only-token") {
            return Fault::Forward;
        }
        let challenge = format!("Bearer realm=\"http://{}/token\",service=\"src\"", s.host);
        Fault::Answer(401, vec![("WWW-Authenticate", challenge)], Vec::new())
    });
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let target_proxy = {
        let seen = seen.clone();
        Proxy::start(target.port, move |s| {
            seen.lock()
                .unwrap()
                .push(s.authorization.map(str::to_owned));
            Fault::Forward
        })
    };
    builtin(Some(Credential::new(USER, PASSWORD)))
        .retag(
            &repo(&source_proxy.addr, "app"),
            &digest,
            &repo(&target_proxy.addr, "app"),
            &strings(&TARGET_TAGS),
        )
        .unwrap();
    assert_eq!(target.digest("app", "prd-1.0.0").as_deref(), Some(&*digest));
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 4, "{seen:?}");
    assert!(seen.iter().all(Option::is_none), "{seen:?}");
}

// ---------------------------------------------------------------------------------------------
// 10. Bounds: pages, sizes, digests. What will not change is not tried again.

#[test]
fn a_tag_list_whose_next_page_is_itself_stops_with_one_request() {
    let server = Stub::start("127.0.0.1", |r| {
        let link = format!("<{}>; rel=\"next\"", r.path);
        answer(200, &[("Link", &link)], br#"{"name":"app","tags":["a"]}"#)
    });
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client.list_tags("app").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{0}: list tags failed: the registry's next page of tags is `http://{0}/v2/app/tags/list?n=1000` again, a page already read; stopped there",
            server.addr
        )
    );
    assert_eq!(requests_of(&server), ["GET /v2/app/tags/list?n=1000"]);
}

#[test]
fn a_tag_list_that_never_ends_stops_at_the_page_limit() {
    let pages = Arc::new(AtomicUsize::new(0));
    let server = Stub::start("127.0.0.1", move |_| {
        let page = pages.fetch_add(1, Ordering::SeqCst);
        let link = format!("</v2/app/tags/list?last=t{page}&n=1000>; rel=\"next\"");
        let body = format!(r#"{{"name":"app","tags":["t{page}"]}}"#);
        answer(200, &[("Link", &link)], body.as_bytes())
    });
    let options = ClientOptions {
        max_tag_pages: 3,
        ..fast_options()
    };
    let client = RegistryClient::new(&server.addr, None, &options);
    let err = client.list_tags("app").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: list tags failed: the tag list of app goes on past 3 pages; stopped there",
            server.addr
        )
    );
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn a_malformed_docker_content_digest_is_refused_and_not_retried() {
    let server = Stub::start("127.0.0.1", |_| {
        answer(200, &[("Docker-Content-Digest", "sha256:abc")], b"")
    });
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client
        .manifest_digest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: lookup failed: the registry's Docker-Content-Digest: `sha256:abc` is not a sha256 digest (sha256: and 64 lowercase hex digits)",
            server.addr
        )
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn a_manifest_unlike_its_announced_digest_is_refused_and_not_retried() {
    let other = crate::support::sha256(b"another manifest");
    let bytes = br#"{"schemaVersion":2}"#.to_vec();
    let actual = crate::support::sha256(&bytes);
    let server = {
        let other = other.clone();
        Stub::start("127.0.0.1", move |_| {
            answer(
                200,
                &[
                    ("Docker-Content-Digest", &other),
                    ("Content-Type", OCI_MANIFEST),
                ],
                &bytes,
            )
        })
    };
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client
        .get_manifest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: read manifest failed: the manifest's bytes have digest {actual}, not {other} as the registry announced; the registry returned something else",
            server.addr
        )
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn an_oversized_manifest_names_the_limit_and_is_not_retried() {
    let big = vec![b' '; 5 * 1024 * 1024];
    let announced = {
        let big = big.clone();
        Stub::start("127.0.0.1", move |_| answer(200, &[], &big))
    };
    let client = RegistryClient::new(&announced.addr, None, &fast_options());
    let err = client
        .get_manifest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: read manifest failed: the manifest is larger than 4 MiB, the most this client reads of a manifest (the registry announced 5242880 bytes)",
            announced.addr
        )
    );
    assert_eq!(announced.seen().len(), 1);
    // Without a Content-Length the reading stops at the limit all the same.
    let unsized_proxy = Proxy::start(1, move |_| Fault::Unsized(200, Vec::new(), big.clone()));
    let client = RegistryClient::new(&unsized_proxy.addr, None, &fast_options());
    let err = client
        .get_manifest("app", "commit-a", &Scope::pull("app"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: read manifest failed: the manifest is larger than 4 MiB, the most this client reads of a manifest",
            unsized_proxy.addr
        )
    );
    assert_eq!(unsized_proxy.log().len(), 1);
}

#[test]
fn a_malformed_tag_list_says_so_and_is_not_retried() {
    let server = Stub::start("127.0.0.1", |_| answer(200, &[], b"<html>busy</html>"));
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client.list_tags("app").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: list tags failed: the tag list is not valid JSON: ",
            server.addr
        )),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1);
}

/// Blobs stream into a file through the hash: one larger than its descriptor stops at the
/// descriptor's size, one with other content is refused (neither is tried again), one cut
/// short is read again, and a good one arrives whole.
#[test]
fn blob_downloads_are_checked_against_their_descriptor_while_they_stream() {
    let blob: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let wanted = descriptor(&blob);
    let serve = |body: Vec<u8>, length: Option<usize>| {
        Stub::start("127.0.0.1", move |_| match length {
            Some(length) => answer(200, &[("Content-Length", &length.to_string())], &body),
            None => answer(200, &[], &body),
        })
    };
    let mut file = tempfile::tempfile().unwrap();
    let digest = &wanted.digest;

    let mut longer = blob.clone();
    longer.extend_from_slice(b"more");
    let server = serve(longer, None);
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client
        .download_blob("app", &wanted, &mut file)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: read blob failed: blob {digest} is larger than the {} bytes its descriptor gives (the registry announced {} bytes)",
            server.addr,
            blob.len(),
            blob.len() + 4
        )
    );
    assert_eq!(server.seen().len(), 1);

    let mut other = blob.clone();
    other[1000] ^= 1;
    let server = serve(other.clone(), None);
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client
        .download_blob("app", &wanted, &mut file)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: read blob failed: blob {digest} arrived with other content (digest {}); the registry holds something else",
            server.addr,
            crate::support::sha256(&other)
        )
    );
    assert_eq!(server.seen().len(), 1);

    let server = serve(blob[..1000].to_vec(), Some(blob.len()));
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    let err = client
        .download_blob("app", &wanted, &mut file)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: read blob failed: the connection dropped after 1000 bytes of blob {digest}",
            server.addr
        )),
        "{err}"
    );
    assert_eq!(server.seen().len(), 5);

    let server = serve(blob.clone(), None);
    let client = RegistryClient::new(&server.addr, None, &fast_options());
    client.download_blob("app", &wanted, &mut file).unwrap();
    use std::io::{Read as _, Seek as _};
    file.rewind().unwrap();
    let mut back = Vec::new();
    file.read_to_end(&mut back).unwrap();
    assert!(back == blob, "the file holds other bytes");
    // A blob too large for memory is not read into it.
    let too_large = Descriptor {
        size: 5 * 1024 * 1024,
        ..wanted.clone()
    };
    let err = client.get_blob("app", &too_large).unwrap_err().to_string();
    assert!(
        err.contains("blobs read into memory stop at 4194304"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 11. Text from a registry never becomes a GitHub Actions workflow command.

#[test]
fn a_registry_message_cannot_become_a_workflow_command() {
    let registry = Registry::start();
    let fixture = Fixture::new(&registry.host(), "fixture");
    let sha = fixture.head();
    let podman = Podman::new();
    push_podman(
        &podman,
        &registry,
        "fixture",
        &format!("commit-{sha}"),
        "oci",
        None,
    );
    let proxy = Proxy::start(registry.port, |s| {
        if s.method == "PUT" {
            let body = serde_json::json!({"errors": [{
                "code": "DENIED",
                "message": "no\n::warning title=X::y\r\n::stop-commands::abc\n\u{1b}[2J",
            }]});
            Fault::Answer(
                400,
                vec![("Content-Type", "application/json".to_owned())],
                body.to_string().into_bytes(),
            )
        } else {
            Fault::Forward
        }
    });
    let dir = Dir::new();
    std::fs::write(dir.join("out"), "").unwrap();
    let manifest = crate::support::gitops_manifest(&proxy.addr, "fixture", "");
    fixture.create("Cargo.toml", manifest);
    let mut command = fixture.build("builtin", &["--ref", "refs/tags/v1.0.0", "--sha", &sha]);
    command
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", dir.join("out"));
    let output = command.expect_exit(1);
    let all = printed(&output);
    assert!(all.contains("DENIED no\\n::warning title=X::y"), "{all}");
    for line in all.lines() {
        let line = line.trim_start();
        let ours = ["::error::", "::group::", "::endgroup::"];
        assert!(
            !line.starts_with("::") || ours.iter().any(|o| line.starts_with(o)),
            "a registry's words became a workflow command: {line:?}\n{all}"
        );
        assert!(!line.contains('\u{1b}'), "{line:?}");
    }
}
