//! Manager dict set+get from a child, same machine and over TCP with
//! authentication; manager start+shutdown (issue 12).
//!
//! Workloads (as `benches/py/py_manager.py`): a child process does one
//! warm-up set+get (which opens its connection), then `d[k] = i; x = d[k]` for
//! 10,000 iterations and reports its own elapsed time; one op is one set or one get
//! (20,000 ops a sample). mproc is measured twice: with `set` (which waits for the
//! manager, as Python's does) and with `set_pipelined` (which does not; the get
//! that follows still sees the value). Start+shutdown: `Manager::start()` then `shutdown()`, ms.
//! Over TCP, a child also does 10,000 gets alone (one round trip each), read against
//! the OS floor: a 64-byte TCP ping-pong over 127.0.0.1 (`c/os_tcp_pingpong.c`).
//!
//! Contenders: mproc [`Manager`] (default private socket: requests through
//! shared-memory queues; and `Manager::serve` on 127.0.0.1 with an authkey: HMAC
//! handshake, then a Noise-encrypted session), Python's `Manager().dict()`
//! (`py_manager.py`) and `BaseManager` over TCP with an authkey
//! (`benches/py/py_manager.py`), and the TCP loopback floor (`c/os_tcp_pingpong.c`).

use std::rc::Rc;
use std::time::Instant;

use mproc::manager::{Address, Dict, Manager, TlsConfig};
use mproc::process::Process;

use crate::anchors::{CAnchor, PyAnchor};
use crate::{Area, Compare, Config, Local, Result, Role};

/// Set+get iterations per sample (as `py_manager.py`).
pub const ITERS: u32 = 10_000;

/// Start+shutdown cycles per sample.
pub const CYCLES: usize = 20;

fn child_loop(d: Dict<String, u32>) -> f64 {
    d.set("warm".into(), 0).expect("warm-up set");
    let _ = d.get("warm").expect("warm-up get");
    let t0 = Instant::now();
    let mut x = 0;
    for i in 0..ITERS {
        d.set("k".into(), i).expect("set");
        x = d.get("k").expect("get").expect("present");
    }
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(x, ITERS - 1);
    dt
}

/// The same loop with the sets pipelined (`set_pipelined`: the set does not wait
/// for its reply; the get that follows, on the same connection, sees it).
fn child_loop_pipelined(d: Dict<String, u32>) -> f64 {
    d.set("warm".into(), 0).expect("warm-up set");
    let _ = d.get("warm").expect("warm-up get");
    let t0 = Instant::now();
    let mut x = 0;
    for i in 0..ITERS {
        d.set_pipelined("k".into(), i).expect("set");
        x = d.get("k").expect("get").expect("present");
    }
    d.flush().expect("flush");
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(x, ITERS - 1);
    dt
}

/// Gets alone: one round trip each, to read against the TCP ping-pong floor.
fn child_loop_gets(d: Dict<String, u32>) -> f64 {
    d.set("k".into(), 7).expect("set");
    let _ = d.get("k").expect("warm-up get");
    let t0 = Instant::now();
    let mut x = 0;
    for _ in 0..ITERS {
        x = d.get("k").expect("get").expect("present");
    }
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(x, 7);
    dt
}

/// What a child over TCP runs: [`child_loop`].
const SET_GET: u8 = 0;
/// [`child_loop_pipelined`].
const SET_PIPELINED_GET: u8 = 1;
/// [`child_loop_gets`].
const GETS: u8 = 2;

fn remote_child((addr, key, kind): (Address, Vec<u8>, u8)) -> f64 {
    let m = Manager::connect(addr, key).expect("connect");
    let d = m.named_dict("bench").expect("named dict");
    match kind {
        SET_GET => child_loop(d),
        SET_PIPELINED_GET => child_loop_pipelined(d),
        _ => child_loop_gets(d),
    }
}

fn ops_per_sec(secs: f64) -> f64 {
    2.0 * ITERS as f64 / secs
}

/// One sample of the same-machine workload (sets pipelined or waiting).
pub fn dict_child(m: &Manager, pipelined: bool) -> Result<f64> {
    let d = m.dict::<String, u32>().map_err(|e| format!("dict: {e}"))?;
    let f = if pipelined {
        child_loop_pipelined
    } else {
        child_loop
    };
    let child = Process::start(f, d).map_err(|e| format!("start: {e}"))?;
    Ok(ops_per_sec(child.join().map_err(|e| format!("join: {e}"))?))
}

fn tls_child((addr, key, kind, tls): (Address, Vec<u8>, u8, TlsConfig)) -> f64 {
    let m = Manager::connect_tls(addr, key, tls).expect("connect over TLS");
    let d = m.named_dict("bench").expect("named dict");
    match kind {
        SET_GET => child_loop(d),
        _ => child_loop_pipelined(d),
    }
}

/// The repository's test certificates (`tests/manager/tls`): `who` is "server" or
/// "client", both from the test CA.
fn test_tls(who: &str) -> Result<TlsConfig> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/manager/tls");
    Ok(TlsConfig::from_pem_files(
        format!("{dir}/ca.pem"),
        format!("{dir}/{who}.pem"),
        format!("{dir}/{who}.key"),
    )?)
}

/// One sample over mutual TLS (with the key proved inside it).
pub fn dict_child_tls(m: &Manager, key: &[u8], pipelined: bool) -> Result<f64> {
    let kind = if pipelined {
        SET_PIPELINED_GET
    } else {
        SET_GET
    };
    let args = (m.address().clone(), key.to_vec(), kind, test_tls("client")?);
    let child = Process::start(tls_child, args).map_err(|e| format!("start: {e}"))?;
    Ok(ops_per_sec(child.join().map_err(|e| format!("join: {e}"))?))
}

/// One sample over TCP with authentication.
pub fn dict_child_tcp(m: &Manager, key: &[u8], pipelined: bool) -> Result<f64> {
    let kind = if pipelined {
        SET_PIPELINED_GET
    } else {
        SET_GET
    };
    let child = Process::start(remote_child, (m.address().clone(), key.to_vec(), kind))
        .map_err(|e| format!("start: {e}"))?;
    Ok(ops_per_sec(child.join().map_err(|e| format!("join: {e}"))?))
}

/// One sample of gets alone over TCP with authentication: round trips per second.
pub fn dict_gets_child_tcp(m: &Manager, key: &[u8]) -> Result<f64> {
    let child = Process::start(remote_child, (m.address().clone(), key.to_vec(), GETS))
        .map_err(|e| format!("start: {e}"))?;
    Ok(ITERS as f64 / child.join().map_err(|e| format!("join: {e}"))?)
}

/// Start+shutdown, ms per cycle.
pub fn start_shutdown(n: usize) -> Result<f64> {
    let t0 = Instant::now();
    for _ in 0..n {
        let m = Manager::start().map_err(|e| format!("start: {e}"))?;
        m.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3 / n as f64)
}

/// The `manager` area.
pub fn area(_cfg: &Config) -> Result<Area> {
    const KEY: &[u8] = b"mproc-bench-key";
    let local = Rc::new(Manager::start().map_err(|e| format!("manager: {e}"))?);
    let tcp = Rc::new(
        Manager::serve("127.0.0.1:0".parse::<std::net::SocketAddr>()?, KEY)
            .map_err(|e| format!("serve: {e}"))?,
    );
    let tls = Rc::new(
        Manager::builder()
            .address("127.0.0.1:0".parse::<std::net::SocketAddr>()?)
            .authkey(KEY)
            .tls(test_tls("server")?)
            .tls_client(test_tls("client")?)
            .start()
            .map_err(|e| format!("serve TLS: {e}"))?,
    );
    let mproc = Local::new("mproc Manager", Role::Mproc)
        .warmup(|| start_shutdown(3).map(drop))
        .measure("mproc_manager_dict_set_get_child", "ops/s", {
            let local = local.clone();
            move || dict_child(&local, false)
        })
        .measure(
            "mproc_manager_dict_set_pipelined_get_child",
            "ops/s",
            move || dict_child(&local, true),
        )
        .measure("mproc_manager_dict_set_get_child_tcp", "ops/s", {
            let tcp = tcp.clone();
            move || dict_child_tcp(&tcp, KEY, false)
        })
        .measure("mproc_manager_dict_set_pipelined_get_child_tcp", "ops/s", {
            let tcp = tcp.clone();
            move || dict_child_tcp(&tcp, KEY, true)
        })
        .measure(
            "mproc_manager_dict_get_child_tcp",
            "roundtrips/s",
            move || dict_gets_child_tcp(&tcp, KEY),
        )
        .measure("mproc_manager_dict_set_get_child_tls", "ops/s", {
            let tls = tls.clone();
            move || dict_child_tls(&tls, KEY, false)
        })
        .measure(
            "mproc_manager_dict_set_pipelined_get_child_tls",
            "ops/s",
            move || dict_child_tls(&tls, KEY, true),
        )
        .measure("mproc_manager_start_shutdown", "ms", || {
            start_shutdown(CYCLES)
        });
    Ok(Area {
        name: "manager",
        title: "Manager dict from a child, start+shutdown (issue 12)",
        description: format!(
            "A child process does one warm-up set+get, then `d[k] = i; x = d[k]` {ITERS} times and \
             reports its own time; one op is one set or one get (ops/s). Same machine: \
             `Manager::start()` (private socket; requests through shared-memory queues) against \
             Python's `Manager().dict()` (`py_manager.py`). TCP: `Manager::serve` on 127.0.0.1 with an \
             authkey (HMAC-SHA256 handshake, Noise-encrypted session; the child connects with \
             `Manager::connect`) against Python's `BaseManager` on 127.0.0.1 with an authkey \
             (`benches/py/py_manager.py`). Gets alone over TCP ({ITERS} a sample, one round trip \
             each) against the OS floor: a 64-byte request and reply between two processes over \
             127.0.0.1 with TCP_NODELAY (`c/os_tcp_pingpong.c`), both sides blocking in read, and \
             both sides polling (never asleep). TLS: the same loop against a manager serving mutual \
             TLS (feature `tls`, the repository's test certificates), for its cost against Noise; \
             no target. Start+shutdown: {CYCLES} cycles a sample, ms each."
        ),
        mproc_pending: None,
        contenders: vec![
            Box::new(mproc),
            Box::new(PyAnchor::new("py_manager.py")),
            Box::new(CAnchor::new("os_tcp_pingpong")),
        ],
        comparisons: vec![
            Compare::new(
                "mproc_manager_dict_set_get_child",
                "py_manager_dict_set_get_child",
            )
            .at_least(20.0, "issue 12: ≥ 20× Python"),
            Compare::new(
                "mproc_manager_dict_set_pipelined_get_child",
                "py_manager_dict_set_get_child",
            )
            .at_least(20.0, "issue 12: ≥ 20× Python (sets pipelined)"),
            Compare::new(
                "mproc_manager_dict_set_get_child_tcp",
                "py_basemanager_dict_set_get_child_tcp",
            )
            .at_least(5.0, "issue 12: ≥ 5× Python's BaseManager over TCP"),
            Compare::new(
                "mproc_manager_dict_set_pipelined_get_child_tcp",
                "py_basemanager_dict_set_get_child_tcp",
            )
            .at_least(
                5.0,
                "issue 12: ≥ 5× Python's BaseManager over TCP (sets pipelined)",
            ),
            Compare::new(
                "mproc_manager_dict_set_get_child_tls",
                "py_basemanager_dict_set_get_child_tcp",
            ),
            Compare::new(
                "mproc_manager_dict_set_pipelined_get_child_tls",
                "py_basemanager_dict_set_get_child_tcp",
            ),
            Compare::new("mproc_manager_dict_get_child_tcp", "os_tcp_pingpong_64B"),
            Compare::new(
                "mproc_manager_dict_get_child_tcp",
                "os_tcp_pingpong_64B_spin",
            ),
            Compare::new("mproc_manager_start_shutdown", "py_manager_start_shutdown")
                .at_most(0.2, "issue 12: ≤ 1/5 of Python"),
        ],
    })
}
