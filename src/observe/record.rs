//! One log record as it travels from a child to its parent: one message on the
//! child's log socket, hand-encoded (little-endian, no allocation to decode).
//!
//! Layout: level (`u8`, 1 = error .. 5 = trace), task index (`u64`, `u64::MAX` for
//! none), line (`u32`, 0 for none), the lengths of target, module path and file
//! (`u16` each, `u16::MAX` for none), those three strings, then the message to the
//! end of the message.

use std::fmt::Write as _;

/// Longest record sent: a longer message is cut (and says so).
pub(crate) const MAX_RECORD: usize = 60 * 1024;

const NONE16: u16 = u16::MAX;
const HEADER: usize = 1 + 8 + 4 + 2 * 3;

/// A record decoded from its bytes; the strings borrow them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoded<'a> {
    pub(crate) level: log::Level,
    pub(crate) task: Option<u64>,
    pub(crate) target: &'a str,
    pub(crate) module_path: Option<&'a str>,
    pub(crate) file: Option<&'a str>,
    pub(crate) line: Option<u32>,
    pub(crate) message: &'a str,
}

fn level_byte(level: log::Level) -> u8 {
    level as usize as u8
}

fn level_of(b: u8) -> Option<log::Level> {
    Some(match b {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        5 => log::Level::Trace,
        _ => return None,
    })
}

/// A string field's length, or [`NONE16`]; strings longer than 4 KiB are cut at a
/// character boundary.
fn field(s: Option<&str>) -> &str {
    match s {
        None => "",
        Some(s) => cut(s, 4096),
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Encodes `record` into `out` (cleared first).
#[cfg(test)]
pub(crate) fn encode(record: &log::Record<'_>, task: Option<u64>, out: &mut Vec<u8>) {
    encode_after(record, task, out, 0);
}

/// Encodes `record` into `out` after its first `keep` bytes (the rest is cleared).
pub(crate) fn encode_after(
    record: &log::Record<'_>,
    task: Option<u64>,
    out: &mut Vec<u8>,
    keep: usize,
) {
    out.truncate(keep);
    let target = field(Some(record.target()));
    let module = record.module_path().map(|m| field(Some(m)));
    let file = record.file().map(|f| field(Some(f)));
    out.push(level_byte(record.level()));
    out.extend_from_slice(&task.unwrap_or(u64::MAX).to_le_bytes());
    out.extend_from_slice(&record.line().unwrap_or(0).to_le_bytes());
    for s in [Some(target), module, file] {
        let len = s.map_or(NONE16, |s| s.len() as u16);
        out.extend_from_slice(&len.to_le_bytes());
    }
    for s in [Some(target), module, file].into_iter().flatten() {
        out.extend_from_slice(s.as_bytes());
    }
    let start = out.len();
    let mut w = Bounded {
        out,
        limit: (keep + MAX_RECORD).max(start),
        cut: false,
    };
    let _ = write!(w, "{}", record.args());
    if w.cut {
        // Back to a character boundary, then say so.
        let mut end = out.len();
        while end > start && std::str::from_utf8(&out[start..end]).is_err() {
            end -= 1;
        }
        out.truncate(end);
        out.extend_from_slice(" [record cut at 60 KiB]".as_bytes());
    }
}

/// A writer that stops taking text at `limit` bytes.
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
    cut: bool,
}

impl std::fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.limit.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.extend_from_slice(s.as_bytes());
            Ok(())
        } else {
            self.out.extend_from_slice(&s.as_bytes()[..room]);
            self.cut = true;
            Err(std::fmt::Error)
        }
    }
}

/// Decodes a record; `None` when the bytes are not one (a child is a separate
/// process and its bytes are not trusted).
pub(crate) fn decode(b: &[u8]) -> Option<Decoded<'_>> {
    if b.len() < HEADER {
        return None;
    }
    let level = level_of(b[0])?;
    let task = u64::from_le_bytes(b[1..9].try_into().ok()?);
    let line = u32::from_le_bytes(b[9..13].try_into().ok()?);
    let mut lens = [0u16; 3];
    for (k, len) in lens.iter_mut().enumerate() {
        let at = 13 + 2 * k;
        *len = u16::from_le_bytes(b[at..at + 2].try_into().ok()?);
    }
    let mut rest = &b[HEADER..];
    let mut strs: [Option<&str>; 3] = [None; 3];
    for (k, len) in lens.into_iter().enumerate() {
        if len == NONE16 {
            continue;
        }
        let len = len as usize;
        if rest.len() < len {
            return None;
        }
        let (s, tail) = rest.split_at(len);
        strs[k] = Some(std::str::from_utf8(s).ok()?);
        rest = tail;
    }
    Some(Decoded {
        level,
        task: (task != u64::MAX).then_some(task),
        target: strs[0]?,
        module_path: strs[1],
        file: strs[2],
        line: (line != 0).then_some(line),
        message: std::str::from_utf8(rest).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: &log::Record<'_>, task: Option<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        encode(record, task, &mut out);
        out
    }

    #[test]
    fn a_record_round_trips() {
        let bytes = round_trip(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("app::db")
                .module_path(Some("app::db"))
                .file(Some("src/db.rs"))
                .line(Some(42))
                .args(format_args!("retry {} of {}", 2, 3))
                .build(),
            Some(17),
        );
        let d = decode(&bytes).unwrap();
        assert_eq!(
            d,
            Decoded {
                level: log::Level::Warn,
                task: Some(17),
                target: "app::db",
                module_path: Some("app::db"),
                file: Some("src/db.rs"),
                line: Some(42),
                message: "retry 2 of 3",
            }
        );
    }

    #[test]
    fn missing_fields_stay_missing() {
        let bytes = round_trip(
            &log::Record::builder()
                .level(log::Level::Trace)
                .target("t")
                .args(format_args!(""))
                .build(),
            None,
        );
        let d = decode(&bytes).unwrap();
        assert_eq!(
            (d.task, d.module_path, d.file, d.line),
            (None, None, None, None)
        );
        assert_eq!(d.message, "");
    }

    #[test]
    fn a_huge_message_is_cut_at_a_character_boundary() {
        let big = "é".repeat(MAX_RECORD);
        let bytes = round_trip(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("t")
                .args(format_args!("{big}"))
                .build(),
            None,
        );
        assert!(bytes.len() <= MAX_RECORD + 64);
        let d = decode(&bytes).unwrap();
        assert!(d.message.ends_with("[record cut at 60 KiB]"));
        assert!(d.message.starts_with("éé"));
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[9; 40]), None);
        let mut bytes = round_trip(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("target")
                .args(format_args!("m"))
                .build(),
            None,
        );
        bytes.truncate(HEADER + 2);
        assert_eq!(decode(&bytes), None);
    }
}
