//! A JT/T 808 terminal for tests and benchmarks: it speaks to a
//! [`Server`](super::Server) the way a vehicle terminal would, and can
//! misbehave the ways real ones do (torn frames, bad checksums, dropped
//! connections).
//!
//! Each request method sends one message and waits for the platform's
//! answer to it, matched by serial; answers to other serials that arrive
//! meanwhile are kept for [`Terminal::answer`].

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{
    Authentication, BatchKind, Frame, FrameDecoder, GeneralResponse, Header, LocationBatch,
    LocationReport, Message, RegisterResponse, Registration, escape, unescape,
};

pub struct Terminal {
    addr: SocketAddr,
    phone: String,
    /// `Some` speaks 2019 headers with this version byte.
    version: Option<u8>,
    stream: TcpStream,
    decoder: FrameDecoder,
    serial: u16,
    /// Platform frames read while waiting for another answer.
    inbox: Vec<Frame>,
    /// How long a request waits for its answer.
    pub answer_timeout: Duration,
}

fn invalid(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    // A torn frame's halves are to go out as two segments, and no
    // request is to wait for the previous one's ack.
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Terminal {
    /// A 2013 terminal with `phone` connected to `addr`.
    pub async fn connect(addr: SocketAddr, phone: &str) -> io::Result<Self> {
        Ok(Terminal {
            addr,
            phone: phone.to_owned(),
            version: None,
            stream: connect(addr).await?,
            decoder: FrameDecoder::new(),
            serial: 0,
            inbox: Vec::new(),
            answer_timeout: Duration::from_secs(5),
        })
    }

    /// Speaks 2019 headers with `version` (1 is the 2019 revision) from now.
    pub fn with_version(mut self, version: u8) -> Self {
        self.version = Some(version);
        self
    }

    pub fn phone(&self) -> &str {
        &self.phone
    }

    /// Drops the connection and opens a new one; the serial goes on, as a
    /// terminal's does, and the platform's authentication does not.
    pub async fn reconnect(&mut self) -> io::Result<()> {
        let _ = self.stream.shutdown().await;
        self.stream = connect(self.addr).await?;
        self.decoder = FrameDecoder::new();
        self.inbox.clear();
        Ok(())
    }

    /// Registers; the auth code or the refusal.
    pub async fn register(&mut self, registration: &Registration) -> io::Result<RegisterResponse> {
        let serial = self.send(&Message::Register(registration.clone())).await?;
        match self.answer(serial).await? {
            Message::RegisterResponse(response) => Ok(response),
            other => Err(invalid(format!("0x0100 answered with {other:?}"))),
        }
    }

    pub async fn authenticate(&mut self, code: &str) -> io::Result<GeneralResponse> {
        let auth = Authentication {
            code: code.to_owned(),
            imei: self.version.map(|_| "860000000000001".to_owned()),
            software_version: self.version.map(|_| "sim-1.0".to_owned()),
        };
        self.request(&Message::Authenticate(auth)).await
    }

    pub async fn heartbeat(&mut self) -> io::Result<GeneralResponse> {
        self.request(&Message::Heartbeat).await
    }

    pub async fn logout(&mut self) -> io::Result<GeneralResponse> {
        self.request(&Message::Logout).await
    }

    pub async fn location(&mut self, report: &LocationReport) -> io::Result<GeneralResponse> {
        self.request(&Message::Location(report.clone())).await
    }

    /// A 0x0704 of `reports`.
    pub async fn batch(
        &mut self,
        kind: BatchKind,
        reports: &[LocationReport],
    ) -> io::Result<GeneralResponse> {
        let batch = LocationBatch {
            kind,
            reports: reports.to_vec(),
        };
        self.request(&Message::LocationBatch(batch)).await
    }

    /// Sends `message` and waits for its 0x8001.
    pub async fn request(&mut self, message: &Message) -> io::Result<GeneralResponse> {
        let serial = self.send(message).await?;
        self.general_answer(serial).await
    }

    /// The 0x8001 answering `serial`.
    pub async fn general_answer(&mut self, serial: u16) -> io::Result<GeneralResponse> {
        match self.answer(serial).await? {
            Message::PlatformResponse(response) => Ok(response),
            other => Err(invalid(format!("answered with {other:?}"))),
        }
    }

    /// The frame of `message` with the next serial, encoded.
    pub fn frame(&mut self, message: &Message) -> io::Result<(u16, Vec<u8>)> {
        self.serial = self.serial.wrapping_add(1);
        let mut header = Header::new(message.id(), &self.phone, self.serial);
        header.version = self.version;
        let frame = message.to_frame(header).map_err(invalid)?;
        Ok((self.serial, frame.encode().map_err(invalid)?))
    }

    /// Sends `message`; its serial.
    pub async fn send(&mut self, message: &Message) -> io::Result<u16> {
        let (serial, bytes) = self.frame(message)?;
        self.stream.write_all(&bytes).await?;
        Ok(serial)
    }

    /// Sends `message` in two writes `pause` apart, torn in the middle.
    pub async fn send_torn(&mut self, message: &Message, pause: Duration) -> io::Result<u16> {
        let (serial, bytes) = self.frame(message)?;
        let (first, second) = bytes.split_at(bytes.len() / 2);
        self.stream.write_all(first).await?;
        self.stream.flush().await?;
        tokio::time::sleep(pause).await;
        self.stream.write_all(second).await?;
        Ok(serial)
    }

    /// Sends `message` with its checksum wrong.
    pub async fn send_bad_checksum(&mut self, message: &Message) -> io::Result<u16> {
        let (serial, bytes) = self.frame(message)?;
        // Flipped on the unescaped content, so whatever the sum was the
        // frame stays well escaped and only the sum is wrong.
        let (mut content, _) = unescape(&bytes[1..bytes.len() - 1]);
        if let Some(sum) = content.last_mut() {
            *sum ^= 0xff;
        }
        let bytes = escape(&content);
        self.stream.write_all(&bytes).await?;
        Ok(serial)
    }

    /// Writes `bytes` as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The platform's answer to the frame with `serial`, waiting up to
    /// [`answer_timeout`](Self::answer_timeout).
    pub async fn answer(&mut self, serial: u16) -> io::Result<Message> {
        let answers = |frame: &Frame| match Message::decode(frame) {
            Ok(Message::PlatformResponse(r)) => r.serial == serial,
            Ok(Message::RegisterResponse(r)) => r.serial == serial,
            _ => false,
        };
        let deadline = tokio::time::Instant::now() + self.answer_timeout;
        loop {
            if let Some(i) = self.inbox.iter().position(answers) {
                let frame = self.inbox.remove(i);
                return Message::decode(&frame).map_err(invalid);
            }
            self.read_frames(deadline).await?;
        }
    }

    /// Whether the platform closes the connection within `within`, reading
    /// (and keeping) whatever it sends until then.
    pub async fn closed_within(&mut self, within: Duration) -> io::Result<bool> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.read_frames(deadline).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads once and moves the frames that completed into the inbox.
    async fn read_frames(&mut self, deadline: tokio::time::Instant) -> io::Result<()> {
        let mut buf = [0u8; 2048];
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let n = match timeout(left, self.stream.read(&mut buf)).await {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
            Ok(read) => read?,
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.decoder.push(&buf[..n]);
        while let Some(frame) = self.decoder.next_frame() {
            self.inbox.push(frame.map_err(invalid)?);
        }
        Ok(())
    }
}
