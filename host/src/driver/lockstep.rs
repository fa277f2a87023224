//! The lockstep multi-device cosimulation as a backend: each device of a
//! [`partita_sim::multi::Lockstep`] system behind the [`Device`] trait. The devices share one
//! clock: whatever the host does to one of them (a register access, a wait), all of them run,
//! as boards on one bench do. The system driver ([`super::system`]) drives them like any other
//! devices; with host-relayed links it relays their frames itself.

use std::cell::RefCell;
use std::rc::Rc;

use partita_sim::multi::{Lockstep, RegError};

use super::device::{Beat, Device, DeviceError, LinkBeat};

/// Cycles a round of [`Device::advance`] calls (one per device) moves the shared clock.
pub const ROUND_CYCLES: u64 = 32;

/// One device of a lockstep system.
pub struct LockstepDevice {
    sys: Rc<RefCell<Lockstep>>,
    index: usize,
    /// Cycles any single wait may take before the device counts as stopped.
    pub timeout_cycles: u64,
    /// Cycles the whole system may run (the shared clock).
    pub budget_cycles: u64,
}

/// Every device of `sys`, each behind the trait, and the shared system (for its link report
/// after the run). `budget_cycles` bounds the shared clock.
pub fn devices(sys: Lockstep, budget_cycles: u64) -> (Rc<RefCell<Lockstep>>, Vec<LockstepDevice>) {
    let n = sys.devices();
    let sys = Rc::new(RefCell::new(sys));
    let devs = (0..n)
        .map(|index| LockstepDevice {
            sys: sys.clone(),
            index,
            timeout_cycles: 1_000_000,
            budget_cycles,
        })
        .collect();
    (sys, devs)
}

impl LockstepDevice {
    fn check_budget(&self, what: &str) -> Result<(), DeviceError> {
        if self.sys.borrow().now() > self.budget_cycles {
            return Err(DeviceError::Timeout {
                what: format!(
                    "{what} on device {} (the system's cycle budget is spent)",
                    self.index
                ),
                limit: self.budget_cycles,
            });
        }
        Ok(())
    }

    fn check_port(&self, port: usize) -> Result<(), DeviceError> {
        if port >= self.host_links() {
            return Err(DeviceError::Transport(format!(
                "device {} has no host link port {port} (it has {})",
                self.index,
                self.host_links()
            )));
        }
        Ok(())
    }

    fn reg_error(&self, what: String, e: RegError) -> DeviceError {
        match e {
            RegError::Timeout(limit) => DeviceError::Timeout { what, limit },
            RegError::Resp(resp) => DeviceError::Refused { what, resp },
            RegError::WriteRefused(addr, resp) => DeviceError::Refused {
                what: format!(
                    "the posted register write 0x{addr:03x} on device {} (reported by the next access)",
                    self.index
                ),
                resp,
            },
        }
    }
}

impl Device for LockstepDevice {
    fn reset(&mut self) -> Result<(), DeviceError> {
        let mut s = self.sys.borrow_mut();
        s.set_reset(self.index, true);
        for _ in 0..4 {
            s.step();
        }
        s.set_reset(self.index, false);
        s.step();
        Ok(())
    }

    fn reg_read(&mut self, addr: u32) -> Result<u32, DeviceError> {
        self.check_budget("a register read")?;
        let r = self
            .sys
            .borrow_mut()
            .reg_read(self.index, addr, self.timeout_cycles);
        r.map_err(|e| {
            self.reg_error(
                format!("register read 0x{addr:03x} on device {}", self.index),
                e,
            )
        })
    }

    fn reg_write(&mut self, addr: u32, value: u32) -> Result<(), DeviceError> {
        self.check_budget("a register write")?;
        let r = self
            .sys
            .borrow_mut()
            .reg_write(self.index, addr, value, self.timeout_cycles);
        r.map_err(|e| {
            self.reg_error(
                format!("register write 0x{addr:03x} on device {}", self.index),
                e,
            )
        })
    }

    fn stream_write(&mut self, beats: &[Beat]) -> Result<(), DeviceError> {
        self.sys.borrow_mut().stream_in(self.index, beats);
        Ok(())
    }

    fn stream_read(&mut self, n: usize) -> Result<Vec<Beat>, DeviceError> {
        let mut got = self.stream_take()?;
        let mut idle = 0;
        while got.len() < n {
            self.check_budget("an output read")?;
            if idle >= self.timeout_cycles {
                return Err(DeviceError::Timeout {
                    what: format!(
                        "output beat {} of {n} on device {}",
                        got.len() + 1,
                        self.index
                    ),
                    limit: self.timeout_cycles,
                });
            }
            self.sys.borrow_mut().step();
            let more = self.stream_take()?;
            idle = if more.is_empty() { idle + 1 } else { 0 };
            got.extend(more);
        }
        Ok(got)
    }

    fn stream_take(&mut self) -> Result<Vec<Beat>, DeviceError> {
        Ok(self.sys.borrow_mut().stream_out(self.index))
    }

    fn host_links(&self) -> usize {
        self.sys.borrow().host_relayed() as usize
    }

    fn link_take(&mut self, port: usize) -> Result<Vec<LinkBeat>, DeviceError> {
        self.check_port(port)?;
        Ok(self.sys.borrow_mut().link_from(self.index))
    }

    fn link_send(&mut self, port: usize, beats: &[LinkBeat]) -> Result<(), DeviceError> {
        self.check_port(port)?;
        self.sys.borrow_mut().link_to(self.index, beats);
        Ok(())
    }

    fn advance(&mut self) -> Result<(), DeviceError> {
        self.check_budget("the run")?;
        let mut s = self.sys.borrow_mut();
        // A round advances every device once: each call moves the shared clock by its share.
        let n = s.devices().max(1) as u64;
        for _ in 0..ROUND_CYCLES.div_ceil(n) {
            s.step();
        }
        Ok(())
    }
}
