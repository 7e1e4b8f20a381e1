//! Alert webhooks: every alert event is POSTed as JSON to each `alert-webhook` URL. Each
//! URL has its own queue and thread, so a slow or dead receiver delays neither the server
//! nor the other receivers.
//!
//! Events wait in a bounded queue per URL ([`QUEUE_MAX`]; when it is full the oldest is
//! dropped and counted). Each delivery has `alert-webhook-timeout-ms` for connecting, sending and reading
//! the status line, and is retried `alert-webhook-retries` times with a doubling pause (0.5 s,
//! 1 s, 2 s, ...). A 2xx status is success. `https://` URLs are verified against the Mozilla
//! root certificates compiled in (`webpki-roots`) plus any in `alert-webhook-ca-file` (a PEM
//! bundle, for a private CA), with the URL's host name, over TLS 1.2 or 1.3 (`rustls`).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::Shared;

/// Events waiting at most.
pub const QUEUE_MAX: usize = 1000;

/// An `http[s]://host[:port][/path]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub fn parse(u: &str) -> Result<Url, String> {
        let (tls, rest) = match (u.strip_prefix("http://"), u.strip_prefix("https://")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => return Err(format!("alert-webhook '{u}' must start with http:// or https://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // a bracketed IPv6 address has colons of its own: a port follows only after ']'
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !authority.starts_with('[') || h.ends_with(']') => {
                (h, p.parse::<u16>().map_err(|_| format!("alert-webhook '{u}': bad port '{p}'"))?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
            return Err(format!("alert-webhook '{u}' is not a valid http URL"));
        }
        Ok(Url { tls, host: host.to_string(), port, path: path.to_string() })
    }
}

/// One URL's queue, served by a thread of its own, so a dead receiver delays only itself.
#[derive(Default)]
struct Lane {
    queue: Mutex<VecDeque<String>>,
    ready: Condvar,
}

/// The per-URL queues and the delivery counters.
#[derive(Default)]
pub struct Webhooks {
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

impl Webhooks {
    /// Queues a JSON body for every configured URL (starting a URL's thread on first use).
    pub fn push(&self, shared: &Shared, body: String) {
        let Some(handle) = shared.handle() else { return };
        for url in &shared.settings().webhooks {
            let lane = {
                let mut lanes = self.lanes.lock();
                match lanes.get(url) {
                    Some(l) => l.clone(),
                    None => {
                        let lane = Arc::new(Lane::default());
                        let (h, l, u) = (handle.clone(), lane.clone(), url.clone());
                        let started = std::thread::Builder::new().name("webhook".into()).spawn(move || run(&h, &u, &l));
                        if let Err(e) = started {
                            crate::log_warning!("Alert webhook {url}: cannot start its thread: {e}");
                            continue;
                        }
                        lanes.insert(url.clone(), lane.clone());
                        lane
                    }
                }
            };
            let mut q = lane.queue.lock();
            if q.len() >= QUEUE_MAX {
                q.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(body.clone());
            lane.ready.notify_one();
        }
    }

    /// Events waiting, over every URL.
    pub fn pending(&self) -> usize {
        self.lanes.lock().values().map(|l| l.queue.lock().len()).sum()
    }
}

/// A URL's delivery thread: posts its queue's events in order; exits at shutdown, or once
/// the URL is no longer configured and its queue is empty.
fn run(shared: &Shared, url: &str, lane: &Lane) {
    let hooks = &shared.guardrails.webhooks;
    while !shared.shutdown.load(Ordering::SeqCst) {
        let body = {
            let mut q = lane.queue.lock();
            if q.is_empty() {
                lane.ready.wait_for(&mut q, Duration::from_millis(250));
            }
            q.pop_front()
        };
        let settings = shared.settings();
        let Some(body) = body else {
            if !settings.webhooks.iter().any(|u| u == url) {
                let mut lanes = hooks.lanes.lock();
                if lane.queue.lock().is_empty() {
                    lanes.remove(url);
                    return;
                }
            }
            continue;
        };
        let Ok(parsed) = Url::parse(url) else { continue };
        let timeout = Duration::from_millis(settings.webhook_timeout_ms);
        let mut last_error = String::new();
        let mut ok = false;
        for attempt in 0..=settings.webhook_retries {
            if attempt > 0 && !pause(shared, Duration::from_millis(500 << (attempt - 1).min(6))) {
                return;
            }
            match post(&parsed, &body, timeout, &settings.webhook_ca_file) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        if ok {
            hooks.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            hooks.failed.fetch_add(1, Ordering::Relaxed);
            crate::log_warning!(
                "Alert webhook {url} failed after {} attempts: {last_error}. The alert is still in INFO alerts and /api/status; check that the receiver is up and reachable from this host.",
                settings.webhook_retries + 1
            );
        }
    }
}

/// Sleeps `d` unless the server shuts down first (then returns false).
fn pause(shared: &Shared, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shared.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    true
}

/// The trust roots for `https://` receivers: the Mozilla roots, plus the certificates of the
/// PEM file `ca_file` (when not empty).
pub fn tls_roots(ca_file: &str) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if !ca_file.is_empty() {
        let mut added = 0;
        for cert in
            CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("alert-webhook-ca-file {ca_file}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("alert-webhook-ca-file {ca_file}: {e}"))?;
            roots.add(cert).map_err(|e| format!("alert-webhook-ca-file {ca_file}: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("alert-webhook-ca-file {ca_file}: no PEM certificate in it"));
        }
    }
    Ok(roots)
}

/// A TLS session over `tcp` with `host`, verified against [`tls_roots`].
fn tls_client(
    host: &str,
    ca_file: &str,
    tcp: TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    // ring's provider: classical key exchange only (rustls marks it deprecated for lacking
    // post-quantum groups), enough for alert POSTs, and it builds with just a C compiler
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(tls_roots(ca_file)?)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("'{host}' is not a name TLS can verify: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS setup: {e}"))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// A receiver's connection, plain or TLS, with the socket under it for timeouts.
enum Link {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Link {
    fn socket(&self) -> &TcpStream {
        match self {
            Link::Plain(s) => s,
            Link::Tls(t) => &t.sock,
        }
    }

    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Link::Plain(s) => s,
            Link::Tls(t) => t.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// An I/O error while `doing`, with what to do when it is the receiver's certificate.
fn io_error(doing: &str, e: &std::io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(why)) => format!(
            "TLS: the receiver's certificate was refused ({why:?}); if it comes from a private CA, set alert-webhook-ca-file to that CA's PEM file"
        ),
        Some(tls) => format!("TLS: {tls}"),
        None => format!("{doing}: {e}"),
    }
}

/// One POST; `Ok` on a 2xx status line within `timeout`. `ca_file` adds trust roots for
/// `https://` receivers.
pub fn post(url: &Url, body: &str, timeout: Duration, ca_file: &str) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    let tcp = stream.ok_or(last)?;
    let mut link = if url.tls { Link::Tls(Box::new(tls_client(&url.host, ca_file, tcp)?)) } else { Link::Plain(tcp) };
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: redoubt/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.path,
        crate::VERSION,
        body.len()
    );
    // the TLS handshake happens inside the first write and read, under the same deadline
    link.socket().set_write_timeout(Some(left())).map_err(|e| e.to_string())?;
    link.socket().set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
    let io = link.io();
    io.write_all(request.as_bytes()).and_then(|()| io.flush()).map_err(|e| io_error("send", &e))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        link.socket().set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
        if Instant::now() >= deadline {
            return Err("timed out waiting for the reply".into());
        }
        match link.io().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(io_error("reply", &e)),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("");
    match line.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') && code.len() == 3 => Ok(()),
        Some(_) => Err(format!("receiver answered '{line}'")),
        None => Err("no HTTP status line in the reply".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("http://127.0.0.1:8080/hook?x=1").unwrap(),
            Url { tls: false, host: "127.0.0.1".into(), port: 8080, path: "/hook?x=1".into() }
        );
        assert_eq!(Url::parse("http://pager.local").unwrap().port, 80);
        assert_eq!(Url::parse("http://[::1]:9/a").unwrap().host, "::1");
        assert_eq!(
            Url::parse("http://[::1]/hook").unwrap(),
            Url { tls: false, host: "::1".into(), port: 80, path: "/hook".into() }
        );
        assert_eq!(
            Url::parse("https://hooks.example.com/a").unwrap(),
            Url { tls: true, host: "hooks.example.com".into(), port: 443, path: "/a".into() }
        );
        assert!(Url::parse("ftp://x").unwrap_err().contains("must start with http:// or https://"));
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://:80/").is_err());
        assert!(Url::parse("http://h:99999/").is_err());
    }
}
