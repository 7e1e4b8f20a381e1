//! A minimal RESP2 client: a buffered connection that sends pre-encoded pipelined commands
//! (the caller appends RESP to `wbuf`) and parses the replies.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One reply, with bulk payloads kept only when asked (GET values are skipped).
#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

pub struct Conn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    rpos: usize,
    rend: usize,
    pub wbuf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Conn { stream, rbuf: vec![0; 1 << 18], rpos: 0, rend: 0, wbuf: Vec::with_capacity(1 << 16) })
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.wbuf)?;
        self.wbuf.clear();
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            self.rbuf.copy_within(self.rpos..self.rend, 0);
            self.rend -= self.rpos;
            self.rpos = 0;
            if self.rend == self.rbuf.len() {
                let n = self.rbuf.len();
                self.rbuf.resize(n * 2, 0);
            }
        }
        let n = self.stream.read(&mut self.rbuf[self.rend..])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection"));
        }
        self.rend += n;
        Ok(())
    }

    fn byte(&mut self) -> io::Result<u8> {
        if self.rpos == self.rend {
            self.fill()?;
        }
        let b = self.rbuf[self.rpos];
        self.rpos += 1;
        Ok(b)
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.rbuf[self.rpos..self.rend].windows(2).position(|w| w == b"\r\n") {
                let s = String::from_utf8_lossy(&self.rbuf[self.rpos..self.rpos + i]).into_owned();
                self.rpos += i + 2;
                return Ok(s);
            }
            self.fill()?;
        }
    }

    fn skip_or_take(&mut self, len: usize, keep: bool) -> io::Result<Option<Vec<u8>>> {
        let mut out = if keep { Some(Vec::with_capacity(len)) } else { None };
        let mut left = len + 2;
        while left > 0 {
            if self.rpos == self.rend {
                self.fill()?;
            }
            let n = left.min(self.rend - self.rpos);
            if let Some(o) = out.as_mut() {
                let take = n.min(len.saturating_sub(o.len()));
                o.extend_from_slice(&self.rbuf[self.rpos..self.rpos + take]);
            }
            self.rpos += n;
            left -= n;
        }
        Ok(out)
    }

    fn num(s: &str) -> io::Result<i64> {
        s.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad RESP number '{s}'")))
    }

    /// Reads one reply; bulk payloads are kept only if `keep` (else `Bulk(Some(empty))`).
    pub fn read(&mut self, keep: bool) -> io::Result<Reply> {
        let t = self.byte()?;
        let line = self.line()?;
        Ok(match t {
            b'+' => Reply::Status(line),
            b'-' => Reply::Error(line),
            b':' => Reply::Int(Self::num(&line)?),
            b'$' => {
                let n = Self::num(&line)?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    Reply::Bulk(Some(self.skip_or_take(n as usize, keep)?.unwrap_or_default()))
                }
            }
            b'*' => {
                let n = Self::num(&line)?;
                if n < 0 {
                    Reply::Array(None)
                } else {
                    let mut v = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        v.push(self.read(keep)?);
                    }
                    Reply::Array(Some(v))
                }
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad RESP type byte {t:#x}"))),
        })
    }
}
