//! An HTML mail body as the plain text its sender saw, with the structure
//! [`super::text`] cuts by.
//!
//! Mail clients lay a reply out in blocks: Gmail, Outlook on the web and
//! Apple Mail put every line in its own `<div>`, Outlook desktop in its own
//! `<p class=MsoNormal>`, with `<div><br></div>` for a blank line. Read as
//! one run of text ("home?ThanksAmira ShahYear 4 teacher") no greeting,
//! sign-off or quote can be told apart, so blocks become lines here,
//! `<blockquote>` (Gmail's `gmail_quote`, Apple Mail's and Thunderbird's
//! `type="cite"`) becomes `> ` quoted lines after their "On … wrote:"
//! attribution, and the plain-text rules then decide what is new, exactly as
//! for a plain-text reply (answers between quoted lines included).
//!
//! What HTML says more plainly than text is used directly: signature
//! containers (`gmail_signature`, `moz-signature`, Outlook's and Apple Mail's
//! `id="Signature"`-like blocks) and hidden elements are dropped, and
//! Outlook's reply header block (`<div id="divRplyFwdMsg">`, the
//! `<div id="appendonsend">` before it, the `98%`-wide `<hr>` between) ends
//! the new text: Outlook quotes the thread below it without any quote
//! marks, and in any language.
//!
//! A small tokenizer rather than a full HTML parser: it is linear in the
//! input, never recurses (a fuzzed mail can nest elements a million deep),
//! and mail HTML needs nothing more than blocks, quotes and a few names.

/// Elements with no closing tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements that start and end a line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
];

/// Elements whose content is not text the reader sees: skipped to their
/// closing tag without reading it as markup.
const RAW: &[&str] = &["script", "style", "title", "textarea", "xmp"];

/// How deep open elements are tracked. Deeper ones are read as text only,
/// which keeps a pathological mail linear (each closing tag searches at most
/// this many open elements).
const MAX_OPEN: usize = 256;

/// The text of an HTML body: one line per block, quoted blocks as `> `
/// lines, signatures and hidden blocks left out, and nothing after Outlook's
/// reply header.
pub fn to_text(html: &str) -> String {
    let mut reader = Reader::default();
    reader.read(html);
    reader.finish()
}

/// What an open element does to the text inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    None,
    /// A quote: its lines get one more `>`.
    Quote,
    /// A signature, a hidden block or the `<head>`: its content is left out.
    Drop,
    /// Preformatted: line breaks in the source are line breaks.
    Pre,
}

#[derive(Debug)]
struct Open {
    name: String,
    effect: Effect,
}

#[derive(Debug, Default)]
struct Reader {
    lines: Vec<String>,
    /// The line being written, and whether it has any visible character.
    line: String,
    /// Collapsed whitespace seen since the last character of the line.
    space: bool,
    /// Quote depth of the lines written now.
    depth: usize,
    /// Open elements with an effect, or all of them below `MAX_OPEN`.
    open: Vec<Open>,
    /// Open `Drop` elements: while any is open nothing is written.
    dropping: usize,
    pre: usize,
    /// Outlook's reply header was met: the rest is the quoted thread.
    stopped: bool,
}

impl Reader {
    fn read(&mut self, html: &str) {
        // ASCII lower-casing keeps byte offsets, so positions found in
        // `lower` are positions in `html`.
        let lower = html.to_ascii_lowercase();
        let mut at = 0;
        while at < html.len() && !self.stopped {
            let Some(lt) = html[at..].find('<').map(|i| at + i) else {
                self.text(&html[at..]);
                break;
            };
            self.text(&html[at..lt]);
            let rest = &lower[lt..];
            if let Some(comment) = rest.strip_prefix("<!--") {
                at = comment.find("-->").map_or(html.len(), |i| lt + 4 + i + 3);
                continue;
            }
            if rest.starts_with("<!") || rest.starts_with("<?") {
                at = rest.find('>').map_or(html.len(), |i| lt + i + 1);
                continue;
            }
            let Some(tag) = Tag::parse(&html[lt..]) else {
                let opens_tag = rest[1..]
                    .trim_start_matches('/')
                    .starts_with(|c: char| c.is_ascii_alphabetic());
                if opens_tag {
                    // A tag that never ends: a browser shows nothing of it.
                    break;
                }
                self.text("<");
                at = lt + 1;
                continue;
            };
            at = lt + tag.len;
            let name = tag.name.to_ascii_lowercase();
            if tag.closing {
                self.close(&name);
            } else if RAW.contains(&name.as_str()) {
                // Skip to the closing tag; no markup inside counts.
                let close = format!("</{name}");
                at = lower[at..].find(&close).map_or(html.len(), |i| at + i);
            } else {
                self.start(&name, &tag);
            }
        }
    }

    fn start(&mut self, name: &str, tag: &Tag<'_>) {
        // Only at the top: an Outlook header inside a quote is an older
        // message's, and answers may still follow that quote.
        if self.depth == 0 && self.dropping == 0 && ends_new_text(name, tag) {
            self.block();
            self.stopped = true;
            return;
        }
        if name == "body" {
            // A `<head>` never closed must not hide the body.
            if let Some(head) = self.open.iter().rposition(|o| o.name == "head") {
                self.pop_to(head);
            }
        }
        if BLOCKS.contains(&name) {
            self.block();
        }
        match name {
            "br" => self.line_break(),
            "hr" => self.write_line("________________________________".to_owned()),
            "li" => self.word("- "),
            "td" | "th" => self.space = !self.line.is_empty(),
            _ => {}
        }
        if VOID.contains(&name) || tag.self_closing {
            return;
        }
        let effect = if name == "head" || is_signature(tag) || is_hidden(tag) {
            Effect::Drop
        } else if name == "blockquote" {
            Effect::Quote
        } else if name == "pre" {
            Effect::Pre
        } else {
            Effect::None
        };
        if self.open.len() >= MAX_OPEN {
            return;
        }
        match effect {
            Effect::Drop => self.dropping += 1,
            Effect::Quote => self.depth += 1,
            Effect::Pre => self.pre += 1,
            Effect::None => {}
        }
        self.open.push(Open {
            name: name.to_owned(),
            effect,
        });
    }

    fn close(&mut self, name: &str) {
        if let Some(i) = self.open.iter().rposition(|o| o.name == name) {
            self.pop_to(i);
        }
        if name == "br" {
            // `</br>` is read as `<br>` by browsers too.
            self.line_break();
        } else if BLOCKS.contains(&name) {
            self.block();
        }
    }

    /// Closes the open element at `i` and every element inside it.
    fn pop_to(&mut self, i: usize) {
        while self.open.len() > i {
            let Some(open) = self.open.pop() else { break };
            if BLOCKS.contains(&open.name.as_str()) {
                self.block();
            }
            match open.effect {
                Effect::Drop => self.dropping -= 1,
                Effect::Quote => self.depth -= 1,
                Effect::Pre => self.pre -= 1,
                Effect::None => {}
            }
        }
    }

    /// Text between tags, entities decoded, whitespace collapsed (outside
    /// `<pre>`).
    fn text(&mut self, raw: &str) {
        if self.dropping > 0 || raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        for c in decoded.chars() {
            match c {
                '\n' if self.pre > 0 => self.line_break(),
                '\r' if self.pre > 0 => {}
                ' ' | '\t' if self.pre > 0 => {
                    self.line.push(c);
                    self.space = false;
                }
                ' ' | '\t' | '\n' | '\r' | '\u{c}' => self.space = true,
                // Invisible: zero-width spaces and joiners, soft hyphens, BOMs.
                '\u{200b}'..='\u{200d}' | '\u{ad}' | '\u{feff}' | '\u{2060}' => {}
                c => {
                    if self.space && !self.line.is_empty() {
                        self.line.push(' ');
                    }
                    self.space = false;
                    // A no-break space is a visible character here (`<p>&nbsp;</p>` is a blank
                    // line, not nothing) and a plain space in the text.
                    self.line.push(c);
                }
            }
        }
    }

    /// Writes `s` as visible text (a list bullet).
    fn word(&mut self, s: &str) {
        if self.dropping == 0 {
            self.line.push_str(s);
            self.space = false;
        }
    }

    /// The end of a block: ends the line if anything is on it.
    fn block(&mut self) {
        if !self.line.is_empty() {
            self.line_break();
        }
        self.space = false;
    }

    /// `<br>`: ends the line, even an empty one (`<div><br></div>` is a
    /// blank line).
    fn line_break(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.space = false;
        self.write_line(line);
    }

    /// Adds a finished line, with its quote marks.
    fn write_line(&mut self, line: String) {
        if self.dropping > 0 {
            return;
        }
        let line = line.replace('\u{a0}', " ");
        let line = line.trim_end();
        self.lines.push(if self.depth == 0 {
            line.to_owned()
        } else if line.is_empty() {
            ">".repeat(self.depth)
        } else {
            format!("{} {line}", ">".repeat(self.depth))
        });
    }

    fn finish(mut self) -> String {
        self.block();
        self.lines.join("\n")
    }
}

/// Outlook's reply header and what comes just before it: the quoted thread
/// follows, without quote marks.
fn ends_new_text(name: &str, tag: &Tag<'_>) -> bool {
    let id = tag.attr("id").unwrap_or_default().to_ascii_lowercase();
    let style = style_of(tag);
    // Outlook on the web / new Outlook: `<div id="appendonsend"></div><hr style=
    // "display:inline-block;width:98%"><div id="divRplyFwdMsg">`; older OWA: `divRpF123456`;
    // new Outlook for Mac: `mail-editor-reference-message-container`.
    id == "appendonsend"
        || id == "divrplyfwdmsg"
        || id.starts_with("divrpf")
        || id == "mail-editor-reference-message-container"
        || (name == "hr" && style.contains("display:inline-block") && style.contains("width:98%"))
}

/// A signature block: `gmail_signature`, `moz-signature`, Outlook's
/// `id="Signature"`, Apple Mail's `AppleMailSignature`, Outlook mobile's
/// `ms-outlook-mobile-signature`; and Yahoo's quote container, which comes
/// without an attribution line.
fn is_signature(tag: &Tag<'_>) -> bool {
    ["class", "id"].iter().any(|attr| {
        let value = tag.attr(attr).unwrap_or_default().to_ascii_lowercase();
        value
            .split_whitespace()
            .any(|token| token.contains("signature") || token == "yahoo_quoted")
    })
}

/// An element its reader never sees.
fn is_hidden(tag: &Tag<'_>) -> bool {
    tag.attr("hidden").is_some() || style_of(tag).contains("display:none")
}

/// A tag's `style`, lower-case with its white space removed, so
/// `display: none` and `DISPLAY:none` read alike.
fn style_of(tag: &Tag<'_>) -> String {
    tag.attr("style")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .split_whitespace()
        .collect()
}

/// A start or end tag as written.
#[derive(Debug)]
struct Tag<'a> {
    name: &'a str,
    closing: bool,
    self_closing: bool,
    attrs: Vec<(&'a str, &'a str)>,
    /// Bytes from `<` to `>` inclusive.
    len: usize,
}

impl<'a> Tag<'a> {
    /// The tag at the start of `s` (which starts with `<`); `None` when the
    /// `<` does not open a tag ("a < b"), or the tag never ends.
    fn parse(s: &'a str) -> Option<Tag<'a>> {
        let mut rest = &s[1..];
        let closing = rest.starts_with('/');
        if closing {
            rest = &rest[1..];
        }
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        if name_len == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return None;
        }
        let name = &rest[..name_len];
        rest = &rest[name_len..];
        let mut attrs = Vec::new();
        let mut self_closing = false;
        loop {
            rest = rest.trim_start();
            let c = rest.chars().next()?;
            if c == '>' {
                rest = &rest[1..];
                break;
            }
            if c == '/' {
                self_closing = rest[1..].trim_start().starts_with('>');
                rest = &rest[1..];
                continue;
            }
            let attr_len = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>' || c == '/')
                .unwrap_or(rest.len())
                .max(c.len_utf8());
            let attr = &rest[..attr_len];
            rest = rest[attr_len..].trim_start();
            let mut value = "";
            if let Some(after) = rest.strip_prefix('=') {
                let after = after.trim_start();
                match after.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let end = after[1..].find(q)?;
                        value = &after[1..1 + end];
                        rest = &after[1 + end + 1..];
                    }
                    _ => {
                        let end = after
                            .find(|c: char| c.is_whitespace() || c == '>')
                            .unwrap_or(after.len());
                        value = &after[..end];
                        rest = &after[end..];
                    }
                }
            }
            attrs.push((attr, value));
        }
        Some(Tag {
            name,
            closing,
            self_closing,
            attrs,
            len: s.len() - rest.len(),
        })
    }

    fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }
}

/// Named entities mail clients write (numeric ones are decoded whatever
/// they name).
const ENTITIES: &[(&str, &str)] = &[
    ("nbsp", "\u{a0}"),
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("rsquo", "’"),
    ("lsquo", "‘"),
    ("rdquo", "”"),
    ("ldquo", "“"),
    ("hellip", "…"),
    ("ndash", "–"),
    ("mdash", "—"),
    ("pound", "£"),
    ("euro", "€"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("bull", "•"),
    ("middot", "·"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("shy", "\u{ad}"),
    ("zwnj", "\u{200c}"),
    ("zwj", "\u{200d}"),
    ("ensp", " "),
    ("emsp", " "),
    ("thinsp", " "),
    ("eacute", "é"),
    ("egrave", "è"),
    ("aacute", "á"),
    ("agrave", "à"),
    ("ouml", "ö"),
    ("uuml", "ü"),
    ("auml", "ä"),
    ("ccedil", "ç"),
];

/// `&amp;`, `&#39;`, `&#x2019;` and the named entities above; anything else
/// is left as written.
fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.char_indices().take(12).find(|&(_, c)| c == ';').map(|(i, _)| i);
        let decoded = end.and_then(|end| {
            let name = &rest[1..end];
            let numeric = name.strip_prefix('#').and_then(|n| match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => n.parse().ok(),
            });
            match numeric {
                Some(code) => Some(char::from_u32(code).unwrap_or('\u{fffd}').to_string()),
                None => ENTITIES.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()),
            }
            .map(|text| (text, end + 1))
        });
        match decoded {
            Some((text, len)) => {
                out.push_str(&text);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_lines_and_empty_blocks_blank_lines() {
        let html = "<div>Can I take photos on a trip?</div><div><br></div><div>Thanks</div>\
                    <div>Amira Shah</div><div>Year 4 teacher</div>";
        assert_eq!(
            to_text(html),
            "Can I take photos on a trip?\n\nThanks\nAmira Shah\nYear 4 teacher"
        );
        let outlook = "<p class=MsoNormal>Hi,<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>\
                       <p class=MsoNormal>Is Zoom  allowed?\r\n for parents&#39; evening</p>";
        assert_eq!(to_text(outlook), "Hi,\n\nIs Zoom allowed? for parents' evening");
        assert_eq!(
            to_text("<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>"),
            "- one\n- two\na b"
        );
    }

    #[test]
    fn quotes_signatures_and_hidden_blocks() {
        let html = "<div>New</div><div class=\"gmail_signature\"><div>Amira<br>Year 4</div></div>\
                    <div class=gmail_quote><div class=gmail_attr>On Mon, A wrote:<br></div>\
                    <blockquote class=gmail_quote><div>Old<blockquote>Older</blockquote></div></blockquote></div>\
                    <span style=\"display: none\">hidden</span><div>After</div>";
        assert_eq!(to_text(html), "New\nOn Mon, A wrote:\n> Old\n>> Older\nAfter");
    }

    #[test]
    fn outlook_reply_header_ends_the_text() {
        let html = "<div>Question?</div><div id=\"appendonsend\"></div><hr style=\"display:inline-block;width:98%\">\
                    <div id=\"divRplyFwdMsg\"><b>From:</b> Bot</div><div>Old thread</div>";
        assert_eq!(to_text(html), "Question?");
        let html = "<div>Question?</div><hr style=\"display:inline-block;width:98%\" tabindex=\"-1\"><div>Old</div>";
        assert_eq!(to_text(html), "Question?");
        // Quoted by another client, an Outlook header is part of the quote.
        let html = "<blockquote><div id=\"divRplyFwdMsg\">From: Bot</div></blockquote><div>Answer</div>";
        assert_eq!(to_text(html), "> From: Bot\nAnswer");
    }

    #[test]
    fn head_style_comments_and_broken_markup() {
        let html = "<html><head><style>p{color:red}</style><!--[if gte mso 9]><xml>x</xml><![endif]--></head>\
                    <body lang=EN-GB><p>a &lt; b &amp; c&#x2019;s &unknown; &#99999999; 5 < 6</p></body></html>";
        assert_eq!(to_text(html), "a < b & c’s &unknown; \u{fffd} 5 < 6");
        assert_eq!(to_text("<head><div>unclosed head</div><body>Body"), "Body");
        assert_eq!(to_text("text <div class=\"never closed"), "text");
        assert_eq!(to_text("<pre>a\n  b</pre>c"), "a\n  b\nc");
    }

    #[test]
    fn deep_and_huge_inputs_are_linear() {
        let deep = format!("{}x{}", "<div><blockquote>".repeat(200_000), "</span>".repeat(200_000));
        assert!(to_text(&deep).ends_with('x'));
        let unclosed = "<b>".repeat(300_000) + "y";
        assert_eq!(to_text(&unclosed), "y");
        let html = "<p>é &amp; <i>ü</i></p>".repeat(2);
        for (i, _) in html.char_indices() {
            let _ = to_text(&html[..i]);
        }
    }
}
