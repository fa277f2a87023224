//! A device on another machine, behind the [`Device`] trait: each call is one gRPC request to
//! `partita serve`, with a deadline. Connecting does the versioned handshake (protocol,
//! partita version, plan hash, device index) and takes the device's lease; dropping the device
//! releases it.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::proto::board::board_client::BoardClient;
use super::proto::*;
use super::server::MAX_MESSAGE;
use crate::driver::device::{Beat as StreamBeat, Device, DeviceError, LinkBeat};

/// TLS for the client: the CA that signs the server's certificate, the client's own
/// certificate and key, and the name the server's certificate carries.
pub struct ClientTls {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub domain: String,
}

/// How to reach a served device.
pub struct Connect {
    /// `HOST:PORT`.
    pub addr: String,
    /// The plan's device index the server must serve.
    pub device: usize,
    pub plan_hash: u64,
    pub token: Option<String>,
    pub tls: Option<ClientTls>,
    /// Each request's deadline (and the connection's).
    pub timeout: Duration,
    /// The name the server logs next to the client's address.
    pub client: String,
}

/// A device served by `partita serve` on another machine (or on loopback).
pub struct RemoteDevice {
    rt: tokio::runtime::Runtime,
    client: BoardClient<Channel>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    lease: u64,
    timeout: Duration,
    addr: String,
    device: usize,
    host_links: usize,
    /// What the last poll brought that the caller has not taken yet.
    stream: Vec<StreamBeat>,
    link: Vec<LinkBeat>,
}

impl RemoteDevice {
    /// Connect, shake hands and take the lease.
    pub fn connect(c: Connect) -> Result<Self, DeviceError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DeviceError::Transport(format!("cannot start the runtime: {e}")))?;
        let scheme = if c.tls.is_some() { "https" } else { "http" };
        let bad =
            |e: String| DeviceError::Transport(format!("device {} at {}: {e}", c.device, c.addr));
        let mut ep = Endpoint::from_shared(format!("{scheme}://{}", c.addr))
            .map_err(|e| bad(format!("not a HOST:PORT address ({e})")))?
            .connect_timeout(c.timeout);
        if let Some(t) = &c.tls {
            ep = ep
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(&t.ca))
                        .identity(tonic::transport::Identity::from_pem(&t.cert, &t.key))
                        .domain_name(t.domain.clone()),
                )
                .map_err(|e| bad(format!("TLS configuration: {e}")))?;
        }
        let channel = rt
            .block_on(ep.connect())
            .map_err(|e| bad(format!("cannot connect: {}", source_chain(&e))))?;
        let token = match &c.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| bad("the token holds characters a header cannot".into()))?,
            ),
            None => None,
        };
        let mut dev = RemoteDevice {
            rt,
            client: BoardClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            token,
            lease: 0,
            timeout: c.timeout,
            addr: c.addr.clone(),
            device: c.device,
            host_links: 0,
            stream: Vec::new(),
            link: Vec::new(),
        };
        let hello = dev.call(
            "handshake",
            |mut cl, r| async move { cl.hello(r).await },
            HelloRequest {
                protocol: PROTOCOL,
                generator_version: env!("CARGO_PKG_VERSION").into(),
                plan_hash: c.plan_hash,
                device: c.device as u32,
                client: c.client.clone(),
            },
        )?;
        dev.host_links = hello.host_links as usize;
        let ttl = c
            .timeout
            .as_millis()
            .clamp(1000, super::server::MAX_TTL_MS as u128) as u32;
        let lease = dev.call(
            "acquire",
            |mut cl, r| async move { cl.acquire(r).await },
            AcquireRequest {
                client: c.client,
                ttl_ms: ttl,
            },
        )?;
        dev.lease = lease.lease;
        Ok(dev)
    }

    /// One request with the token and the deadline; a failure names the device, the address
    /// and the step.
    fn call<M, R, F, Fut>(&mut self, what: &str, f: F, msg: M) -> Result<R, DeviceError>
    where
        F: FnOnce(BoardClient<Channel>, Request<M>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
    {
        // The server stops a request at its deadline (grpc-timeout); a server that does not
        // answer at all (stopped, or its network gone) is stopped here, a little later.
        let mut req = Request::new(msg);
        req.set_timeout(self.timeout);
        if let Some(t) = &self.token {
            req.metadata_mut().insert("authorization", t.clone());
        }
        let cl = self.client.clone();
        let deadline = self.timeout + Duration::from_millis(500);
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(deadline, f(cl, req)).await });
        let where_ = format!("device {} at {}: {what}", self.device, self.addr);
        match r {
            Err(_) => Err(DeviceError::Deadline {
                what: where_,
                ms: deadline.as_millis() as u64,
            }),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(s)) => Err(status_error(&where_, s, self.timeout)),
        }
    }
}

/// A gRPC status as a device error that says where and what.
fn status_error(where_: &str, s: Status, timeout: Duration) -> DeviceError {
    // tonic reports its own client-side deadline as a cancelled call.
    let expired = s.code() == Code::Cancelled && s.message().contains("Timeout expired");
    match s.code() {
        _ if expired => DeviceError::Deadline {
            what: format!("{where_} (the server did not answer)"),
            ms: timeout.as_millis() as u64,
        },
        Code::DeadlineExceeded => DeviceError::Deadline {
            what: format!("{where_} ({})", s.message()),
            ms: timeout.as_millis() as u64,
        },
        Code::Aborted => match s
            .metadata()
            .get("partita-axi-resp")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            Some(resp) => DeviceError::Refused {
                what: format!("{where_} ({})", s.message()),
                resp,
            },
            None => DeviceError::Transport(format!("{where_}: {}", s.message())),
        },
        Code::Unavailable | Code::Unknown | Code::Cancelled => DeviceError::Transport(format!(
            "{where_}: the connection failed or the server stopped ({})",
            s.message()
        )),
        Code::FailedPrecondition if s.message().starts_with("handshake refused") => {
            DeviceError::Identity(format!("{where_}: {}", s.message()))
        }
        _ => DeviceError::Transport(format!("{where_}: {:?}: {}", s.code(), s.message())),
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}

fn from_wire<T>(
    beats: &[Beat],
    conv: impl Fn(&Beat) -> Result<T, String>,
) -> Result<Vec<T>, DeviceError> {
    beats
        .iter()
        .map(|b| conv(b).map_err(|e| DeviceError::Transport(format!("the server sent {e}"))))
        .collect()
}

impl Device for RemoteDevice {
    fn reset(&mut self) -> Result<(), DeviceError> {
        self.stream.clear();
        self.link.clear();
        let lease = self.lease;
        self.call(
            "reset",
            |mut c, r| async move { c.reset(r).await },
            LeaseRef { lease },
        )
        .map(|_| ())
    }

    fn reg_read(&mut self, addr: u32) -> Result<u32, DeviceError> {
        let lease = self.lease;
        let what = format!("register read 0x{addr:03x}");
        self.call(
            &what,
            |mut c, r| async move { c.reg_read(r).await },
            RegRequest {
                lease,
                addr,
                value: 0,
            },
        )
        .map(|v| v.value)
    }

    fn reg_write(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        let lease = self.lease;
        let what = format!("register write 0x{addr:03x}");
        self.call(
            &what,
            |mut c, r| async move { c.reg_write(r).await },
            RegRequest { lease, addr, value },
        )
        .map(|_| ())
    }

    fn stream_write(&mut self, beats: &[StreamBeat]) -> Result<(), DeviceError> {
        let lease = self.lease;
        for chunk in beats.chunks(super::server::MAX_BEATS / 2) {
            let msg = Beats {
                lease,
                beats: chunk.iter().map(Beat::from_stream).collect(),
                port: 0,
            };
            self.call(
                "input stream write",
                |mut c, r| async move { c.stream_write(r).await },
                msg,
            )?;
        }
        Ok(())
    }

    fn stream_read(&mut self, n: usize) -> Result<Vec<StreamBeat>, DeviceError> {
        let mut got: Vec<StreamBeat> = std::mem::take(&mut self.stream);
        let lease = self.lease;
        while got.len() < n {
            let want = (n - got.len()).min(super::server::MAX_BEATS / 2);
            let what = format!("output read ({} of {n} beats in)", got.len());
            let b = self.call(
                &what,
                |mut c, r| async move { c.stream_read(r).await },
                StreamReadRequest {
                    lease,
                    n: want as u32,
                },
            )?;
            got.extend(from_wire(&b.beats, Beat::to_stream)?);
        }
        if got.len() > n {
            self.stream = got.split_off(n);
        }
        Ok(got)
    }

    fn stream_take(&mut self) -> Result<Vec<StreamBeat>, DeviceError> {
        Ok(std::mem::take(&mut self.stream))
    }

    fn host_links(&self) -> usize {
        self.host_links
    }

    fn link_take(&mut self, port: usize) -> Result<Vec<LinkBeat>, DeviceError> {
        if port >= self.host_links {
            return Err(DeviceError::Transport(format!(
                "device {} at {} has no host link {port}",
                self.device, self.addr
            )));
        }
        Ok(std::mem::take(&mut self.link))
    }

    fn link_send(&mut self, port: usize, beats: &[LinkBeat]) -> Result<(), DeviceError> {
        let msg = Beats {
            lease: self.lease,
            beats: beats.iter().map(Beat::from_link).collect(),
            port: port as u32,
        };
        self.call(
            "relayed frame",
            |mut c, r| async move { c.link_send(r).await },
            msg,
        )
        .map(|_| ())
    }

    /// One request: the server lets the device run a while and returns what it produced.
    fn advance(&mut self) -> Result<(), DeviceError> {
        let lease = self.lease;
        let p = self.call(
            "poll",
            |mut c, r| async move { c.poll(r).await },
            PollRequest {
                lease,
                advance: true,
            },
        )?;
        self.stream.extend(from_wire(&p.stream, Beat::to_stream)?);
        self.link.extend(from_wire(&p.link, Beat::to_link)?);
        Ok(())
    }
}

impl Drop for RemoteDevice {
    fn drop(&mut self) {
        if self.lease == 0 {
            return;
        }
        self.timeout = self.timeout.min(Duration::from_secs(2));
        let lease = self.lease;
        let _ = self.call(
            "release",
            |mut c, r| async move { c.release(r).await },
            LeaseRef { lease },
        );
    }
}
