//! Run sequences: what a host does to get outputs out of a device, through the [`Device`]
//! trait only (simulated devices and boards alike).

use partita_hdl::regs;

use super::device::{Device, DeviceError};

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
    if id.id != regs::DEVICE_ID {
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
    dev.reg_write(regs::SEQ_LEN.offset, seq_len as u32)?;
    dev.reg_write(regs::SEQ_COUNT.offset, seq_count as u32)?;
    let mask = if data_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << data_bits) - 1
    };
    let words: Vec<u64> = inputs.iter().map(|c| (*c as u64) & mask).collect();
    dev.stream_write(&words)?;
    dev.reg_write(regs::CTRL.offset, 1)?;
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
    let mut status = dev.reg_read(regs::STATUS.offset)?;
    let mut polls = 0;
    while status & 0b10 == 0 {
        polls += 1;
        if polls > 1000 {
            return Err(DeviceError::Timeout {
                what: "STATUS.done after the last output".into(),
                limit: 1000,
            });
        }
        status = dev.reg_read(regs::STATUS.offset)?;
    }
    let shift = 64 - data_bits;
    Ok(RunResult {
        codes: out
            .iter()
            .map(|w| ((w.data << shift) as i64) >> shift)
            .collect(),
        cycles: (dev.reg_read(regs::CYCLES_HI.offset)? as u64) << 32
            | dev.reg_read(regs::CYCLES_LO.offset)? as u64,
        saturations: dev.reg_read(regs::SAT_COUNT.offset)?,
        errors: dev.reg_read(regs::ERR_COUNT.offset)?,
    })
}
