//! Helpers for partita's end-to-end tests (the tests themselves are in `tests/tests/`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::ArrayD;
use partita_codegen::design::{self, Design};
use partita_codegen::plan;

/// Root of the repository.
/// Cases for a cosim property: `PROPTEST_CASES` when set (a longer run), else `default` (the
/// default run's few, each a Verilator build). A literal `cases` in a `ProptestConfig` would
/// override the variable, so the cosim properties take theirs from here.
pub fn cosim_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Fixed-width names: rendered messages wrap at the same place on every run.
        let p = std::env::temp_dir().join(format!(
            "partita-test-{tag}-{:010}-{:06}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Write a file into the directory and return its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run the `partita` CLI in process: (exit code, stdout, stderr), without colour.
pub fn cli(args: &[&str]) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("partita").chain(args.iter().copied());
    let code = partita_host::run(argv, &mut out, &mut err, false);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Validate plan text (paths relative to `dir`) and run every pass.
pub fn design_from_text(text: &str, dir: &Path) -> Design {
    let checked = plan::check_text("plan.toml", text, dir)
        .unwrap_or_else(|e| panic!("plan should be valid: {e:?}\n{text}"));
    design::build(checked).unwrap_or_else(|e| panic!("passes should succeed: {e:?}\n{text}"))
}

/// Read an .npy of f64.
pub fn read_f64(path: &Path) -> ArrayD<f64> {
    partita_sim::read_array(path).unwrap_or_else(|e| panic!("read {}: {e:?}", path.display()))
}

/// Max |a - b| of two arrays of equal shape.
pub fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Unit-normal inputs from a seed.
pub fn normal_input(shape: &[usize], seed: u64) -> ArrayD<f64> {
    let mut rng = partita_codegen::weights::SplitMix64::new(seed);
    let n = shape.iter().product();
    ArrayD::from_shape_vec(shape.to_vec(), (0..n).map(|_| rng.normal()).collect())
        .expect("shape matches")
}

/// A safetensors file of f32 tensors: `(name, shape)`, values from a seed.
pub fn safetensors_bytes(tensors: &[(String, Vec<usize>)], seed: u64) -> Vec<u8> {
    let mut rng = partita_codegen::weights::SplitMix64::new(seed);
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, shape)| {
            let count: usize = shape.iter().product();
            let bytes = (0..count)
                .flat_map(|_| (rng.uniform(0.3) as f32).to_le_bytes())
                .collect();
            (n.to_string(), shape.clone(), bytes)
        })
        .collect();
    let views = data.iter().map(|(n, shape, bytes)| {
        let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
            .expect("consistent tensor");
        (n.clone(), v)
    });
    safetensors::serialize(views, None).expect("serialize")
}

/// The four tensors of an nn.LSTM layer.
pub fn lstm_tensors(
    prefix: &str,
    layer: usize,
    input: usize,
    hidden: usize,
) -> Vec<(String, Vec<usize>)> {
    vec![
        (
            format!("{prefix}weight_ih_l{layer}"),
            vec![4 * hidden, input],
        ),
        (
            format!("{prefix}weight_hh_l{layer}"),
            vec![4 * hidden, hidden],
        ),
        (format!("{prefix}bias_ih_l{layer}"), vec![4 * hidden]),
        (format!("{prefix}bias_hh_l{layer}"), vec![4 * hidden]),
    ]
}

/// The Verilog files a generated directory's `files.f` lists.
pub fn rtl_sources(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("files.f"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("//") && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// `verilator --lint-only -Wall` (with `extra` arguments) in `dir` with `top` as the top module:
/// Ok only when it prints nothing at all.
pub fn lint(dir: &Path, top: &str, extra: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("verilator")
        .args(["--lint-only", "-Wall", "--top-module", top])
        .args(extra)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("verilator: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{}: lint output:\n{text}", dir.display()))
    }
}

/// The top module of a generated device directory (from its `regmap.json`).
pub fn top_of(dir: &Path) -> String {
    let map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("regmap.json")).unwrap()).unwrap();
    map["top"].as_str().unwrap().to_string()
}

/// Yosys on a generated directory: full `synth`, or its coarse part through memory inference;
/// an error when any latch is inferred.
pub fn yosys_no_latches(dir: &Path, full: bool) -> Result<(), String> {
    yosys_no_latches_top(dir, &top_of(dir), full)
}

/// [`yosys_no_latches`] with an explicit top module.
pub fn yosys_no_latches_top(dir: &Path, top: &str, full: bool) -> Result<(), String> {
    let files = rtl_sources(dir).join(" ");
    let synth = if full {
        format!("synth -top {top}")
    } else {
        format!("synth -top {top} -run :fine")
    };
    let script = format!(
        "read_verilog {files}; {synth}; select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$_DLATCH_* t:$_DLATCHSR_*"
    );
    let out = std::process::Command::new("yosys")
        .args(["-q", "-p", &script])
        .current_dir(dir)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether golden files should be rewritten instead of compared: the same switch as insta's
/// snapshots, so one command blesses everything (`INSTA_UPDATE=always cargo test -p partita-tests`).
pub fn blessing() -> bool {
    std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always")
}

/// Every file under `dir`, as paths relative to it, sorted.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Compare the generated tree `actual` with the golden tree `golden`, file by file, byte for
/// byte. When [`blessing`], rewrite `golden` to equal `actual` instead. Returns what differs.
pub fn compare_tree(golden: &Path, actual: &Path) -> Vec<String> {
    let (want, got) = (tree(golden), tree(actual));
    if blessing() {
        let _ = std::fs::remove_dir_all(golden);
        for f in &got {
            let to = golden.join(f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(actual.join(f), &to).unwrap();
        }
        return Vec::new();
    }
    let mut diffs = Vec::new();
    for f in want.iter().filter(|f| !got.contains(f)) {
        diffs.push(format!("{}: no longer generated", f.display()));
    }
    for f in got.iter().filter(|f| !want.contains(f)) {
        diffs.push(format!(
            "{}: generated, but not in the golden files",
            f.display()
        ));
    }
    for f in got.iter().filter(|f| want.contains(f)) {
        let a = std::fs::read_to_string(golden.join(f)).unwrap_or_default();
        let b = std::fs::read_to_string(actual.join(f)).unwrap_or_default();
        if a != b {
            let line = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(a.lines().count().min(b.lines().count()));
            diffs.push(format!(
                "{}: differs from line {} on\n  golden:    {}\n  generated: {}",
                f.display(),
                line + 1,
                a.lines().nth(line).unwrap_or("<end of file>"),
                b.lines().nth(line).unwrap_or("<end of file>")
            ));
        }
    }
    diffs
}
