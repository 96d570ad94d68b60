//! The one HTTP client every outbound request goes through, and the network
//! policy that governs it: which URLs may be fetched, how long a request may
//! take, how large a response may be. No redirects are followed and no proxy
//! is taken from the environment.

use crate::settings::AllowedHost;
use crate::www_authenticate::{self, BearerChallenge};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    /// Plain http (and loopback addresses) for tests and demos.
    pub allow_http_loopback: bool,
    /// Private, loopback and link-local addresses.
    pub allow_private_networks: bool,
    /// When not empty, the only hosts that may be contacted.
    pub allowed_hosts: Vec<AllowedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub policy: NetPolicy,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            policy: NetPolicy { allow_http_loopback: false, allow_private_networks: false, allowed_hosts: vec![] },
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

/// What went wrong on the wire. Carries the host, never the path, query,
/// headers or body of the request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("{host}: {reason}")]
    Blocked { host: String, reason: String },
    #[error("{host}: the request timed out")]
    Timeout { host: String },
    #[error("{host}: could not connect")]
    Connect { host: String },
    #[error("{host}: the response is larger than {limit} bytes")]
    TooLarge { host: String, limit: usize },
    #[error("{host}: {detail}")]
    Transport { host: String, detail: String },
}

impl NetError {
    pub fn host(&self) -> &str {
        match self {
            NetError::Blocked { host, .. }
            | NetError::Timeout { host }
            | NetError::Connect { host }
            | NetError::TooLarge { host, .. }
            | NetError::Transport { host, .. } => host,
        }
    }
}

/// The seconds a `Retry-After` header asks for (RFC 9110 §10.2.3: a number
/// of seconds, or an HTTP date), from `now`.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).map(|d| d.as_secs()).unwrap_or(0))
}

/// The host (and port, when not the default) of a URL, for messages.
pub fn display_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// `localhost` and `*.localhost` (RFC 6761 §6.3): names for loopback.
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => is_localhost_name(d),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped (::ffff:a.b.c.d),
/// IPv4-translated (::ffff:0:a.b.c.d, SIIT, RFC 6145), IPv4-compatible
/// (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96, RFC 6052) or 6to4
/// (2002:AABB:CCDD::/48, RFC 3056).
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    if seg[..6] == [0; 6] && !(v6.is_loopback() || v6.is_unspecified()) {
        return Some(v4(seg[6], seg[7]));
    }
    if seg[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(v4(seg[6], seg[7]));
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4] {
        return Some(v4(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return Some(v4(seg[1], seg[2]));
    }
    None
}

/// Addresses that are not on the public internet: private, loopback,
/// link-local, CGNAT, unique-local, multicast, unspecified, documentation,
/// reserved, and IPv6 forms that embed such an IPv4 address (mapped,
/// compatible, 6to4, NAT64) or tunnel to one (Teredo).
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
                || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18/15
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_loopback() || v6.is_unspecified() {
                return true;
            }
            if let Some(v4) = embedded_ipv4(v6) {
                return is_non_public(IpAddr::V4(v4));
            }
            v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site local fec0::/10 (deprecated)
                || (seg[0] == 0x2001 && seg[1] == 0x0000) // Teredo 2001::/32
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || (seg[0] == 0x2001 && seg[1] == 0x0002 && seg[2] == 0) // benchmarking 2001:2::/48
                || seg[..4] == [0x0100, 0, 0, 0] // discard-only 100::/64
                || (seg[0] == 0x0064 && seg[1] == 0xff9b && seg[2] == 0x0001) // local NAT64 64:ff9b:1::/48
        }
    }
}

/// Cloud instance metadata endpoints, in any IPv6 form that embeds one:
/// never reachable, whatever the settings.
pub fn is_metadata(ip: IpAddr) -> bool {
    const V4: [[u8; 4]; 4] = [[169, 254, 169, 254], [169, 254, 170, 2], [100, 100, 100, 200], [168, 63, 129, 16]];
    match ip {
        IpAddr::V4(v4) => V4.contains(&v4.octets()),
        IpAddr::V6(v6) => {
            v6.segments() == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] || embedded_ipv4(v6).is_some_and(|v4| is_metadata(IpAddr::V4(v4)))
        }
    }
}

impl NetPolicy {
    /// Whether a (resolved or literal) address may be connected to.
    pub fn address_allowed(&self, ip: IpAddr) -> Result<(), &'static str> {
        if is_metadata(ip) {
            return Err("the address is a cloud metadata endpoint");
        }
        if is_loopback(ip) && (self.allow_http_loopback || self.allow_private_networks) {
            return Ok(());
        }
        if is_non_public(ip) && !self.allow_private_networks {
            return Err("the address is not public (see mcp_oauth.allow_private_networks)");
        }
        Ok(())
    }

    /// Whether `url` may be fetched: http(s) only, no credentials in the URL,
    /// https unless plain http to loopback is allowed, no non-public address
    /// literal unless allowed, and the allow list when there is one.
    pub fn check(&self, url: &Url) -> Result<(), NetError> {
        let host_label = display_host(url);
        let blocked = |reason: &str| NetError::Blocked { host: host_label.clone(), reason: reason.to_owned() };
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(blocked("only http and https URLs may be fetched"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(blocked("URLs with credentials are not fetched"));
        }
        let Some(host) = url.host() else {
            return Err(blocked("the URL has no host"));
        };
        let loopback = is_loopback_host(&host);
        if scheme == "http" && !(loopback && self.allow_http_loopback) {
            return Err(blocked("https is required (plain http only to loopback with mcp_oauth.allow_http_loopback)"));
        }
        let literal = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            self.address_allowed(ip).map_err(&blocked)?;
        } else if loopback && !(self.allow_http_loopback || self.allow_private_networks) {
            return Err(blocked("the address is not public (see mcp_oauth.allow_private_networks)"));
        }
        if !self.allowed_hosts.is_empty() {
            let name = match url.host() {
                Some(Host::Ipv6(ip)) => format!("[{ip}]"),
                Some(h) => h.to_string().to_ascii_lowercase(),
                None => String::new(),
            };
            let port = url.port_or_known_default();
            let listed = self.allowed_hosts.iter().any(|a| a.host == name && (a.port.is_none() || a.port == port));
            if !listed {
                return Err(blocked("the host is not in mcp_oauth.allowed_hosts"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

/// A request as the protocol code builds it. Its `Debug` leaves out the body
/// (a token request carries the code verifier, refresh token or client
/// secret); credential headers are marked sensitive and print redacted.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
    /// Follow 307/308 redirects within the same origin (MCP requests only;
    /// registration, token and refresh requests never follow one).
    pub follow_same_origin: bool,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &display_host(&self.url))
            .field("headers", &self.headers)
            .field("body", &self.body.as_ref().map(|b| format!("<{} bytes redacted>", b.len())))
            .finish()
    }
}

impl HttpRequest {
    pub fn get(url: Url) -> Self {
        Self { method: Method::Get, url, headers: HeaderMap::new(), body: None, follow_same_origin: false }
    }

    pub fn post(url: Url, content_type: &'static str, body: Vec<u8>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Self { method: Method::Post, url, headers, body: Some(body), follow_same_origin: false }
    }

    /// Adds a header. Credentials are marked sensitive so that no debug
    /// output of the HTTP stack shows them.
    pub fn header(mut self, name: HeaderName, value: &str, sensitive: bool) -> Self {
        if let Ok(mut v) = HeaderValue::from_str(value) {
            v.set_sensitive(sensitive);
            self.headers.append(name, v);
        }
        self
    }

    pub fn accept(self, value: &'static str) -> Self {
        self.header(reqwest::header::ACCEPT, value, false)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header(reqwest::header::AUTHORIZATION, &format!("Bearer {token}"), true)
    }

    pub fn follow_same_origin(mut self) -> Self {
        self.follow_same_origin = true;
        self
    }
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn headers_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.get_all(name).into_iter().filter_map(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> String {
        content_type(&self.headers)
    }

    pub fn bearer_challenge(&self) -> Option<BearerChallenge> {
        bearer_challenge(self.status, &self.headers)
    }
}

/// The Bearer challenge (RFC 6750 §3) of a 401 or 403 response.
fn bearer_challenge(status: u16, headers: &HeaderMap) -> Option<BearerChallenge> {
    if status != 401 && status != 403 {
        return None;
    }
    let values: Vec<&str> = headers.get_all("www-authenticate").into_iter().filter_map(|v| v.to_str().ok()).collect();
    www_authenticate::bearer(values.iter().copied())
}

/// Starts a thread running its argument. The embedding chooses how: inside
/// PostgreSQL every thread must start with all signals blocked (see the
/// extension's runtime), so that signal handlers only ever run on the
/// backend's own thread.
pub type SpawnThread = fn(Box<dyn FnOnce() + Send + 'static>) -> std::io::Result<()>;

/// Plain `std::thread::spawn`, for programs that need nothing more.
pub fn spawn_std_thread(work: Box<dyn FnOnce() + Send + 'static>) -> std::io::Result<()> {
    std::thread::Builder::new().name("mcp_oauth dns".into()).spawn(work).map(drop)
}

type Lookup = (String, tokio::sync::oneshot::Sender<std::io::Result<Vec<SocketAddr>>>);

/// Name resolution (`getaddrinfo`, which blocks) on one thread of our own,
/// started on first use with the embedding's `SpawnThread` and ended when
/// the client is dropped. Nothing else in the client starts a thread.
struct DnsThread {
    spawn: SpawnThread,
    queue: Mutex<Option<std::sync::mpsc::Sender<Lookup>>>,
}

impl DnsThread {
    async fn lookup(&self, host: String) -> std::io::Result<Vec<SocketAddr>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let mut queue = self.queue.lock().expect("not poisoned");
            if queue.is_none() {
                let (sender, lookups) = std::sync::mpsc::channel::<Lookup>();
                (self.spawn)(Box::new(move || {
                    for (host, reply) in lookups {
                        let _ = reply.send((host.as_str(), 0).to_socket_addrs().map(Iterator::collect));
                    }
                }))?;
                *queue = Some(sender);
            }
            if let Some(sender) = queue.as_ref() {
                if sender.send((host, reply)).is_err() {
                    *queue = None;
                    return Err(std::io::Error::other("the resolver thread ended"));
                }
            }
        }
        answer.await.map_err(|_| std::io::Error::other("the resolver thread ended"))?
    }
}

/// A response whose body has not been read yet.
pub struct OpenResponse {
    pub status: u16,
    pub headers: HeaderMap,
    host: String,
    inner: reqwest::Response,
    read: usize,
    limit: usize,
}

impl OpenResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> String {
        content_type(&self.headers)
    }

    pub fn bearer_challenge(&self) -> Option<BearerChallenge> {
        bearer_challenge(self.status, &self.headers)
    }

    /// The next piece of the body as it arrives; None at its end. The whole
    /// body is held to `max_response_bytes`.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, NetError> {
        let chunk = self.inner.chunk().await.map_err(|e| classify(e, &self.host))?;
        if let Some(chunk) = &chunk {
            self.read += chunk.len();
            if self.read > self.limit {
                return Err(NetError::TooLarge { host: self.host.clone(), limit: self.limit });
            }
        }
        Ok(chunk)
    }

    /// The whole body.
    pub async fn collect(mut self) -> Result<HttpResponse, NetError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { status: self.status, headers: self.headers, body })
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Resolves names for the HTTP client and refuses any name with an address
/// the policy does not allow. The client connects to exactly the addresses
/// returned here, so a name cannot resolve to a public address for the check
/// and to a private one for the connection (DNS rebinding).
struct PolicyResolver {
    policy: NetPolicy,
    dns: Arc<DnsThread>,
    /// Why the last resolution was refused, for the error the caller sees.
    refused: Arc<Mutex<Option<(String, &'static str)>>>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let refused = self.refused.clone();
        let dns = self.dns.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = dns.lookup(host.clone()).await?;
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            let refuse = |reason: &'static str| {
                *refused.lock().expect("not poisoned") = Some((host.clone(), reason));
                Err(format!("{host}: {reason}").into())
            };
            // Plain http may be allowed for a loopback name; it must not
            // lead anywhere else.
            if is_localhost_name(&host) && !addrs.iter().all(|a| is_loopback(a.ip())) {
                return refuse("a localhost name must resolve to loopback addresses only");
            }
            for addr in &addrs {
                if let Err(reason) = policy.address_allowed(addr.ip()) {
                    return refuse(reason);
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Most redirects followed for one MCP request.
const MAX_REDIRECTS: usize = 3;

/// One per backend: a connection pool with keep-alive, reused by every request.
pub struct HttpClient {
    client: reqwest::Client,
    config: NetConfig,
    refused: Arc<Mutex<Option<(String, &'static str)>>>,
}

static TLS: std::sync::OnceLock<rustls::ClientConfig> = std::sync::OnceLock::new();

/// The TLS configuration every client of this process uses: the system's
/// root certificates (`/etc/ssl/certs`, as OpenSSL finds them), loaded once
/// per process. Loading them costs milliseconds; a program that forks (the
/// PostgreSQL postmaster) calls this before forking, so that no child pays.
pub fn tls_config() -> &'static rustls::ClientConfig {
    TLS.get_or_init(|| {
        // ring as rustls' crypto; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable or malformed system certificates are skipped: such a
        // certificate can only make fewer servers trusted, never more.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    })
}

/// Idle keep-alive connections are not reused after this long: servers
/// close them, commonly after 5 s (Node's http module) or more, and a
/// connection the server closed while it sat in the pool fails the request
/// sent on it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

impl HttpClient {
    /// A client that resolves names on a plain thread (see `with_spawner`).
    pub fn new(config: NetConfig) -> Result<Self, NetError> {
        Self::with_spawner(config, spawn_std_thread)
    }

    /// A client whose resolver thread is started by `spawn`.
    pub fn with_spawner(config: NetConfig, spawn: SpawnThread) -> Result<Self, NetError> {
        let refused = Arc::new(Mutex::new(None));
        let dns = Arc::new(DnsThread { spawn, queue: Mutex::new(None) });
        let resolver = PolicyResolver { policy: config.policy.clone(), dns, refused: refused.clone() };
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config().clone())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver))
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("mcp_oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NetError::Transport { host: String::new(), detail: format!("HTTP client: {e}") })?;
        Ok(Self { client, config, refused })
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Sends `request` under the policy and reads the whole body, up to
    /// `max_response_bytes`, within `request_timeout` (redirects included).
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, NetError> {
        let host = display_host(&request.url);
        let deadline = self.config.request_timeout;
        match tokio::time::timeout(deadline, async { self.open(request).await?.collect().await }).await {
            Ok(result) => result,
            Err(_) => Err(NetError::Timeout { host }),
        }
    }

    /// Sends `request` under the policy and returns as soon as the response's
    /// status and headers are in; its body is then read as it arrives (an
    /// event stream), up to `max_response_bytes`. The caller bounds the time.
    pub async fn open(&self, mut request: HttpRequest) -> Result<OpenResponse, NetError> {
        for _ in 0..=MAX_REDIRECTS {
            self.config.policy.check(&request.url)?;
            let host = display_host(&request.url);
            let response = self.open_once(&request, &host).await?;
            let redirect = request.follow_same_origin && matches!(response.status, 307 | 308);
            if !redirect {
                return Ok(response);
            }
            let target = response
                .header("location")
                .and_then(|l| request.url.join(l).ok())
                .ok_or_else(|| NetError::Transport { host: host.clone(), detail: "a redirect without a usable Location".into() })?;
            if target.origin() != request.url.origin() {
                // Credentials and custom headers never go to another origin.
                return Err(NetError::Blocked { host, reason: "a redirect to another origin was refused".into() });
            }
            request.url = target;
        }
        Err(NetError::Transport { host: display_host(&request.url), detail: "too many redirects".into() })
    }

    async fn open_once(&self, request: &HttpRequest, host: &str) -> Result<OpenResponse, NetError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, request.url.clone()).headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        *self.refused.lock().expect("not poisoned") = None;
        let response = builder.send().await.map_err(|e| self.classify_send(e, host))?;
        let limit = self.config.max_response_bytes;
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(NetError::TooLarge { host: host.to_owned(), limit });
        }
        Ok(OpenResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            host: host.to_owned(),
            inner: response,
            read: 0,
            limit,
        })
    }

    /// A send error, or the policy's refusal when the resolver refused.
    fn classify_send(&self, error: reqwest::Error, host: &str) -> NetError {
        match self.refused.lock().expect("not poisoned").take() {
            Some((name, reason)) => NetError::Blocked { host: name, reason: reason.to_owned() },
            None => classify(error, host),
        }
    }
}

fn classify(error: reqwest::Error, host: &str) -> NetError {
    let host = host.to_owned();
    if error.is_timeout() {
        NetError::Timeout { host }
    } else if error.is_connect() {
        NetError::Connect { host }
    } else {
        // reqwest's Display can include the URL; keep only the kind.
        let detail = if error.is_body() || error.is_decode() {
            "the response body could not be read"
        } else if error.is_request() {
            "the request could not be sent"
        } else {
            "the HTTP exchange failed"
        };
        NetError::Transport { host, detail: detail.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Sun, 06 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(120));
        assert_eq!(retry_after("Sun, 06 Dec 2026 10:00:30 GMT", now), Some(30));
        assert_eq!(retry_after("Sun, 06 Dec 2026 09:59:00 GMT", now), Some(0));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    fn policy(loopback: bool, private: bool, hosts: &str) -> NetPolicy {
        NetPolicy {
            allow_http_loopback: loopback,
            allow_private_networks: private,
            allowed_hosts: crate::settings::allowed_hosts(hosts).unwrap(),
        }
    }

    fn check(p: &NetPolicy, url: &str) -> Result<(), NetError> {
        p.check(&Url::parse(url).unwrap())
    }

    #[test]
    fn https_public_hosts_pass_by_default() {
        let p = policy(false, false, "");
        assert!(check(&p, "https://mcp.example.com/mcp").is_ok());
        assert!(check(&p, "https://93.184.216.34/").is_ok());
    }

    #[test]
    fn schemes_http_and_credentials() {
        let p = policy(false, false, "");
        for bad in ["http://mcp.example.com/", "ftp://x.example/", "file:///etc/passwd", "https://u:p@x.example/"] {
            assert!(matches!(check(&p, bad), Err(NetError::Blocked { .. })), "{bad}");
        }
    }

    #[test]
    fn loopback_needs_the_setting() {
        let off = policy(false, false, "");
        let on = policy(true, false, "");
        for url in ["http://127.0.0.1:8080/mcp", "http://localhost:1/", "http://[::1]:9/", "https://127.0.0.1/"] {
            assert!(check(&off, url).is_err(), "{url}");
            assert!(check(&on, url).is_ok(), "{url}");
        }
        assert!(check(&on, "http://mcp.example.com/").is_err());
    }

    #[test]
    fn private_literals_are_blocked_unless_allowed() {
        let p = policy(true, false, "");
        for url in [
            "https://10.0.0.1/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::]/",
        ] {
            assert!(check(&p, url).is_err(), "{url}");
        }
        assert!(check(&policy(false, true, ""), "https://10.0.0.1/").is_ok());
    }

    #[test]
    fn allow_list() {
        let p = policy(false, false, "mcp.example.com, api.example.com:8443");
        assert!(check(&p, "https://mcp.example.com/x").is_ok());
        assert!(check(&p, "https://MCP.example.com:443/x").is_ok());
        assert!(check(&p, "https://api.example.com:8443/").is_ok());
        assert!(check(&p, "https://api.example.com/").is_err());
        assert!(check(&p, "https://other.example.com/").is_err());
    }

    #[test]
    fn metadata_is_never_reachable() {
        let open = policy(true, true, "");
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:169.254.169.254]/",
            "https://100.100.100.200/",
        ] {
            assert!(check(&open, url).is_err(), "{url}");
        }
    }

    #[test]
    fn embedded_and_encoded_addresses() {
        let p = policy(false, false, "");
        for url in [
            "https://2130706433/",
            "https://0x7f000001/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a00:1]/",
            "https://[2002:a00:1::]/",
            "https://[2001:0:1::1]/",
            "https://[::ffff:a00:1]/",
            "https://0/",
            "https://[fec0::1]/",
            "https://198.18.0.1/",
            "https://[::ffff:0:a00:1]/",  // SIIT, IPv4-translated (RFC 6145) 10.0.0.1
            "https://[::ffff:0:7f00:1]/", // ... 127.0.0.1
            "https://[100::1]/",          // discard-only (RFC 6666)
            "https://[100::ffff:1:2:3]/",
            "https://[2001:2::1]/", // benchmarking (RFC 5180)
        ] {
            assert!(check(&p, url).is_err(), "{url}");
        }
        assert!(check(&p, "https://[2606:4700::1111]/").is_ok());
        assert!(check(&p, "https://[2002:5db8:d822::1]/").is_ok(), "6to4 of a public address");
        assert!(check(&p, "https://[::ffff:0:5db8:d822]/").is_ok(), "SIIT of a public address");
        assert!(check(&p, "https://[100:0:0:1::1]/").is_ok(), "outside the discard /64");
    }

    #[test]
    fn reserved_ranges_are_exactly_the_reserved_ones() {
        let p = policy(false, false, "");
        for blocked in ["https://192.0.0.1/", "https://192.0.0.255/", "https://192.0.2.1/"] {
            assert!(check(&p, blocked).is_err(), "{blocked}");
        }
        for public in ["https://192.0.1.1/", "https://192.0.3.1/", "https://192.0.128.1/", "https://192.1.0.1/"] {
            assert!(check(&p, public).is_ok(), "{public}");
        }
    }

    #[test]
    fn metadata_in_every_ipv6_form_is_refused_even_when_private_networks_are_allowed() {
        let open = policy(true, true, "");
        for url in [
            "https://[64:ff9b::a9fe:a9fe]/", // NAT64
            "https://[2002:a9fe:a9fe::1]/",  // 6to4
            "https://[::a9fe:a9fe]/",        // IPv4-compatible
            "https://[::ffff:a9fe:a9fe]/",   // IPv4-mapped
            "https://[64:ff9b::a9fe:aa02]/", // 169.254.170.2 (ECS)
            "https://[2002:6464:64c8::]/",   // 100.100.100.200 (Alibaba)
            "https://[::a83f:8110]/",        // 168.63.129.16 (Azure)
            "https://[::ffff:0:a9fe:a9fe]/", // SIIT
        ] {
            let err = check(&open, url).unwrap_err();
            assert!(err.to_string().contains("metadata"), "{url}: {err}");
        }
        assert!(check(&open, "https://[64:ff9b::a00:1]/").is_ok(), "a private NAT64 address is allowed with the setting");
    }

    #[test]
    fn localhost_names() {
        assert!(is_localhost_name("localhost") && is_localhost_name("api.LOCALHOST.") && is_localhost_name("a.b.localhost"));
        assert!(!is_localhost_name("localhost.example.com") && !is_localhost_name("notlocalhost"));
    }

    #[test]
    fn debug_of_a_request_shows_no_secret() {
        let url = Url::parse("https://as.example/token?x=secret-in-query").unwrap();
        let request =
            HttpRequest::post(url, "application/x-www-form-urlencoded", b"code_verifier=secret-verifier".to_vec()).bearer("secret-token");
        let shown = format!("{request:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn errors_name_only_the_host() {
        let err = check(&policy(false, false, ""), "http://mcp.example.com/path?code=secret").unwrap_err();
        assert_eq!(err.host(), "mcp.example.com");
        assert!(!err.to_string().contains("secret"));
    }
}
