//! `partita gen`: write a design's RTL: Verilog, `$readmemh` images, the register map, file
//! lists (and a self-checking testbench for one device); one directory per device and
//! `system.json` for multi-device plans.

use std::path::{Path, PathBuf};

use partita_codegen::design;
use partita_codegen::emit::{self, File};

use super::{io_failure, temp, ArgFailure, Failure, GenFailure, WriteFailure};
use crate::cosim;

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Output directory (created if missing).
    #[arg(short = 'o', long, default_value = "rtl")]
    out: PathBuf,
    /// Also write a board wrapper: `xdma` (a Verilog top behind a Xilinx XDMA core and the
    /// Vivado Tcl that builds its block design; untested on hardware).
    #[arg(long)]
    board: Option<String>,
    /// The Vivado part for --board xdma (default: the plan's board preset's, if it has one).
    #[arg(long)]
    part: Option<String>,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let d = design::from_path(&a.plan)?;
    check_out_dir(&a.out)?;
    let vectors = (d.plan.devices == 1).then(|| cosim::tb_vectors(&d));
    let mut files = emit::generate(&d, vectors.as_ref()).map_err(GenFailure)?;
    match a.board.as_deref() {
        None => {
            if a.part.is_some() {
                return Err(ArgFailure("--part goes with --board xdma".into()).into());
            }
        }
        Some("xdma") => {
            let part = match &a.part {
                Some(p) => p.clone(),
                None => d
                    .plan
                    .targets
                    .first()
                    .and_then(|t| t.board)
                    .and_then(|b| b.xdma_part)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ArgFailure(
                            "--board xdma needs the FPGA's Vivado part: give --part (such as xcu280-fsvh2892-2L-e, an Alveo U280) or [target] board = \"alveo-u280\"".into(),
                        )
                    })?,
            };
            emit::board::check_part(&part).map_err(|e| ArgFailure(format!("--part: {e}")))?;
            let mut extra = Vec::new();
            for dev in 0..d.plan.devices {
                let prefix = if d.plan.devices > 1 {
                    format!("dev{dev}/")
                } else {
                    String::new()
                };
                let mine = |f: &emit::File| {
                    f.name
                        .strip_prefix(&prefix)
                        .filter(|n| !n.contains('/'))
                        .map(str::to_string)
                };
                // The Verilog in files.f order; the memory images (not the testbench's).
                let sources: Vec<String> = files
                    .iter()
                    .find(|f| mine(f).as_deref() == Some("files.f"))
                    .map(|f| {
                        f.text
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with("//"))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let images: Vec<String> = files
                    .iter()
                    .filter_map(mine)
                    .filter(|n| n.ends_with(".hex") && !n.starts_with("tb_"))
                    .collect();
                for f in emit::board::xdma(&d, dev, &sources, &images, &part).map_err(GenFailure)? {
                    extra.push(emit::File {
                        name: format!("{prefix}{}", f.name),
                        text: f.text,
                    });
                }
            }
            files.extend(extra);
        }
        Some(other) => {
            return Err(ArgFailure(format!(
                "unknown board wrapper `{other}` for --board; allowed: xdma"
            ))
            .into())
        }
    }
    write_files(&a.out, &files)?;
    writeln!(
        out,
        "gen: wrote {} files to {}",
        files.len(),
        a.out.display()
    )
    .map_err(io_failure)
}

/// Write generated files into `dir`: all of them, or none. They are written into a temporary
/// directory next to `dir`, which then replaces `dir`. An existing `dir` is replaced only if
/// it is empty or holds an earlier `partita gen` output (a `files.f` or `system.json`), so a
/// directory of the user's own files is never deleted.
pub fn write_files(dir: &Path, files: &[File]) -> Result<(), Failure> {
    let fail = |p: &Path, e: std::io::Error| -> Failure {
        WriteFailure {
            path: p.display().to_string(),
            source: e,
        }
        .into()
    };
    check_out_dir(dir)?;
    let tmp = temp::temp_for(dir);
    temp::remove(&tmp);
    let written = (|| -> Result<(), Failure> {
        std::fs::create_dir_all(&tmp).map_err(|e| fail(dir, e))?;
        // A negative control for the watcher (README.md, "Tests"): abort half-way through.
        let abort_at = (std::env::var("PARTITA_FAULT").as_deref() == Ok("abort-in-gen"))
            .then_some(files.len() / 2);
        for (i, f) in files.iter().enumerate() {
            if abort_at == Some(i) {
                std::process::abort();
            }
            let p = tmp.join(&f.name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| fail(&dir.join(&f.name), e))?;
            }
            std::fs::write(&p, &f.text).map_err(|e| fail(&dir.join(&f.name), e))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        temp::remove(&tmp);
        return Err(e);
    }
    // Swap: the old output moves aside, the new one moves in, the old one goes.
    let old = dir.with_file_name(format!(
        ".{}.partita-old-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let had_old = dir.exists();
    if had_old {
        if let Err(e) = std::fs::rename(dir, &old) {
            temp::remove(&tmp);
            return Err(fail(dir, e));
        }
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        if had_old {
            let _ = std::fs::rename(&old, dir);
        }
        temp::remove(&tmp);
        return Err(fail(dir, e));
    }
    if had_old {
        temp::remove(&old);
    }
    Ok(())
}

/// Refuse an output path that is a file, or a directory with files partita did not write.
pub fn check_out_dir(dir: &Path) -> Result<(), Failure> {
    let shown = dir.display();
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(ArgFailure(format!(
                "cannot write `{shown}`: its parent directory `{}` does not exist; create it first, or give -o a path in an existing directory",
                parent.display()
            ))
            .into());
        }
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(ArgFailure(format!(
            "`{shown}` exists and is not a directory; -o takes a directory (give a new path, or remove the file)"
        ))
        .into());
    }
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| WriteFailure {
            path: shown.to_string(),
            source: e,
        })?
        .filter_map(Result::ok)
        .collect();
    let ours = dir.join("files.f").is_file() || dir.join("system.json").is_file();
    if !entries.is_empty() && !ours {
        return Err(ArgFailure(format!(
            "`{shown}` is a directory with {} entries that `partita gen` did not write; gen replaces its output directory whole, so give an empty or new directory, or an earlier gen output",
            entries.len()
        ))
        .into());
    }
    Ok(())
}
