//! Mutual authentication: an HMAC-SHA256 challenge–response, then (over TCP) a
//! Noise session keyed from the authentication key.
//!
//! The exchange, with fixed-size messages read exactly (nothing is decoded before
//! the peer has proved the key):
//!
//! 1. server → client: `MAGIC` (8 bytes) ‖ server challenge `S` (32 random bytes);
//! 2. client → server: client challenge `C` (32) ‖ `HMAC(key, "…client" ‖ S ‖ C)`;
//! 3. server checks the MAC in constant time; on failure it sends one `0` byte and
//!    closes; else `1` ‖ `HMAC(key, "…server" ‖ C ‖ S)`, which the client checks.
//!
//! The labels name the protocol and the algorithm (`HMAC-SHA256`), so a MAC made for
//! one role or algorithm is worthless for another, and the client proves the key
//! first: a peer without the key gets nothing computed from it. Replaying an old
//! exchange fails because each side's challenge is fresh.
//!
//! Over TCP the two sides then run Noise `NNpsk0_25519_ChaChaPoly_SHA256` with the
//! PSK derived by HKDF-SHA256 from the key (salted with both challenges) and the
//! challenges as prologue: every frame after that is encrypted and authenticated,
//! with implicit nonces, so a modified, replayed, reordered or dropped frame ends the
//! connection.
//!
//! Under mutual TLS (feature `tls`) the exchange runs inside the TLS session instead
//! of before Noise, with 32 bytes of keying material exported from that session
//! (the *binding*) after each label, so a proof is worthless in any other session.

use std::io::{self, Read, Write};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// First bytes a manager server sends: protocol and version.
pub(crate) const MAGIC: &[u8; 8] = b"mprocM\x01\x00";
const CHALLENGE: usize = 32;
const MAC: usize = 32;
const CLIENT_LABEL: &[u8] = b"mproc-manager/1 HMAC-SHA256 client";
const SERVER_LABEL: &[u8] = b"mproc-manager/1 HMAC-SHA256 server";
/// The Noise pattern used over TCP.
pub(crate) const NOISE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";

/// What a failed handshake tells its caller.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The peer does not know the key (or is not a manager peer at all).
    Rejected(String),
    /// The connection failed or ended early.
    Io(io::Error),
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

/// The two challenges of a finished handshake (used to key the session).
pub(crate) struct Transcript {
    pub(crate) server: [u8; CHALLENGE],
    pub(crate) client: [u8; CHALLENGE],
}

/// `HMAC(key, label ‖ binding ‖ a ‖ b)`. `binding` is empty over plain sockets
/// and Noise, and 32 bytes of keying material exported from the session under TLS.
fn mac(key: &[u8], label: &[u8], binding: &[u8], a: &[u8], b: &[u8]) -> [u8; MAC] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(label);
    m.update(binding);
    m.update(a);
    m.update(b);
    let out = m.finalize().into_bytes();
    let mut r = [0u8; MAC];
    r.copy_from_slice(&out);
    r
}

/// Fresh random bytes.
pub(crate) fn random<const N: usize>() -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    Ok(b)
}

fn read_exact_or(stream: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), HandshakeError> {
    stream.read_exact(buf).map_err(|e| read_error(e, what))
}

fn read_error(e: io::Error, what: &str) -> HandshakeError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => HandshakeError::Rejected(format!(
            "the peer closed the connection during the handshake ({what})"
        )),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => HandshakeError::Rejected(format!(
            "the peer did not complete the handshake in time ({what})"
        )),
        _ => HandshakeError::Io(e),
    }
}

/// The server's side. The stream should have a read timeout (the handshake limit).
/// `binding` ties the proofs to the session they travel in (empty: none).
pub(crate) fn server(
    stream: &mut (impl Read + Write),
    key: &[u8],
    binding: &[u8],
) -> Result<Transcript, HandshakeError> {
    let s: [u8; CHALLENGE] = random()?;
    let mut hello = [0u8; 8 + CHALLENGE];
    hello[..8].copy_from_slice(MAGIC);
    hello[8..].copy_from_slice(&s);
    stream.write_all(&hello)?;
    let mut answer = [0u8; CHALLENGE + MAC];
    read_exact_or(stream, &mut answer, "client proof")?;
    let c: [u8; CHALLENGE] = answer[..CHALLENGE].try_into().expect("32 bytes");
    let expected = mac(key, CLIENT_LABEL, binding, &s, &c);
    if !bool::from(expected.ct_eq(&answer[CHALLENGE..])) {
        let _ = stream.write_all(&[0]);
        return Err(HandshakeError::Rejected(
            "the client does not know the key".into(),
        ));
    }
    let mut ok = [0u8; 1 + MAC];
    ok[0] = 1;
    ok[1..].copy_from_slice(&mac(key, SERVER_LABEL, binding, &c, &s));
    stream.write_all(&ok)?;
    Ok(Transcript {
        server: s,
        client: c,
    })
}

/// The client's side, with the same `binding` as the server's.
pub(crate) fn client(
    stream: &mut (impl Read + Write),
    key: &[u8],
    binding: &[u8],
) -> Result<Transcript, HandshakeError> {
    let mut hello = [0u8; 8 + CHALLENGE];
    match stream.read_exact(&mut hello) {
        // Closed before it said anything: the manager is going away (or is over
        // its connection limit), which says nothing about the key.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(HandshakeError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the manager closed the connection before the handshake (it may be going \
                 away, over its connection limit, or serving TLS: see Manager::connect_tls)",
            )));
        }
        Err(e) => return Err(read_error(e, "server hello")),
        Ok(()) => {}
    }
    if &hello[..8] != MAGIC {
        return Err(HandshakeError::Rejected(
            "the peer is not an mproc manager (or speaks another version)".into(),
        ));
    }
    let s: [u8; CHALLENGE] = hello[8..].try_into().expect("32 bytes");
    let c: [u8; CHALLENGE] = random()?;
    let mut answer = [0u8; CHALLENGE + MAC];
    answer[..CHALLENGE].copy_from_slice(&c);
    answer[CHALLENGE..].copy_from_slice(&mac(key, CLIENT_LABEL, binding, &s, &c));
    stream.write_all(&answer)?;
    let mut verdict = [0u8; 1];
    read_exact_or(stream, &mut verdict, "server verdict")?;
    if verdict[0] != 1 {
        return Err(HandshakeError::Rejected(
            "the manager refused our key (wrong authkey)".into(),
        ));
    }
    let mut proof = [0u8; MAC];
    read_exact_or(stream, &mut proof, "server proof")?;
    let expected = mac(key, SERVER_LABEL, binding, &c, &s);
    if !bool::from(expected.ct_eq(&proof)) {
        return Err(HandshakeError::Rejected(
            "the server did not prove that it knows the key".into(),
        ));
    }
    Ok(Transcript {
        server: s,
        client: c,
    })
}

/// The Noise PSK for a session: HKDF-SHA256 of the key, salted with both challenges.
pub(crate) fn session_psk(key: &[u8], t: &Transcript) -> [u8; 32] {
    let mut salt = [0u8; 2 * CHALLENGE];
    salt[..CHALLENGE].copy_from_slice(&t.server);
    salt[CHALLENGE..].copy_from_slice(&t.client);
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), key);
    let mut psk = [0u8; 32];
    hk.expand(b"mproc-manager/1 noise psk", &mut psk)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    psk
}

/// The prologue both Noise sides bind: the protocol name and both challenges.
pub(crate) fn prologue(t: &Transcript) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + 2 * CHALLENGE);
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&t.server);
    p.extend_from_slice(&t.client);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn right_key_passes_wrong_key_fails_both_ways() {
        for (ck, sk, ok) in [(b"k1", b"k1", true), (b"k1", b"k2", false)] {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let t = std::thread::spawn(move || server(&mut a, sk, &[]).map(|t| t.client));
            let c = client(&mut b, ck, &[]);
            let s = t.join().unwrap();
            assert_eq!(c.is_ok(), ok);
            assert_eq!(s.is_ok(), ok);
            if ok {
                assert_eq!(c.unwrap().client, s.unwrap());
            }
        }
    }

    #[test]
    fn macs_differ_by_role() {
        assert_ne!(
            mac(b"k", CLIENT_LABEL, &[], b"a", b"b"),
            mac(b"k", SERVER_LABEL, &[], b"a", b"b")
        );
    }

    #[test]
    fn proofs_bound_to_another_session_fail() {
        // A relay between two TLS sessions passes each side's proof on unchanged:
        // with different bindings on the two sides, neither accepts the other.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || server(&mut a, b"k", &[1; 32]).is_ok());
        let c = client(&mut b, b"k", &[2; 32]);
        assert!(!t.join().unwrap());
        assert!(matches!(c, Err(HandshakeError::Rejected(_))));
        // The same binding on both sides passes.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || server(&mut a, b"k", &[3; 32]).is_ok());
        assert!(client(&mut b, b"k", &[3; 32]).is_ok());
        assert!(t.join().unwrap());
    }
}
