//! The register map and control paths through the `Device` trait on a simulated device:
//! identify, refused accesses and error counters, soft reset, start while busy, run-time
//! weight writes, and a device that stops answering.

use partita_host::device::{reg, run_lstm, Backpressure, Device, DeviceError, SimDevice};
use partita_host::simulate;
use partita_sim::cosim::{self, BuildOptions, Model};
use partita_tests::{design_from_text, TempDir};

const PLAN: &str = "[model]\nkind = \"lstm\"\ninput_size = 3\nhidden_size = 5\nseed = 4\n\
[sparsity]\nkind = \"bbs\"\nbanks = 2\ndensity = 0.5\n[target]\nengines = 2\n";

fn have_verilator() -> bool {
    let ok = std::process::Command::new("verilator")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "verilator missing on CI");
        eprintln!("skipping: verilator is not installed");
    }
    ok
}

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
    let mut d = SimDevice::new(
        Model::load(&built.library).unwrap(),
        Backpressure::default(),
    );
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
fn registers_errors_and_soft_reset() {
    if !have_verilator() {
        return;
    }
    let f = fixture();
    let mut dev = device(&f.rtl);
    let id = dev.identify().unwrap();
    assert_eq!(id.id, 0x5041_5254);
    assert_eq!(id.plan_hash, f.design.plan.plan_hash);
    assert_eq!(id.config[0], (3 << 16) | 5);
    assert_eq!(dev.reg_read(reg::STATUS).unwrap(), 0);
    dev.reg_write(reg::SEQ_LEN, 7).unwrap();
    assert_eq!(dev.reg_read(reg::SEQ_LEN).unwrap(), 7);
    // An unknown address is refused (SLVERR), counted, and sets STATUS.error.
    assert!(matches!(
        dev.reg_write(0x3F0, 1),
        Err(DeviceError::Refused { .. })
    ));
    assert!(matches!(
        dev.reg_read(0x3F0),
        Err(DeviceError::Refused { .. })
    ));
    assert_eq!(dev.reg_read(reg::ERR_COUNT).unwrap(), 1);
    assert_eq!(dev.reg_read(reg::STATUS).unwrap() & 0b100, 0b100);
    // Start with no input: busy, and a second start is refused.
    dev.reg_write(reg::SEQ_LEN, 1).unwrap();
    dev.reg_write(reg::SEQ_COUNT, 1).unwrap();
    dev.reg_write(reg::CTRL, 1).unwrap();
    assert_eq!(
        dev.reg_read(reg::STATUS).unwrap() & 1,
        1,
        "busy waiting for x"
    );
    assert!(matches!(
        dev.reg_write(reg::CTRL, 1),
        Err(DeviceError::Refused { .. })
    ));
    assert_eq!(dev.reg_read(reg::ERR_COUNT).unwrap(), 2);
    // Soft reset: idle again, error state cleared, and a normal run works.
    dev.reg_write(reg::CTRL, 2).unwrap();
    assert_eq!(dev.reg_read(reg::STATUS).unwrap(), 0);
    assert_eq!(dev.reg_read(reg::ERR_COUNT).unwrap(), 0);
    let (x, want) = inputs(&f.design, 4);
    let run = run_lstm(&mut dev, f.design.plan.plan_hash, 4, 1, 5, 16, &x).unwrap();
    assert_eq!(run.codes, want);
    assert_eq!(run.errors, 0);
    assert!(run.cycles > 0);
}

#[test]
fn device_that_stops_answering_times_out() {
    if !have_verilator() {
        return;
    }
    let f = fixture();
    let mut dev = device(&f.rtl);
    dev.timeout_cycles = 2_000;
    // Outputs never come without a start: the read must give up, not hang.
    match dev.stream_read(1) {
        Err(DeviceError::Timeout { limit, .. }) => assert_eq!(limit, 2_000),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A wrong plan hash is caught before anything runs.
    let err = run_lstm(&mut dev, 0x1234, 1, 1, 5, 16, &[0, 0, 0]).unwrap_err();
    assert!(matches!(err, DeviceError::Identity(_)), "{err}");
}

/// Corrupt a weight in the .hex image, then repair it at run time through WSEL/WADDR/WDATA/
/// WCOMMIT: the run must match the golden model again.
#[test]
fn run_time_weight_write_repairs_a_corrupted_word() {
    if !have_verilator() {
        return;
    }
    let f = fixture();
    let hex = f.rtl.join("weights_e0.hex");
    let text = std::fs::read_to_string(&hex).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let i = lines.iter().position(|l| !l.starts_with("//")).unwrap();
    let original = lines[i].clone();
    lines[i] = "0".repeat(original.len());
    std::fs::write(&hex, lines.join("\n") + "\n").unwrap();
    let (x, want) = inputs(&f.design, 3);
    let mut dev = device(&f.rtl);
    let broken = run_lstm(&mut dev, f.design.plan.plan_hash, 3, 1, 5, 16, &x).unwrap();
    assert_ne!(
        broken.codes, want,
        "zeroing a weight word must change the output"
    );
    // Word 0 of engine 0, written back 32 bits at a time (least significant word first).
    let value = u128::from_str_radix(&original, 16).unwrap();
    dev.reg_write(0x30, 0).unwrap(); // WSEL: engine 0, weights
    dev.reg_write(0x34, 0).unwrap(); // WADDR
    for j in 0..original.len().div_ceil(8) {
        dev.reg_write(0x40 + 4 * j as u32, (value >> (32 * j)) as u32)
            .unwrap();
    }
    dev.reg_write(0x38, 1).unwrap(); // WCOMMIT
                                     // run_lstm resets the device; memories keep their contents across reset.
    let fixed = run_lstm(&mut dev, f.design.plan.plan_hash, 3, 1, 5, 16, &x).unwrap();
    assert_eq!(fixed.codes, want);
}
