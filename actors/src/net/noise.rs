//! Noise_XX sessions over any [`Stream`] (TCP, or the simulator's in-memory links): the
//! handshake, then encrypted app frames.
//!
//! On the wire every Noise message, handshake or transport, is preceded by its length as two
//! bytes big-endian (the Noise specification's framing), and the prologue is
//! `spacetime/noise/1`, so any standard Noise implementation can talk to a node. Inside the
//! session, app messages are `spacetime::wire` frames cut into transport messages of at most
//! 65,535 bytes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash as NoiseHash, Random};
use spacetime::wire::{
    Frame, FrameDecoder, FrameError, MAX_NOISE_PLAINTEXT, Message, encode_frame_into,
};
use spacetime::{Hash, NodeRng};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::transport::{BoxStream, Stream};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue both sides mix into the handshake.
pub const PROLOGUE: &[u8] = b"spacetime/noise/1";
/// Largest Noise message, ciphertext and tag included.
pub const MAX_NOISE_MESSAGE: usize = 65535;
/// AEAD tag bytes per transport message.
const TAG_BYTES: usize = 16;

/// Why a session could not be set up or broke.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The Noise layer refused a message (bad handshake, failed decryption).
    #[error("noise: {0}")]
    Noise(String),
    /// The handshake did not finish in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The operating system gave no randomness for a key.
    #[error(transparent)]
    Random(#[from] spacetime::rng::RngError),
    /// The peer's byte stream is not valid frames.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
}

impl From<snow::Error> for TransportError {
    fn from(e: snow::Error) -> Self {
        Self::Noise(e.to_string())
    }
}

/// A node's Noise static key pair (X25519). Its public half is the node's identity. The
/// private half is wiped on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct StaticKey {
    private: [u8; 32],
    public: [u8; 32],
}

impl StaticKey {
    /// A fresh key from the OS RNG (getrandom, as snow's own key generation would use, but
    /// with no copy left in an unwiped buffer).
    pub fn generate() -> Result<Self, TransportError> {
        Ok(Self::from_private(spacetime::rng::os_bytes32()?))
    }

    /// The key pair of a private key; any 32 bytes are one (X25519 clamps inside the DH).
    pub fn from_private(private: [u8; 32]) -> Self {
        Self {
            private,
            public: spacetime::keyfile::x25519_public(&private),
        }
    }

    /// The private key bytes (for the key file).
    pub fn private_bytes(&self) -> [u8; 32] {
        self.private
    }

    /// The public key.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The node id: `H(node-id, public key)`.
    pub fn node_id(&self) -> Hash {
        spacetime::wire::node_id(&self.public)
    }
}

impl Drop for StaticKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private);
    }
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticKey(node id {})", self.node_id())
    }
}

fn params() -> Result<snow::params::NoiseParams, TransportError> {
    NOISE_PARAMS.parse().map_err(TransportError::from)
}

/// snow's primitives with the ephemeral key drawn from the node's generator as key material
/// ([`NodeRng::try_fill_key`]): from the OS on a real node, from the run's seed in the
/// simulator, so that there the seed decides every byte of a handshake. It yields its generator
/// once: a second request (never made by snow for one handshake) gets none rather than a repeat.
struct SeededResolver {
    rng: Mutex<Option<NodeRng>>,
}

/// A [`NodeRng`]'s key material as snow's randomness (snow draws only ephemeral keys from it).
struct SnowRng(NodeRng);

impl Random for SnowRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.try_fill_key(dest).map_err(|_| snow::Error::Rng)
    }
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let rng = self.rng.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some(Box::new(SnowRng(rng)))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::<WipingX25519>::default()),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn NoiseHash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// X25519 for snow: the same function as snow's own (RFC 7748 with clamping, the shared secret
/// unchecked, as Noise allows), but its private key (the node's static key, or an ephemeral
/// key) and each shared secret are wiped when dropped; snow 0.10's leaves them in freed memory.
#[derive(Default)]
struct WipingX25519 {
    private: Zeroizing<[u8; 32]>,
    public: [u8; 32],
}

impl Dh for WipingX25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        // snow passes exactly priv_len() bytes; anything else leaves a zero key, like snow's.
        self.private.fill(0);
        if let Some(bytes) = privkey.get(..32) {
            self.private.copy_from_slice(bytes);
        }
        self.public = spacetime::keyfile::x25519_public(&self.private);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        rng.try_fill_bytes(&mut self.private[..])?;
        self.public = spacetime::keyfile::x25519_public(&self.private);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.private[..]
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let theirs = pubkey
            .get(..32)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(snow::Error::Dh)?;
        let shared = Zeroizing::new(spacetime::keyfile::x25519(&self.private, &theirs));
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared[..]);
        Ok(())
    }
}

/// Largest socket read buffer: several whole Noise messages per `read` syscall.
const READ_BUFFER_BYTES: usize = 2 * (MAX_NOISE_MESSAGE + 2);
/// The read buffer a session starts with; it doubles (up to [`READ_BUFFER_BYTES`]) only when
/// a message does not fit, so the many idle sessions of a node (pings, small gossip) hold a
/// few KiB each instead of 192 KiB.
const INITIAL_READ_BUFFER_BYTES: usize = 4096;

/// Writes one length-prefixed Noise message.
async fn write_noise<W: AsyncWrite + Unpin>(
    stream: &mut W,
    message: &[u8],
) -> Result<(), TransportError> {
    let len = u16::try_from(message.len())
        .map_err(|_| TransportError::Noise("message too long".into()))?;
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    stream.write_all(&out).await?;
    Ok(())
}

/// Reads one length-prefixed Noise message into `buf`, returning its length.
async fn read_noise<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8; MAX_NOISE_MESSAGE],
) -> Result<usize, TransportError> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(TransportError::Closed);
        }
        Err(e) => return Err(e.into()),
    }
    let len = usize::from(u16::from_be_bytes(len));
    stream.read_exact(&mut buf[..len]).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            TransportError::Closed
        } else {
            e.into()
        }
    })?;
    Ok(len)
}

/// Which side of the handshake this node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that connected.
    Initiator,
    /// The side that accepted.
    Responder,
}

/// Runs the Noise_XX handshake on `stream`, within `timeout`; the ephemeral key comes from
/// `rng` (a child of the node's generator, one per handshake).
pub async fn handshake(
    stream: impl Stream,
    key: &StaticKey,
    role: Role,
    timeout: Duration,
    rng: NodeRng,
) -> Result<Session, TransportError> {
    let mut stream: BoxStream = Box::new(stream);
    let run = async {
        let resolver = SeededResolver {
            rng: Mutex::new(Some(rng)),
        };
        let builder = snow::Builder::with_resolver(params()?, Box::new(resolver))
            .local_private_key(&key.private)?
            .prologue(PROLOGUE)?;
        let mut state = match role {
            Role::Initiator => builder.build_initiator()?,
            Role::Responder => builder.build_responder()?,
        };
        let mut buf = Box::new([0u8; MAX_NOISE_MESSAGE]);
        let mut scratch = vec![0u8; MAX_NOISE_MESSAGE];
        // XX: -> e; <- e, ee, s, es; -> s, se.
        let mut writing = role == Role::Initiator;
        while !state.is_handshake_finished() {
            if writing {
                let len = state.write_message(&[], &mut scratch)?;
                write_noise(&mut stream, &scratch[..len]).await?;
            } else {
                let len = read_noise(&mut stream, &mut buf).await?;
                state.read_message(&buf[..len], &mut scratch)?;
            }
            writing = !writing;
        }
        let remote = state
            .get_remote_static()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| TransportError::Noise("handshake revealed no static key".into()))?;
        let transport = state.into_transport_mode()?;
        Ok::<_, TransportError>(Session::new(stream, transport, remote))
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| TransportError::HandshakeTimeout)?
}

/// Traffic counters of a session, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes written to the socket.
    pub bytes_out: u64,
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// App messages sent.
    pub messages_out: u64,
    /// App messages received.
    pub messages_in: u64,
}

/// An established, encrypted session with a peer.
pub struct Session {
    stream: BoxStream,
    noise: snow::TransportState,
    remote_static: [u8; 32],
    decoder: FrameDecoder,
    inbox: VecDeque<Frame>,
    decoded: Vec<Frame>,
    /// Bytes read but not yet decrypted are `read_buf[read_start..read_end]`.
    read_buf: Vec<u8>,
    read_start: usize,
    read_end: usize,
    /// Grows to the largest message decrypted so far.
    plain_buf: Vec<u8>,
    frame_buf: Vec<u8>,
    wire_buf: Vec<u8>,
    traffic: Traffic,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session(peer {})", self.remote_node_id())
    }
}

impl Session {
    fn new(stream: BoxStream, noise: snow::TransportState, remote_static: [u8; 32]) -> Self {
        Self {
            stream,
            noise,
            remote_static,
            decoder: FrameDecoder::new(),
            inbox: VecDeque::new(),
            decoded: Vec::new(),
            read_buf: vec![0; INITIAL_READ_BUFFER_BYTES],
            read_start: 0,
            read_end: 0,
            plain_buf: Vec::new(),
            frame_buf: Vec::new(),
            wire_buf: Vec::new(),
            traffic: Traffic::default(),
        }
    }

    /// The peer's node id, derived from its proven static key.
    pub fn remote_node_id(&self) -> Hash {
        spacetime::wire::node_id(&self.remote_static)
    }

    /// Traffic so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Encrypts and sends one message.
    pub async fn send(&mut self, message: &Message) -> Result<(), TransportError> {
        self.queue(message)?;
        self.flush().await
    }

    /// Encrypts a message into the outgoing buffer without writing it; [`Self::flush`] sends
    /// everything queued in one write, so bursts of small messages cost one syscall. Returns
    /// the frame's length.
    pub fn queue(&mut self, message: &Message) -> Result<usize, TransportError> {
        let mut frame = core::mem::take(&mut self.frame_buf);
        frame.clear();
        encode_frame_into(message, &mut frame);
        let queued = self.queue_frame(&frame).map(|()| frame.len());
        self.frame_buf = frame;
        queued
    }

    /// Encrypts an already encoded frame into the outgoing buffer.
    pub fn queue_frame(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        for chunk in frame.chunks(MAX_NOISE_PLAINTEXT) {
            let start = self.wire_buf.len();
            self.wire_buf.resize(start + 2 + chunk.len() + TAG_BYTES, 0);
            let len = self
                .noise
                .write_message(chunk, &mut self.wire_buf[start + 2..])?;
            // len <= 65535 because chunk <= MAX_NOISE_PLAINTEXT.
            self.wire_buf[start..start + 2].copy_from_slice(&(len as u16).to_be_bytes());
            self.wire_buf.truncate(start + 2 + len);
        }
        self.traffic.messages_out += 1;
        Ok(())
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.wire_buf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        if self.wire_buf.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.wire_buf).await?;
        self.traffic.bytes_out += self.wire_buf.len() as u64;
        self.wire_buf.clear();
        Ok(())
    }

    /// Receives and decodes the next message. Cancel-safe: if the future is dropped before it
    /// completes (in a `select!`), no data is lost and the next call continues.
    pub async fn recv(&mut self) -> Result<Message, TransportError> {
        Ok(self.recv_frame().await?.decode()?)
    }

    /// Receives the next frame without decoding it (decoding can then run elsewhere).
    /// Cancel-safe like [`Self::recv`]: the only await is a single `read`, and all state
    /// changes happen after it returns.
    pub async fn recv_frame(&mut self) -> Result<Frame, TransportError> {
        loop {
            if let Some(frame) = self.inbox.pop_front() {
                self.traffic.messages_in += 1;
                return Ok(frame);
            }
            if self.decrypt_buffered()? {
                continue;
            }
            if self.read_end == self.read_buf.len() {
                // Make room: move the partial message to the front, and if it fills the whole
                // buffer, grow it (a Noise message is at most 65,537 bytes with its prefix).
                self.read_buf.copy_within(self.read_start..self.read_end, 0);
                self.read_end -= self.read_start;
                self.read_start = 0;
                if self.read_end == self.read_buf.len() {
                    let grown = (self.read_buf.len() * 2).min(READ_BUFFER_BYTES);
                    self.read_buf.resize(grown, 0);
                }
            }
            let n = self
                .stream
                .read(&mut self.read_buf[self.read_end..])
                .await?;
            if n == 0 {
                return Err(TransportError::Closed);
            }
            self.read_end += n;
            self.traffic.bytes_in += n as u64;
        }
    }

    /// Decrypts every complete Noise message in the read buffer into frames; true if any.
    fn decrypt_buffered(&mut self) -> Result<bool, TransportError> {
        let mut any = false;
        loop {
            let available = &self.read_buf[self.read_start..self.read_end];
            let Some(len_bytes) = available.get(..2) else {
                break;
            };
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            let Some(message) = available.get(2..2 + len) else {
                break;
            };
            if self.plain_buf.len() < message.len() {
                self.plain_buf.resize(message.len(), 0);
            }
            let plain = self.noise.read_message(message, &mut self.plain_buf[..])?;
            self.read_start += 2 + len;
            self.decoder
                .push(&self.plain_buf[..plain], &mut self.decoded)?;
            self.inbox.extend(self.decoded.drain(..));
            any = true;
        }
        if self.read_start == self.read_end {
            self.read_start = 0;
            self.read_end = 0;
        }
        Ok(any)
    }

    /// Takes the queued ciphertext instead of writing it (tests of partial delivery).
    #[cfg(test)]
    pub(super) fn take_queued(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.wire_buf)
    }

    /// Writes bytes to the socket as they are (tests of partial delivery).
    #[cfg(test)]
    pub(super) async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Sends raw bytes as Noise transport messages without framing: for tests of how peers
    /// handle malformed frames.
    #[doc(hidden)]
    pub async fn send_raw_plaintext(&mut self, plaintext: &[u8]) -> Result<(), TransportError> {
        let mut out = vec![0u8; MAX_NOISE_MESSAGE];
        for chunk in plaintext.chunks(MAX_NOISE_PLAINTEXT) {
            let len = self.noise.write_message(chunk, &mut out)?;
            write_noise(&mut self.stream, &out[..len]).await?;
        }
        Ok(())
    }
}

impl StaticKey {
    /// Loads the node key at `path`, or creates one there (mode 0600) on first run from the
    /// node's generator's key material (the OS on a real node, see [`NodeRng::key_bytes`]).
    pub fn load_or_create(
        path: &std::path::Path,
        rng: &mut NodeRng,
    ) -> Result<Self, spacetime::keyfile::KeyFileError> {
        use spacetime::keyfile::{KeyFileError, read_node_key_file, write_node_key_file};
        match read_node_key_file(path) {
            Ok(private) => Ok(Self::from_private(private)),
            Err(KeyFileError::Read { error, .. })
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                let private = rng
                    .key_bytes()
                    .map_err(|error| KeyFileError::NoRandomness {
                        path: path.to_path_buf(),
                        error,
                    })?;
                let key = Self::from_private(private);
                match write_node_key_file(path, &key.private, false) {
                    Ok(()) => Ok(key),
                    // Another process created it first: use theirs.
                    Err(KeyFileError::Exists { .. }) => {
                        read_node_key_file(path).map(Self::from_private)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
