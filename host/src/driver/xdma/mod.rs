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
//! [`file`] implements them on the driver's device files (or a fake tree of them), [`cosim`]
//! on a simulated card. The [`XdmaDevice`] on top turns the [`Device`] trait's beats into
//! packets and back. The driver's files cannot be polled, and an XDMA call returns only when
//! its packet has moved, so every channel has a thread of its own: a writer per host-to-card
//! channel (a card takes its input only while its output is read, so one thread doing both
//! would wait for itself) and a reader per card-to-host channel, which hands over whole
//! packets. That is what lets the system driver poll several cards: a device of a
//! host-relayed system has its link on the core's second channel (`gen --board xdma` wires
//! it there), one packet per frame.

#[cfg(feature = "sim")]
pub mod cosim;
pub mod file;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

use partita_hdl::regs;
use partita_hdl::stream::Layout;

use super::device::{Beat, Device, DeviceError, LinkBeat};

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
/// TLAST (or at `max`). It runs on a reader thread of its own.
pub trait C2h: Send {
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

/// A link frame's bytes as beats of `beat_bytes` bytes (every byte kept), TLAST on the last.
/// A frame that is not whole beats is a framing error.
pub fn frame_beats(bytes: &[u8], beat_bytes: usize) -> Result<Vec<LinkBeat>, TransportError> {
    if beat_bytes == 0 || !bytes.len().is_multiple_of(beat_bytes) || bytes.is_empty() {
        return Err(TransportError::Stream(format!(
            "a link packet of {} byte(s) is not whole {beat_bytes}-byte beats (link frames are whole beats)",
            bytes.len()
        )));
    }
    let n = bytes.len() / beat_bytes;
    Ok(bytes
        .chunks(beat_bytes)
        .enumerate()
        .map(|(k, c)| {
            let mut data = [0u64; partita_hdl::frame::BEAT_WORDS];
            for (i, x) in c.iter().enumerate() {
                data[i / 8] |= (*x as u64) << (8 * (i % 8));
            }
            LinkBeat {
                data,
                last: k + 1 == n,
            }
        })
        .collect())
}

/// The `beat_bytes` bytes of a link beat, least significant first.
pub fn link_beat_bytes(b: &LinkBeat, beat_bytes: usize, out: &mut Vec<u8>) {
    for i in 0..beat_bytes {
        out.push((b.data[i / 8] >> (8 * (i % 8))) as u8);
    }
}

/// Link beats as packets (one per frame, split at TLAST) of `beat_bytes` bytes per beat.
pub fn frame_packets(beats: &[LinkBeat], beat_bytes: usize) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut p = Vec::new();
    for b in beats {
        link_beat_bytes(b, beat_bytes, &mut p);
        if b.last {
            packets.push(std::mem::take(&mut p));
        }
    }
    if !p.is_empty() {
        packets.push(p);
    }
    packets
}

/// Beats of the longest link frame (header, 16 payload beats, CRC) with room to spare: a read
/// that fills this many is not a partita frame.
const MAX_FRAME_BEATS: usize = 64;

/// How long a reader thread's single read waits before it looks at its stop flag again.
const READ_SLICE: Duration = Duration::from_millis(50);

/// How long [`Device::advance`] waits for the card to send something.
const ADVANCE_WAIT: Duration = Duration::from_micros(500);

/// The host-to-card writer thread's state, shared with the device.
#[derive(Default)]
struct WriterState {
    /// Packets handed over and not yet written.
    pending: usize,
    /// The first error; later writes are dropped.
    error: Option<TransportError>,
}

/// One host-to-card channel's writer thread. An XDMA write returns only when the card has
/// taken the whole packet, so writes run off the caller's thread.
struct Writer {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    state: Arc<Mutex<WriterState>>,
}

impl Writer {
    fn spawn(h2c: impl H2c + 'static, timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let state = Arc::new(Mutex::new(WriterState::default()));
        let st = state.clone();
        let mut h2c = h2c;
        let thread = std::thread::spawn(move || {
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
        Writer {
            tx: Some(tx),
            thread: Some(thread),
            state,
        }
    }

    /// The shared state (a panicked writer leaves it readable).
    fn state(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self) -> Option<TransportError> {
        self.state().error.clone()
    }

    fn pending(&self) -> usize {
        self.state().pending
    }

    /// Hands `packets` to the thread; an earlier write's error comes back here.
    fn send(&mut self, packets: Vec<Vec<u8>>) -> Result<(), DeviceError> {
        if let Some(e) = self.error() {
            return Err(e.into());
        }
        let stopped = || DeviceError::Transport("the host-to-card writer has stopped".into());
        for p in packets {
            self.state().pending += 1;
            self.tx
                .as_ref()
                .ok_or_else(stopped)?
                .send(p)
                .map_err(|_| stopped())?;
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its current packet (each has a deadline).
        self.tx.take();
        if let Some(w) = self.thread.take() {
            let _ = w.join();
        }
    }
}

/// Wakes [`Device::advance`] when a reader has something.
#[derive(Default)]
struct Wake {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    fn bump(&self) {
        *self.count.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_all();
    }

    fn count(&self) -> u64 {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `limit` for the count to move past `seen`.
    fn wait(&self, seen: u64, limit: Duration) {
        let g = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.cv.wait_timeout_while(g, limit, |c| *c == seen);
    }
}

/// What a reader thread delivers: one whole packet, or the error that ended it.
type Delivery = Result<Vec<u8>, TransportError>;

/// One card-to-host channel's reader thread. The XDMA driver's files cannot be polled, so a
/// thread reads each channel and hands over whole packets: an output vector of `packet` bytes
/// (a read may return part of it, the driver's partial count, and the rest is read on), or a
/// link frame (one read, ending at TLAST).
struct Reader {
    rx: mpsc::Receiver<Delivery>,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    /// Bytes of a vector read so far (the driver's partial count), not yet handed over.
    partial: Arc<AtomicUsize>,
    what: Packets,
    /// The error that ended the reader, kept for every later call.
    failed: Option<TransportError>,
}

/// What a reader reads: output vectors of a known size, or link frames.
#[derive(Clone, Copy)]
enum Packets {
    Vectors(usize),
    Frames(usize),
}

impl Reader {
    fn spawn(c2h: impl C2h + 'static, what: Packets, timeout: Duration, wake: Arc<Wake>) -> Self {
        let (tx, rx) = mpsc::channel::<Delivery>();
        let (done_tx, done) = mpsc::channel::<()>();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let partial = Arc::new(AtomicUsize::new(0));
        let part = partial.clone();
        let mut c2h = c2h;
        std::thread::spawn(move || {
            let send = |d: Delivery| {
                let ok = tx.send(d).is_ok();
                wake.bump();
                ok
            };
            let mut p: Vec<u8> = Vec::new();
            let mut since = Instant::now();
            while !halt.load(Ordering::Relaxed) {
                let max = match what {
                    Packets::Vectors(want) => want - p.len(),
                    Packets::Frames(max) => max,
                };
                match c2h.read_packet(max, Instant::now() + READ_SLICE) {
                    Ok(more) if more.is_empty() => {
                        send(Err(TransportError::Stream(
                            "the card-to-host stream returned an empty read".into(),
                        )));
                        break;
                    }
                    Ok(more) => {
                        if p.is_empty() {
                            since = Instant::now();
                        }
                        p.extend(more);
                        part.store(p.len(), Ordering::Relaxed);
                        let whole = match what {
                            Packets::Vectors(want) => p.len() == want,
                            Packets::Frames(_) => true,
                        };
                        if whole {
                            part.store(0, Ordering::Relaxed);
                            if !send(Ok(std::mem::take(&mut p))) {
                                break;
                            }
                        }
                    }
                    // Nothing within the slice: the card has nothing yet, unless part of a
                    // vector came and the rest has not for the device's whole timeout.
                    Err(TransportError::Timeout { what: w, .. }) => {
                        if let Packets::Vectors(want) = what {
                            if !p.is_empty() && since.elapsed() >= timeout {
                                send(Err(TransportError::Timeout {
                                    what: format!("{w}{}", partial_note(p.len(), want)),
                                    limit_ms: timeout.as_millis() as u64,
                                    moved: p.len(),
                                }));
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        send(Err(e));
                        break;
                    }
                }
            }
            let _ = done_tx.send(());
        });
        Reader {
            rx,
            stop,
            done,
            partial,
            what,
            failed: None,
        }
    }

    /// The packets that have arrived, without waiting; the reader's error once it has one.
    fn take(&mut self) -> Result<Vec<Vec<u8>>, TransportError> {
        let mut v = Vec::new();
        while self.failed.is_none() {
            match self.rx.try_recv() {
                Ok(Ok(p)) => v.push(p),
                Ok(Err(e)) => self.failed = Some(e),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.failed = Some(TransportError::Stream(
                        "the card-to-host reader has stopped".into(),
                    ))
                }
            }
        }
        match (&self.failed, v.is_empty()) {
            (Some(e), true) => Err(e.clone()),
            _ => Ok(v),
        }
    }

    /// The next packet within `limit`; `None` when none came.
    fn next(&mut self, limit: Duration) -> Result<Option<Vec<u8>>, TransportError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.rx.recv_timeout(limit) {
            Ok(Ok(p)) => Ok(Some(p)),
            Ok(Err(e)) => {
                self.failed = Some(e.clone());
                Err(e)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let e = TransportError::Stream("the card-to-host reader has stopped".into());
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }
}

/// What an output read that timed out had received of its vector.
fn partial_note(got: usize, want: usize) -> String {
    if got == 0 {
        return String::new();
    }
    format!("; {got} of the vector's {want} byte(s) came, then none: a timeout, not data")
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The thread sees the flag after its current read: within a slice on a pollable file,
        // within the driver's own timeout on a card (which cannot be polled). It is waited for
        // a while, then left to end on its own.
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.done.recv_timeout(READ_SLICE * 4);
    }
}

/// A device's host link on the XDMA core's second channel (`gen --board xdma` puts it on
/// channel 1): frames the host relays to the card, and the card's frames for the host.
struct LinkChannel {
    writer: Writer,
    reader: Reader,
    beat_bytes: usize,
    /// Packets read and not yet turned into beats (those after a broken one).
    held: VecDeque<Vec<u8>>,
}

/// A partita device behind an XDMA core.
pub struct XdmaDevice<R: RegPort> {
    regs: R,
    writer: Writer,
    /// The output stream's reader; none for a device that outputs nothing.
    reader: Option<Reader>,
    link: Option<LinkChannel>,
    wake: Arc<Wake>,
    seen: u64,
    /// Bytes per output beat (the output stream's tdata width / 8).
    out_beat_bytes: usize,
    /// Each register access, packet write and packet read must finish within this.
    pub timeout: Duration,
    /// Output beats read in packets beyond what a `stream_read` asked for.
    spill: VecDeque<Beat>,
}

impl<R: RegPort> XdmaDevice<R> {
    /// A device on `regs`, `h2c` and `c2h`, whose output vectors of `out_values` values come
    /// packed as `out` says, one packet each (`out_values` 0: a device with no output).
    pub fn new(
        regs: R,
        h2c: impl H2c + 'static,
        c2h: impl C2h + 'static,
        out: Layout,
        out_values: usize,
        timeout: Duration,
    ) -> Self {
        let wake = Arc::new(Wake::default());
        let reader = (out_values > 0).then(|| {
            Reader::spawn(
                c2h,
                Packets::Vectors(packet_bytes(&out, out_values)),
                timeout,
                wake.clone(),
            )
        });
        XdmaDevice {
            regs,
            writer: Writer::spawn(h2c, timeout),
            reader,
            link: None,
            wake,
            seen: 0,
            out_beat_bytes: out.keep_bits() as usize,
            timeout,
            spill: Default::default(),
        }
    }

    /// The device's host link (`mode = "host"`) on a second channel, `beat_bits` wide.
    pub fn with_link(
        mut self,
        h2c: impl H2c + 'static,
        c2h: impl C2h + 'static,
        beat_bits: u32,
    ) -> Self {
        let beat_bytes = (beat_bits as usize).div_ceil(8);
        self.link = Some(LinkChannel {
            writer: Writer::spawn(h2c, self.timeout),
            reader: Reader::spawn(
                c2h,
                Packets::Frames(MAX_FRAME_BEATS * beat_bytes),
                self.timeout,
                self.wake.clone(),
            ),
            beat_bytes,
            held: VecDeque::new(),
        });
        self
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    fn link(&mut self, port: usize) -> Result<&mut LinkChannel, DeviceError> {
        match (&mut self.link, port) {
            (Some(l), 0) => Ok(l),
            (l, _) => Err(DeviceError::Transport(format!(
                "this card has no host link port {port} (it has {})",
                l.is_some() as usize
            ))),
        }
    }
}

impl<R: RegPort> Device for XdmaDevice<R> {
    /// The soft reset (CTRL bit 1): the card's datapath and counters back to idle; the XDMA
    /// core and the PCIe link stay up. Anything read ahead is stale: the packets the reader
    /// threads hold are dropped (a packet the card was halfway through is not).
    fn reset(&mut self) -> Result<(), DeviceError> {
        self.spill.clear();
        if let Some(r) = self.reader.as_mut() {
            r.take()?;
        }
        if let Some(l) = self.link.as_mut() {
            l.reader.take()?;
            l.held.clear();
        }
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
        self.writer.send(packets)
    }

    /// `n` output beats. Each must come within the timeout of the one before.
    fn stream_read(&mut self, n: usize) -> Result<Vec<Beat>, DeviceError> {
        let mut got: Vec<Beat> = Vec::with_capacity(n);
        while got.len() < n {
            if let Some(b) = self.spill.pop_front() {
                got.push(b);
                continue;
            }
            if let Some(e) = self.writer.error() {
                return Err(e.into());
            }
            let (beat, limit) = (got.len(), self.timeout);
            let Some(reader) = self.reader.as_mut() else {
                return Err(DeviceError::Framing(
                    "this device has no output stream (the plan sends it no output)".into(),
                ));
            };
            let r = reader.next(limit);
            let note = match reader.what {
                Packets::Vectors(want) => {
                    partial_note(reader.partial.load(Ordering::Relaxed), want)
                }
                Packets::Frames(_) => String::new(),
            };
            let waiting = |what: String| {
                DeviceError::Deadline {
                what: format!(
                    "{what}, waiting for output beat {} of {n} ({} input packet(s) not yet taken by the card)",
                    beat + 1,
                    self.writer.pending()
                ),
                ms: limit.as_millis() as u64,
            }
            };
            match r {
                Ok(Some(p)) => self.spill.extend(packet_beats(&p, self.out_beat_bytes)),
                Ok(None) => return Err(waiting(format!("card-to-host read: no answer{note}"))),
                Err(TransportError::Timeout { what, .. }) => return Err(waiting(what)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(got)
    }

    fn stream_take(&mut self) -> Result<Vec<Beat>, DeviceError> {
        if let Some(e) = self.writer.error() {
            return Err(e.into());
        }
        let mut got: Vec<Beat> = self.spill.drain(..).collect();
        if let Some(r) = self.reader.as_mut() {
            for p in r.take()? {
                got.extend(packet_beats(&p, self.out_beat_bytes));
            }
        }
        Ok(got)
    }

    fn host_links(&self) -> usize {
        self.link.is_some() as usize
    }

    fn link_take(&mut self, port: usize) -> Result<Vec<LinkBeat>, DeviceError> {
        let l = self.link(port)?;
        let max = MAX_FRAME_BEATS * l.beat_bytes;
        let mut got = Vec::new();
        let more = l.reader.take()?;
        l.held.extend(more);
        // Packet by packet: a broken one is reported, and those after it wait for the next call.
        while let Some(p) = l.held.pop_front() {
            if p.len() >= max {
                return Err(DeviceError::Framing(format!(
                    "the card sent a link packet of {} byte(s) or more on its host link; no partita frame is longer than {} beats",
                    p.len(),
                    MAX_FRAME_BEATS - 1
                )));
            }
            got.extend(frame_beats(&p, l.beat_bytes)?);
        }
        Ok(got)
    }

    fn link_send(&mut self, port: usize, beats: &[LinkBeat]) -> Result<(), DeviceError> {
        let l = self.link(port)?;
        let packets = frame_packets(beats, l.beat_bytes);
        l.writer.send(packets)
    }

    /// A card's clock runs anyway: this waits a little for it to send something, so a host
    /// polling several cards does not spin.
    fn advance(&mut self) -> Result<(), DeviceError> {
        if let Some(e) = self.writer.error() {
            return Err(e.into());
        }
        self.wake.wait(self.seen, ADVANCE_WAIT);
        self.seen = self.wake.count();
        Ok(())
    }
}
