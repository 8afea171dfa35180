//! Bytes → .docx import → clauses: a Word file saved into a policy folder.
//! A zip is read whole; anything else is taken as the document's XML parts
//! (document, numbering, styles, separated by NUL bytes), which mutations of
//! a zip would rarely reach past its checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policybot_index::corpus::policy_from_text;
use policybot_index::docx::{docx_to_text, parts_to_text};

fuzz_target!(|data: &[u8]| {
    let text = if data.starts_with(b"PK") {
        docx_to_text(data)
    } else {
        let xml = String::from_utf8_lossy(data);
        let mut parts = xml.splitn(3, '\0');
        let document = parts.next().unwrap_or_default();
        let numbering = parts.next().unwrap_or_default();
        let styles = parts.next().unwrap_or_default();
        parts_to_text(document, numbering, styles)
    };
    if let Ok(text) = text {
        let _ = policy_from_text("fuzz", "fuzz.docx", &text, None);
    }
});
