//! Golden files of the generated output: for a one-device plan, a 2-device ring, 3 devices
//! relayed through the host and a one-device CNN, every file `partita gen` writes (Verilog, `$readmemh` images,
//! `regmap.json`, `partita_regs.h`, `system.json`, `files.f`, testbench) is kept under
//! `tests/golden/<case>/rtl/`. A change meant to leave the RTL alone leaves them byte-identical;
//! a change that alters the RTL shows its Verilog diff in review. Bless an intended change with
//! `INSTA_UPDATE=always cargo test -p partita-tests` and review `git diff tests/golden`.

use std::path::Path;

use partita_tests::{cli, compare_tree, lint, repo, top_of, TempDir};

const CASES: &[&str] = &["one_device", "ring2", "host3", "cnn1"];

fn golden_dir(case: &str) -> std::path::PathBuf {
    repo().join("tests/golden").join(case)
}

#[test]
fn generated_output_equals_golden_files() {
    let tmp = TempDir::new("goldrtl");
    let mut diffs = Vec::new();
    // The header names the plan as it was given: a path relative to the tests crate, the
    // directory cargo runs tests in, keeps the files the same on every machine.
    assert_eq!(std::env::current_dir().unwrap(), repo().join("tests"));
    for case in CASES {
        let out = tmp.path().join(case);
        let plan = format!("golden/{case}/plan.toml");
        let (code, _, err) = cli(&["gen", &plan, "-o", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{case}: {err}");
        for d in compare_tree(&golden_dir(case).join("rtl"), &out) {
            diffs.push(format!("{case}/{d}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "generated output differs from tests/golden (bless an intended change with \
         `INSTA_UPDATE=always cargo test -p partita-tests`):\n{}",
        diffs.join("\n")
    );
}

/// The directories of a golden set that hold a device's RTL (a `files.f`).
fn device_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = partita_tests::tree(root)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "files.f"))
        .map(|f| root.join(f.parent().unwrap()))
        .collect();
    dirs.sort();
    dirs
}

/// Every golden set lints clean: each device on its own, the single device with its testbench,
/// and all devices of a system together (`system.f`: no module is defined twice).
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn golden_sets_lint_clean() {
    for case in CASES {
        let root = golden_dir(case).join("rtl");
        let dirs = device_dirs(&root);
        assert!(!dirs.is_empty(), "{case}: no device directories");
        for dir in &dirs {
            let top = top_of(dir);
            lint(dir, &top, &["-f", "files.f"]).unwrap_or_else(|e| panic!("{e}"));
            if dir.join("partita_tb.v").exists() {
                lint(
                    dir,
                    "partita_tb",
                    &["--timing", "partita_tb.v", "-f", "files.f"],
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        if root.join("system.f").exists() {
            for dir in &dirs {
                lint(&root, &top_of(dir), &["-f", "system.f"]).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}
