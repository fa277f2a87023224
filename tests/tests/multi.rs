//! Multi-device hardware: every partition strategy, device count and topology cosimulated in
//! lockstep over modelled links, bit-identical to the single-device golden model; link faults
//! reported; lint and latch checks of the node RTL; the rows speed-up and the cost model
//! measured against the cosim.
//!
//! These tests need verilator (and yosys for the latch check). Without a tool they are reported
//! as skipped (ignored); under CI a missing tool fails the build (tests/build.rs).

use std::path::Path;

use partita_codegen::Design;
use partita_host::cosim::multi::{simulate_multi, simulate_multi_with, MultiReport};
use partita_host::cosim::{simulate, SimOptions};
use partita_sim::multi::{Fault, FaultKind};
use partita_tests::{
    cli, design_from_text, lint, repo, rtl_sources, top_of, yosys_no_latches, TempDir,
};
use proptest::prelude::*;

/// A small multi-device plan.
fn plan(
    i: usize,
    h: usize,
    layers: usize,
    bbs: bool,
    devices: usize,
    topology: &str,
    mode: &str,
    strategy: &str,
    extra: &str,
) -> String {
    let sparsity = if bbs {
        "[sparsity]\nkind = \"bbs\"\nbanks = 4\ndensity = 0.5\n"
    } else {
        "[sparsity]\nkind = \"dense\"\nbanks = 4\n"
    };
    format!(
        "[model]\nkind = \"lstm\"\ninput_size = {i}\nhidden_size = {h}\nnum_layers = {layers}\nseed = 11\n\
         {sparsity}[target]\ndevices = {devices}\n[target.link]\ntopology = \"{topology}\"\nwidth = 64\n\
         latency = 5\nmode = \"{mode}\"\n[partition]\nstrategy = \"{strategy}\"\n{extra}"
    )
}

fn run(text: &str, dir: &Path, fault: Option<Fault>) -> (Design, MultiReport) {
    let d = design_from_text(text, dir);
    let r = simulate_multi(&d, &SimOptions::default(), fault)
        .unwrap_or_else(|e| panic!("simulate failed: {e}\n{text}"));
    (d, r)
}

fn assert_matches(text: &str, tag: &str) {
    let tmp = TempDir::new(tag);
    let (_, r) = run(text, tmp.path(), None);
    assert!(
        r.matched,
        "{tag}: {}\n{text}",
        r.summary().lines().next().unwrap_or("")
    );
    assert_eq!(r.words_got, r.words_expected);
    // The frame oracle: every frame a device sent decodes with the Rust frame type (header,
    // length, CRC-32/MPEG-2), and each device sent exactly the frames its schedule says.
    assert!(
        r.sent_frame_errors.is_empty(),
        "{tag}: {:?}",
        r.sent_frame_errors
    );
    assert!(
        r.delivered_frame_errors.is_empty(),
        "{tag}: {:?}",
        r.delivered_frame_errors
    );
    assert_eq!(
        r.frames_sent, r.frames_expected,
        "{tag}: frames (h, psum, barrier)"
    );
    assert!(
        r.frames_sent.iter().all(|f| f[2] > 0),
        "{tag}: every device sends barriers"
    );
    // Every device really worked and reported its counters.
    for dev in &r.devices {
        assert!(
            dev.cycles > 0,
            "{tag}: device {} reported no cycles",
            dev.device
        );
        assert_eq!(dev.stats.link_status, 0);
    }
}

/// One configuration per strategy and combination of dense/BBS and 1/2 layers, over the
/// device counts and topologies each strategy allows: (layers, BBS, devices, topology, link
/// mode, strategy, overrides). The default run takes [`CORE_CONFIGS`]; the others run with
/// `--ignored` ([`more_strategies_and_wirings_match_golden`]).
fn configs() -> Vec<(
    usize,
    bool,
    usize,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
)> {
    let mixed = "[[partition.override]]\nlayer = 1\nstrategy = \"cols\"\ndevices = [2, 3]\n";
    let mixed2 = "[[partition.override]]\nlayer = 0\nstrategy = \"layers\"\ndevices = [0]\n\
                  [[partition.override]]\nlayer = 1\nstrategy = \"rows\"\ndevices = [1, 2]\n";
    vec![
        (1, true, 2, "ring", "direct", "rows", ""),
        (2, false, 3, "chain", "direct", "rows", ""),
        (2, true, 4, "ring", "direct", "rows", ""),
        (1, false, 4, "star", "direct", "rows", ""),
        (2, true, 3, "ring", "host", "rows", ""),
        (2, true, 2, "chain", "direct", "layers", ""),
        (2, false, 2, "ring", "direct", "layers", ""),
        (1, true, 2, "ring", "direct", "cols", ""),
        (2, false, 4, "chain", "direct", "cols", ""),
        (2, true, 3, "star", "direct", "cols", ""),
        (1, false, 2, "ring", "direct", "ops", ""),
        (2, true, 2, "chain", "direct", "ops", ""),
        (1, true, 2, "ring", "direct", "gates", ""),
        (2, false, 4, "ring", "direct", "gates", ""),
        (2, true, 4, "chain", "direct", "gates", mixed),
        (2, false, 3, "ring", "direct", "rows", mixed2),
    ]
}

/// The configurations of the default run (indices into [`configs`]): every strategy, 2 to 4
/// devices, chain, ring and star, direct and host-relayed links, dense and BBS, 1 and 2 layers,
/// and both mixes.
const CORE_CONFIGS: &[usize] = &[3, 4, 5, 9, 11, 14, 15];

fn run_configs(pick: impl Fn(usize) -> bool) -> usize {
    let mut ran = 0;
    for (n, (layers, bbs, devices, topo, mode, strategy, extra)) in
        configs().into_iter().enumerate().filter(|(n, _)| pick(*n))
    {
        let text = plan(10, 12, layers, bbs, devices, topo, mode, strategy, extra);
        assert_matches(&text, &format!("cfg{n}"));
        ran += 1;
    }
    ran
}

#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn strategies_and_wirings_match_golden() {
    assert_eq!(
        run_configs(|n| CORE_CONFIGS.contains(&n)),
        CORE_CONFIGS.len()
    );
}

/// The rest of [`configs`]: more device counts and wirings of each strategy.
#[test]
#[ignore = "long: 9 more multi-device LSTM systems; cargo test --release -p partita-tests --test multi -- --ignored"]
fn more_strategies_and_wirings_match_golden() {
    let ran = run_configs(|n| !CORE_CONFIGS.contains(&n));
    assert_eq!(ran + CORE_CONFIGS.len(), configs().len());
}

/// 32-bit links, the narrowest the frame format allows: s3.12 h values two per beat (rows), and
/// with 8-bit formats 21-bit partial sums one per beat (cols).
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn narrow_links_match_golden() {
    let narrow = |t: String| t.replace("width = 64", "width = 32");
    assert_matches(
        &narrow(plan(10, 12, 2, true, 3, "chain", "direct", "rows", "")),
        "narrow_rows",
    );
    let q = "[quant]\nweight = \"s1.6\"\ndata = \"s2.5\"\nbias = \"s2.5\"\ncell = \"s3.4\"\n\
             preact = \"s3.4\"\ngate = \"s1.6\"\n";
    assert_matches(
        &narrow(plan(10, 12, 1, true, 2, "ring", "direct", "cols", q)),
        "narrow_cols",
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, .. ProptestConfig::default() })]
    /// Random plans: sizes, sparsity, layers, strategy, device count and topology, engines per
    /// device (equal or differing), packed streams, and two element-wise lanes where they fit.
    #[test]
    #[cfg_attr(not(have_verilator), ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)")]
    fn random_multi_device_plans_match_golden(
        i in 3usize..14,
        h in 4usize..14,
        layers in 1usize..3,
        bbs in any::<bool>(),
        strategy in prop::sample::select(vec!["rows", "cols", "gates", "ops", "layers"]),
        devices in 2usize..5,
        topo in prop::sample::select(vec!["ring", "chain", "star"]),
        host in any::<bool>(),
        two_engines in any::<bool>(),
        engine_mask in 0u8..16,
        stream_bits in prop::sample::select(vec![0u32, 32, 64, 256]),
        two_lanes in any::<bool>(),
    ) {
        let devices = match strategy {
            "ops" => 2,
            "layers" => layers.max(2),
            _ => devices,
        };
        let layers = if strategy == "layers" { devices } else { layers };
        // BBS over 4 banks needs at least 5 columns, so that the widest bank holds 2 entries
        // and density 0.5 prunes something (the validator refuses a plan that prunes nothing).
        let (i, h) = if bbs { (i.max(5), h.max(5)) } else { (i, h) };
        let mode = if host { "host" } else { "direct" };
        let mut text = plan(i, h, layers, bbs, devices, topo, mode, strategy, "");
        // Two row engines where every device holds whole rows (at least 2 slices each).
        // Either two on every device, or devices that differ: 1 or 2 engines each, from the mask
        // (the work then splits in proportion).
        if matches!(strategy, "rows" | "gates" | "layers") {
            let engines = if two_engines {
                "engines = 2\n".to_string()
            } else {
                (0..devices)
                    .map(|d| format!("[[target.device]]\nengines = {}\n", 1 + (engine_mask >> d & 1)))
                    .collect()
            };
            text = text.replace(&format!("devices = {devices}\n"), &format!("devices = {devices}\n{engines}"));
        }
        // Packed x and h streams (0: one value per beat).
        if stream_bits > 0 {
            text = text.replace(&format!("devices = {devices}\n"), &format!("devices = {devices}\nstream_bits = {stream_bits}\n"));
        }
        // Two element-wise lanes per device, where the plan's groups of two stay whole.
        if two_lanes {
            let lanes = text.replace(&format!("devices = {devices}\n"), &format!("devices = {devices}\new_lanes = 2\n"));
            let tmp = TempDir::new("proplanes");
            if partita_codegen::arch::lstm::System::new(&design_from_text(&lanes, tmp.path())).is_ok() {
                text = lanes;
            }
        }
        assert_matches(&text, "prop");
    }
}

/// Boards started one after another (300 register reads between two starts, the last device
/// first): the devices started first send frames before the others run; nothing is lost and
/// the output is still bit-exact.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn staggered_starts_lose_nothing() {
    let tmp = TempDir::new("skew");
    let text = plan(10, 12, 2, true, 4, "ring", "direct", "rows", "");
    let d = design_from_text(&text, tmp.path());
    let r = simulate_multi_with(&d, &SimOptions::default(), None, 300).unwrap();
    assert!(r.matched, "{}", r.summary());
    // Every beat a device sent or forwarded on the ring was received by the next one: the
    // counters count since reset, not since each device's own start.
    let sent: u32 = r
        .devices
        .iter()
        .map(|d| d.stats.tx_beats + d.stats.fwd_beats)
        .sum();
    let got: u32 = r.devices.iter().map(|d| d.stats.rx_beats).sum();
    assert_eq!(sent, got, "{}", r.summary());
}

/// A flipped bit, a dropped frame and two swapped frames are each caught by the receiver,
/// flagged in its registers and reported by the cosim; the run fails.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn link_faults_are_detected_and_reported() {
    let text = plan(8, 8, 1, true, 2, "ring", "direct", "rows", "");
    for (kind, expect) in [
        (FaultKind::Corrupt, "CRC"),
        (FaultKind::Drop, "sequence"),
        (FaultKind::Reorder, "sequence"),
    ] {
        let tmp = TempDir::new("fault");
        let (_, r) = run(
            &text,
            tmp.path(),
            Some(Fault {
                kind,
                channel: 0,
                frame: 2,
            }),
        );
        assert!(!r.matched, "{kind:?}: a damaged link must fail the run");
        let err = r.error.clone().unwrap_or_default();
        assert!(err.contains(expect), "{kind:?}: error was `{err}`");
        let flagged: Vec<_> = r
            .devices
            .iter()
            .filter(|d| d.stats.link_status != 0)
            .collect();
        assert!(!flagged.is_empty(), "{kind:?}: no device flagged it");
        // The receiver stopped: no damaged value was used, so fewer words arrived.
        assert!(
            r.words_got < r.words_expected,
            "{kind:?}: outputs kept coming"
        );
        // The framers sent good frames; the Rust decoder also sees the damaged one arrive.
        assert!(r.sent_frame_errors.is_empty(), "{:?}", r.sent_frame_errors);
        if kind == FaultKind::Corrupt {
            assert!(
                r.delivered_frame_errors.iter().any(|e| e.contains("CRC")),
                "the oracle missed the corrupted frame: {:?}",
                r.delivered_frame_errors
            );
        }
    }
    // The same plan without a fault passes, through the CLI, which also exits 1 with a fault.
    let tmp = TempDir::new("faultcli");
    let p = tmp.write("plan.toml", &text);
    let (code, out, err) = cli(&["sim", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = cli(&["sim", p.to_str().unwrap(), "--inject-fault", "corrupt:1:0"]);
    assert_eq!(code, 1);
    assert!(out.contains("CRC"), "{out}");
}

/// Host-relayed links are relayed by the host driver: every frame a device sends reaches the
/// host, is decoded with the Rust frame type and forwarded, and the output is bit-exact. A
/// frame damaged on its way to the host is never forwarded: the relay stops the run and names
/// the device. A frame damaged on its way from the host is caught by the receiving device.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn host_relay_forwards_every_frame_and_never_a_damaged_one() {
    let text = plan(8, 8, 2, false, 3, "chain", "host", "rows", "");
    let tmp = TempDir::new("relay");
    let (_, r) = run(&text, tmp.path(), None);
    assert!(r.matched, "{}", r.summary());
    assert_eq!(r.topology, "host-relayed", "{}", r.summary());
    // Every frame each device sent was relayed: the relay's count per source device is the
    // schedule's, and nothing was relayed that the devices did not send.
    let sent: Vec<usize> = r.frames_sent.iter().map(|k| k.iter().sum()).collect();
    assert!(sent.iter().all(|n| *n > 0), "{sent:?}");
    assert_eq!(r.relay.frames, sent, "{}", r.summary());
    // The channels to the host carried what the relay took; those from it what it forwarded.
    let n = r.devices.len();
    let up: u64 = r.channels[..n].iter().map(|c| c.1).sum();
    let down: u64 = r.channels[n..].iter().map(|c| c.1).sum();
    assert_eq!(
        (up, down),
        (r.relay.beats, r.relay.beats),
        "{:?}",
        r.channels
    );
    assert!(r.summary().contains("host relay:"), "{}", r.summary());
    // Damaged on the way up (channel 1: device 1 -> host): the relay refuses it.
    let tmp = TempDir::new("relay_up");
    let fault = Fault {
        kind: FaultKind::Corrupt,
        channel: 1,
        frame: 1,
    };
    let (_, r) = run(&text, tmp.path(), Some(fault));
    assert!(!r.matched);
    let e = r.error.clone().unwrap_or_default();
    assert!(
        e.contains("relay: device 1 sent a damaged frame") && e.contains("CRC"),
        "{e}"
    );
    assert!(e.contains("not forwarded") && e.contains("pending"), "{e}");
    assert_eq!(
        r.relay.frames[1], 1,
        "only the frame before the damaged one: {e}"
    );
    // Damaged on the way down (channel n + 2: host -> device 2): device 2 flags it.
    let tmp = TempDir::new("relay_down");
    let fault = Fault {
        channel: n + 2,
        ..fault
    };
    let (_, r) = run(&text, tmp.path(), Some(fault));
    assert!(!r.matched);
    let e = r.error.clone().unwrap_or_default();
    assert!(
        e.contains("device 2: link error") && e.contains("CRC"),
        "{e}"
    );
    assert!(r.devices[2].stats.crc_errors > 0, "{}", r.summary());
}

/// `partita run` on a multi-device plan: the system driver brings up every device, relays
/// the host links, and the output file equals `partita golden` bit for bit: on the lockstep
/// cosim, and on the PCIe backend over simulated cards (`xdma-cosim`: each card on its own
/// thread and clock, its link on the XDMA core's channel 1, read and written by the backend's
/// reader and writer threads). Cards need host-relayed links: a direct-linked plan is refused.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn run_on_a_multi_device_system_equals_golden() {
    let tmp = TempDir::new("runsys");
    let relay = plan(8, 8, 2, false, 3, "chain", "host", "rows", "");
    let ring = plan(8, 8, 1, true, 2, "ring", "direct", "cols", "");
    for (name, text, backend) in [
        ("relay", &relay, "sim"),
        ("ring", &ring, "sim"),
        ("relay_xdma", &relay, "xdma-cosim"),
    ] {
        let p = tmp.write(&format!("{name}.toml"), text);
        let x = tmp.path().join(format!("{name}_x.npy"));
        ndarray_npy::write_npy(
            &x,
            &ndarray::Array3::<f64>::from_shape_fn((2, 3, 8), |(a, b, c)| {
                (a as f64 - 0.5) * (b as f64 + 1.0) * (c as f64 - 3.0) / 5.0
            }),
        )
        .unwrap();
        let (y, g) = (
            tmp.path().join(format!("{name}_y.npy")),
            tmp.path().join(format!("{name}_g.npy")),
        );
        let (code, out, err) = cli(&[
            "run",
            p.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
            "--output",
            y.to_str().unwrap(),
            "--backend",
            backend,
        ]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains(&format!("run ({backend}, ")), "{out}");
        assert!(
            out.contains("devices): 2 sequence(s) x 3 step(s) (6 of 6 steps finished)"),
            "{out}"
        );
        assert_eq!(
            out.contains("frames relayed by the host"),
            name != "ring",
            "{out}"
        );
        // Per-device counters, read from each device's registers.
        for dv in 0..if name == "ring" { 2 } else { 3 } {
            assert!(out.contains(&format!("  device {dv}: ")), "{out}");
        }
        assert!(
            !out.contains(" 0 beats sent"),
            "every device sent frames: {out}"
        );
        let (code, _, err) = cli(&[
            "golden",
            p.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
            "--output",
            g.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            partita_tests::read_f64(&y),
            partita_tests::read_f64(&g),
            "{name}"
        );
    }
    // Cards reach each other only through the host.
    let p = tmp.path().join("ring.toml");
    let (x, y) = (tmp.path().join("ring_x.npy"), tmp.path().join("ring_c.npy"));
    let (code, _, err) = cli(&[
        "run",
        p.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
        "--backend",
        "xdma-cosim",
    ]);
    assert_eq!(code, 2, "{err}");
    // As words: miette wraps the message, which names a long path.
    let err = err
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(err.contains("set mode = \"host\""), "{err}");
    assert!(!y.exists());
}

/// A device that stops answering mid-run: the system driver ends the run within its limit,
/// names the device, the step and what was pending, and keeps the outputs that finished.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn a_stalled_device_ends_the_run_with_what_was_pending() {
    use partita_host::cosim::multi::lstm_system;
    use partita_host::driver::{lockstep, run_system, Device, SystemOptions};
    use partita_sim::multi::Lockstep;
    let tmp = TempDir::new("stall");
    let text = plan(8, 8, 1, false, 3, "chain", "host", "rows", "");
    let d = design_from_text(&text, tmp.path());
    let sys = partita_codegen::arch::lstm::System::new(&d).unwrap();
    let (steps, seqs) = (24, 1);
    let codes: Vec<i64> = (0..steps * 8).map(|i| (i as i64 % 7 - 3) * 100).collect();
    let s = lstm_system(&d, &sys, &SimOptions::default(), &codes, steps, seqs).unwrap();
    // A step takes about 140 cycles: device 2 stops after the first few.
    let mut ls = Lockstep::new(s.models, s.wiring, None);
    ls.stall(2, 1200);
    let (_, mut devs) = lockstep::devices(ls, s.budget);
    for dv in devs.iter_mut() {
        dv.timeout_cycles = 20_000;
    }
    let mut refs: Vec<&mut dyn Device> = devs.iter_mut().map(|d| d as &mut dyn Device).collect();
    let opts = SystemOptions {
        plan_hash: d.plan.plan_hash,
        link_timeout: 0,
        start_skew: 0,
        frame: sys.frame,
        deadline: std::time::Duration::from_secs(600),
        poll_rounds: 32,
    };
    let r = run_system(&mut refs, &s.io, &opts);
    let e = r.error.clone().unwrap_or_default();
    assert!(e.starts_with("device 2: "), "{e} {:?}", r.devices);
    assert!(
        e.contains("stopped answering") && e.contains("20000 cycles"),
        "{e}"
    );
    assert!(e.contains("pending:") && e.contains("output beats"), "{e}");
    // The steps before the stall came out, whole; not all of them.
    assert!(
        !r.codes.is_empty() && r.codes.len() < steps * 8,
        "{}",
        r.codes.len()
    );
    assert_eq!(r.codes.len() % 8, 0);
    // The other devices' counters were still read; the stalled one's were not asked for.
    assert!(
        r.devices[0].cycles > 0 && r.devices[2].cycles == 0,
        "{:?}",
        r.devices
    );
}

/// Node RTL of every strategy lints clean with -Wall, has no lint_off, carries the header; a
/// coarse Yosys synthesis of a 2-device system with 4 row engines per device infers no latch.
#[test]
#[cfg_attr(
    not(all(have_verilator, have_yosys)),
    ignore = "needs verilator and yosys (bash scripts/ensure-tools.sh verilator yosys)"
)]
fn node_rtl_lints_clean_and_has_no_latches() {
    let tmp = TempDir::new("nodelint");
    for (n, (devices, topo, strategy)) in [
        (2, "ring", "rows"),
        (3, "chain", "cols"),
        (4, "star", "gates"),
        (2, "chain", "layers"),
        (2, "ring", "rows"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut text = plan(10, 12, 2, true, devices, topo, "direct", strategy, "");
        if n == 4 {
            // Element-wise lanes: partial-sum banks, a serializer handing over two units per
            // cycle (12 engines, 3 units per load: groups of 2 and 1, rotating into the banks),
            // two lanes, h groups in the queue and the packer. 16 hidden units: 4 per bank.
            text = plan(10, 16, 2, true, devices, topo, "direct", strategy, "").replace(
                "devices = 2\n",
                "devices = 2\nengines = 12\new_lanes = 2\nstream_bits = 64\n",
            );
            assert!(text.contains("ew_lanes = 2"));
        }
        if n == 0 {
            // Several row engines (and their row serializer) on the first.
            text = text.replace("devices = 2\n", "devices = 2\nengines = 4\n");
            assert!(text.contains("engines = 4"));
        }
        if n == 1 {
            // Packed 128-bit streams on the second.
            text = text.replace("devices = 3\n", "devices = 3\nstream_bits = 128\n");
            assert!(text.contains("stream_bits = 128"));
        }
        let p = tmp.write(&format!("p{n}.toml"), text);
        let dir = tmp.path().join(format!("rtl{n}"));
        let (code, _, err) = cli(&["gen", p.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(dir.join("system.json").exists());
        for d in 0..devices {
            let dd = dir.join(format!("dev{d}"));
            let top = top_of(&dd);
            assert_eq!(top, format!("partita_d{d}_top"), "per-device module names");
            lint(&dd, &top, &["-f", "files.f"]).unwrap_or_else(|e| panic!("{strategy}: {e}"));
            // Every device's modules together: no name is defined twice.
            lint(&dir, &top, &["-f", "system.f"]).unwrap_or_else(|e| panic!("{strategy}: {e}"));
            assert!(dd.join("regmap.json").exists() && dd.join("partita_regs.h").exists());
            for f in rtl_sources(&dd) {
                let v = std::fs::read_to_string(dd.join(&f)).unwrap();
                assert!(!v.contains("lint_off"), "{f} has a lint_off");
                assert!(
                    v.starts_with("// Generated by partita"),
                    "{f} lacks the header"
                );
            }
        }
        // Deterministic: a second generation is byte-identical.
        let again = tmp.path().join(format!("again{n}"));
        let (code, _, err) = cli(&["gen", p.to_str().unwrap(), "-o", again.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        for d in 0..devices {
            for f in std::fs::read_dir(dir.join(format!("dev{d}"))).unwrap() {
                let f = f.unwrap().path();
                let name = f.file_name().unwrap();
                assert_eq!(
                    std::fs::read(&f).unwrap(),
                    std::fs::read(again.join(format!("dev{d}")).join(name)).unwrap(),
                    "{} differs between runs",
                    f.display()
                );
            }
        }
        if n == 0 || n == 4 {
            yosys_no_latches(&dir.join("dev0"), false).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// The built-in demo (64 -> 256, 2 layers, 75% BBS, rows over 4 FPGAs on a ring) against the
/// same model on one FPGA: at most 0.35 of the single-device cycles per timestep, links
/// included. Also the cost model: within 10% of the measured cycles on the multi-device
/// example plans (the demo, its dense twin, and the differing devices of `lstm_3dev_mixed`),
/// and their link bytes exactly.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn rows_speedup_and_cost_model_against_cosim() {
    let tmp = TempDir::new("speedup");
    let demo = std::fs::read_to_string(repo().join("examples/lstm_4dev_bbs.toml")).unwrap();
    let (d4, r4) = run(&demo, tmp.path(), None);
    assert!(r4.matched, "{}", r4.summary());
    let single = demo
        .replace("devices = 4", "devices = 1")
        .replace("strategy = \"rows\"", "");
    let d1 = design_from_text(&single, tmp.path());
    let r1 = simulate(&d1, &SimOptions::default()).unwrap();
    assert!(r1.matched);
    let ratio = r4.cycles_per_timestep / r1.cycles_per_timestep;
    eprintln!(
        "rows over 4: {:.1} vs 1 device {:.1} cycles per timestep: ratio {ratio:.3}",
        r4.cycles_per_timestep, r1.cycles_per_timestep
    );
    assert!(ratio <= 0.35, "ratio {ratio:.3}");
    let _ = d4;
    for name in ["lstm_4dev_bbs", "lstm_4dev_dense", "lstm_3dev_mixed"] {
        let text = std::fs::read_to_string(repo().join(format!("examples/{name}.toml"))).unwrap();
        let (design, report) = run(&text, tmp.path(), None);
        assert!(report.matched, "{}", report.summary());
        let p = partita_codegen::analysis::cost::predict(&design);
        let err =
            (p.cycles_per_step - report.cycles_per_timestep).abs() / report.cycles_per_timestep;
        eprintln!(
            "{name}: predicted {:.1}, measured {:.1} cycles per timestep ({:.1}% off)",
            p.cycles_per_step,
            report.cycles_per_timestep,
            100.0 * err
        );
        assert!(err <= 0.10, "{name}: cost model {:.1}% off", 100.0 * err);
        assert_eq!(
            p.link_bytes_per_step, report.link_bytes_per_timestep,
            "{name}: link bytes"
        );
    }
}

/// Several row engines per device, in every strategy: bit-identical to the golden model, with
/// the frames the schedule says. More engines make the rows split faster, and the cost model
/// follows them.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn many_engines_per_node_match_golden() {
    let engines = |t: String, devices: usize, e: usize| {
        t.replace(
            &format!("devices = {devices}\n"),
            &format!("devices = {devices}\nengines = {e}\n"),
        )
    };
    let mixed = "[[partition.override]]\nlayer = 1\nstrategy = \"cols\"\ndevices = [2, 3]\n";
    // Rows take 4 cycles here (2 x and 2 h slices), so 4 engines at most, or 16 where whole
    // units stay on a device (rows, layers: the serializer then hands over a unit's four gate
    // sums per cycle, with 4, 8, 16 engines); a device that holds only x or only h columns
    // (cols, ops) has rows of 2 cycles.
    // One case per strategy here (16 engines on rows, 8 on layers, the mixed plan); the
    // other engine counts run behind --ignored (`more_engine_counts_per_node_match_golden`).
    for (n, (layers, bbs, devices, topo, strategy, e, extra)) in [
        (2, true, 3, "ring", "rows", 16, ""),
        (2, true, 2, "chain", "layers", 8, ""),
        (2, false, 4, "chain", "cols", 2, ""),
        (2, true, 2, "chain", "ops", 2, ""),
        (2, true, 4, "chain", "gates", 2, mixed),
    ]
    .into_iter()
    .enumerate()
    {
        let text = engines(
            plan(
                10, 12, layers, bbs, devices, topo, "direct", strategy, extra,
            ),
            devices,
            e,
        );
        assert!(text.contains(&format!("engines = {e}")));
        assert_matches(&text, &format!("me{n}"));
    }
    // The demo with 4 engines per device: faster than with one, and the model within 10%.
    let tmp = TempDir::new("engines4");
    let demo = std::fs::read_to_string(repo().join("examples/lstm_4dev_bbs.toml")).unwrap();
    let (_, r1) = run(&demo, tmp.path(), None);
    let (d4, r4) = run(
        &demo.replace("engines = 1", "engines = 4"),
        tmp.path(),
        None,
    );
    assert!(
        r1.matched && r4.matched,
        "{}\n{}",
        r1.summary(),
        r4.summary()
    );
    let speedup = r1.cycles_per_timestep / r4.cycles_per_timestep;
    eprintln!(
        "demo: 1 engine {:.1}, 4 engines {:.1} cycles per timestep ({speedup:.2}x)",
        r1.cycles_per_timestep, r4.cycles_per_timestep
    );
    assert!(speedup >= 2.5, "4 engines per device: only {speedup:.2}x");
    let p = partita_codegen::analysis::cost::predict(&d4);
    let err = (p.cycles_per_step - r4.cycles_per_timestep).abs() / r4.cycles_per_timestep;
    assert!(err <= 0.10, "cost model {:.1}% off", 100.0 * err);
}

/// The demo with 16 engines per device (rows of 10 cycles; one unit's four sums leave per
/// cycle, so 40 would fit): faster than with 4, and the model within 10%. (16 engines per
/// node are covered in the default run on a small model, above.)
#[test]
#[ignore = "long: two Verilator builds of the demo's node design with 4 and 16 engines; cargo test --release -p partita-tests --test multi -- --ignored"]
fn demo_with_16_engines_per_node_beats_4() {
    let tmp = TempDir::new("engines16");
    let demo = std::fs::read_to_string(repo().join("examples/lstm_4dev_bbs.toml")).unwrap();
    let (_, r4) = run(
        &demo.replace("engines = 1", "engines = 4"),
        tmp.path(),
        None,
    );
    assert!(r4.matched, "{}", r4.summary());
    let (d16, r16) = run(
        &demo.replace("engines = 1", "engines = 16"),
        tmp.path(),
        None,
    );
    assert!(r16.matched, "{}", r16.summary());
    let speedup = r4.cycles_per_timestep / r16.cycles_per_timestep;
    eprintln!(
        "demo: 16 engines {:.1} cycles per timestep ({speedup:.2}x 4 engines)",
        r16.cycles_per_timestep
    );
    assert!(
        speedup >= 1.5,
        "16 engines per device: only {speedup:.2}x 4"
    );
    let p = partita_codegen::analysis::cost::predict(&d16);
    let err = (p.cycles_per_step - r16.cycles_per_timestep).abs() / r16.cycles_per_timestep;
    assert!(err <= 0.10, "cost model {:.1}% off", 100.0 * err);
}

/// The other engine counts of the test above: 3 and 4 row engines on a ring and a star, 4 on
/// gates over a ring, 3 on layers over a ring.
#[test]
#[ignore = "long: four more 2- to 4-device builds; cargo test --release -p partita-tests --test multi -- --ignored"]
fn more_engine_counts_per_node_match_golden() {
    for (n, (layers, bbs, devices, topo, strategy, e)) in [
        (2, true, 3, "ring", "rows", 3),
        (1, true, 2, "star", "rows", 4),
        (2, true, 4, "ring", "gates", 4),
        (2, true, 2, "ring", "layers", 3),
    ]
    .into_iter()
    .enumerate()
    {
        let text = plan(10, 12, layers, bbs, devices, topo, "direct", strategy, "").replace(
            &format!("devices = {devices}\n"),
            &format!("devices = {devices}\nengines = {e}\n"),
        );
        assert!(text.contains(&format!("engines = {e}")));
        assert_matches(&text, &format!("mo{n}"));
    }
}

/// More engines than cycles per row cannot hand their sums over: refused with the limit.
#[test]
fn too_many_node_engines_are_refused() {
    let tmp = TempDir::new("engmax");
    let text = plan(10, 12, 1, true, 2, "ring", "direct", "cols", "")
        .replace("devices = 2\n", "devices = 2\nengines = 3\n");
    let p = tmp.write("plan.toml", &text);
    let dir = tmp.path().join("rtl");
    let (code, out, err) = cli(&["gen", p.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("engines is 3") && err.contains("at most 2 engine"),
        "{err}"
    );
    assert!(!dir.exists(), "no half-written output");
    // rows hands over a unit's four gate sums per cycle: 16 engines for rows of 4 cycles.
    let text = plan(10, 12, 1, true, 2, "ring", "direct", "rows", "")
        .replace("devices = 2\n", "devices = 2\nengines = 20\n");
    let p = tmp.write("rows.toml", &text);
    let (code, out, err) = cli(&["gen", p.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("engines is 20")
            && err.contains("four row sums per cycle")
            && err.contains("at most 16 engine"),
        "{err}"
    );
    assert!(!dir.exists(), "no half-written output");
}

/// Issue 10's benchmark split by rows over 4 FPGAs on a 256-bit ring, here with 16 engines x 16
/// lanes per device and one x value per stream beat (the example as written, 60 engines and 16
/// values per beat, is `lstm_1024_on_4_devices_with_60_engines`): bit-exact, at least 2.2x
/// faster than the same model on one device (`lstm_1024_bbs`,
/// 4 207 cycles per step; 1.84x while received h values were written one per cycle, 2.58x with
/// a link beat's run per write, 3.04x with the finisher alongside the rows: 1 383.2 cycles),
/// and the cost model within 5% of the cosim. Its h all-gather
/// (3 x 256 values into every device per step, forwarded around the ring) deadlocked the ring
/// with 64-beat receive buffers; they are now sized from the schedule.
#[test]
#[ignore = "benchmark-sized: a Verilator build of a 1024-unit node design (the four devices share it); \
            the 60-engine test below covers the same system in the default run; \
            cargo test --release -p partita-tests --test multi -- --ignored"]
fn lstm_1024_on_4_devices_beats_one_device() {
    let tmp = TempDir::new("big4");
    let text = std::fs::read_to_string(repo().join("examples/lstm_1024_4dev.toml"))
        .unwrap()
        .replace("engines = 60", "engines = 16")
        .replace("stream_bits = 256", "stream_bits = 16");
    let (design, r) = run(&text, tmp.path(), None);
    assert!(r.matched, "{}", r.summary());
    assert_eq!(r.words_got, r.words_expected);
    let one = partita_codegen::analysis::cost::single_device_cycles(
        &design_from_text(
            &std::fs::read_to_string(repo().join("examples/lstm_1024_bbs.toml")).unwrap(),
            tmp.path(),
        ),
        16,
    )
    .unwrap();
    eprintln!(
        "1024 -> 1024: 4 devices {:.1}, 1 device {one:.1} cycles per timestep",
        r.cycles_per_timestep
    );
    assert!(r.cycles_per_timestep * 2.2 < one, "{}", r.summary());
    // The model of the run as cosimulated: 2 sequences of 8 steps of a 1-layer model, whose x
    // loader runs ahead across the sequences' boundary, so the first x load (here 1 024
    // beats of one value) is exposed once, as in one 16-step sequence.
    let p = partita_codegen::analysis::cost::node_cycles_per_step(&design, 16).unwrap();
    eprintln!("cost model {p:.1}");
    let err = (p - r.cycles_per_timestep).abs() / r.cycles_per_timestep;
    assert!(err <= 0.05, "cost model {:.1}% off", 100.0 * err);
}

/// The example as written: 60 engines x 16 lanes per device and two element-wise lanes (976
/// multipliers), the serializer handing over two units' four gate sums per cycle, so layer 0's
/// x slices run while the last step's h is gathered. x arrives 16 values per 256-bit beat and is
/// written a word at a time, the finisher takes two units per cycle alongside the rows, h
/// frames of 64 values leave as they fill and go once round the ring as broadcasts. Measured
/// 354.25 cycles per step (435.9 with one element-wise lane and whole rows, 434.9 before the
/// writer counted runs by values left, 438.9 before the vector-memory writer buffered received
/// beats, 492.3 with one copy per consumer, 816.6 before the finisher overlapped the rows;
/// 1 627.6 with 16 engines and one x value per beat). Bit-exact, within issue 10's target of
/// 450 cycles, cost model within its target of 5%. Its four devices are one node design: one
/// Verilator build of about 1 minute from cold (four builds took about 4.5 minutes, and 25
/// before the engines' C++ stopped being copied per instance, when this test was behind
/// --ignored), and the 16 steps about 1 s.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn lstm_1024_on_4_devices_with_60_engines() {
    let tmp = TempDir::new("big60");
    let text = std::fs::read_to_string(repo().join("examples/lstm_1024_4dev.toml")).unwrap();
    assert!(text.contains("engines = 60"));
    let (design, r) = run(&text, tmp.path(), None);
    assert!(r.matched, "{}", r.summary());
    assert_eq!(r.words_got, r.words_expected);
    eprintln!(
        "1024 -> 1024, 60 engines: {:.1} cycles per timestep",
        r.cycles_per_timestep
    );
    // 354.25 before the engines stopped stalling and the finisher's sum was pipelined for
    // Fmax (their extra stages: 364.2); issue 10's target is 450.
    assert!(r.cycles_per_timestep <= 370.0, "{}", r.summary());
    // Against the same model on one device (`lstm_1024_bbs`, 16 engines x 16 lanes: 4 207
    // cycles per step by the cost model, which equals its cosim).
    let one = partita_codegen::analysis::cost::single_device_cycles(
        &design_from_text(
            &std::fs::read_to_string(repo().join("examples/lstm_1024_bbs.toml")).unwrap(),
            tmp.path(),
        ),
        16,
    )
    .unwrap();
    eprintln!("1 device: {one:.1} cycles per timestep");
    assert!(r.cycles_per_timestep * 11.0 < one, "{}", r.summary());
    let p = partita_codegen::analysis::cost::node_cycles_per_step(&design, 16).unwrap();
    eprintln!("cost model {p:.1}");
    let err = (p - r.cycles_per_timestep).abs() / r.cycles_per_timestep;
    assert!(err <= 0.05, "cost model {:.1}% off", 100.0 * err);
}

/// Links wider than 64 bits (the frame format allows up to 512): 16 h values per 256-bit beat,
/// partial sums straddling 64-bit words on 128-bit links, 512-bit beats with several engines;
/// and a corrupted 256-bit frame is caught.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn wide_links_and_packed_streams_match_golden() {
    let wide = |t: String, w: u32| t.replace("width = 64", &format!("width = {w}"));
    // Packed x and h streams on two of the systems: 4 values per 64-bit beat (x vectors of 10
    // end in a short beat) and 16 per 256-bit beat.
    let packed = |t: String, devices: usize, bits: u32| {
        t.replace(
            &format!("devices = {devices}\n"),
            &format!("devices = {devices}\nstream_bits = {bits}\n"),
        )
    };
    let rows = wide(plan(10, 12, 2, true, 4, "ring", "direct", "rows", ""), 256);
    assert!(rows.contains("width = 256"));
    assert_matches(&rows, "wide_rows");
    let cols = packed(
        wide(
            plan(10, 12, 2, false, 3, "chain", "direct", "cols", ""),
            128,
        ),
        3,
        64,
    );
    assert!(cols.contains("stream_bits = 64"));
    assert_matches(&cols, "wide_cols");
    assert_matches(
        &packed(
            wide(plan(10, 12, 1, true, 3, "star", "host", "rows", ""), 512),
            3,
            256,
        )
        .replace("devices = 3\n", "devices = 3\nengines = 2\n"),
        "wide_host",
    );
    let tmp = TempDir::new("widefault");
    let (_, r) = run(
        &rows,
        tmp.path(),
        Some(Fault {
            kind: FaultKind::Corrupt,
            channel: 1,
            frame: 1,
        }),
    );
    assert!(!r.matched);
    assert!(
        r.error.clone().unwrap_or_default().contains("CRC"),
        "{:?}",
        r.error
    );
}

/// Devices whose hardware differs only in identity share one node design and one Verilator
/// build. On a 4-device `rows` ring every device is node design 0: its modules
/// (`partita_n0_*`) are the same bytes in every device's directory, each device's top only
/// ties `dev_id`, a cosimulation from an empty model cache builds one model for the four, and
/// the run is bit-exact. Negative control: with device 1's identity claiming to be device 2
/// (in the identity module every device reads), the run fails.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn devices_of_one_node_design_share_one_build() {
    let tmp = TempDir::new("shared");
    let text = plan(8, 8, 1, true, 4, "ring", "direct", "rows", "");
    let p = tmp.write("plan.toml", &text);
    let dir = tmp.path().join("rtl");
    let (code, _, err) = cli(&["gen", p.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let system: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("system.json")).unwrap()).unwrap();
    assert_eq!(system["node_designs"], serde_json::json!([0, 0, 0, 0]));
    let design_files: Vec<String> = rtl_sources(&dir.join("dev0"))
        .into_iter()
        .filter(|f| f.starts_with("partita_n0_"))
        .collect();
    assert!(design_files.iter().any(|f| f == "partita_n0_node.v"));
    for d in 0..4 {
        let dd = dir.join(format!("dev{d}"));
        for f in &design_files {
            assert_eq!(
                std::fs::read(dd.join(f)).unwrap(),
                std::fs::read(dir.join("dev0").join(f)).unwrap(),
                "device {d}: {f}"
            );
        }
        let top = std::fs::read_to_string(dd.join(format!("partita_d{d}_top.v"))).unwrap();
        assert!(top.contains("partita_n0_node #("), "device {d}");
        assert!(top.contains(&format!(".dev_id(3'd{d})")), "device {d}");
    }
    let design = design_from_text(&text, tmp.path());
    let cache = tmp.path().join("cache");
    let opts = SimOptions {
        rtl: Some(dir.clone()),
        cache: Some(cache.clone()),
        ..SimOptions::default()
    };
    let r = simulate_multi(&design, &opts, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.matched, "{}", r.summary());
    assert_eq!(r.words_got, r.words_expected);
    let models = || {
        std::fs::read_dir(cache.join("models"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("libpartita_model.so").exists())
            .count()
    };
    assert_eq!(models(), 1, "one model for the four devices");
    // Device 1 claims to be device 2: frames go astray and the run must fail.
    for d in 0..4 {
        let f = dir.join(format!("dev{d}/partita_n0_ident.v"));
        let v = std::fs::read_to_string(&f).unwrap();
        assert_eq!(v.matches("me = 3'd1;").count(), 1);
        std::fs::write(&f, v.replace("me = 3'd1;", "me = 3'd2;")).unwrap();
    }
    let r = simulate_multi(&design, &opts, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.matched, "a wrong identity must fail the run");
    assert!(r.error.is_some() || r.mismatch.is_some() || r.words_got < r.words_expected);
    assert_eq!(
        models(),
        2,
        "the edited design is a model of its own, still one for all four"
    );
}

/// W_ih·x runs ahead of the h gather: on a 1-layer `rows` ring each device issues its rows' x
/// slices as soon as a tick's x is in, while it waits for the other devices' h of the last
/// tick, and only the h slices once they are in; the finisher adds the x-part (bias included)
/// and h-part sums at full width. Bit-exact, and faster than the same plan without it: 107.3
/// cycles per step against 114.6 with the current pipeline (103.2 against 110.5 before the
/// framer's output slice and the receiver's CRC stage; 99.2 against 106.5 before the
/// receive FIFO's output register added a cycle per hop; 93 against 100.44 before the
/// element-wise rounding, vector-address and forwarding slice stages; 83.75 against 91.4
/// before that, measured at a6872b2). The 60-engine 1024 -> 1024 example runs
/// ahead only with two element-wise lanes (its default): its 8 x and 8 h slices per row are
/// each shorter than the 15 cycles a serializer of one unit per cycle needs per row.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn w_ih_x_runs_ahead_of_the_gather() {
    let tmp = TempDir::new("overlap");
    let text = plan(8, 8, 1, true, 4, "ring", "direct", "rows", "");
    let p = tmp.write("plan.toml", &text);
    let dir = tmp.path().join("rtl");
    let (code, _, err) = cli(&["gen", p.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for d in 0..4 {
        let regmap: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("dev{d}/regmap.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(regmap["geometry"]["x_ahead"], true, "device {d}: {regmap}");
    }
    let node = std::fs::read_to_string(dir.join("dev0/partita_n0_node.v")).unwrap();
    assert!(node.contains("S_XSTART") && node.contains(".local_x_en(part_v && xp)"));
    let (_, r) = run(&text, tmp.path(), None);
    assert!(r.matched, "{}", r.summary());
    assert_eq!(r.words_got, r.words_expected);
    // Without the x pass ahead (the arch's `overlap` forced off) this plan takes 114.5625
    // cycles per step with the current pipeline (measured with the commit that added the
    // framer's output slice and the receiver's CRC stage; 110.5, 106.5, 100.44 and 91.4 on the
    // pipelines before); with it, 107.3125.
    assert!(
        r.cycles_per_timestep < 111.0,
        "{} cycles per step (114.5625 without the x pass ahead)",
        r.cycles_per_timestep
    );
    // The 60-engine example runs ahead with two element-wise lanes, chosen for it: a serializer
    // handing over one unit per cycle needs 15 cycles per row, more than its 8 x or 8 h slices.
    // With one lane it keeps whole rows.
    let big = std::fs::read_to_string(repo().join("examples/lstm_1024_4dev.toml")).unwrap();
    assert!(!big.lines().any(|l| l.starts_with("ew_lanes")));
    let design = design_from_text(&big, &repo().join("examples"));
    let sys = partita_codegen::arch::lstm::System::new(&design).unwrap();
    assert!(sys.nodes.iter().all(|n| n.overlap && n.e == 2 && n.g == 8));
    let one = big.replace("engines = 60\n", "engines = 60\new_lanes = 1\n");
    let design = design_from_text(&one, &repo().join("examples"));
    let sys = partita_codegen::arch::lstm::System::new(&design).unwrap();
    assert!(sys.nodes.iter().all(|n| !n.overlap && n.e == 1 && n.g == 4));
}

/// `cols` gives each device only the lanes of the banks it holds: over 4 devices with 4 banks
/// each holds 2 of the 8 column blocks, so its engines have 2 lanes built (no multiplier or
/// vector memory for the others), and the resource estimate counts 2 multipliers per engine.
#[test]
fn cols_builds_only_the_lanes_a_device_holds() {
    let tmp = TempDir::new("colslanes");
    let text = plan(10, 12, 1, false, 4, "chain", "direct", "cols", "")
        .replace("devices = 4\n", "devices = 4\nengines = 2\n");
    let p = tmp.write("plan.toml", &text);
    let dir = tmp.path().join("rtl");
    let (code, _, err) = cli(&["gen", p.to_str().unwrap(), "-o", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let design = design_from_text(&text, tmp.path());
    let costs = partita_codegen::analysis::resources::device_costs(&design);
    let ew = partita_codegen::plan::ew_multipliers(design.plan.plan.activation.method);
    let system: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("system.json")).unwrap()).unwrap();
    for d in 0..4 {
        // Each device holds other lanes: each is a node design of its own.
        assert_eq!(system["node_designs"][d], d, "device {d}");
        let engine =
            std::fs::read_to_string(dir.join(format!("dev{d}/partita_n{d}_engine.v"))).unwrap();
        assert!(engine.contains("4 lanes (2 built)"), "device {d}");
        // Two products are multiplies, two are constant zeros.
        assert_eq!(engine.matches("<= $signed(").count(), 2, "device {d}");
        let fin = design.partition.layers[0].finisher.contains(&d);
        assert_eq!(
            costs[d].multipliers,
            2 * 2 + if fin { ew } else { 0 },
            "device {d}"
        );
    }
}

/// `engines = "auto"` on a multi-device plan fills the budget up to what a node's row
/// serializer allows (one sum per cycle: no more engines than cycles per row), and says so.
#[test]
fn auto_engines_on_nodes_stop_at_the_row_length() {
    let tmp = TempDir::new("autonode");
    let text = std::fs::read_to_string(repo().join("examples/lstm_1024_4dev.toml"))
        .unwrap()
        .replace("engines = 60", "engines = \"auto\"\ndsp_budget = 1024");
    let p = tmp.write("plan.toml", &text);
    let (code, out, err) = cli(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // (1024 - 8) / 16 = 63 engines fit; rows hand over whole units, so a multiple of 4.
    assert!(
        out.contains("4 device(s), 60 engine(s) x 16 lanes"),
        "{out}"
    );
    // Twice the multipliers: a row takes 16 cycles and the serializer hands over one unit's
    // four gate sums per cycle, so 64 engines at most.
    let big = text.replace("dsp_budget = 1024", "dsp_budget = 2048");
    let p = tmp.write("big.toml", &big);
    let (code, out, err) = cli(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("4 device(s), 64 engine(s) x 16 lanes"),
        "{out}"
    );
    assert!(
        out.contains(
            "capped at 64: a node's engines hand over one unit's four gate sums per cycle"
        ),
        "{out}"
    );
    // cols splits a unit's row over devices: one sum per cycle, at most one engine per cycle of
    // the half row a device holds (8).
    let cols = text.replace("strategy = \"rows\"", "strategy = \"cols\"");
    let p = tmp.write("cols.toml", &cols);
    let (code, out, err) = cli(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("capped at 8: a node's engines hand over one row sum per cycle"),
        "{out}"
    );
    // A small budget is filled, not capped.
    let small = text.replace("dsp_budget = 1024", "dsp_budget = 72");
    let p = tmp.write("small.toml", &small);
    let (code, out, err) = cli(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 device(s), 4 engine(s) x 16 lanes"), "{out}");
}

/// Devices that differ (`[[target.device]]`): each device gets its own engine count and the
/// work is split in proportion. `rows` over 3 devices with 4/2/2 engines gives device 0 half the
/// hidden units; every device then spends the same MAC cycles, the run is bit-exact, and it is
/// faster than 2/2/2 (the extra engines pay). `cols` (2/1 engines: 5 and 3 of the 8 column
/// blocks) and `gates` (5/1: 3 gates and 1) are bit-exact too, and the cost model is within 10%
/// on all three.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn differing_devices_split_work_by_their_engines() {
    let engines = |t: String, devices: usize, e: &[usize]| {
        let tables: String = e
            .iter()
            .map(|n| format!("[[target.device]]\nengines = {n}\n"))
            .collect();
        t.replace(
            &format!("devices = {devices}\n"),
            &format!("devices = {devices}\n{tables}"),
        )
    };
    let base = plan(16, 24, 1, true, 3, "ring", "direct", "rows", "");
    let mixed = engines(base.clone(), 3, &[4, 2, 2]);
    assert!(mixed.contains("[[target.device]]\nengines = 4"));
    let tmp = TempDir::new("differ");
    let (d, r) = run(&mixed, tmp.path(), None);
    assert!(r.matched, "{}", r.summary());
    assert_eq!(r.words_got, r.words_expected);
    // Device 0 holds 12 of the 24 units, devices 1 and 2 six each.
    let units: Vec<usize> = d.partition.layers[0]
        .shares
        .iter()
        .map(|s| s.rows.len() / 4)
        .collect();
    assert_eq!(units, [12, 6, 6]);
    let macs: Vec<u64> = r.devices.iter().map(|x| x.mac_cycles).collect();
    assert!(macs.iter().all(|m| *m == macs[0]), "MAC cycles {macs:?}");
    let (_, even) = run(&engines(base, 3, &[2, 2, 2]), tmp.path(), None);
    assert!(even.matched);
    assert!(
        r.cycles_per_timestep < 0.95 * even.cycles_per_timestep,
        "4/2/2 {:.1} against 2/2/2 {:.1} cycles per step",
        r.cycles_per_timestep,
        even.cycles_per_timestep
    );
    let cols = engines(
        plan(16, 24, 1, true, 2, "chain", "direct", "cols", ""),
        2,
        &[2, 1],
    );
    let gates = engines(
        plan(16, 24, 1, true, 2, "star", "direct", "gates", ""),
        2,
        &[5, 1],
    );
    for (text, tag) in [(&mixed, "rows"), (&cols, "cols"), (&gates, "gates")] {
        let (design, report) = run(text, tmp.path(), None);
        assert!(report.matched, "{tag}: {}", report.summary());
        assert!(report.sent_frame_errors.is_empty(), "{tag}");
        assert_eq!(report.frames_sent, report.frames_expected, "{tag}: frames");
        let p = partita_codegen::analysis::cost::predict(&design);
        let err =
            (p.cycles_per_step - report.cycles_per_timestep).abs() / report.cycles_per_timestep;
        eprintln!(
            "{tag}: predicted {:.1}, measured {:.1} ({:.1}% off)",
            p.cycles_per_step,
            report.cycles_per_timestep,
            100.0 * err
        );
        assert!(err <= 0.10, "{tag}: cost model {:.1}% off", 100.0 * err);
    }
    // The blocks and gates follow the engines too.
    let d = design_from_text(&cols, tmp.path());
    let blocks: Vec<usize> = d.partition.layers[0]
        .shares
        .iter()
        .map(|s| s.blocks.len())
        .collect();
    assert_eq!(blocks, [5, 3]);
    let d = design_from_text(&gates, tmp.path());
    let rows: Vec<usize> = d.partition.layers[0]
        .shares
        .iter()
        .map(|s| s.rows.len() / 24)
        .collect();
    assert_eq!(rows, [3, 1]);
}

/// Element-wise lanes on nodes (`ew_lanes`): partial-sum banks, a finisher taking E units per
/// cycle, E lanes with their own cell memories, h written, queued and packed as groups of E.
/// Bit-exact in every strategy that finishes whole groups: `rows` with 12 engines (the row
/// serializer hands over groups of 2 units, 3 per load, so groups rotate into the banks) and
/// `cols` (partial sums written one gate at a time into the banks) here, `rows` with 4 lanes,
/// `gates` and `layers` behind `--ignored`; the cost model within 12%; narrow formats and large inputs that saturate
/// (counted by the lanes as the golden model counts them); a corrupted frame is still caught.
/// A plan whose groups would not stay whole is refused with the reason.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn element_wise_lanes_on_nodes_match_golden() {
    // The default run: rotating groups on `rows`, partial sums on `cols`; the other
    // strategies and 4 lanes in `more_element_wise_lanes_on_nodes_match_golden`.
    ew_lane_systems(&["ew_rows_rotating", "ew_cols"]);
    let lanes = ew_plan;
    // Saturating: 5-bit data, cell and pre-activations, inputs near the data range's ends.
    let tmp = TempDir::new("ew_sat");
    let q = "[quant]\nweight = \"s1.6\"\ndata = \"s1.4\"\nbias = \"s2.5\"\ncell = \"s1.4\"\n\
             preact = \"s1.4\"\ngate = \"s1.6\"\n[activation]\nsigmoid_range = [-2.0, 2.0]\n\
             tanh_range = [-2.0, 2.0]\nsegments = 16\n";
    let p = tmp.write("sat.toml", format!("{}{q}", lanes(16, "rows", 12, 2)));
    let x = ndarray::Array3::<f32>::from_shape_fn((2, 8, 10), |(b, t, i)| {
        let v = 2.0 + ((b * 80 + t * 10 + i) * 37 % 19) as f32 / 10.0;
        if (b + t + i) % 2 == 0 {
            v
        } else {
            -v
        }
    });
    let xp = tmp.path().join("x.npy");
    ndarray_npy::write_npy(&xp, &x).unwrap();
    let (code, out, err) = cli(&[
        "sim",
        p.to_str().unwrap(),
        "--input",
        xp.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["match"], true, "{v}");
    assert!(v["saturations_golden"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["saturations_hw"], v["saturations_golden"], "{v}");
    // Named by layer and quantity, each with a format that holds them.
    let warnings = v["saturation_warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.starts_with("layer ") && w.contains("would hold them")
        }),
        "{v}"
    );
    // A damaged frame of h groups is caught.
    let tmp = TempDir::new("ew_fault");
    let (_, r) = run(
        &lanes(16, "rows", 12, 2),
        tmp.path(),
        Some(Fault {
            kind: FaultKind::Corrupt,
            channel: 0,
            frame: 2,
        }),
    );
    assert!(!r.matched, "a damaged link must fail the run");
    assert!(r.error.unwrap_or_default().contains("CRC"));
    // 12 hidden units over 4 banks: 3 h values per bank, not whole groups of 2.
    let tmp = TempDir::new("ew_bad");
    let p = tmp.write("bad.toml", lanes(12, "rows", 12, 2));
    let (code, _, err) = cli(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ew_lanes = 2") && err.contains("h values per bank (3)"),
        "{err}"
    );
}

/// A 2-device ring with `e` element-wise lanes, `engines` engines and 64-bit streams.
fn ew_plan(h: usize, strategy: &str, engines: usize, e: usize) -> String {
    plan(10, h, 2, true, 2, "ring", "direct", strategy, "").replace(
        "devices = 2\n",
        &format!("devices = 2\nengines = {engines}\new_lanes = {e}\nstream_bits = 64\n"),
    )
}

/// The element-wise lane systems named in `pick`: each bit-exact, its nodes with the lanes
/// asked for, the cost model within 12%.
fn ew_lane_systems(pick: &[&str]) {
    let lanes = ew_plan;
    let all = [
        ("ew_rows_rotating", lanes(16, "rows", 12, 2)),
        ("ew_rows_4", lanes(32, "rows", 16, 4)),
        ("ew_cols", lanes(16, "cols", 2, 2)),
        ("ew_gates", lanes(16, "gates", 4, 2)),
        ("ew_layers", lanes(16, "layers", 4, 2)),
    ];
    assert!(
        pick.iter().all(|p| all.iter().any(|a| a.0 == *p)),
        "{pick:?}"
    );
    for (tag, text) in all.into_iter().filter(|a| pick.contains(&a.0)) {
        assert!(text.contains("ew_lanes"));
        let tmp = TempDir::new(tag);
        let (design, r) = run(&text, tmp.path(), None);
        assert!(r.matched, "{tag}: {}", r.summary());
        assert_eq!(r.words_got, r.words_expected, "{tag}");
        let sys = partita_codegen::arch::lstm::System::new(&design).unwrap();
        let e = if tag == "ew_rows_4" { 4 } else { 2 };
        assert!(sys.nodes.iter().all(|n| n.e == e), "{tag}");
        if tag.starts_with("ew_rows") {
            // E units' gate sums per serializer cycle.
            assert!(sys.nodes.iter().all(|n| n.g == 4 * e), "{tag}");
        }
        let p = partita_codegen::analysis::cost::node_cycles_per_step(&design, 16).unwrap();
        let err = (p - r.cycles_per_timestep).abs() / r.cycles_per_timestep;
        eprintln!(
            "{tag}: {:.2} cycles per step, cost model {p:.0}",
            r.cycles_per_timestep
        );
        // Within 10% but for `cols` at this size, which the model puts about 9% low with one
        // lane too (259 against 283.7 cycles).
        assert!(err <= 0.12, "{tag}: cost model {:.1}% off", 100.0 * err);
    }
}

/// The other element-wise lane systems: 4 lanes on `rows`, `gates` and `layers`.
#[test]
#[ignore = "long: 3 more element-wise lane systems; cargo test --release -p partita-tests --test multi -- --ignored"]
fn more_element_wise_lanes_on_nodes_match_golden() {
    ew_lane_systems(&["ew_rows_4", "ew_gates", "ew_layers"]);
}

/// A card that stops answering in a multi-device run on the PCIe backend (over simulated
/// cards, each on its own clock): the run ends at the card's deadline, naming it, the step and
/// what was pending, with the steps that finished kept whole.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn a_stalled_card_ends_the_run_with_what_was_pending() {
    use partita_host::cosim::multi::{lstm_io, xdma_cards_with};
    use partita_host::driver::{run_system, Device, SystemOptions};
    let tmp = TempDir::new("card_stall");
    let text = plan(8, 8, 1, false, 3, "chain", "host", "rows", "");
    let d = design_from_text(&text, tmp.path());
    let sys = partita_codegen::arch::lstm::System::new(&d).unwrap();
    let (steps, seqs) = (24, 1);
    let codes: Vec<i64> = (0..steps * 8).map(|i| (i as i64 % 7 - 3) * 100).collect();
    // Card 1 hangs after its fifth output vector (step).
    let timeout = std::time::Duration::from_millis(1500);
    let mut cards = xdma_cards_with(&d, &SimOptions::default(), timeout, Some((1, 5))).unwrap();
    let mut refs: Vec<&mut dyn Device> = cards.iter_mut().map(|c| c as &mut dyn Device).collect();
    let opts = SystemOptions {
        plan_hash: d.plan.plan_hash,
        link_timeout: 0,
        start_skew: 0,
        frame: sys.frame,
        deadline: std::time::Duration::from_secs(120),
        poll_rounds: 8,
    };
    let t = std::time::Instant::now();
    let r = run_system(&mut refs, &lstm_io(&d, &sys, &codes, steps, seqs), &opts);
    assert!(t.elapsed() < std::time::Duration::from_secs(60));
    let e = r.error.clone().unwrap_or_default();
    assert!(
        e.starts_with("device 1: "),
        "error {e:?}, {} codes, {:?}",
        r.codes.len(),
        r.devices
    );
    assert!(e.contains("pending:") && e.contains("output beats"), "{e}");
    assert!(
        e.contains("polling STATUS: device stopped answering") && e.contains("within 1500 ms"),
        "{e}"
    );
    // Card 1 sent 5 vectors of 3 beats; the host may not have taken the last before the
    // poll that found the card hung.
    let got: usize = e
        .split("device 1: ")
        .nth(2)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        got % 3 == 0 && got <= 15 && e.contains(&format!("device 1: {got} of 72 output beats")),
        "{e}"
    );
    // The steps before the hang came out, whole; not all of them.
    assert!(
        !r.codes.is_empty() && r.codes.len() < steps * 8 && r.codes.len() % 8 == 0,
        "{}",
        r.codes.len()
    );
    assert!(
        r.devices[0].cycles > 0 && r.devices[1].cycles == 0,
        "{e}: {:?}",
        r.devices
    );
}
