//! Golden-model properties: the float model against a plain loop reference, the fixed model's
//! independence from the partition, and its accuracy against float.

use ndarray::{ArrayD, Axis};
use partita_codegen::design::ModelDesign;
use partita_sim::{lstm, Input, Mode};
use partita_tests::{design_from_text, max_abs_diff, normal_input, TempDir};
use proptest::prelude::*;

fn lstm_plan(
    i: usize,
    h: usize,
    l: usize,
    banks: usize,
    density: Option<f64>,
    seed: u64,
) -> String {
    // Stay inside what the validator accepts: banks at most the widest row, and a density
    // only where it prunes something (it refuses both, see cli_errors).
    let wide = i.max(h);
    let banks = banks.min(wide);
    let bank = wide.div_ceil(banks);
    let density = density.filter(|d| partita_codegen::plan::nnz_for_density(*d, bank) < bank);
    let sparsity = match density {
        Some(d) => format!("[sparsity]\nkind = \"bbs\"\nbanks = {banks}\ndensity = {d}\n"),
        None => format!("[sparsity]\nkind = \"dense\"\nbanks = {banks}\n"),
    };
    format!(
        "[model]\nkind = \"lstm\"\ninput_size = {i}\nhidden_size = {h}\nnum_layers = {l}\nseed = {seed}\n{sparsity}"
    )
}

fn batched(x: ArrayD<f64>) -> Input {
    Input {
        data: x,
        batched: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The ndarray float model equals a straightforward loop implementation.
    #[test]
    fn float_matches_loop_reference(
        i in 1usize..12, h in 1usize..12, l in 1usize..3, seq in 1usize..6,
        banks in 1usize..5, bbs in any::<bool>(), seed in 0u64..1000,
    ) {
        let dir = TempDir::new("loopref");
        let d = design_from_text(&lstm_plan(i, h, l, banks, bbs.then_some(0.5), seed), dir.path());
        let ModelDesign::Lstm(m) = &d.model else { unreachable!() };
        let x = normal_input(&[seq, i], seed + 1);
        let x2 = x.view().into_dimensionality::<ndarray::Ix2>().unwrap();
        let a = lstm::float(m, x2).into_dyn();
        let b = lstm::float_reference(m, x2).into_dyn();
        prop_assert!(max_abs_diff(&a, &b) < 1e-12);
    }
}

/// A plan with a random partition per layer: `parts[l] = (strategy, first device, count)`.
fn partitioned_plan(base: &str, parts: &[(&str, usize, usize)]) -> String {
    let devices = parts.iter().map(|p| p.1 + p.2).max().unwrap_or(1);
    let mut s = format!("{base}[target]\ndevices = {devices}\n");
    for (l, (strategy, first, n)) in parts.iter().enumerate() {
        let devs: Vec<String> = (*first..first + n).map(|d| d.to_string()).collect();
        s += &format!(
            "[[partition.override]]\nlayer = {l}\nstrategy = \"{strategy}\"\ndevices = [{}]\n",
            devs.join(", ")
        );
    }
    s
}

fn lstm_partition() -> impl Strategy<Value = (String, Vec<(&'static str, usize, usize)>, u64)> {
    (
        1usize..10,
        1usize..10,
        1usize..3,
        1usize..5,
        any::<bool>(),
        0u64..1000,
    )
        .prop_flat_map(|(i, h, l, banks, bbs, seed)| {
            let banks = banks.min(i.max(h));
            let base = lstm_plan(i, h, l, banks, bbs.then_some(0.4), seed);
            let layer = (
                prop::sample::select(vec!["rows", "cols", "gates", "ops", "layers"]),
                0usize..6,
                1usize..6,
            );
            prop::collection::vec(layer, l).prop_map(move |raw| {
                // Devices used so far form 0..end, so every device gets work.
                let mut end = 0;
                let mut parts = Vec::new();
                for (s, off, n) in raw {
                    let max = match s {
                        "rows" => h,
                        "cols" => 2 * banks,
                        "gates" => 4,
                        "ops" => 2,
                        _ => 1,
                    };
                    let n = n.min(max);
                    let first = off.min(end);
                    end = end.max(first + n);
                    parts.push((s, first, n));
                }
                (base.clone(), parts, seed)
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// No partition changes a single output bit of the fixed model.
    #[test]
    fn fixed_output_independent_of_partition((base, parts, seed) in lstm_partition()) {
        let text = partitioned_plan(&base, &parts);
        let dir = TempDir::new("part");
        let d = design_from_text(&text, dir.path());
        let ModelDesign::Lstm(m) = &d.model else { unreachable!() };
        let x = batched(normal_input(&[2, 5, m.input_size], seed ^ 0x55));
        let whole = partita_sim::run_with(&d, &x, Mode::Fixed, None).codes.unwrap();
        let split = partita_sim::run(&d, &x, Mode::Fixed).codes.unwrap();
        prop_assert_eq!(whole, split, "plan:\n{}", text);
    }

    /// Same for CNNs split by filters and by channels.
    #[test]
    fn cnn_fixed_output_independent_of_partition(
        s0 in prop::sample::select(vec!["filters", "channels"]),
        s1 in prop::sample::select(vec!["filters", "channels"]),
        n0 in 1usize..4, n1 in 1usize..3, seed in 0u64..1000,
    ) {
        let base = format!(
            "[model]\nkind = \"cnn\"\ninput_shape = [3, 7, 7]\nseed = {seed}\n\
             [[model.layer]]\ntype = \"conv2d\"\nout_channels = 4\nkernel = 3\npadding = 1\n\
             [[model.layer]]\ntype = \"relu\"\n\
             [[model.layer]]\ntype = \"flatten\"\n\
             [[model.layer]]\ntype = \"dense\"\nout_features = 3\n"
        );
        let text = partitioned_plan(
            &base,
            &[(s0, 0, n0.min(3)), ("filters", 0, 1), ("filters", 0, 1), (s1, 0, n1)],
        );
        let dir = TempDir::new("cnnpart");
        let d = design_from_text(&text, dir.path());
        let x = batched(normal_input(&[2, 3, 7, 7], seed));
        let whole = partita_sim::run_with(&d, &x, Mode::Fixed, None).codes.unwrap();
        let split = partita_sim::run(&d, &x, Mode::Fixed).codes.unwrap();
        prop_assert_eq!(whole, split, "plan:\n{}", text);
    }
}

/// With the default formats, fixed output stays within 0.01 of float on well-scaled inputs
/// (PyTorch's default init, unit-normal inputs), dense and BBS, over long sequences.
#[test]
fn fixed_within_0_01_of_float_on_defaults() {
    for (i, h, l, density) in [
        (64, 256, 2, None),
        (64, 256, 2, Some(0.25)),
        (16, 32, 1, None),
        (7, 50, 3, Some(0.5)),
    ] {
        let dir = TempDir::new("acc");
        let d = design_from_text(&lstm_plan(i, h, l, 8, density, 42), dir.path());
        let x = batched(normal_input(&[2, 60, i], 9));
        let fixed = partita_sim::run(&d, &x, Mode::Fixed);
        let float = partita_sim::run(&d, &x, Mode::Float);
        let err = max_abs_diff(&fixed.values, &float.values);
        println!("{i}->{h} x{l} {density:?}: max |fixed - float| = {err:.2e}");
        assert!(
            err <= 0.01,
            "{i}->{h} x{l} {density:?}: max |fixed - float| = {err}"
        );
        assert_eq!(fixed.events.saturations, 0);
        assert_eq!(fixed.values.shape(), &[2, 60, h]);
    }
}

/// An unbatched input gives an unbatched output, equal to the batched run's first item.
#[test]
fn unbatched_matches_batched() {
    let dir = TempDir::new("unb");
    let d = design_from_text(&lstm_plan(5, 6, 2, 2, None, 3), dir.path());
    let x = normal_input(&[2, 4, 5], 1);
    let both = partita_sim::run(&d, &batched(x.clone()), Mode::Fixed).values;
    let first = x.index_axis(Axis(0), 0).to_owned();
    let one = partita_sim::run(
        &d,
        &Input {
            data: first.insert_axis(Axis(0)),
            batched: false,
        },
        Mode::Fixed,
    )
    .values;
    assert_eq!(one.shape(), &[4, 6]);
    assert_eq!(one, both.index_axis(Axis(0), 0).to_owned());
}

/// The fixed CNN stays close to float on the example plan (s5.10 maps) and on the torch
/// fixture's architecture with default formats.
#[test]
fn cnn_fixed_close_to_float() {
    for (plan, shape) in [
        ("examples/cnn_small.toml", vec![2, 1, 28, 28]),
        ("tests/fixtures/torch/cnn_a.toml", vec![3, 2, 10, 10]),
    ] {
        let d = partita_codegen::design::from_path(&partita_tests::repo().join(plan)).unwrap();
        let x = batched(normal_input(&shape, 4));
        let fixed = partita_sim::run(&d, &x, Mode::Fixed);
        let float = partita_sim::run(&d, &x, Mode::Float);
        let err = max_abs_diff(&fixed.values, &float.values);
        println!("{plan}: max |fixed - float| = {err:.2e}");
        assert!(err < 0.01, "{plan}: {err}");
        assert_eq!(fixed.events.saturations, 0);
    }
}

/// Values that do not fit their format are reported by layer and quantity, with how many, the
/// largest magnitude, and a format of the same width that holds it; run with that format, the
/// layer's values fit. On the example CNN with 16-bit s3.12 maps (the example uses s5.10) and
/// inputs scaled by 4, and on an LSTM with 5-bit formats through `partita golden`.
#[test]
fn saturations_are_reported_by_layer_with_a_format_that_holds_them() {
    let text =
        std::fs::read_to_string(partita_tests::repo().join("examples/cnn_small.toml")).unwrap();
    assert!(text.contains("data = \"s5.10\""));
    let narrow = text.replace("data = \"s5.10\"", "data = \"s3.12\"");
    let tmp = TempDir::new("satcnn");
    let d = design_from_text(&narrow, tmp.path());
    let x = batched(normal_input(&[2, 1, 28, 28], 4).mapv(|v| 4.0 * v));
    let fixed = partita_sim::run(&d, &x, Mode::Fixed);
    let ev = &fixed.events;
    assert!(ev.saturations > 0, "{ev:?}");
    let first = ev
        .sites
        .iter()
        .filter(|s| s.layer.is_some())
        .min_by_key(|s| s.layer)
        .expect("a layer saturated")
        .clone();
    assert_eq!(
        ev.saturations,
        ev.sites
            .iter()
            .filter(|s| s.layer.is_some())
            .map(|s| s.count)
            .sum::<u64>()
    );
    let fmt = first.holding_format().expect("a 16-bit format holds it");
    assert!(
        fmt.int_bits > 3 && fmt.int_bits + fmt.frac_bits == 15,
        "{fmt}"
    );
    let line = first.describe();
    assert!(
        line.contains(&format!("layer {}", first.layer.unwrap()))
            && line.contains("s3.12")
            && line.contains(&format!("{fmt} would hold them")),
        "{line}"
    );
    // With that format the first layer that saturated no longer does.
    let wider = text.replace("data = \"s5.10\"", &format!("data = \"{fmt}\""));
    let d = design_from_text(&wider, tmp.path());
    let again = partita_sim::run(&d, &x, Mode::Fixed);
    assert!(
        !again.events.sites.iter().any(|s| s.layer == first.layer),
        "{:?}",
        again.events.sites
    );
    // An LSTM through the CLI: each warning names its layer and quantity.
    let lstm = format!(
        "{}[quant]\nweight = \"s1.6\"\ndata = \"s1.4\"\nbias = \"s2.5\"\ncell = \"s1.4\"\n\
         preact = \"s1.4\"\ngate = \"s1.6\"\n[activation]\nsigmoid_range = [-2.0, 2.0]\n\
         tanh_range = [-2.0, 2.0]\nsegments = 16\n",
        lstm_plan(10, 16, 2, 4, None, 3)
    );
    let p = tmp.write("lstm.toml", &lstm);
    let xs = normal_input(&[2, 8, 10], 5).mapv(|v| 3.0 * v);
    let xp = tmp.path().join("x.npy");
    ndarray_npy::write_npy(&xp, &xs).unwrap();
    let yp = tmp.path().join("y.npy");
    let (code, out, err) = partita_tests::cli(&[
        "golden",
        p.to_str().unwrap(),
        "--input",
        xp.to_str().unwrap(),
        "--output",
        yp.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("warning: input: "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("warning: layer ") && l.contains("did not fit s1.4")),
        "{out}"
    );
}
