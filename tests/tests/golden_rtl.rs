//! Golden files of the generated output: for a one-device plan, a 2-device ring and 3 devices
//! relayed through the host, every file `partita gen` writes (Verilog, `$readmemh` images,
//! `regmap.json`, `partita_regs.h`, `system.json`, `files.f`, testbench) is kept under
//! `tests/golden/<case>/rtl/`. A change meant to leave the RTL alone leaves them byte-identical;
//! a change that alters the RTL shows its Verilog diff in review. Bless an intended change with
//! `INSTA_UPDATE=always cargo test -p partita-tests` and review `git diff tests/golden`.

use std::path::Path;
use std::process::Command;

use partita_tests::{cli, compare_tree, have_tool, repo, TempDir};

const CASES: &[&str] = &["one_device", "ring2", "host3"];

fn golden_dir(case: &str) -> std::path::PathBuf {
    repo().join("tests/golden").join(case)
}

#[test]
fn generated_output_equals_golden_files() {
    let tmp = TempDir::new("goldrtl");
    let mut diffs = Vec::new();
    for case in CASES {
        let out = tmp.path().join(case);
        let plan = golden_dir(case).join("plan.toml");
        let (code, _, err) = cli(&["gen", plan.to_str().unwrap(), "-o", out.to_str().unwrap()]);
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

#[test]
fn golden_sets_lint_clean() {
    if !have_tool("verilator") {
        return;
    }
    for case in CASES {
        let dirs = device_dirs(&golden_dir(case).join("rtl"));
        assert!(!dirs.is_empty(), "{case}: no device directories");
        for dir in dirs {
            let out = Command::new("verilator")
                .args([
                    "--lint-only",
                    "-Wall",
                    "--top-module",
                    "partita_top",
                    "-f",
                    "files.f",
                ])
                .current_dir(&dir)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.trim().is_empty(),
                "{}: lint output:\n{text}",
                dir.display()
            );
        }
    }
}
