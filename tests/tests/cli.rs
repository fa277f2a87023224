//! The CLI on the example plans: `check` summaries (golden files), `golden` outputs, and
//! weights that arrive already bank-balanced.

use partita_codegen::passes::bbs_prune;
use partita_tests::{
    cli, design_from_text, max_abs_diff, read_f64, repo, safetensors_bytes, TempDir,
};

const EXAMPLES: &[&str] = &[
    "lstm_1dev_dense",
    "lstm_1dev_bbs",
    "lstm_1dev_gates",
    "lstm_1dev_ew",
    "lstm_1024_bbs",
    "lstm_1024_4dev",
    "lstm_4dev_dense",
    "lstm_4dev_bbs",
    "lstm_3dev_mixed",
    "cnn_small",
    "cnn_mnist3",
    "cnn_mnist3_fused4",
    "cnn_mnist3_tiles4",
    "cnn_mnist3_tiles2x2",
    "cnn_mnist3_filters4",
    "cnn_channels4",
    "cnn_mnist3_layers3",
    "cnn_lenet5_fused2x2",
    "cnn_mnist3_filters_channels4",
    "cnn_mnist3_fused4_pipe2",
    "cnn_mnist3_filters_ag4",
    "cnn_mnist3_tiles2x2_filters4",
];

#[test]
fn every_example_checks() {
    for name in EXAMPLES {
        let path = repo().join(format!("examples/{name}.toml"));
        let (code, out, err) = cli(&["check", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        let out = out.replace(&format!("{}/", repo().display()), "");
        insta::assert_snapshot!(format!("check_{name}"), out);
    }
}

fn golden(plan: &str, input: &str, extra: &[&str]) -> (String, ndarray::ArrayD<f64>) {
    let dir = TempDir::new("golden");
    let out = dir.path().join("y.npy");
    let plan = repo().join(plan);
    let input = repo().join(input);
    let mut args = vec![
        "golden",
        plan.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, err) = cli(&args);
    assert_eq!(code, 0, "{err}");
    (stdout, read_f64(&out))
}

#[test]
fn golden_writes_outputs_like_pytorch() {
    let (msg, fixed) = golden(
        "examples/lstm_4dev_bbs.toml",
        "examples/inputs/lstm64_b2_seq16.npy",
        &["--vs-float"],
    );
    assert_eq!(fixed.shape(), &[2, 16, 256]);
    assert!(msg.contains("max |fixed - float|"), "{msg}");
    let (_, float) = golden(
        "examples/lstm_4dev_bbs.toml",
        "examples/inputs/lstm64_b2_seq16.npy",
        &["--float"],
    );
    assert_eq!(float.shape(), &[2, 16, 256]);
    let err = max_abs_diff(&fixed, &float);
    assert!(err > 0.0 && err < 0.01, "fixed vs float: {err}");
    // Fixed outputs are exact multiples of the data LSB (s3.12).
    assert!(fixed.iter().all(|v| (v * 4096.0).fract() == 0.0));
    // Unbatched input, unbatched output.
    let (_, y) = golden(
        "examples/lstm_4dev_dense.toml",
        "examples/inputs/lstm32_seq16.npy",
        &[],
    );
    assert_eq!(y.shape(), &[16, 128]);
    let (_, y) = golden(
        "examples/cnn_small.toml",
        "examples/inputs/mnist_like_b2.npy",
        &[],
    );
    assert_eq!(y.shape(), &[2, 10]);
}

/// Weights that already are bank-balanced sparse come through with every value unchanged,
/// whether n is inferred or given.
#[test]
fn pre_pruned_weights_are_kept_exactly() {
    let (i, h, banks, n) = (16, 8, 2, 2);
    let names = partita_tests::lstm_tensors("", 0, i, h);
    let dense = safetensors_bytes(&names, 5);
    // Prune the f32 weights in float, then write them back as f32 (exactly representable).
    let st = safetensors::SafeTensors::deserialize(&dense).unwrap();
    let mut pruned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut originals = Vec::new();
    for (name, shape) in &names {
        let t = st.tensor(name).unwrap();
        let vals: Vec<f64> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect();
        let vals = if shape.len() == 2 {
            let m = ndarray::Array2::from_shape_vec((shape[0], shape[1]), vals).unwrap();
            let (csb, _) = bbs_prune::encode(m.view(), banks, n);
            let p = csb.decode();
            originals.push(p.clone());
            p.iter().copied().collect()
        } else {
            vals
        };
        let bytes = vals
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect();
        pruned.push((name.clone(), shape.clone(), bytes));
    }
    let views = pruned.iter().map(|(n, s, b)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap(),
        )
    });
    let dir = TempDir::new("prepruned");
    dir.write(
        "w.safetensors",
        safetensors::serialize(views, None).unwrap(),
    );
    // n inferred, n given, and a larger n: none of them may change a value.
    for keep in ["", "nnz_per_bank = 2\n", "nnz_per_bank = 3\n"] {
        let text = format!(
            "[model]\nkind = \"lstm\"\ninput_size = {i}\nhidden_size = {h}\nweights = \"w.safetensors\"\n\
             [sparsity]\nkind = \"bbs\"\nbanks = {banks}\n{keep}"
        );
        let d = design_from_text(&text, dir.path());
        let partita_codegen::design::ModelDesign::Lstm(m) = &d.model else {
            unreachable!()
        };
        assert_eq!(m.layers[0].dense_ih, originals[0], "keep = {keep:?}");
        assert_eq!(m.layers[0].dense_hh, originals[1], "keep = {keep:?}");
        assert!(d.prune_reports.iter().all(|(_, r)| r.dropped == 0));
        assert!(m.layers[0].w_ih.shape.nnz_per_bank >= n);
    }
}

#[test]
fn report_sweep_table_and_plot() {
    let tmp = TempDir::new("report");
    let plot = tmp.path().join("sweep.svg");
    let plan = repo().join("examples/lstm_4dev_bbs.toml");
    let (code, out, err) = cli(&[
        "report",
        plan.to_str().unwrap(),
        "--sweep",
        "devices=1,2,4",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let out = out
        .replace(&format!("{}/", repo().display()), "")
        .replace(&plot.display().to_string(), "<plot>");
    insta::assert_snapshot!("report_lstm_4dev_bbs", out);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.matches("<polyline").count() == 5,
        "{svg}"
    );
    let (code, _, err) = cli(&["report", plan.to_str().unwrap(), "--sweep", "devices=1,x"]);
    assert_eq!(code, 2);
    assert!(err.contains("device counts are whole numbers"), "{err}");
}

/// A cosimulation that fails keeps an existing `--output` file as it was and writes the
/// device's output to NAME.mismatch.npy; a passing one replaces the file.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn failed_sim_keeps_the_old_output() {
    let dir = TempDir::new("simout");
    let plan = dir.write(
        "p.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
    );
    let rtl = dir.path().join("rtl");
    let y = dir.path().join("y.npy");
    let (p, r, y_s) = (
        plan.to_str().unwrap(),
        rtl.to_str().unwrap(),
        y.to_str().unwrap(),
    );
    let (code, _, err) = cli(&["gen", p, "-o", r]);
    assert_eq!(code, 0, "{err}");
    // A valid but wrong weight word: the device now computes something else.
    let hex = rtl.join("weights_e0.hex");
    let text = std::fs::read_to_string(&hex).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = "0".repeat(lines[2].len());
    std::fs::write(&hex, lines.join("\n") + "\n").unwrap();
    std::fs::write(&y, b"old").unwrap();
    let (code, out, _) = cli(&["sim", p, "--rtl", r, "--output", y_s]);
    assert_eq!(code, 1, "a wrong weight must be a mismatch: {out}");
    assert!(out.contains("left as it was"), "{out}");
    assert_eq!(std::fs::read(&y).unwrap(), b"old", "the old output is kept");
    let bad = read_f64(&dir.path().join("y.mismatch.npy"));
    assert_eq!(bad.shape(), &[2, 8, 8]);
    // Repaired, the run passes and replaces the file.
    std::fs::write(&hex, text).unwrap();
    let (code, _, err) = cli(&["sim", p, "--rtl", r, "--output", y_s]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(read_f64(&y).shape(), &[2, 8, 8]);
}

/// Every board preset sizes `engines = "auto"` to a design that `gen` builds, and a model too
/// large for a board is refused by `check`.
#[test]
fn board_presets_size_auto_engines_that_generate() {
    let dir = TempDir::new("boards");
    for b in partita_codegen::boards::BOARDS {
        let text = format!(
            "[model]\nkind = \"lstm\"\ninput_size = 64\nhidden_size = 256\nseed = 1\n\
             [sparsity]\nkind = \"bbs\"\nbanks = 8\ndensity = 0.25\n\
             [target]\nboard = \"{}\"\nengines = \"auto\"\n",
            b.name
        );
        let plan = dir.write(&format!("{}.toml", b.name), text.as_bytes());
        let d = design_from_text(&text, dir.path());
        assert!(d.plan.engines >= 1, "{}", b.name);
        let costs = partita_codegen::analysis::resources::device_costs(&d);
        assert!(costs[0].multipliers <= b.multipliers, "{}", b.name);
        let (code, out, err) = cli(&["check", plan.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", b.name);
        assert!(out.contains(&format!("board: {}", b.name)), "{out}");
        assert!(out.contains("engines = \"auto\""), "{out}");
        let rtl = dir.path().join(format!("rtl-{}", b.name));
        let (code, _, err) = cli(&["gen", plan.to_str().unwrap(), "-o", rtl.to_str().unwrap()]);
        assert_eq!(
            code, 0,
            "{}: gen refused the auto-sized design: {err}",
            b.name
        );
    }
    let big = dir.write(
        "big.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 1024\nhidden_size = 1024\nseed = 1\n\
          [target]\nboard = \"pynq-z2\"\n",
    );
    let (code, _, err) = cli(&["check", big.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("does not fit the pynq-z2 board"), "{err}");
    // Memory binds before the multipliers: "auto" stops where the weights, biases, cell state
    // and each engine's vectors still fit memory_bits, and the design it sizes fits.
    for budget in [260_000i64, 300_000, 900_000] {
        let text = format!(
            "[model]\nkind = \"lstm\"\ninput_size = 32\nhidden_size = 64\nseed = 1\n\
             [sparsity]\nkind = \"bbs\"\nbanks = 4\ndensity = 0.5\n\
             [target]\nengines = \"auto\"\ndsp_budget = 1000\nmemory_bits = {budget}\n"
        );
        let d = design_from_text(&text, dir.path());
        let c = &partita_codegen::analysis::resources::device_costs(&d)[0];
        assert!(c.weight_bits + c.state_bits <= budget as u64, "{budget}");
        let why = d.plan.engines_why.clone().unwrap_or_default();
        if budget < 900_000 {
            assert!(why.contains("by block memory"), "{budget}: {why}");
            // One more engine (its x and h vectors: 32 + 2 x 64 values of 16 bits) would not fit.
            assert!(
                c.weight_bits + c.state_bits + 2560 > budget as u64,
                "{budget}: {} engines leave room",
                d.plan.engines
            );
        } else {
            assert!(!why.contains("by block memory"), "{why}");
        }
    }
}
