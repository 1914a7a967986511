//! JT/T 808, the protocol Chinese in-vehicle Beidou/GNSS terminals speak
//! to a platform over TCP: JT/T 808-2013, and the 2019 revision where it
//! is cheap (the version flag in the body properties, the version byte and
//! the 10-byte BCD phone number, the longer registration fields, the
//! 2019 authentication body).
//!
//! # Framing
//!
//! A frame is `0x7e header body checksum 0x7e`, with `0x7e` escaped as
//! `0x7d 0x02` and `0x7d` as `0x7d 0x01` between the delimiters, and the
//! checksum the XOR of header and body. [`FrameDecoder`] takes the bytes
//! of a connection as they arrive and yields whole frames: torn frames
//! wait for their rest, several frames in one read all come out, bytes
//! outside delimiters are skipped, and a bad frame (checksum, escape,
//! length, a body above [`MAX_BODY`] bytes) is one error that does not
//! cost the frames after it. A terminal's phone number (its identity) is
//! read as decimal digits without the leading zeros the BCD field pads
//! with, so a terminal is the same phone in 2013 and 2019 headers.
//!
//! # Messages and answers
//!
//! | id     | message                       | before authentication | answer                          |
//! |--------|-------------------------------|-----------------------|---------------------------------|
//! | 0x0001 | terminal general response     | taken                 | none (answers are not answered) |
//! | 0x0002 | heartbeat                     | taken                 | 0x8001 ok                       |
//! | 0x0003 | terminal logout (注销)        | taken                 | 0x8001 ok                       |
//! | 0x0100 | registration                  | taken                 | 0x8100 auth code or refusal     |
//! | 0x0102 | authentication                | taken                 | 0x8001 ok or failure            |
//! | 0x0200 | location report               | 0x8001 failure        | 0x8001 ok once stored           |
//! | 0x0704 | batch location upload         | 0x8001 failure        | 0x8001 ok once stored           |
//! | other  | —                             | 0x8001 unsupported    | 0x8001 unsupported (result 3)   |
//!
//! The platform's own messages (0x8001, 0x8100) are decoded for the
//! simulator; a terminal sending them gets "unsupported". So do
//! subpackaged and RSA-encrypted messages: the server does not reassemble
//! packages or decrypt.
//!
//! A frame whose header can still be read but whose checksum, escape or
//! length is wrong, that is too long (a body above 1,023 bytes, all the
//! 10-bit length can say), or whose body does not parse, is answered
//! with 0x8001
//! result 2 ("message error"): the standard has the receiver of a bad
//! checksum answer rather than stay silent, and an answer stops the
//! terminal from waiting out its retry timer. A frame whose header cannot
//! be read cannot be answered and is only counted. Either way the
//! connection stays up.
//!
//! # Acknowledged means committed
//!
//! A location report (0x0200) or batch (0x0704) is answered 0x8001 ok only
//! after [`Terminals::locations`] returned `Ok`, that is after the reports
//! are stored. If storing fails the answer is result 1 (failure) and the
//! terminal keeps the reports and sends them again. Frames of one
//! connection are handled one at a time, so a slow store slows that
//! terminal down instead of piling its reports up in memory.
//!
//! Before a successful 0x0102 only 0x0001, 0x0002, 0x0003, 0x0100 and
//! 0x0102 are taken; a location gets result 1 and is not stored. After
//! it, only frames carrying the authenticated phone count as
//! authenticated. A connection with no frame for
//! [`Server::idle_timeout`] (3 × 60 s by default) is closed.
//!
//! [`sim::Terminal`] is a terminal for tests and benchmarks.

pub mod sim;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::core::calendar::{civil_from_days, days_from_civil};

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

const FLAG: u8 = 0x7e;
const ESCAPE: u8 = 0x7d;

/// The largest body the 10-bit length field can announce.
pub const MAX_BODY: usize = 1023;
/// id, properties, version, 10-byte phone, serial, package total/index.
const MAX_HEADER: usize = 2 + 2 + 1 + 10 + 2 + 4;
/// Header, body and checksum, unescaped.
const MAX_CONTENT: usize = MAX_HEADER + MAX_BODY + 1;
/// Every byte of the content escaped.
const MAX_ESCAPED: usize = 2 * MAX_CONTENT;

const PROP_LENGTH: u16 = 0x03ff;
const PROP_ENCRYPTION_SHIFT: u16 = 10;
const PROP_SUBPACKAGE: u16 = 1 << 13;
const PROP_VERSION: u16 = 1 << 14;

/// A frame's header. `version` is `Some` for a 2019 header (the version
/// flag set, a version byte, a 10-byte phone number), `None` for 2013.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// The three encryption bits: 0 none, 1 RSA.
    pub encryption: u8,
    pub version: Option<u8>,
    /// Decimal digits without the BCD field's leading zero padding ("0"
    /// if all zero).
    pub phone: String,
    pub serial: u16,
    pub subpackage: Option<Subpackage>,
}

impl Header {
    /// A 2013 header, no encryption, no subpackage.
    pub fn new(id: u16, phone: &str, serial: u16) -> Self {
        Header {
            id,
            encryption: 0,
            version: None,
            phone: phone.to_owned(),
            serial,
            subpackage: None,
        }
    }

    /// `phone`'s BCD width in bytes for this header's version.
    fn phone_bytes(&self) -> usize {
        if self.version.is_some() { 10 } else { 6 }
    }

    fn len(&self) -> usize {
        2 + 2
            + usize::from(self.version.is_some())
            + self.phone_bytes()
            + 2
            + if self.subpackage.is_some() { 4 } else { 0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subpackage {
    pub total: u16,
    /// 1-based.
    pub index: u16,
}

/// One frame: its header and its (still encoded) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub body: Vec<u8>,
}

impl Frame {
    /// The escaped frame with its delimiters, ready to write. The body
    /// length and the flags come from `body` and the header's options.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let header = &self.header;
        if self.body.len() > MAX_BODY {
            return Err(FrameError::new(FrameErrorKind::TooLong));
        }
        let mut content = Vec::with_capacity(header.len() + self.body.len() + 1);
        content.extend_from_slice(&header.id.to_be_bytes());
        // The length fits the 10 bits: checked above.
        let mut properties =
            self.body.len() as u16 | (u16::from(header.encryption & 0x07) << PROP_ENCRYPTION_SHIFT);
        if header.subpackage.is_some() {
            properties |= PROP_SUBPACKAGE;
        }
        if header.version.is_some() {
            properties |= PROP_VERSION;
        }
        content.extend_from_slice(&properties.to_be_bytes());
        if let Some(version) = header.version {
            content.push(version);
        }
        let phone = encode_phone(&header.phone, header.phone_bytes())
            .ok_or_else(|| FrameError::new(FrameErrorKind::BadPhone))?;
        content.extend_from_slice(&phone);
        content.extend_from_slice(&header.serial.to_be_bytes());
        if let Some(Subpackage { total, index }) = header.subpackage {
            content.extend_from_slice(&total.to_be_bytes());
            content.extend_from_slice(&index.to_be_bytes());
        }
        content.extend_from_slice(&self.body);
        content.push(checksum(&content));
        Ok(escape(&content))
    }
}

/// The XOR of `bytes`: a frame's checksum over its header and body.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |sum, b| sum ^ b)
}

/// `content` escaped and between delimiters.
pub fn escape(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 8 + 2);
    out.push(FLAG);
    for &b in content {
        match b {
            FLAG => out.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => out.extend_from_slice(&[ESCAPE, 0x01]),
            b => out.push(b),
        }
    }
    out.push(FLAG);
    out
}

/// The bytes between two delimiters unescaped, and whether every escape
/// was a valid one. An invalid escape is kept as it came so the header
/// can still be read for the answer.
pub fn unescape(escaped: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(escaped.len());
    let mut valid = true;
    let mut bytes = escaped.iter().copied();
    while let Some(b) = bytes.next() {
        if b != ESCAPE {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(0x01) => out.push(ESCAPE),
            Some(0x02) => out.push(FLAG),
            Some(other) => {
                valid = false;
                out.extend_from_slice(&[ESCAPE, other]);
            }
            None => {
                valid = false;
                out.push(ESCAPE);
            }
        }
    }
    (out, valid)
}

/// What was wrong with a frame, and its header when that could still be
/// read (then the frame can be answered).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct FrameError {
    pub kind: FrameErrorKind,
    pub header: Option<Header>,
}

impl FrameError {
    fn new(kind: FrameErrorKind) -> Self {
        FrameError { kind, header: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameErrorKind {
    #[error("bad checksum")]
    BadChecksum,
    #[error("bad escape sequence")]
    BadEscape,
    #[error("frame shorter than its header")]
    TooShort,
    #[error("frame larger than {MAX_BODY} body bytes and a header")]
    TooLong,
    #[error("body length differs from the header's")]
    BadLength,
    #[error("phone number is not BCD")]
    BadPhone,
}

/// Splits a byte stream into frames. Feed it with [`push`](Self::push),
/// drain it with [`next_frame`](Self::next_frame) until `None`.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed; dropped on the next push.
    start: usize,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame, or an error for the next bad one; `None`
    /// when the rest is an incomplete frame (or nothing).
    ///
    /// Junk after a bad frame and before the next flag may come out as
    /// one more error (usually without a header): out of step, junk
    /// between two flags and a frame look alike.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        loop {
            let pending = &self.buf[self.start..];
            let Some(open) = pending.iter().position(|&b| b == FLAG) else {
                // Garbage outside any frame.
                self.buf.clear();
                self.start = 0;
                return None;
            };
            self.start += open;
            let pending = &self.buf[self.start + 1..];
            match pending.iter().position(|&b| b == FLAG) {
                None if pending.len() > MAX_ESCAPED => {
                    let error = too_long(pending);
                    // The rest of this frame, until its closing flag, is
                    // skipped as garbage.
                    self.buf.clear();
                    self.start = 0;
                    return Some(Err(error));
                }
                None => return None,
                // Two flags in a row: the first closed a frame we did not
                // see the start of (or an empty one); the second opens.
                Some(0) => self.start += 1,
                Some(len) => {
                    let result = if len > MAX_ESCAPED {
                        Err(too_long(&pending[..len]))
                    } else {
                        decode_content(&pending[..len])
                    };
                    // After a good frame its closing flag is spent. After
                    // a bad one the "closing" flag may really be the
                    // opening of the next frame (we were out of step), so
                    // it is kept and at worst skipped as an empty frame.
                    self.start += 1 + len + usize::from(result.is_ok());
                    return Some(result);
                }
            }
        }
    }
}

fn too_long(escaped: &[u8]) -> FrameError {
    let head = &escaped[..escaped.len().min(2 * MAX_HEADER)];
    FrameError {
        kind: FrameErrorKind::TooLong,
        header: parse_header(&unescape(head).0).ok().map(|(h, _, _)| h),
    }
}

fn decode_content(escaped: &[u8]) -> Result<Frame, FrameError> {
    let (content, escapes_valid) = unescape(escaped);
    let (header, body_len, header_len) = parse_header(&content).map_err(FrameError::new)?;
    let fail = |kind| FrameError {
        kind,
        header: Some(header.clone()),
    };
    let Some((&sum, covered)) = content.split_last() else {
        return Err(fail(FrameErrorKind::TooShort));
    };
    if covered.len() < header_len {
        return Err(fail(FrameErrorKind::TooShort));
    }
    if !escapes_valid {
        return Err(fail(FrameErrorKind::BadEscape));
    }
    if checksum(covered) != sum {
        return Err(fail(FrameErrorKind::BadChecksum));
    }
    let body = &covered[header_len..];
    if body.len() > MAX_BODY {
        return Err(fail(FrameErrorKind::TooLong));
    }
    if body.len() != body_len {
        return Err(fail(FrameErrorKind::BadLength));
    }
    Ok(Frame {
        body: body.to_vec(),
        header,
    })
}

/// The header at the start of `content`, the body length it announces,
/// and its own length.
fn parse_header(content: &[u8]) -> Result<(Header, usize, usize), FrameErrorKind> {
    let mut r = Reader::new(content);
    let short = |_| FrameErrorKind::TooShort;
    let id = r.u16().map_err(short)?;
    let properties = r.u16().map_err(short)?;
    let version = if properties & PROP_VERSION != 0 {
        Some(r.u8().map_err(short)?)
    } else {
        None
    };
    let phone_len = if version.is_some() { 10 } else { 6 };
    let phone = decode_phone(r.bytes(phone_len).map_err(short)?).ok_or(FrameErrorKind::BadPhone)?;
    let serial = r.u16().map_err(short)?;
    let subpackage = if properties & PROP_SUBPACKAGE != 0 {
        Some(Subpackage {
            total: r.u16().map_err(short)?,
            index: r.u16().map_err(short)?,
        })
    } else {
        None
    };
    let header = Header {
        id,
        encryption: ((properties >> PROP_ENCRYPTION_SHIFT) & 0x07) as u8,
        version,
        phone,
        serial,
        subpackage,
    };
    Ok((header, usize::from(properties & PROP_LENGTH), r.pos))
}

/// BCD digits without leading zeros; `None` if a nibble is not a digit.
pub fn decode_phone(bcd: &[u8]) -> Option<String> {
    Some(phone_number(&decode_bcd(bcd)?))
}

/// A phone number as the server reads it from a header: the digits
/// without leading zeros ("0" for none).
pub fn phone_number(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }.to_owned()
}

/// `phone` left-padded with zeros to `bytes` BCD bytes; `None` if it is
/// not all digits or too long.
pub fn encode_phone(phone: &str, bytes: usize) -> Option<Vec<u8>> {
    let width = 2 * bytes;
    if phone.is_empty() || phone.len() > width || !phone.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{phone:0>width$}");
    Some(
        padded
            .as_bytes()
            .chunks(2)
            .map(|pair| ((pair[0] - b'0') << 4) | (pair[1] - b'0'))
            .collect(),
    )
}

fn decode_bcd(bcd: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(2 * bcd.len());
    for &b in bcd {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from_digit(u32::from(nibble), 10)?);
        }
    }
    Some(out)
}

/// Seconds east of UTC of the BCD times terminals send (Beijing time).
const GMT8: i64 = 8 * 3600;

/// A BCD `YYMMDDhhmmss` in GMT+8 as unix seconds.
pub fn decode_bcd_time(bcd: &[u8; 6]) -> Option<i64> {
    let mut fields = [0u32; 6];
    for (field, &b) in fields.iter_mut().zip(bcd) {
        let (high, low) = (b >> 4, b & 0x0f);
        if high > 9 || low > 9 {
            return None;
        }
        *field = u32::from(high * 10 + low);
    }
    let [yy, month, day, hour, minute, second] = fields;
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let year = 2000 + i64::from(yy);
    let days = days_from_civil(year, month, day);
    // Rejects 31 April and the like, which would roll into the next month.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - GMT8)
}

/// Unix seconds as a BCD `YYMMDDhhmmss` in GMT+8; `None` outside
/// 2000-2099, which the two year digits cannot say.
pub fn encode_bcd_time(unix: i64) -> Option<[u8; 6]> {
    let local = unix.checked_add(GMT8)?;
    let (days, seconds) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(2000..=2099).contains(&year) {
        return None;
    }
    let fields = [
        (year - 2000) as u32,
        month,
        day,
        (seconds / 3600) as u32,
        (seconds % 3600 / 60) as u32,
        (seconds % 60) as u32,
    ];
    Some(fields.map(|f| (((f / 10) << 4) | (f % 10)) as u8))
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

pub mod id {
    pub const TERMINAL_RESPONSE: u16 = 0x0001;
    pub const HEARTBEAT: u16 = 0x0002;
    pub const LOGOUT: u16 = 0x0003;
    pub const REGISTER: u16 = 0x0100;
    pub const AUTHENTICATE: u16 = 0x0102;
    pub const LOCATION: u16 = 0x0200;
    pub const LOCATION_BATCH: u16 = 0x0704;
    pub const PLATFORM_RESPONSE: u16 = 0x8001;
    pub const REGISTER_RESPONSE: u16 = 0x8100;
}

/// A message body that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("body ends early")]
    Truncated,
    #[error("bad {0}")]
    Bad(&'static str),
    #[error("{0} too long for its field")]
    TooLong(&'static str),
}

/// The result of a general response (0x0001, 0x8001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseResult {
    Ok = 0,
    Failure = 1,
    /// "消息有误": the message was malformed.
    BadMessage = 2,
    Unsupported = 3,
    /// 0x8001 only.
    AlarmConfirmed = 4,
}

impl ResponseResult {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Ok,
            1 => Self::Failure,
            2 => Self::BadMessage,
            3 => Self::Unsupported,
            4 => Self::AlarmConfirmed,
            _ => return None,
        })
    }
}

/// 0x0001 or 0x8001: the answer to the message `id` with `serial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneralResponse {
    pub serial: u16,
    pub id: u16,
    pub result: ResponseResult,
}

/// Why a registration is refused (0x8100 results 1-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RegisterResult {
    #[error("vehicle already registered")]
    VehicleRegistered = 1,
    #[error("no such vehicle")]
    NoSuchVehicle = 2,
    #[error("terminal already registered")]
    TerminalRegistered = 3,
    #[error("no such terminal")]
    NoSuchTerminal = 4,
}

/// 0x8100: the answer to the registration with `serial`: the auth code,
/// or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterResponse {
    pub serial: u16,
    pub outcome: Result<String, RegisterResult>,
}

/// 0x0100. Strings are decoded from GBK (unmappable bytes become U+FFFD)
/// with the NUL (and space) padding of the fixed fields trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registration {
    /// GB/T 2260 province code.
    pub province: u16,
    /// GB/T 2260 city or county code.
    pub city: u16,
    /// 5 bytes (2013), 11 bytes (2019).
    pub maker: String,
    /// 20 bytes (2013), 30 bytes (2019).
    pub model: String,
    /// 7 bytes (2013), 30 bytes (2019).
    pub terminal_id: String,
    /// JT/T 415 colour; 0 when the vehicle has no plate yet, and then
    /// `plate` is its VIN.
    pub plate_colour: u8,
    pub plate: String,
}

/// 0x0102. `imei` and `software_version` come with 2019 terminals only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Authentication {
    pub code: String,
    pub imei: Option<String>,
    pub software_version: Option<String>,
}

/// An additional item of a location report the report does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub id: u8,
    pub data: Vec<u8>,
}

/// Status bits the coordinates' signs come from.
pub const STATUS_SOUTH: u32 = 1 << 2;
pub const STATUS_WEST: u32 = 1 << 3;

const EXTRA_MILEAGE: u8 = 0x01;
const EXTRA_SIGNAL: u8 = 0x30;
const EXTRA_SATELLITES: u8 = 0x31;

/// 0x0200, and each item of a 0x0704.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocationReport {
    pub alarm: u32,
    /// As sent, south and west bits included.
    pub status: u32,
    /// Degrees, negative south (the status south bit).
    pub latitude: f64,
    /// Degrees, negative west (the status west bit).
    pub longitude: f64,
    pub altitude_m: u16,
    pub speed_kmh: f64,
    /// Degrees from north, 0-359.
    pub heading: u16,
    /// Unix seconds (the terminal sends GMT+8).
    pub at: i64,
    /// Additional item 0x01, the odometer.
    pub mileage_km: Option<f64>,
    /// Additional item 0x30, the mobile network signal strength.
    pub signal: Option<u8>,
    /// Additional item 0x31, GNSS satellites in view.
    pub satellites: Option<u8>,
    /// The other additional items, in order, as sent.
    pub extras: Vec<Extra>,
}

/// The data type of a 0x0704 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Normal = 0,
    /// Reports kept while the terminal had no network ("盲区补报").
    Backfill = 1,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocationBatch {
    pub kind: BatchKind,
    pub reports: Vec<LocationReport>,
}

/// A decoded message body; which one is the header's id.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    TerminalResponse(GeneralResponse),
    Heartbeat,
    Logout,
    Register(Registration),
    Authenticate(Authentication),
    Location(LocationReport),
    LocationBatch(LocationBatch),
    PlatformResponse(GeneralResponse),
    RegisterResponse(RegisterResponse),
    /// Any other id, body untouched.
    Unknown {
        id: u16,
        body: Vec<u8>,
    },
}

impl Message {
    pub fn id(&self) -> u16 {
        match self {
            Message::TerminalResponse(_) => id::TERMINAL_RESPONSE,
            Message::Heartbeat => id::HEARTBEAT,
            Message::Logout => id::LOGOUT,
            Message::Register(_) => id::REGISTER,
            Message::Authenticate(_) => id::AUTHENTICATE,
            Message::Location(_) => id::LOCATION,
            Message::LocationBatch(_) => id::LOCATION_BATCH,
            Message::PlatformResponse(_) => id::PLATFORM_RESPONSE,
            Message::RegisterResponse(_) => id::REGISTER_RESPONSE,
            Message::Unknown { id, .. } => *id,
        }
    }

    /// The body of `frame`, by its header's id and version.
    pub fn decode(frame: &Frame) -> Result<Message, MessageError> {
        let v2019 = frame.header.version.is_some();
        let mut r = Reader::new(&frame.body);
        Ok(match frame.header.id {
            id::TERMINAL_RESPONSE => Message::TerminalResponse(decode_general(&mut r)?),
            id::PLATFORM_RESPONSE => Message::PlatformResponse(decode_general(&mut r)?),
            id::HEARTBEAT => Message::Heartbeat,
            id::LOGOUT => Message::Logout,
            id::REGISTER => {
                let (maker, model, terminal) = registration_widths(v2019);
                Message::Register(Registration {
                    province: r.u16()?,
                    city: r.u16()?,
                    maker: fixed_string(r.bytes(maker)?),
                    model: fixed_string(r.bytes(model)?),
                    terminal_id: fixed_string(r.bytes(terminal)?),
                    plate_colour: r.u8()?,
                    plate: fixed_string(r.rest()),
                })
            }
            id::REGISTER_RESPONSE => {
                let serial = r.u16()?;
                let outcome = match r.u8()? {
                    0 => Ok(gbk(r.rest())),
                    1 => Err(RegisterResult::VehicleRegistered),
                    2 => Err(RegisterResult::NoSuchVehicle),
                    3 => Err(RegisterResult::TerminalRegistered),
                    4 => Err(RegisterResult::NoSuchTerminal),
                    _ => return Err(MessageError::Bad("registration result")),
                };
                Message::RegisterResponse(RegisterResponse { serial, outcome })
            }
            id::AUTHENTICATE if v2019 => {
                let len = r.u8()?;
                Message::Authenticate(Authentication {
                    code: gbk(r.bytes(usize::from(len))?),
                    imei: Some(fixed_string(r.bytes(15)?)),
                    software_version: Some(fixed_string(r.bytes(20)?)),
                })
            }
            id::AUTHENTICATE => Message::Authenticate(Authentication {
                code: gbk(r.rest()),
                imei: None,
                software_version: None,
            }),
            id::LOCATION => Message::Location(decode_location(&mut r)?),
            id::LOCATION_BATCH => {
                let count = r.u16()?;
                let kind = match r.u8()? {
                    0 => BatchKind::Normal,
                    1 => BatchKind::Backfill,
                    _ => return Err(MessageError::Bad("batch type")),
                };
                let mut reports = Vec::with_capacity(usize::from(count).min(64));
                for _ in 0..count {
                    let len = r.u16()?;
                    let mut item = Reader::new(r.bytes(usize::from(len))?);
                    reports.push(decode_location(&mut item)?);
                }
                Message::LocationBatch(LocationBatch { kind, reports })
            }
            id => Message::Unknown {
                id,
                body: frame.body.clone(),
            },
        })
    }

    /// The body of this message for a header of `version` (`Some` for
    /// 2019).
    pub fn encode_body(&self, version: Option<u8>) -> Result<Vec<u8>, MessageError> {
        let v2019 = version.is_some();
        let mut w = Vec::new();
        match self {
            Message::TerminalResponse(response) | Message::PlatformResponse(response) => {
                w.extend_from_slice(&response.serial.to_be_bytes());
                w.extend_from_slice(&response.id.to_be_bytes());
                w.push(response.result as u8);
            }
            Message::Heartbeat | Message::Logout => {}
            Message::Register(reg) => {
                let (maker, model, terminal) = registration_widths(v2019);
                w.extend_from_slice(&reg.province.to_be_bytes());
                w.extend_from_slice(&reg.city.to_be_bytes());
                put_fixed(&mut w, &reg.maker, maker, "maker")?;
                put_fixed(&mut w, &reg.model, model, "model")?;
                put_fixed(&mut w, &reg.terminal_id, terminal, "terminal id")?;
                w.push(reg.plate_colour);
                w.extend_from_slice(&to_gbk(&reg.plate));
            }
            Message::RegisterResponse(response) => {
                w.extend_from_slice(&response.serial.to_be_bytes());
                match &response.outcome {
                    Ok(code) => {
                        w.push(0);
                        w.extend_from_slice(&to_gbk(code));
                    }
                    Err(refusal) => w.push(*refusal as u8),
                }
            }
            Message::Authenticate(auth) => {
                let code = to_gbk(&auth.code);
                if v2019 {
                    let len =
                        u8::try_from(code.len()).map_err(|_| MessageError::TooLong("auth code"))?;
                    w.push(len);
                    w.extend_from_slice(&code);
                    put_fixed(&mut w, auth.imei.as_deref().unwrap_or(""), 15, "imei")?;
                    put_fixed(
                        &mut w,
                        auth.software_version.as_deref().unwrap_or(""),
                        20,
                        "software version",
                    )?;
                } else {
                    w.extend_from_slice(&code);
                }
            }
            Message::Location(report) => encode_location(&mut w, report)?,
            Message::LocationBatch(batch) => {
                let count = u16::try_from(batch.reports.len())
                    .map_err(|_| MessageError::TooLong("batch"))?;
                w.extend_from_slice(&count.to_be_bytes());
                w.push(batch.kind as u8);
                for report in &batch.reports {
                    let mut item = Vec::new();
                    encode_location(&mut item, report)?;
                    let len =
                        u16::try_from(item.len()).map_err(|_| MessageError::TooLong("report"))?;
                    w.extend_from_slice(&len.to_be_bytes());
                    w.extend_from_slice(&item);
                }
            }
            Message::Unknown { body, .. } => w.extend_from_slice(body),
        }
        Ok(w)
    }

    /// This message as a frame with `header`'s phone, serial and version
    /// (the header's id is replaced by this message's).
    pub fn to_frame(&self, mut header: Header) -> Result<Frame, MessageError> {
        header.id = self.id();
        let body = self.encode_body(header.version)?;
        Ok(Frame { header, body })
    }
}

fn registration_widths(v2019: bool) -> (usize, usize, usize) {
    if v2019 { (11, 30, 30) } else { (5, 20, 7) }
}

fn decode_general(r: &mut Reader<'_>) -> Result<GeneralResponse, MessageError> {
    Ok(GeneralResponse {
        serial: r.u16()?,
        id: r.u16()?,
        result: ResponseResult::from_u8(r.u8()?).ok_or(MessageError::Bad("response result"))?,
    })
}

fn decode_location(r: &mut Reader<'_>) -> Result<LocationReport, MessageError> {
    let alarm = r.u32()?;
    let status = r.u32()?;
    let latitude = f64::from(r.u32()?) / 1e6;
    let longitude = f64::from(r.u32()?) / 1e6;
    let mut report = LocationReport {
        alarm,
        status,
        latitude: if status & STATUS_SOUTH != 0 {
            -latitude
        } else {
            latitude
        },
        longitude: if status & STATUS_WEST != 0 {
            -longitude
        } else {
            longitude
        },
        altitude_m: r.u16()?,
        speed_kmh: f64::from(r.u16()?) / 10.0,
        heading: r.u16()?,
        at: {
            let bcd: [u8; 6] = r
                .bytes(6)?
                .try_into()
                .map_err(|_| MessageError::Truncated)?;
            decode_bcd_time(&bcd).ok_or(MessageError::Bad("time"))?
        },
        ..LocationReport::default()
    };
    while !r.is_empty() {
        let id = r.u8()?;
        let len = r.u8()?;
        let data = r.bytes(usize::from(len))?;
        match (id, data) {
            (EXTRA_MILEAGE, &[a, b, c, d]) => {
                report.mileage_km = Some(f64::from(u32::from_be_bytes([a, b, c, d])) / 10.0);
            }
            (EXTRA_SIGNAL, &[signal]) => report.signal = Some(signal),
            (EXTRA_SATELLITES, &[satellites]) => report.satellites = Some(satellites),
            _ => report.extras.push(Extra {
                id,
                data: data.to_vec(),
            }),
        }
    }
    Ok(report)
}

fn encode_location(w: &mut Vec<u8>, report: &LocationReport) -> Result<(), MessageError> {
    // The sign is carried by the status bits; -0.0 keeps a south bit.
    let mut status = report.status & !(STATUS_SOUTH | STATUS_WEST);
    if report.latitude.is_sign_negative() {
        status |= STATUS_SOUTH;
    }
    if report.longitude.is_sign_negative() {
        status |= STATUS_WEST;
    }
    let micro = |degrees: f64| (degrees.abs() * 1e6).round() as u32;
    w.extend_from_slice(&report.alarm.to_be_bytes());
    w.extend_from_slice(&status.to_be_bytes());
    w.extend_from_slice(&micro(report.latitude).to_be_bytes());
    w.extend_from_slice(&micro(report.longitude).to_be_bytes());
    w.extend_from_slice(&report.altitude_m.to_be_bytes());
    w.extend_from_slice(&((report.speed_kmh * 10.0).round() as u16).to_be_bytes());
    w.extend_from_slice(&report.heading.to_be_bytes());
    w.extend_from_slice(&encode_bcd_time(report.at).ok_or(MessageError::Bad("time"))?);
    if let Some(km) = report.mileage_km {
        let tenths = (km * 10.0).round() as u32;
        put_extra(w, EXTRA_MILEAGE, &tenths.to_be_bytes())?;
    }
    if let Some(signal) = report.signal {
        put_extra(w, EXTRA_SIGNAL, &[signal])?;
    }
    if let Some(satellites) = report.satellites {
        put_extra(w, EXTRA_SATELLITES, &[satellites])?;
    }
    for extra in &report.extras {
        put_extra(w, extra.id, &extra.data)?;
    }
    Ok(())
}

fn put_extra(w: &mut Vec<u8>, id: u8, data: &[u8]) -> Result<(), MessageError> {
    let len = u8::try_from(data.len()).map_err(|_| MessageError::TooLong("additional item"))?;
    w.push(id);
    w.push(len);
    w.extend_from_slice(data);
    Ok(())
}

fn gbk(bytes: &[u8]) -> String {
    encoding_rs::GBK
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

fn to_gbk(text: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(text).0.into_owned()
}

/// A fixed-width string field without its padding.
fn fixed_string(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(0, |i| i + 1);
    let start = bytes[..end].iter().position(|&b| b != 0).unwrap_or(end);
    gbk(&bytes[start..end])
}

fn put_fixed(
    w: &mut Vec<u8>,
    text: &str,
    width: usize,
    field: &'static str,
) -> Result<(), MessageError> {
    let bytes = to_gbk(text);
    if bytes.len() > width {
        return Err(MessageError::TooLong(field));
    }
    w.extend_from_slice(&bytes);
    w.resize(w.len() + width - bytes.len(), 0);
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let out = self
            .bytes
            .get(self.pos..self.pos + n)
            .ok_or(MessageError::Truncated)?;
        self.pos += n;
        Ok(out)
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.bytes[self.pos..];
        self.pos = self.bytes.len();
        out
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, MessageError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// What the telemetry service provides the server: the terminal registry
/// and the store. Phones are as in [`Header::phone`].
pub trait Terminals: Send + Sync + 'static {
    /// 0x0100: the auth code the terminal is to authenticate with, or why
    /// it may not register.
    fn register<'a>(
        &'a self,
        phone: &'a str,
        registration: &'a Registration,
    ) -> BoxFuture<'a, Result<String, RegisterResult>>;

    /// 0x0102: whether `auth_code` is this terminal's.
    fn authenticate<'a>(&'a self, phone: &'a str, auth_code: &'a str) -> BoxFuture<'a, bool>;

    /// 0x0200 (one report, [`BatchKind::Normal`]) and 0x0704, from an
    /// authenticated terminal. `Ok` means stored: only then is the
    /// terminal answered ok; an `Err` (logged) has it send them again.
    fn locations<'a>(
        &'a self,
        phone: &'a str,
        kind: BatchKind,
        reports: Vec<LocationReport>,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// 0x0003 from an authenticated terminal: it gave up its registration
    /// and will register again before it next authenticates.
    fn logout<'a>(&'a self, _phone: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// The connection of an authenticated terminal closed (for offline
    /// detection).
    fn disconnected<'a>(&'a self, _phone: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Counters for /metrics. Totals since start, but `connections`, which is
/// the connections open now.
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames that decoded (checksum, escapes and length good).
    pub frames: AtomicU64,
    pub bad_checksums: AtomicU64,
    /// Other frames that did not decode, and bodies that did not parse.
    pub malformed: AtomicU64,
    /// Frames refused: too long, or a location before authentication.
    pub refused: AtomicU64,
    /// Frames answered "unsupported".
    pub unsupported: AtomicU64,
    /// Location reports stored (one per report of a batch).
    pub locations: AtomicU64,
    pub store_failures: AtomicU64,
    pub connections: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Each counter by a metric-friendly name, for /metrics.
    pub fn counters(&self) -> [(&'static str, u64); 8] {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("frames", load(&self.frames)),
            ("bad_checksums", load(&self.bad_checksums)),
            ("malformed", load(&self.malformed)),
            ("refused", load(&self.refused)),
            ("unsupported", load(&self.unsupported)),
            ("locations", load(&self.locations)),
            ("store_failures", load(&self.store_failures)),
            ("connections", load(&self.connections)),
        ]
    }
}

/// Counts one open connection for as long as it lives, also when a
/// [`Terminals`] method panics the task.
struct Open(Arc<Stats>);

impl Open {
    fn new(stats: &Arc<Stats>) -> Self {
        Stats::add(&stats.connections, 1);
        Open(Arc::clone(stats))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits at most this long for a terminal to take an answer, so one that
/// stopped reading does not hold its task.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The JT/T 808 TCP server. [`serve`] is this with the defaults.
pub struct Server {
    terminals: Arc<dyn Terminals>,
    idle_timeout: Duration,
    stats: Arc<Stats>,
}

impl Server {
    pub fn new(terminals: Arc<dyn Terminals>) -> Self {
        Server {
            terminals,
            idle_timeout: Duration::from_secs(3 * 60),
            stats: Arc::default(),
        }
    }

    /// A connection without a frame for this long is closed. Terminals
    /// send heartbeats every 60 s by default, so three missed ones.
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Accepts connections on `listener`, one task each, until `shutdown`
    /// completes; then closes them, each once it has answered the frames
    /// it already read (so a store in progress is answered), and returns.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Answers are small and awaited one by one: Nagle
                        // would hold each back for the terminal's ack.
                        let _ = stream.set_nodelay(true);
                        let connection = Connection {
                            terminals: Arc::clone(&self.terminals),
                            stats: Arc::clone(&self.stats),
                            idle_timeout: self.idle_timeout,
                            peer,
                            serial: 0,
                            authenticated: None,
                        };
                        connections.spawn(connection.run(stream, stopped.clone()));
                    }
                    Err(error) => {
                        // Out of descriptors and the like: pass, do not spin.
                        tracing::warn!(%error, "jt808: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
            while let Some(ended) = connections.try_join_next() {
                log_panic(ended);
            }
        }
        let _ = stop.send(true);
        while let Some(ended) = connections.join_next().await {
            log_panic(ended);
        }
    }
}

fn log_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(error) = ended {
        tracing::error!(%error, "jt808: connection task failed");
    }
}

/// [`Server::serve`] with the default idle timeout and counters nobody
/// reads.
pub async fn serve(
    listener: TcpListener,
    terminals: Arc<dyn Terminals>,
    shutdown: impl Future<Output = ()>,
) {
    Server::new(terminals).serve(listener, shutdown).await;
}

struct Connection {
    terminals: Arc<dyn Terminals>,
    stats: Arc<Stats>,
    idle_timeout: Duration,
    peer: SocketAddr,
    /// The serial of the platform's last frame on this connection.
    serial: u16,
    authenticated: Option<String>,
}

/// Why a connection ends early.
#[derive(Debug)]
enum Closed {
    Io(std::io::Error),
    WriteTimeout,
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Io(error) => write!(f, "{error}"),
            Closed::WriteTimeout => f.write_str("answer not taken in time"),
        }
    }
}

impl Connection {
    async fn run(mut self, mut stream: TcpStream, mut stop: watch::Receiver<bool>) {
        let open = Open::new(&self.stats);
        tracing::debug!(peer = %self.peer, "jt808: connected");
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 4096];
        let mut deadline = Instant::now() + self.idle_timeout;
        'connection: loop {
            let read = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                read = timeout_at(deadline, stream.read(&mut buf)) => read,
            };
            let n = match read {
                Err(_) => {
                    tracing::info!(peer = %self.peer, phone = ?self.authenticated, "jt808: idle, closing");
                    break;
                }
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => n,
                Ok(Err(error)) => {
                    tracing::debug!(peer = %self.peer, %error, "jt808: read failed");
                    break;
                }
            };
            decoder.push(&buf[..n]);
            while let Some(decoded) = decoder.next_frame() {
                if decoded.is_ok() {
                    // Only whole frames keep a connection alive, not a
                    // trickle of bytes.
                    deadline = Instant::now() + self.idle_timeout;
                }
                if let Err(closed) = self.handle(&mut stream, decoded).await {
                    tracing::debug!(peer = %self.peer, %closed, "jt808: closing");
                    break 'connection;
                }
            }
        }
        drop(open);
        if let Some(phone) = self.authenticated.take() {
            self.terminals.disconnected(&phone).await;
        }
        tracing::debug!(peer = %self.peer, "jt808: disconnected");
    }

    async fn handle(
        &mut self,
        stream: &mut TcpStream,
        decoded: Result<Frame, FrameError>,
    ) -> Result<(), Closed> {
        let frame = match decoded {
            Ok(frame) => frame,
            Err(error) => {
                let counter = match error.kind {
                    FrameErrorKind::BadChecksum => &self.stats.bad_checksums,
                    FrameErrorKind::TooLong => &self.stats.refused,
                    _ => &self.stats.malformed,
                };
                Stats::add(counter, 1);
                tracing::debug!(peer = %self.peer, %error, header = ?error.header, "jt808: bad frame");
                return match &error.header {
                    Some(header) => {
                        self.answer(stream, header, ResponseResult::BadMessage)
                            .await
                    }
                    None => Ok(()),
                };
            }
        };
        Stats::add(&self.stats.frames, 1);
        let header = &frame.header;
        if header.encryption != 0 || header.subpackage.is_some() {
            Stats::add(&self.stats.unsupported, 1);
            return self
                .answer(stream, header, ResponseResult::Unsupported)
                .await;
        }
        let message = match Message::decode(&frame) {
            Ok(message) => message,
            Err(error) => {
                Stats::add(&self.stats.malformed, 1);
                tracing::debug!(peer = %self.peer, phone = %header.phone, id = header.id, %error, "jt808: bad body");
                return self
                    .answer(stream, header, ResponseResult::BadMessage)
                    .await;
            }
        };
        let authenticated = self.authenticated.as_deref() == Some(header.phone.as_str());
        match message {
            Message::TerminalResponse(response) => {
                tracing::debug!(phone = %header.phone, ?response, "jt808: terminal response");
                Ok(())
            }
            Message::Heartbeat => self.answer(stream, header, ResponseResult::Ok).await,
            Message::Logout => {
                if authenticated {
                    self.authenticated = None;
                    self.terminals.logout(&header.phone).await;
                    tracing::info!(phone = %header.phone, "jt808: logged out");
                }
                self.answer(stream, header, ResponseResult::Ok).await
            }
            Message::Register(registration) => {
                let outcome = self.terminals.register(&header.phone, &registration).await;
                tracing::info!(phone = %header.phone, plate = %registration.plate, ok = outcome.is_ok(), "jt808: registration");
                let response = Message::RegisterResponse(RegisterResponse {
                    serial: header.serial,
                    outcome,
                });
                self.send(stream, header, &response).await
            }
            Message::Authenticate(auth) => {
                let ok = self.terminals.authenticate(&header.phone, &auth.code).await;
                tracing::info!(peer = %self.peer, phone = %header.phone, ok, "jt808: authentication");
                let result = if ok {
                    // A second terminal on one connection (a gateway?): the
                    // first one's connection is as good as closed.
                    if let Some(previous) = self.authenticated.replace(header.phone.clone())
                        && previous != header.phone
                    {
                        self.terminals.disconnected(&previous).await;
                    }
                    ResponseResult::Ok
                } else {
                    ResponseResult::Failure
                };
                self.answer(stream, header, result).await
            }
            Message::Location(_) | Message::LocationBatch(_) if !authenticated => {
                Stats::add(&self.stats.refused, 1);
                tracing::debug!(peer = %self.peer, phone = %header.phone, "jt808: location before authentication");
                self.answer(stream, header, ResponseResult::Failure).await
            }
            Message::Location(report) => {
                self.store(stream, header, BatchKind::Normal, vec![report])
                    .await
            }
            Message::LocationBatch(batch) => {
                self.store(stream, header, batch.kind, batch.reports).await
            }
            Message::PlatformResponse(_)
            | Message::RegisterResponse(_)
            | Message::Unknown { .. } => {
                Stats::add(&self.stats.unsupported, 1);
                tracing::debug!(phone = %header.phone, id = format_args!("{:#06x}", header.id), "jt808: unsupported message");
                self.answer(stream, header, ResponseResult::Unsupported)
                    .await
            }
        }
    }

    async fn store(
        &mut self,
        stream: &mut TcpStream,
        header: &Header,
        kind: BatchKind,
        reports: Vec<LocationReport>,
    ) -> Result<(), Closed> {
        let count = reports.len() as u64;
        let result = match self.terminals.locations(&header.phone, kind, reports).await {
            Ok(()) => {
                Stats::add(&self.stats.locations, count);
                ResponseResult::Ok
            }
            Err(error) => {
                Stats::add(&self.stats.store_failures, 1);
                tracing::warn!(phone = %header.phone, %error, "jt808: storing locations failed");
                ResponseResult::Failure
            }
        };
        self.answer(stream, header, result).await
    }

    /// A 0x8001 to the frame with `to`.
    async fn answer(
        &mut self,
        stream: &mut TcpStream,
        to: &Header,
        result: ResponseResult,
    ) -> Result<(), Closed> {
        let response = Message::PlatformResponse(GeneralResponse {
            serial: to.serial,
            id: to.id,
            result,
        });
        self.send(stream, to, &response).await
    }

    /// `message` to the terminal of `to`, in its protocol version.
    async fn send(
        &mut self,
        stream: &mut TcpStream,
        to: &Header,
        message: &Message,
    ) -> Result<(), Closed> {
        self.serial = self.serial.wrapping_add(1);
        let header = Header {
            id: 0,
            encryption: 0,
            version: to.version,
            phone: to.phone.clone(),
            serial: self.serial,
            subpackage: None,
        };
        let bytes = match message
            .to_frame(header)
            .and_then(|frame| frame.encode().map_err(|_| MessageError::TooLong("answer")))
        {
            Ok(bytes) => bytes,
            Err(error) => {
                // Only an auth code too long for a frame gets here.
                tracing::warn!(phone = %to.phone, %error, "jt808: answer not encodable");
                return Ok(());
            }
        };
        match timeout(WRITE_TIMEOUT, stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Closed::Io(error)),
            Err(_) => Err(Closed::WriteTimeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::sim::Terminal;
    use super::*;

    /// 2026-12-01 12:00:00 GMT+8.
    const AT: i64 = 1_796_097_600;

    fn frame(id: u16, phone: &str, serial: u16, body: &[u8]) -> Frame {
        Frame {
            header: Header::new(id, phone, serial),
            body: body.to_vec(),
        }
    }

    fn decode_all(decoder: &mut FrameDecoder) -> Vec<Result<Frame, FrameError>> {
        std::iter::from_fn(|| decoder.next_frame()).collect()
    }

    /// Coordinates whole in 1e-6 degrees survive the round trip exactly.
    fn report(i: u32) -> LocationReport {
        LocationReport {
            alarm: 0,
            status: 0b11,
            latitude: f64::from(43_825_123 + i) / 1e6,
            longitude: f64::from(87_616_848 + i) / 1e6,
            altitude_m: 800,
            speed_kmh: 42.5,
            heading: 90,
            at: AT + i64::from(i),
            mileage_km: Some(1234.5),
            signal: Some(25),
            satellites: Some(12),
            extras: vec![],
        }
    }

    #[test]
    fn checksum_is_the_xor_of_header_and_body() {
        assert_eq!(checksum(&[]), 0);
        assert_eq!(checksum(&[0x01, 0x02, 0x04]), 0x07);
        assert_eq!(checksum(&[0x7e, 0x7e]), 0);
        // The example of the standard's 0x0002 with phone 013912345678.
        let bytes = frame(id::HEARTBEAT, "13912345678", 1, &[])
            .encode()
            .unwrap();
        let content = &bytes[1..bytes.len() - 1];
        assert_eq!(
            checksum(&content[..content.len() - 1]),
            content[content.len() - 1]
        );
    }

    #[test]
    fn escaping_round_trips_flag_and_escape_bytes() {
        let content = [0x30, 0x7e, 0x08, 0x7d, 0x55, 0x7d, 0x7e, 0x02, 0x01];
        let escaped = escape(&content);
        assert_eq!(
            escaped,
            [
                0x7e, 0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55, 0x7d, 0x01, 0x7d, 0x02, 0x02, 0x01,
                0x7e
            ]
        );
        assert_eq!(
            unescape(&escaped[1..escaped.len() - 1]),
            (content.to_vec(), true)
        );
        assert!(!unescape(&[0x7d, 0x03]).1);
        assert!(!unescape(&[0x01, 0x7d]).1);
    }

    #[test]
    fn flag_and_escape_bytes_in_body_and_checksum_round_trip() {
        for wanted_sum in [0x7e, 0x7d] {
            let mut f = frame(0x0900, "13912345678", 0x7e7d, &[0x7e, 0x7d, 0x00]);
            let bytes = f.encode().unwrap();
            let (content, _) = unescape(&bytes[1..bytes.len() - 1]);
            // The last body byte steers the sum to the byte wanted.
            f.body[2] = content[content.len() - 1] ^ wanted_sum;
            let bytes = f.encode().unwrap();
            let escaped_sum = if wanted_sum == 0x7e {
                [0x7d, 0x02]
            } else {
                [0x7d, 0x01]
            };
            assert_eq!(bytes[bytes.len() - 3..bytes.len() - 1], escaped_sum);
            assert_eq!(bytes.iter().filter(|&&b| b == FLAG).count(), 2);
            let mut decoder = FrameDecoder::new();
            decoder.push(&bytes);
            assert_eq!(decode_all(&mut decoder), vec![Ok(f)]);
        }
    }

    #[test]
    fn torn_frames_wait_for_their_rest() {
        let f = frame(id::LOCATION, "13912345678", 7, &[0x7e; 40]);
        let bytes = f.encode().unwrap();
        let mut decoder = FrameDecoder::new();
        for (i, &b) in bytes.iter().enumerate() {
            decoder.push(&[b]);
            let out = decode_all(&mut decoder);
            if i + 1 < bytes.len() {
                assert!(out.is_empty(), "byte {i}");
            } else {
                assert_eq!(out, vec![Ok(f.clone())]);
            }
        }
    }

    #[test]
    fn several_frames_in_one_chunk_with_garbage_between() {
        let frames: Vec<Frame> = (1..=3)
            .map(|serial| frame(id::HEARTBEAT, "13912345678", serial, &[]))
            .collect();
        let mut chunk = b"noise".to_vec();
        for f in &frames {
            chunk.extend_from_slice(&f.encode().unwrap());
            chunk.extend_from_slice(b"\x00\xff junk ");
        }
        let mut decoder = FrameDecoder::new();
        decoder.push(&chunk);
        let out = decode_all(&mut decoder);
        assert_eq!(out, frames.iter().cloned().map(Ok).collect::<Vec<_>>());
        // The tail of a frame whose start we never saw, right before one.
        decoder.push(&[0x12, 0x34, FLAG]);
        decoder.push(&frames[0].encode().unwrap());
        assert_eq!(decode_all(&mut decoder), vec![Ok(frames[0].clone())]);
        // Two frames torn across three chunks.
        let a = frame(0x0001, "1", 1, &[1, 2, 3, 4, 5]).encode().unwrap();
        let b = frame(0x0001, "2", 2, &[6, 7, 8, 9, 10]).encode().unwrap();
        let joined = [a, b].concat();
        decoder.push(&joined[..5]);
        assert!(decode_all(&mut decoder).is_empty());
        decoder.push(&joined[5..20]);
        assert_eq!(decode_all(&mut decoder).len(), 1);
        decoder.push(&joined[20..]);
        let out = decode_all(&mut decoder);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().header.phone, "2");
    }

    #[test]
    fn bad_checksum_is_an_error_for_its_frame_only() {
        let bad = frame(id::LOCATION, "13912345678", 5, &[1, 2, 3]);
        let mut bytes = bad.encode().unwrap();
        let at = bytes.len() - 2;
        bytes[at] ^= 0x01;
        let good = frame(id::HEARTBEAT, "13912345678", 6, &[]);
        bytes.extend_from_slice(&good.encode().unwrap());
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        let out = decode_all(&mut decoder);
        assert_eq!(out.len(), 2);
        let error = out[0].clone().unwrap_err();
        assert_eq!(error.kind, FrameErrorKind::BadChecksum);
        // The header is still read, so the frame can be answered.
        assert_eq!(
            error.header.as_ref().map(|h| (h.id, h.serial)),
            Some((id::LOCATION, 5))
        );
        assert_eq!(out[1], Ok(good));
    }

    #[test]
    fn bad_escape_bad_length_and_too_long_do_not_cost_the_next_frame() {
        let good = frame(id::HEARTBEAT, "13912345678", 9, &[]);
        let good_bytes = good.encode().unwrap();

        let mut bad_escape = frame(0x0900, "13912345678", 1, &[0x7d, 1])
            .encode()
            .unwrap();
        // 7d 01 (an escaped body 0x7d) becomes the undefined 7d 05.
        let at = bad_escape.iter().rposition(|&b| b == ESCAPE).unwrap();
        bad_escape[at + 1] = 0x05;

        let mut bad_length = frame(0x0900, "13912345678", 2, &[1, 2, 3]);
        bad_length.body.truncate(2);
        let mut bad_length_bytes = bad_length.encode().unwrap();
        // Announce 3 body bytes but carry 2 (checksum fixed up).
        bad_length_bytes[4] = 3;
        let len = bad_length_bytes.len();
        bad_length_bytes[len - 2] = checksum(&bad_length_bytes[1..len - 2]);

        let mut too_long = vec![FLAG];
        too_long.extend_from_slice(&frame(0x0900, "13912345678", 3, &[]).encode().unwrap()[1..13]);
        too_long.resize(too_long.len() + 3000, 0x11);
        too_long.push(FLAG);

        for (bad, kind) in [
            (bad_escape, FrameErrorKind::BadEscape),
            (bad_length_bytes, FrameErrorKind::BadLength),
            (too_long, FrameErrorKind::TooLong),
        ] {
            let mut decoder = FrameDecoder::new();
            // Fed in small chunks, as a slow link would.
            for chunk in [bad, good_bytes.clone()].concat().chunks(100) {
                decoder.push(chunk);
            }
            let out = decode_all(&mut decoder);
            assert_eq!(out.len(), 2, "{kind:?}: {out:?}");
            let error = out[0].clone().unwrap_err();
            assert_eq!(error.kind, kind);
            assert_eq!(error.header.map(|h| h.id), Some(0x0900));
            assert_eq!(out[1], Ok(good.clone()));
        }
    }

    #[test]
    fn decoder_memory_is_bounded_without_a_closing_flag() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&[FLAG]);
        for _ in 0..100 {
            decoder.push(&[0x11; 1000]);
            let _ = decode_all(&mut decoder);
        }
        assert!(decoder.buf.len() <= MAX_ESCAPED + 1000);
    }

    #[test]
    fn bcd_time_is_gmt8() {
        let bcd = [0x26, 0x12, 0x01, 0x12, 0x00, 0x00];
        assert_eq!(decode_bcd_time(&bcd), Some(AT));
        assert_eq!(encode_bcd_time(AT), Some(bcd));
        let leap = [0x24, 0x02, 0x29, 0x23, 0x59, 0x59];
        assert_eq!(decode_bcd_time(&leap), Some(1_709_222_399));
        assert_eq!(encode_bcd_time(1_709_222_399), Some(leap));
        for bad in [
            [0x23, 0x02, 0x29, 0, 0, 0],
            [0x26, 0x13, 0x01, 0, 0, 0],
            [0x26, 0x04, 0x31, 0, 0, 0],
            [0x26, 0x01, 0x01, 0x24, 0, 0],
            [0x26, 0x01, 0x01, 0, 0x60, 0],
            [0x26, 0x01, 0x0a, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ] {
            assert_eq!(decode_bcd_time(&bad), None, "{bad:02x?}");
        }
        assert_eq!(encode_bcd_time(0), None);
    }

    #[test]
    fn a_phone_number_written_with_its_padding_reads_as_the_header_gives_it() {
        assert_eq!(phone_number("013912345678"), "13912345678");
        assert_eq!(phone_number("13912345678"), "13912345678");
        assert_eq!(phone_number("000"), "0");
        let header = encode_phone("013912345678", 6).unwrap();
        assert_eq!(decode_phone(&header).unwrap(), phone_number("013912345678"));
    }

    #[test]
    fn phone_numbers_are_bcd_without_padding() {
        assert_eq!(
            encode_phone("13912345678", 6),
            Some(vec![0x01, 0x39, 0x12, 0x34, 0x56, 0x78])
        );
        assert_eq!(
            encode_phone("13912345678", 10),
            Some(vec![0, 0, 0, 0, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78])
        );
        assert_eq!(
            decode_phone(&[0x01, 0x39, 0x12, 0x34, 0x56, 0x78]).as_deref(),
            Some("13912345678")
        );
        assert_eq!(decode_phone(&[0; 6]).as_deref(), Some("0"));
        assert_eq!(decode_phone(&[0x1a, 0, 0, 0, 0, 0]), None);
        assert_eq!(encode_phone("1234567890123", 6), None);
        assert_eq!(encode_phone("12a", 6), None);
    }

    #[test]
    fn headers_2013_and_2019() {
        let mut header = Header::new(id::HEARTBEAT, "13912345678", 0x0102);
        let bytes = Frame {
            header: header.clone(),
            body: vec![],
        }
        .encode()
        .unwrap();
        assert_eq!(
            bytes[1..bytes.len() - 2],
            [
                0x00, 0x02, 0x00, 0x00, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78, 0x01, 0x02
            ]
        );

        header.version = Some(1);
        header.encryption = 1;
        header.subpackage = Some(Subpackage { total: 2, index: 1 });
        let f = Frame {
            header,
            body: vec![0xaa; 3],
        };
        let bytes = f.encode().unwrap();
        assert_eq!(
            bytes[1..bytes.len() - 2],
            [
                0x00, 0x02, // id
                0x64, 0x03, // version flag, subpackage, RSA, length 3
                0x01, // version
                0x00, 0x00, 0x00, 0x00, 0x01, 0x39, 0x12, 0x34, 0x56, 0x78, // phone
                0x01, 0x02, // serial
                0x00, 0x02, 0x00, 0x01, // total, index
                0xaa, 0xaa, 0xaa,
            ]
        );
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes);
        assert_eq!(decode_all(&mut decoder), vec![Ok(f)]);
    }

    #[test]
    fn location_with_south_west_and_additional_items() {
        let body = [
            0x00, 0x00, 0x00, 0x01, // alarm: emergency
            0x00, 0x00, 0x00, 0x0f, // ACC, positioned, south, west
            0x02, 0x04, 0xbd, 0xb7, // 33.865143
            0x09, 0x03, 0x47, 0xac, // 151.209900
            0x00, 0x32, // 50 m
            0x01, 0xf4, // 50.0 km/h
            0x01, 0x0e, // 270°
            0x26, 0x12, 0x01, 0x12, 0x00, 0x00, // time
            0x01, 0x04, 0x00, 0x00, 0x30, 0x39, // mileage 1234.5 km
            0x30, 0x01, 0x1f, // signal 31
            0x31, 0x01, 0x0a, // 10 satellites
            0x25, 0x04, 0x00, 0x00, 0x00, 0x01, // extended vehicle signals
            0xe1, 0x02, 0xab, 0xcd, // a maker's own item
        ];
        let message = Message::decode(&frame(id::LOCATION, "1", 1, &body)).unwrap();
        let Message::Location(report) = &message else {
            panic!("{message:?}");
        };
        assert_eq!(report.alarm, 1);
        assert_eq!(report.status, 0x0f);
        assert_eq!(report.latitude, -33.865143);
        assert_eq!(report.longitude, -151.2099);
        assert_eq!(report.altitude_m, 50);
        assert_eq!(report.speed_kmh, 50.0);
        assert_eq!(report.heading, 270);
        assert_eq!(report.at, AT);
        assert_eq!(report.mileage_km, Some(1234.5));
        assert_eq!(report.signal, Some(31));
        assert_eq!(report.satellites, Some(10));
        assert_eq!(
            report.extras,
            vec![
                Extra {
                    id: 0x25,
                    data: vec![0, 0, 0, 1]
                },
                Extra {
                    id: 0xe1,
                    data: vec![0xab, 0xcd]
                },
            ]
        );
        assert_eq!(message.encode_body(None).unwrap(), body);

        // Truncated in the fixed part or inside an item.
        for len in [27, body.len() - 1] {
            assert_eq!(
                Message::decode(&frame(id::LOCATION, "1", 1, &body[..len])),
                Err(MessageError::Truncated)
            );
        }
    }

    #[test]
    fn batch_upload_round_trips() {
        let batch = LocationBatch {
            kind: BatchKind::Backfill,
            reports: (0..3).map(report).collect(),
        };
        let message = Message::LocationBatch(batch);
        let body = message.encode_body(None).unwrap();
        assert_eq!(body[..3], [0x00, 0x03, 0x01]);
        // Each item: u16 length, then a 0x0200 body.
        let item_len = usize::from(u16::from_be_bytes([body[3], body[4]]));
        assert_eq!(item_len, 28 + 6 + 3 + 3);
        let f = frame(id::LOCATION_BATCH, "1", 1, &body);
        assert_eq!(Message::decode(&f).unwrap(), message);
        // A count the items do not bear out.
        let mut short = body.clone();
        short[1] = 4;
        assert_eq!(
            Message::decode(&frame(id::LOCATION_BATCH, "1", 1, &short)),
            Err(MessageError::Truncated)
        );
    }

    #[test]
    fn registration_and_authentication_2013_and_2019() {
        let registration = Registration {
            province: 65,
            city: 100,
            maker: "70111".into(),
            model: "BSJ-A6".into(),
            terminal_id: "A000001".into(),
            plate_colour: 1,
            plate: "新A12345".into(),
        };
        let message = Message::Register(registration.clone());
        let body = message.encode_body(None).unwrap();
        assert_eq!(body.len(), 4 + 5 + 20 + 7 + 1 + 8);
        assert_eq!(
            body[body.len() - 8..],
            [0xd0, 0xc2, b'A', b'1', b'2', b'3', b'4', b'5']
        );
        assert_eq!(
            Message::decode(&frame(id::REGISTER, "1", 1, &body)).unwrap(),
            message
        );

        let body = message.encode_body(Some(1)).unwrap();
        assert_eq!(body.len(), 4 + 11 + 30 + 30 + 1 + 8);
        let mut f = frame(id::REGISTER, "1", 1, &body);
        f.header.version = Some(1);
        assert_eq!(Message::decode(&f).unwrap(), message);

        let auth = Message::Authenticate(Authentication {
            code: "京ABC".into(),
            imei: None,
            software_version: None,
        });
        let body = auth.encode_body(None).unwrap();
        assert_eq!(body, [0xbe, 0xa9, b'A', b'B', b'C']);
        assert_eq!(
            Message::decode(&frame(id::AUTHENTICATE, "1", 1, &body)).unwrap(),
            auth
        );

        let auth = Message::Authenticate(Authentication {
            code: "abc".into(),
            imei: Some("860000000000001".into()),
            software_version: Some("1.0".into()),
        });
        let body = auth.encode_body(Some(1)).unwrap();
        assert_eq!(body.len(), 1 + 3 + 15 + 20);
        let mut f = frame(id::AUTHENTICATE, "1", 1, &body);
        f.header.version = Some(1);
        assert_eq!(Message::decode(&f).unwrap(), auth);
    }

    #[test]
    fn responses_round_trip() {
        for message in [
            Message::PlatformResponse(GeneralResponse {
                serial: 7,
                id: id::LOCATION,
                result: ResponseResult::AlarmConfirmed,
            }),
            Message::TerminalResponse(GeneralResponse {
                serial: 8,
                id: 0x8103,
                result: ResponseResult::Unsupported,
            }),
            Message::RegisterResponse(RegisterResponse {
                serial: 9,
                outcome: Ok("secret".into()),
            }),
            Message::RegisterResponse(RegisterResponse {
                serial: 10,
                outcome: Err(RegisterResult::NoSuchTerminal),
            }),
        ] {
            let f = message.to_frame(Header::new(0, "1", 1)).unwrap();
            assert_eq!(Message::decode(&f).unwrap(), message);
        }
        let f = frame(id::PLATFORM_RESPONSE, "1", 1, &[0, 1, 0, 2, 9]);
        assert_eq!(
            Message::decode(&f),
            Err(MessageError::Bad("response result"))
        );
    }

    // -- The server, driven by the simulator --------------------------------

    #[derive(Default)]
    struct Memory {
        codes: Mutex<HashMap<String, String>>,
        stored: Mutex<Vec<(String, BatchKind, LocationReport)>>,
        disconnected: Mutex<Vec<String>>,
        logged_out: Mutex<Vec<String>>,
        fail_stores: AtomicBool,
    }

    impl Memory {
        fn stored(&self) -> Vec<(String, BatchKind, LocationReport)> {
            self.stored.lock().unwrap().clone()
        }
    }

    impl Terminals for Memory {
        fn register<'a>(
            &'a self,
            phone: &'a str,
            registration: &'a Registration,
        ) -> BoxFuture<'a, Result<String, RegisterResult>> {
            Box::pin(async move {
                if registration.plate.is_empty() {
                    return Err(RegisterResult::NoSuchVehicle);
                }
                let code = format!("code-{phone}");
                self.codes
                    .lock()
                    .unwrap()
                    .insert(phone.to_owned(), code.clone());
                Ok(code)
            })
        }

        fn authenticate<'a>(&'a self, phone: &'a str, auth_code: &'a str) -> BoxFuture<'a, bool> {
            Box::pin(async move {
                self.codes.lock().unwrap().get(phone).map(String::as_str) == Some(auth_code)
            })
        }

        fn locations<'a>(
            &'a self,
            phone: &'a str,
            kind: BatchKind,
            reports: Vec<LocationReport>,
        ) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                if self.fail_stores.load(Ordering::SeqCst) {
                    return Err("database unavailable".into());
                }
                let mut stored = self.stored.lock().unwrap();
                stored.extend(reports.into_iter().map(|r| (phone.to_owned(), kind, r)));
                Ok(())
            })
        }

        fn logout<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, ()> {
            Box::pin(async move { self.logged_out.lock().unwrap().push(phone.to_owned()) })
        }

        fn disconnected<'a>(&'a self, phone: &'a str) -> BoxFuture<'a, ()> {
            Box::pin(async move { self.disconnected.lock().unwrap().push(phone.to_owned()) })
        }
    }

    struct Running {
        addr: SocketAddr,
        memory: Arc<Memory>,
        stats: Arc<Stats>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    async fn start(idle_timeout: Duration) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let memory = Arc::new(Memory::default());
        let server = Server::new(memory.clone()).idle_timeout(idle_timeout);
        let stats = server.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            memory,
            stats,
            stop,
            task,
        }
    }

    fn registration() -> Registration {
        Registration {
            province: 65,
            city: 100,
            maker: "70111".into(),
            model: "SIM-808".into(),
            terminal_id: "T000001".into(),
            plate_colour: 2,
            plate: "新A12345".into(),
        }
    }

    async fn authenticated(addr: SocketAddr, phone: &str) -> Terminal {
        let mut terminal = Terminal::connect(addr, phone).await.unwrap();
        let response = terminal.register(&registration()).await.unwrap();
        let code = response.outcome.unwrap();
        assert_eq!(
            terminal.authenticate(&code).await.unwrap().result,
            ResponseResult::Ok
        );
        terminal
    }

    fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn jt808_server_stores_then_acknowledges() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = Terminal::connect(server.addr, "13912345678").await.unwrap();
        let registered = terminal.register(&registration()).await.unwrap();
        assert_eq!(registered.outcome.as_deref(), Ok("code-13912345678"));
        let serial = terminal
            .send(&Message::Authenticate(Authentication {
                code: "code-13912345678".into(),
                ..Authentication::default()
            }))
            .await
            .unwrap();
        let answer = terminal.general_answer(serial).await.unwrap();
        assert_eq!(
            answer,
            GeneralResponse {
                serial,
                id: id::AUTHENTICATE,
                result: ResponseResult::Ok
            }
        );
        assert_eq!(
            terminal.heartbeat().await.unwrap().result,
            ResponseResult::Ok
        );

        for i in 0..3 {
            let answer = terminal.location(&report(i)).await.unwrap();
            assert_eq!(
                (answer.id, answer.result),
                (id::LOCATION, ResponseResult::Ok)
            );
        }
        let batch: Vec<_> = (3..8).map(report).collect();
        let answer = terminal.batch(BatchKind::Backfill, &batch).await.unwrap();
        assert_eq!(
            (answer.id, answer.result),
            (id::LOCATION_BATCH, ResponseResult::Ok)
        );

        let stored = server.memory.stored();
        assert_eq!(stored.len(), 8);
        for (i, (phone, kind, stored)) in stored.iter().enumerate() {
            assert_eq!(phone, "13912345678");
            assert_eq!(
                *kind,
                if i < 3 {
                    BatchKind::Normal
                } else {
                    BatchKind::Backfill
                }
            );
            assert_eq!(*stored, report(i as u32));
        }
        assert_eq!(load(&server.stats.locations), 8);
        assert_eq!(load(&server.stats.frames), 7);

        assert_eq!(terminal.logout().await.unwrap().result, ResponseResult::Ok);
        assert_eq!(*server.memory.logged_out.lock().unwrap(), ["13912345678"]);
        // Logged out is no longer authenticated.
        assert_eq!(
            terminal.location(&report(9)).await.unwrap().result,
            ResponseResult::Failure
        );
        assert_eq!(server.memory.stored().len(), 8);

        server.stop.send(()).unwrap();
        timeout(Duration::from_secs(5), server.task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(load(&server.stats.connections), 0);
    }

    #[tokio::test]
    async fn jt808_location_before_authentication_is_refused() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = Terminal::connect(server.addr, "13912345678").await.unwrap();
        let answer = terminal.location(&report(0)).await.unwrap();
        assert_eq!(answer.result, ResponseResult::Failure);
        let answer = terminal
            .batch(BatchKind::Normal, &[report(1)])
            .await
            .unwrap();
        assert_eq!(answer.result, ResponseResult::Failure);
        // A wrong code does not authenticate either.
        terminal.register(&registration()).await.unwrap();
        assert_eq!(
            terminal.authenticate("guess").await.unwrap().result,
            ResponseResult::Failure
        );
        assert_eq!(
            terminal.location(&report(2)).await.unwrap().result,
            ResponseResult::Failure
        );
        // A registration the service refuses.
        let refused = terminal.register(&Registration::default()).await.unwrap();
        assert_eq!(refused.outcome, Err(RegisterResult::NoSuchVehicle));

        assert!(server.memory.stored().is_empty());
        assert_eq!(load(&server.stats.refused), 3);
        // Only authenticated terminals go offline.
        drop(terminal);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(server.memory.disconnected.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn jt808_another_phone_on_an_authenticated_connection_is_not_authenticated() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = authenticated(server.addr, "13912345678").await;
        let mut other = Header::new(id::LOCATION, "13800000000", 1);
        other.serial = 4242;
        let bytes = Message::Location(report(0))
            .to_frame(other)
            .unwrap()
            .encode()
            .unwrap();
        terminal.send_raw(&bytes).await.unwrap();
        assert_eq!(
            terminal.general_answer(4242).await.unwrap().result,
            ResponseResult::Failure
        );
        assert!(server.memory.stored().is_empty());
    }

    #[tokio::test]
    async fn jt808_bad_checksum_is_answered_and_the_connection_goes_on() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = authenticated(server.addr, "13912345678").await;
        let serial = terminal
            .send_bad_checksum(&Message::Location(report(0)))
            .await
            .unwrap();
        let answer = terminal.general_answer(serial).await.unwrap();
        assert_eq!(
            (answer.id, answer.result),
            (id::LOCATION, ResponseResult::BadMessage)
        );
        assert_eq!(load(&server.stats.bad_checksums), 1);

        let serial = terminal
            .send_torn(&Message::Location(report(1)), Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            terminal.general_answer(serial).await.unwrap().result,
            ResponseResult::Ok
        );

        // Garbage between frames, and a bad frame and a good one in one write.
        terminal.send_raw(b"\x00\x01garbage").await.unwrap();
        let (bad_serial, mut bad) = terminal.frame(&Message::Heartbeat).unwrap();
        let len = bad.len();
        bad[len - 2] ^= 0x01;
        let (good_serial, good) = terminal.frame(&Message::Location(report(2))).unwrap();
        terminal.send_raw(&[bad, good].concat()).await.unwrap();
        assert_eq!(
            terminal.general_answer(good_serial).await.unwrap().result,
            ResponseResult::Ok
        );
        assert_eq!(
            terminal.general_answer(bad_serial).await.unwrap().result,
            ResponseResult::BadMessage
        );
        let stored: Vec<_> = server
            .memory
            .stored()
            .into_iter()
            .map(|(_, _, r)| r)
            .collect();
        assert_eq!(stored, [report(1), report(2)]);
    }

    #[tokio::test]
    async fn jt808_unknown_and_undecodable_messages_are_answered() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = authenticated(server.addr, "13912345678").await;
        let unknown = Message::Unknown {
            id: 0x0900,
            body: vec![1, 2, 3],
        };
        let answer = terminal.request(&unknown).await.unwrap();
        assert_eq!(
            (answer.id, answer.result),
            (0x0900, ResponseResult::Unsupported)
        );
        let short = Message::Unknown {
            id: id::LOCATION,
            body: vec![0; 10],
        };
        let answer = terminal.request(&short).await.unwrap();
        assert_eq!(
            (answer.id, answer.result),
            (id::LOCATION, ResponseResult::BadMessage)
        );
        assert_eq!(load(&server.stats.unsupported), 1);
        assert_eq!(load(&server.stats.malformed), 1);
        // A terminal's answer is not answered; the heartbeat after it is.
        let response = Message::TerminalResponse(GeneralResponse {
            serial: 1,
            id: 0x8103,
            result: ResponseResult::Ok,
        });
        terminal.send(&response).await.unwrap();
        assert_eq!(
            terminal.heartbeat().await.unwrap().result,
            ResponseResult::Ok
        );
    }

    #[tokio::test]
    async fn jt808_store_failure_is_answered_failure_and_the_retry_stored() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = authenticated(server.addr, "13912345678").await;
        server.memory.fail_stores.store(true, Ordering::SeqCst);
        assert_eq!(
            terminal.location(&report(0)).await.unwrap().result,
            ResponseResult::Failure
        );
        server.memory.fail_stores.store(false, Ordering::SeqCst);
        assert_eq!(
            terminal.location(&report(0)).await.unwrap().result,
            ResponseResult::Ok
        );
        assert_eq!(server.memory.stored().len(), 1);
        assert_eq!(load(&server.stats.store_failures), 1);
    }

    #[tokio::test]
    async fn jt808_reconnect_authenticates_again_and_keeps_working() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = authenticated(server.addr, "13912345678").await;
        assert_eq!(
            terminal.location(&report(0)).await.unwrap().result,
            ResponseResult::Ok
        );
        terminal.reconnect().await.unwrap();
        // Authentication belongs to the connection.
        assert_eq!(
            terminal.location(&report(1)).await.unwrap().result,
            ResponseResult::Failure
        );
        let code = format!("code-{}", terminal.phone());
        assert_eq!(
            terminal.authenticate(&code).await.unwrap().result,
            ResponseResult::Ok
        );
        assert_eq!(
            terminal.location(&report(2)).await.unwrap().result,
            ResponseResult::Ok
        );
        assert_eq!(server.memory.stored().len(), 2);
        assert_eq!(*server.memory.disconnected.lock().unwrap(), ["13912345678"]);
    }

    #[tokio::test]
    async fn jt808_2019_terminal() {
        let server = start(Duration::from_secs(60)).await;
        let mut terminal = Terminal::connect(server.addr, "13912345678")
            .await
            .unwrap()
            .with_version(1);
        let code = terminal
            .register(&registration())
            .await
            .unwrap()
            .outcome
            .unwrap();
        assert_eq!(
            terminal.authenticate(&code).await.unwrap().result,
            ResponseResult::Ok
        );
        assert_eq!(
            terminal
                .batch(BatchKind::Normal, &[report(0), report(1)])
                .await
                .unwrap()
                .result,
            ResponseResult::Ok
        );
        // Answers come in the terminal's version, to its phone.
        let mut raw = TcpStream::connect(server.addr).await.unwrap();
        let mut header = Header::new(id::HEARTBEAT, "13912345678", 77);
        header.version = Some(1);
        let heartbeat = Frame {
            header,
            body: vec![],
        };
        raw.write_all(&heartbeat.encode().unwrap()).await.unwrap();
        let mut decoder = FrameDecoder::new();
        let answer = loop {
            let mut buf = [0u8; 256];
            let n = raw.read(&mut buf).await.unwrap();
            decoder.push(&buf[..n]);
            if let Some(frame) = decoder.next_frame() {
                break frame.unwrap();
            }
        };
        assert_eq!(answer.header.version, Some(1));
        assert_eq!(answer.header.phone, "13912345678");
        assert_eq!(answer.body, [0, 77, 0, 2, 0]);
        // Stored under the same phone a 2013 header gives.
        assert!(
            server
                .memory
                .stored()
                .iter()
                .all(|(phone, _, _)| phone == "13912345678")
        );
    }

    #[tokio::test]
    async fn jt808_idle_connection_is_closed() {
        let server = start(Duration::from_millis(300)).await;
        let mut terminal = authenticated(server.addr, "13912345678").await;
        // Bytes that never make a frame do not keep it open.
        terminal.send_raw(&[FLAG, 0x01, 0x02]).await.unwrap();
        assert!(
            terminal
                .closed_within(Duration::from_secs(3))
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*server.memory.disconnected.lock().unwrap(), ["13912345678"]);
        assert_eq!(load(&server.stats.connections), 0);
    }
}
