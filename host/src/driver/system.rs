//! The system driver: brings up the N devices of a multi-device plan and runs them as one
//! system, through the [`Device`] trait only, so the same code drives simulated devices and
//! boards.
//!
//! It resets and identifies every device (ID, plan hash, NODE = index << 8 | count), writes
//! the configuration, queues each device's inputs, and starts the devices from the last to
//! the first (a device that receives is running before the frames for it are sent; the link
//! FIFOs hold back-pressure, so nothing is lost whatever the order). It then polls: takes the
//! output beats each device has produced, relays host-linked frames, and lets every device
//! run, until every output has arrived and every device reports done, or the one deadline of
//! the whole run passes. At the end it reads every device's counters.
//!
//! **The host relay** (`mode = "host"`): each device's frames for the others arrive on its
//! host link. The driver decodes every frame with the Rust frame type of `partita_hdl`
//! (header, length, CRC, and the source must be the device it came from) and forwards it
//! whole to its destination's host link. A frame that does not decode stops the run with an
//! error naming the device, and is never forwarded.

use std::time::{Duration, Instant};

use partita_hdl::frame::{Decoder, ErrInfo, Format};
use partita_hdl::regs;
use partita_hdl::stream::{Beat, Layout};

use super::device::{Device, DeviceError, LinkBeat};

/// What the host feeds and collects: each device's input beats (empty: none), the output
/// pieces of one step or frame in order (device, values), how many steps or frames, the
/// output's packing, and the SEQ_LEN / SEQ_COUNT registers to write.
#[derive(Clone, Debug)]
pub struct SystemIo {
    pub inputs: Vec<Vec<Beat>>,
    pub outputs: Vec<(usize, usize)>,
    pub repeats: usize,
    pub out_layout: Layout,
    pub seq_len: u32,
    pub seq_count: u32,
}

/// How to run a system.
#[derive(Clone, Debug)]
pub struct SystemOptions {
    /// The plan's hash: every device must carry it.
    pub plan_hash: u64,
    /// LINK_TIMEOUT for every device (cycles a link wait may last; 0: no limit).
    pub link_timeout: u32,
    /// STATUS reads between two devices' starts (boards started one after another).
    pub start_skew: usize,
    /// The link frame format, for the relay's decoder.
    pub frame: Format,
    /// The whole run's deadline (wall clock).
    pub deadline: Duration,
    /// Polling rounds between two STATUS reads of every device, until the outputs are in.
    pub poll_rounds: usize,
}

/// The registers read from every device after a run, in [`DeviceStats`] order.
const STAT_REGS: [regs::Reg; 13] = [
    regs::STATUS,
    regs::CYCLES_LO,
    regs::SAT_COUNT,
    regs::LINK_STATUS,
    regs::LINK_CRC_ERRS,
    regs::LINK_SEQ_ERRS,
    regs::LINK_FMT_ERRS,
    regs::LINK_ERR_INFO,
    regs::TX_BEATS,
    regs::FWD_BEATS,
    regs::RX_BEATS,
    regs::MAC_CYCLES,
    regs::WAIT_CYCLES,
];

/// What one device's counters said after the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    pub status: u32,
    pub cycles: u32,
    pub saturations: u32,
    pub link_status: u32,
    pub crc_errors: u32,
    pub seq_errors: u32,
    pub format_errors: u32,
    pub error_info: u32,
    pub tx_beats: u32,
    pub fwd_beats: u32,
    pub rx_beats: u32,
    pub mac_cycles: u32,
    pub wait_cycles: u32,
}

impl DeviceStats {
    fn read(dev: &mut dyn Device) -> Result<Self, DeviceError> {
        let mut r = [0u32; 13];
        for (v, reg) in r.iter_mut().zip(STAT_REGS) {
            *v = dev.reg_read(reg.offset)?;
        }
        Ok(DeviceStats {
            status: r[0],
            cycles: r[1],
            saturations: r[2],
            link_status: r[3],
            crc_errors: r[4],
            seq_errors: r[5],
            format_errors: r[6],
            error_info: r[7],
            tx_beats: r[8],
            fwd_beats: r[9],
            rx_beats: r[10],
            mac_cycles: r[11],
            wait_cycles: r[12],
        })
    }

    /// A link error in words, if the device flagged one.
    pub fn link_error(&self) -> Option<String> {
        if self.link_status == 0 {
            return None;
        }
        let mut kinds = Vec::new();
        if self.link_status & 1 != 0 {
            kinds.push(format!("{} CRC error(s)", self.crc_errors));
        }
        if self.link_status & 2 != 0 {
            kinds.push(format!(
                "{} sequence error(s) (dropped or reordered frame)",
                self.seq_errors
            ));
        }
        if self.link_status & 4 != 0 {
            kinds.push(format!("{} malformed frame(s)", self.format_errors));
        }
        if self.link_status & 8 != 0 {
            kinds.push("link timeout (a frame never arrived)".into());
        }
        let first = ErrInfo::decode(self.error_info)
            .map(|e| format!("first: {e}"))
            .unwrap_or_default();
        Some(format!("{}; {first}", kinds.join(", ")))
    }
}

/// What the host relay moved.
#[derive(Clone, Debug, Default)]
pub struct RelayStats {
    /// Frames relayed, per source device.
    pub frames: Vec<usize>,
    pub beats: u64,
    /// Time spent decoding, checking and forwarding.
    pub seconds: f64,
}

/// What a system run produced.
#[derive(Clone, Debug, Default)]
pub struct SystemRun {
    /// Output codes `(step or frame, unit)` flattened: every whole step or frame that arrived.
    pub codes: Vec<i64>,
    /// Each device's counters (default for a device that could not be read).
    pub devices: Vec<DeviceStats>,
    pub relay: RelayStats,
    /// Why the run stopped early, if it did: the device, the step, and what was pending.
    pub error: Option<String>,
    /// Polling rounds.
    pub rounds: u64,
}

/// A device's failure at one step of the run.
struct Failed {
    device: Option<usize>,
    message: String,
}

fn at(d: usize, step: &str) -> impl FnOnce(DeviceError) -> Failed + '_ {
    move |e| Failed {
        device: Some(d),
        message: format!("device {d}: {step}: {e}"),
    }
}

/// The host relay's state: per device and host link, the beats of the frame now arriving and
/// the decoder that checks it.
struct Relay {
    partial: Vec<Vec<Vec<LinkBeat>>>,
    decoders: Vec<Vec<Decoder>>,
    stats: RelayStats,
}

impl Relay {
    fn new(devs: &[&mut dyn Device]) -> Self {
        Relay {
            partial: devs
                .iter()
                .map(|d| vec![Vec::new(); d.host_links()])
                .collect(),
            decoders: devs
                .iter()
                .map(|d| vec![Decoder::default(); d.host_links()])
                .collect(),
            stats: RelayStats {
                frames: vec![0; devs.len()],
                ..Default::default()
            },
        }
    }

    /// Take every device's host-link beats; forward each whole frame that decodes. The frames
    /// for one destination go in one call (one request to a remote device), in the order
    /// they arrived.
    fn pump(&mut self, devs: &mut [&mut dyn Device], fmt: &Format) -> Result<(), Failed> {
        let t0 = Instant::now();
        let n = devs.len();
        let mut outgoing: Vec<Vec<LinkBeat>> = vec![Vec::new(); n];
        for d in 0..n {
            for p in 0..self.partial[d].len() {
                let beats = devs[d]
                    .link_take(p)
                    .map_err(at(d, "reading its host link"))?;
                for b in beats {
                    self.partial[d][p].push(b);
                    let Some(r) = self.decoders[d][p].push(b, fmt) else {
                        continue;
                    };
                    let frame = std::mem::take(&mut self.partial[d][p]);
                    let f = r.map_err(|e| Failed {
                        device: None,
                        message: format!(
                            "relay: device {d} sent a damaged frame on host link {p} ({e}); it was not forwarded"
                        ),
                    })?;
                    let (src, dst) = (f.header.src as usize, f.header.dst as usize);
                    if src != d || dst >= n || dst == d || devs[dst].host_links() == 0 {
                        return Err(Failed {
                            device: None,
                            message: format!(
                                "relay: device {d} sent a frame from device {src} to device {dst} on host link {p}; a frame must come from its sender and go to another of the {n} devices with a host link; it was not forwarded"
                            ),
                        });
                    }
                    self.stats.frames[d] += 1;
                    self.stats.beats += frame.len() as u64;
                    outgoing[dst].extend(frame);
                }
            }
        }
        for (dst, beats) in outgoing.iter().enumerate() {
            if !beats.is_empty() {
                devs[dst]
                    .link_send(0, beats)
                    .map_err(at(dst, "relaying frames to it"))?;
            }
        }
        self.stats.seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }

    /// Frames partly received, for the pending list of an error.
    fn pending(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (d, ps) in self.partial.iter().enumerate() {
            for (p, b) in ps.iter().enumerate() {
                if !b.is_empty() {
                    v.push(format!(
                        "{} beat(s) of a frame from device {d} (host link {p}) not yet whole",
                        b.len()
                    ));
                }
            }
        }
        v
    }
}

/// Run a system of devices (device d of the plan at `devs[d]`), feeding and collecting `io`.
pub fn run_system(devs: &mut [&mut dyn Device], io: &SystemIo, opts: &SystemOptions) -> SystemRun {
    let n = devs.len();
    let layout = io.out_layout;
    let out_vec: Vec<usize> = (0..n)
        .map(|d| io.outputs.iter().filter(|o| o.0 == d).map(|o| o.1).sum())
        .collect();
    let expected_beats: Vec<usize> = out_vec
        .iter()
        .map(|v| {
            if *v == 0 {
                0
            } else {
                layout.beats(*v) * io.repeats
            }
        })
        .collect();
    let mut out_beats: Vec<Vec<Beat>> = vec![Vec::new(); n];
    let mut relay = Relay::new(devs);
    let mut result = SystemRun::default();
    let t0 = Instant::now();
    let mut dones = vec![false; n];
    let outcome = (|| -> Result<(), Failed> {
        for d in 0..n {
            devs[d].reset().map_err(at(d, "reset"))?;
            check_identity(&mut *devs[d], d, n, opts.plan_hash)?;
        }
        for d in 0..n {
            for (reg, v) in [
                (regs::SEQ_LEN, io.seq_len),
                (regs::SEQ_COUNT, io.seq_count),
                (regs::LINK_TIMEOUT, opts.link_timeout),
            ] {
                devs[d]
                    .reg_write(reg.offset, v)
                    .map_err(at(d, "writing its configuration"))?;
            }
            devs[d]
                .stream_write(&io.inputs[d])
                .map_err(at(d, "queueing its input"))?;
        }
        for (k, d) in (0..n).rev().enumerate() {
            if k > 0 {
                for _ in 0..opts.start_skew {
                    devs[d]
                        .reg_read(regs::STATUS.offset)
                        .map_err(at(d, "reading STATUS before its start"))?;
                }
            }
            devs[d]
                .reg_write(regs::CTRL.offset, 1)
                .map_err(at(d, "start"))?;
        }
        loop {
            for d in 0..n {
                let b = devs[d].stream_take().map_err(at(d, "reading its output"))?;
                out_beats[d].extend(b);
            }
            relay.pump(devs, &opts.frame)?;
            let all_out = (0..n).all(|d| out_beats[d].len() >= expected_beats[d]);
            if all_out || result.rounds % opts.poll_rounds.max(1) as u64 == 0 {
                for d in 0..n {
                    let s = devs[d]
                        .reg_read(regs::STATUS.offset)
                        .map_err(at(d, "polling STATUS"))?;
                    dones[d] = s & 2 != 0;
                    if s & 4 != 0 {
                        return Err(Failed {
                            device: None,
                            message: format!("device {d} reports an error"),
                        });
                    }
                }
                if all_out && dones.iter().all(|x| *x) {
                    return Ok(());
                }
            }
            if t0.elapsed() > opts.deadline {
                return Err(Failed {
                    device: None,
                    message: format!(
                        "the run did not finish within its deadline of {} ms",
                        opts.deadline.as_millis()
                    ),
                });
            }
            for d in 0..n {
                devs[d].advance().map_err(at(d, "running"))?;
            }
            result.rounds += 1;
        }
    })();
    let mut dead = None;
    if let Err(f) = outcome {
        dead = f.device;
        let mut pending: Vec<String> = (0..n)
            .filter(|d| out_beats[*d].len() < expected_beats[*d])
            .map(|d| {
                format!(
                    "device {d}: {} of {} output beats",
                    out_beats[d].len(),
                    expected_beats[d]
                )
            })
            .collect();
        let not_done: Vec<usize> = (0..n).filter(|d| !dones[*d]).collect();
        if !not_done.is_empty() {
            pending.push(format!("not done: devices {not_done:?}"));
        }
        pending.extend(relay.pending());
        result.error = Some(if pending.is_empty() {
            f.message
        } else {
            format!("{}; pending: {}", f.message, pending.join(", "))
        });
    }
    // Every device's counters (a device that stopped answering is not asked again).
    result.devices = (0..n)
        .map(|d| {
            if dead == Some(d) {
                return DeviceStats::default();
            }
            DeviceStats::read(&mut *devs[d]).unwrap_or_default()
        })
        .collect();
    for (d, s) in result.devices.iter().enumerate() {
        if let Some(e) = s.link_error() {
            let msg = format!("device {d}: link error: {e}");
            result.error = Some(match result.error.take() {
                Some(prev) if prev.contains("link error") => format!("{prev}; {msg}"),
                _ => msg,
            });
        }
    }
    // Unpack each device's beats (tkeep and tlast checked; whole vectors only), then assemble
    // the outputs in step order.
    let mut outs: Vec<Vec<i64>> = vec![Vec::new(); n];
    for d in 0..n {
        if out_vec[d] == 0 {
            continue;
        }
        let per = layout.beats(out_vec[d]);
        let whole = out_beats[d].len() / per * per;
        match layout.unpack(&out_beats[d][..whole], out_vec[d]) {
            Ok(v) => outs[d] = v,
            Err(e) if result.error.is_none() => {
                result.error = Some(format!("device {d}: output stream: {e}"))
            }
            Err(_) => {}
        }
    }
    // Whole steps or frames only: a step some device has not finished is left out.
    let mut taken = vec![0usize; n];
    for _ in 0..io.repeats {
        let whole = (0..n).all(|d| taken[d] + out_vec[d] <= outs[d].len());
        if !whole {
            break;
        }
        for &(d, k) in &io.outputs {
            result
                .codes
                .extend_from_slice(&outs[d][taken[d]..taken[d] + k]);
            taken[d] += k;
        }
    }
    result.relay = relay.stats;
    result
}

/// Device `d` of `n` must be a partita device of this plan, and know its place.
fn check_identity(dev: &mut dyn Device, d: usize, n: usize, plan_hash: u64) -> Result<(), Failed> {
    let id = dev.identify().map_err(at(d, "identify"))?;
    let node = dev.reg_read(regs::NODE.offset).map_err(at(d, "identify"))?;
    let wrong = if id.id != regs::DEVICE_ID {
        Some(format!("its ID register reads 0x{:08x}", id.id))
    } else if id.plan_hash != plan_hash {
        Some(format!(
            "it carries plan hash {:016x}, the plan's is {plan_hash:016x}",
            id.plan_hash
        ))
    } else if node != ((d << 8) | n) as u32 {
        Some(format!(
            "its NODE register says device {} of {}, the plan puts it at {d} of {n}",
            node >> 8,
            node & 0xff
        ))
    } else {
        None
    };
    match wrong {
        Some(w) => Err(Failed {
            device: None,
            message: format!("device {d}: {}", DeviceError::Identity(w)),
        }),
        None => Ok(()),
    }
}
