//! The device trait every backend implements: register reads and writes over AXI4-Lite,
//! AXI4-Stream input and output, reset and identify. Run sequences use only the trait, so the
//! same code drives a simulated device or a board.

use partita_hdl::regs;
use thiserror::Error;

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
    #[error("device stopped answering: {what} did not complete within {ms} ms")]
    #[diagnostic(
        code(partita::timeout),
        help("the card may be hung or its bitstream not loaded; check STATUS and the XDMA driver's log (dmesg)")
    )]
    Deadline { what: String, ms: u64 },
    #[error("device transport: {0}")]
    #[diagnostic(code(partita::transport))]
    Transport(String),
}

/// What `identify` reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: u32,
    pub version: u32,
    pub plan_hash: u64,
    /// CONFIG0, CONFIG1, CONFIG2 (shape, engines and formats, stream layout).
    pub config: [u32; 3],
}

/// One AXI4-Stream beat (tdata up to 512 bits, tkeep, tlast), packed as
/// `partita_hdl::stream::Layout` says.
pub use partita_hdl::stream::Beat;

/// One beat of a link frame (`partita_hdl::frame`), as a host relays it.
pub use partita_hdl::frame::Beat as LinkBeat;

/// A partita device: simulated or a board.
///
/// Single-device runs use the blocking calls. A system of devices is driven by polling: the
/// system driver takes what each device has produced ([`Device::stream_take`],
/// [`Device::link_take`]), relays host links, and lets every device run a while
/// ([`Device::advance`]) until its one deadline. A backend that cannot be polled keeps the
/// default methods, which say so.
pub trait Device {
    fn reset(&mut self) -> Result<(), DeviceError>;
    fn reg_read(&mut self, addr: u32) -> Result<u32, DeviceError>;
    fn reg_write(&mut self, addr: u32, value: u32) -> Result<(), DeviceError>;
    /// Queue beats for the input stream; the device takes them as it becomes ready.
    fn stream_write(&mut self, beats: &[Beat]) -> Result<(), DeviceError>;
    /// Wait for `n` beats from the output stream.
    fn stream_read(&mut self, n: usize) -> Result<Vec<Beat>, DeviceError>;

    /// The output beats that have arrived so far, without waiting.
    fn stream_take(&mut self) -> Result<Vec<Beat>, DeviceError> {
        Err(not_polled("stream_take"))
    }

    /// Link ports this device has to the host (`mode = "host"`), whose frames the host relays.
    fn host_links(&self) -> usize {
        0
    }

    /// The beats host link `port` has sent the host so far, without waiting.
    fn link_take(&mut self, port: usize) -> Result<Vec<LinkBeat>, DeviceError> {
        let _ = port;
        Err(not_polled("link_take"))
    }

    /// Send beats into host link `port` (whole frames).
    fn link_send(&mut self, port: usize, beats: &[LinkBeat]) -> Result<(), DeviceError> {
        let _ = (port, beats);
        Err(not_polled("link_send"))
    }

    /// Let the device run a little (a simulated device: some cycles; a board: nothing, its
    /// clock runs anyway). A simulated device whose cycle budget is spent says so here.
    fn advance(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn identify(&mut self) -> Result<Identity, DeviceError> {
        Ok(Identity {
            id: self.reg_read(regs::ID.offset)?,
            version: self.reg_read(regs::VERSION.offset)?,
            plan_hash: (self.reg_read(regs::PLAN_HASH_HI.offset)? as u64) << 32
                | self.reg_read(regs::PLAN_HASH_LO.offset)? as u64,
            config: [
                self.reg_read(regs::CONFIG0.offset)?,
                self.reg_read(regs::CONFIG1.offset)?,
                self.reg_read(regs::CONFIG2.offset)?,
            ],
        })
    }
}

fn not_polled(what: &str) -> DeviceError {
    DeviceError::Transport(format!(
        "this backend runs single-device plans only: it has no {what} (README.md, \"Status\")"
    ))
}
