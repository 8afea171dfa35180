//! Extracting the *new text* of an incoming email.
//!
//! Staff reply to the bot from every kind of mail client, so a body usually carries far more than the question:
//! the quoted previous message, Outlook header blocks, signatures, "Sent from my iPhone" and legal disclaimers.
//! The question is used word for word to search the policy index, so everything else has to go first, while
//! the sender's own words are kept exactly as written. Everything here is line based and linear in the input,
//! and never panics, whatever the body holds.

/// Openings of legal disclaimers and banners, `|`-separated (lowercase, "e-mail" spelled "email").
const DISCLAIMERS: &str = "this email and any files transmitted|this email and any attachments|\
    this message and any attachments|confidentiality notice|disclaimer:|\
    the information contained in this email|the information contained in this message|\
    this message is intended only for|this email is intended only for|\
    if you have received this email in error|if you have received this message in error|\
    please consider the environment before printing|this email originated from outside";

/// Mobile and webmail sign-offs ending the new text when alone on a line (`|`-separated lowercase prefixes).
const SIGN_OFFS: &str = "sent from my iphone|sent from my ipad|sent from my samsung|sent from my galaxy|\
    sent from my android|sent from my mobile|sent from outlook for ios|\
    sent from outlook for android|get outlook for ios|get outlook for android|\
    sent from mail for windows|sent from yahoo mail";

/// Closing lines starting a valediction block (`|`-separated, lowercase, without trailing punctuation).
const VALEDICTIONS: &str = "thanks|thank you|many thanks|thanks again|thanks so much|thank you so much|\
    thanks very much|thank you very much|thanks in advance|many thanks in advance|with thanks|kind regards|\
    kindest regards|best regards|warm regards|warmest regards|regards|best wishes|warm wishes|\
    all the best|best|cheers|yours sincerely|yours faithfully";

/// What the sender wrote in this mail, without quoted replies, signatures or disclaimers.
///
/// A body that is nothing but a quote, a signature or a disclaimer yields `""`. A closing valediction
/// ("Kind regards,\nAmira\nYear 4") is removed only when some text comes before it.
pub fn new_text(body: &str) -> String {
    // `lines` splits on "\n" and "\r\n"; trimming the end also drops any stray "\r".
    let lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    let mut kept: Vec<&str> = Vec::new();
    // Weight of the new text so far: a short greeting line ("Hi Bob,") counts 1, anything else 2.
    let mut text = 0;
    let mut interleaving = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_quoted(line) {
            i += 1;
            continue;
        }
        if let Some(len) = attribution_len(&lines, i) {
            // Answers between the quoted lines, unless a reply already came above the quote (top posting).
            if (interleaving || text <= 1) && is_interleaved(&lines, i + len) {
                interleaving = true;
                i += len;
                continue;
            }
            break;
        }
        if is_boundary(&lines, i) {
            break;
        }
        if is_disclaimer(line) {
            if text > 0 {
                break;
            }
            // A banner or disclaimer before any text: drop its paragraph and go on.
            i += lines[i..].iter().take_while(|l| !l.is_empty()).count();
            continue;
        }
        let not_greeting = line.ends_with('?') || line.split_whitespace().nth(4).is_some();
        text += if line.is_empty() {
            0
        } else {
            1 + usize::from(not_greeting)
        };
        kept.push(line);
        i += 1;
    }
    strip_valediction(&mut kept);
    strip_greeting(&mut kept);
    // Paragraphs joined by exactly one blank line, without blank lines at either end.
    let paragraphs = kept.split(|l| l.is_empty()).filter(|p| !p.is_empty());
    paragraphs.map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n")
}

/// A subject without reply/forward prefixes ("Re:", "RE:", "Fwd:", "FW:", "AW:", "SV:",
/// "[EXTERNAL]"-style tags, repeated, "Re[2]:"), trimmed.
pub fn bare_subject(subject: &str) -> String {
    let mut rest = subject.trim();
    while let Some(stripped) = strip_tag(rest).or_else(|| strip_prefix(rest)) {
        rest = stripped.trim_start();
    }
    rest.trim_end().to_string()
}

/// Strips a leading "[EXTERNAL]"-style tag.
fn strip_tag(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.char_indices().take(40).find(|&(_, c)| c == ']')?.0;
    Some(&inner[close + 1..])
}

/// Strips one reply/forward prefix such as "Re:", "FWD :", "Re[2]:" or "Re(3):".
fn strip_prefix(s: &str) -> Option<&str> {
    let word_len = s.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(s.len());
    if !listed("re|fw|fwd|aw|sv|wg", |p| s[..word_len].eq_ignore_ascii_case(p)) {
        return None;
    }
    let mut rest = &s[word_len..];
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = rest.strip_prefix(open) {
            let digits = inner.find(|c: char| !c.is_ascii_digit()).unwrap_or(inner.len());
            if digits > 0 && inner[digits..].starts_with(close) {
                rest = &inner[digits + 1..];
            }
        }
    }
    rest.trim_start().strip_prefix([':', '：'])
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Whether any `|`-separated entry of `list` satisfies `pred`.
fn listed(list: &str, pred: impl FnMut(&str) -> bool) -> bool {
    list.split('|').any(pred)
}

/// Number of lines (1 or 2) of a "On <date>, <name> wrote:" attribution starting at `i`.
fn attribution_len(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i].trim();
    if line.len() > 300 {
        return None;
    }
    let dated = |l: &str| {
        listed("On |Am |Le |El |Den ", |o| l.starts_with(o)) && l.contains(|c: char| c.is_ascii_digit() || c == '@')
    };
    if ends_attribution(line) {
        // "Jane Smith <j@x> wrote:" without a date counts only when a quote follows.
        let next = lines[i + 1..].iter().take(2).find(|l| !l.is_empty());
        return (dated(line) || next.is_some_and(|l| is_quoted(l))).then_some(1);
    }
    let next = lines.get(i + 1).map_or("", |l| l.trim());
    (next.len() <= 200 && ends_attribution(next) && dated(line)).then_some(2)
}

/// "... wrote:", also as "... a écrit :", "... escribió:", "... schrieb Jane <j@x>:" or "... skrev Jane:".
fn ends_attribution(line: &str) -> bool {
    line.ends_with(':')
        && (listed("wrote:|escribió:|a écrit :|a écrit:", |e| line.ends_with(e))
            || listed(" schrieb | skrev ", |v| line.contains(v)))
}

/// Whether the quote after an attribution is answered inline, i.e. new text follows the quoted lines.
fn is_interleaved(lines: &[&str], start: usize) -> bool {
    let after = &lines[start..];
    let quote_first = after.iter().find(|l| !l.is_empty()).is_some_and(|l| is_quoted(l));
    let reply = after
        .iter()
        .position(|l| !l.is_empty() && !is_quoted(l))
        .map(|j| start + j);
    let is_new_text =
        |j: usize| attribution_len(lines, j).is_none() && !is_boundary(lines, j) && !is_disclaimer(lines[j]);
    quote_first && reply.is_some_and(is_new_text)
}

/// Separators, header blocks, signature delimiters and sign-offs below which nothing is new text.
fn is_boundary(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    if line == "--" || is_outlook_header(lines, i) {
        return true;
    }
    if line.len() >= 8 && line.chars().all(|c| c == '_') {
        return lines[i + 1..].iter().take(2).any(|l| header_field(l, "from"));
    }
    if line.len() > 100 {
        return false;
    }
    let lower = line.to_lowercase();
    if lower == "begin forwarded message:" || (!lower.ends_with('?') && listed(SIGN_OFFS, |s| lower.starts_with(s))) {
        return true;
    }
    let core = lower.trim_matches(|c: char| c == '-' || c.is_whitespace());
    line.starts_with("--")
        && listed("original message|forwarded message|ursprüngliche nachricht", |s| {
            s == core
        })
}

/// "From: ..." followed within a few lines by "Sent:"/"Date:" and "To:"/"Subject:".
fn is_outlook_header(lines: &[&str], i: usize) -> bool {
    if !header_field(lines[i], "from|von") {
        return false;
    }
    let window = &lines[i + 1..lines.len().min(i + 7)];
    window.iter().any(|l| header_field(l, "sent|date|gesendet|datum"))
        && window.iter().any(|l| header_field(l, "to|subject|cc|an|betreff"))
}

/// Whether `line` starts with one of the `|`-separated header `names` and a colon, also in "*From:*" form.
fn header_field(line: &str, names: &str) -> bool {
    let t = line.trim_start().trim_start_matches('*');
    let Some((colon, _)) = t.char_indices().take(20).find(|&(_, c)| c == ':') else {
        return false;
    };
    let name = t[..colon].trim_end_matches('*').trim();
    listed(names, |n| name.eq_ignore_ascii_case(n))
}

/// A line opening a disclaimer: it starts with a typical opening, or contains one and is not a question.
fn is_disclaimer(line: &str) -> bool {
    let t = line.trim().trim_start_matches(|c: char| !c.is_alphanumeric());
    let lower = t.to_lowercase().replace("e-mail", "email");
    let question = t.ends_with('?');
    !t.is_empty()
        && listed(DISCLAIMERS, |d| {
            lower.starts_with(d) || (!question && lower.contains(d))
        })
}

/// Removes a closing "Thanks,\nName\nJob title" block of at most three short lines after the valediction,
/// not counting contact lines (a phone number, an address, a website, an inline image's placeholder).
fn strip_valediction(lines: &mut Vec<&str>) {
    let (mut after, mut contacts) = (0, 0);
    for idx in (0..lines.len()).rev() {
        let line = lines[idx].trim();
        if line.is_empty() {
            continue;
        }
        if is_valediction(line) {
            if lines[..idx].iter().any(|l| !l.is_empty()) {
                lines.truncate(idx);
            }
            return;
        }
        if line.chars().count() > 80 || line.ends_with('?') {
            return;
        }
        if is_contact(line) {
            contacts += 1;
        } else {
            after += 1;
        }
        if after > 3 || contacts > 4 || (after > 0 && line.chars().count() > 60) {
            return;
        }
    }
}

/// A signature's contact line: "Tel: 01234 567890", "a.shah@oakfield.example", "www.oakfield.example",
/// or the placeholder a plain-text part has for an inline image ("[cid:image001.png@01D…]", "[image: Logo]").
fn is_contact(line: &str) -> bool {
    let lower = line.to_lowercase();
    let digits = line.chars().filter(char::is_ascii_digit).count();
    digits >= 6
        || lower.contains('@')
        || listed("www.|http://|https://", |w| lower.contains(w))
        || listed("[cid:|[image", |p| lower.starts_with(p))
}

/// "Thanks," / "Kind regards" / "Thanks, Amira" alone on a line.
/// Openings of a salutation line ("Hi,", "Dear Policy Bot,", "Good morning!").
const GREETINGS: &str = "hi|hello|hey|dear|good morning|good afternoon|good evening|morning|afternoon|hiya";

/// Drops a salutation standing alone as the first line, when more text follows.
fn strip_greeting(lines: &mut Vec<&str>) {
    let Some(first) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return;
    };
    let line = lines[first].trim();
    let lower = line.to_lowercase();
    let greeting = line.chars().count() <= 40
        && !line.ends_with('?')
        && listed(GREETINGS, |g| {
            lower.starts_with(g) && lower[g.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric())
        })
        && (line.ends_with([',', '!', '.']) || line.split_whitespace().count() <= 3);
    if greeting && lines[first + 1..].iter().any(|l| !l.trim().is_empty()) {
        lines.drain(..=first);
    }
}

fn is_valediction(line: &str) -> bool {
    let bare = |s: &str| {
        let s = s.to_lowercase();
        listed(VALEDICTIONS, |v| v == s.trim_end_matches([',', '.', '!', ' ']))
    };
    // Also "Thanks, Amira": a valediction, a comma and a short capitalised name.
    let with_name = |(head, name): (&str, &str)| {
        let name = name.trim();
        bare(head)
            && name.starts_with(char::is_uppercase)
            && name.split_whitespace().count() <= 3
            && !name.ends_with('?')
    };
    line.len() <= 80 && (bare(line) || line.split_once(',').is_some_and(with_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "Can I use WhatsApp to message parents on the residential trip?";

    fn check(body: &str, want: &str) {
        assert_eq!(new_text(body), want, "body: {body:?}");
    }

    #[test]
    fn cuts_everything_after_the_question() {
        for tail in [
            // Attributions, also wrapped, and a dateless one followed by a quote.
            "\n\nThanks,\nAmira\nYear 4\n\n\
             On Mon, 2 Mar 2026 at 09:14, Policy Bot <policy@oakfield.example> wrote:\n> Hi",
            "\r\n\r\nOn Tue, 3 Mar 2026 at 10:02, Jane Smith <jane.smith@oakfield.example>\r\n\
             wrote:\r\n\r\nSee attached.",
            "\n\nJane Smith <jane@oakfield.example> wrote:\n\n> Earlier",
            // Outlook header blocks, with underscores, in bold and in another order.
            "\n\n________________________________\nFrom: Policy Bot <policy@oakfield.example>\n\
             Sent: 02 March 2026 09:14\nTo: Tom Okafor <t.okafor@oakfield.example>\nSubject: RE: photos\n\nHello",
            "\n\n*From:* Office\n*Date:* Monday\n*To:* Staff\n\nDetails",
            "\nFrom: Head\nTo: Staff\nSubject: Phones\nDate: Mon",
            // Separators.
            "\n-----Original Message-----\nFrom: Head",
            "\n\n---------- Forwarded message ---------\nFrom: LA <la@x>",
            "\n----- Forwarded message -----\nhello",
            "\n\nBegin forwarded message:\n\nFrom: Parent",
            // Signatures and mobile sign-offs.
            "\n-- \nMr T. Okafor\nPE Lead\n01234 567890",
            "\n--\nTom",
            "\n\nSent from my iPhone\n\nOn Mon, 2 Mar 2026, Bot wrote:\n> x",
            "\nSent from my Samsung Galaxy smartphone.",
            "\n\nGet Outlook for iOS",
            // Disclaimers.
            "\n\nKind regards,\nAmira Khan\nOakfield Primary School | 01234 567890\n\n\
             This e-mail and any files transmitted with it are confidential and intended solely for the addressee.",
            "\n\nCONFIDENTIALITY NOTICE: This message is private.",
            "\nPlease consider the environment before printing this email.",
            // Valedictions with up to three short lines.
            "\n\nKind regards,\n\nMr T. Okafor\nYear 6 Teacher\nOakfield Primary School",
            "\n\nThanks, Amira",
            "\nCheers",
            "\n\nBest,\nSam",
            "\n\nMany thanks!\n\nAmira",
            // Contact lines do not count towards the three.
            "\n\nBest wishes\nAmira Shah\nYear 4 teacher\nOakfield Primary School\nTel: 01234 567890 | \
             a.shah@oakfield.example\nwww.oakfield.example\n[cid:image001.png@01DCAA4F.3C2E5B10]",
            "\n\nThanks\nAmira Shah\nYear 4 teacher | Oakfield Primary School",
        ] {
            check(&format!("{Q}{tail}"), Q);
        }
    }

    #[test]
    fn keeps_text_that_only_looks_like_a_marker() {
        for body in [
            "Thanks for the help yesterday — can I use my phone on the trip?",
            "On the trip, Mrs Patel wrote:\nCan she keep the receipts?",
            "From: Year 5 we are going to the museum. Can I bring my dog?",
            "I sent from my iPhone earlier - did it arrive?",
            "Sent from my iPad at home: can I take photos?",
            "Is the information contained in this email from a parent confidential?",
            "Quick one.\n\nThanks,\nAmira\nYear 4\nOakfield\nRoom 12",
            "Quick one.\n\nThanks,\nAmira\nYear 4\nOakfield\n01234 567890\nRoom 12",
            "Hi everyone at Oakfield\n\nThanks\nCan I leave early on Friday for a funeral?",
            "Thank you!\nAmira",
        ] {
            check(body, body);
        }
    }

    #[test]
    fn drops_interleaved_quotes() {
        let body = "On Wed, 4 Mar 2026 at 08:00, Policy Bot <policy@oakfield.example> wrote:\n\
                    > Which trip is this for?\n\nThe Year 6 residential to Kingswood.\n\n\
                    > Will you be using a school phone?\nNo, my own phone. Is that allowed?\n\n> Thanks\n";
        check(
            body,
            "The Year 6 residential to Kingswood.\n\nNo, my own phone. Is that allowed?",
        );
        check("> Is it for Year 5?\nYes.\n>> older\nAnd Year 6?", "Yes.\nAnd Year 6?");
        check(
            "Hi Bob,\n\nOn 2 Mar 2026, Bot <b@x> wrote:\n> Which class?\nYear 3.",
            "Year 3.",
        );
        // Top posting: a footer below the quote is not an interleaved answer.
        check(
            &format!("{Q}\n\nOn 2 Mar 2026, Bot <b@x> wrote:\n> Hi\n\nOakfield Primary, High St"),
            Q,
        );
        let body = "Can I take photos?\n\nThanks,\nAmira\n\n> Earlier\nP.S. And videos?";
        check(body, "Can I take photos?\n\nThanks,\nAmira\n\nP.S. And videos?");
    }

    #[test]
    fn leading_banner_is_dropped_and_text_kept() {
        let banner = "CAUTION: This email originated from outside of the organisation.\nDo not click links.\n\n";
        check(&format!("{banner}{Q}"), Q);
    }

    #[test]
    fn whitespace_and_paragraphs_are_normalised_but_words_kept() {
        let body = "\n\n  \r\nHi Policy Bot,\t\r\n\n\n\nOur DSL is away. WHO should I tell about a   concern?\n\n\n";
        check(body, "Our DSL is away. WHO should I tell about a   concern?");
    }

    #[test]
    fn nothing_new_yields_empty() {
        for body in [
            "",
            " \r\n\t\n",
            "> Can I?\n>> Earlier\n> \n",
            "On Mon, 2 Mar 2026, Bot <b@x> wrote:\n> Hello\n> there",
            "Sent from my iPhone",
            "DISCLAIMER: The information contained in this email is confidential.\nIt is private.",
        ] {
            check(body, "");
        }
    }

    #[test]
    fn unicode_and_every_prefix_is_safe() {
        let body = "Dürfen wir Fotos 📷 machen? Ünïcödé…\n\nThanks,\nZoë\n\n\
                    Am Mo., 2. März 2026 um 09:14 Uhr schrieb Policy Bot <p@x>:\n> Grüße";
        check(body, "Dürfen wir Fotos 📷 machen? Ünïcödé…");
        for (i, _) in body.char_indices() {
            let _ = new_text(&body[..i]);
            let _ = bare_subject(&body[i..]);
        }
    }

    #[test]
    fn huge_inputs_are_fine() {
        let mut body = String::from("Can I?\n");
        body.push_str(&"> quoted line é\nFrom: x\n".repeat(40_000));
        body.push_str(&"é".repeat(500_000));
        assert!(new_text(&body).starts_with("Can I?\nFrom: x"));
        let interleaved = "On 1 Mar, A <a@x> wrote:\n> q\nanswer\n".repeat(30_000);
        assert_eq!(new_text(&interleaved).lines().count(), 30_000);
        assert_eq!(new_text(&"a".repeat(1_000_000)).len(), 1_000_000);
    }

    #[test]
    fn subjects() {
        for (subject, want) in [
            ("Re: RE: Fwd: Can I take photos?", "Can I take photos?"),
            ("Re[2]: x", "x"),
            ("", ""),
            ("Re: ", ""),
            ("  [EXTERNAL] FW: AW:SV: Trip  ", "Trip"),
            ("Re(3) : [External Email] Re: Lanyards", "Lanyards"),
            ("Reminder: staff meeting", "Reminder: staff meeting"),
            ("[unclosed tag", "[unclosed tag"),
            ("Ré: café", "Ré: café"),
        ] {
            assert_eq!(bare_subject(subject), want, "{subject:?}");
        }
    }

    #[test]
    fn a_salutation_line_is_not_part_of_the_question() {
        for (body, expected) in [
            ("Hi,\n\nCan I use WhatsApp?", "Can I use WhatsApp?"),
            ("Dear Policy Bot,\nCan I use WhatsApp?\n", "Can I use WhatsApp?"),
            ("Good morning!\n\nIs Zoom allowed?", "Is Zoom allowed?"),
            ("Hi there\nIs Zoom allowed?", "Is Zoom allowed?"),
            ("Hi, can I use WhatsApp?", "Hi, can I use WhatsApp?"),
            ("Hello", "Hello"),
            (
                "Highlighting text in red on the board: allowed?",
                "Highlighting text in red on the board: allowed?",
            ),
        ] {
            assert_eq!(new_text(body), expected, "{body:?}");
        }
    }
}
