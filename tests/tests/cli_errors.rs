//! Every kind of bad input gets a clear message, exit code 2, and no panic. The rendered
//! messages are golden files in tests/snapshots/; update them with
//! `INSTA_UPDATE=always cargo test -p partita-tests --test cli_errors` and review the diff.

use partita_tests::{cli, lstm_tensors, safetensors_bytes, TempDir};

const LSTM: &str = "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n";

/// Run `partita check` on a plan and return its stderr with the temp dir removed.
fn check_bytes(name: &str, bytes: &[u8]) -> String {
    let dir = TempDir::new("err");
    let path = dir.write(&format!("{name}.toml"), bytes);
    run_expect_2(&dir, &["check", path.to_str().unwrap()])
}

fn check(name: &str, text: &str) -> String {
    check_bytes(name, text.as_bytes())
}

fn run_expect_2(dir: &TempDir, args: &[&str]) -> String {
    let (code, out, err) = cli(args);
    assert_eq!(
        code, 2,
        "expected exit 2 for {args:?}; stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.is_empty(), "nothing on stdout for a failure: {out}");
    assert!(!err.trim().is_empty(), "a failure must say why");
    err.replace(&format!("{}/", dir.path().display()), "")
        .replace(&dir.path().display().to_string(), "<tmp>")
}

macro_rules! snap {
    ($name:ident, $text:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), check(stringify!($name), $text));
        }
    };
}

// Files that are not TOML plans.
snap!(empty_file, "");
snap!(whitespace_only, "\n   \n\t\n");
snap!(
    truncated_toml,
    "[model]\nkind = \"lstm\"\ninput_size = 64\nhidden_size = "
);
snap!(unclosed_table, "[model\nkind = \"lstm\"\n");
snap!(missing_model_table, "[quant]\nweight = \"s1.14\"\n");

#[test]
fn binary_garbage() {
    let mut rng = partita_codegen::weights::SplitMix64::new(99);
    let bytes: Vec<u8> = (0..256).map(|_| rng.next_u64() as u8).collect();
    insta::assert_snapshot!("binary_garbage", check_bytes("binary_garbage", &bytes));
}

#[test]
fn utf8_but_not_toml() {
    insta::assert_snapshot!(
        "utf8_but_not_toml",
        check_bytes("utf8_but_not_toml", b"\x00\x01\x02 hello")
    );
}

#[test]
fn plan_file_missing() {
    let dir = TempDir::new("nofile");
    let p = dir.path().join("nope.toml");
    insta::assert_snapshot!(
        "plan_file_missing",
        run_expect_2(&dir, &["check", p.to_str().unwrap()])
    );
}

// Keys and types.
snap!(
    unknown_table,
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n[modle]\nx = 1\n"
);
snap!(
    unknown_key,
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\ncolour = 3\n"
);
snap!(
    unknown_key_in_link,
    &format!("{LSTM}[target.link]\nwidht = 64\n")
);
snap!(
    wrong_type_string_for_int,
    "[model]\nkind = \"lstm\"\ninput_size = \"64\"\nhidden_size = 8\nseed = 1\n"
);
snap!(
    wrong_type_float_for_int,
    "[model]\nkind = \"lstm\"\ninput_size = 4.5\nhidden_size = 8\nseed = 1\n"
);
snap!(
    unknown_model_kind,
    "[model]\nkind = \"gru\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n"
);
snap!(
    missing_kind,
    "[model]\ninput_size = 4\nhidden_size = 8\nseed = 1\n"
);

// Sizes.
snap!(
    zero_hidden_size,
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 0\nseed = 1\n"
);
snap!(
    negative_layers,
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nnum_layers = -2\nseed = 1\n"
);
snap!(
    missing_input_size,
    "[model]\nkind = \"lstm\"\nhidden_size = 8\nseed = 1\n"
);
snap!(
    lstm_with_cnn_keys,
    &format!("{LSTM}input_shape = [1, 2, 3]\n")
);

// Sparsity.
snap!(
    density_zero,
    &format!("{LSTM}[sparsity]\nkind = \"bbs\"\ndensity = 0.0\n")
);
snap!(
    density_above_one,
    &format!("{LSTM}[sparsity]\nkind = \"bbs\"\ndensity = 1.5\n")
);
snap!(banks_zero, &format!("{LSTM}[sparsity]\nbanks = 0\n"));
snap!(
    density_on_dense,
    &format!("{LSTM}[sparsity]\ndensity = 0.5\n")
);
snap!(
    density_and_nnz,
    &format!("{LSTM}[sparsity]\nkind = \"bbs\"\ndensity = 0.5\nnnz_per_bank = 2\n")
);
snap!(
    nnz_above_bank_size,
    &format!("{LSTM}[sparsity]\nkind = \"bbs\"\nbanks = 2\nnnz_per_bank = 9\n")
);
snap!(
    bbs_without_density_on_dense_weights,
    &format!("{LSTM}[sparsity]\nkind = \"bbs\"\n")
);

// Formats and activation tables.
snap!(
    bad_format_string,
    &format!("{LSTM}[quant]\nweight = \"q1.14\"\n")
);
snap!(
    format_too_wide,
    &format!("{LSTM}[quant]\ndata = \"s20.20\"\n")
);
snap!(
    accumulator_too_narrow,
    &format!("{LSTM}[quant]\naccumulator_bits = 20\n")
);
snap!(
    bias_finer_than_product,
    &format!("{LSTM}[quant]\nbias = \"s1.30\"\n")
);
snap!(
    unknown_rounding,
    &format!("{LSTM}[quant]\nrounding = \"up\"\n")
);
snap!(
    segments_not_power_of_two,
    &format!("{LSTM}[activation]\nsegments = 48\n")
);
snap!(
    range_off_grid,
    &format!("{LSTM}[activation]\nsigmoid_range = [-8.0, 9.0]\n")
);

// Devices and partitions.
snap!(devices_zero, &format!("{LSTM}[target]\ndevices = 0\n"));
snap!(
    unknown_strategy,
    &format!("{LSTM}[target]\ndevices = 2\n[partition]\nstrategy = \"diagonal\"\n")
);
snap!(
    cnn_strategy_on_lstm,
    &format!("{LSTM}[partition]\nstrategy = \"filters\"\n")
);
snap!(
    gates_over_five_devices,
    &format!("{LSTM}[target]\ndevices = 5\n[partition]\nstrategy = \"gates\"\n")
);
snap!(
    layers_more_devices_than_layers,
    &format!("{LSTM}[target]\ndevices = 3\n[partition]\nstrategy = \"layers\"\n")
);
snap!(override_bad_layer_and_device, &format!("{LSTM}[target]\ndevices = 2\n[[partition.override]]\nlayer = 4\n[[partition.override]]\nlayer = 0\ndevices = [0, 7]\n"));
snap!(
    idle_device,
    &format!("{LSTM}[target]\ndevices = 3\n[[partition.override]]\nlayer = 0\ndevices = [0, 1]\n")
);
snap!(
    over_dsp_budget,
    &format!("{LSTM}[sparsity]\nbanks = 4\n[target]\nengines = 4\ndsp_budget = 8\n")
);
snap!(several_errors_at_once, "[model]\nkind = \"lstm\"\ninput_size = 0\nhidden_size = 4\nseed = 1\n[sparsity]\nkind = \"bbs\"\nbanks = 0\ndensity = 1.5\n[target]\ndevices = 0\n");

// Weights.
snap!(weights_and_seed, "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\nweights = \"w.safetensors\"\n");
snap!(
    neither_weights_nor_seed,
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\n"
);
snap!(weights_file_missing, "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nweights = \"missing.safetensors\"\n");

fn with_weights(name: &str, plan: &str, weights: &[u8]) -> String {
    let dir = TempDir::new("w");
    dir.write("w.safetensors", weights);
    let path = dir.write(&format!("{name}.toml"), plan);
    run_expect_2(&dir, &["check", path.to_str().unwrap()])
}

const LSTM_W: &str =
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nweights = \"w.safetensors\"\n";

#[test]
fn weights_not_safetensors() {
    insta::assert_snapshot!(with_weights(
        "x",
        LSTM_W,
        b"PK\x03\x04 this is a zip, not safetensors"
    ));
}

#[test]
fn weights_wrong_shapes() {
    let t = lstm_tensors("", 0, 4, 6);
    insta::assert_snapshot!(with_weights("x", LSTM_W, &safetensors_bytes(&t, 1)));
}

#[test]
fn weights_missing_prefix() {
    let t = lstm_tensors("encoder.lstm.", 0, 4, 8);
    insta::assert_snapshot!(with_weights("x", LSTM_W, &safetensors_bytes(&t, 1)));
}

#[test]
fn weights_with_prefix_load() {
    let t = lstm_tensors("encoder.lstm.", 0, 4, 8);
    let dir = TempDir::new("w");
    dir.write("w.safetensors", safetensors_bytes(&t, 1));
    let path = dir.write(
        "p.toml",
        format!("{LSTM_W}weights_prefix = \"encoder.lstm.\"\n"),
    );
    let (code, out, err) = cli(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("model: LSTM, input 4 -> hidden 8, 1 layer(s)"),
        "{out}"
    );
}

// CNN plans.
const CNN: &str = "[model]\nkind = \"cnn\"\ninput_shape = [1, 8, 8]\nseed = 1\n";
snap!(
    cnn_kernel_too_large,
    &format!("{CNN}[[model.layer]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 11\n")
);
snap!(
    cnn_unknown_layer_type,
    &format!("{CNN}[[model.layer]]\ntype = \"attention\"\n")
);
snap!(cnn_no_layers, CNN);
snap!(
    cnn_with_lstm_keys,
    &format!("{CNN}hidden_size = 3\n[[model.layer]]\ntype = \"relu\"\n")
);
snap!(
    cnn_channels_on_one_input_channel,
    &format!("{CNN}[[model.layer]]\ntype = \"conv2d\"\nout_channels = 2\nkernel = 3\n[target]\ndevices = 2\n[partition]\nstrategy = \"channels\"\n")
);

// Input arrays for `partita golden`.
fn golden_with(name: &str, npy: Option<&[u8]>) -> String {
    let dir = TempDir::new("in");
    let plan = dir.write("p.toml", LSTM);
    let input = dir.path().join(name);
    if let Some(b) = npy {
        std::fs::write(&input, b).unwrap();
    }
    let out = dir.path().join("y.npy");
    run_expect_2(
        &dir,
        &[
            "golden",
            plan.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    )
}

fn npy_bytes<T: ndarray_npy::WritableElement>(a: ndarray::ArrayD<T>) -> Vec<u8> {
    use ndarray_npy::WriteNpyExt;
    let mut v = Vec::new();
    a.write_npy(&mut v).unwrap();
    v
}

#[test]
fn input_wrong_width() {
    let a = ndarray::ArrayD::<f64>::zeros(vec![5, 3]);
    insta::assert_snapshot!(golden_with("x.npy", Some(&npy_bytes(a))));
}

#[test]
fn input_wrong_rank() {
    let a = ndarray::ArrayD::<f32>::zeros(vec![2, 2, 5, 4]);
    insta::assert_snapshot!(golden_with("x.npy", Some(&npy_bytes(a))));
}

#[test]
fn input_integer_dtype() {
    let a = ndarray::ArrayD::<i32>::zeros(vec![5, 4]);
    insta::assert_snapshot!(golden_with("x.npy", Some(&npy_bytes(a))));
}

#[test]
fn input_not_npy() {
    insta::assert_snapshot!(golden_with("x.npy", Some(b"seq,x\n1,2\n")));
}

#[test]
fn input_missing() {
    insta::assert_snapshot!(golden_with("x.npy", None));
}

#[test]
fn input_non_finite() {
    let mut a = ndarray::ArrayD::<f64>::zeros(vec![3, 4]);
    a[[1, 2]] = f64::NAN;
    insta::assert_snapshot!(golden_with("x.npy", Some(&npy_bytes(a))));
}

#[test]
fn pcie_backend_on_a_multi_device_plan_needs_every_card_and_host_links() {
    let dir = TempDir::new("runmulti");
    let y = dir.path().join("y.npy");
    for plan in [
        "examples/lstm_4dev_bbs.toml",
        "examples/cnn_mnist3_fused4.toml",
    ] {
        let plan = partita_tests::repo().join(plan);
        let x = dir.write(
            "x.npy",
            npy_bytes(ndarray::ArrayD::<f64>::zeros(vec![1, 2, 64])),
        );
        let args = [
            "run",
            plan.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
            "--output",
            y.to_str().unwrap(),
            "--backend",
            "pcie",
        ];
        // The message as words (miette wraps long lines, and these name long paths).
        let flat = |e: String| {
            e.split_whitespace()
                .filter(|w| *w != "│")
                .collect::<Vec<_>>()
                .join(" ")
        };
        let err = flat(run_expect_2(&dir, &args));
        assert!(
            err.contains("needs --xdma N=PREFIX for every card; missing: [0, 1, 2"),
            "{err}"
        );
        assert!(!y.exists(), "nothing written on failure");
        // Every card named: these plans' links are direct, and cards reach each other
        // only through the host.
        let cards: Vec<String> = (0..4).map(|k| format!("--xdma={k}=/dev/xdma{k}")).collect();
        let mut more: Vec<&str> = args.to_vec();
        let n = partita_codegen::design::from_path(&plan)
            .unwrap()
            .plan
            .devices;
        more.extend(cards[..n].iter().map(|c| c.as_str()));
        let err = flat(run_expect_2(&dir, &more));
        assert!(
            err.contains("set mode = \"host\" in [target.link]"),
            "{err}"
        );
        assert!(!y.exists(), "nothing written on failure");
    }
}

#[test]
fn remote_backend_needs_every_device_connected() {
    let dir = TempDir::new("nb");
    let plan = dir.write("p.toml", LSTM);
    let x = dir.write(
        "x.npy",
        npy_bytes(ndarray::ArrayD::<f64>::zeros(vec![2, 4])),
    );
    let y = dir.path().join("y.npy");
    let base = [
        "run",
        plan.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
        "--backend",
        "remote",
    ];
    for (extra, want) in [
        (vec![], "needs --connect N=HOST:PORT for every device"),
        (vec!["--connect", "0"], "expected N=HOST:PORT"),
        (
            vec!["--connect", "3=127.0.0.1:1"],
            "the plan has devices 0..1",
        ),
        (
            vec!["--connect", "0=127.0.0.1:1", "--connect", "0=127.0.0.1:2"],
            "device 0 given twice",
        ),
        // Nothing listens on port 1: the connection is refused at once.
        (vec!["--connect", "0=127.0.0.1:1"], "cannot connect"),
    ] {
        let mut args = base.to_vec();
        args.extend(extra);
        let err = run_expect_2(&dir, &args);
        assert!(err.contains(want), "{want}: {err}");
        assert!(!y.exists(), "nothing written on failure");
    }
}

#[test]
fn bad_arguments() {
    let (code, _, err) = cli(&["golden", "p.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("--input"), "{err}");
    let (code, _, err) = cli(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
}
