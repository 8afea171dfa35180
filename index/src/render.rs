//! Answers as people read them: plain text (the reply every channel can
//! show, and what the audit log records) and HTML (chat clients that format
//! messages). Both quote the clause exactly as written, after the head of
//! the prohibition list it is an item of ("Under ‘Don't:’ — “Use personal
//! email…”"), without which the item would read like permission.

use crate::engine::{Answer, Mode};

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

/// Not sure: the closest clauses, quoted, with no verdict.
pub(crate) fn plain_suggestion(answer: &Answer) -> String {
    let mut out = String::from(SUGGEST_HEADLINE);
    for c in &answer.citations {
        out.push_str("\n\n");
        if let Some(head) = &c.list_head {
            out.push_str(&format!("Under ‘{head}:’ — "));
        }
        out.push_str(&format!("“{}”\n— {}", c.text, c.reference));
    }
    out.push_str("\n\n");
    out.push_str(MARKED_UNANSWERED);
    if !answer.contacts.is_empty() {
        out.push_str(&format!(" Meanwhile you can ask: {}.", answer.contacts.join("; ")));
    }
    out
}

/// The first line of a suggestion.
pub const SUGGEST_HEADLINE: &str = "I'm not sure which clause answers this; the closest are:";
const MARKED_UNANSWERED: &str = "Your question is marked unanswered for the e-safety lead to review.";

pub(crate) fn plain_declined(answer: &Answer) -> String {
    let mut out =
        String::from("I couldn't find a clause in your school's policies that answers this, so I won't guess.");
    if let Some(section) = &answer.nearest_section {
        out.push_str(&format!(" The nearest section is {section}."));
    }
    out.push(' ');
    out.push_str(MARKED_UNANSWERED);
    if !answer.contacts.is_empty() {
        out.push_str(&format!(" Meanwhile you can ask: {}.", answer.contacts.join("; ")));
    }
    out
}

/// The same reply as HTML: the verdict in bold, each clause in a blockquote
/// with its citation under it.
pub fn html(answer: &Answer) -> String {
    let headline = match answer.mode {
        Mode::Decline => return format!("<p>{}</p>", escape(&answer.reply)),
        Mode::Suggest => SUGGEST_HEADLINE,
        Mode::Answer => answer.verdict.headline(),
    };
    let mut out = format!("<p><strong>{}</strong></p>", escape(headline));
    for (i, c) in answer.citations.iter().enumerate() {
        if i == 1 && answer.mode == Mode::Answer {
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
    if answer.mode == Mode::Suggest {
        out.push_str(&format!("<p>{}</p>", escape(MARKED_UNANSWERED)));
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
