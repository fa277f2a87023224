//! `partita serve`: one device of a plan, served over gRPC.
//!
//! The device lives on its own thread (a simulated device's model is not shared between
//! threads); requests reach it through a bounded queue. Every request but the handshake and
//! the health check names a lease: one client holds the device at a time, and a lease is also
//! its fencing token (leases only grow; a request under an older lease is refused, so a
//! client that lost its lease cannot interleave with the next client's run). A lease ends when
//! released or after its time-to-live without a request.
//!
//! Security: loopback by default; any other address needs TLS with client certificates or a
//! token (checked on every request, `authorization: Bearer ...`). Messages are limited in size
//! and every request in time. Each operation is logged with the client's identity (address,
//! certificate fingerprint or token, the name it gave) to stderr and the audit file.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use super::proto::board::board_server::{Board, BoardServer};
use super::proto::health::health_server::{Health, HealthServer};
use super::proto::*;
use crate::driver::device::{Beat as StreamBeat, Device, DeviceError, LinkBeat};

/// Largest message either side accepts (bytes).
pub const MAX_MESSAGE: usize = 8 << 20;
/// Most beats in one request or reply.
pub const MAX_BEATS: usize = 1 << 16;
/// Longest lease without a request.
pub const MAX_TTL_MS: u32 = 600_000;
/// Device rounds one poll with `advance` runs.
const POLL_ROUNDS: usize = 4;

/// TLS for the server: its certificate and key, and the CA that signs client certificates.
pub struct ServerTls {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub client_ca: Vec<u8>,
}

/// What the server says of itself in the handshake.
#[derive(Clone, Debug)]
pub struct Served {
    pub plan_hash: u64,
    pub device: u32,
    pub devices: u32,
    pub backend: String,
}

pub struct ServeOptions {
    pub listen: SocketAddr,
    pub token: Option<String>,
    pub tls: Option<ServerTls>,
    pub audit: Option<PathBuf>,
    /// Exit after this long without a request (None: serve until killed).
    pub idle_exit: Option<Duration>,
    /// Each request must finish within this.
    pub request_timeout: Duration,
    pub served: Served,
}

/// Builds the served device on the device thread.
pub type MakeDevice = Box<dyn FnOnce() -> Result<Box<dyn Device>, String> + Send>;

/// Why serving failed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
}

enum Cmd {
    Reset,
    RegRead(u32),
    RegWrite(u32, u32),
    StreamWrite(Vec<StreamBeat>),
    StreamRead(usize),
    Poll(bool),
    LinkSend(usize, Vec<LinkBeat>),
}

enum Out {
    Unit,
    Value(u32),
    Beats(Vec<StreamBeat>),
    Poll(Vec<StreamBeat>, Vec<LinkBeat>),
}

type Job = (Cmd, oneshot::Sender<Result<Out, DeviceError>>);

fn exec(dev: &mut dyn Device, cmd: Cmd) -> Result<Out, DeviceError> {
    Ok(match cmd {
        Cmd::Reset => dev.reset().map(|_| Out::Unit)?,
        Cmd::RegRead(a) => Out::Value(dev.reg_read(a)?),
        Cmd::RegWrite(a, v) => dev.reg_write(a, v).map(|_| Out::Unit)?,
        Cmd::StreamWrite(b) => dev.stream_write(&b).map(|_| Out::Unit)?,
        Cmd::StreamRead(n) => Out::Beats(dev.stream_read(n)?),
        Cmd::Poll(advance) => {
            let mut stream = Vec::new();
            let mut link = Vec::new();
            for _ in 0..if advance { POLL_ROUNDS } else { 1 } {
                if advance {
                    dev.advance()?;
                }
                stream.extend(dev.stream_take()?);
                if dev.host_links() > 0 {
                    link.extend(dev.link_take(0)?);
                }
                if !stream.is_empty() || !link.is_empty() {
                    break;
                }
            }
            Out::Poll(stream, link)
        }
        Cmd::LinkSend(p, b) => dev.link_send(p, &b).map(|_| Out::Unit)?,
    })
}

/// The lease now held: its number, holder, time-to-live and when it lapses.
struct Held {
    id: u64,
    holder: String,
    ttl: Duration,
    until: Instant,
}

struct Lease {
    current: Option<Held>,
    next: u64,
}

struct Service {
    jobs: mpsc::Sender<Job>,
    served: Served,
    host_links: u32,
    lease: Mutex<Lease>,
    audit: Option<Mutex<std::fs::File>>,
    last_request: Arc<Mutex<Instant>>,
    /// Requests at the device now (the server is not idle while one runs).
    busy: Arc<std::sync::atomic::AtomicUsize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Who sent a request: its address, its certificate's fingerprint under TLS.
fn identity<T>(req: &Request<T>) -> String {
    let addr = req
        .remote_addr()
        .map_or_else(|| "unknown address".into(), |a| a.to_string());
    match req.peer_certs() {
        Some(c) if !c.is_empty() => {
            let fp = c[0].as_ref().iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
            });
            format!("{addr} (client certificate fnv64:{fp:016x})")
        }
        _ => addr,
    }
}

fn device_status(e: DeviceError) -> Status {
    match e {
        DeviceError::Timeout { .. } | DeviceError::Deadline { .. } => {
            Status::deadline_exceeded(e.to_string())
        }
        DeviceError::Refused { resp, .. } => {
            let mut s = Status::aborted(e.to_string());
            if let Ok(v) = resp.to_string().parse() {
                s.metadata_mut().insert("partita-axi-resp", v);
            }
            s
        }
        DeviceError::Identity(_) | DeviceError::Framing(_) => {
            Status::failed_precondition(e.to_string())
        }
        DeviceError::Transport(_) => Status::unavailable(e.to_string()),
    }
}

fn beats_in<T>(
    beats: &[Beat],
    conv: impl Fn(&Beat) -> Result<T, String>,
) -> Result<Vec<T>, Status> {
    if beats.len() > MAX_BEATS {
        return Err(Status::resource_exhausted(format!(
            "{} beats in one request; at most {MAX_BEATS}",
            beats.len()
        )));
    }
    beats
        .iter()
        .map(|b| conv(b).map_err(Status::invalid_argument))
        .collect()
}

impl Service {
    fn log(&self, who: &str, op: &str, outcome: &str) {
        let line = format!(
            "partita serve: device {} client {who} {op}: {outcome}",
            self.served.device
        );
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        // The audit file when given, else stderr.
        match &self.audit {
            Some(f) => {
                let _ = writeln!(lock(f), "{t:.3} {line}");
            }
            None => eprintln!("{t:.3} {line}"),
        }
    }

    /// The request's lease must be the current one; it is renewed.
    fn check_lease(&self, lease: u64, who: &str, op: &str) -> Result<(), Status> {
        *lock(&self.last_request) = Instant::now();
        let mut l = lock(&self.lease);
        let now = Instant::now();
        let err = match &mut l.current {
            Some(h) if h.id == lease && h.until > now => {
                // Every request under the lease renews it.
                h.until = now + h.ttl;
                return Ok(());
            }
            Some(h) if h.id == lease => {
                format!("lease {lease} has expired; acquire the device again")
            }
            Some(h) if h.until > now => format!(
                "lease {lease} is not the device's current lease ({}, held by {})",
                h.id, h.holder
            ),
            _ => format!("lease {lease} is not current; acquire the device first"),
        };
        drop(l);
        self.log(who, op, &format!("refused: {err}"));
        Err(Status::failed_precondition(err))
    }

    async fn run(&self, lease: u64, who: &str, op: &str, cmd: Cmd) -> Result<Out, Status> {
        use std::sync::atomic::Ordering;
        self.check_lease(lease, who, op)?;
        self.busy.fetch_add(1, Ordering::SeqCst);
        let r = self.at_device(who, op, cmd).await;
        *lock(&self.last_request) = Instant::now();
        self.busy.fetch_sub(1, Ordering::SeqCst);
        r
    }

    async fn at_device(&self, who: &str, op: &str, cmd: Cmd) -> Result<Out, Status> {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send((cmd, tx)).await.is_err() {
            self.log(who, op, "the device thread has stopped");
            return Err(Status::unavailable("the served device has stopped"));
        }
        let r = rx
            .await
            .map_err(|_| Status::unavailable("the served device has stopped"))?;
        self.log(
            who,
            op,
            &match &r {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("error: {e}"),
            },
        );
        r.map_err(device_status)
    }
}

fn beats_out(b: &[StreamBeat]) -> Vec<Beat> {
    b.iter().map(Beat::from_stream).collect()
}

#[tonic::async_trait]
impl Board for Arc<Service> {
    async fn hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        *lock(&self.last_request) = Instant::now();
        let s = &self.served;
        let version = env!("CARGO_PKG_VERSION");
        let wrong = if r.protocol != PROTOCOL {
            Some(format!(
                "protocol {} (this server speaks {PROTOCOL})",
                r.protocol
            ))
        } else if r.generator_version != version {
            Some(format!(
                "partita {} (this server is partita {version})",
                r.generator_version
            ))
        } else if r.plan_hash != s.plan_hash {
            Some(format!(
                "plan hash {:016x} (this server serves plan {:016x})",
                r.plan_hash, s.plan_hash
            ))
        } else if r.device != s.device {
            Some(format!(
                "device {} (this server serves device {} of {})",
                r.device, s.device, s.devices
            ))
        } else {
            None
        };
        let who = format!("{who} \"{}\"", r.client);
        if let Some(w) = wrong {
            self.log(&who, "hello", &format!("refused: {w}"));
            return Err(Status::failed_precondition(format!(
                "handshake refused: the client asked for {w}"
            )));
        }
        self.log(&who, "hello", "ok");
        Ok(Response::new(HelloReply {
            protocol: PROTOCOL,
            generator_version: version.into(),
            plan_hash: s.plan_hash,
            device: s.device,
            devices: s.devices,
            backend: s.backend.clone(),
            host_links: self.host_links,
        }))
    }

    async fn acquire(&self, req: Request<AcquireRequest>) -> Result<Response<LeaseReply>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        let who = format!("{who} \"{}\"", r.client);
        *lock(&self.last_request) = Instant::now();
        if r.ttl_ms == 0 || r.ttl_ms > MAX_TTL_MS {
            return Err(Status::invalid_argument(format!(
                "lease time-to-live {} ms; allowed 1 to {MAX_TTL_MS}",
                r.ttl_ms
            )));
        }
        let now = Instant::now();
        let mut l = lock(&self.lease);
        if let Some(h) = &l.current {
            if h.until > now {
                let msg = format!(
                    "device {} is held by {} under lease {} for up to {} ms more",
                    self.served.device,
                    h.holder,
                    h.id,
                    (h.until - now).as_millis()
                );
                drop(l);
                self.log(&who, "acquire", &format!("refused: {msg}"));
                return Err(Status::failed_precondition(msg));
            }
        }
        l.next += 1;
        let id = l.next;
        let ttl = Duration::from_millis(r.ttl_ms as u64);
        l.current = Some(Held {
            id,
            holder: who.clone(),
            ttl,
            until: now + ttl,
        });
        drop(l);
        self.log(&who, "acquire", &format!("lease {id}"));
        Ok(Response::new(LeaseReply {
            lease: id,
            ttl_ms: r.ttl_ms,
        }))
    }

    async fn release(&self, req: Request<LeaseRef>) -> Result<Response<Empty>, Status> {
        let who = identity(&req);
        let lease = req.into_inner().lease;
        self.check_lease(lease, &who, "release")?;
        lock(&self.lease).current = None;
        self.log(&who, "release", &format!("lease {lease} released"));
        Ok(Response::new(Empty {}))
    }

    async fn reset(&self, req: Request<LeaseRef>) -> Result<Response<Empty>, Status> {
        let who = identity(&req);
        let lease = req.into_inner().lease;
        self.run(lease, &who, "reset", Cmd::Reset).await?;
        Ok(Response::new(Empty {}))
    }

    async fn reg_read(&self, req: Request<RegRequest>) -> Result<Response<RegValue>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        let op = format!("reg_read 0x{:03x}", r.addr);
        match self.run(r.lease, &who, &op, Cmd::RegRead(r.addr)).await? {
            Out::Value(value) => Ok(Response::new(RegValue { value })),
            _ => Err(Status::internal("unexpected device reply")),
        }
    }

    async fn reg_write(&self, req: Request<RegRequest>) -> Result<Response<Empty>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        let op = format!("reg_write 0x{:03x} = 0x{:08x}", r.addr, r.value);
        self.run(r.lease, &who, &op, Cmd::RegWrite(r.addr, r.value))
            .await?;
        Ok(Response::new(Empty {}))
    }

    async fn stream_write(&self, req: Request<Beats>) -> Result<Response<Empty>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        let beats = beats_in(&r.beats, Beat::to_stream)?;
        let op = format!("stream_write {} beats", beats.len());
        self.run(r.lease, &who, &op, Cmd::StreamWrite(beats))
            .await?;
        Ok(Response::new(Empty {}))
    }

    async fn stream_read(
        &self,
        req: Request<StreamReadRequest>,
    ) -> Result<Response<Beats>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        if r.n as usize > MAX_BEATS {
            return Err(Status::resource_exhausted(format!(
                "{} beats asked for in one read; at most {MAX_BEATS}",
                r.n
            )));
        }
        let op = format!("stream_read {} beats", r.n);
        match self
            .run(r.lease, &who, &op, Cmd::StreamRead(r.n as usize))
            .await?
        {
            Out::Beats(b) => Ok(Response::new(Beats {
                lease: r.lease,
                beats: beats_out(&b),
                port: 0,
            })),
            _ => Err(Status::internal("unexpected device reply")),
        }
    }

    async fn poll(&self, req: Request<PollRequest>) -> Result<Response<PollReply>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        match self
            .run(r.lease, &who, "poll", Cmd::Poll(r.advance))
            .await?
        {
            Out::Poll(s, l) => {
                if s.len() + l.len() > MAX_BEATS {
                    return Err(Status::resource_exhausted(
                        "more beats piled up than one reply may carry; poll more often",
                    ));
                }
                Ok(Response::new(PollReply {
                    stream: beats_out(&s),
                    link: l.iter().map(Beat::from_link).collect(),
                }))
            }
            _ => Err(Status::internal("unexpected device reply")),
        }
    }

    async fn link_send(&self, req: Request<Beats>) -> Result<Response<Empty>, Status> {
        let who = identity(&req);
        let r = req.into_inner();
        let beats = beats_in(&r.beats, Beat::to_link)?;
        let op = format!("link_send {} beats to port {}", beats.len(), r.port);
        self.run(r.lease, &who, &op, Cmd::LinkSend(r.port as usize, beats))
            .await?;
        Ok(Response::new(Empty {}))
    }
}

struct HealthService {
    jobs: mpsc::Sender<Job>,
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _req: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: if self.jobs.is_closed() { 2 } else { 1 },
        }))
    }
}

/// Refuse an address other than loopback unless clients must authenticate.
pub fn check_exposure(opts: &ServeOptions) -> Result<(), ServeError> {
    if !opts.listen.ip().is_loopback() && opts.token.is_none() && opts.tls.is_none() {
        return Err(ServeError::Refused(format!(
            "--listen {}: an address other than loopback needs TLS with client certificates (--tls-cert, --tls-key, --client-ca) or a token (--token-file); loopback (127.0.0.1) needs neither",
            opts.listen
        )));
    }
    Ok(())
}

/// Serve until killed (or idle for `idle_exit`). `ready` gets the bound address once the
/// device is built and the socket listens.
pub fn serve(
    opts: ServeOptions,
    make: MakeDevice,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    check_exposure(&opts)?;
    let (jobs, mut rx) = mpsc::channel::<Job>(16);
    let (built_tx, built_rx) = std::sync::mpsc::channel::<Result<u32, String>>();
    let thread = std::thread::Builder::new()
        .name("partita-device".into())
        .spawn(move || {
            let mut dev = match make() {
                Ok(d) => d,
                Err(e) => {
                    let _ = built_tx.send(Err(e));
                    return;
                }
            };
            let _ = built_tx.send(Ok(dev.host_links() as u32));
            while let Some((cmd, tx)) = rx.blocking_recv() {
                let _ = tx.send(exec(dev.as_mut(), cmd));
            }
        })
        .map_err(|e| ServeError::Io(format!("cannot start the device thread: {e}")))?;
    let host_links = built_rx
        .recv()
        .map_err(|_| ServeError::Io("the device thread stopped while building".into()))?
        .map_err(ServeError::Refused)?;
    let audit = match &opts.audit {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    ServeError::Io(format!("cannot open the audit log {}: {e}", p.display()))
                })?,
        )),
        None => None,
    };
    let last_request = Arc::new(Mutex::new(Instant::now()));
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let svc = Arc::new(Service {
        busy: busy.clone(),
        jobs: jobs.clone(),
        served: opts.served.clone(),
        host_links,
        lease: Mutex::new(Lease {
            current: None,
            next: 0,
        }),
        audit,
        last_request: last_request.clone(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io(format!("cannot start the runtime: {e}")))?;
    let token = opts.token.clone();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen on {}: {e}", opts.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Io(e.to_string()))?;
        let mut builder = tonic::transport::Server::builder()
            .timeout(opts.request_timeout)
            .concurrency_limit_per_connection(8);
        if let Some(t) = &opts.tls {
            let cfg = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(&t.cert, &t.key))
                .client_ca_root(tonic::transport::Certificate::from_pem(&t.client_ca));
            builder = builder
                .tls_config(cfg)
                .map_err(|e| ServeError::Refused(format!("TLS configuration: {e}")))?;
        }
        let auth = move |req: Request<()>| -> Result<Request<()>, Status> {
            let Some(want) = &token else {
                return Ok(req);
            };
            let got = req
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match got {
                Some(g) if constant_time_eq(g.as_bytes(), want.as_bytes()) => Ok(req),
                _ => Err(Status::unauthenticated(
                    "this server needs a token (authorization: Bearer ...); the client gave none or a wrong one",
                )),
            }
        };
        let board = tonic::service::interceptor::InterceptedService::new(
            BoardServer::new(svc)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            auth.clone(),
        );
        let health = tonic::service::interceptor::InterceptedService::new(
            HealthServer::new(HealthService { jobs }),
            auth,
        );
        let idle = opts.idle_exit;
        let stop = async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(limit) = idle {
                    let busy = busy.load(std::sync::atomic::Ordering::SeqCst) > 0;
                    if !busy && lock(&last_request).elapsed() > limit {
                        break;
                    }
                }
            }
        };
        ready(addr);
        builder
            .add_service(board)
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop,
            )
            .await
            .map_err(|e| ServeError::Io(format!("serving on {addr}: {e}")))
    });
    drop(rt);
    let _ = thread.join();
    result
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
