//! Plans mangled at random never panic: they either pass or get a diagnostic.

use partita_codegen::{design, plan};
use proptest::prelude::*;

const BASE: &str = r#"[model]
kind = "lstm"
input_size = 6
hidden_size = 5
num_layers = 2
seed = 3

[quant]
weight = "s1.14"
data = "s3.12"
rounding = "truncate"
overflow = "wrap"

[activation]
method = "lut"
entries = 256
sigmoid_range = [-8.0, 8.0]

[sparsity]
kind = "bbs"
banks = 2
density = 0.5

[target]
devices = 3
engines = 2

[target.link]
topology = "star"
latency = 4

[partition]
strategy = "rows"

[[partition.override]]
layer = 1
strategy = "cols"
devices = [1, 2]
"#;

const CNN: &str = r#"[model]
kind = "cnn"
input_shape = [2, 9, 9]
seed = 1
[[model.layer]]
type = "conv2d"
out_channels = 3
kernel = 3
stride = 2
padding = 1
[[model.layer]]
type = "maxpool"
kernel = 2
[[model.layer]]
type = "flatten"
[[model.layer]]
type = "dense"
out_features = 4
[target]
devices = 2
[partition]
strategy = "channels"
"#;

fn run(text: &str) {
    let dir = std::env::temp_dir();
    if let Ok(p) = plan::check_text("fuzz.toml", text, &dir) {
        // Budget: keep each case small whatever the mutation made of the sizes.
        if let Ok(d) = design::build(p) {
            let costs = partita_codegen::analysis::resources::device_costs(&d);
            let traffic = partita_codegen::analysis::traffic::traffic(&d);
            let _ = partita_host::cli::check::summary(&d, &costs, &traffic);
        }
    }
}

fn mutate(base: &'static str) -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0usize..4,
            prop::sample::select(vec![
                "0", "1", "-1", "9", "\"", "[", "]", "=", ".", ",", "\n", " ", "x", "1e9", "65",
                "s", "true", "#",
            ]),
        ),
        1..4,
    );
    edits.prop_map(move |edits| {
        let mut s: Vec<char> = base.chars().collect();
        for (at, del, ins) in edits {
            let i = at.index(s.len());
            let end = (i + del).min(s.len());
            s.splice(i..end, ins.chars());
        }
        s.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mangled_lstm_plans_never_panic(text in mutate(BASE)) {
        run(&text);
    }

    #[test]
    fn mangled_cnn_plans_never_panic(text in mutate(CNN)) {
        run(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        run(&text);
    }
}

/// Plans that parse, with every number drawn from edge values: exercises validation and the
/// passes rather than the TOML parser.
fn valued() -> impl Strategy<Value = String> {
    // Mostly small valid numbers, sometimes an edge value.
    let v = || {
        prop_oneof![
            12 => (0i64..4).prop_map(|x| x.to_string()),
            1 => prop::sample::select(vec!["-1", "0", "33", "99999999999"]).prop_map(String::from),
        ]
    };
    let f = || prop::sample::select(vec!["0.01", "0.5", "1.0", "0.5", "1.5", "-0.5"]);
    let strategy =
        || prop::sample::select(vec!["rows", "cols", "gates", "ops", "layers", "filters"]);
    (
        (v(), v(), v(), v(), v(), v()),
        (f(), v(), v(), strategy(), strategy(), v(), v(), v()),
        prop::sample::select(vec!["pwl", "lut"]),
        prop::sample::select(vec!["s1.14", "s0.7", "s3.4", "s7.24", "s0.1"]),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(|((i, h, l, k, d, e), (dens, seg, layer, s0, s1, dev0, dev1, acc), method, fmt, (with_acc, with_override))| {
            // Counts start at 1 here; 0 still comes in through the edge values of layer/devices.
            let one = |x: String| x.parse::<i64>().map_or(x.clone(), |n| if (0..4).contains(&n) { (n + 1).to_string() } else { x });
            let (i, h, l, k, d, e, seg) = (one(i), one(h), one(l), one(k), one(d), one(e), one(seg));
            let text = format!(
                "[model]\nkind = \"lstm\"\ninput_size = {i}\nhidden_size = {h}\nnum_layers = {l}\nseed = 1\n\
                 [quant]\nweight = \"{fmt}\"\ndata = \"{fmt}\"\naccumulator_bits = {acc}\n\
                 [activation]\nmethod = \"{method}\"\nsegments = {seg}\nentries = {seg}\n\
                 [sparsity]\nkind = \"bbs\"\nbanks = {k}\ndensity = {dens}\n\
                 [target]\ndevices = {d}\nengines = {e}\n\
                 [partition]\nstrategy = \"{s0}\"\n\
                 [[partition.override]]\nlayer = {layer}\nstrategy = \"{s1}\"\ndevices = [{dev0}, {dev1}]\n"
            );
            // Drop the keys that are hardest to get right at random, half the time each.
            let text = if with_acc { text } else { text.replace(&format!("accumulator_bits = {acc}\n"), "") };
            if with_override { text } else { text.split("[[partition.override]]").next().unwrap_or("").to_string() }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn edge_values_never_panic(text in valued()) {
        run(&text);
    }
}

#[test]
fn base_plans_are_valid() {
    let dir = std::env::temp_dir();
    for text in [BASE, CNN] {
        let p = plan::check_text("base.toml", text, &dir).expect("base plan is valid");
        design::build(p).expect("passes succeed");
    }
}
