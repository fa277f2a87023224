//! Output that is complete or absent: files and directories are written under a temporary
//! name next to their destination and renamed into place, and the `partita` process that
//! watches the working child removes any temporary the child registered but did not finish.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child's environment: the file where it lists its temporaries, one per line.
pub const CHILD_ENV: &str = "PARTITA_CHILD_TEMPS";

/// A temporary name next to `dest`: `.NAME.partita-tmp-PID`, registered with the watcher.
pub fn temp_for(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(".{name}.partita-tmp-{}", std::process::id()));
    if let Some(list) = std::env::var_os(CHILD_ENV) {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(list) {
            let _ = writeln!(f, "{}", absolute(&tmp).display());
        }
    }
    tmp
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Remove a file or directory tree, whichever it is; missing is fine.
pub fn remove(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        6 => "SIGABRT: the process aborted, most often because an allocation failed or a library (such as a Verilator model) stopped it",
        9 => "SIGKILL: killed from outside, most often by the kernel's out-of-memory killer",
        11 => "SIGSEGV: an invalid memory access",
        7 => "SIGBUS: a bus error, e.g. a file that shrank while mapped",
        8 => "SIGFPE: an arithmetic fault",
        _ => "a signal",
    }
}

/// Run this binary again as a watched child with the same arguments and wait for it. Returns
/// the exit code to use, or `None` when the child could not be started (then the caller does
/// the work in process).
pub fn supervise() -> Option<u8> {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().ok()?;
    let list = std::env::temp_dir().join(format!("partita-{}.temps", std::process::id()));
    std::fs::File::create(&list).ok()?;
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, &list)
        .status();
    let status = match status {
        Ok(s) => s,
        Err(_) => {
            let _ = std::fs::remove_file(&list);
            return None;
        }
    };
    let temps = std::fs::read_to_string(&list).unwrap_or_default();
    let _ = std::fs::remove_file(&list);
    let abnormal = |what: String| {
        let mut removed = Vec::new();
        for t in temps.lines().filter(|l| !l.is_empty()) {
            let p = Path::new(t);
            if p.exists() {
                remove(p);
                removed.push(t.to_string());
            }
        }
        eprintln!("error: partita stopped abnormally: {what}");
        if removed.is_empty() {
            eprintln!("  no output was left half-written");
        } else {
            eprintln!("  removed unfinished output: {}", removed.join(", "));
        }
        eprintln!(
            "  help: if it ran out of memory, use a smaller model or input (README.md, \"Limits\"); otherwise this is a bug, please report it with the command line and plan"
        );
        Some(2)
    };
    match (status.code(), status.signal()) {
        (Some(c @ 0..=2), _) => Some(c as u8),
        (Some(101), _) => abnormal("an internal error (panic), reported above".into()),
        (Some(c), _) => abnormal(format!("exit status {c}")),
        (None, Some(sig)) => {
            // Ctrl-C reaches the whole process group; stay quiet about it.
            if sig == 2 || sig == 15 {
                let _ = abnormal(format!("signal {sig} (interrupted)"));
                return Some(130);
            }
            abnormal(format!("signal {sig} ({})", signal_name(sig)))
        }
        (None, None) => abnormal("an unknown status".into()),
    }
}

/// Check, before any work is spent, that `path` can be created as an output file: its
/// directory exists and it is not itself a directory. `flag` names the option in messages.
pub fn check_out_file(path: &Path, flag: &str) -> Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("{flag} `{shown}` is a directory; give a file path"));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!(
            "{flag} `{shown}`: the directory `{}` does not exist; create it first",
            parent.display()
        ));
    }
    Ok(())
}

/// Write an output array all at once: into a temporary next to `path`, then renamed over it.
pub fn write_npy(path: &Path, values: &ndarray::ArrayD<f64>) -> Result<(), partita_sim::Error> {
    let tmp = temp_for(path);
    let r = partita_sim::write_output(&tmp, values).map_err(|_| partita_sim::Error::Input {
        message: format!("cannot write `{}`", path.display()),
        help: "check that the output directory exists and is writable".into(),
    });
    let r = r.and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| partita_sim::Error::Input {
            message: format!("cannot write `{}`: {e}", path.display()),
            help: "check that the output directory exists and is writable".into(),
        })
    });
    if r.is_err() {
        remove(&tmp);
    }
    r
}

/// Write a text file all at once: into a temporary next to `path`, then renamed over it.
pub fn write_text(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = temp_for(path);
    let r = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        remove(&tmp);
    }
    r
}

/// In the watched child: if the watching parent goes away (killed by a signal it cannot
/// catch, such as a script's `kill` or `timeout`), remove this process's unfinished output and
/// exit, instead of running on unwatched. Checks every 200 ms from a background thread.
pub fn follow_parent(list: PathBuf) {
    use std::os::unix::process::parent_id;
    let parent = parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if parent_id() != parent {
            let temps = std::fs::read_to_string(&list).unwrap_or_default();
            for t in temps.lines().filter(|l| !l.is_empty()) {
                remove(Path::new(t));
            }
            let _ = std::fs::remove_file(&list);
            eprintln!("error: partita's watching process went away; stopping");
            std::process::exit(2);
        }
    });
}
