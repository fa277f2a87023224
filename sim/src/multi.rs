//! Lockstep multi-device cosimulation: one Verilator model per device, all clocked together,
//! with the links between them modelled as channels of the plan's width (one beat per cycle)
//! and latency. Ring and chain links are point to point. A star's hub (a network switch, not
//! generated RTL) stores each frame whole and forwards it to its destination, one more link
//! latency later. With host-relayed links (`mode = "host"`) each device's port 0 is a pair of
//! channels to and from the host: the host driver reads the frames and relays them
//! (`partita_host::driver::system`); nothing in here forwards them.
//!
//! [`Lockstep`] holds the devices and their links; the host crate's lockstep backend puts each
//! device behind the device trait. Whatever the host does to one device (a register access,
//! a wait), every device keeps running, as boards on one bench would. Faults can be injected
//! on any channel: a flipped bit, a dropped frame, or two frames swapped.
//!
//! Every channel decodes the frames it carries with the Rust frame type of `partita_hdl`
//! (header, length, CRC), an oracle independent of the RTL: once as the transmitter sent them,
//! and once as the receiver got them (after any injected fault).

use std::collections::VecDeque;

use partita_codegen::arch::lstm::System;
use partita_hdl::frame::{Beat as LinkBeat, BeatData, Decoder, Frame, FrameError, Kind};
use partita_hdl::stream::Beat as StreamBeat;

use crate::cosim::{Model, NodeIn, NodeOut, PinsIn, PinsOut};

/// A fault to inject on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Flip bit 0 of the frame's second beat.
    Corrupt,
    /// Drop the whole frame.
    Drop,
    /// Deliver the frame after the next one.
    Reorder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Channel index (see [`channel_names`]).
    pub channel: usize,
    /// Which frame entering that channel (0-based).
    pub frame: usize,
}

#[derive(Clone, Copy, Debug)]
struct Beat {
    at: u64,
    data: BeatData,
    last: bool,
}

#[derive(Debug, Default)]
struct Channel {
    q: VecDeque<Beat>,
    latency: u64,
    cap: usize,
    /// Frames that entered (counted at tlast).
    frames: usize,
    /// Beats of the frame now entering, before fault handling.
    cur: Vec<(BeatData, bool)>,
    held: Vec<(BeatData, bool)>,
    fault: Option<Fault>,
    beats: u64,
    last_at: u64,
    /// Frames as sent and as delivered, decoded.
    sent: Monitor,
    delivered: Monitor,
}

/// What the Rust decoder made of the frames on one side of a channel.
#[derive(Clone, Debug, Default)]
pub struct Monitor {
    decoder: Decoder,
    /// Frames that decoded, per (source device, kind).
    pub frames: Vec<(u8, Kind)>,
    /// Frames that did not, and why.
    pub errors: Vec<FrameError>,
}

impl Monitor {
    fn push(&mut self, data: BeatData, last: bool, f: &partita_hdl::frame::Format) {
        match self.decoder.push(LinkBeat { data, last }, f) {
            Some(Ok(Frame { header, .. })) => self.frames.push((header.src, header.kind)),
            Some(Err(e)) => self.errors.push(e),
            None => {}
        }
    }
}

impl Channel {
    fn new(latency: u64) -> Self {
        Channel {
            latency,
            cap: latency as usize + 48,
            ..Default::default()
        }
    }

    fn ready(&self) -> bool {
        self.q.len() < self.cap
    }

    fn enqueue(&mut self, now: u64, data: BeatData, last: bool) {
        let at = (now + self.latency).max(self.last_at + 1);
        self.last_at = at;
        self.q.push_back(Beat { at, data, last });
    }

    /// A beat accepted from a transmitter at cycle `now`.
    fn push(&mut self, now: u64, data: BeatData, last: bool, f: &partita_hdl::frame::Format) {
        self.beats += 1;
        self.sent.push(data, last, f);
        self.cur.push((data, last));
        if !last {
            // Frames pass through whole only when a fault needs them whole.
            if self.fault.is_none() {
                let (d, l) = self.cur.remove(0);
                self.enqueue(now, d, l);
            }
            return;
        }
        let n = self.frames;
        self.frames += 1;
        let mut frame = std::mem::take(&mut self.cur);
        match self.fault {
            Some(f) if f.frame == n => match f.kind {
                FaultKind::Corrupt => {
                    let i = 1.min(frame.len() - 1);
                    frame[i].0[0] ^= 1;
                }
                FaultKind::Drop => frame.clear(),
                FaultKind::Reorder => {
                    self.held = frame;
                    return;
                }
            },
            _ => {}
        }
        for (d, l) in frame {
            self.enqueue(now, d, l);
        }
        if !self.held.is_empty() && self.fault.is_some_and(|f| f.frame + 1 == n) {
            for (d, l) in std::mem::take(&mut self.held) {
                self.enqueue(now, d, l);
            }
        }
    }

    fn head(&self, now: u64) -> Option<Beat> {
        self.q.front().copied().filter(|b| b.at <= now)
    }
}

/// Names of the channels, in index order (for fault injection and reports).
pub fn channel_names(sys: &System) -> Vec<String> {
    Wiring::of(sys).channel_names()
}

/// One AXI4-Lite access in flight.
#[derive(Clone, Copy, Debug)]
enum AxiOp {
    W(u32, u32),
    R(u32),
}

/// The AXI4-Lite bus-functional model of one device: one access at a time.
#[derive(Default)]
struct Axi {
    /// Accesses in order: posted writes, then at most one read the host waits for.
    ops: VecDeque<AxiOp>,
    phase: u8,
    /// The finished read's data and response.
    done: Option<(u32, u32)>,
    /// The first posted write the device refused (its address and response), reported by the
    /// next access.
    refused: Option<(u32, u32)>,
}

impl Axi {
    fn drive(&self, p: &mut PinsIn) {
        p.wstrb = 0xf;
        match (self.ops.front(), self.phase) {
            (Some(AxiOp::W(a, d)), 0) => {
                p.awaddr = *a;
                p.wdata = *d;
                p.awvalid = 1;
                p.wvalid = 1;
            }
            (Some(AxiOp::W(..)), _) => p.bready = 1,
            (Some(AxiOp::R(a)), 0) => {
                p.araddr = *a;
                p.arvalid = 1;
            }
            (Some(AxiOp::R(_)), _) => p.rready = 1,
            (None, _) => {}
        }
    }

    fn observe(&mut self, o: &PinsOut) {
        match (self.ops.front().copied(), self.phase) {
            (Some(AxiOp::W(..)), 0) if o.awready == 1 && o.wready == 1 => self.phase = 1,
            (Some(AxiOp::W(a, _)), 1) if o.bvalid == 1 => {
                if o.bresp != 0 && self.refused.is_none() {
                    self.refused = Some((a, o.bresp));
                }
                self.ops.pop_front();
                self.phase = 0;
            }
            (Some(AxiOp::R(_)), 0) if o.arready == 1 => self.phase = 1,
            (Some(AxiOp::R(_)), 1) if o.rvalid == 1 => {
                self.done = Some((o.rdata, o.rresp));
                self.ops.pop_front();
                self.phase = 0;
            }
            _ => {}
        }
    }
}

/// How the devices of a system are wired, for [`Lockstep`].
#[derive(Clone, Debug)]
pub struct Wiring {
    /// Link ports of each device.
    pub ports: Vec<usize>,
    /// Point-to-point links, unless `switched`.
    pub links: Vec<partita_codegen::passes::schedule::Link>,
    /// Every device's port 0 goes to a switch: a star's hub, or the host (`host`).
    pub switched: bool,
    /// Host-relayed links: port 0 goes to and from the host, which relays the frames.
    pub host: bool,
    pub latency: u64,
    pub frame: partita_hdl::frame::Format,
}

impl Wiring {
    /// The name of each link channel, in the order the fault injector and the beat counts use:
    /// every point-to-point link, or each device's channel up to the hub or host and then
    /// down.
    pub fn channel_names(&self) -> Vec<String> {
        let n = self.ports.len();
        if self.switched {
            let end = if self.host { "host" } else { "hub" };
            (0..n)
                .map(|d| format!("device {d} -> {end}"))
                .chain((0..n).map(|d| format!("{end} -> device {d}")))
                .collect()
        } else {
            self.links
                .iter()
                .map(|l| {
                    format!(
                        "device {} port {} -> device {} port {}",
                        l.from.0, l.from.1, l.to.0, l.to.1
                    )
                })
                .collect()
        }
    }

    /// An LSTM system's wiring.
    pub fn of(sys: &System) -> Wiring {
        let s = &sys.schedule;
        Wiring {
            ports: s.nodes.iter().map(|n| n.ports.len()).collect(),
            links: s.links.clone(),
            switched: s.switched,
            host: s.mode == partita_codegen::plan::LinkMode::Host,
            latency: s.latency as u64,
            frame: sys.frame,
        }
    }

    /// A CNN system's wiring.
    pub fn of_cnn(sys: &partita_codegen::arch::cnn_system::CnnSystem) -> Wiring {
        Wiring {
            ports: sys.devices.iter().map(|d| d.ports.len()).collect(),
            links: sys.links.clone(),
            switched: sys.switched,
            host: sys.mode == partita_codegen::plan::LinkMode::Host,
            latency: sys.latency as u64,
            frame: sys.frame,
        }
    }

    /// The device that transmits into each channel (None: the hub or the host).
    pub fn channel_from(&self) -> Vec<Option<usize>> {
        let nd = self.ports.len();
        if self.switched {
            (0..2 * nd).map(|c| (c < nd).then_some(c)).collect()
        } else {
            self.links.iter().map(|l| Some(l.from.0)).collect()
        }
    }
}

/// Why a register access did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegError {
    /// No handshake within this many cycles.
    Timeout(u64),
    /// The device answered with this AXI response (SLVERR, DECERR).
    Resp(u32),
    /// A posted write to this address was refused with this response.
    WriteRefused(u32, u32),
}

/// What the host side of one device holds: its bus-functional models and queues.
#[derive(Default)]
struct Host {
    axi: Axi,
    reset: bool,
    /// From this cycle on the device's clock stops (an injected stall).
    stall_at: Option<u64>,
    /// Input beats not yet taken, output beats not yet collected.
    input: VecDeque<StreamBeat>,
    output: VecDeque<StreamBeat>,
    /// Host-relayed links: beats that reached the host from the device's port 0.
    from_link: VecDeque<LinkBeat>,
}

/// What the link channels carried, for reports and the frame oracle.
#[derive(Clone, Debug, Default)]
pub struct LinkReport {
    /// Beats that entered each channel.
    pub beats: Vec<u64>,
    /// Per channel, the frames the Rust decoder saw as sent and as delivered.
    pub sent: Vec<Monitor>,
    pub delivered: Vec<Monitor>,
    /// Per channel, the device that transmits into it (None: the hub or the host).
    pub from: Vec<Option<usize>>,
}

impl LinkReport {
    /// Frames each of `n` devices' framers sent, per kind, as the Rust decoder read them on
    /// the first link they entered, and every frame on any link the decoder rejected as sent.
    pub fn frames_sent(&self, n: usize) -> (Vec<[usize; 3]>, Vec<String>) {
        let mut counts = vec![[0usize; 3]; n];
        let mut errors = Vec::new();
        for (c, m) in self.sent.iter().enumerate() {
            for e in &m.errors {
                errors.push(format!("channel {c}: {e}"));
            }
            let Some(from) = self.from.get(c).copied().flatten() else {
                continue;
            };
            for (src, kind) in &m.frames {
                if *src as usize == from && from < n {
                    counts[from][*kind as usize] += 1;
                }
            }
        }
        (counts, errors)
    }
}

/// A system of devices clocked together over modelled links.
pub struct Lockstep {
    models: Vec<Model>,
    wiring: Wiring,
    chans: Vec<Channel>,
    hosts: Vec<Host>,
    now: u64,
}

impl Lockstep {
    /// Devices `models` wired as `wiring` says, with `fault` injected on its channel (the
    /// caller checks that it exists). Every device starts in reset.
    pub fn new(models: Vec<Model>, wiring: Wiring, fault: Option<Fault>) -> Self {
        let nd = models.len();
        let lat = wiring.latency;
        let n = if wiring.switched {
            2 * nd
        } else {
            wiring.links.len()
        };
        let mut chans: Vec<Channel> = (0..n).map(|_| Channel::new(lat)).collect();
        if let Some(f) = fault {
            if let Some(c) = chans.get_mut(f.channel) {
                c.fault = Some(f);
            }
        }
        Lockstep {
            hosts: (0..nd)
                .map(|_| Host {
                    reset: true,
                    ..Default::default()
                })
                .collect(),
            models,
            wiring,
            chans,
            now: 0,
        }
    }

    pub fn devices(&self) -> usize {
        self.models.len()
    }

    /// Cycles since the system was built.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Whether device `d`'s port 0 goes to the host.
    pub fn host_relayed(&self) -> bool {
        self.wiring.host
    }

    fn tx_chan(&self, d: usize, p: usize) -> Option<usize> {
        if self.wiring.switched {
            (p == 0).then_some(d)
        } else {
            self.wiring.links.iter().position(|l| l.from == (d, p))
        }
    }

    fn rx_chan(&self, d: usize, p: usize) -> Option<usize> {
        if self.wiring.switched {
            (p == 0).then_some(self.models.len() + d)
        } else {
            self.wiring.links.iter().position(|l| l.to == (d, p))
        }
    }

    /// Hold device `d` in reset (rst_n low) or release it. Releasing drops its queued stream
    /// beats, as a board's reset flushes its DMA queues.
    pub fn set_reset(&mut self, d: usize, asserted: bool) {
        let h = &mut self.hosts[d];
        h.reset = asserted;
        h.axi = Axi::default();
        h.input.clear();
        h.output.clear();
        h.from_link.clear();
    }

    /// Stop device `d`'s clock from cycle `at` on: it stops answering, as a hung board does
    /// (a failure injected by tests).
    pub fn stall(&mut self, d: usize, at: u64) {
        if let Some(h) = self.hosts.get_mut(d) {
            h.stall_at = Some(at);
        }
    }

    /// One clock of every device, its links, and the hub.
    pub fn step(&mut self) {
        let fmt = self.wiring.frame;
        let now = self.now;
        for d in 0..self.models.len() {
            let mut pins = NodeIn::default();
            let h = &self.hosts[d];
            if h.stall_at.is_some_and(|t| now >= t) {
                continue;
            }
            pins.pins.rst_n = (!h.reset) as u32;
            pins.pins.m_tready = 1;
            h.axi.drive(&mut pins.pins);
            if let Some(b) = h.input.front() {
                pins.pins.s_tvalid = 1;
                pins.pins.s_tdata = b.data;
                pins.pins.s_tkeep = b.keep;
                pins.pins.s_tlast = b.last as u32;
            }
            for p in 0..self.wiring.ports[d] {
                if let Some(c) = self.tx_chan(d, p) {
                    pins.link.tx_tready[p] = self.chans[c].ready() as u32;
                }
                if let Some(b) = self.rx_chan(d, p).and_then(|c| self.chans[c].head(now)) {
                    pins.link.rx_tvalid[p] = 1;
                    pins.link.rx_tdata[p] = b.data;
                    pins.link.rx_tlast[p] = b.last as u32;
                }
            }
            let o: NodeOut = self.models[d].step_node(&pins);
            let h = &mut self.hosts[d];
            h.axi.observe(&o.pins);
            if pins.pins.s_tvalid == 1 && o.pins.s_tready == 1 {
                h.input.pop_front();
            }
            if o.pins.m_tvalid == 1 {
                h.output.push_back(StreamBeat {
                    data: o.pins.m_tdata,
                    keep: o.pins.m_tkeep,
                    last: o.pins.m_tlast == 1,
                });
            }
            for p in 0..self.wiring.ports[d] {
                if let Some(c) = self.tx_chan(d, p) {
                    if o.link.tx_tvalid[p] == 1 && pins.link.tx_tready[p] == 1 {
                        let last = o.link.tx_tlast[p] == 1;
                        self.chans[c].push(now, o.link.tx_tdata[p], last, &fmt);
                    }
                }
                if let Some(c) = self.rx_chan(d, p) {
                    if pins.link.rx_tvalid[p] == 1 && o.link.rx_tready[p] == 1 {
                        if let Some(b) = self.chans[c].q.pop_front() {
                            self.chans[c].delivered.push(b.data, b.last, &fmt);
                        }
                    }
                }
            }
        }
        let nd = self.models.len();
        if self.wiring.host {
            // Beats that crossed a device's link to the host wait there for the host driver.
            for d in 0..nd {
                while let Some(b) = self.chans[d].head(now) {
                    self.chans[d].q.pop_front();
                    self.chans[d].delivered.push(b.data, b.last, &fmt);
                    self.hosts[d].from_link.push_back(LinkBeat {
                        data: b.data,
                        last: b.last,
                    });
                }
            }
        } else if self.wiring.switched {
            // The hub forwards whole frames that have fully arrived.
            for s in 0..nd {
                let whole = self.chans[s]
                    .q
                    .iter()
                    .position(|b| b.last)
                    .filter(|i| self.chans[s].q[*i].at <= now);
                if let Some(i) = whole {
                    let frame: Vec<Beat> = self.chans[s].q.drain(..=i).collect();
                    for b in &frame {
                        self.chans[s].delivered.push(b.data, b.last, &fmt);
                    }
                    // The hub reads the destination from the header; a header that does not
                    // decode goes nowhere (the receiver then misses a sequence number).
                    let dst = partita_hdl::frame::Header::decode(frame[0].data[0] as u32)
                        .map(|h| h.dst as usize)
                        .unwrap_or(usize::MAX);
                    if dst < nd {
                        for b in frame {
                            self.chans[nd + dst].enqueue(now, b.data, b.last);
                        }
                    }
                }
            }
        }
        self.now += 1;
    }

    /// A refused posted write of device `d`, once.
    fn refused(&mut self, d: usize) -> Result<(), RegError> {
        match self.hosts[d].axi.refused.take() {
            Some((a, r)) => Err(RegError::WriteRefused(a, r)),
            None => Ok(()),
        }
    }

    /// Read a register of device `d`: after its posted writes, the system running until the
    /// read completes (at most `limit` cycles).
    pub fn reg_read(&mut self, d: usize, addr: u32, limit: u64) -> Result<u32, RegError> {
        self.refused(d)?;
        self.hosts[d].axi.ops.push_back(AxiOp::R(addr));
        for _ in 0..limit {
            self.step();
            if let Some((data, resp)) = self.hosts[d].axi.done.take() {
                self.refused(d)?;
                return if resp == 0 {
                    Ok(data)
                } else {
                    Err(RegError::Resp(resp))
                };
            }
        }
        self.hosts[d].axi = Axi::default();
        Err(RegError::Timeout(limit))
    }

    /// Write a register of device `d`, posted (as a PCIe write to a BAR is): queued, and
    /// driven while the system runs; writes to several devices in a row take effect in the
    /// same cycles. A refusal is reported by the device's next access. At most 64 writes wait;
    /// beyond that the system runs (at most `limit` cycles) until one completes.
    pub fn reg_write(
        &mut self,
        d: usize,
        addr: u32,
        value: u32,
        limit: u64,
    ) -> Result<(), RegError> {
        self.refused(d)?;
        let mut n = 0;
        while self.hosts[d].axi.ops.len() >= 64 {
            if n >= limit {
                return Err(RegError::Timeout(limit));
            }
            self.step();
            n += 1;
        }
        self.hosts[d].axi.ops.push_back(AxiOp::W(addr, value));
        Ok(())
    }

    /// Queue input beats for device `d`; it takes them as it becomes ready.
    pub fn stream_in(&mut self, d: usize, beats: &[StreamBeat]) {
        self.hosts[d].input.extend(beats.iter().copied());
    }

    /// Device `d`'s output beats so far (taken).
    pub fn stream_out(&mut self, d: usize) -> Vec<StreamBeat> {
        self.hosts[d].output.drain(..).collect()
    }

    /// Host-relayed links: the beats device `d` sent the host so far (taken).
    pub fn link_from(&mut self, d: usize) -> Vec<LinkBeat> {
        self.hosts[d].from_link.drain(..).collect()
    }

    /// Host-relayed links: beats the host sends device `d`. They enter the host-to-device
    /// channel now (with its latency and any fault injected on it).
    pub fn link_to(&mut self, d: usize, beats: &[LinkBeat]) {
        let fmt = self.wiring.frame;
        let c = self.models.len() + d;
        for b in beats {
            self.chans[c].push(self.now, b.data, b.last, &fmt);
        }
    }

    /// What the links carried so far.
    pub fn links(&self) -> LinkReport {
        LinkReport {
            beats: self.chans.iter().map(|c| c.beats).collect(),
            sent: self.chans.iter().map(|c| c.sent.clone()).collect(),
            delivered: self.chans.iter().map(|c| c.delivered.clone()).collect(),
            from: self.wiring.channel_from(),
        }
    }

    /// The models back (for a second run on the same builds); the system has no devices
    /// after.
    pub fn take_models(&mut self) -> Vec<Model> {
        self.hosts.clear();
        std::mem::take(&mut self.models)
    }
}
