//! Small text helpers shared by the parser, the ranker and the evaluator.
//!
//! Policies arrive as text exported from Word or PDF, so the same clause can be
//! spelled with curly quotes, odd dashes and private-use bullet glyphs. Every
//! comparison of "is this the same text" goes through [`normalize`].

/// Characters that Word/PDF exports use as list bullets. The private-use code
/// points are what Symbol/Wingdings bullets become when a document is saved
/// as text.
pub const BULLET_GLYPHS: &[char] = &[
    '·', '•', '◦', '▪', '■', '□', '●', '○', '➢', '➤', '►', '‣', '∙', '\u{f0b7}', '\u{f0a7}', '\u{f0d8}', '\u{f076}',
    '\u{f0fc}', '\u{f0e0}',
];

/// Normalises text for comparison: lowercase, curly quotes and apostrophes to
/// straight ones, en/em dashes to `-`, bullet glyphs removed, and every run of
/// whitespace folded to one space. This is exactly the normalisation the
/// evaluation README specifies, so gold substrings compare equal.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        let mapped = match ch {
            '‘' | '’' | '‚' | '‛' | '′' => '\'',
            '“' | '”' | '„' | '‟' | '″' => '"',
            '–' | '—' | '‐' | '‑' | '‒' | '−' => '-',
            c if BULLET_GLYPHS.contains(&c) => continue,
            c if c.is_whitespace() => {
                pending_space = !out.is_empty();
                continue;
            }
            c => c,
        };
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(mapped.to_lowercase());
    }
    out
}

/// Lowercased word tokens (letters and digits; apostrophes inside a word are
/// dropped so "can't" and "cant" meet).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            current.extend(ch.to_lowercase());
        } else if (ch == '\'' || ch == '’') && !current.is_empty() {
            // keep going: "don't" -> "dont"
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Abbreviations whose full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "eg", "i.e", "ie", "etc", "mr", "mrs", "ms", "dr", "st", "no", "nos", "vs", "cf", "approx", "incl", "dept",
    "ref", "fig", "ed", "co", "ltd",
];

/// Splits prose into sentences. Conservative: a sentence ends at `.`, `!` or
/// `?` followed by whitespace and an uppercase letter, digit or quote, unless
/// the word before the stop is a known abbreviation or a single initial.
pub fn sentences(text: &str) -> Vec<&str> {
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..bytes.len() {
        let (pos, ch) = bytes[i];
        if !matches!(ch, '.' | '!' | '?') {
            continue;
        }
        // Allow closing quotes/brackets after the stop.
        let mut j = i + 1;
        while j < bytes.len() && matches!(bytes[j].1, '"' | '\'' | '’' | '”' | ')') {
            j += 1;
        }
        if j >= bytes.len() || !bytes[j].1.is_whitespace() {
            continue;
        }
        let mut k = j;
        while k < bytes.len() && bytes[k].1.is_whitespace() {
            k += 1;
        }
        if k >= bytes.len() {
            continue;
        }
        let next = bytes[k].1;
        if !(next.is_uppercase() || next.is_ascii_digit() || matches!(next, '"' | '“' | '‘' | '(')) {
            continue;
        }
        if ch == '.' {
            let before = &text[start..pos];
            let last_word: String = before
                .rsplit(|c: char| c.is_whitespace() || c == '(')
                .next()
                .unwrap_or("")
                .to_lowercase();
            let bare = last_word.trim_end_matches('.');
            if ABBREVIATIONS.contains(&bare) || (bare.chars().count() == 1 && bare.chars().all(char::is_alphabetic)) {
                continue;
            }
        }
        let end = if j < bytes.len() { bytes[j].0 } else { text.len() };
        let sentence = text[start..end].trim();
        if !sentence.is_empty() {
            out.push(sentence);
        }
        start = bytes[k].0;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Lowercase ASCII slug for ids and URLs.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for w in words(text) {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&w);
    }
    if out.is_empty() { "untitled".to_owned() } else { out }
}

/// Title-cases text written in capitals ("SAFE USE OF ICT" -> "Safe Use of ICT"),
/// keeping short acronyms.
pub fn soften_caps(text: &str) -> String {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() || letters.iter().any(|c| c.is_lowercase()) {
        return text.to_owned();
    }
    const SMALL: &[&str] = &["of", "and", "the", "for", "to", "in", "on", "a", "an", "or", "with"];
    const ACRONYMS: &[&str] = &["ICT", "IT", "TWS", "DSL", "SLT", "USB", "GDPR", "AUP", "PC"];
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if ACRONYMS.contains(&w) {
                return w.to_owned();
            }
            let lower = w.to_lowercase();
            if i > 0 && SMALL.contains(&lower.as_str()) {
                return lower;
            }
            let mut chars = lower.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_eval_rules() {
        assert_eq!(
            normalize("  Don’t  use\t“WhatsApp” – ever "),
            "don't use \"whatsapp\" - ever"
        );
        assert_eq!(normalize("· Our internet"), "our internet");
    }

    #[test]
    fn sentences_respect_abbreviations() {
        let s = sentences("Use strong passwords, e.g. 3 random words. Never share them. Ask Mrs. Dean first.");
        assert_eq!(
            s,
            vec![
                "Use strong passwords, e.g. 3 random words.",
                "Never share them.",
                "Ask Mrs. Dean first."
            ]
        );
    }

    #[test]
    fn sentences_keep_initials() {
        let s = sentences("Reviewed by K. Beattie in July. Next review 2024.");
        assert_eq!(s, vec!["Reviewed by K. Beattie in July.", "Next review 2024."]);
    }

    #[test]
    fn words_join_apostrophes() {
        assert_eq!(
            words("Can't I use Dad's phone?"),
            vec!["cant", "i", "use", "dads", "phone"]
        );
    }

    #[test]
    fn caps_are_softened() {
        assert_eq!(
            soften_caps("SAFE USE OF ICT AND OTHER DIGITAL DEVICES"),
            "Safe Use of ICT and Other Digital Devices"
        );
    }
}
