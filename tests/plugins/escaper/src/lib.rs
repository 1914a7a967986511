//! Test plugin `escaper`: `GET /` tries to leave the sandbox and reports
//! what happened; each attempt is `{"ok": bool, "detail": string}`.

use std::fmt::Display;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{SystemTime, UNIX_EPOCH};

use tianshan_sdk::prelude::*;
use tianshan_sdk::serde_json::Value;

struct Escaper;

impl Plugin for Escaper {
    fn routes() -> Router {
        Router::new().get("/", escape)
    }
}

fn attempt<T, E: Display>(
    result: std::result::Result<T, E>,
    detail: impl FnOnce(T) -> String,
) -> Value {
    match result {
        Ok(value) => json!({ "ok": true, "detail": detail(value) }),
        Err(error) => json!({ "ok": false, "detail": error.to_string() }),
    }
}

fn list(dir: &str) -> Value {
    attempt(std::fs::read_dir(dir), |entries| {
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.join(", ")
    })
}

fn escape(_: &Request) -> Result<Response> {
    let read_passwd = attempt(std::fs::read_to_string("/etc/passwd"), |s| {
        format!("read {} bytes", s.len())
    });
    let write_tmp = attempt(std::fs::write("/tmp/escaper-was-here", b"escaped"), |()| {
        "wrote /tmp/escaper-was-here".to_owned()
    });
    let tcp = attempt(TcpStream::connect("127.0.0.1:8080"), |s| {
        format!("connected from {:?}", s.local_addr())
    });
    let dns = attempt(("localhost", 80).to_socket_addrs(), |addrs| {
        addrs.map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
    });
    let env_count = std::env::vars().count();
    let path = attempt(std::env::var("PATH"), |p| p);
    let args_count = std::env::args().count();
    let clock = attempt(SystemTime::now().duration_since(UNIX_EPOCH), |d| {
        d.as_secs().to_string()
    });
    let clock_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);

    Ok(Response::json(&json!({
        "read_passwd": read_passwd,
        "list_root": list("/"),
        "list_cwd": list("."),
        "write_tmp": write_tmp,
        "tcp_connect": tcp,
        "resolve_host": dns,
        "env_path": path,
        "env_count": env_count,
        "args_count": args_count,
        "clock": clock,
        "clock_secs": clock_secs,
    })))
}

tianshan_sdk::export_plugin!(Escaper);
