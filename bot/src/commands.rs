//! The commands staff can send a chat channel besides questions: `help`,
//! `policies` and `source`. Each reply comes as plain text and as HTML, like
//! answers; both quote policies exactly.

use policybot_index::Engine;
use policybot_index::render::escape;

use crate::service::Channel;

/// A reply in the two forms chat clients take.
#[derive(Debug, Clone)]
pub struct Reply {
    pub plain: String,
    pub html: String,
}

impl Reply {
    /// A reply with no formatting beyond paragraphs.
    pub fn text(plain: impl Into<String>) -> Reply {
        let plain = plain.into();
        let html = plain
            .split("\n\n")
            .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>")))
            .collect();
        Reply { plain, html }
    }
}

/// What the bot does and how to ask it, on `channel`.
pub fn help(channel: Channel) -> Reply {
    let how = match channel {
        Channel::Email => {
            "Email me one question at a time; reply in the same thread to follow up (\"what about on a school \
             phone?\") and I read it with the question before it. I don't open attachments."
        }
        _ => {
            "In a group room, mention me; in a direct message, just ask. Follow-ups in the same thread \
             (\"what about on a school phone?\") are read with the question before them."
        }
    };
    Reply::text(format!(
        "Ask me about your school's policies in your own words, for example \"Can I use WhatsApp to message \
         parents on a trip?\". I reply with the clause that answers it, quoted word for word, and where it is \
         in the policy. If no clause answers, I say so and pass the question to the e-safety lead.\n\n{how}\n\n\
         Commands: help · policies (the policies I know for your school) · source (the clause I last \
         cited in this thread, with the clauses around it) · source CLAUSE-ID"
    ))
}

/// The policies the engine holds for `school`.
pub fn policies(engine: &Engine, school: &str) -> Reply {
    let mine: Vec<_> = engine.policies().iter().filter(|p| p.school == school).collect();
    if mine.is_empty() {
        return Reply::text("I don't have any policies for your school yet. Please tell your e-safety lead.");
    }
    let lines: Vec<String> = mine
        .iter()
        .map(|p| format!("{} — version {} ({} clauses)", p.title, p.version, p.clauses.len()))
        .collect();
    let plain = format!("The policies I answer from:\n{}", lines.join("\n"));
    let items: String = lines.iter().map(|l| format!("<li>{}</li>", escape(l))).collect();
    Reply {
        plain,
        html: format!("<p>The policies I answer from:</p><ul>{items}</ul>"),
    }
}

/// Neighbours shown either side of a clause by `source`.
const SOURCE_RADIUS: usize = 3;

/// A clause in full with the clauses around it in its section. Only the
/// asker's school's clauses are shown.
pub fn source(engine: &Engine, school: &str, clause_id: Option<&str>) -> Reply {
    let Some(id) = clause_id else {
        return Reply::text(
            "Send \"source\" in the thread of one of my answers to see the clause with the clauses around it.",
        );
    };
    let found = engine
        .section_around(id.trim(), SOURCE_RADIUS)
        .filter(|(policy, _, _)| policy.school == school);
    let Some((policy, clauses, at)) = found else {
        return Reply::text(format!(
            "I don't know a clause \"{}\" in your school's policies.",
            id.trim()
        ));
    };
    let cited = clauses[at];
    let mut plain = format!("{}\n", cited.citation());
    let mut html = format!("<p><em>{}</em></p>", escape(&cited.citation()));
    for (i, clause) in clauses.iter().enumerate() {
        // The head of a Don't list, once before its items: they read as
        // permissions without it.
        let head = clause.list_head.as_deref();
        if let Some(head) = head.filter(|h| i == 0 || clauses[i - 1].list_head.as_deref() != Some(*h)) {
            plain.push_str(&format!("\n  Under ‘{head}:’"));
            html.push_str(&format!("<p>Under ‘{}:’</p>", escape(head)));
        }
        let number = match &clause.number {
            Some(n) => escape(n.trim_end_matches(['.', ')'])),
            None => clause.ordinal.to_string(),
        };
        if i == at {
            plain.push_str(&format!("\n▶ {number}. “{}”", clause.text));
            html.push_str(&format!(
                "<blockquote><strong>{number}. {}</strong></blockquote>",
                escape(&clause.text)
            ));
        } else {
            plain.push_str(&format!("\n  {number}. “{}”", clause.text));
            html.push_str(&format!("<p>{number}. {}</p>", escape(&clause.text)));
        }
    }
    plain.push_str(&format!(
        "\n\n(lines {}–{} of {})",
        cited.lines.0, cited.lines.1, policy.title
    ));
    Reply { plain, html }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_shows_the_head_of_a_dont_list_before_its_items() {
        let service = crate::service::tests::service();
        let engine = service.engine();
        let clause = &engine.policies()[0].clauses[0];
        let reply = source(&engine, "oakfield", Some(&clause.id));
        assert!(
            reply
                .plain
                .contains("\n  Under ‘Don't:’\n▶ 1. “Use personal email addresses to contact parents.”"),
            "{}",
            reply.plain
        );
        assert!(
            reply.html.contains("<p>Under ‘Don&#39;t:’</p><blockquote>"),
            "{}",
            reply.html
        );
    }
}
