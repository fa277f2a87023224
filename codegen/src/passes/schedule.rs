//! Pass `schedule`: the multi-device schedule of an LSTM. From the partition it works out, for
//! every device and layer, which rows and column banks it computes, where its partial sums go,
//! which units it finishes and which devices need their h; how the devices are wired; and, per
//! tick, which runs of values cross the links. Its consumers are the node emitter, the cost and
//! traffic models, the cosimulation and the host.
//!
//! Work runs in ticks: at tick T layer l computes timestep T - l, so a sequence of S steps
//! takes S + L - 1 ticks. A tick ends with a barrier frame from every device to every other.
//!
//! Example: 2 devices, `rows`, H = 4. Before: one device with 16 rows. After: device 0 computes
//! the rows of units 0-1 (i0 f0 g0 o0 i1 f1 g1 o1), finishes them, and sends h0, h1 to device
//! 1, which does the mirror image; per tick each sends one h run of 2 values and a barrier.

use std::collections::BTreeSet;
use std::ops::Range;

use partita_hdl::frame::{self, Kind};

use crate::design::{Design, LstmDesign, ModelDesign};
use crate::plan::{LinkMode, Topology};

/// One device's work in one layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeLayer {
    /// Rows this device computes, in issue order (global row g * H + u).
    pub rows: Vec<usize>,
    pub x_banks: Vec<usize>,
    pub h_banks: Vec<usize>,
    /// Holds column block 0, so it adds the bias of its rows.
    pub bias: bool,
    /// Where its partial sums go.
    pub pdst: usize,
    /// Units this device finishes.
    pub fin: Range<usize>,
    /// Needs h of this layer locally (its own h columns, or next layer's x columns).
    pub need_h: bool,
    /// Devices (other than itself) its finished h values go to.
    pub h_consumers: Vec<usize>,
    /// Partial-sum sources for its finished units: (device, gate mask).
    pub sources: Vec<(usize, u8)>,
}

impl NodeLayer {
    /// Issues rows (has multiply work) in this layer.
    pub fn computes(&self) -> bool {
        !self.rows.is_empty()
    }

    /// Sends its partial sums to another device.
    pub fn sends_psums(&self, me: usize) -> bool {
        self.computes() && self.pdst != me
    }
}

/// One device of the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub index: usize,
    pub layers: Vec<NodeLayer>,
    /// Takes the x stream (holds layer-0 x columns).
    pub needs_x: bool,
    /// Link ports: for each, the device its tx goes to and the one its rx comes from.
    pub ports: Vec<(Option<usize>, Option<usize>)>,
}

/// A directed physical link: (device, tx port) to (device, rx port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub from: (usize, usize),
    pub to: (usize, usize),
}

/// A run of values one device sends another in a tick: one or more frames. A run whose
/// destination is its source is a ring broadcast to every other device
/// ([`Schedule::broadcasts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub src: usize,
    pub dst: usize,
    pub kind: Kind,
    pub layer: usize,
    pub values: usize,
}

/// The whole system: devices, how they are wired, and where the outputs come from.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub nodes: Vec<Node>,
    /// Point-to-point links (ring, chain). Star and host-relayed systems use `switched`.
    pub links: Vec<Link>,
    /// Every device's port 0 goes to a hub (star) or to the host driver (host mode), which
    /// forwards each frame to its destination's port 0.
    pub switched: bool,
    pub topology: Topology,
    pub mode: LinkMode,
    /// Link beat width (bits) and one-way latency (cycles).
    pub width: u32,
    pub latency: u32,
    /// Last-layer outputs: (device, first unit, count), in unit order.
    pub outputs: Vec<(usize, usize, usize)>,
    /// Layers (ticks of a sequence depend on it).
    pub layers: usize,
}

impl Schedule {
    /// Whether frames for every other device go once round the ring, read and passed on by
    /// each device (a one-way ring of three or more): a run's [`Run::dst`] is then its source.
    pub fn broadcasts(&self) -> bool {
        !self.switched && self.topology == Topology::Ring && self.nodes.len() > 2
    }

    /// The devices that read a run: its destination, or every other device for a broadcast.
    pub fn receivers(&self, r: &Run) -> Vec<usize> {
        if r.src == r.dst {
            (0..self.nodes.len()).filter(|d| *d != r.src).collect()
        } else {
            vec![r.dst]
        }
    }

    /// Port of `dev` on which frames for `dst` leave.
    pub fn port_of(&self, dev: usize, dst: usize) -> usize {
        if self.nodes[dev].ports.len() == 2 && dst > dev {
            1
        } else {
            0
        }
    }

    /// Link traversals from `a` to `b`: the ring goes one way round, the chain either way, and
    /// a switched system always takes two (up to the switch, down to the destination).
    pub fn hops(&self, a: usize, b: usize) -> u64 {
        let d = self.nodes.len();
        if self.switched {
            2
        } else if self.topology == Topology::Ring && d > 2 {
            ((b + d - a) % d) as u64
        } else {
            (a as i64 - b as i64).unsigned_abs()
        }
    }

    /// The devices a frame from `src` to `dst` enters after leaving `src`, each with the receive
    /// port it arrives on: the ring goes one way round, the chain towards the destination, a
    /// switched system delivers to the destination's port 0.
    pub fn path(&self, src: usize, dst: usize) -> Vec<(usize, usize)> {
        let d = self.nodes.len();
        if src == dst && self.broadcasts() {
            (1..d).map(|k| ((src + k) % d, 0)).collect()
        } else if self.switched {
            vec![(dst, 0)]
        } else if self.topology == Topology::Ring {
            (1..=self.hops(src, dst) as usize)
                .map(|k| ((src + k) % d, 0))
                .collect()
        } else if dst > src {
            (src + 1..=dst).map(|dev| (dev, 0)).collect()
        } else {
            (dst..src).rev().map(|dev| (dev, 1)).collect()
        }
    }

    /// How the user calls the wiring: the topology, or host-relayed.
    pub fn wiring(&self) -> String {
        if self.mode == LinkMode::Host {
            "host-relayed".into()
        } else {
            self.topology.to_string()
        }
    }

    /// Ticks a sequence of `steps` timesteps takes.
    pub fn ticks(&self, steps: usize) -> usize {
        steps + self.layers - 1
    }

    /// Whether layer `l` works at tick `t` of a sequence of `steps` timesteps.
    pub fn active(&self, l: usize, t: usize, steps: usize) -> bool {
        l <= t && t < steps + l
    }

    /// The runs of layer `l` in a tick where it is active: partial sums to the finisher, then
    /// each finisher's h values to each device that reads them.
    pub fn runs(&self, l: usize) -> Vec<Run> {
        let mut out = Vec::new();
        for n in &self.nodes {
            let nl = &n.layers[l];
            if nl.sends_psums(n.index) {
                out.push(Run {
                    src: n.index,
                    dst: nl.pdst,
                    kind: Kind::Psum,
                    layer: l,
                    values: nl.rows.len(),
                });
            }
        }
        for n in &self.nodes {
            let nl = &n.layers[l];
            if self.broadcasts() && nl.h_consumers.len() + 1 == self.nodes.len() {
                out.push(Run {
                    src: n.index,
                    dst: n.index,
                    kind: Kind::H,
                    layer: l,
                    values: nl.fin.len(),
                });
                continue;
            }
            for &c in &nl.h_consumers {
                out.push(Run {
                    src: n.index,
                    dst: c,
                    kind: Kind::H,
                    layer: l,
                    values: nl.fin.len(),
                });
            }
        }
        out
    }

    /// The barrier runs that end every tick: every device to every other.
    pub fn barriers(&self) -> Vec<Run> {
        let d = self.nodes.len();
        let bc = self.broadcasts();
        (0..d)
            .flat_map(|src| {
                (0..d)
                    .filter(move |dst| if bc { *dst == src } else { *dst != src })
                    .map(move |dst| Run {
                        src,
                        dst,
                        kind: Kind::Barrier,
                        layer: 0,
                        values: 0,
                    })
            })
            .collect()
    }
}

/// Work out each device's schedule from the partition.
pub fn build(design: &Design) -> Result<Schedule, String> {
    let ModelDesign::Lstm(m) = &design.model else {
        return Err("CNN hardware is not built yet; `partita gen` handles LSTM plans".into());
    };
    let d = design.plan.devices;
    if d > frame::MAX_DEVICES {
        return Err(format!(
            "the plan has {d} devices; generated link frames address at most {}",
            frame::MAX_DEVICES
        ));
    }
    if m.layers.len() > frame::MAX_LAYERS {
        return Err(format!(
            "the plan has {} layers; link frames name at most {} on a multi-device system",
            m.layers.len(),
            frame::MAX_LAYERS
        ));
    }
    let t = &design.plan.plan.target.link;
    let mut nodes = node_layers(design, m)?;
    let (ports, links, switched) = wiring(d, t.topology, t.mode);
    for (n, p) in nodes.iter_mut().zip(ports) {
        n.ports = p;
    }
    let last = m.layers.len() - 1;
    let mut outputs: Vec<(usize, usize, usize)> = nodes
        .iter()
        .filter(|n| !n.layers[last].fin.is_empty())
        .map(|n| (n.index, n.layers[last].fin.start, n.layers[last].fin.len()))
        .collect();
    outputs.sort_by_key(|o| o.1);
    Ok(Schedule {
        nodes,
        links,
        switched,
        topology: t.topology,
        mode: t.mode,
        width: t.width as u32,
        latency: t.latency as u32,
        outputs,
        layers: m.layers.len(),
    })
}

/// How `d` devices are wired for `topology` and `mode`: each device's link ports (for each,
/// the device its tx goes to and the one its rx comes from), the point-to-point links, and
/// whether every port 0 goes to a switch instead (star hub or host relay). LSTM and CNN
/// systems share it.
#[allow(clippy::type_complexity)]
pub fn wiring(
    d: usize,
    topology: Topology,
    mode: LinkMode,
) -> (Vec<Vec<(Option<usize>, Option<usize>)>>, Vec<Link>, bool) {
    let switched = mode == LinkMode::Host || topology == Topology::Star;
    let ports: Vec<Vec<(Option<usize>, Option<usize>)>> = (0..d)
        .map(|i| {
            if switched {
                vec![(None, None)]
            } else if topology == Topology::Ring {
                vec![(Some((i + 1) % d), Some((i + d - 1) % d))]
            } else {
                vec![
                    (i.checked_sub(1), i.checked_sub(1)),
                    ((i + 1 < d).then_some(i + 1), (i + 1 < d).then_some(i + 1)),
                ]
            }
        })
        .collect();
    let mut links = Vec::new();
    if !switched {
        for (i, ps) in ports.iter().enumerate() {
            for (p, (tx, _)) in ps.iter().enumerate() {
                if let Some(to) = tx {
                    let rp = ports[*to]
                        .iter()
                        .position(|(_, rx)| *rx == Some(i))
                        .unwrap_or(0);
                    links.push(Link {
                        from: (i, p),
                        to: (*to, rp),
                    });
                }
            }
        }
    }
    (ports, links, switched)
}

/// Each device's rows, banks, finished units, partial-sum sources and h consumers.
fn node_layers(design: &Design, m: &LstmDesign) -> Result<Vec<Node>, String> {
    let d = design.plan.devices;
    let k = design.plan.banks;
    let h = m.hidden_size;
    let nl = m.layers.len();
    let mut nodes: Vec<Node> = (0..d)
        .map(|i| Node {
            index: i,
            layers: vec![NodeLayer::default(); nl],
            needs_x: false,
            ports: Vec::new(),
        })
        .collect();
    for (l, p) in design.partition.layers.iter().enumerate() {
        // Finished ranges.
        for dev in 0..d {
            let units: Vec<usize> = (0..h).filter(|u| p.finisher[*u] == dev).collect();
            if let (Some(&a), Some(&b)) = (units.first(), units.last()) {
                if b + 1 - a != units.len() {
                    return Err(format!(
                        "layer {l}: device {dev} finishes units that are not contiguous"
                    ));
                }
                nodes[dev].layers[l].fin = a..b + 1;
            } else {
                nodes[dev].layers[l].fin = 0..0;
            }
        }
        for s in &p.shares {
            let nlay = &mut nodes[s.device].layers[l];
            nlay.x_banks = s.blocks.iter().filter(|b| **b < k).copied().collect();
            nlay.h_banks = s
                .blocks
                .iter()
                .filter(|b| **b >= k)
                .map(|b| b - k)
                .collect();
            nlay.bias = s.blocks.contains(&0);
            let owned: BTreeSet<usize> = s.rows.iter().copied().collect();
            let fins: BTreeSet<usize> = s.rows.iter().map(|r| p.finisher[r % h]).collect();
            if fins.len() > 1 {
                return Err(format!(
                    "layer {l}: device {} sends partial sums to {} finishers; the generated \
                     hardware sends each layer's partial sums to one",
                    s.device,
                    fins.len()
                ));
            }
            let f = fins.into_iter().next().unwrap_or(s.device);
            nlay.pdst = f;
            let mut rows = Vec::new();
            let mut mask: Option<u8> = None;
            for u in 0..h {
                if p.finisher[u] != f {
                    continue;
                }
                let mut um = 0u8;
                for g in 0..4 {
                    if owned.contains(&(g * h + u)) {
                        rows.push(g * h + u);
                        um |= 1 << g;
                    }
                }
                match mask {
                    None => mask = Some(um),
                    Some(m0) if m0 != um => {
                        return Err(format!(
                            "layer {l}: device {} holds different gates for different units",
                            s.device
                        ))
                    }
                    _ => {}
                }
            }
            if rows.len() != s.rows.len() {
                return Err(format!(
                    "layer {l}: device {} has rows outside its finisher's units",
                    s.device
                ));
            }
            nlay.rows = rows;
            if let Some(m0) = mask.filter(|m0| *m0 != 0) {
                nodes[f].layers[l].sources.push((s.device, m0));
            }
        }
    }
    for l in 0..nl {
        for dev in 0..d {
            let has_h = !nodes[dev].layers[l].h_banks.is_empty() && nodes[dev].layers[l].computes();
            let next_x = l + 1 < nl
                && !nodes[dev].layers[l + 1].x_banks.is_empty()
                && nodes[dev].layers[l + 1].computes();
            nodes[dev].layers[l].need_h = has_h || next_x;
        }
        for f in 0..d {
            if nodes[f].layers[l].fin.is_empty() {
                continue;
            }
            let cons: Vec<usize> = (0..d)
                .filter(|c| *c != f && nodes[*c].layers[l].need_h)
                .collect();
            nodes[f].layers[l].h_consumers = cons;
            nodes[f].layers[l].sources.sort();
        }
    }
    for n in &mut nodes {
        n.needs_x = !n.layers[0].x_banks.is_empty() && n.layers[0].computes();
    }
    Ok(nodes)
}
