//! A blocking raw-TCP RESP client that returns replies as their exact bytes.
//!
//! `Conn` does no decoding: the differential tests compare bytes, and protocol
//! tests need to see exactly what the server wrote. Every read has a timeout
//! so that a server that never answers fails the test instead of hanging it.

use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

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

/// One client connection to a server.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> io::Result<Conn> {
        Self::connect_addr(
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            CONNECT_TIMEOUT,
        )
    }

    /// Connects to `addr` within `timeout`, with the standard read timeout set.
    pub fn connect_addr(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Conn {
            reader: BufReader::new(stream),
            writer,
        })
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
}
