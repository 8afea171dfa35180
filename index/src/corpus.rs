//! Reading policy files (.txt, .md, .docx, .pdf) from disk: the only file
//! I/O the library does besides its index directory. Every failure names the
//! file, and one bad file never stops the others.

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

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a text file (it contains NUL bytes); export the policy as .txt, .md, .docx or .pdf")]
    Binary { path: String },
    #[error("{path}: {size} bytes is larger than the {max}-byte limit for one policy")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{path}: unsupported file type; policies are read from {exts}")]
    Unsupported { path: String, exts: String },
    #[error("{path}: {source}")]
    Docx {
        path: String,
        source: crate::docx::DocxError,
    },
    #[error("{path}: {source}")]
    Pdf { path: String, source: crate::pdf::PdfError },
}

impl PolicyError {
    pub fn path(&self) -> &str {
        match self {
            PolicyError::Io { path, .. }
            | PolicyError::Binary { path }
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
    if !is_policy_file(path) {
        return Err(PolicyError::Unsupported {
            path: display,
            exts: POLICY_EXTENSIONS.join(", "),
        });
    }
    let io = |source| PolicyError::Io {
        path: display.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
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
        let text = crate::docx::docx_to_text(&bytes).map_err(|source| PolicyError::Docx {
            path: display.clone(),
            source,
        })?;
        return Ok(policy_from_text(school, &display, &text, modified.as_deref()));
    }
    if is_pdf {
        let text = crate::pdf::pdf_to_text(&bytes).map_err(|source| PolicyError::Pdf {
            path: display.clone(),
            source,
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
    if bytes.iter().take(64 * 1024).any(|b| *b == 0) {
        return Err(PolicyError::Binary {
            path: source.to_owned(),
        });
    }
    let (text, bad_line) = match std::str::from_utf8(bytes) {
        Ok(t) => (std::borrow::Cow::Borrowed(t), None),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            (String::from_utf8_lossy(bytes), Some(line))
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut policy = policy_from_text(school, source, text, modified);
    if let Some(line) = bad_line {
        policy.warnings.insert(
            0,
            (
                line,
                "invalid UTF-8 replaced with U+FFFD; re-save the file as UTF-8".into(),
            ),
        );
    }
    Ok(policy)
}

/// Policy files directly inside `dir`, sorted by name so ids and output are stable.
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let io = |source| PolicyError::Io {
        path: dir.display().to_string(),
        source,
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

    #[test]
    fn binary_is_refused() {
        let err = policy_from_bytes("s", "x.txt", b"PK\x03\x04\0\0", None).unwrap_err();
        assert!(err.to_string().starts_with("x.txt: not a text file"));
    }
}
