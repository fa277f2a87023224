//! The device trait every backend implements, the simulated-device backend (a Verilator model
//! driven through AXI4-Lite and AXI4-Stream bus-functional models), and the LSTM run sequence
//! that uses only the trait, so the same code will drive boards.

use std::collections::VecDeque;

use partita_codegen::emit::DEVICE_ID;
use partita_sim::cosim::{Model, PinsIn, PinsOut};
use thiserror::Error;

/// Register offsets (see regmap.json / partita_regs.h).
pub use partita_codegen::emit::reg;

#[derive(Debug, Error, miette::Diagnostic)]
pub enum DeviceError {
    #[error("device stopped answering: {what} did not complete within {limit} cycles")]
    #[diagnostic(
        code(partita::timeout),
        help("the device may be hung; check STATUS and the waveform (--wave)")
    )]
    Timeout { what: String, limit: u64 },
    #[error("device refused {what} (AXI response {resp})")]
    #[diagnostic(code(partita::refused))]
    Refused { what: String, resp: u32 },
    #[error("this is not a partita device, or a different plan: {0}")]
    #[diagnostic(
        code(partita::identity),
        help("regenerate the RTL for this plan, or load the matching bitstream")
    )]
    Identity(String),
    #[error("output stream framing error: {0}")]
    #[diagnostic(code(partita::framing))]
    Framing(String),
}

/// What `identify` reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: u32,
    pub version: u32,
    pub plan_hash: u64,
    pub config: [u32; 2],
}

/// One word from the output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    pub data: u64,
    pub last: bool,
}

/// A partita device: simulated or a board.
pub trait Device {
    fn reset(&mut self) -> Result<(), DeviceError>;
    fn reg_read(&mut self, addr: u32) -> Result<u32, DeviceError>;
    fn reg_write(&mut self, addr: u32, value: u32) -> Result<(), DeviceError>;
    /// Queue words for the input stream; the device takes them as it becomes ready.
    fn stream_write(&mut self, words: &[u64]) -> Result<(), DeviceError>;
    /// Wait for `n` words from the output stream.
    fn stream_read(&mut self, n: usize) -> Result<Vec<Word>, DeviceError>;

    fn identify(&mut self) -> Result<Identity, DeviceError> {
        Ok(Identity {
            id: self.reg_read(reg::ID)?,
            version: self.reg_read(reg::VERSION)?,
            plan_hash: (self.reg_read(reg::PLAN_HASH_HI)? as u64) << 32
                | self.reg_read(reg::PLAN_HASH_LO)? as u64,
            config: [self.reg_read(reg::CONFIG0)?, self.reg_read(reg::CONFIG1)?],
        })
    }
}

/// Stream backpressure for the bus-functional models: the output's tready and the input's
/// tvalid are each held low on a pseudo-random `percent` of cycles.
#[derive(Clone, Copy, Debug, Default)]
pub struct Backpressure {
    pub percent: u32,
    pub seed: u64,
}

/// A Verilator model behind the device trait.
pub struct SimDevice {
    model: Model,
    pins: PinsIn,
    input: VecDeque<u64>,
    output: VecDeque<Word>,
    bp: Backpressure,
    rng: u64,
    /// Cycles any single wait may take before the device counts as stopped.
    pub timeout_cycles: u64,
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
        self.pins.s_tdata = self.input.front().copied().unwrap_or(0);
        self.pins.m_tready = self.chance() as u32;
        let out = self.model.step(&self.pins);
        if offer && out.s_tready == 1 {
            self.input.pop_front();
        }
        if out.m_tvalid == 1 && self.pins.m_tready == 1 {
            self.output.push_back(Word {
                data: out.m_tdata,
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

    fn stream_write(&mut self, words: &[u64]) -> Result<(), DeviceError> {
        self.input.extend(words.iter().copied());
        Ok(())
    }

    fn stream_read(&mut self, n: usize) -> Result<Vec<Word>, DeviceError> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            if let Some(w) = self.output.pop_front() {
                got.push(w);
                continue;
            }
            // Wait for progress; the limit applies to each word, not the whole read.
            let what = format!("output word {} of {n}", got.len() + 1);
            self.wait(&what, |s, _| !s.output.is_empty())?;
        }
        Ok(got)
    }
}

/// What one LSTM run on a device produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// Output codes, `(sequence, timestep, unit)` flattened, sign-extended from `data_bits`.
    pub codes: Vec<i64>,
    /// Hardware cycle counter (start to last result).
    pub cycles: u64,
    pub saturations: u32,
    pub errors: u32,
}

/// Run `seq_count` sequences of `seq_len` steps through an LSTM device. `inputs` are data-format
/// codes, `(sequence, timestep, feature)` flattened.
pub fn run_lstm(
    dev: &mut dyn Device,
    plan_hash: u64,
    seq_len: usize,
    seq_count: usize,
    hidden: usize,
    data_bits: u32,
    inputs: &[i64],
) -> Result<RunResult, DeviceError> {
    dev.reset()?;
    let id = dev.identify()?;
    if id.id != DEVICE_ID {
        return Err(DeviceError::Identity(format!(
            "ID register reads 0x{:08x}",
            id.id
        )));
    }
    if id.plan_hash != plan_hash {
        return Err(DeviceError::Identity(format!(
            "device plan hash {:016x}, plan {:016x}",
            id.plan_hash, plan_hash
        )));
    }
    dev.reg_write(reg::SEQ_LEN, seq_len as u32)?;
    dev.reg_write(reg::SEQ_COUNT, seq_count as u32)?;
    let mask = if data_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << data_bits) - 1
    };
    let words: Vec<u64> = inputs.iter().map(|c| (*c as u64) & mask).collect();
    dev.stream_write(&words)?;
    dev.reg_write(reg::CTRL, 1)?;
    let n = seq_len * seq_count * hidden;
    let out = dev.stream_read(n)?;
    for (i, w) in out.iter().enumerate() {
        let want_last = (i + 1) % hidden == 0;
        if w.last != want_last {
            return Err(DeviceError::Framing(format!(
                "word {i}: tlast is {} but the timestep {} there",
                w.last,
                if want_last { "ends" } else { "does not end" }
            )));
        }
    }
    let mut status = dev.reg_read(reg::STATUS)?;
    let mut polls = 0;
    while status & 0b10 == 0 {
        polls += 1;
        if polls > 1000 {
            return Err(DeviceError::Timeout {
                what: "STATUS.done after the last output".into(),
                limit: 1000,
            });
        }
        status = dev.reg_read(reg::STATUS)?;
    }
    let shift = 64 - data_bits;
    Ok(RunResult {
        codes: out
            .iter()
            .map(|w| ((w.data << shift) as i64) >> shift)
            .collect(),
        cycles: (dev.reg_read(reg::CYCLES_HI)? as u64) << 32 | dev.reg_read(reg::CYCLES_LO)? as u64,
        saturations: dev.reg_read(reg::SAT_COUNT)?,
        errors: dev.reg_read(reg::ERR_COUNT)?,
    })
}
