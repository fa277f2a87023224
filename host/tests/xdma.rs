//! The XDMA transport on a fake device tree in a temporary directory, as FireSim tests its
//! driver stack without a card: a regular file stands in for the user BAR, FIFOs and SEQPACKET
//! socket pairs for the DMA streams. Misaligned and short register accesses, partial counts,
//! timeouts and a second card-to-host open each end in a clear error, within the deadline.

#![cfg(unix)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use partita_hdl::stream::Layout;
use partita_host::driver::xdma::file::{FileC2h, FileH2c, FileRegs, FileTransport, XdmaPaths};
use partita_host::driver::xdma::{packet_bytes, C2h, H2c, RegPort, TransportError, XdmaDevice};
use partita_host::driver::{Device, DeviceError};

struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "partita-xdma-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tree(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn fifo(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        p
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A SEQPACKET socket pair: each write is one packet, each read returns at most one.
fn seqpacket() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: both descriptors were just created and are owned here.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn soon(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

fn bar(tree: &Tree, words: &[u32]) -> PathBuf {
    let p = tree.path("xdma0_user");
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn registers_are_four_bytes_at_aligned_offsets() {
    let tree = Tree::new("regs");
    let p = bar(&tree, &[0x5041_5254, 0x0001_0000, 0, 0xdead_beef]);
    let mut regs = FileRegs::open(&p).unwrap();
    assert_eq!(regs.reg_read(0x0, soon(1000)).unwrap(), 0x5041_5254);
    assert_eq!(regs.reg_read(0xc, soon(1000)).unwrap(), 0xdead_beef);
    regs.reg_write(0x8, 0x1234_5678, soon(1000)).unwrap();
    assert_eq!(regs.reg_read(0x8, soon(1000)).unwrap(), 0x1234_5678);
    let file = std::fs::read(&p).unwrap();
    assert_eq!(&file[8..12], &0x1234_5678u32.to_le_bytes());
    // Misaligned: refused before any I/O, the file untouched.
    for addr in [0x1, 0x2, 0x3, 0x6] {
        let e = regs.reg_write(addr, 7, soon(1000)).unwrap_err();
        assert!(
            matches!(&e, TransportError::Access(m) if m.contains("not 4-aligned")),
            "{e}"
        );
        let e = regs.reg_read(addr, soon(1000)).unwrap_err();
        assert!(e.to_string().contains("not 4-aligned"), "{e}");
    }
    assert_eq!(std::fs::read(&p).unwrap(), file);
    // A BAR shorter than the offset: a short count is an error, never a value.
    std::fs::write(&p, [1u8, 2, 3, 4, 5, 6]).unwrap();
    let mut regs = FileRegs::open(&p).unwrap();
    let e = regs.reg_read(0x4, soon(1000)).unwrap_err();
    assert!(e.to_string().contains("moved 2 of 4 bytes"), "{e}");
    // The device's error names the offset too, through the trait.
    let (h2c, _card_in) = seqpacket();
    let (_card_out, c2h) = seqpacket();
    let mut dev = XdmaDevice::new(
        regs,
        FileH2c::from_file(h2c, Path::new("h2c")),
        FileC2h::from_file(c2h, Path::new("c2h")).unwrap(),
        Layout::new(16, 64).unwrap(),
        4,
        Duration::from_millis(500),
    );
    let e = dev.reg_read(0x6).unwrap_err();
    assert!(
        matches!(&e, DeviceError::Transport(m) if m.contains("0x6")),
        "{e}"
    );
    // A missing BAR file names the path.
    let e = FileRegs::open(&tree.path("xdma9_user")).err().unwrap();
    assert!(e.to_string().contains("xdma9_user"), "{e}");
}

#[test]
fn card_to_host_fifo_reads_packets_and_times_out() {
    let tree = Tree::new("c2h");
    let p = tree.fifo("xdma0_c2h_0");
    // Nobody writes: "no data yet" until the deadline, then a timeout, not a hang.
    let mut c2h = FileC2h::open(&p).unwrap();
    let t = Instant::now();
    let e = c2h.read_packet(16, soon(200)).unwrap_err();
    assert!(matches!(e, TransportError::Timeout { moved: 0, .. }), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        t.elapsed()
    );
    // A second reader of the same stream is refused, naming the file.
    let e = FileC2h::open(&p).err().unwrap();
    assert!(e.to_string().contains("already open"), "{e}");
    // The fake card writes two packets; each read returns what arrived.
    let card = std::thread::spawn({
        let p = p.clone();
        move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            w.write_all(&[1, 2, 3, 4, 5, 6]).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            w.write_all(&[7, 8]).unwrap();
        }
    });
    let a = c2h.read_packet(16, soon(5000)).unwrap();
    assert_eq!(a, vec![1, 2, 3, 4, 5, 6]);
    let b = c2h.read_packet(16, soon(5000)).unwrap();
    assert_eq!(b, vec![7, 8]);
    card.join().unwrap();
    // After the card closes its end: no data, a timeout.
    assert!(matches!(
        c2h.read_packet(16, soon(100)),
        Err(TransportError::Timeout { .. })
    ));
    // Closing the reader frees the stream for the next one.
    drop(c2h);
    FileC2h::open(&p).unwrap();
}

#[test]
fn host_to_card_fifo_partial_counts_and_timeouts() {
    let tree = Tree::new("h2c");
    let p = tree.fifo("xdma0_h2c_0");
    // Nothing at the card's end: refused at open, not a wait for a reader that never comes.
    let e = FileH2c::open(&p).err().unwrap();
    assert!(e.to_string().contains("nothing reads"), "{e}");
    // The card's end open but never read: the FIFO fills (64 KiB), the rest of a 1 MiB packet
    // cannot go, and the write ends at its deadline naming what moved (a partial count, then
    // a timeout).
    let card = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(&p)
        .unwrap();
    let mut h2c = FileH2c::open(&p).unwrap();
    let big = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let e = h2c.write_packet(&big, soon(300)).unwrap_err();
    match e {
        TransportError::Timeout { moved, .. } => {
            assert!(moved > 0 && moved < big.len(), "{moved}")
        }
        e => panic!("{e}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10));
    drop(card);
    drop(h2c);
    // A card that reads: the packet arrives whole.
    let reader = std::thread::spawn({
        let p = p.clone();
        move || {
            let mut r = std::fs::File::open(p).unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        }
    });
    // Wait for the reader's open (a FIFO opened for writing needs a reader).
    let mut h2c = loop {
        match FileH2c::open(&p) {
            Ok(h) => break h,
            Err(_) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let packet: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    h2c.write_packet(&packet, soon(10_000)).unwrap();
    drop(h2c);
    assert_eq!(reader.join().unwrap(), packet);
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

/// A fake card on socket pairs: a BAR file, and a thread that answers each host-to-card
/// packet with `answer(packet)` on the card-to-host stream.
fn fake_card(
    tree: &Tree,
    answer: impl Fn(Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
    out: Layout,
    out_values: usize,
) -> (XdmaDevice<FileRegs>, std::thread::JoinHandle<()>) {
    let regs = FileRegs::open(&bar(tree, &[0; 64])).unwrap();
    let (h2c, mut card_in) = seqpacket();
    let (mut card_out, c2h) = seqpacket();
    let card = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = card_in.read(&mut buf) {
            if n == 0 {
                break;
            }
            for p in answer(buf[..n].to_vec()) {
                if card_out.write_all(&p).is_err() {
                    return;
                }
            }
        }
    });
    let dev = XdmaDevice::new(
        regs,
        FileH2c::from_file(h2c, Path::new("fake_h2c_0")),
        FileC2h::from_file(c2h, Path::new("fake_c2h_0")).unwrap(),
        out,
        out_values,
        Duration::from_millis(400),
    );
    (dev, card)
}

#[test]
fn packets_travel_as_vectors_and_back_as_beats() {
    let tree = Tree::new("echo");
    // 16-bit values, 4 per 64-bit beat; vectors of 6 values: two beats, the second half kept.
    let layout = Layout::new(16, 64).unwrap();
    assert_eq!(packet_bytes(&layout, 6), 12);
    let (mut dev, card) = fake_card(&tree, |p| vec![p], layout, 6);
    let codes: Vec<i64> = (0..18).map(|i| i * 37 - 300).collect();
    let beats = layout.pack(&codes, 6);
    dev.stream_write(&beats).unwrap();
    let back = dev.stream_read(beats.len()).unwrap();
    assert_eq!(back, beats);
    assert_eq!(layout.unpack(&back, 6).unwrap(), codes);
    drop(dev);
    card.join().unwrap();
}

#[test]
fn a_partial_packet_then_nothing_is_a_timeout_not_data() {
    let tree = Tree::new("partial");
    let layout = Layout::new(16, 64).unwrap();
    // The card answers each 12-byte vector with its first 5 bytes only, then nothing.
    let (mut dev, card) = fake_card(&tree, |p| vec![p[..5].to_vec()], layout, 6);
    dev.stream_write(&layout.pack(&[1, 2, 3, 4, 5, 6], 6))
        .unwrap();
    let t = Instant::now();
    let e = dev.stream_read(2).unwrap_err();
    assert!(
        matches!(&e, DeviceError::Deadline { what, .. } if what.contains("5 of the vector's 12 byte(s) came, then none: a timeout, not data")),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // A card that answers nothing: the error names the beat waited for.
    drop(dev);
    card.join().unwrap();
    let (mut dev, card) = fake_card(&tree, |_| vec![], layout, 6);
    dev.stream_write(&layout.pack(&[1, 2, 3, 4, 5, 6], 6))
        .unwrap();
    let e = dev.stream_read(2).unwrap_err();
    assert!(
        matches!(&e, DeviceError::Deadline { what, .. } if what.contains("output beat 1 of 2")),
        "{e}"
    );
    drop(dev);
    card.join().unwrap();
}

#[test]
fn a_card_that_stops_taking_input_is_reported_on_the_next_call() {
    let tree = Tree::new("stall");
    let layout = Layout::new(16, 64).unwrap();
    let regs = FileRegs::open(&bar(&tree, &[0; 16])).unwrap();
    // The card's host-to-card end is never read: a FIFO that fills.
    let p = tree.fifo("xdma0_h2c_0");
    let card_in = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(&p)
        .unwrap();
    let (_card_out, c2h) = seqpacket();
    let mut dev = XdmaDevice::new(
        regs,
        FileH2c::open(&p).unwrap(),
        FileC2h::from_file(c2h, Path::new("c2h")).unwrap(),
        layout,
        4,
        Duration::from_millis(300),
    );
    let codes = vec![3i64; 4 << 16];
    dev.stream_write(&layout.pack(&codes, codes.len())).unwrap();
    // The read times out (no output), naming the input the card has not taken; the writer's
    // own timeout is reported by the next call.
    let e = dev.stream_read(1).unwrap_err();
    assert!(
        matches!(&e, DeviceError::Deadline { what, .. } if what.contains("not yet taken by the card")),
        "{e}"
    );
    let t = Instant::now();
    let e = loop {
        match dev.stream_write(&layout.pack(&[1], 1)) {
            Err(e) => break e,
            Ok(()) if t.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(()) => panic!("the writer's timeout was never reported"),
        }
    };
    assert!(
        matches!(&e, DeviceError::Deadline { what, .. } if what.contains("host-to-card write")),
        "{e}"
    );
    drop(dev);
    drop(card_in);
}

#[test]
fn the_transport_opens_a_tree_by_prefix_and_channel() {
    let tree = Tree::new("paths");
    let prefix = tree.path("xdma0");
    let paths = XdmaPaths::new(prefix.to_str().unwrap(), 1);
    assert!(paths.h2c.ends_with("xdma0_h2c_1"));
    assert!(paths.c2h.ends_with("xdma0_c2h_1"));
    // No tree: the first missing file is named.
    let e = FileTransport::open(&paths).err().unwrap();
    assert!(e.to_string().contains("xdma0_user"), "{e}");
    std::fs::write(&paths.user, [0u8; 64]).unwrap();
    tree.fifo("xdma0_c2h_1");
    tree.fifo("xdma0_h2c_1");
    let _card_in = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(&paths.h2c)
        .unwrap();
    let t = FileTransport::open(&paths).unwrap();
    // While it is open, a second transport on the same channel is refused at its C2H.
    let e = FileTransport::open(&paths).err().unwrap();
    assert!(e.to_string().contains("already open"), "{e}");
    drop(t);
}

/// A device of a host-relayed system has its link on the core's second channel: frames the
/// host relays go down as one packet each (TLAST on the frame's last beat) and the card's
/// frames come up the same way, read by a thread of their own (the driver's files cannot be
/// polled). A fake card echoes each link packet; a packet that is not whole beats, and one
/// longer than any frame, are framing errors, not beats.
#[test]
fn the_host_link_travels_as_one_packet_per_frame_on_channel_1() {
    use partita_host::driver::xdma::{frame_beats, frame_packets};
    use partita_host::driver::LinkBeat;
    let tree = Tree::new("link");
    let layout = Layout::new(16, 64).unwrap();
    let regs = FileRegs::open(&bar(&tree, &[0; 16])).unwrap();
    let (h2c, _card_in) = seqpacket();
    let (_card_out, c2h) = seqpacket();
    let (lh2c, mut link_in) = seqpacket();
    let (mut link_out, lc2h) = seqpacket();
    // Echo the first two packets; on the third, send a 12-byte packet (not whole 8-byte
    // beats), then 8 KiB.
    let card = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        for _ in 0..2 {
            let n = link_in.read(&mut buf).unwrap();
            link_out.write_all(&buf[..n]).unwrap();
        }
        let _ = link_in.read(&mut buf).unwrap();
        link_out.write_all(&[7u8; 12]).unwrap();
        link_out.write_all(&vec![1u8; 8192]).unwrap();
    });
    let mut dev = XdmaDevice::new(
        regs,
        FileH2c::from_file(h2c, Path::new("h2c_0")),
        FileC2h::from_file(c2h, Path::new("c2h_0")).unwrap(),
        layout,
        4,
        Duration::from_millis(400),
    )
    .with_link(
        FileH2c::from_file(lh2c, Path::new("h2c_1")),
        FileC2h::from_file(lc2h, Path::new("c2h_1")).unwrap(),
        64,
    );
    assert_eq!(dev.host_links(), 1);
    let beat = |w: u64, last: bool| {
        let mut data = [0u64; partita_hdl::frame::BEAT_WORDS];
        data[0] = w;
        LinkBeat { data, last }
    };
    // Two frames of 3 and 2 beats, sent in one call.
    let frames = vec![
        beat(0x1111, false),
        beat(0x2222_3333_4444_5555, false),
        beat(u64::MAX, true),
        beat(9, false),
        beat(10, true),
    ];
    assert_eq!(frame_packets(&frames, 8).len(), 2);
    dev.link_send(0, &frames).unwrap();
    let t = Instant::now();
    let mut back = Vec::new();
    while back.len() < frames.len() && t.elapsed() < Duration::from_secs(10) {
        back.extend(dev.link_take(0).unwrap());
        dev.advance().unwrap();
    }
    assert_eq!(back, frames);
    // No port 1; a non-whole packet and a too-long one are framing errors.
    assert!(dev.link_take(1).is_err());
    dev.link_send(0, &[beat(1, true)]).unwrap();
    let mut next_error = || loop {
        match dev.link_take(0) {
            Err(e) => break e.to_string(),
            Ok(v) if t.elapsed() < Duration::from_secs(10) => {
                assert!(v.is_empty(), "{v:?}");
                dev.advance().unwrap();
            }
            Ok(_) => panic!("the broken packet was never reported"),
        }
    };
    let e = next_error();
    assert!(e.contains("not whole 8-byte beats"), "{e}");
    let e = next_error();
    assert!(e.contains("no partita frame is longer"), "{e}");
    assert!(frame_beats(&[0u8; 8192], 8).unwrap().len() == 1024);
    drop(dev);
    card.join().unwrap();
}

/// `open_card` opens a host-relayed device's link on channel 1, and refuses to put its
/// streams there too.
#[test]
fn a_relayed_card_opens_its_link_channel() {
    use partita_host::driver::xdma::file::open_card;
    let tree = Tree::new("card");
    let prefix = tree.path("xdma3");
    let prefix = prefix.to_str().unwrap();
    let layout = Layout::new(16, 64).unwrap();
    let t = Duration::from_millis(200);
    let e = open_card(prefix, 1, Some(64), layout, 4, t).err().unwrap();
    assert!(e.to_string().contains("channel 1 carries"), "{e}");
    std::fs::write(tree.path("xdma3_user"), [0u8; 64]).unwrap();
    let mut ends = Vec::new();
    for ch in [0, 1] {
        tree.fifo(&format!("xdma3_c2h_{ch}"));
        let h = tree.fifo(&format!("xdma3_h2c_{ch}"));
        ends.push(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_nonblock()
                .open(h)
                .unwrap(),
        );
    }
    let dev = open_card(prefix, 0, Some(64), layout, 4, t).unwrap();
    assert_eq!(dev.host_links(), 1);
    // The link's C2H is held: a second opener of the card is refused.
    let e = open_card(prefix, 0, Some(64), layout, 4, t).err().unwrap();
    assert!(e.to_string().contains("already open"), "{e}");
    drop(dev);
    // Without a link file, the card names it.
    std::fs::remove_file(tree.path("xdma3_c2h_1")).unwrap();
    let e = open_card(prefix, 0, Some(64), layout, 4, t).err().unwrap();
    assert!(e.to_string().contains("xdma3_c2h_1"), "{e}");
}
