//! The simulated-device backend: a Verilator model of the generated RTL driven through
//! AXI4-Lite and AXI4-Stream bus-functional models, behind the [`Device`] trait. Every wait has
//! a cycle limit, so a hung model is reported as a device that stopped answering.

use std::collections::VecDeque;

use partita_sim::cosim::{Model, PinsIn, PinsOut};

use super::device::{Beat, Device, DeviceError};

/// Stream backpressure for the bus-functional models: the output's tready and the input's
/// tvalid are each held low on a pseudo-random `percent` of cycles.
#[derive(Clone, Copy, Debug, Default)]
pub struct Backpressure {
    pub percent: u32,
    pub seed: u64,
}

/// Cycles one [`Device::advance`] runs a simulated device.
pub const ADVANCE_CYCLES: u64 = 32;

/// A Verilator model behind the device trait.
pub struct SimDevice {
    model: Model,
    pins: PinsIn,
    input: VecDeque<Beat>,
    output: VecDeque<Beat>,
    bp: Backpressure,
    rng: u64,
    /// Cycles any single wait may take before the device counts as stopped.
    pub timeout_cycles: u64,
    /// Cycles the whole run may take (from the cost model; unlimited by default).
    pub budget_cycles: u64,
}

impl SimDevice {
    pub fn new(model: Model, bp: Backpressure) -> Self {
        SimDevice {
            model,
            pins: PinsIn {
                rst_n: 0,
                wstrb: 0xf,
                ..Default::default()
            },
            input: VecDeque::new(),
            output: VecDeque::new(),
            bp,
            rng: bp.seed | 1,
            timeout_cycles: 5_000_000,
            budget_cycles: u64::MAX,
        }
    }

    pub fn cycles(&self) -> u64 {
        self.model.cycles
    }

    fn chance(&mut self) -> bool {
        if self.bp.percent == 0 {
            return true;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) as u32 >= self.bp.percent
    }

    /// One clock: drive the stream BFMs, step the model, record stream handshakes.
    fn tick(&mut self) -> PinsOut {
        let offer = !self.input.is_empty() && self.chance();
        self.pins.s_tvalid = offer as u32;
        let b = self.input.front().copied().unwrap_or_default();
        self.pins.s_tdata = b.data;
        self.pins.s_tkeep = b.keep;
        self.pins.s_tlast = b.last as u32;
        self.pins.m_tready = self.chance() as u32;
        let out = self.model.step(&self.pins);
        if offer && out.s_tready == 1 {
            self.input.pop_front();
        }
        if out.m_tvalid == 1 && self.pins.m_tready == 1 {
            self.output.push_back(Beat {
                data: out.m_tdata,
                keep: out.m_tkeep,
                last: out.m_tlast == 1,
            });
        }
        out
    }

    fn wait(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Self, &PinsOut) -> bool,
    ) -> Result<PinsOut, DeviceError> {
        for _ in 0..self.timeout_cycles {
            if self.model.cycles >= self.budget_cycles {
                return Err(DeviceError::Timeout {
                    what: format!("{what} (the whole run's cycle budget, 4 x the cost model's cycles, is spent)"),
                    limit: self.budget_cycles,
                });
            }
            let out = self.tick();
            if done(self, &out) {
                return Ok(out);
            }
        }
        Err(DeviceError::Timeout {
            what: what.into(),
            limit: self.timeout_cycles,
        })
    }
}

impl Device for SimDevice {
    fn reset(&mut self) -> Result<(), DeviceError> {
        self.pins.rst_n = 0;
        for _ in 0..4 {
            self.tick();
        }
        self.pins.rst_n = 1;
        self.tick();
        self.input.clear();
        self.output.clear();
        Ok(())
    }

    fn reg_write(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        self.pins.awaddr = addr;
        self.pins.wdata = value;
        self.pins.awvalid = 1;
        self.pins.wvalid = 1;
        let what = format!("register write 0x{addr:03x}");
        self.wait(&what, |_, o| o.awready == 1 && o.wready == 1)?;
        self.pins.awvalid = 0;
        self.pins.wvalid = 0;
        self.pins.bready = 1;
        let out = self.wait(&what, |_, o| o.bvalid == 1)?;
        self.pins.bready = 0;
        if out.bresp != 0 {
            return Err(DeviceError::Refused {
                what,
                resp: out.bresp,
            });
        }
        Ok(())
    }

    fn reg_read(&mut self, addr: u32) -> Result<u32, DeviceError> {
        self.pins.araddr = addr;
        self.pins.arvalid = 1;
        let what = format!("register read 0x{addr:03x}");
        self.wait(&what, |_, o| o.arready == 1)?;
        self.pins.arvalid = 0;
        self.pins.rready = 1;
        let out = self.wait(&what, |_, o| o.rvalid == 1)?;
        self.pins.rready = 0;
        if out.rresp != 0 {
            return Err(DeviceError::Refused {
                what,
                resp: out.rresp,
            });
        }
        Ok(out.rdata)
    }

    fn stream_write(&mut self, beats: &[Beat]) -> Result<(), DeviceError> {
        self.input.extend(beats.iter().copied());
        Ok(())
    }

    fn stream_take(&mut self) -> Result<Vec<Beat>, DeviceError> {
        Ok(self.output.drain(..).collect())
    }

    fn advance(&mut self) -> Result<(), DeviceError> {
        let mut n = 0;
        self.wait("the run", |_, _| {
            n += 1;
            n >= ADVANCE_CYCLES
        })
        .map(|_| ())
    }

    fn stream_read(&mut self, n: usize) -> Result<Vec<Beat>, DeviceError> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            if let Some(w) = self.output.pop_front() {
                got.push(w);
                continue;
            }
            // Wait for progress; the limit applies to each word, not the whole read.
            let what = format!("output beat {} of {n}", got.len() + 1);
            self.wait(&what, |s, _| !s.output.is_empty())?;
        }
        Ok(got)
    }
}
