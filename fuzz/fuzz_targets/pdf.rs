//! Bytes → .pdf import → clauses: a PDF saved into a policy folder. A PDF
//! (it starts with `%PDF`) is read whole; anything else is taken as glyphs
//! placed on pages, for the layout that turns them into lines, paragraphs
//! and tables (the part that is ours; mutations of a real PDF mostly stop
//! in its parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use policybot_index::corpus::policy_from_text;
use policybot_index::pdf::{Glyph, Page, pages_to_text, pdf_to_text};

/// Glyphs of 6 bytes each: x and y (signed, quarter points), size, advance,
/// the character (a letter, digit, punctuation or a page break).
fn pages(data: &[u8]) -> Vec<Page> {
    let mut pages = vec![Page {
        width: 595.0,
        height: 842.0,
        glyphs: Vec::new(),
    }];
    for g in data.chunks_exact(6) {
        let c = g[5];
        if c == 0xFF {
            pages.push(Page {
                width: 595.0,
                height: 842.0,
                glyphs: Vec::new(),
            });
            continue;
        }
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;-()'\"/&%? ";
        let text = (CHARS[c as usize % CHARS.len()] as char).to_string();
        let page = pages.last_mut().expect("a page");
        page.glyphs.push(Glyph {
            x: f64::from(i16::from_le_bytes([g[0], g[1]])) / 4.0,
            y: f64::from(i16::from_le_bytes([g[2], g[3]])) / 4.0,
            size: f64::from(g[4] % 40 + 1),
            width: f64::from(g[4] % 40 + 1) * 0.5,
            text,
        });
    }
    pages
}

fuzz_target!(|data: &[u8]| {
    let text = if data.starts_with(b"%PDF") {
        match pdf_to_text(data) {
            Ok(text) => text,
            Err(_) => return,
        }
    } else {
        pages_to_text(&pages(data))
    };
    let _ = policy_from_text("fuzz", "fuzz.pdf", &text, None);
});
