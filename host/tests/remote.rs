//! Work on other machines, tested on this one. Remote boards on loopback: real `partita
//! serve` processes on 127.0.0.1, driven by
//! `partita run --backend remote` and by the remote device directly. Runs equal golden (one
//! device, and three devices relayed by the host); leases fence out a second client; tokens
//! are checked; and a server killed, stopped or cut off mid-run ends the run with an error
//! naming the device, never a hang (every child process runs under a deadline). And the
//! Slurm job array of `report --sweep --slurm`, run task by task.
//!
//! The servers serve simulated devices, so these tests need verilator; without it they are
//! reported as skipped (ignored).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use partita_hdl::regs;
use partita_host::driver::{Device, DeviceError};
use partita_host::remote::client::{Connect, RemoteDevice};

const BIN: &str = env!("CARGO_BIN_EXE_partita");

/// One device, 4 inputs, 8 hidden units.
const ONE: &str = "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 5\n";
/// Three devices whose links the host relays.
const RELAY: &str = "[model]\nkind = \"lstm\"\ninput_size = 8\nhidden_size = 8\nnum_layers = 2\nseed = 11\n\
[sparsity]\nkind = \"dense\"\nbanks = 4\n[target]\ndevices = 3\n[target.link]\ntopology = \"chain\"\n\
width = 64\nlatency = 5\nmode = \"host\"\n[partition]\nstrategy = \"rows\"\n";

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("partita-remote-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `partita serve` process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    audit: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve `device` of `plan` on a free loopback port; wait (at most 10 minutes: the first
/// Verilator build) for the line that names the address.
fn serve(plan: &Path, device: usize, extra: &[&str], dir: &Tmp) -> Server {
    let audit = dir.path(&format!("audit{device}.log"));
    let mut child = Command::new(BIN)
        .args(["serve", plan.to_str().unwrap(), "--device"])
        .arg(device.to_string())
        .args(["--listen", "127.0.0.1:0", "--idle-exit-s", "300", "--audit"])
        .arg(&audit)
        .args(extra)
        // No watcher process: the test's signals reach the server itself.
        .env("PARTITA_IN_PROCESS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(600))
        .unwrap_or_default();
    let Some(addr) = line
        .trim()
        .rsplit(" on ")
        .next()
        .filter(|a| a.starts_with("127.0.0.1:"))
    else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "serve did not start: {line}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    Server {
        addr: addr.to_string(),
        child,
        audit,
    }
}

/// A message as one line: miette's wrapping (line breaks and its `│` margin) removed.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run partita with `args`; it must end within `limit` (else the test fails: a hang).
fn partita(args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(_st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "partita {args:?} hung for {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn input(dir: &Tmp, name: &str, seqs: usize, steps: usize, width: usize) -> PathBuf {
    let p = dir.path(name);
    ndarray_npy::write_npy(
        &p,
        &ndarray::Array3::<f64>::from_shape_fn((seqs, steps, width), |(a, b, c)| {
            ((a * 7 + b * 3 + c) % 11) as f64 / 8.0 - 0.6
        }),
    )
    .unwrap();
    p
}

fn read(p: &Path) -> Vec<f64> {
    let a: ndarray::ArrayD<f64> = ndarray_npy::read_npy(p).unwrap();
    a.iter().copied().collect()
}

fn golden(plan: &Path, x: &Path, dir: &Tmp) -> Vec<f64> {
    let g = dir.path("golden.npy");
    let (code, _, err) = partita(
        &[
            "golden",
            plan.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
            "--output",
            g.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    read(&g)
}

fn run_remote(
    plan: &Path,
    x: &Path,
    y: &Path,
    servers: &[&Server],
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "run".to_string(),
        plan.display().to_string(),
        "--input".into(),
        x.display().to_string(),
        "--output".into(),
        y.display().to_string(),
        "--backend".into(),
        "remote".into(),
    ];
    for (i, s) in servers.iter().enumerate() {
        args.push("--connect".into());
        args.push(format!("{i}={}", s.addr));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    partita(&a, Duration::from_secs(300))
}

fn connect(
    s: &Server,
    plan_hash: u64,
    device: usize,
    timeout_ms: u64,
    token: Option<&str>,
) -> Result<RemoteDevice, DeviceError> {
    RemoteDevice::connect(Connect {
        addr: s.addr.clone(),
        device,
        plan_hash,
        token: token.map(str::to_string),
        tls: None,
        timeout: Duration::from_millis(timeout_ms),
        client: "remote test".into(),
    })
}

fn plan_hash(plan: &Path) -> u64 {
    let (code, out, err) = partita(&["check", plan.to_str().unwrap()], Duration::from_secs(60));
    assert_eq!(code, 0, "{err}");
    let i = out.find("plan hash ").expect("check prints the plan hash") + 10;
    u64::from_str_radix(
        out[i..i + 16].trim_end_matches(|c: char| !c.is_ascii_hexdigit()),
        16,
    )
    .unwrap()
}

/// One device and three host-relayed devices, each served by its own process: the output
/// equals `partita golden` bit for bit, and every operation is in the servers' audit logs with
/// the client's address.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn remote_runs_equal_golden() {
    let dir = Tmp::new("golden");
    let one = dir.file("one.toml", ONE);
    let s = serve(&one, 0, &[], &dir);
    let x = input(&dir, "x1.npy", 2, 5, 4);
    let y = dir.path("y1.npy");
    let (code, out, err) = run_remote(&one, &x, &y, &[&s], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("run (remote): 2 sequence(s) x 5 step(s)"),
        "{out}"
    );
    assert_eq!(read(&y), golden(&one, &x, &dir));
    let log = std::fs::read_to_string(&s.audit).unwrap();
    assert!(
        log.contains("client 127.0.0.1:") && log.contains("hello: ok"),
        "{log}"
    );
    assert!(
        log.contains("acquire: lease 1") && log.contains("release: lease 1 released"),
        "{log}"
    );
    assert!(log.contains("reg_write 0x010 = 0x00000001: ok"), "{log}");
    drop(s);

    let relay = dir.file("relay.toml", RELAY);
    let servers: Vec<Server> = (0..3).map(|d| serve(&relay, d, &[], &dir)).collect();
    let x = input(&dir, "x3.npy", 2, 4, 8);
    let y = dir.path("y3.npy");
    let refs: Vec<&Server> = servers.iter().collect();
    let (code, out, err) = run_remote(&relay, &x, &y, &refs, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("run (remote, 3 devices): 2 sequence(s) x 4 step(s) (8 of 8 steps finished)"),
        "{out}"
    );
    assert!(out.contains("frames relayed by the host"), "{out}");
    assert_eq!(read(&y), golden(&relay, &x, &dir));
    for s in &servers {
        let log = std::fs::read_to_string(&s.audit).unwrap();
        assert!(
            log.contains("link_send"),
            "every device got relayed frames: {log}"
        );
    }
}

/// One client at a time: a second one is refused while the first holds the lease; after the
/// lease lapses the second gets a newer one, and the first's requests are refused (fencing).
/// The handshake refuses another plan or device; the health check answers.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn leases_fence_out_other_clients() {
    let dir = Tmp::new("lease");
    let one = dir.file("one.toml", ONE);
    let hash = plan_hash(&one);
    let s = serve(&one, 0, &[], &dir);
    let mut a = connect(&s, hash, 0, 1000, None).unwrap();
    a.reset().unwrap();
    assert_eq!(a.reg_read(regs::ID.offset).unwrap(), regs::DEVICE_ID);
    let e = connect(&s, hash, 0, 1000, None).err().unwrap().to_string();
    assert!(e.contains("is held by") && e.contains("lease 1"), "{e}");
    // The lease lapses 1 s after a's last request.
    std::thread::sleep(Duration::from_millis(1300));
    let mut b = connect(&s, hash, 0, 1000, None).unwrap();
    let e = a.reg_read(regs::ID.offset).unwrap_err().to_string();
    assert!(
        e.contains("lease 1 is not the device's current lease (2"),
        "{e}"
    );
    assert_eq!(b.reg_read(regs::ID.offset).unwrap(), regs::DEVICE_ID);
    drop(b);
    let e = connect(&s, hash ^ 1, 0, 1000, None).err().unwrap();
    assert!(matches!(e, DeviceError::Identity(_)), "{e}");
    assert!(
        e.to_string().contains("handshake refused") && e.to_string().contains("plan hash"),
        "{e}"
    );
    let e = connect(&s, hash, 1, 1000, None).err().unwrap().to_string();
    assert!(e.contains("this server serves device 0 of 1"), "{e}");
    let log = std::fs::read_to_string(&s.audit).unwrap();
    assert!(
        log.contains("acquire: refused: device 0 is held by"),
        "{log}"
    );
    assert!(
        log.contains("refused: lease 1 is not the device's current lease"),
        "{log}"
    );
    drop(a);
    // grpc.health.v1
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut h = partita_host::remote::proto::health::health_client::HealthClient::new(ch);
        h.check(partita_host::remote::proto::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
    });
    assert_eq!(status, 1, "SERVING");
}

/// A server with a token refuses a client without it, and serves one with it.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn a_token_server_refuses_clients_without_the_token() {
    let dir = Tmp::new("token");
    let one = dir.file("one.toml", ONE);
    let tok = dir.file("tok", "0123456789abcdef-secret\n");
    let s = serve(&one, 0, &["--token-file", tok.to_str().unwrap()], &dir);
    let x = input(&dir, "x.npy", 1, 3, 4);
    let y = dir.path("y.npy");
    let (code, _, err) = run_remote(&one, &x, &y, &[&s], &[]);
    assert_eq!(code, 2);
    assert!(flat(&err).contains("needs a token"), "{err}");
    assert!(!y.exists());
    let wrong = dir.file("wrong", "0123456789abcdef-wrong\n");
    let (code, _, err) = run_remote(
        &one,
        &x,
        &y,
        &[&s],
        &["--token-file", wrong.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(flat(&err).contains("wrong one"), "{err}");
    let (code, out, err) = run_remote(
        &one,
        &x,
        &y,
        &[&s],
        &["--token-file", tok.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(read(&y), golden(&one, &x, &dir));
}

/// A TCP relay that can cut both directions at once (a dropped connection).
fn cutting_proxy(target: String, cut: Arc<AtomicBool>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let Ok(s) = std::net::TcpStream::connect(&target) else {
                return;
            };
            for (mut from, mut to) in [
                (c.try_clone().unwrap(), s.try_clone().unwrap()),
                (s.try_clone().unwrap(), c.try_clone().unwrap()),
            ] {
                let cut = cut.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
                    let mut buf = [0u8; 16384];
                    loop {
                        if cut.load(Ordering::SeqCst) {
                            let _ = from.shutdown(std::net::Shutdown::Both);
                            let _ = to.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        match from.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => {
                                if to.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => return,
                        }
                    }
                });
            }
        }
    });
    addr
}

/// Wait until `audit` has at least `n` lines (the run is under way).
fn wait_for_ops(audit: &Path, n: usize) {
    let t0 = Instant::now();
    while std::fs::read_to_string(audit).map_or(0, |s| s.lines().count()) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A long run on three devices, `fail` applied to it mid-run: the run must end with an error
/// naming `want`, exit non-zero, and write the steps that finished.
fn failed_run(
    tag: &str,
    timeout_ms: &str,
    fail: impl FnOnce(&mut [Server], &Arc<AtomicBool>),
    want: &[&str],
) {
    let dir = Tmp::new(tag);
    let relay = dir.file("relay.toml", RELAY);
    let mut servers: Vec<Server> = (0..3).map(|d| serve(&relay, d, &[], &dir)).collect();
    let cut = Arc::new(AtomicBool::new(false));
    // Device 0 through a proxy that can drop the connection.
    let proxied = cutting_proxy(servers[0].addr.clone(), cut.clone());
    let x = input(&dir, "x.npy", 1, 400, 8);
    let y = dir.path("y.npy");
    let mut args: Vec<String> = [
        "run",
        relay.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
        "--backend",
        "remote",
        "--timeout-ms",
        timeout_ms,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (i, s) in servers.iter().enumerate() {
        args.push("--connect".into());
        args.push(format!("{i}={}", if i == 0 { &proxied } else { &s.addr }));
    }
    let a: Vec<String> = args.clone();
    let t0 = Instant::now();
    let h = std::thread::spawn(move || {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        partita(&a, Duration::from_secs(120))
    });
    wait_for_ops(&servers[1].audit, 400);
    fail(&mut servers, &cut);
    let (code, out, err) = h.join().unwrap();
    assert_ne!(code, 0, "{out}{err}");
    let err1 = flat(&err);
    for w in want {
        assert!(err1.contains(w), "{tag}: want `{w}` in: {err1}");
    }
    assert!(
        err1.contains("steps finished)") && err1.contains("pending"),
        "{err1}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "{tag}: took {:?}",
        t0.elapsed()
    );
    // What finished is written; the rest is NaN.
    let v = read(&y);
    assert_eq!(v.len(), 400 * 8);
    assert!(v.iter().any(|x| x.is_nan()), "{tag}: every step finished?");
}

#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn a_server_killed_mid_run_ends_the_run() {
    failed_run(
        "kill",
        "3000",
        |s, _| {
            let _ = s[1].child.kill();
        },
        &[
            "device 1 at 127.0.0.1:",
            "the connection failed or the server stopped",
        ],
    );
}

#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn a_stalled_server_ends_the_run_at_its_deadline() {
    failed_run(
        "stall",
        "1500",
        |s, _| {
            let _ = unsafe { libc::kill(s[2].child.id() as i32, libc::SIGSTOP) };
        },
        &["device 2 at 127.0.0.1:", "did not complete within"],
    );
}

#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn a_dropped_connection_ends_the_run() {
    failed_run(
        "drop",
        "3000",
        |_, cut| cut.store(true, Ordering::SeqCst),
        &["device 0 at 127.0.0.1:"],
    );
}

/// Make a CA and a certificate it signs for `name` (server or client use), with openssl.
fn certificates(dir: &Tmp, ca: &str, certs: &[(&str, &str)]) {
    let sh = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    let (key, pem, subj) = (
        format!("{ca}.key"),
        format!("{ca}.pem"),
        format!("/CN={ca}"),
    );
    a.extend([
        "-keyout",
        &key,
        "-out",
        &pem,
        "-days",
        "2",
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    sh(&a);
    for (name, usage) in certs {
        let (k, csr, p, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(
            dir.path(&ext),
            format!("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", &k, "-out", &csr, "-subj", "/CN=localhost"]);
        sh(&a);
        sh(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &pem,
            "-CAkey",
            &key,
            "-CAcreateserial",
            "-out",
            &p,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

/// Mutual TLS: a client with a certificate the server's CA signed runs and equals golden; a
/// plain client and a client whose certificate another CA signed are refused.
#[test]
#[cfg_attr(
    not(all(have_verilator, have_openssl)),
    ignore = "needs verilator and openssl (bash scripts/ensure-tools.sh verilator openssl)"
)]
fn mutual_tls_serves_only_certified_clients() {
    let dir = Tmp::new("tls");
    certificates(
        &dir,
        "ca",
        &[("server", "serverAuth"), ("client", "clientAuth")],
    );
    certificates(&dir, "other", &[("stranger", "clientAuth")]);
    let one = dir.file("one.toml", ONE);
    let p = |n: &str| dir.path(n).display().to_string();
    let (cert, key, ca) = (p("server.pem"), p("server.key"), p("ca.pem"));
    let s = serve(
        &one,
        0,
        &["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &ca],
        &dir,
    );
    let x = input(&dir, "x.npy", 1, 3, 4);
    let y = dir.path("y.npy");
    let (ccert, ckey) = (p("client.pem"), p("client.key"));
    let tls = ["--tls-ca", &ca, "--tls-cert", &ccert, "--tls-key", &ckey];
    let (code, out, err) = run_remote(&one, &x, &y, &[&s], &tls);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(read(&y), golden(&one, &x, &dir));
    let log = std::fs::read_to_string(&s.audit).unwrap();
    assert!(log.contains("(client certificate fnv64:"), "{log}");
    std::fs::remove_file(&y).unwrap();
    // Plain text to a TLS server.
    let (code, _, err) = run_remote(&one, &x, &y, &[&s], &["--timeout-ms", "3000"]);
    assert_eq!(code, 2, "{err}");
    assert!(flat(&err).contains("device 0 at 127.0.0.1:"), "{err}");
    // A certificate from another CA.
    let (scert, skey) = (p("stranger.pem"), p("stranger.key"));
    let other = [
        "--tls-ca",
        &ca,
        "--tls-cert",
        &scert,
        "--tls-key",
        &skey,
        "--timeout-ms",
        "3000",
    ];
    let (code, _, err) = run_remote(&one, &x, &y, &[&s], &other);
    assert_eq!(code, 2, "{err}");
    assert!(flat(&err).contains("device 0 at 127.0.0.1:"), "{err}");
    assert!(!y.exists());
}

/// `report --sweep --slurm`: the job array script, run here task by task with the array index
/// set as Slurm sets it (and the partita it names, no PARTITA override), then the merge: the
/// table equals `--measure` on local cores. A missing task fails the merge, naming it.
#[test]
#[cfg_attr(
    not(have_verilator),
    ignore = "needs verilator (bash scripts/ensure-tools.sh verilator)"
)]
fn slurm_sweep_runs_task_by_task_and_merges() {
    let dir = Tmp::new("slurm");
    let plan = dir.file(
        "small.toml",
        "[model]\nkind = \"lstm\"\ninput_size = 6\nhidden_size = 8\nseed = 2\n[target.link]\nlatency = 5\n",
    );
    let sl = dir.path("sweep");
    let p = plan.to_str().unwrap();
    let (code, out, err) = partita(
        &[
            "report",
            p,
            "--sweep",
            "devices=1,2",
            "--slurm",
            sl.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}{err}");
    let script = std::fs::read_to_string(sl.join("sweep.sbatch")).unwrap();
    assert!(
        script.contains(&format!("PARTITA=${{PARTITA:-'{BIN}'}}")),
        "{script}"
    );
    let n: usize = script
        .split("#SBATCH --array=0-")
        .nth(1)
        .and_then(|t| t.lines().next())
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert_eq!(n, 4, "rows on 1 device, and rows, cols, gates, ops on 2");
    for k in 0..=n {
        let st = Command::new("bash")
            .arg(sl.join("sweep.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .env_remove("PARTITA")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "task {k}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert!(sl.join(format!("task_{k}.json")).is_file());
    }
    let merged = Command::new("bash")
        .arg(sl.join("merge.sh"))
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let merged = String::from_utf8_lossy(&merged.stdout).into_owned();
    let (code, local, err) = partita(
        &[
            "report",
            p,
            "--sweep",
            "devices=1,2",
            "--measure",
            "--jobs",
            "2",
        ],
        Duration::from_secs(600),
    );
    assert_eq!(code, 0, "{err}");
    let table = |s: &str| s[s.find("measured by cosimulation").unwrap()..].to_string();
    assert_eq!(table(&merged), table(&local));
    assert_eq!(table(&merged).matches("  yes").count(), 5, "{merged}");
    std::fs::remove_file(sl.join("task_3.json")).unwrap();
    let merged = Command::new("bash")
        .arg(sl.join("merge.sh"))
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), Some(2));
    assert!(
        flat(&String::from_utf8_lossy(&merged.stderr)).contains("tasks [3] of 5 have no result"),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
}
