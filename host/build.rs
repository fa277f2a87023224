//! Generates the gRPC service code of the remote backend (feature `remote`) with tonic-build's
//! manual builder: the messages are Rust structs in `src/remote/proto.rs`, so no protoc is
//! needed. Also finds Verilator (for the loopback tests that serve simulated devices) and
//! openssl (for the TLS test's certificates): without them those tests are compiled as
//! `#[ignore]` (skipped); under CI a missing tool fails the build.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=CI");
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    // Verilator for the served simulated devices; openssl makes the TLS test's certificates.
    for (tool, cfg) in [("verilator", "have_verilator"), ("openssl", "have_openssl")] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if found {
            println!("cargo:rustc-cfg={cfg}");
        } else if ci {
            panic!("CI is set but {tool} is missing; .ci/run installs it (bash scripts/ensure-tools.sh {tool})");
        }
    }
    #[cfg(feature = "remote")]
    services();
}

#[cfg(feature = "remote")]
fn services() {
    use tonic_build::manual::{Builder, Method, Service};
    let codec = "tonic_prost::ProstCodec";
    let m = |name: &str, route: &str, input: &str, output: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::remote::proto::{input}"))
            .output_type(format!("crate::remote::proto::{output}"))
            .codec_path(codec)
            .build()
    };
    let board = Service::builder()
        .name("Board")
        .package("partita.remote.v1")
        .method(m("hello", "Hello", "HelloRequest", "HelloReply"))
        .method(m("acquire", "Acquire", "AcquireRequest", "LeaseReply"))
        .method(m("release", "Release", "LeaseRef", "Empty"))
        .method(m("reset", "Reset", "LeaseRef", "Empty"))
        .method(m("reg_read", "RegRead", "RegRequest", "RegValue"))
        .method(m("reg_write", "RegWrite", "RegRequest", "Empty"))
        .method(m("stream_write", "StreamWrite", "Beats", "Empty"))
        .method(m("stream_read", "StreamRead", "StreamReadRequest", "Beats"))
        .method(m("poll", "Poll", "PollRequest", "PollReply"))
        .method(m("link_send", "LinkSend", "Beats", "Empty"))
        .build();
    let health = Service::builder()
        .name("Health")
        .package("grpc.health.v1")
        .method(m(
            "check",
            "Check",
            "HealthCheckRequest",
            "HealthCheckResponse",
        ))
        .build();
    Builder::new().compile(&[board, health]);
}
