//! Per-layer fixed-point formats and `partita calibrate`: the trained digits CNN keeps its
//! float accuracy through the bit-exact golden model once calibrated, per-layer formats are
//! checked and used, and the calibrated plan is complete and valid wherever it is written.

use ndarray::{Array1, ArrayD};
use partita_sim::{Input, Mode};
use partita_tests::{cli, design_from_text, normal_input, repo, TempDir};

fn digits(name: &str) -> String {
    repo()
        .join("tests/fixtures/digits")
        .join(name)
        .display()
        .to_string()
}

/// Fraction of rows of `scores` (n, 10) whose largest entry is at the label.
fn accuracy(scores: &ArrayD<f64>, labels: &Array1<i64>) -> f64 {
    let hits = scores
        .outer_iter()
        .zip(labels)
        .filter(|(row, &y)| {
            let best = row
                .iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                );
            best.0 as i64 == y
        })
        .count();
    hits as f64 / labels.len() as f64
}

fn run_plan(plan: &std::path::Path, x: &ArrayD<f64>, mode: Mode) -> partita_sim::Output {
    let d = partita_codegen::design::from_path(plan).unwrap();
    let input = Input {
        data: x.clone(),
        batched: true,
    };
    partita_sim::run(&d, &input, mode)
}

/// The CNN trained on scikit-learn's digits: with `[quant]`'s defaults the golden model
/// saturates in every layer (and says where, with a format that would hold the values);
/// after `partita calibrate` on 64 training images, the bit-exact model classifies the 360
/// held-out images within 0.5 points of the float model.
#[test]
fn digits_cnn_keeps_its_float_accuracy_after_calibrate() {
    let x = partita_tests::read_f64(std::path::Path::new(&digits("digits_test_x.npy")));
    let labels: Array1<i64> = ndarray_npy::read_npy(digits("digits_test_y.npy")).expect("labels");
    assert_eq!(x.shape(), &[360, 1, 8, 8]);
    let plan = std::path::PathBuf::from(digits("digits_cnn.toml"));
    let float = run_plan(&plan, &x, Mode::Float);
    let float_acc = accuracy(&float.values, &labels);
    let raw = run_plan(&plan, &x, Mode::Fixed);
    let raw_acc = accuracy(&raw.values, &labels);
    println!("float {float_acc:.4}, default formats {raw_acc:.4}");
    assert!(
        float_acc > 0.97,
        "the fixture's float accuracy is {float_acc}"
    );
    assert!(raw.events.saturations > 0);
    let warned: Vec<_> = raw.events.sites.iter().filter_map(|s| s.layer).collect();
    assert!(
        warned.contains(&0) && warned.contains(&3) && warned.contains(&7),
        "{warned:?}"
    );

    let tmp = TempDir::new("digits");
    let out = tmp.path().join("calibrated.toml");
    let (code, stdout, err) = cli(&[
        "calibrate",
        plan.to_str().unwrap(),
        "--input",
        &digits("digits_calib_x.npy"),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("calibrated on 64 sample(s)"), "{stdout}");
    let fixed = run_plan(&out, &x, Mode::Fixed);
    let fixed_acc = accuracy(&fixed.values, &labels);
    println!(
        "calibrated: fixed {fixed_acc:.4}, {} saturations on the test images",
        fixed.events.saturations
    );
    assert!(
        fixed_acc >= float_acc - 0.005,
        "fixed {fixed_acc} vs float {float_acc}"
    );
    // Every conv2d and dense layer got formats of its own, of the widths it had.
    let d = partita_codegen::design::from_path(&out).unwrap();
    let partita_codegen::design::ModelDesign::Cnn(m) = &d.model else {
        panic!("a CNN")
    };
    for (l, f) in m.formats.iter().enumerate() {
        if f.acc_bits > 0 {
            assert_eq!((f.output.width(), f.weight.width()), (16, 16), "layer {l}");
            assert!(f.output.int_bits >= 5, "layer {l}: {}", f.output);
        }
    }
}

/// A layer's own `data`, `weight`, `bias` and `accumulator_bits` override `[quant]` for that
/// layer alone; ReLU, max-pool and flatten keep their input's format; `check` shows each
/// layer's formats; bad ones are refused at the layer's key, naming what is allowed.
#[test]
fn per_layer_formats_are_checked_and_used() {
    let base = std::fs::read_to_string(repo().join("examples/cnn_small.toml")).unwrap();
    let base = base.replace("data = \"s5.10\"", "data = \"s3.12\"");
    let tmp = TempDir::new("layerfmt");
    let x = Input {
        data: normal_input(&[2, 1, 28, 28], 9),
        batched: true,
    };
    // Only layer 3 wider: layer 0's output stays s3.12, the dense layer's input is s5.10's
    // relu/flatten of layer 3, and the output keeps [quant]'s s3.12.
    let mixed = base.replace(
        "stride = 2\n",
        "stride = 2\ndata = \"s5.10\"\nweight = \"s0.15\"\n",
    );
    let p = tmp.write("mixed.toml", &mixed);
    let (code, out, err) = cli(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "layer 0 conv2d  s3.12 -> s3.12, weight s1.14",
        "layer 3 conv2d  s3.12 -> s5.10, weight s0.15",
        "layer 4 relu    s5.10",
        "layer 5 flatten s5.10",
        "layer 6 dense   s5.10 -> s3.12, weight s1.14",
    ] {
        assert!(out.contains(want), "missing `{want}` in\n{out}");
    }
    let d = design_from_text(&mixed, tmp.path());
    assert_eq!(d.output_format().to_string(), "s3.12");
    // Outputs are scaled by the last layer's format: fixed stays close to float.
    let fixed = partita_sim::run(&d, &x, Mode::Fixed);
    let float = partita_sim::run(&d, &x, Mode::Float);
    let err = partita_tests::max_abs_diff(&fixed.values, &float.values);
    assert!(err < 0.02, "{err}");
    // A wrong format on layer 3 changes what layer 6 sees: different codes than all-s3.12.
    let plain = partita_sim::run(&design_from_text(&base, tmp.path()), &x, Mode::Fixed);
    assert_ne!(plain.codes, fixed.codes);

    // Refusals, each at the layer's key.
    for (edit, want) in [
        (
            "stride = 2\nbias = \"s0.30\"\n",
            "layer 3: bias format s0.30 has more fraction bits than a product",
        ),
        (
            "stride = 2\naccumulator_bits = 20\n",
            "`accumulator_bits` is 20, but full-width accumulation for layer 3 needs",
        ),
        (
            "stride = 2\ndata = \"q3.12\"\n",
            "is not a fixed-point format",
        ),
    ] {
        let bad = tmp.write("bad.toml", base.replace("stride = 2\n", edit));
        let (code, _, err) = cli(&["check", bad.to_str().unwrap()]);
        assert_eq!(code, 2, "{edit}: {err}");
        assert!(err.contains(want), "{edit}: {err}");
    }
    // ReLU has no formats of its own.
    let bad = tmp.write(
        "relu.toml",
        base.replacen(
            "type = \"relu\"\n",
            "type = \"relu\"\ndata = \"s5.10\"\n",
            1,
        ),
    );
    let (code, _, err) = cli(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("data"), "{err}");
}

/// The calibrated plan is complete: it keeps the user's comments and keys, finds its weights
/// from another directory, passes `check`, and calibrating it again changes nothing. LSTM plans
/// get `[quant]` formats. A bad margin or input is refused and nothing is written.
#[test]
fn calibrate_writes_a_complete_plan() {
    let tmp = TempDir::new("calplan");
    let out = tmp.path().join("digits.toml");
    let plan = digits("digits_cnn.toml");
    let calib = digits("digits_calib_x.npy");
    let args = |p: &str, o: &std::path::Path| {
        cli(&[
            "calibrate",
            p,
            "--input",
            &calib,
            "--output",
            o.to_str().unwrap(),
        ])
    };
    let (code, first, err) = args(&plan, &out);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("# Calibrated by `partita calibrate`"),
        "{text}"
    );
    assert!(
        text.contains("# nn.Conv2d(8, 16, 3, padding=1)"),
        "comments kept: {text}"
    );
    assert!(text.contains("digits_cnn.safetensors"), "{text}");
    let (code, _, err) = cli(&["check", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Again, from the calibrated plan: the same formats, one header.
    let again = tmp.path().join("again.toml");
    let (code, second, err) = args(out.to_str().unwrap(), &again);
    assert_eq!(code, 0, "{err}");
    assert!(!second.contains("(changed)"), "{first}\n{second}");
    let text2 = std::fs::read_to_string(&again).unwrap();
    assert_eq!(text2.matches("# Calibrated by").count(), 1, "{text2}");

    // An LSTM plan: [quant] formats, the cosim's plan still valid.
    let lstm = repo().join("examples/lstm_1dev_bbs.toml");
    let lo = tmp.path().join("lstm.toml");
    let (code, out_text, err) = cli(&[
        "calibrate",
        lstm.to_str().unwrap(),
        "--input",
        repo()
            .join("examples/inputs/lstm64_b2_seq16.npy")
            .to_str()
            .unwrap(),
        "--output",
        lo.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for what in [
        "[quant] weight",
        "[quant] cell",
        "[quant] preact",
        "[quant] data",
    ] {
        assert!(out_text.contains(what), "{out_text}");
    }
    let written = std::fs::read_to_string(&lo).unwrap();
    assert!(
        written.contains("[quant]\n") && written.contains("cell = \"s"),
        "{written}"
    );
    assert_eq!(cli(&["check", lo.to_str().unwrap()]).0, 0);

    // Refusals: exit 2, nothing written.
    let none = tmp.path().join("none.toml");
    let (code, _, err) = cli(&[
        "calibrate",
        &plan,
        "--input",
        &calib,
        "--output",
        none.to_str().unwrap(),
        "--margin",
        "-1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--margin is -1"), "{err}");
    let wrong = tmp.path().join("wrong.npy");
    ndarray_npy::write_npy(&wrong, &normal_input(&[2, 1, 9, 9], 1)).unwrap();
    let (code, _, err) = cli(&[
        "calibrate",
        &plan,
        "--input",
        wrong.to_str().unwrap(),
        "--output",
        none.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(!none.exists());
    // A first-layer input that cannot fit any 16-bit format.
    let huge = tmp.path().join("huge.npy");
    ndarray_npy::write_npy(&huge, &normal_input(&[1, 1, 8, 8], 1).mapv(|v| v * 1e9)).unwrap();
    let (code, _, err) = cli(&[
        "calibrate",
        &plan,
        "--input",
        huge.to_str().unwrap(),
        "--output",
        none.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    let flat = err
        .split(|c: char| c.is_whitespace() || c == '│')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // (The renderer may break "16-bit" at its hyphen.)
    assert!(
        flat.contains("the inputs ([quant] data): values up to")
            && (flat.contains("do not fit any 16-bit format")
                || flat.contains("do not fit any 16- bit format")),
        "{err}"
    );
    assert!(!none.exists());
}
