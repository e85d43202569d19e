//! Mutual TLS for a manager served over TCP (feature `tls`), for users who already
//! have certificates: rustls with TLS 1.3 only, each side presenting its
//! certificate and checking the other's against the authorities it was given.
//!
//! TLS replaces the Noise session, not the authentication key: once the TLS
//! handshake is done, the HMAC challenge–response of [`auth`](super::auth) runs
//! inside it with a channel binding (keying material exported from this TLS
//! session) mixed into both MACs, so a peer that holds a trusted certificate but
//! not the key cannot relay one side's proof to the other.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConnection, RootCertStore, ServerConnection};
use serde::{Deserialize, Serialize};

use super::ManagerError;
use super::auth::HandshakeError;
use super::budget::{Budget, Timed};

/// The label of the keying material both sides export to bind the key's proof to
/// this TLS session (RFC 5705 / RFC 8446 §7.5).
const BINDING_LABEL: &[u8] = b"EXPORTER-mproc-manager/1 authkey binding";

/// Certificates and a private key for a manager's mutual TLS (feature `tls`).
///
/// The same type configures both sides, all in PEM:
/// - `ca`: the certificate authorities that vouch for the *other* side (one or
///   more certificates);
/// - `cert_chain`: this side's certificate, then any intermediates;
/// - `key`: this side's private key (PKCS#8, PKCS#1 or SEC1).
///
/// A server given a `TlsConfig` ([`Builder::tls`](super::Builder::tls)) accepts only
/// clients whose certificate chains to its `ca`, and only over TLS 1.3. A client
/// ([`Manager::connect_tls`](super::Manager::connect_tls)) checks that the server's
/// certificate chains to its `ca` and names the address it connected to (an IP
/// address in the certificate's subject alternative names), or the name given to
/// [`server_name`](Self::server_name). The authentication key is still proved by
/// both sides, inside the TLS session.
///
/// The material is checked when the config is made (every certificate and the key
/// parse, the key matches the certificate). It is plain data: proxies carry it,
/// like the authentication key, to the processes they are sent to, so that those
/// can connect too. Its `Debug` output leaves the key out.
///
/// # Examples
///
/// ```
/// use mproc::manager::{Manager, TlsConfig};
///
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/manager/tls");
/// let server_tls = TlsConfig::from_pem_files(
///     format!("{dir}/ca.pem"), format!("{dir}/server.pem"), format!("{dir}/server.key"))?;
/// let client_tls = TlsConfig::from_pem_files(
///     format!("{dir}/ca.pem"), format!("{dir}/client.pem"), format!("{dir}/client.key"))?;
///
/// let server = Manager::builder()
///     .address("127.0.0.1:0".parse::<std::net::SocketAddr>()?)
///     .authkey(b"secret")
///     .tls(server_tls)
///     .tls_client(client_tls.clone()) // this handle's own certificate
///     .start()?;
/// let client = Manager::connect_tls(server.address().clone(), b"secret", client_tls)?;
/// client.named_dict::<String, u32>("d")?.set("a".into(), 1)?;
/// assert_eq!(server.named_dict::<String, u32>("d")?.get("a")?, Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsConfig {
    ca: Vec<u8>,
    cert_chain: Vec<u8>,
    key: Vec<u8>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &format_args!("{} PEM bytes", self.ca.len()))
            .field(
                "cert_chain",
                &format_args!("{} PEM bytes", self.cert_chain.len()),
            )
            .field("key", &format_args!("(hidden)"))
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsConfig {
    /// A config from PEM text: the authorities that vouch for the peer, this side's
    /// certificate chain, and its private key.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Tls`] when a part holds no certificate or no key, does not
    /// parse, or the key does not belong to the first certificate.
    pub fn from_pem(
        ca: impl Into<Vec<u8>>,
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Result<TlsConfig, ManagerError> {
        let config = TlsConfig {
            ca: ca.into(),
            cert_chain: cert_chain.into(),
            key: key.into(),
            server_name: None,
        };
        config.server_side()?;
        config.client_side()?;
        Ok(config)
    }

    /// As [`from_pem`](Self::from_pem), reading the three PEM files.
    ///
    /// # Errors
    ///
    /// [`ManagerError::Tls`] naming a file that cannot be read, and as
    /// [`from_pem`](Self::from_pem).
    pub fn from_pem_files(
        ca: impl AsRef<Path>,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig, ManagerError> {
        let read = |p: &Path| {
            std::fs::read(p)
                .map_err(|e| ManagerError::Tls(format!("cannot read {}: {e}", p.display())))
        };
        TlsConfig::from_pem(
            read(ca.as_ref())?,
            read(cert_chain.as_ref())?,
            read(key.as_ref())?,
        )
    }

    /// The name a client expects in the server's certificate (a DNS name or an IP
    /// address). By default a client expects the IP address it connects to.
    ///
    /// A name that is neither a valid DNS name nor an IP address is refused with
    /// [`ManagerError::Tls`] by [`Manager::connect_tls`](super::Manager::connect_tls)
    /// (or by [`Builder::start`](super::Builder::start) for its own handle).
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    fn certs(&self, pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ManagerError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ManagerError::Tls(format!("the {what} is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ManagerError::Tls(format!(
                "the {what} holds no certificate (expected \"-----BEGIN CERTIFICATE-----\")"
            )));
        }
        Ok(certs)
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, ManagerError> {
        let mut roots = RootCertStore::empty();
        for cert in self.certs(&self.ca, "certificate authority (ca)")? {
            roots.add(cert).map_err(|e| {
                ManagerError::Tls(format!("a certificate authority is not usable: {e}"))
            })?;
        }
        Ok(Arc::new(roots))
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, ManagerError> {
        PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| {
            ManagerError::Tls(format!(
                "the private key is not usable (expected one PEM private key): {e}"
            ))
        })
    }

    pub(crate) fn server_side(&self) -> Result<ServerSide, ManagerError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider())
            .build()
            .map_err(|e| ManagerError::Tls(format!("cannot check client certificates: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_config_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.certs(&self.cert_chain, "certificate chain")?,
                self.private_key()?,
            )
            .map_err(tls_config_error)?;
        // Every connection authenticates in full: no tickets, no resumption.
        config.send_tls13_tickets = 0;
        Ok(ServerSide(Arc::new(config)))
    }

    pub(crate) fn client_side(&self) -> Result<ClientSide, ManagerError> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_config_error)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(
                self.certs(&self.cert_chain, "certificate chain")?,
                self.private_key()?,
            )
            .map_err(tls_config_error)?;
        config.resumption = rustls::client::Resumption::disabled();
        let server_name = match &self.server_name {
            None => None,
            Some(n) => Some(ServerName::try_from(n.clone()).map_err(|e| {
                ManagerError::Tls(format!(
                    "the server name {n:?} is neither a DNS name nor an IP address: {e}"
                ))
            })?),
        };
        Ok(ClientSide {
            config: Arc::new(config),
            server_name,
            material: self.clone(),
        })
    }
}

fn tls_config_error(e: rustls::Error) -> ManagerError {
    ManagerError::Tls(format!("the certificate or key is not usable: {e}"))
}

/// The crate's one crypto provider for TLS: *ring*'s.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A server's TLS settings, built once when the server starts.
#[derive(Clone)]
pub(crate) struct ServerSide(Arc<rustls::ServerConfig>);

impl fmt::Debug for ServerSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSide")
    }
}

/// A client's TLS settings, built once per endpoint.
pub(crate) struct ClientSide {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
    /// What the settings were built from (proxies carry it to other processes).
    pub(crate) material: TlsConfig,
}

impl fmt::Debug for ClientSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSide")
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// A TCP connection carrying TLS records.
pub(crate) enum TlsStream {
    Client(Box<rustls::StreamOwned<ClientConnection, TcpStream>>),
    Server(Box<rustls::StreamOwned<ServerConnection, TcpStream>>),
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsStream({:?})", self.tcp().peer_addr().ok())
    }
}

/// What failed during the TLS handshake or inside it, as the caller reports it:
/// certificate and protocol failures are a refusal, not an I/O error.
fn handshake_error(e: io::Error) -> HandshakeError {
    if let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return HandshakeError::Rejected(match tls {
            rustls::Error::AlertReceived(alert) => format!(
                "TLS: the peer refused the session with alert {alert:?} (it may not trust our \
                 certificate)"
            ),
            rustls::Error::InvalidCertificate(why) => {
                format!("TLS: the peer's certificate is not trusted: {why:?}")
            }
            rustls::Error::InvalidMessage(_) => format!(
                "TLS: {tls} (is the peer an mproc manager serving TLS? A manager without \
                 certificates speaks Noise: connect with Manager::connect)"
            ),
            other => format!("TLS: {other}"),
        });
    }
    match e.kind() {
        io::ErrorKind::InvalidData => HandshakeError::Rejected(format!("TLS: {e}")),
        io::ErrorKind::UnexpectedEof => HandshakeError::Rejected(
            "the peer closed the connection during the TLS handshake (it may not trust \
             our certificate)"
                .into(),
        ),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            HandshakeError::Rejected("the peer did not complete the TLS handshake in time".into())
        }
        _ => HandshakeError::Io(e),
    }
}

/// Maps an error of the key's proof run inside TLS: a TLS alert (the peer
/// refused our certificate after the handshake) is a refusal.
pub(crate) fn inner_error(e: HandshakeError) -> HandshakeError {
    match e {
        HandshakeError::Io(e) => handshake_error(e),
        other => other,
    }
}

/// Runs a TLS handshake over `sock` to its end, by `until`.
fn handshake<D: rustls::SideData>(
    conn: &mut rustls::ConnectionCommon<D>,
    sock: &mut TcpStream,
    until: Option<Instant>,
) -> Result<(), HandshakeError> {
    let mut sock = Budget::until(sock, until);
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(handshake_error)?;
    }
    Ok(())
}

impl ClientSide {
    /// Runs the TLS handshake as a client over `tcp`, connected to `peer`.
    pub(crate) fn connect(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        until: Option<Instant>,
    ) -> Result<TlsStream, HandshakeError> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => ServerName::IpAddress(peer.ip().into()),
        };
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| HandshakeError::Rejected(format!("TLS: {e}")))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        handshake(&mut s.conn, &mut s.sock, until)?;
        Ok(TlsStream::Client(Box::new(s)))
    }
}

impl ServerSide {
    /// Runs the TLS handshake as a server over `tcp`, by `until`.
    pub(crate) fn accept(
        &self,
        tcp: TcpStream,
        until: Option<Instant>,
    ) -> Result<TlsStream, HandshakeError> {
        let conn = ServerConnection::new(self.0.clone())
            .map_err(|e| HandshakeError::Rejected(format!("TLS: {e}")))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        handshake(&mut s.conn, &mut s.sock, until)?;
        Ok(TlsStream::Server(Box::new(s)))
    }
}

impl TlsStream {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            TlsStream::Client(s) => &s.sock,
            TlsStream::Server(s) => &s.sock,
        }
    }

    /// Keying material unique to this TLS session, the same on both sides.
    pub(crate) fn binding(&self) -> Result<[u8; 32], HandshakeError> {
        let out = [0u8; 32];
        match self {
            TlsStream::Client(s) => s.conn.export_keying_material(out, BINDING_LABEL, None),
            TlsStream::Server(s) => s.conn.export_keying_material(out, BINDING_LABEL, None),
        }
        .map_err(|e| HandshakeError::Rejected(format!("TLS: no channel binding: {e}")))
    }
}

/// Reads plaintext, reading and decrypting records as needed: blocking, within
/// the socket's read timeout (a timeout is `WouldBlock`/`TimedOut`, and what was
/// read so far stays buffered). A peer that closes without TLS's close
/// notification reads as the end of the stream: frames carry their own lengths,
/// so a cut inside one is still noticed.
fn read_plain<S: rustls::SideData>(
    conn: &mut rustls::ConnectionCommon<S>,
    sock: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        conn.read_tls(sock)?;
        if let Err(e) = conn.process_new_packets() {
            // Tell the peer why (an alert), then fail.
            let _ = conn.write_tls(sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
    }
}

/// Writes plaintext and sends its records before returning, as a blocking socket
/// write does.
fn write_plain<S: rustls::SideData>(
    conn: &mut rustls::ConnectionCommon<S>,
    sock: &mut TcpStream,
    buf: &[u8],
) -> io::Result<usize> {
    let n = conn.writer().write(buf)?;
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(n)
}

impl Timed for TlsStream {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp().read_timeout()
    }

    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_timeouts(t)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TlsStream::Client(s) => read_plain(&mut s.conn, &mut s.sock, buf),
            TlsStream::Server(s) => read_plain(&mut s.conn, &mut s.sock, buf),
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            TlsStream::Client(s) => write_plain(&mut s.conn, &mut s.sock, buf),
            TlsStream::Server(s) => write_plain(&mut s.conn, &mut s.sock, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
