//! Run sequences: what a host does to get outputs out of a device, through the [`Device`]
//! trait only (simulated devices and boards alike).

use partita_hdl::regs;
use partita_hdl::stream::Layout;

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
/// codes, `(sequence, timestep, feature)` flattened; they travel, and the outputs return, in
/// beats packed as `layout` says (the device's CONFIG2 must agree).
pub fn run_lstm(
    dev: &mut dyn Device,
    plan_hash: u64,
    seq_len: usize,
    seq_count: usize,
    hidden: usize,
    layout: Layout,
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
    let config2 = (layout.per_beat << 16) | layout.beat_bits;
    if id.config[2] != config2 {
        return Err(DeviceError::Identity(format!(
            "CONFIG2 reads 0x{:08x}: {} value(s) per {}-bit beat; the plan packs {} per {}-bit beat",
            id.config[2],
            id.config[2] >> 16,
            id.config[2] & 0xffff,
            layout.per_beat,
            layout.beat_bits
        )));
    }
    dev.reg_write(regs::SEQ_LEN.offset, seq_len as u32)?;
    dev.reg_write(regs::SEQ_COUNT.offset, seq_count as u32)?;
    let steps = seq_len * seq_count;
    let input_size = if steps == 0 { 1 } else { inputs.len() / steps };
    dev.stream_write(&layout.pack(inputs, input_size))?;
    dev.reg_write(regs::CTRL.offset, 1)?;
    let out = dev.stream_read(steps * layout.beats(hidden))?;
    let codes = layout.unpack(&out, hidden).map_err(DeviceError::Framing)?;
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
    let stream_errs = dev.reg_read(regs::STREAM_ERRS.offset)?;
    if stream_errs != 0 {
        return Err(DeviceError::Framing(format!(
            "the device counted {stream_errs} input beat(s) whose tkeep or tlast differ from the layout (STREAM_ERRS)"
        )));
    }
    Ok(RunResult {
        codes,
        cycles: (dev.reg_read(regs::CYCLES_HI.offset)? as u64) << 32
            | dev.reg_read(regs::CYCLES_LO.offset)? as u64,
        saturations: dev.reg_read(regs::SAT_COUNT.offset)?,
        errors: dev.reg_read(regs::ERR_COUNT.offset)?,
    })
}
