//! The PCIe backend: a partita device behind a Xilinx XDMA core, driven through the XDMA
//! driver's semantics on a small transport layer, as FireSim drives its cards and its
//! Verilator emulation through one driver stack.
//!
//! The transport has three ports, each operation with a deadline:
//! - [`RegPort`]: 4-byte register reads and writes at 4-aligned offsets of the user BAR
//!   (AXI4-Lite);
//! - [`H2c`]: a write of one packet into the host-to-card stream (AXI4-Stream, TLAST on its
//!   last beat);
//! - [`C2h`]: a read from the card-to-host stream that ends at TLAST (the end of a packet).
//!
//! [`file`] implements them on the driver's device files (or a fake tree of them). The
//! [`XdmaDevice`] on top turns the [`Device`] trait's beats into packets and back. The host-to-
//! card writes run on a thread of their own: an XDMA write returns only when the card has taken
//! the whole packet, and a card takes its input only while its output is read, so one thread
//! doing both would wait for itself.

#[cfg(feature = "sim")]
pub mod cosim;
pub mod file;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

use partita_hdl::regs;
use partita_hdl::stream::Layout;

use super::device::{Beat, Device, DeviceError};

/// What a transport operation can end in besides success.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The deadline passed (or the driver said ETIMEDOUT) with `moved` bytes moved.
    #[error("{what}: no answer within {limit_ms} ms ({moved} byte(s) moved)")]
    Timeout {
        what: String,
        limit_ms: u64,
        moved: usize,
    },
    /// A register access the BAR cannot make (misaligned, or a short count).
    #[error("{0}")]
    Access(String),
    /// A stream packet of the wrong size, or a stream that ended.
    #[error("{0}")]
    Stream(String),
    /// Opening or using a device file failed.
    #[error("{0}")]
    Io(String),
}

impl From<TransportError> for DeviceError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Timeout { what, limit_ms, .. } => {
                DeviceError::Deadline { what, ms: limit_ms }
            }
            TransportError::Access(m) | TransportError::Io(m) => DeviceError::Transport(m),
            TransportError::Stream(m) => DeviceError::Framing(m),
        }
    }
}

/// Register access through the user BAR.
pub trait RegPort {
    fn reg_read(&mut self, addr: u32, deadline: Instant) -> Result<u32, TransportError>;
    fn reg_write(&mut self, addr: u32, value: u32, deadline: Instant)
        -> Result<(), TransportError>;
}

/// The host-to-card stream: each call is one packet (TLAST on its last beat).
pub trait H2c: Send {
    fn write_packet(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError>;
}

/// The card-to-host stream: each call returns one packet of at most `max` bytes, ending at
/// TLAST (or at `max`).
pub trait C2h {
    fn read_packet(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, TransportError>;
}

/// A register offset the BAR accepts: 4-aligned (the XDMA driver answers EPROTO otherwise).
pub fn check_aligned(addr: u32) -> Result<(), TransportError> {
    if !addr.is_multiple_of(4) {
        return Err(TransportError::Access(format!(
            "register offset 0x{addr:x} is not 4-aligned; the XDMA user BAR moves 4 bytes at offsets that are multiples of 4"
        )));
    }
    Ok(())
}

/// The bytes a beat carries: its kept bytes, least significant first (the stream layout keeps
/// a beat's low bytes).
pub fn beat_bytes(b: &Beat, out: &mut Vec<u8>) {
    let n = b.keep.count_ones() as usize;
    for i in 0..n {
        out.push((b.data[i / 8] >> (8 * (i % 8))) as u8);
    }
}

/// A packet's bytes as beats of `beat_bytes` bytes each: tkeep set for the bytes present, TLAST
/// on the last.
pub fn packet_beats(bytes: &[u8], beat_bytes: usize) -> Vec<Beat> {
    let beat_bytes = beat_bytes.max(1);
    let chunks: Vec<&[u8]> = bytes.chunks(beat_bytes).collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let mut b = Beat::default();
            for (i, x) in c.iter().enumerate() {
                b.data[i / 8] |= (*x as u64) << (8 * (i % 8));
            }
            b.keep = if c.len() >= 64 {
                u64::MAX
            } else {
                (1u64 << c.len()) - 1
            };
            b.last = k == last;
            b
        })
        .collect()
}

/// Bytes of a packed vector of `values` values (what a card-to-host packet of it carries).
pub fn packet_bytes(layout: &Layout, values: usize) -> usize {
    let mut bytes = Vec::new();
    for b in layout.pack(&vec![0; values.max(1)], values.max(1)) {
        beat_bytes(&b, &mut bytes);
    }
    bytes.len()
}

/// The host-to-card writer thread's state, shared with the device.
#[derive(Default)]
struct WriterState {
    /// Packets handed over and not yet written.
    pending: usize,
    /// The first error; later writes are dropped.
    error: Option<TransportError>,
}

/// A partita device behind an XDMA core.
pub struct XdmaDevice<R: RegPort, C: C2h> {
    regs: R,
    c2h: C,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<WriterState>>,
    /// Bytes per output beat (the output stream's tdata width / 8).
    out_beat_bytes: usize,
    /// Bytes of one output vector: one card-to-host packet.
    out_packet_bytes: usize,
    /// Each register access, packet write and packet read must finish within this.
    pub timeout: Duration,
    /// Output beats read in packets beyond what a `stream_read` asked for.
    spill: std::collections::VecDeque<Beat>,
}

impl<R: RegPort, C: C2h> XdmaDevice<R, C> {
    /// A device on `regs`, `h2c` and `c2h`, whose output vectors of `out_values` values come
    /// packed as `out` says, one packet each.
    pub fn new(
        regs: R,
        h2c: impl H2c + 'static,
        c2h: C,
        out: Layout,
        out_values: usize,
        timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let state = Arc::new(Mutex::new(WriterState::default()));
        let st = state.clone();
        let mut h2c = h2c;
        let writer = std::thread::spawn(move || {
            for packet in rx.iter() {
                // After the first error the stream is broken: later packets are dropped.
                let broken = st.lock().unwrap_or_else(|p| p.into_inner()).error.is_some();
                let r = if broken {
                    Ok(())
                } else {
                    h2c.write_packet(&packet, Instant::now() + timeout)
                };
                let mut s = st.lock().unwrap_or_else(|p| p.into_inner());
                s.pending -= 1;
                if let Err(e) = r {
                    s.error.get_or_insert(e);
                }
            }
        });
        XdmaDevice {
            regs,
            c2h,
            tx: Some(tx),
            writer: Some(writer),
            state,
            out_beat_bytes: out.keep_bits() as usize,
            out_packet_bytes: packet_bytes(&out, out_values),
            timeout,
            spill: Default::default(),
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// The writer's shared state (a panicked writer leaves it readable).
    fn writer_state(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The host-to-card writer's first error, if any.
    fn writer_error(&self) -> Option<TransportError> {
        self.writer_state().error.clone()
    }

    /// Packets handed to the writer and not yet written.
    pub fn pending_packets(&self) -> usize {
        self.writer_state().pending
    }
}

impl<R: RegPort, C: C2h> XdmaDevice<R, C> {
    /// One output vector's packet. A read may return part of it (the driver's partial count);
    /// the rest is read on. A partial count followed by a timeout is a timeout, not data.
    fn read_vector(&mut self, beat: usize, of: usize) -> Result<Vec<u8>, DeviceError> {
        let want = self.out_packet_bytes;
        let mut p: Vec<u8> = Vec::with_capacity(want);
        let d = self.deadline();
        while p.len() < want {
            match self.c2h.read_packet(want - p.len(), d) {
                Ok(more) if more.is_empty() => {
                    return Err(DeviceError::Transport(
                        "the card-to-host stream returned an empty read".into(),
                    ))
                }
                Ok(more) => p.extend(more),
                Err(TransportError::Timeout { what, limit_ms, .. }) => {
                    let partial = if p.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; {} of the vector's {want} byte(s) came, then none: a timeout, not data",
                            p.len()
                        )
                    };
                    return Err(DeviceError::Deadline {
                        what: format!(
                            "{what}, waiting for output beat {} of {of} ({} input packet(s) not yet taken by the card){partial}",
                            beat + 1,
                            self.pending_packets()
                        ),
                        ms: limit_ms,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(p)
    }
}

impl<R: RegPort, C: C2h> Drop for XdmaDevice<R, C> {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its current packet (each has a deadline).
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl<R: RegPort, C: C2h> Device for XdmaDevice<R, C> {
    /// The soft reset (CTRL bit 1): the card's datapath and counters back to idle; the XDMA
    /// core and the PCIe link stay up. Anything read ahead is stale.
    fn reset(&mut self) -> Result<(), DeviceError> {
        self.spill.clear();
        let d = self.deadline();
        Ok(self.regs.reg_write(regs::CTRL.offset, 2, d)?)
    }

    fn reg_read(&mut self, addr: u32) -> Result<u32, DeviceError> {
        check_aligned(addr)?;
        let d = self.deadline();
        Ok(self.regs.reg_read(addr, d)?)
    }

    fn reg_write(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        check_aligned(addr)?;
        let d = self.deadline();
        Ok(self.regs.reg_write(addr, value, d)?)
    }

    fn stream_write(&mut self, beats: &[Beat]) -> Result<(), DeviceError> {
        if let Some(e) = self.writer_error() {
            return Err(e.into());
        }
        let mut packet = Vec::new();
        let mut packets = Vec::new();
        for b in beats {
            beat_bytes(b, &mut packet);
            if b.last {
                packets.push(std::mem::take(&mut packet));
            }
        }
        if !packet.is_empty() {
            packets.push(packet);
        }
        let stopped = || DeviceError::Transport("the host-to-card writer has stopped".into());
        for p in packets {
            self.writer_state().pending += 1;
            self.tx
                .as_ref()
                .ok_or_else(stopped)?
                .send(p)
                .map_err(|_| stopped())?;
        }
        Ok(())
    }

    fn stream_read(&mut self, n: usize) -> Result<Vec<Beat>, DeviceError> {
        let mut got: Vec<Beat> = Vec::with_capacity(n);
        while got.len() < n {
            if let Some(b) = self.spill.pop_front() {
                got.push(b);
                continue;
            }
            if let Some(e) = self.writer_error() {
                return Err(e.into());
            }
            let p = self.read_vector(got.len(), n)?;
            self.spill.extend(packet_beats(&p, self.out_beat_bytes));
        }
        Ok(got)
    }
}
