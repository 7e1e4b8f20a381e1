//! A blocking raw-TCP RESP client that returns replies as their exact bytes.
//!
//! `Conn` does no decoding: the differential tests compare bytes, and protocol
//! tests need to see exactly what the server wrote. Every read has a timeout
//! so that a server that never answers fails the test instead of hanging it.

use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::resp;

/// How long a read may wait for the server before the call fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Encodes a command as a RESP multibulk (`*N\r\n$len\r\narg\r\n...`).
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What [`Conn::read_until_closed`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    /// Every byte received before the connection closed or the wait ended.
    pub bytes: Vec<u8>,
    /// True if the server closed the connection (EOF or reset) within the wait.
    pub closed: bool,
}

/// True for the errors a socket reports once the peer has closed or reset it.
pub fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// One client connection to a server.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> io::Result<Conn> {
        Self::connect_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), CONNECT_TIMEOUT)
    }

    /// Connects to `addr` within `timeout`, with the standard read timeout set.
    pub fn connect_addr(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Conn { reader: BufReader::new(stream), writer })
    }

    /// Changes the read timeout (`None` blocks forever: avoid in tests).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(timeout)
    }

    /// Sends one command as a RESP multibulk without reading the reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send_raw(&encode_command(args))
    }

    /// Sends one command and returns its complete reply as raw bytes.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Vec<u8>> {
        self.send(args)?;
        self.read_reply_raw()
    }

    /// Writes `bytes` to the socket as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)?;
        self.writer.flush()
    }

    /// Reads exactly one complete RESP2/RESP3 reply and returns its raw bytes.
    ///
    /// Fails with `TimedOut`/`WouldBlock` if nothing complete arrives within
    /// the read timeout, with `UnexpectedEof` if the server closed the
    /// connection, and with `InvalidData` if the bytes are not valid RESP.
    pub fn read_reply_raw(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        resp::read_reply(&mut self.reader, &mut out)?;
        Ok(out)
    }

    /// Reads every byte the server sends until it closes the connection or
    /// `wait` has passed, whichever comes first (a reset counts as closed).
    ///
    /// Use it after sending something the server must answer by closing: the
    /// wait is a bound for a failing server, not a synchronisation delay.
    pub fn read_until_closed(&mut self, wait: Duration) -> io::Result<Drained> {
        let deadline = Instant::now() + wait;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(false);
            }
            self.writer.set_read_timeout(Some(left.min(Duration::from_millis(200))))?;
            match self.reader.read(&mut chunk) {
                Ok(0) => break Ok(true),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if is_disconnect(&e) => break Ok(true),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => break Err(e),
            }
        };
        self.writer.set_read_timeout(Some(READ_TIMEOUT))?;
        result.map(|closed| Drained { bytes, closed })
    }

    /// A second handle on the socket, for writing from another thread while
    /// this `Conn` reads (a big pipeline must not deadlock on full buffers).
    pub fn try_clone_stream(&self) -> io::Result<TcpStream> {
        self.writer.try_clone()
    }

    /// The client side address of the connection (what the server calls `addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.writer.local_addr()
    }

    /// The server side address of the connection (what the server calls `laddr`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.writer.peer_addr()
    }
}
