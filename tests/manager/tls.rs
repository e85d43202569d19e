//! A manager serving mutual TLS (feature `tls`) on 127.0.0.1, with the test
//! certificates of tests/manager/tls (made by scripts/make-test-certs.sh): the right
//! certificates and key from other processes and through proxies sent to them; an
//! untrusted client, an untrusted server, a wrong server name, a wrong key inside
//! TLS, a Noise client at a TLS server and the reverse, modified and replayed TLS
//! records, unusable material. Each is a clear error for that client, and the
//! server keeps serving the others.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mproc::manager::{Address, Dict, Manager, ManagerError, TlsConfig};
use mproc::process::Process;

use crate::common::watchdog;
use crate::{LONG, junk, kill_manager, man_in_the_middle, pass_on, tcp};

const KEY: &[u8] = b"tls test key";
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/manager/tls");

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

/// `ca` trusted for the peer; `who`.pem and `who`.key as this side's identity.
fn material(ca: &str, who: &str) -> TlsConfig {
    TlsConfig::from_pem(
        pem(&format!("{ca}.pem")),
        pem(&format!("{who}.pem")),
        pem(&format!("{who}.key")),
    )
    .unwrap()
}

fn server_tls() -> TlsConfig {
    material("ca", "server")
}

fn client_tls() -> TlsConfig {
    material("ca", "client")
}

fn serve() -> Manager {
    Manager::builder()
        .address("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .handshake_timeout(Duration::from_millis(500))
        .tls(server_tls())
        .tls_client(client_tls())
        .start()
        .unwrap()
}

/// The server still serves a client with the right certificates and key.
fn still_serves(m: &Manager) {
    let c = Manager::connect_tls(m.address().clone(), KEY, client_tls()).unwrap();
    let d = c.named_dict::<String, u32>("health").unwrap();
    d.update_with("n".into(), |n| n.unwrap_or(0) + 1).unwrap();
    assert!(d.get("n").unwrap().unwrap() >= 1);
}

fn tls_worker((addr, tls, n): (Address, TlsConfig, u32)) -> u32 {
    let m = Manager::connect_tls(addr, KEY, tls).unwrap();
    let d = m.named_dict::<String, u32>("shared").unwrap();
    for _ in 0..n {
        d.update_with("count".into(), |c| c.unwrap_or(0) + 1)
            .unwrap();
    }
    d.get("count").unwrap().unwrap()
}

fn proxy_worker(d: Dict<String, u32>) {
    // The proxy carries the address, the key and the TLS material.
    d.set(format!("child-{}", std::process::id()), 7).unwrap();
}

#[test]
fn the_right_certificates_from_other_processes_and_through_proxies() {
    let _w = watchdog("tls_right_certificates", LONG);
    let m = serve();
    let kids: Vec<_> = (0..3)
        .map(|_| Process::start(tls_worker, (m.address().clone(), client_tls(), 20)).unwrap())
        .collect();
    for k in kids {
        assert!(k.join().unwrap() >= 20);
    }
    let c = Manager::connect_tls(m.address().clone(), KEY, client_tls()).unwrap();
    let d = c.named_dict::<String, u32>("shared").unwrap();
    assert_eq!(d.get("count").unwrap(), Some(60));
    Process::start(proxy_worker, d.clone())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(d.len().unwrap(), 2);
    // The owner's handle (connected with `tls_client`) sees the same objects.
    assert_eq!(
        m.named_dict::<String, u32>("shared")
            .unwrap()
            .len()
            .unwrap(),
        2
    );
}

#[test]
fn the_starting_handle_uses_the_servers_certificate_when_it_serves_clients_too() {
    let _w = watchdog("tls_owner_default", LONG);
    // "stranger" is valid for both server and client authentication under
    // "other-ca": with no `tls_client`, the handle that starts the server connects
    // with the server's own material.
    let m = Manager::builder()
        .address("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .tls(material("other-ca", "stranger"))
        .start()
        .unwrap();
    let d = m.named_dict::<String, u32>("d").unwrap();
    d.set("a".into(), 1).unwrap();
    let c =
        Manager::connect_tls(m.address().clone(), KEY, material("other-ca", "stranger")).unwrap();
    assert_eq!(
        c.named_dict::<String, u32>("d").unwrap().get("a").unwrap(),
        Some(1)
    );
    // A client of the other authority is refused by this server.
    assert_refused(
        try_client(m.address(), KEY, client_tls()),
        "client of another CA",
    );
}

/// Connects and makes one request; the error, if any.
fn try_client(addr: &Address, key: &[u8], tls: TlsConfig) -> Result<(), ManagerError> {
    let c = Manager::connect_tls(addr.clone(), key, tls)?;
    c.named_dict::<u8, u8>("x")?.set(1, 1)
}

fn assert_refused(r: Result<(), ManagerError>, what: &str) {
    match r {
        Err(ManagerError::Authentication { reason, .. }) => {
            assert!(!reason.is_empty(), "{what}: an empty reason");
        }
        other => panic!("{what}: expected an authentication error, got {other:?}"),
    }
}

#[test]
fn untrusted_certificates_names_and_keys_are_refused_quickly() {
    let _w = watchdog("tls_refusals", LONG);
    let m = serve();
    let addr = m.address().clone();
    let t = Instant::now();
    // A client certificate from an authority the server does not trust.
    assert_refused(
        try_client(&addr, KEY, material("ca", "stranger")),
        "untrusted client",
    );
    // The server's certificate is not from the authority the client trusts.
    assert_refused(
        try_client(&addr, KEY, material("other-ca", "client")),
        "untrusted server",
    );
    // The server's certificate does not name what the client expects.
    assert_refused(
        try_client(&addr, KEY, client_tls().server_name("manager.example.org")),
        "wrong server name",
    );
    // The name the certificate does carry is accepted.
    try_client(&addr, KEY, client_tls().server_name("localhost")).unwrap();
    // Trusted certificates, wrong key: refused inside TLS.
    assert_refused(try_client(&addr, b"not the key", client_tls()), "wrong key");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "refusals took {:?}",
        t.elapsed()
    );
    still_serves(&m);
}

#[test]
fn noise_at_a_tls_server_and_tls_at_a_noise_server_are_errors() {
    let _w = watchdog("tls_noise_mismatch", LONG);
    let m = serve();
    // A Noise client waits for the server's hello, which a TLS server never sends:
    // the server's handshake timeout ends it.
    let err = Manager::connect(m.address().clone(), KEY)
        .and_then(|c| c.named_dict::<u8, u8>("x").map(drop))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ManagerError::Disconnected { .. } | ManagerError::Authentication { .. }
        ),
        "{err}"
    );
    // A TLS client at a Noise server reads its hello as a broken TLS record.
    let noise = Manager::serve("127.0.0.1:0".parse::<SocketAddr>().unwrap(), KEY).unwrap();
    assert_refused(
        try_client(noise.address(), KEY, client_tls()),
        "TLS client at a Noise server",
    );
    // Both servers still serve their own kind of client.
    still_serves(&m);
    let c = Manager::connect(noise.address().clone(), KEY).unwrap();
    c.named_dict::<u8, u8>("x").unwrap().set(1, 2).unwrap();
}

#[test]
fn plaintext_and_random_bytes_at_a_tls_server_are_dropped() {
    let _w = watchdog("tls_random_bytes", LONG);
    let m = serve();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..10 {
        let mut s = TcpStream::connect(tcp(&m)).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        let junk = junk(&mut seed, 300);
        if i % 2 == 0 {
            let _ = s.write_all(&junk);
        } else {
            // Looks like the start of a TLS handshake record, then garbage.
            let _ = s.write_all(&[22, 3, 1, 0, 200]);
            let _ = s.write_all(&junk[..200]);
        }
        // The server answers with at most an alert, then closes.
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.len() < 64, "{} bytes in answer to garbage", buf.len());
    }
    still_serves(&m);
}

/// A man in the middle between a client and the server that damages the `nth`
/// encrypted record (TLS content type 23) the client sends on each connection:
/// flips a bit in it, or sends it twice.
fn tamper_proxy(server: SocketAddr, nth: usize, replay: bool) -> SocketAddr {
    man_in_the_middle(server, move |mut client, mut upstream| {
        let mut encrypted = 0;
        loop {
            let mut h = [0u8; 5];
            let mut body = Vec::new();
            let read = client.read_exact(&mut h).and_then(|()| {
                body.resize(u16::from_be_bytes([h[3], h[4]]) as usize, 0);
                client.read_exact(&mut body)
            });
            if read.is_err() {
                let _ = upstream.shutdown(std::net::Shutdown::Both);
                return;
            }
            if h[0] == 23 {
                encrypted += 1;
            }
            let damage = h[0] == 23 && encrypted == nth;
            if pass_on(&mut upstream, &h, &mut body, damage, replay).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_modified_or_replayed_record_ends_the_connection() {
    let _w = watchdog("tls_tampered_records", Duration::from_secs(90));
    let m = serve();
    // The client's encrypted records on a connection: its certificate, proof of
    // the certificate's key and Finished (the handshake), the key's proof, Hello,
    // then requests. Damaging any of the first four must end the attempt with an
    // error (never a wrong answer or a hang).
    for nth in 1..=4 {
        for replay in [false, true] {
            let via = tamper_proxy(tcp(&m), nth, replay);
            let err = try_client(&Address::Tcp(via), KEY, client_tls()).unwrap_err();
            assert!(
                matches!(
                    err,
                    ManagerError::Authentication { .. }
                        | ManagerError::Disconnected { .. }
                        | ManagerError::Protocol(_)
                ),
                "record {nth}, replay={replay}: {err}"
            );
        }
    }
    still_serves(&m);
}

#[test]
fn unusable_material_is_a_clear_error() {
    let err = TlsConfig::from_pem(
        pem("ca.pem"),
        b"not a certificate".to_vec(),
        pem("client.key"),
    )
    .unwrap_err();
    assert!(matches!(err, ManagerError::Tls(_)), "{err}");
    let err = TlsConfig::from_pem(pem("ca.pem"), pem("client.pem"), Vec::new()).unwrap_err();
    assert!(matches!(err, ManagerError::Tls(_)), "{err}");
    // The key of another certificate.
    let err = TlsConfig::from_pem(pem("ca.pem"), pem("client.pem"), pem("server.key")).unwrap_err();
    assert!(matches!(err, ManagerError::Tls(_)), "{err}");
    let err = TlsConfig::from_pem_files("/nonexistent/ca.pem", "/x", "/y").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    // An impossible server name.
    let err = Manager::connect_tls(
        "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
        KEY,
        client_tls().server_name("not a name!"),
    )
    .unwrap_err();
    assert!(matches!(err, ManagerError::Tls(_)), "{err}");
    // TLS is for TCP addresses, on both sides.
    let err =
        Manager::connect_tls(Address::unix("/nonexistent/m.sock"), KEY, client_tls()).unwrap_err();
    assert!(matches!(err, ManagerError::Tls(_)), "{err}");
    let err = Manager::builder()
        .address(Address::unix(
            std::env::temp_dir().join(format!("mproc-tls-{}.sock", std::process::id())),
        ))
        .tls(server_tls())
        .start()
        .unwrap_err();
    assert!(matches!(err, ManagerError::Tls(_)), "{err}");
    // The debug output leaves the key out.
    let shown = format!("{:?}", client_tls());
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}

/// Sets `e`. The test kills the manager once it sees `e` set, which may be before
/// the reply reaches this thread: then the set did happen, and the manager is
/// reported gone, as every later call must report it.
fn set_or_gone(e: &mproc::manager::Event) {
    if let Err(err) = e.set() {
        assert!(err.is_disconnected(), "{err}");
    }
}

#[test]
fn the_manager_killed_mid_request_is_disconnected_over_tls() {
    let _w = watchdog("tls_manager_killed", LONG);
    let m = serve();
    let c = Manager::connect_tls(m.address().clone(), KEY, client_tls()).unwrap();
    let q = c.named_queue::<u8>("never").unwrap();
    let lock = c.named_lock("held").unwrap();
    let owner_lock = m.named_lock("held").unwrap();
    let _held = owner_lock.lock().unwrap();
    let started = [c.event().unwrap(), c.event().unwrap()];
    let (q2, lock2) = (q.clone(), lock.clone());
    let (s0, s1) = (started[0].clone(), started[1].clone());
    let waiters = [
        std::thread::spawn(move || {
            set_or_gone(&s0);
            q2.get_timeout(Duration::from_secs(60))
                .unwrap_err()
                .is_disconnected()
        }),
        std::thread::spawn(move || {
            set_or_gone(&s1);
            let e = lock2.lock_timeout(Duration::from_secs(60)).map(drop);
            e.unwrap_err()
                .manager_error()
                .is_some_and(|e| e.is_disconnected())
        }),
    ];
    // Each thread is at its blocking call (or in it) when the manager dies;
    // either way the call must end with `Disconnected`.
    for e in &started {
        assert!(e.wait_timeout(LONG).unwrap());
    }
    let killed_at = Instant::now();
    kill_manager(&m);
    for w in waiters {
        assert!(
            w.join().unwrap(),
            "a waiter got another error than Disconnected"
        );
    }
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    assert!(q.len().unwrap_err().is_disconnected());
}
