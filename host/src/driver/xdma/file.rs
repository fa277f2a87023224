//! The XDMA transport on the driver's device files: `/dev/xdmaN_user` (the user BAR),
//! `/dev/xdmaN_h2c_K` and `/dev/xdmaN_c2h_K` (the DMA engines of channel K), as the Xilinx
//! driver makes them:
//! - the BAR moves exactly 4 bytes at a 4-aligned offset, with `pread`/`pwrite` (it has no
//!   lseek); a misaligned offset is refused here before any I/O;
//! - the engines' reads and writes are synchronous; on the driver's timeout they return a
//!   partial count if data moved, and ETIMEDOUT otherwise. A partial count followed by
//!   ETIMEDOUT is a timeout, never data. Older drivers leak errno 512 (ERESTARTSYS), which
//!   counts as an interrupted call, like EINTR: it is retried until the deadline;
//! - C2H opens with `O_TRUNC`, so a read returns at TLAST; it opens exclusively (a second open
//!   gets EBUSY). This transport also takes an exclusive `flock` on it, so a second opener in
//!   any process is refused with a message even where the driver would let it wait.
//!
//! The paths are configurable ([`XdmaPaths`]), so the transport can be pointed at a fake tree:
//! a regular file for `_user`, FIFOs for the streams (tests), or, through
//! [`FileTransport::from_files`], SEQPACKET socket pairs, which keep packet boundaries as TLAST
//! does. Every wait polls with the time left to its deadline first; a FIFO with no writer
//! reads as "no data yet" until the deadline.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{check_aligned, C2h, H2c, RegPort, TransportError};

/// The errno old XDMA drivers leak from an interrupted wait (the kernel's ERESTARTSYS).
pub const ERESTARTSYS: i32 = 512;

/// The device files of one XDMA card and stream channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdmaPaths {
    pub user: PathBuf,
    pub h2c: PathBuf,
    pub c2h: PathBuf,
}

impl XdmaPaths {
    /// `{prefix}_user`, `{prefix}_h2c_{channel}`, `{prefix}_c2h_{channel}` (the driver's names
    /// with prefix `/dev/xdma0`).
    pub fn new(prefix: &str, channel: u32) -> Self {
        XdmaPaths {
            user: format!("{prefix}_user").into(),
            h2c: format!("{prefix}_h2c_{channel}").into(),
            c2h: format!("{prefix}_c2h_{channel}").into(),
        }
    }
}

/// How a call ended, by errno.
enum Errno {
    /// EINTR or the leaked 512: try again.
    Interrupted,
    /// EAGAIN: nothing to move now (a non-blocking fake).
    Again,
    /// ETIMEDOUT: the driver's own timeout.
    TimedOut,
    Other(io::Error),
}

fn classify(e: io::Error) -> Errno {
    match e.raw_os_error() {
        Some(libc::EINTR) | Some(ERESTARTSYS) => Errno::Interrupted,
        Some(libc::EAGAIN) => Errno::Again,
        Some(libc::ETIMEDOUT) => Errno::TimedOut,
        _ => Errno::Other(e),
    }
}

fn left_ms(deadline: Instant) -> Option<i32> {
    let now = Instant::now();
    if now >= deadline {
        return None;
    }
    Some(((deadline - now).as_millis().min(i32::MAX as u128) as i32).max(1))
}

/// Waits until `f` is ready for `events` or the deadline passes; false on the deadline.
fn poll(f: &File, events: i16, deadline: Instant) -> Result<bool, io::Error> {
    loop {
        let Some(ms) = left_ms(deadline) else {
            return Ok(false);
        };
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            match classify(io::Error::last_os_error()) {
                Errno::Interrupted => continue,
                Errno::Other(e) => return Err(e),
                _ => return Err(io::Error::other("poll failed")),
            }
        }
        return Ok(r > 0);
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn io_err(what: &str, path: &Path, e: io::Error) -> TransportError {
    TransportError::Io(format!("{what} {}: {e}", path.display()))
}

/// The user BAR on a file.
pub struct FileRegs {
    file: File,
    path: PathBuf,
}

impl FileRegs {
    /// Opens the BAR file read-write.
    pub fn open(path: &Path) -> Result<Self, TransportError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_err("cannot open the user BAR", path, e))?;
        Ok(FileRegs {
            file,
            path: path.into(),
        })
    }

    /// The BAR on an open file.
    pub fn from_file(file: File, path: &Path) -> Self {
        FileRegs {
            file,
            path: path.into(),
        }
    }

    fn access(
        &mut self,
        addr: u32,
        deadline: Instant,
        write: Option<u32>,
    ) -> Result<u32, TransportError> {
        check_aligned(addr)?;
        let start = Instant::now();
        let what = match write {
            Some(v) => format!("register write 0x{addr:03x} <- 0x{v:08x}"),
            None => format!("register read 0x{addr:03x}"),
        };
        loop {
            let mut buf = write.unwrap_or(0).to_le_bytes();
            let r = match write {
                Some(_) => self.file.write_at(&buf, addr as u64),
                None => self.file.read_at(&mut buf, addr as u64),
            };
            match r {
                Ok(4) => return Ok(u32::from_le_bytes(buf)),
                Ok(n) => {
                    return Err(TransportError::Access(format!(
                        "{what} on {} moved {n} of 4 bytes; the BAR moves exactly 4 (is the BAR that small, or is this not the user BAR?)",
                        self.path.display()
                    )))
                }
                Err(e) => match classify(e) {
                    Errno::Interrupted | Errno::Again if Instant::now() < deadline => continue,
                    Errno::Interrupted | Errno::Again | Errno::TimedOut => {
                        return Err(TransportError::Timeout {
                            what,
                            limit_ms: ms(deadline.saturating_duration_since(start)),
                            moved: 0,
                        })
                    }
                    Errno::Other(e) => {
                        let hint = if e.raw_os_error() == Some(libc::EPROTO) {
                            " (the driver refuses accesses that are not 4 bytes at a 4-aligned offset)"
                        } else {
                            ""
                        };
                        return Err(TransportError::Access(format!(
                            "{what} on {}: {e}{hint}",
                            self.path.display()
                        )));
                    }
                },
            }
        }
    }
}

impl RegPort for FileRegs {
    fn reg_read(&mut self, addr: u32, deadline: Instant) -> Result<u32, TransportError> {
        self.access(addr, deadline, None)
    }

    fn reg_write(
        &mut self,
        addr: u32,
        value: u32,
        deadline: Instant,
    ) -> Result<(), TransportError> {
        self.access(addr, deadline, Some(value)).map(|_| ())
    }
}

/// Opens a stream file: a character device blocking (the driver's calls are synchronous), a
/// FIFO non-blocking (opening it blocking would wait for the other end forever; every wait
/// polls to its deadline instead).
fn open_stream(path: &Path, write: bool) -> Result<File, TransportError> {
    let fifo = std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .map_err(|e| io_err("cannot open the stream", path, e))?;
    let mut o = OpenOptions::new();
    let mut flags = 0;
    if write {
        o.write(true);
    } else {
        o.read(true);
        // A C2H read returns at TLAST.
        flags |= libc::O_TRUNC;
    }
    if fifo {
        flags |= libc::O_NONBLOCK;
    }
    o.custom_flags(flags);
    o.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) => TransportError::Io(format!(
            "{} is already open (the XDMA driver opens a card-to-host stream once); is another partita run using this card?",
            path.display()
        )),
        Some(libc::ENXIO) if fifo => TransportError::Io(format!(
            "nothing reads {}: the fake card's end of the FIFO is not open",
            path.display()
        )),
        _ => io_err("cannot open the stream", path, e),
    })
}

/// The host-to-card stream on a file.
pub struct FileH2c {
    file: File,
    path: PathBuf,
}

impl FileH2c {
    pub fn open(path: &Path) -> Result<Self, TransportError> {
        Ok(FileH2c {
            file: open_stream(path, true)?,
            path: path.into(),
        })
    }

    /// The stream on an open file (a FIFO or one end of a SEQPACKET socket pair).
    pub fn from_file(file: File, path: &Path) -> Self {
        FileH2c {
            file,
            path: path.into(),
        }
    }
}

impl H2c for FileH2c {
    fn write_packet(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), TransportError> {
        let start = Instant::now();
        let what = || {
            format!(
                "host-to-card write of {} byte(s) to {}",
                bytes.len(),
                self.path.display()
            )
        };
        let timeout = |moved: usize| TransportError::Timeout {
            what: what(),
            limit_ms: ms(deadline.saturating_duration_since(start)),
            moved,
        };
        let mut done = 0;
        while done < bytes.len() {
            match poll(&self.file, libc::POLLOUT, deadline) {
                Ok(true) => {}
                Ok(false) => return Err(timeout(done)),
                Err(e) => return Err(io_err("cannot wait on", &self.path, e)),
            }
            match (&self.file).write(&bytes[done..]) {
                // A partial count is data moved; the rest goes in the next call, and if that
                // times out the packet is a timeout.
                Ok(n) => done += n,
                Err(e) => match classify(e) {
                    Errno::Interrupted | Errno::Again => {}
                    Errno::TimedOut => return Err(timeout(done)),
                    Errno::Other(e) => {
                        return Err(TransportError::Io(format!(
                            "{} after {done} byte(s): {e}",
                            what()
                        )))
                    }
                },
            }
        }
        Ok(())
    }
}

use std::io::{Read, Write};

/// The card-to-host stream on a file.
pub struct FileC2h {
    file: File,
    path: PathBuf,
}

impl FileC2h {
    /// Opens the stream (with `O_TRUNC`) and takes an exclusive lock on it.
    pub fn open(path: &Path) -> Result<Self, TransportError> {
        let file = open_stream(path, false)?;
        Self::lock(&file, path)?;
        Ok(FileC2h {
            file,
            path: path.into(),
        })
    }

    /// The stream on an open file (a FIFO or one end of a SEQPACKET socket pair), locked.
    pub fn from_file(file: File, path: &Path) -> Result<Self, TransportError> {
        Self::lock(&file, path)?;
        Ok(FileC2h {
            file,
            path: path.into(),
        })
    }

    fn lock(file: &File, path: &Path) -> Result<(), TransportError> {
        // SAFETY: flock on a valid descriptor.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => TransportError::Io(format!(
                    "{} is already open by another reader (a card-to-host stream has one reader); is another partita run using this card?",
                    path.display()
                )),
                _ => io_err("cannot lock", path, e),
            });
        }
        Ok(())
    }
}

impl C2h for FileC2h {
    fn read_packet(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        let start = Instant::now();
        let what = || {
            format!(
                "card-to-host read of up to {max} byte(s) from {}",
                self.path.display()
            )
        };
        let timeout = |moved: usize| TransportError::Timeout {
            what: what(),
            limit_ms: ms(deadline.saturating_duration_since(start)),
            moved,
        };
        let mut buf = vec![0u8; max.max(1)];
        loop {
            match poll(&self.file, libc::POLLIN, deadline) {
                Ok(true) => {}
                Ok(false) => return Err(timeout(0)),
                Err(e) => return Err(io_err("cannot wait on", &self.path, e)),
            }
            match (&self.file).read(&mut buf) {
                // No writer on a fake FIFO (POLLHUP): no data yet.
                Ok(0) => {
                    if Instant::now() >= deadline {
                        return Err(timeout(0));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(e) => match classify(e) {
                    Errno::Interrupted | Errno::Again => {}
                    Errno::TimedOut => return Err(timeout(0)),
                    Errno::Other(e) => return Err(TransportError::Io(format!("{}: {e}", what()))),
                },
            }
        }
    }
}

/// The three ports of a card on its device files.
pub struct FileTransport {
    pub regs: FileRegs,
    pub h2c: FileH2c,
    pub c2h: FileC2h,
}

impl FileTransport {
    /// Opens the user BAR, then the card-to-host stream (exclusive), then the host-to-card one.
    pub fn open(paths: &XdmaPaths) -> Result<Self, TransportError> {
        let regs = FileRegs::open(&paths.user)?;
        let c2h = FileC2h::open(&paths.c2h)?;
        let h2c = FileH2c::open(&paths.h2c)?;
        Ok(FileTransport { regs, h2c, c2h })
    }
}

/// The XDMA channel that carries a device's host link (`gen --board xdma` wires it there).
pub const LINK_CHANNEL: u32 = 1;

/// A card on the driver's files with prefix `prefix`: the user BAR, channel `channel` for the
/// streams (output vectors of `out_values` values packed as `out` says) and, for a device of a
/// host-relayed system (`link_bits` given: its link beats' width), channel 1 for its link.
pub fn open_card(
    prefix: &str,
    channel: u32,
    link_bits: Option<u32>,
    out: partita_hdl::stream::Layout,
    out_values: usize,
    timeout: Duration,
) -> Result<super::XdmaDevice<FileRegs>, TransportError> {
    if link_bits.is_some() && channel == LINK_CHANNEL {
        return Err(TransportError::Access(format!(
            "channel {LINK_CHANNEL} carries this device's host link (the board wrapper puts it there); its streams are on another channel (0 in the wrapper)"
        )));
    }
    let t = FileTransport::open(&XdmaPaths::new(prefix, channel))?;
    let dev = super::XdmaDevice::new(t.regs, t.h2c, t.c2h, out, out_values, timeout);
    Ok(match link_bits {
        Some(bits) => {
            let p = XdmaPaths::new(prefix, LINK_CHANNEL);
            let c2h = FileC2h::open(&p.c2h)?;
            let h2c = FileH2c::open(&p.h2c)?;
            dev.with_link(h2c, c2h, bits)
        }
        None => dev,
    })
}
