//! `partita gen`: write a design's RTL: Verilog, `$readmemh` images, the register map, file
//! lists (and a self-checking testbench for one device); one directory per device and
//! `system.json` for multi-device plans.

use std::path::{Path, PathBuf};

use partita_codegen::design;
use partita_codegen::emit::{self, File};

use super::{io_failure, Failure, GenFailure, WriteFailure};
use crate::cosim;

#[derive(clap::Args)]
pub struct Args {
    plan: PathBuf,
    /// Output directory (created if missing).
    #[arg(short = 'o', long, default_value = "rtl")]
    out: PathBuf,
}

pub(crate) fn run(a: Args, out: &mut dyn std::io::Write) -> Result<(), Failure> {
    let d = design::from_path(&a.plan)?;
    let vectors = (d.plan.devices == 1).then(|| cosim::tb_vectors(&d));
    let files = emit::generate(&d, vectors.as_ref()).map_err(GenFailure)?;
    write_files(&a.out, &files)?;
    writeln!(
        out,
        "gen: wrote {} files to {}",
        files.len(),
        a.out.display()
    )
    .map_err(io_failure)
}

/// Write generated files into `dir`, creating it.
pub fn write_files(dir: &Path, files: &[File]) -> Result<(), Failure> {
    let fail = |p: &Path, e: std::io::Error| -> Failure {
        WriteFailure {
            path: p.display().to_string(),
            source: e,
        }
        .into()
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    for f in files {
        let p = dir.join(&f.name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&p, &f.text).map_err(|e| fail(&p, e))?;
    }
    Ok(())
}
