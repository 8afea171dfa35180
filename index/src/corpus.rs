//! Reading policy files (.txt, .md, .docx, .pdf) from disk: the only file
//! I/O the library does besides its index directory. Every failure names the
//! file, and one bad file never stops the others.
//!
//! A text file is UTF-8 (a BOM is dropped) or UTF-16, as Windows saves
//! "Unicode" text: with a BOM, or without one, told by its zero bytes. Bytes
//! that are mostly not text (a binary file renamed .txt) are refused rather
//! than parsed into hundreds of garbage clauses.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::clause::Policy;
use crate::parse::{PolicySource, parse_policy};

/// Larger than any real policy by two orders of magnitude; beyond it a file is
/// refused rather than parsed into hundreds of thousands of "clauses".
pub const MAX_POLICY_BYTES: u64 = 8 * 1024 * 1024;

/// A PDF carries its fonts and images besides the text: a 200-page policy
/// exported from Word is a few MB, with a logo on every page more.
pub const MAX_PDF_BYTES: u64 = 64 * 1024 * 1024;

/// File types read as policies.
pub const POLICY_EXTENSIONS: &[&str] = &["txt", "md", "markdown", "text", "docx", "pdf"];

/// Text in which fewer than this share of the visible characters are
/// letters is not a policy: real policies are over 90% letters, random bytes
/// about 25%, random printable ASCII 55%.
pub const MIN_LETTER_SHARE: f32 = 0.6;

/// Text in which more than this share of the visible characters are control
/// characters or undecodable bytes (U+FFFD) is not a policy. A policy saved
/// as Latin-1 has a few per cent (accented letters, curly quotes), random
/// bytes over half.
pub const MAX_GARBAGE_SHARE: f32 = 0.1;

/// Below this many visible characters the shares above say little: a short
/// file is left to the parser (which reports one with no clauses).
const MIN_CHARS_TO_JUDGE: usize = 64;

// Each message carries the text of the error inside it, which is therefore
// not also a `source`: a chain printed cause by cause would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path}: not a text file (it contains NUL bytes); export the policy as .txt, .md, .docx or .pdf")]
    Binary { path: String },
    #[error(
        "{path}: not a text file: only {letters}% of its characters are letters and {garbage}% are control characters or bytes that are not UTF-8 or UTF-16 text (a binary file renamed?); export the policy as .txt, .md, .docx or .pdf"
    )]
    NotText { path: String, letters: u32, garbage: u32 },
    #[error("{path}: {size} bytes is larger than the {max}-byte limit for one policy")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{path}: not a policy file ({what}); policies are files ending in .{exts}")]
    Unsupported {
        path: String,
        what: &'static str,
        exts: String,
    },
    #[error("{path}: {error}")]
    Docx {
        path: String,
        error: crate::docx::DocxError,
    },
    #[error("{path}: {error}")]
    Pdf { path: String, error: crate::pdf::PdfError },
}

impl PolicyError {
    pub fn path(&self) -> &str {
        match self {
            PolicyError::Io { path, .. }
            | PolicyError::Binary { path }
            | PolicyError::NotText { path, .. }
            | PolicyError::TooLarge { path, .. }
            | PolicyError::Unsupported { path, .. }
            | PolicyError::Docx { path, .. }
            | PolicyError::Pdf { path, .. } => path,
        }
    }
}

/// Whether `path` has one of the [`POLICY_EXTENSIONS`].
pub fn is_policy_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| POLICY_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Reads and parses one policy file for `school`. Invalid UTF-8 is decoded
/// lossily and reported as a warning on the line where it occurs.
pub fn read_policy(school: &str, path: &Path) -> Result<Policy, PolicyError> {
    let display = path.display().to_string();
    let io = |error| PolicyError::Io {
        path: display.clone(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    // A folder is not a policy whatever its name ("2024.txt/" included).
    let not_a_policy = match () {
        _ if meta.is_dir() => Some("a folder"),
        _ if !meta.is_file() => Some("not a regular file"),
        _ if !is_policy_file(path) => Some("unsupported file type"),
        _ => None,
    };
    if let Some(what) = not_a_policy {
        return Err(PolicyError::Unsupported {
            path: display,
            what,
            exts: POLICY_EXTENSIONS.join(", ."),
        });
    }
    let is_pdf = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    let max = if is_pdf { MAX_PDF_BYTES } else { MAX_POLICY_BYTES };
    if meta.len() > max {
        return Err(PolicyError::TooLarge {
            path: display,
            size: meta.len(),
            max,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let modified = meta.modified().ok().map(iso_date);
    let is_docx = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("docx"));
    if is_docx {
        let text = crate::docx::docx_to_text(&bytes).map_err(|error| PolicyError::Docx {
            path: display.clone(),
            error,
        })?;
        return Ok(policy_from_text(school, &display, &text, modified.as_deref()));
    }
    if is_pdf {
        let text = crate::pdf::pdf_to_text(&bytes).map_err(|error| PolicyError::Pdf {
            path: display.clone(),
            error,
        })?;
        return Ok(policy_from_text(school, &display, &text, modified.as_deref()));
    }
    policy_from_bytes(school, &display, &bytes, modified.as_deref())
}

/// Parses policy text (a .docx or .pdf already turned into text).
pub fn policy_from_text(school: &str, source: &str, text: &str, modified: Option<&str>) -> Policy {
    parse_policy(&PolicySource {
        school,
        source,
        text,
        modified,
    })
}

/// Parses policy bytes that have already been read (used by tests and benches too).
pub fn policy_from_bytes(
    school: &str,
    source: &str,
    bytes: &[u8],
    modified: Option<&str>,
) -> Result<Policy, PolicyError> {
    let decoded = decode(bytes).ok_or_else(|| PolicyError::Binary {
        path: source.to_owned(),
    })?;
    let text = decoded.text.strip_prefix('\u{feff}').unwrap_or(&decoded.text);
    if let Some((letters, garbage)) = not_text(text) {
        return Err(PolicyError::NotText {
            path: source.to_owned(),
            letters,
            garbage,
        });
    }
    let mut policy = policy_from_text(school, source, text, modified);
    if let Some(line) = decoded.bad_line {
        let encoding = decoded.encoding;
        policy.warnings.insert(
            0,
            (
                line,
                format!("invalid {encoding} replaced with U+FFFD; re-save the file as UTF-8"),
            ),
        );
    }
    Ok(policy)
}

/// A text file's bytes as text.
struct Decoded<'a> {
    text: Cow<'a, str>,
    /// "UTF-8" or "UTF-16".
    encoding: &'static str,
    /// The first line with bytes that do not decode, if any.
    bad_line: Option<usize>,
}

/// Decodes UTF-16 (with a BOM, or without one when the zero bytes show it)
/// and UTF-8 (invalid sequences replaced). `None` for bytes with NUL bytes
/// that are not UTF-16: a binary file.
fn decode(bytes: &[u8]) -> Option<Decoded<'_>> {
    if let Some((big_endian, units)) = utf16(bytes) {
        let mut text = String::with_capacity(units.len());
        let mut bad_line = None;
        let pairs = units.chunks(2).map(|p| match (p, big_endian) {
            ([a, b], false) => u16::from_le_bytes([*a, *b]),
            ([a, b], true) => u16::from_be_bytes([*a, *b]),
            // An odd byte at the end: a truncated file.
            _ => 0xDC00,
        });
        for c in char::decode_utf16(pairs) {
            let c = c.unwrap_or_else(|_| {
                bad_line.get_or_insert_with(|| text.matches('\n').count() + 1);
                char::REPLACEMENT_CHARACTER
            });
            text.push(c);
        }
        return Some(Decoded {
            text: Cow::Owned(text),
            encoding: "UTF-16",
            bad_line,
        });
    }
    if bytes.iter().take(64 * 1024).any(|b| *b == 0) {
        return None;
    }
    let (text, bad_line) = match std::str::from_utf8(bytes) {
        Ok(t) => (Cow::Borrowed(t), None),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            (String::from_utf8_lossy(bytes), Some(line))
        }
    };
    Some(Decoded {
        text,
        encoding: "UTF-8",
        bad_line,
    })
}

/// Whether `bytes` are UTF-16, and if so (big-endian?, the bytes after any
/// BOM). Without a BOM, text in a Latin script has a zero byte in every
/// other position (the high byte of each letter) and almost none in the
/// others.
fn utf16(bytes: &[u8]) -> Option<(bool, &[u8])> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Some((false, rest));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Some((true, rest));
    }
    let sample = &bytes[..bytes.len().min(4096) & !1];
    let pairs = sample.len() / 2;
    if pairs < 4 {
        return None;
    }
    let zeros = |offset: usize| sample.iter().skip(offset).step_by(2).filter(|b| **b == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    let mostly = |n: usize| n * 10 >= pairs * 6;
    let hardly = |n: usize| n * 100 <= pairs;
    match () {
        _ if mostly(odd) && hardly(even) => Some((false, bytes)),
        _ if mostly(even) && hardly(odd) => Some((true, bytes)),
        _ => None,
    }
}

/// `Some((letters %, garbage %))` when `text` is mostly not text: too few of
/// its visible characters are letters ([`MIN_LETTER_SHARE`]) or too many
/// are control characters or U+FFFD ([`MAX_GARBAGE_SHARE`]).
fn not_text(text: &str) -> Option<(u32, u32)> {
    let (mut visible, mut letters, mut garbage) = (0usize, 0usize, 0usize);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        if c.is_alphabetic() {
            letters += 1;
        } else if c.is_control() || c == char::REPLACEMENT_CHARACTER {
            garbage += 1;
        }
    }
    if visible < MIN_CHARS_TO_JUDGE {
        return None;
    }
    let share = |n: usize| n as f32 / visible as f32;
    let refused = share(letters) < MIN_LETTER_SHARE || share(garbage) > MAX_GARBAGE_SHARE;
    let percent = |n: usize| (share(n) * 100.0).round() as u32;
    refused.then(|| (percent(letters), percent(garbage)))
}

/// Policy files directly inside `dir`, sorted by name so ids and output are stable.
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let io = |error| PolicyError::Io {
        path: dir.display().to_string(),
        error,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// YYYY-MM-DD (UTC) for a file time.
pub fn iso_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    civil_date((secs / 86_400) as i64)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_781), "2026-11-24");
    }

    #[test]
    fn invalid_utf8_is_decoded_with_a_warning() {
        let p = policy_from_bytes("s", "bad.txt", b"Rules\n\n- Keep \xff passwords safe.\n", None).unwrap();
        assert_eq!(p.clauses.len(), 1);
        assert_eq!(p.warnings[0].0, 3);
    }

    const EXAMPLE: &str = include_str!("../../policies/oakfield/ict-acceptable-use.txt");

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let bom = bom.then_some('\u{feff}');
        bom.into_iter()
            .chain(text.chars())
            .collect::<String>()
            .encode_utf16()
            .flat_map(|u| if big_endian { u.to_be_bytes() } else { u.to_le_bytes() })
            .collect()
    }

    fn texts(p: &Policy) -> Vec<&str> {
        p.clauses.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn utf16_and_a_utf8_bom_read_like_utf8() {
        let plain = policy_from_bytes("s", "p.txt", EXAMPLE.as_bytes(), None).unwrap();
        assert!(plain.clauses.len() > 20);
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(EXAMPLE.as_bytes());
        let inputs = [
            ("UTF-8 with BOM", with_bom),
            ("UTF-16 LE with BOM", utf16(EXAMPLE, false, true)),
            ("UTF-16 BE with BOM", utf16(EXAMPLE, true, true)),
            ("UTF-16 LE", utf16(EXAMPLE, false, false)),
            ("UTF-16 BE", utf16(EXAMPLE, true, false)),
        ];
        for (what, bytes) in inputs {
            let p = policy_from_bytes("s", "p.txt", &bytes, None).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(texts(&p), texts(&plain), "{what}");
            assert_eq!(p.title, plain.title, "{what}");
            assert!(p.warnings.is_empty(), "{what}: {:?}", p.warnings);
        }
    }

    #[test]
    fn broken_utf16_is_decoded_with_a_warning() {
        let mut bytes = utf16("Rules\n\n- Keep passwords safe.\n- Lock screens.\n", false, true);
        // An unpaired surrogate in line 4, and a stray last byte.
        let at = bytes.len() - 8;
        bytes[at..at + 2].copy_from_slice(&0xD800u16.to_le_bytes());
        bytes.push(b'x');
        let p = policy_from_bytes("s", "p.txt", &bytes, None).unwrap();
        assert_eq!(p.clauses.len(), 2);
        assert_eq!(p.warnings[0].0, 4, "{:?}", p.warnings);
        assert!(p.warnings[0].1.contains("invalid UTF-16"), "{:?}", p.warnings);
    }

    /// Deterministic noise (xorshift), without NUL bytes so the NUL check
    /// does not decide.
    fn noise(len: usize, printable: bool) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match printable {
                    true => b' ' + (x % 95) as u8,
                    false => (x % 255) as u8 + 1,
                }
            })
            .collect()
    }

    #[test]
    fn bytes_that_are_mostly_not_text_are_refused() {
        for (what, bytes) in [
            ("random bytes", noise(200 * 1024, false)),
            ("random printable ASCII", noise(20 * 1024, true)),
        ] {
            let err = policy_from_bytes("s", "x.txt", &bytes, None).unwrap_err();
            assert!(matches!(err, PolicyError::NotText { .. }), "{what}: {err}");
            assert!(err.to_string().starts_with("x.txt: not a text file"), "{err}");
        }
    }

    #[test]
    fn real_policies_are_text() {
        assert_eq!(not_text(EXAMPLE), None);
        // Saved as Latin-1: a few undecodable bytes are not enough to refuse it.
        // Every apostrophe a Windows-1252 curly one (0x92), every bullet 0x95.
        let latin1: Vec<u8> = EXAMPLE
            .chars()
            .map(|c| match c {
                '\'' => 0x92,
                '•' | '·' => 0x95,
                c if c.is_ascii() => c as u8,
                _ => b'-',
            })
            .collect();
        let p = policy_from_bytes("s", "p.txt", &latin1, None).unwrap();
        assert!(p.clauses.len() > 20);
        assert!(p.warnings[0].1.contains("invalid UTF-8"));
        // A short file is left to the parser.
        assert_eq!(not_text("1.2 3.4"), None);
    }

    #[test]
    fn binary_is_refused() {
        let err = policy_from_bytes("s", "x.txt", b"PK\x03\x04\0\0", None).unwrap_err();
        assert!(err.to_string().starts_with("x.txt: not a text file"));
    }
}
