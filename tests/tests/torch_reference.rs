//! The float golden model against torch.nn.LSTM / nn.Sequential outputs recorded by
//! scripts/torch_fixtures.py (float64 models; one with float32 weights, one with a key prefix).

use partita_sim::Mode;
use partita_tests::{max_abs_diff, read_f64, repo};

fn check(case: &str) {
    let dir = repo().join("tests/fixtures/torch");
    let d = partita_codegen::design::from_path(&dir.join(format!("{case}.toml")))
        .unwrap_or_else(|e| panic!("{case}: {e:?}"));
    let x = partita_sim::read_input(&dir.join(format!("{case}_x.npy")), &d).expect("input");
    let want = read_f64(&dir.join(format!("{case}_y.npy")));
    let got = partita_sim::run(&d, &x, Mode::Float).values;
    let err = max_abs_diff(&got, &want);
    assert!(err <= 1e-6, "{case}: max |golden - torch| = {err:e}");
}

#[test]
fn lstm_single_layer_unbatched() {
    check("lstm_a");
}

#[test]
fn lstm_two_layers_batched_with_prefix() {
    check("lstm_b");
}

#[test]
fn lstm_odd_sizes() {
    check("lstm_c");
}

#[test]
fn lstm_float32_weights() {
    check("lstm_d");
}

#[test]
fn cnn_conv_relu_pool_dense() {
    check("cnn_a");
}
