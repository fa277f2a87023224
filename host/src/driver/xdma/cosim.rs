//! The XDMA transport over a simulated card, so the whole PCIe backend ([`super::XdmaDevice`]:
//! packets, the writer and reader threads, partial reads, deadlines, the host link on the
//! second channel) runs bit-exact against the golden model without a board.
//!
//! The card is a device of the cosim (the Verilator model of one device's RTL: a
//! [`crate::driver::SimDevice`], or one device of a host-relayed system behind a
//! [`crate::driver::lockstep::LockstepDevice`]) on a thread of its own, whose clock runs
//! whatever the host does, as a board's does. Between slices of cycles the card answers
//! register requests, takes the packets the host wrote, and sends what its streams produced,
//! one packet per TLAST. The model is built on the card's thread (a Verilator model stays on
//! the thread that made it).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use partita_hdl::stream::Layout;

use super::{beat_bytes, frame_beats, link_beat_bytes, packet_beats, C2h, H2c, RegPort};
use super::{TransportError, XdmaDevice};
use crate::driver::device::{Device, DeviceError};

/// Builds the card's device, on the card's thread.
pub type MakeCard = Box<dyn FnOnce() -> Result<Box<dyn Device>, String> + Send>;

enum Request {
    Read(u32, mpsc::Sender<Result<u32, TransportError>>),
    Write(u32, u32, mpsc::Sender<Result<(), TransportError>>),
}

/// Why the card stopped, for the host's next access.
type Stopped = Arc<Mutex<Option<String>>>;

fn stopped_error(why: &Stopped) -> TransportError {
    let why = why.lock().unwrap_or_else(|p| p.into_inner()).clone();
    TransportError::Stream(format!(
        "the simulated card has stopped: {}",
        why.unwrap_or_else(|| "its thread ended".into())
    ))
}

fn transport_error(e: DeviceError) -> TransportError {
    match e {
        DeviceError::Refused { what, resp } => {
            TransportError::Access(format!("{what}: the card answered AXI response {resp}"))
        }
        DeviceError::Framing(m) => TransportError::Stream(m),
        other => TransportError::Io(format!("the simulated card: {other}")),
    }
}

/// The register port of a simulated card.
pub struct CardRegs {
    tx: mpsc::Sender<Request>,
    stopped: Stopped,
}

/// A host-to-card port of a simulated card (it takes a packet at once).
pub struct CardH2c {
    tx: mpsc::Sender<Vec<u8>>,
    stopped: Stopped,
}

/// A card-to-host port of a simulated card: the packets its stream sent.
pub struct CardC2h {
    rx: mpsc::Receiver<Vec<u8>>,
    rest: VecDeque<u8>,
    stopped: Stopped,
}

/// A simulated card's ports: registers, channel 0 (the streams) and, for a device with a host
/// link, channel 1.
pub struct Card {
    pub regs: CardRegs,
    pub h2c: CardH2c,
    pub c2h: CardC2h,
    pub link: Option<(CardH2c, CardC2h)>,
}

/// What the card thread does with each stream: bytes of the packet now being sent.
struct Outgoing {
    tx: mpsc::Sender<Vec<u8>>,
    packet: Vec<u8>,
}

/// Starts a card: `make` builds its device on the card's thread (out of reset, as a card comes
/// up), whose input stream is packed as `input` says and whose link beats, if it has a host
/// link, are `link_bits` wide. The card runs until its register port is dropped.
pub fn card(make: MakeCard, input: Layout, link_bits: u32) -> Result<Card, String> {
    card_with(make, input, link_bits, None)
}

/// [`card`], hanging once it has sent `hang_after` output packets: from then on it answers
/// nothing and takes nothing, as a hung card does (a failure injected by tests).
pub fn card_with(
    make: MakeCard,
    input: Layout,
    link_bits: u32,
    hang_after: Option<usize>,
) -> Result<Card, String> {
    let (req_tx, req_rx) = mpsc::channel::<Request>();
    let (h2c_tx, h2c_rx) = mpsc::channel::<Vec<u8>>();
    let (c2h_tx, c2h_rx) = mpsc::channel::<Vec<u8>>();
    let (lh2c_tx, lh2c_rx) = mpsc::channel::<Vec<u8>>();
    let (lc2h_tx, lc2h_rx) = mpsc::channel::<Vec<u8>>();
    let (built_tx, built_rx) = mpsc::channel::<Result<bool, String>>();
    let stopped: Stopped = Arc::default();
    let why = stopped.clone();
    let in_bytes = input.keep_bits() as usize;
    let link_bytes = (link_bits as usize).div_ceil(8);
    std::thread::Builder::new()
        .name("partita-card".into())
        .spawn(move || {
            let mut dev = match make() {
                Ok(d) => d,
                Err(e) => {
                    let _ = built_tx.send(Err(e));
                    return;
                }
            };
            let link = dev.host_links() > 0;
            let _ = built_tx.send(Ok(link));
            let mut out = Outgoing {
                tx: c2h_tx,
                packet: Vec::new(),
            };
            let mut link_out = Outgoing {
                tx: lc2h_tx,
                packet: Vec::new(),
            };
            let mut sent = 0usize;
            let r = (|| -> Result<(), String> {
                loop {
                    if hang_after.is_some_and(|k| sent >= k) {
                        // Hung: requests stay unanswered until the host gives up on them.
                        let mut held = Vec::new();
                        loop {
                            match req_rx.recv_timeout(std::time::Duration::from_millis(20)) {
                                Ok(r) => held.push(r),
                                Err(mpsc::RecvTimeoutError::Timeout) => {}
                                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                            }
                        }
                    }
                    loop {
                        match req_rx.try_recv() {
                            Ok(Request::Read(a, reply)) => {
                                let _ = reply.send(dev.reg_read(a).map_err(transport_error));
                            }
                            Ok(Request::Write(a, v, reply)) => {
                                let _ = reply.send(dev.reg_write(a, v).map_err(transport_error));
                            }
                            Err(mpsc::TryRecvError::Empty) => break,
                            // The host is gone.
                            Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
                        }
                    }
                    for p in h2c_rx.try_iter() {
                        dev.stream_write(&packet_beats(&p, in_bytes))
                            .map_err(|e| e.to_string())?;
                    }
                    if link {
                        for p in lh2c_rx.try_iter() {
                            let beats = frame_beats(&p, link_bytes).map_err(|e| e.to_string())?;
                            dev.link_send(0, &beats).map_err(|e| e.to_string())?;
                        }
                    }
                    dev.advance().map_err(|e| e.to_string())?;
                    for b in dev.stream_take().map_err(|e| e.to_string())? {
                        beat_bytes(&b, &mut out.packet);
                        if b.last {
                            let _ = out.tx.send(std::mem::take(&mut out.packet));
                            sent += 1;
                        }
                    }
                    if link {
                        for b in dev.link_take(0).map_err(|e| e.to_string())? {
                            link_beat_bytes(&b, link_bytes, &mut link_out.packet);
                            if b.last {
                                let _ = link_out.tx.send(std::mem::take(&mut link_out.packet));
                            }
                        }
                    }
                }
            })();
            if let Err(e) = r {
                *why.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        })
        .map_err(|e| format!("cannot start the card's thread: {e}"))?;
    let link = built_rx
        .recv()
        .map_err(|_| "the card's thread stopped while building".to_string())??;
    let c2h = |rx| CardC2h {
        rx,
        rest: VecDeque::new(),
        stopped: stopped.clone(),
    };
    Ok(Card {
        regs: CardRegs {
            tx: req_tx,
            stopped: stopped.clone(),
        },
        h2c: CardH2c {
            tx: h2c_tx,
            stopped: stopped.clone(),
        },
        c2h: c2h(c2h_rx),
        link: link.then(|| {
            (
                CardH2c {
                    tx: lh2c_tx,
                    stopped: stopped.clone(),
                },
                c2h(lc2h_rx),
            )
        }),
    })
}

impl Card {
    /// The PCIe backend on this card, its output vectors of `out_values` values packed as
    /// `out` says, its host link (if it has one) on the second channel.
    pub fn device(
        self,
        out: Layout,
        out_values: usize,
        link_bits: u32,
        timeout: std::time::Duration,
    ) -> XdmaDevice<CardRegs> {
        let Card {
            regs,
            h2c,
            c2h,
            link,
        } = self;
        let dev = XdmaDevice::new(regs, h2c, c2h, out, out_values, timeout);
        match link {
            Some((lh, lc)) => dev.with_link(lh, lc, link_bits),
            None => dev,
        }
    }
}

impl CardRegs {
    fn ask<T>(
        &self,
        req: impl FnOnce(mpsc::Sender<Result<T, TransportError>>) -> Request,
        what: String,
        deadline: Instant,
    ) -> Result<T, TransportError> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(req(tx))
            .map_err(|_| stopped_error(&self.stopped))?;
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(TransportError::Timeout {
                what,
                limit_ms: (left.as_secs_f64() * 1e3).round() as u64,
                moved: 0,
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(stopped_error(&self.stopped)),
        }
    }
}

impl RegPort for CardRegs {
    fn reg_read(&mut self, addr: u32, deadline: Instant) -> Result<u32, TransportError> {
        self.ask(
            |tx| Request::Read(addr, tx),
            format!("register read 0x{addr:03x} of the simulated card"),
            deadline,
        )
    }

    fn reg_write(
        &mut self,
        addr: u32,
        value: u32,
        deadline: Instant,
    ) -> Result<(), TransportError> {
        self.ask(
            |tx| Request::Write(addr, value, tx),
            format!("register write 0x{addr:03x} of the simulated card"),
            deadline,
        )
    }
}

impl H2c for CardH2c {
    fn write_packet(&mut self, bytes: &[u8], _deadline: Instant) -> Result<(), TransportError> {
        self.tx
            .send(bytes.to_vec())
            .map_err(|_| stopped_error(&self.stopped))
    }
}

impl C2h for CardC2h {
    /// The next packet the card sent, or its first `max` bytes (the rest comes with the next
    /// read, as a partial count does).
    fn read_packet(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        if self.rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(p) => self.rest.extend(p),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(TransportError::Timeout {
                        what: "card-to-host read of the simulated card".into(),
                        limit_ms: (left.as_secs_f64() * 1e3).round() as u64,
                        moved: 0,
                    })
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(stopped_error(&self.stopped))
                }
            }
        }
        let n = max.min(self.rest.len());
        Ok(self.rest.drain(..n).collect())
    }
}
