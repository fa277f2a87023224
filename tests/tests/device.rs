//! The register map and control paths through the `Device` trait on a simulated device:
//! identify, refused accesses and error counters, soft reset, start while busy, run-time
//! weight writes, and a device that stops answering.

use partita_hdl::regs;
use partita_hdl::stream::Layout;
use partita_host::cosim as simulate;
use partita_host::driver::{run_lstm, Backpressure, Device, DeviceError, SimDevice};
use partita_sim::cosim::{self, BuildOptions, Model};
use partita_tests::{cli, design_from_text, TempDir};

const PLAN: &str = "[model]\nkind = \"lstm\"\ninput_size = 3\nhidden_size = 5\nseed = 4\n\
[sparsity]\nkind = \"bbs\"\nbanks = 2\ndensity = 0.5\n[target]\nengines = 2\n";

struct Fixture {
    _tmp: TempDir,
    rtl: std::path::PathBuf,
    design: partita_codegen::Design,
}

fn fixture() -> Fixture {
    let tmp = TempDir::new("dev");
    let design = design_from_text(PLAN, tmp.path());
    let rtl = simulate::generate_into(&design, Some(&tmp.path().join("rtl"))).unwrap();
    Fixture {
        _tmp: tmp,
        rtl,
        design,
    }
}

fn device(rtl: &std::path::Path) -> SimDevice {
    let built = cosim::build(rtl, &BuildOptions::default()).unwrap();
    let mut d = SimDevice::new(Model::load(&built).unwrap(), Backpressure::default());
    d.reset().unwrap();
    d
}

fn inputs(design: &partita_codegen::Design, steps: usize) -> (Vec<i64>, Vec<i64>) {
    let partita_codegen::design::ModelDesign::Lstm(m) = &design.model else {
        unreachable!()
    };
    let q = design.quant();
    let mut rng = partita_codegen::weights::SplitMix64::new(8);
    let x = ndarray::Array2::from_shape_fn((steps, m.input_size), |_| rng.normal());
    let mut ev = partita_sim::Events::default();
    let xq = partita_sim::lstm::quantize_input(q, x.view(), &mut ev);
    let y = partita_sim::lstm::fixed(m, q, None, xq.view(), &mut ev);
    (xq.iter().copied().collect(), y.iter().copied().collect())
}

#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn registers_errors_and_soft_reset() {
    let f = fixture();
    let mut dev = device(&f.rtl);
    let id = dev.identify().unwrap();
    assert_eq!(id.id, 0x5041_5254);
    assert_eq!(id.plan_hash, f.design.plan.plan_hash);
    assert_eq!(id.config[0], (3 << 16) | 5);
    assert_eq!(dev.reg_read(regs::STATUS.offset).unwrap(), 0);
    dev.reg_write(regs::SEQ_LEN.offset, 7).unwrap();
    assert_eq!(dev.reg_read(regs::SEQ_LEN.offset).unwrap(), 7);
    // An unknown address is refused (SLVERR), counted, and sets STATUS.error: writes and reads.
    assert!(matches!(
        dev.reg_write(0x3F0, 1),
        Err(DeviceError::Refused { .. })
    ));
    assert_eq!(dev.reg_read(regs::ERR_COUNT.offset).unwrap(), 1);
    assert!(matches!(
        dev.reg_read(0x3F0),
        Err(DeviceError::Refused { .. })
    ));
    assert_eq!(dev.reg_read(regs::ERR_COUNT.offset).unwrap(), 2);
    // Writing a read-only register and reading a write-only one are refused too.
    assert!(matches!(
        dev.reg_write(regs::STATUS.offset, 1),
        Err(DeviceError::Refused { .. })
    ));
    assert!(matches!(
        dev.reg_read(regs::WCOMMIT.offset),
        Err(DeviceError::Refused { .. })
    ));
    assert_eq!(dev.reg_read(regs::ERR_COUNT.offset).unwrap(), 4);
    // CTRL reads as 0.
    assert_eq!(dev.reg_read(regs::CTRL.offset).unwrap(), 0);
    assert_eq!(dev.reg_read(regs::STATUS.offset).unwrap() & 0b100, 0b100);
    // Start with no input: busy, and a second start is refused.
    dev.reg_write(regs::SEQ_LEN.offset, 1).unwrap();
    dev.reg_write(regs::SEQ_COUNT.offset, 1).unwrap();
    dev.reg_write(regs::CTRL.offset, 1).unwrap();
    assert_eq!(
        dev.reg_read(regs::STATUS.offset).unwrap() & 1,
        1,
        "busy waiting for x"
    );
    assert!(matches!(
        dev.reg_write(regs::CTRL.offset, 1),
        Err(DeviceError::Refused { .. })
    ));
    assert_eq!(dev.reg_read(regs::ERR_COUNT.offset).unwrap(), 5);
    // Soft reset: idle again, error state cleared, and a normal run works.
    dev.reg_write(regs::CTRL.offset, 2).unwrap();
    assert_eq!(dev.reg_read(regs::STATUS.offset).unwrap(), 0);
    assert_eq!(dev.reg_read(regs::ERR_COUNT.offset).unwrap(), 0);
    let (x, want) = inputs(&f.design, 4);
    let run = run_lstm(
        &mut dev,
        f.design.plan.plan_hash,
        4,
        1,
        5,
        Layout::single(16),
        &x,
    )
    .unwrap();
    assert_eq!(run.codes, want);
    assert_eq!(run.errors, 0);
    assert!(run.cycles > 0);
}

#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn device_that_stops_answering_times_out() {
    let f = fixture();
    let mut dev = device(&f.rtl);
    dev.timeout_cycles = 2_000;
    // Outputs never come without a start: the read must give up, not hang.
    match dev.stream_read(1) {
        Err(DeviceError::Timeout { limit, .. }) => assert_eq!(limit, 2_000),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A wrong plan hash is caught before anything runs.
    let err = run_lstm(&mut dev, 0x1234, 1, 1, 5, Layout::single(16), &[0, 0, 0]).unwrap_err();
    assert!(matches!(err, DeviceError::Identity(_)), "{err}");
}

/// Corrupt a weight in the .hex image, then repair it at run time through WSEL/WADDR/WDATA/
/// WCOMMIT: the run must match the golden model again.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn run_time_weight_write_repairs_a_corrupted_word() {
    let f = fixture();
    repair_weight_word(&f, 5, "weights_e0.hex", 0, 3);
}

/// The same on `examples/lstm_1dev_bbs.toml`, whose weights sit in chunks of 1024 words (one
/// image and one memory per chunk, each in column groups): word 1029 of engine 1 is word 5 of
/// chunk 1, written back through the chunk's own registered write port.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn run_time_weight_write_reaches_a_later_chunk() {
    let tmp = TempDir::new("dev-chunks");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lstm_1dev_bbs.toml"),
    )
    .unwrap();
    let design = design_from_text(&text, tmp.path());
    let rtl = simulate::generate_into(&design, Some(&tmp.path().join("rtl"))).unwrap();
    assert!(
        !rtl.join("weights_e1.hex").exists() && rtl.join("weights_e1_c4.hex").exists(),
        "lstm_1dev_bbs should have five weight chunks per engine"
    );
    let f = Fixture {
        _tmp: tmp,
        rtl,
        design,
    };
    repair_weight_word(&f, 256, "weights_e1_c1.hex", 1, 2);
}

/// Zero line `line` (after the banner) of the image `file` of engine `engine`, check that the
/// output changes, then write the word back at run time (WSEL/WADDR/WDATA/WCOMMIT, address
/// `chunk · 1024 + line` for `weights_e<e>_c<chunk>.hex`) and check the output is the golden
/// model's again.
fn repair_weight_word(f: &Fixture, hidden: usize, file: &str, engine: u32, steps: usize) {
    let hex = f.rtl.join(file);
    let text = std::fs::read_to_string(&hex).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let first = lines.iter().position(|l| !l.starts_with("//")).unwrap();
    let line = 5;
    let i = first + line;
    let original = lines[i].clone();
    assert!(
        original.chars().any(|c| c != '0'),
        "{file} line {line} should hold weights"
    );
    lines[i] = "0".repeat(original.len());
    std::fs::write(&hex, lines.join("\n") + "\n").unwrap();
    let chunk = file
        .strip_suffix(".hex")
        .and_then(|n| n.rsplit_once("_c"))
        .map_or(0, |(_, c)| c.parse::<u32>().unwrap());
    let (x, want) = inputs(&f.design, steps);
    let mut dev = device(&f.rtl);
    let hash = f.design.plan.plan_hash;
    let broken = run_lstm(&mut dev, hash, steps, 1, hidden, Layout::single(16), &x).unwrap();
    assert_ne!(
        broken.codes, want,
        "zeroing a weight word must change the output"
    );
    // Written back 32 bits at a time, least significant first (hex digits from the right).
    dev.reg_write(regs::WSEL.offset, engine << 16).unwrap(); // engine, weights
    dev.reg_write(regs::WADDR.offset, chunk * 1024 + line as u32)
        .unwrap();
    let digits: Vec<char> = original.chars().collect();
    for (j, part) in digits.rchunks(8).enumerate() {
        let word = u32::from_str_radix(&part.iter().collect::<String>(), 16).unwrap();
        dev.reg_write(regs::WDATA.at(j as u32), word).unwrap();
    }
    dev.reg_write(regs::WCOMMIT.offset, 1).unwrap();
    // run_lstm resets the device; memories keep their contents across reset.
    let fixed = run_lstm(&mut dev, hash, steps, 1, hidden, Layout::single(16), &x).unwrap();
    assert_eq!(fixed.codes, want);
}

/// Verilator's fatal handler would abort the whole process on a damaged `$readmemh` file.
/// partita's wrapper replaces it: loading the model returns an error naming the file, and
/// a missing image (only a warning in Verilator) is refused too. The Rust pre-check that
/// `partita sim --rtl` runs first is bypassed here on purpose.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn verilator_fatal_errors_do_not_abort() {
    let f = fixture();
    let hex = f.rtl.join("weights_e0.hex");
    let good = std::fs::read_to_string(&hex).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[3] = "zzz";
    std::fs::write(&hex, lines.join("\n") + "\n").unwrap();
    let built = cosim::build(&f.rtl, &BuildOptions::default()).unwrap();
    let err = Model::load(&built)
        .err()
        .expect("a damaged image is refused");
    let text = err.to_string();
    assert!(
        text.contains("weights_e0.hex") && text.contains("syntax error"),
        "{text}"
    );
    // And the model still loads once the file is repaired (the handler kept no state).
    std::fs::write(&hex, &good).unwrap();
    assert!(Model::load(&built).is_ok());
    std::fs::remove_file(f.rtl.join("bias_e1.hex")).unwrap();
    let err = Model::load(&built)
        .err()
        .expect("a missing image is refused");
    assert!(err.to_string().contains("not found"), "{err}");
}

/// Packed streams (`stream_bits = 64`: four 16-bit values per beat). x vectors of 3 values are
/// one short beat (tkeep 0x3f), h vectors of 5 are a full beat and a short one; the run is
/// bit-exact. Negative controls: a host that packs differently is refused by CONFIG2 before
/// anything runs, and an input beat with a wrong tkeep is counted in STREAM_ERRS and reported.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn packed_streams_carry_several_values_per_beat() {
    let tmp = TempDir::new("packed");
    let plan = PLAN.replace("engines = 2\n", "engines = 2\nstream_bits = 64\n");
    let design = design_from_text(&plan, tmp.path());
    let rtl = simulate::generate_into(&design, Some(&tmp.path().join("rtl"))).unwrap();
    let mut dev = device(&rtl);
    let layout = Layout::new(16, 64).unwrap();
    let id = dev.identify().unwrap();
    assert_eq!(id.config[2], (4 << 16) | 64);
    let (x, want) = inputs(&design, 4);
    let run = run_lstm(&mut dev, design.plan.plan_hash, 4, 1, 5, layout, &x).unwrap();
    assert_eq!(run.codes, want);
    // A host packing one value per beat is refused by CONFIG2.
    let err = run_lstm(
        &mut dev,
        design.plan.plan_hash,
        4,
        1,
        5,
        Layout::single(16),
        &x,
    )
    .unwrap_err();
    assert!(
        matches!(&err, DeviceError::Identity(m) if m.contains("CONFIG2")),
        "{err}"
    );
    // One input beat with tkeep 0xff instead of 0x3f: the values are still taken by position
    // (the outputs stay right), but the device counts the beat in STREAM_ERRS.
    dev.reset().unwrap();
    dev.reg_write(regs::SEQ_LEN.offset, 4).unwrap();
    dev.reg_write(regs::SEQ_COUNT.offset, 1).unwrap();
    let mut beats = layout.pack(&x, 3);
    beats[2].keep = 0xff;
    dev.stream_write(&beats).unwrap();
    dev.reg_write(regs::CTRL.offset, 1).unwrap();
    let out = dev.stream_read(4 * 2).unwrap();
    assert_eq!(layout.unpack(&out, 5).unwrap(), want);
    assert_eq!(dev.reg_read(regs::STREAM_ERRS.offset).unwrap(), 1);
}

/// The PCIe backend whole (packets, the host-to-card writer thread, vector reads, deadlines)
/// over the cosim transport: the simulated card behind the XDMA ports runs bit-exact against
/// the golden model, with one value per beat and with 64-bit beats of 4 values (vectors of 3
/// in and 5 out: short last beats); a wrong plan hash is refused through it too.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn xdma_backend_over_a_simulated_card_equals_golden() {
    use partita_host::driver::xdma::cosim as xcosim;
    for (tag, stream, layout) in [
        ("xdma1", "", Layout::single(16)),
        ("xdma4", "stream_bits = 64\n", Layout::new(16, 64).unwrap()),
    ] {
        let tmp = TempDir::new(tag);
        let plan = PLAN.replace("engines = 2\n", &format!("engines = 2\n{stream}"));
        let design = design_from_text(&plan, tmp.path());
        let rtl = simulate::generate_into(&design, Some(&tmp.path().join("rtl"))).unwrap();
        let built = cosim::build(&rtl, &BuildOptions::default()).unwrap();
        let make: xcosim::MakeCard = Box::new(move || {
            let mut d = SimDevice::new(
                Model::load(&built).map_err(|e| e.to_string())?,
                Backpressure::default(),
            );
            d.reset().map_err(|e| e.to_string())?;
            Ok(Box::new(d) as Box<dyn Device>)
        });
        let card = xcosim::card(make, layout, 0).unwrap();
        assert!(card.link.is_none());
        let mut dev = card.device(layout, 5, 0, std::time::Duration::from_secs(60));
        let (x, want) = inputs(&design, 6);
        let err = run_lstm(&mut dev, 0x1234, 6, 1, 5, layout, &x).unwrap_err();
        assert!(matches!(err, DeviceError::Identity(_)), "{tag}: {err}");
        let run = run_lstm(&mut dev, design.plan.plan_hash, 6, 1, 5, layout, &x).unwrap();
        assert_eq!(run.codes, want, "{tag}");
        assert_eq!(run.errors, 0);
        assert!(run.cycles > 0);
    }
}

/// `gen --board xdma`: the wrapper lints clean with `-Wall` together with the device's RTL (a
/// single device, and a device of a host-relayed system with its link on channel 1), and the
/// Vivado script names the part, the core's width and channels, and adds every file of the
/// device's `files.f` and its memory images.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn xdma_board_wrapper_lints_clean() {
    let tmp = TempDir::new("xdma_board");
    let one = PLAN.replace("engines = 2\n", "engines = 2\nstream_bits = 64\n");
    let relay = "[model]\nkind = \"lstm\"\ninput_size = 8\nhidden_size = 8\nseed = 3\n\
                 [target]\ndevices = 3\nstream_bits = 128\n[target.link]\ntopology = \"chain\"\n\
                 width = 128\nmode = \"host\"\n[partition]\nstrategy = \"rows\"\n";
    for (name, text, dir, dw, channels) in [
        ("one", one.as_str(), "", 64, 1),
        ("relay", relay, "dev1", 128, 2),
    ] {
        let plan = tmp.write(&format!("{name}.toml"), text);
        let out = tmp.path().join(name);
        let (code, o, err) = cli(&[
            "gen",
            plan.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--board",
            "xdma",
            "--part",
            "xcu280-fsvh2892-2L-e",
        ]);
        assert_eq!(code, 0, "{name}: {o}{err}");
        let dev = out.join(dir);
        let top = std::fs::read_to_string(dev.join("partita_xdma_top.v")).unwrap();
        assert!(
            !top.contains("lint_off") && top.contains("plan hash"),
            "{name}"
        );
        assert_eq!(top.contains("s_axis_link_tdata"), channels == 2, "{name}");
        let mut args: Vec<String> = partita_tests::rtl_sources(&dev);
        args.push("partita_xdma_top.v".into());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        partita_tests::lint(&dev, "partita_xdma_top", &a).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tcl = std::fs::read_to_string(dev.join("partita_xdma.tcl")).unwrap();
        assert!(tcl.contains("-part xcu280-fsvh2892-2L-e"), "{name}");
        assert!(
            tcl.contains(&format!("CONFIG.axi_data_width {{{dw}_bit}}")),
            "{name}"
        );
        assert!(
            tcl.contains(&format!("CONFIG.xdma_rnum_chnl {{{channels}}}")),
            "{name}"
        );
        assert_eq!(tcl.contains("M_AXIS_H2C_1"), channels == 2, "{name}");
        for f in partita_tests::rtl_sources(&dev) {
            assert!(
                tcl.contains(&format!("add_files -norecurse $dir/{f}\n")),
                "{name}: {f}"
            );
        }
        for e in std::fs::read_dir(&dev).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if n.ends_with(".hex") && !n.starts_with("tb_") {
                assert!(tcl.contains(&format!("$dir/{n}\n")), "{name}: image {n}");
            }
        }
    }
}
