//! The XDMA transport over a simulated card: the Verilator model of the generated RTL
//! ([`SimDevice`]) behind the three ports, so the whole PCIe backend ([`super::XdmaDevice`]:
//! packets, the host-to-card writer thread, partial reads, deadlines) runs bit-exact against
//! the golden model without a board.
//!
//! The host-to-card port is on the writer thread, and the model is not: its packets go through
//! a channel that the register and card-to-host ports drain into the model's input queue
//! before every step they take.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

use partita_hdl::stream::Layout;

use super::{beat_bytes, packet_beats, C2h, H2c, RegPort, TransportError};
use crate::driver::device::{Device, DeviceError};
use crate::driver::sim::SimDevice;

/// Cycles the card-to-host port steps the model between two looks at the channel.
const SLICE: u64 = 256;

struct Card {
    dev: SimDevice,
    h2c: mpsc::Receiver<Vec<u8>>,
    in_beat_bytes: usize,
}

impl Card {
    /// Moves every packet the writer has sent into the model's input queue.
    fn drain(&mut self) -> Result<(), TransportError> {
        for p in self.h2c.try_iter() {
            let beats = packet_beats(&p, self.in_beat_bytes);
            self.dev
                .stream_write(&beats)
                .map_err(|e| TransportError::Stream(e.to_string()))?;
        }
        Ok(())
    }
}

fn transport_error(e: DeviceError) -> TransportError {
    match e {
        DeviceError::Timeout { what, limit } => TransportError::Timeout {
            what: format!("{what} (the simulated card's limit, {limit} cycles)"),
            limit_ms: 0,
            moved: 0,
        },
        DeviceError::Refused { what, resp } => {
            TransportError::Access(format!("{what}: the card answered AXI response {resp}"))
        }
        other => TransportError::Stream(other.to_string()),
    }
}

/// The register port of a simulated card.
pub struct CosimRegs(Rc<RefCell<Card>>);
/// The host-to-card port of a simulated card.
pub struct CosimH2c(mpsc::Sender<Vec<u8>>);
/// The card-to-host port of a simulated card.
pub struct CosimC2h(Rc<RefCell<Card>>);

/// The three ports on `dev` (already out of reset), whose input stream is packed as `input`
/// says.
pub fn transport(dev: SimDevice, input: Layout) -> (CosimRegs, CosimH2c, CosimC2h) {
    let (tx, rx) = mpsc::channel();
    let card = Rc::new(RefCell::new(Card {
        dev,
        h2c: rx,
        in_beat_bytes: input.keep_bits() as usize,
    }));
    (CosimRegs(card.clone()), CosimH2c(tx), CosimC2h(card))
}

impl RegPort for CosimRegs {
    fn reg_read(&mut self, addr: u32, _deadline: Instant) -> Result<u32, TransportError> {
        let mut c = self.0.borrow_mut();
        c.drain()?;
        c.dev.reg_read(addr).map_err(transport_error)
    }

    fn reg_write(
        &mut self,
        addr: u32,
        value: u32,
        _deadline: Instant,
    ) -> Result<(), TransportError> {
        let mut c = self.0.borrow_mut();
        c.drain()?;
        c.dev.reg_write(addr, value).map_err(transport_error)
    }
}

impl H2c for CosimH2c {
    fn write_packet(&mut self, bytes: &[u8], _deadline: Instant) -> Result<(), TransportError> {
        self.0
            .send(bytes.to_vec())
            .map_err(|_| TransportError::Stream("the simulated card is gone".into()))
    }
}

impl C2h for CosimC2h {
    /// Output beats until one with TLAST, or `max` bytes; the model's cycle limit per beat
    /// and the deadline both apply.
    fn read_packet(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        let start = Instant::now();
        let mut c = self.0.borrow_mut();
        let limit = c.dev.timeout_cycles;
        let mut out = Vec::new();
        let mut waited = 0u64;
        while out.len() < max {
            c.drain()?;
            c.dev.timeout_cycles = SLICE;
            let r = c.dev.stream_read(1);
            c.dev.timeout_cycles = limit;
            match r {
                Ok(b) => {
                    waited = 0;
                    beat_bytes(&b[0], &mut out);
                    if b[0].last {
                        break;
                    }
                }
                Err(DeviceError::Timeout { what, .. }) => {
                    waited += SLICE;
                    if waited >= limit || Instant::now() >= deadline {
                        return Err(TransportError::Timeout {
                            what: format!("{what} (the simulated card, {waited} cycles)"),
                            limit_ms: start.elapsed().as_millis() as u64,
                            moved: out.len(),
                        });
                    }
                }
                Err(e) => return Err(transport_error(e)),
            }
        }
        Ok(out)
    }
}
