//! Run sequences: what a host does to get outputs out of a device, through the [`Device`]
//! trait only (simulated devices and boards alike).

use partita_hdl::regs;
use partita_hdl::stream::Layout;

use super::device::{Device, DeviceError};

/// What one run on a device produced.
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
    let steps = seq_len * seq_count;
    let input_size = if steps == 0 { 1 } else { inputs.len() / steps };
    let shape = RunShape {
        seq_len,
        seq_count,
        in_values: input_size,
        out_values: hidden,
        in_layout: layout,
        out_layout: layout,
    };
    run_device(dev, plan_hash, &shape, inputs)
}

/// Run `frames` frames through a CNN device (SEQ_COUNT frames; SEQ_LEN 1): `inputs` are the
/// frames' codes in the stream's (y, x, c) order, `in_values` per frame; the outputs come back
/// in the same order, `out_values` per frame.
#[allow(clippy::too_many_arguments)]
pub fn run_cnn(
    dev: &mut dyn Device,
    plan_hash: u64,
    frames: usize,
    in_values: usize,
    out_values: usize,
    in_layout: Layout,
    out_layout: Layout,
    inputs: &[i64],
) -> Result<RunResult, DeviceError> {
    let shape = RunShape {
        seq_len: 1,
        seq_count: frames,
        in_values,
        out_values,
        in_layout,
        out_layout,
    };
    run_device(dev, plan_hash, &shape, inputs)
}

/// What a run moves: `seq_len x seq_count` vectors in and out, each packed by its layout.
pub struct RunShape {
    pub seq_len: usize,
    pub seq_count: usize,
    pub in_values: usize,
    pub out_values: usize,
    pub in_layout: Layout,
    pub out_layout: Layout,
}

/// The run sequence every device kind shares: identify, set the counts, stream the inputs in,
/// start, read every output vector, wait for done, check the stream error count.
pub fn run_device(
    dev: &mut dyn Device,
    plan_hash: u64,
    shape: &RunShape,
    inputs: &[i64],
) -> Result<RunResult, DeviceError> {
    let (seq_len, seq_count) = (shape.seq_len, shape.seq_count);
    let layout = shape.in_layout;
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
    dev.stream_write(&layout.pack(inputs, shape.in_values))?;
    dev.reg_write(regs::CTRL.offset, 1)?;
    let ol = shape.out_layout;
    let out = dev.stream_read(steps * ol.beats(shape.out_values))?;
    let codes = ol
        .unpack(&out, shape.out_values)
        .map_err(DeviceError::Framing)?;
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
