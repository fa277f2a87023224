//! `scripts/torch_export.py` on real torch modules: an nn.Sequential CNN and an nn.LSTM become
//! a safetensors file and a plan that `partita check` accepts, and partita's float golden
//! model on that plan equals the module's own forward pass; what partita cannot express is
//! refused with the layer and the reason (exit 2).

use partita_tests::{cli, repo, TempDir};

fn python(dir: &std::path::Path, script: &str) -> (bool, String) {
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .current_dir(dir)
        .env("PYTHONPATH", repo().join("scripts"))
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Export `model_expr` (Python, with `torch` and `nn` in scope), run it on `x_shape` random
/// inputs in torch, and compare partita's float golden model on the exported plan.
fn round_trip(tmp: &TempDir, name: &str, model_expr: &str, x_shape: &str, input_shape: &str) {
    let script = format!(
        r#"
import numpy as np, torch
from torch import nn
from torch_export import export
torch.manual_seed(3)
torch.set_default_dtype(torch.float64)
m = {model_expr}
m.eval()
export(m, ".", name="{name}", input_shape={input_shape})
x = torch.randn({x_shape})
with torch.no_grad():
    y = m(x)
    if isinstance(y, tuple):
        y = y[0]
np.save("{name}_x.npy", x.numpy())
np.save("{name}_y.npy", y.numpy())
"#
    );
    let (ok, out) = python(tmp.path(), &script);
    assert!(ok, "{name}: {out}");
    let plan = tmp.path().join(format!("{name}.toml"));
    let (code, _, err) = cli(&["check", plan.to_str().unwrap()]);
    assert_eq!(code, 0, "{name}: {err}");
    let y = tmp.path().join(format!("{name}_golden.npy"));
    let (code, _, err) = cli(&[
        "golden",
        plan.to_str().unwrap(),
        "--input",
        tmp.path().join(format!("{name}_x.npy")).to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
        "--float",
    ]);
    assert_eq!(code, 0, "{name}: {err}");
    let golden = partita_tests::read_f64(&y);
    let torch = partita_tests::read_f64(&tmp.path().join(format!("{name}_y.npy")));
    // The weights travel as float32 (as a trained model's do): both sides use those values.
    let err = partita_tests::max_abs_diff(&golden, &torch);
    println!("{name}: max |partita float - torch| = {err:e}");
    assert!(err < 1e-5, "{name}: {err}");
}

#[test]
#[cfg_attr(
    not(have_torch),
    ignore = "needs python3 with torch and numpy (bash scripts/ensure-tools.sh --torch)"
)]
fn torch_modules_export_to_plans_that_compute_the_same() {
    let tmp = TempDir::new("torchexp");
    round_trip(
        &tmp,
        "cnn",
        "nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2), \
         nn.Conv2d(4, 6, (3, 3), stride=2, padding=1, bias=False), nn.ReLU(), nn.Flatten(), \
         nn.Linear(24, 7), nn.ReLU(), nn.Linear(7, 3))",
        "5, 2, 9, 9",
        "(2, 9, 9)",
    );
    // Weights rounded to float32 in the module too, so torch computes with what was written.
    round_trip(
        &tmp,
        "lstm",
        "(lambda l: [p.data.copy_(p.data.float().double()) for p in l.parameters()] and l)\
         (nn.LSTM(5, 7, num_layers=2, batch_first=True))",
        "2, 6, 5",
        "None",
    );
}

#[test]
#[cfg_attr(
    not(have_torch),
    ignore = "needs python3 with torch and numpy (bash scripts/ensure-tools.sh --torch)"
)]
fn unsupported_modules_are_refused_with_the_reason() {
    let tmp = TempDir::new("torchbad");
    let script = repo().join("scripts/torch_export.py");
    for (model, want) in [
        (
            "nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid())",
            "layer 1 (Sigmoid) is not supported",
        ),
        (
            "nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2))",
            "partita takes dilation 1",
        ),
        (
            "nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(2, 3))",
            "does not run on input shape",
        ),
        ("nn.LSTM(3, 4, bidirectional=True)", "bidirectional=True"),
    ] {
        let py = tmp.write(
            "m.py",
            format!("import torch\nfrom torch import nn\nmodel = {model}\n"),
        );
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(format!("{}:model", py.display()))
            .args(["--out", "o", "--input-shape", "1,6,6"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{model}: {err}");
        assert!(err.contains(want), "{model}: {err}");
    }
}
