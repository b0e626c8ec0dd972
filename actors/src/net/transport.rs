//! The transport seam: how a node gets byte pipes to its peers.
//!
//! Everything above this trait (Noise, framing, Hello, the session rules, the PeerManager) is
//! the same whatever the pipe is. The node runs on [`TcpTransport`] in production; the
//! simulator (`spacetime-sim`) implements the trait over in-memory `tokio::io::duplex` pairs
//! with latency, bandwidth, loss and partitions.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// A connected, ordered, reliable byte pipe (a TCP connection or a simulated one).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed [`Stream`]: sessions hold one whatever the transport.
pub type BoxStream = Box<dyn Stream>;

/// A boxed future, for the object-safe transport traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Opens connections and listeners. One instance per node: a dial leaves from that node.
pub trait Transport: Send + Sync + 'static {
    /// Binds a listener on `addr` (port 0 picks a free port).
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>>;

    /// Connects to `addr`. Callers bound the time it may take.
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>>;
}

/// A bound listener.
pub trait Listener: Send + 'static {
    /// The address actually bound.
    fn local_addr(&self) -> SocketAddr;

    /// The next inbound connection and the address it came from.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>>;
}

/// The production transport: TCP sockets of the operating system.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'_, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            Ok(Box::new(TcpAcceptor { listener, local }) as Box<dyn Listener>)
        })
    }

    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }
}

/// A TCP listener.
#[derive(Debug)]
struct TcpAcceptor {
    listener: TcpListener,
    local: SocketAddr,
}

impl Listener for TcpAcceptor {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, addr) = self.listener.accept().await?;
            Ok((Box::new(stream) as BoxStream, addr))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn tcp_transport_connects_and_carries_bytes() {
        let transport = TcpTransport;
        let mut listener = transport
            .listen("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr();
        assert_ne!(addr.port(), 0);
        let dial = tokio::spawn(transport.dial(addr));
        let (mut inbound, from) = listener.accept().await.unwrap();
        let mut outbound = dial.await.unwrap().unwrap();
        assert!(from.ip().is_loopback());
        outbound.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        inbound.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }

    #[tokio::test]
    async fn dialling_a_closed_port_fails() {
        let transport = TcpTransport;
        let listener = transport
            .listen("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr();
        drop(listener);
        assert!(transport.dial(addr).await.is_err());
    }
}
