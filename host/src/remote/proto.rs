//! The remote protocol's messages (package `partita.remote.v1`, and the standard
//! `grpc.health.v1` check), written as prost structs; `build.rs` generates the service code
//! around them. The wire has registers, streams, link frames and leases only: no file, shell
//! or memory access.

/// Bumped whenever a message or a method changes meaning.
pub const PROTOCOL: u32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloRequest {
    #[prost(uint32, tag = "1")]
    pub protocol: u32,
    /// The client's partita version.
    #[prost(string, tag = "2")]
    pub generator_version: String,
    /// The plan the client runs: the server refuses another.
    #[prost(uint64, tag = "3")]
    pub plan_hash: u64,
    /// Which device of the plan the client wants here.
    #[prost(uint32, tag = "4")]
    pub device: u32,
    /// The client's name, for the server's log.
    #[prost(string, tag = "5")]
    pub client: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HelloReply {
    #[prost(uint32, tag = "1")]
    pub protocol: u32,
    #[prost(string, tag = "2")]
    pub generator_version: String,
    #[prost(uint64, tag = "3")]
    pub plan_hash: u64,
    #[prost(uint32, tag = "4")]
    pub device: u32,
    #[prost(uint32, tag = "5")]
    pub devices: u32,
    #[prost(string, tag = "6")]
    pub backend: String,
    /// Link ports the device has to the host (host-relayed links).
    #[prost(uint32, tag = "7")]
    pub host_links: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AcquireRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    /// How long the lease lasts without a request (every request renews it).
    #[prost(uint32, tag = "2")]
    pub ttl_ms: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseReply {
    /// The lease, also its fencing token: leases only grow, and a request under any lease but
    /// the newest is refused.
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    #[prost(uint32, tag = "2")]
    pub ttl_ms: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseRef {
    #[prost(uint64, tag = "1")]
    pub lease: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegRequest {
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    #[prost(uint32, tag = "2")]
    pub addr: u32,
    #[prost(uint32, tag = "3")]
    pub value: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegValue {
    #[prost(uint32, tag = "1")]
    pub value: u32,
}

/// One AXI4-Stream beat or link beat: tdata as 64-bit words, least significant first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Beat {
    #[prost(uint64, repeated, tag = "1")]
    pub data: Vec<u64>,
    #[prost(uint64, tag = "2")]
    pub keep: u64,
    #[prost(bool, tag = "3")]
    pub last: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Beats {
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    #[prost(message, repeated, tag = "2")]
    pub beats: Vec<Beat>,
    /// Host link port (LinkSend).
    #[prost(uint32, tag = "3")]
    pub port: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamReadRequest {
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    #[prost(uint32, tag = "2")]
    pub n: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PollRequest {
    #[prost(uint64, tag = "1")]
    pub lease: u64,
    /// Let the device run a while first.
    #[prost(bool, tag = "2")]
    pub advance: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PollReply {
    /// Output beats since the last poll.
    #[prost(message, repeated, tag = "1")]
    pub stream: Vec<Beat>,
    /// Beats the device sent on each host link since the last poll (port 0 only today).
    #[prost(message, repeated, tag = "2")]
    pub link: Vec<Beat>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// 1 SERVING, 2 NOT_SERVING (grpc.health.v1).
    #[prost(int32, tag = "1")]
    pub status: i32,
}

impl Beat {
    pub fn from_stream(b: &partita_hdl::stream::Beat) -> Self {
        Beat {
            data: trim(&b.data),
            keep: b.keep,
            last: b.last,
        }
    }

    pub fn from_link(b: &partita_hdl::frame::Beat) -> Self {
        Beat {
            data: trim(&b.data),
            keep: 0,
            last: b.last,
        }
    }

    /// The beat's tdata, or why it does not fit a beat.
    fn words(&self) -> Result<partita_hdl::frame::BeatData, String> {
        let mut d = partita_hdl::frame::BeatData::default();
        if self.data.len() > d.len() {
            return Err(format!(
                "a beat of {} 64-bit words; at most {} (512 bits)",
                self.data.len(),
                d.len()
            ));
        }
        d[..self.data.len()].copy_from_slice(&self.data);
        Ok(d)
    }

    pub fn to_stream(&self) -> Result<partita_hdl::stream::Beat, String> {
        Ok(partita_hdl::stream::Beat {
            data: self.words()?,
            keep: self.keep,
            last: self.last,
        })
    }

    pub fn to_link(&self) -> Result<partita_hdl::frame::Beat, String> {
        Ok(partita_hdl::frame::Beat {
            data: self.words()?,
            last: self.last,
        })
    }
}

/// The words up to the last non-zero one (beats of narrow streams travel short).
fn trim(d: &[u64]) -> Vec<u64> {
    let n = d.iter().rposition(|w| *w != 0).map_or(0, |i| i + 1);
    d[..n].to_vec()
}

pub mod board {
    include!(concat!(env!("OUT_DIR"), "/partita.remote.v1.Board.rs"));
}

pub mod health {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.Health.rs"));
}
