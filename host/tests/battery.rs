//! The hostile-input battery: every line of `tests/battery.txt` runs the real `partita`
//! binary (with its watcher process) on one bad input and checks the exit code, a fragment of
//! the message, that a failure prints nothing on stdout, and that it leaves no file behind.
//! The case format is described at the top of that file.
//!
//! Run it alone with `cargo test -p partita-host --test battery`; one case with
//! `BATTERY_CASE=name cargo test -p partita-host --test battery -- --nocapture`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_partita");

const LSTM: &str = "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n";
const LSTM2: &str = "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n\
[target]\ndevices = 2\n[target.link]\nlatency = 4\n[partition]\nstrategy = \"rows\"\n";
const BBS: &str = "[model]\nkind = \"lstm\"\ninput_size = 24\nhidden_size = 16\nseed = 1\n\
[sparsity]\nkind = \"bbs\"\nbanks = 4\ndensity = 0.5\n";
const CNN: &str = "[model]\nkind = \"cnn\"\ninput_shape = [1, 8, 8]\nseed = 1\n\
[[model.layer]]\ntype = \"conv2d\"\nout_channels = 4\nkernel = 3\n\
[[model.layer]]\ntype = \"relu\"\n\
[[model.layer]]\ntype = \"flatten\"\n\
[[model.layer]]\ntype = \"dense\"\nout_features = 3\n";
/// A plan that reads `w.safetensors` next to it (the fixtures write variants of it).
const LSTM_W: &str =
    "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nweights = \"w.safetensors\"\n";
const CNN_W: &str =
    "[model]\nkind = \"cnn\"\ninput_shape = [1, 8, 8]\nweights = \"w.safetensors\"\n\
[[model.layer]]\ntype = \"conv2d\"\nout_channels = 4\nkernel = 3\n\
[[model.layer]]\ntype = \"flatten\"\n\
[[model.layer]]\ntype = \"dense\"\nout_features = 3\n";

fn base(name: &str) -> &'static str {
    match name {
        "lstm" => LSTM,
        "lstm2" => LSTM2,
        "bbs" => BBS,
        "cnn" => CNN,
        "lstm_w" => LSTM_W,
        "cnn_w" => CNN_W,
        "empty" => "",
        other => panic!("battery: unknown base plan `{other}`"),
    }
}

/// Set `path` (dotted; numbers index arrays) to a TOML value, or remove it with `!`.
fn edit(doc: &mut toml::Value, path: &str, value: &str) {
    let keys: Vec<&str> = path.split('.').collect();
    let mut cur: &mut toml::Value = doc;
    for k in &keys[..keys.len() - 1] {
        cur = match cur {
            toml::Value::Table(t) => t
                .entry(k.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            toml::Value::Array(a) => {
                let i: usize = k.parse().expect("array index");
                while a.len() <= i {
                    a.push(toml::Value::Table(toml::Table::new()));
                }
                &mut a[i]
            }
            _ => panic!("battery: `{path}` goes through a value"),
        };
    }
    let last = keys[keys.len() - 1];
    let toml::Value::Table(t) = cur else {
        panic!("battery: `{path}` does not end in a table");
    };
    if value == "!" {
        t.remove(last);
    } else {
        let v: toml::Table = toml::from_str(&format!("v = {value}"))
            .unwrap_or_else(|e| panic!("battery: bad value `{value}`: {e}"));
        t.insert(last.to_string(), v["v"].clone());
    }
}

struct Fixtures {
    dir: PathBuf,
}

fn safetensors_file(tensors: &[(&str, Vec<usize>)], dtype_f32: bool) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .enumerate()
        .map(|(k, (n, shape))| {
            let count: usize = shape.iter().product();
            let bytes: Vec<u8> = (0..count)
                .flat_map(|i| {
                    let v = ((i * 7 + k * 3) % 17) as f32 / 40.0 - 0.2;
                    if dtype_f32 {
                        v.to_le_bytes().to_vec()
                    } else {
                        (v as f64).to_le_bytes().to_vec()
                    }
                })
                .collect();
            (n.to_string(), shape.clone(), bytes)
        })
        .collect();
    let dtype = if dtype_f32 {
        safetensors::Dtype::F32
    } else {
        safetensors::Dtype::F64
    };
    let views = data.iter().map(|(n, shape, bytes)| {
        (
            n.clone(),
            safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes).expect("view"),
        )
    });
    safetensors::serialize(views, None).expect("serialize")
}

fn lstm_tensors(layers: usize) -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    for l in 0..layers {
        let i = if l == 0 { 4 } else { 8 };
        v.push((format!("weight_ih_l{l}"), vec![32, i]));
        v.push((format!("weight_hh_l{l}"), vec![32, 8]));
        v.push((format!("bias_ih_l{l}"), vec![32]));
        v.push((format!("bias_hh_l{l}"), vec![32]));
    }
    v
}

fn npy(shape: &[usize], descr: &str, values: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(values);
    out
}

fn f64s(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (((i % 13) as f64) / 10.0 - 0.6).to_le_bytes())
        .collect()
}

impl Fixtures {
    /// Shared, read-only inputs; cases copy what they modify.
    fn new(root: &Path) -> Fixtures {
        let dir = root.join("fixtures");
        std::fs::create_dir_all(&dir).unwrap();
        let w = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
        w("x.npy", &npy(&[2, 3, 4], "<f8", &f64s(24)));
        w("x_seq.npy", &npy(&[3, 4], "<f8", &f64s(12)));
        w("x_f32.npy", &{
            let v: Vec<u8> = (0..24)
                .flat_map(|i| (i as f32 / 30.0).to_le_bytes())
                .collect();
            npy(&[2, 3, 4], "<f4", &v)
        });
        w("x_int.npy", &npy(&[2, 3, 4], "<i8", &[0u8; 24 * 8]));
        w("x_wide.npy", &npy(&[2, 3, 5], "<f8", &f64s(30)));
        w("x_rank1.npy", &npy(&[4], "<f8", &f64s(4)));
        w("x_rank4.npy", &npy(&[1, 2, 3, 4], "<f8", &f64s(24)));
        w("x_zero.npy", &npy(&[0, 3, 4], "<f8", &[]));
        w("x_trunc.npy", &{
            let mut b = npy(&[2, 3, 4], "<f8", &f64s(24));
            b.truncate(b.len() - 40);
            b
        });
        w("x_hdrtrunc.npy", &npy(&[2, 3, 4], "<f8", &f64s(24))[..20]);
        w("x_nan.npy", &{
            let mut v = f64s(24);
            v[8..16].copy_from_slice(&f64::NAN.to_le_bytes());
            npy(&[2, 3, 4], "<f8", &v)
        });
        w("x_inf.npy", &{
            let mut v = f64s(24);
            v[0..8].copy_from_slice(&f64::INFINITY.to_le_bytes());
            npy(&[2, 3, 4], "<f8", &v)
        });
        w(
            "x_huge_shape.npy",
            &npy(&[100000, 100000, 4], "<f8", &f64s(8)),
        );
        w("x_long.npy", &npy(&[1, 2000, 4], "<f8", &f64s(8000)));
        w("x_cnn.npy", &npy(&[1, 8, 8], "<f8", &f64s(64)));
        w("x_cnn_bad.npy", &npy(&[1, 7, 8], "<f8", &f64s(56)));
        w("x_text.npy", b"this is not an array\n");
        w("x_empty.npy", b"");
        let lstm1 = lstm_tensors(1);
        let st = |v: Vec<(String, Vec<usize>)>, f32: bool| {
            let r: Vec<(&str, Vec<usize>)> =
                v.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
            safetensors_file(&r, f32)
        };
        w("w_ok.safetensors", &st(lstm1.clone(), true));
        w("w_f64.safetensors", &st(lstm1.clone(), false));
        w("w_2layer.safetensors", &st(lstm_tensors(2), true));
        w(
            "w_extra.safetensors",
            &st(
                lstm1
                    .iter()
                    .cloned()
                    .chain([("fc.weight".to_string(), vec![3, 8])])
                    .collect(),
                true,
            ),
        );
        w(
            "w_prefixed.safetensors",
            &st(
                lstm1
                    .iter()
                    .map(|(n, s)| (format!("enc.lstm.{n}"), s.clone()))
                    .collect(),
                true,
            ),
        );
        w("w_missing.safetensors", &st(lstm1[..3].to_vec(), true));
        w(
            "w_wrongshape.safetensors",
            &st(
                lstm1
                    .iter()
                    .map(|(n, s)| {
                        if n == "weight_hh_l0" {
                            (n.clone(), vec![32, 9])
                        } else {
                            (n.clone(), s.clone())
                        }
                    })
                    .collect(),
                true,
            ),
        );
        let good = st(lstm1.clone(), true);
        w("w_trunc.safetensors", &good[..good.len() - 100]);
        w("w_tiny.safetensors", &good[..5]);
        w("w_hdrtrunc.safetensors", &good[..40]);
        // A header whose shape disagrees with the byte range of one tensor.
        w("w_badshape.safetensors", &{
            let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
            let header = String::from_utf8(good[8..8 + n].to_vec()).unwrap();
            let bad = header.replacen("[32,8]", "[32,7]", 1);
            assert_ne!(bad, header, "fixture: the header has a [32,8] shape");
            let mut b = (bad.len() as u64).to_le_bytes().to_vec();
            b.extend(bad.as_bytes());
            b.extend(&good[8 + n..]);
            b
        });
        w("w_json.safetensors", &{
            let h = b"{not json";
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend(h);
            b
        });
        w("w_nan.safetensors", &{
            let mut b = good.clone();
            let l = b.len();
            b[l - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
            b
        });
        let cnn: Vec<(String, Vec<usize>)> = vec![
            ("0.weight".into(), vec![4, 1, 3, 3]),
            ("0.bias".into(), vec![4]),
            ("2.weight".into(), vec![3, 144]),
            ("2.bias".into(), vec![3]),
        ];
        w("w_cnn.safetensors", &st(cnn.clone(), true));
        let extra = cnn.into_iter().chain([("5.weight".into(), vec![2, 3])]);
        w("w_cnn_extra.safetensors", &st(extra.collect(), true));
        w(
            "plan_binary.toml",
            &(0..200u32)
                .map(|i| (i * 37 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        w("plan_latin1.toml", b"[model]\nkind = \"lstm\" # caf\xe9\n");
        std::fs::create_dir_all(dir.join("a_dir")).unwrap();
        // Generated RTL to damage: the LSTM base plan's single-device output.
        std::fs::write(dir.join("lstm.toml"), LSTM).unwrap();
        std::fs::write(dir.join("lstm2.toml"), LSTM2).unwrap();
        for (plan, out) in [("lstm.toml", "rtl"), ("lstm2.toml", "rtl2")] {
            let st = Command::new(BIN)
                .args(["gen", plan, "-o", out])
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(st.status.success(), "fixture gen: {st:?}");
        }
        Fixtures { dir }
    }
}

/// Copy a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// Every path under `dir`, relative.
fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                out.insert(p.strip_prefix(dir).unwrap().display().to_string());
                if p.is_dir() {
                    stack.push(p);
                }
            }
        }
    }
    out
}

/// Expand one argument token in the case's directory.
fn expand(tok: &str, case_dir: &Path, fx: &Fixtures, n: &mut usize) -> String {
    let Some(inner) = tok.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        return tok.to_string();
    };
    let (kind, arg) = inner.split_once(':').unwrap_or((inner, ""));
    *n += 1;
    match kind {
        // {plan:BASE;key=value;key=!}: a base plan with edits.
        "plan" => {
            let mut parts = arg.split(';');
            let b = parts.next().unwrap_or("lstm");
            let table: toml::Table = toml::from_str(base(b)).expect("base plan parses");
            let mut doc = toml::Value::Table(table);
            for e in parts.filter(|e| !e.is_empty()) {
                let (k, v) = e.split_once('=').expect("edit is key=value");
                edit(&mut doc, k.trim(), v.trim());
            }
            let text = if b == "empty" && arg == "empty" {
                String::new()
            } else {
                toml::to_string(&doc).expect("serialize plan")
            };
            let p = case_dir.join(format!("plan{n}.toml"));
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        }
        // {raw:TEXT}: a plan file with this text (\n and \t escapes).
        "raw" => {
            let p = case_dir.join(format!("raw{n}.toml"));
            std::fs::write(&p, arg.replace("\\n", "\n").replace("\\t", "\t")).unwrap();
            p.display().to_string()
        }
        // {fx:NAME}: a shared fixture, copied into the case directory (a tree is copied whole).
        "fx" => {
            let from = fx.dir.join(arg);
            let to = case_dir.join(arg);
            if from.is_dir() {
                copy_tree(&from, &to);
            } else {
                std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("fixture {arg}: {e}"));
            }
            to.display().to_string()
        }
        // {out:NAME}: a path in the case directory that does not exist yet.
        "out" => case_dir.join(arg).display().to_string(),
        "tmp" => case_dir.display().to_string(),
        other => panic!("battery: unknown token kind `{other}`"),
    }
}

/// Apply a setup step before the command: `rm PATH`, `write PATH TEXT`, `line PATH N TEXT`
/// (replace line N), `append PATH TEXT`, `mkdir PATH`, `fifo PATH`, `copy FIXTURE DEST`;
/// paths are in the case directory.
fn setup(step: &str, case_dir: &Path, fx: &Fixtures) {
    let mut it = step.splitn(3, ' ');
    let (op, path) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
    let rest = it.next().unwrap_or("");
    let p = case_dir.join(path);
    match op {
        "rm" => std::fs::remove_file(&p).unwrap_or_else(|e| panic!("setup rm {path}: {e}")),
        "write" => std::fs::write(&p, rest.replace("\\n", "\n")).unwrap(),
        "line" => {
            let (n, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let n: usize = n.parse().unwrap();
            let old = std::fs::read_to_string(&p).unwrap();
            let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
            lines[n - 1] = text.to_string();
            std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        }
        "append" => {
            let mut old = std::fs::read_to_string(&p).unwrap();
            old.push_str(&rest.replace("\\n", "\n"));
            std::fs::write(&p, old).unwrap();
        }
        "mkdir" => std::fs::create_dir_all(&p).unwrap(),
        // copy FIXTURE DEST
        "copy" => {
            std::fs::copy(fx.dir.join(path), case_dir.join(rest))
                .unwrap_or_else(|e| panic!("setup copy {path}: {e}"));
        }
        "fifo" => {
            let st = Command::new("mkfifo").arg(&p).status().unwrap();
            assert!(st.success());
        }
        other => panic!("battery: unknown setup `{other}`"),
    }
}

struct Case {
    line: usize,
    name: String,
    code: i32,
    fragment: String,
    setup: Vec<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    /// Files the case may leave (outputs of a run expected to succeed, or the mismatch file).
    leaves: Vec<String>,
}

/// Split on whitespace, except inside `{...}` (plan edits hold arrays like `[1, 2]`).
fn tokens(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for ch in s.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if ch.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(ch);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.splitn(4, " | ").collect();
        assert_eq!(f.len(), 4, "battery.txt line {}: four fields", i + 1);
        let mut setup = Vec::new();
        let mut env = Vec::new();
        let mut leaves = Vec::new();
        let mut args = Vec::new();
        for part in f[3].split(" && ") {
            let part = part.trim();
            if let Some(s) = part.strip_prefix("setup ") {
                setup.push(s.to_string());
            } else if let Some(s) = part.strip_prefix("leaves ") {
                leaves.extend(s.split_whitespace().map(str::to_string));
            } else {
                for tok in tokens(part) {
                    match tok.split_once('=') {
                        Some((k, v)) if k.starts_with("PARTITA_") && args.is_empty() => {
                            env.push((k.to_string(), v.to_string()))
                        }
                        _ => args.push(tok),
                    }
                }
            }
        }
        out.push(Case {
            line: i + 1,
            name: f[0].trim().to_string(),
            code: f[1].trim().parse().expect("exit code"),
            fragment: f[2].trim().to_string(),
            setup,
            env,
            args,
            leaves,
        });
    }
    out
}

#[test]
fn hostile_inputs() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/battery.txt"))
            .unwrap();
    let cases = parse(&text);
    let only = std::env::var("BATTERY_CASE").ok();
    let root = std::env::temp_dir().join(format!("partita-battery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let fx = Fixtures::new(&root);
    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in &cases {
        assert!(
            names.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
        if only.as_deref().is_some_and(|o| o != c.name) {
            continue;
        }
        ran += 1;
        let dir = root.join(&c.name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut n = 0;
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| expand(a, &dir, &fx, &mut n))
            .collect();
        for s in &c.setup {
            setup(s, &dir, &fx);
        }
        let before = listing(&dir);
        let out = Command::new(BIN)
            .args(&args)
            .envs(c.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .current_dir(&dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        let after = listing(&dir);
        let mut why = Vec::new();
        if code != c.code {
            why.push(format!("exit {code}, expected {}", c.code));
        }
        let shown = format!("{stdout}{stderr}").replace('\n', " ");
        let shown: String = shown.split_whitespace().collect::<Vec<_>>().join(" ");
        let frag: String = c.fragment.split_whitespace().collect::<Vec<_>>().join(" ");
        // Messages wrap at 100 columns with a gutter; compare with the gutter removed.
        let flat = shown.replace(" │ ", " ").replace("│ ", "");
        if !flat.contains(&frag) {
            why.push(format!("message lacks `{}`", c.fragment));
        }
        if c.code == 2 {
            if !stdout.trim().is_empty() {
                why.push("printed on stdout although it failed".into());
            }
            if stderr.trim().is_empty() {
                why.push("failed without a message".into());
            }
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            why.push("panicked".into());
        }
        let new: Vec<&String> = after
            .difference(&before)
            .filter(|p| !c.leaves.iter().any(|l| p.starts_with(l.as_str())))
            .collect();
        if !new.is_empty() {
            why.push(format!("left files behind: {new:?}"));
        }
        if !why.is_empty() {
            failures.push(format!(
                "battery.txt:{} {}: {}\n    args: {:?}\n    stderr: {}",
                c.line,
                c.name,
                why.join("; "),
                args,
                stderr
                    .lines()
                    .take(12)
                    .collect::<Vec<_>>()
                    .join("\n            ")
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    println!("battery: {ran} cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {ran} battery cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if only.is_none() {
        assert!(
            ran >= 150,
            "the battery keeps at least 150 cases; it has {ran}"
        );
    }
}

/// The watcher's child does not outlive it: killing the `partita` process with a signal it
/// cannot catch (as `timeout -s KILL` or a script would) stops the work within a second, and
/// no output appears.
#[test]
fn child_stops_when_the_watcher_is_killed() {
    let dir = std::env::temp_dir().join(format!("partita-follow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        "[model]\nkind = \"lstm\"\ninput_size = 64\nhidden_size = 256\nseed = 1\n",
    )
    .unwrap();
    // 40 000 steps: about half a minute of golden model, far longer than this test waits.
    std::fs::write(
        dir.join("x.npy"),
        npy(&[1, 40_000, 64], "<f8", &f64s(40_000 * 64)),
    )
    .unwrap();
    let mut parent = Command::new(BIN)
        .args(["golden", "p.toml", "--input", "x.npy", "--output", "y.npy"])
        .current_dir(&dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = parent.id();
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|c| c.parse().ok())
            .collect()
    };
    let t0 = std::time::Instant::now();
    let child = loop {
        if let Some(c) = children(pid).first() {
            break *c;
        }
        assert!(
            t0.elapsed().as_secs() < 20,
            "the watcher never started a child"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    parent.kill().unwrap();
    parent.wait().unwrap();
    let t1 = std::time::Instant::now();
    let alive = |c: u32| {
        std::fs::read_to_string(format!("/proc/{c}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    while alive(child) {
        assert!(
            t1.elapsed().as_secs() < 5,
            "the child {child} still runs 5 s after its watcher was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!dir.join("y.npy").exists(), "no output from a stopped run");
    let _ = std::fs::remove_dir_all(&dir);
}
