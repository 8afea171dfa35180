//! Answers as people read them: plain text (the reply every channel can
//! show, and what the audit log records) and HTML (chat clients that format
//! messages). Both quote the clause exactly as written, after the head of
//! the prohibition list it is an item of ("Under ‘Don't:’ — “Use personal
//! email…”"), without which the item would read like permission.

use crate::engine::Answer;

pub(crate) fn plain_answer(answer: &Answer) -> String {
    let mut out = String::new();
    out.push_str(answer.verdict.headline());
    for (i, c) in answer.citations.iter().enumerate() {
        if i == 1 {
            out.push_str("\n\nAlso relevant:");
        }
        out.push_str("\n\n");
        if let Some(head) = &c.list_head {
            out.push_str(&format!("Under ‘{head}:’ — "));
        }
        out.push_str(&format!("“{}”\n— {}", c.text, c.reference));
    }
    if !answer.contacts.is_empty() {
        out.push_str(&format!("\n\nWho to ask: {}.", answer.contacts.join("; ")));
    }
    out
}

pub(crate) fn plain_declined(answer: &Answer) -> String {
    let mut out =
        String::from("I couldn't find a clause in your school's policies that answers this, so I won't guess.");
    if let Some(section) = &answer.nearest_section {
        out.push_str(&format!(" The nearest section is {section}."));
    }
    out.push_str(" Your question is marked unanswered for the e-safety lead to review.");
    if !answer.contacts.is_empty() {
        out.push_str(&format!(" Meanwhile you can ask: {}.", answer.contacts.join("; ")));
    }
    out
}

/// The same reply as HTML: the verdict in bold, each clause in a blockquote
/// with its citation under it.
pub fn html(answer: &Answer) -> String {
    if !answer.answered {
        return format!("<p>{}</p>", escape(&answer.reply));
    }
    let mut out = format!("<p><strong>{}</strong></p>", escape(answer.verdict.headline()));
    for (i, c) in answer.citations.iter().enumerate() {
        if i == 1 {
            out.push_str("<p>Also relevant:</p>");
        }
        if let Some(head) = &c.list_head {
            out.push_str(&format!("<p>Under ‘{}:’</p>", escape(head)));
        }
        out.push_str(&format!(
            "<blockquote>{}</blockquote><p>— <em>{}</em></p>",
            escape(&c.text),
            escape(&c.reference)
        ));
    }
    if !answer.contacts.is_empty() {
        out.push_str(&format!("<p>Who to ask: {}.</p>", escape(&answer.contacts.join("; "))));
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<b>\"Tom & Jerry's\"</b>"),
            "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;"
        );
    }
}
