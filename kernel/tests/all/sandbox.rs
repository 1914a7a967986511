//! Misbehaving plugins get a clear error for their request; the kernel and
//! every other plugin keep serving.

use std::time::{Duration, Instant};

use crate::support::TestKernel;

#[test]
fn a_looping_plugin_is_stopped_near_its_deadline_while_others_keep_serving() {
    let k = TestKernel::start();
    k.install_ok("hello");
    k.install_ok("looper"); // manifest: timeout-ms = 1000

    std::thread::scope(|s| {
        // Two loopers at once: more than one runtime thread's worth on a
        // 2-core machine, so only yielding keeps the kernel responsive.
        let loopers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let started = Instant::now();
                    let (status, body) = k.get("/api/v1/p/looper/");
                    (status, body, started.elapsed())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let hellos: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut worst = Duration::ZERO;
                    for _ in 0..10 {
                        let started = Instant::now();
                        let (status, body) = k.get("/api/v1/p/hello/");
                        assert_eq!(status, 200, "{body}");
                        worst = worst.max(started.elapsed());
                    }
                    worst
                })
            })
            .collect();
        for hello in hellos {
            let worst = hello.join().unwrap();
            assert!(
                worst < Duration::from_millis(900),
                "a hello waited {worst:?} behind the looper"
            );
        }
        for looper in loopers {
            let (status, body, took) = looper.join().unwrap();
            assert_eq!(status, 504, "{body}");
            assert_eq!(body["error"]["code"], "plugin_timeout");
            assert!(
                took >= Duration::from_millis(950),
                "stopped too early: {took:?}"
            );
            assert!(
                took < Duration::from_millis(3000),
                "stopped too late: {took:?}"
            );
        }
    });
    // The looper's next fast request works: nothing of the stopped instance remains.
    assert_eq!(k.get("/api/v1/p/looper/ok").0, 200);
}

#[test]
fn an_allocating_plugin_stops_at_its_cap_and_the_kernel_stays_bounded() {
    let k = TestKernel::start();
    k.install_ok("hog"); // manifest: memory-mib = 32
    k.install_ok("hello");
    // Warm up so the baseline includes the pool's resident pages.
    let (status, body) = k.get("/api/v1/p/hog/");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "plugin_memory_exceeded");
    let baseline = k.rss_kib();
    for _ in 0..12 {
        let (status, body) = k.get("/api/v1/p/hog/");
        assert_eq!(status, 500);
        assert_eq!(body["error"]["code"], "plugin_memory_exceeded");
        assert_eq!(k.get("/api/v1/p/hello/").0, 200);
    }
    let after = k.rss_kib();
    // Twelve runs of 32 MiB each would be 384 MiB if instances leaked.
    assert!(
        after < baseline + 48 * 1024,
        "kernel RSS grew from {baseline} KiB to {after} KiB"
    );
}

#[test]
fn a_panicking_plugin_gets_a_clear_5xx() {
    let k = TestKernel::start();
    k.install_ok("panicker");
    k.install_ok("hello");
    let (status, body) = k.get("/api/v1/p/panicker/");
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "plugin_panicked");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("panicker")
    );
    // Guest internals stay in the log, not in the answer.
    assert!(!body.to_string().contains("src/lib.rs"), "{body}");
    assert_eq!(k.get("/api/v1/p/hello/").0, 200);
    assert_eq!(k.get("/api/v1/p/panicker/").0, 500);
}

#[test]
fn an_escaping_plugin_reaches_nothing() {
    let k = TestKernel::start();
    k.install_ok("escaper");
    let (status, report) = k.get("/api/v1/p/escaper/");
    assert_eq!(status, 200, "{report}");
    for attempt in [
        "read_passwd",
        "list_root",
        "list_cwd",
        "write_tmp",
        "tcp_connect",
        "resolve_host",
        "env_path",
    ] {
        assert_eq!(
            report[attempt]["ok"], false,
            "sandbox escape: {attempt}: {report}"
        );
    }
    assert!(
        !report.to_string().contains("root:x:0:0"),
        "read /etc/passwd: {report}"
    );
    assert!(!std::path::Path::new("/tmp/escaper-was-here").exists());
    // The environment and arguments are empty, and without the clock
    // capability the wall clock reads the UNIX epoch.
    assert_eq!(report["env_count"], 0, "{report}");
    assert_eq!(report["args_count"], 0, "{report}");
    assert_eq!(report["clock_secs"], 0, "{report}");
}
