//! Policy text → clauses.
//!
//! Real policies are Word/PDF exports: bullets in half a dozen glyphs, lines
//! wrapped mid-sentence (sometimes across a blank line), tab tables, headings
//! that are only "a short line without a full stop", "Do"/"Don't" lists whose
//! items mean "prohibited" only because of their heading, and signature blocks.
//! The parser works in three passes:
//!
//! 1. [`classify`] gives every line a [`Line`] kind on its own merits.
//! 2. [`blocks`] joins wrapped lines into paragraphs and list items.
//! 3. [`Builder`] walks the blocks with a heading stack and emits clauses:
//!    one per list item, one per sentence group of a paragraph.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use crate::clause::{Clause, Modality, Policy};
use crate::modality;
use crate::text;

/// What the parser needs to know about one policy file.
#[derive(Debug, Clone)]
pub struct PolicySource<'a> {
    pub school: &'a str,
    /// Path or name, used in messages and as the re-indexing key.
    pub source: &'a str,
    pub text: &'a str,
    /// The file's modification date (YYYY-MM-DD), used in the version label when
    /// the policy has no version line of its own.
    pub modified: Option<&'a str>,
}

/// The warning for a file that gave no clauses (empty, only headings, only
/// a signature block). The callers that read files make it an error.
pub const NO_CLAUSES: &str = "no clauses found: the file has no text a member of staff could be held to";

/// Parses a policy. Never fails: a policy with nothing usable yields no clauses
/// and a warning, so one broken file cannot stop the others being indexed.
pub fn parse_policy(src: &PolicySource<'_>) -> Policy {
    let lines = classify(src.text);
    let blocks = blocks(&lines);
    let content_hash = hex_hash(src.text.as_bytes(), 16);
    let title = find_title(&lines).unwrap_or_else(|| title_from_source(src.source));
    let declared = find_version(src.text);
    let version_declared = declared.is_some();
    let version = declared.unwrap_or_else(|| match src.modified {
        Some(date) => format!("{date} #{}", &content_hash[..8]),
        None => format!("#{}", &content_hash[..8]),
    });
    let slug = text::slug(&title);
    let mut builder = Builder::new(src.school, &slug);
    for block in &blocks {
        builder.push(block);
    }
    let Builder {
        clauses: drafts,
        contacts,
        mut warnings,
        ..
    } = builder;
    if drafts.is_empty() {
        warnings.push((1, NO_CLAUSES.into()));
    }
    let clauses = drafts
        .into_iter()
        .map(|draft| Clause {
            id: draft.id,
            school: src.school.to_owned(),
            policy: slug.clone(),
            policy_title: title.clone(),
            policy_version: version.clone(),
            heading_path: draft.heading_path,
            number: draft.number,
            ordinal: draft.ordinal,
            text: draft.text,
            context: draft.context,
            lines: draft.lines,
            modality: draft.modality,
            list_head: draft.list_head,
        })
        .collect();
    Policy {
        school: src.school.to_owned(),
        slug,
        title,
        version,
        version_declared,
        source: src.source.to_owned(),
        content_hash,
        clauses,
        contacts,
        warnings,
    }
}

pub(crate) fn hex_hash(bytes: &[u8], hex_len: usize) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(hex_len);
    for b in digest.iter() {
        if out.len() >= hex_len {
            break;
        }
        out.push_str(&format!("{b:02x}"));
    }
    out.truncate(hex_len);
    out
}

/// True for headings that introduce a list and give its items their meaning:
/// "Do", "Don't", "I will", "I will not", "Never", "Always", …
pub fn is_list_mode_heading(heading: &str) -> bool {
    list_mode(heading).is_some()
}

fn list_mode(line: &str) -> Option<Modality> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(?:(dos?)|(don'?ts?|do not|never|i will not|i must not|you must not|staff must not|you should not|staff should not|i won'?t|not acceptable|unacceptable(?: use)?)|(i will|i must|you must|staff must|always|you should|staff should|acceptable(?: use)?))\s*:?$")
            .expect("valid regex")
    });
    let t = text::normalize(line);
    let caps = RE.captures(t.trim())?;
    if caps.get(2).is_some() {
        Some(Modality::MustNot)
    } else if caps.get(1).is_some() || caps.get(3).is_some() {
        Some(Modality::Must)
    } else {
        None
    }
}

// ---------------------------------------------------------------- pass 1

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Blank,
    /// Signature blocks, fill-in lines, form fields: never clauses.
    Skip,
    Heading {
        level: u8,
        number: Option<String>,
    },
    /// "Do", "Don't", "I will not", … : the items that follow take this modality.
    ListMode(Modality),
    Item {
        number: Option<String>,
        sub: bool,
    },
    Table,
    Text,
}

#[derive(Debug, Clone)]
struct Line {
    no: usize,
    kind: Kind,
    /// The text with bullet glyph/enumerator removed and surrounding whitespace trimmed.
    text: String,
}

static NUMBERED_HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{1,2}(?:\.\d{1,2})*\.?)\s+(\S.*)$").expect("valid regex"));
static ENUMERATOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\(?(?:\d{1,2}|[a-z]|[ivxl]{1,5})[.)])\s+(\S.*)$").expect("valid regex"));
static DATE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:(?:next\s+)?review(?:ed)?:?\s+)?(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|spring|summer|autumn|winter)(?:\s+term)?\s+\d{4}$").expect("valid regex")
});
static FORM_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:signed|signature|sign|print(?:ed)?(?: name)?|date|dated|full name|name|staff name|job title|position|role|pupil|parent/carer|parent|carer|class|witness)\b").expect("valid regex")
});

fn classify(source: &str) -> Vec<Line> {
    let raw: Vec<&str> = source.lines().collect();
    let mut out: Vec<Line> = Vec::with_capacity(raw.len());
    for (i, line) in raw.iter().enumerate() {
        let no = i + 1;
        let line = line.trim_end();
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        let trimmed = line.trim();
        let (kind, text) = classify_one(trimmed, indent);
        out.push(Line { no, kind, text });
    }
    // Headings need a look at their neighbours: a short line followed by a
    // lowercase continuation is a wrapped sentence, not a heading.
    // A Markdown "## Heading" says what it is.
    for i in 0..out.len() {
        if let Kind::Heading { level: 2, .. } = out[i].kind
            && !raw[i].trim_start().starts_with('#')
        {
            let next = out[i + 1..].iter().find(|l| l.kind != Kind::Blank);
            let continues = next
                .is_some_and(|n| matches!(n.kind, Kind::Text) && n.text.chars().next().is_some_and(char::is_lowercase));
            if continues || next.is_none() {
                out[i].kind = Kind::Text;
            }
        }
    }
    out
}

fn classify_one(trimmed: &str, indent: usize) -> (Kind, String) {
    if trimmed.is_empty() {
        return (Kind::Blank, String::new());
    }
    if is_fill_in(trimmed) {
        return (Kind::Skip, trimmed.to_owned());
    }
    // Tables: two or more non-empty tab-separated cells.
    let cells: Vec<&str> = trimmed.split('\t').map(str::trim).filter(|c| !c.is_empty()).collect();
    if cells.len() >= 2 {
        return (Kind::Table, trimmed.to_owned());
    }
    let trimmed = cells.first().copied().unwrap_or(trimmed);
    if let Some(rest) = trimmed.strip_prefix('#') {
        let level = 1 + rest.chars().take_while(|c| *c == '#').count() as u8;
        return (
            Kind::Heading { level, number: None },
            rest.trim_start_matches('#').trim().to_owned(),
        );
    }
    if let Some(m) = list_mode(trimmed) {
        return (Kind::ListMode(m), trimmed.trim_end_matches(':').trim().to_owned());
    }
    // Bullet glyphs, including '-', '*' and 'o' followed by a space.
    let mut chars = trimmed.chars();
    let first = chars.next().unwrap_or(' ');
    let after_first = chars.as_str();
    let is_glyph = text::BULLET_GLYPHS.contains(&first)
        || (matches!(first, '-' | '*' | '–' | 'o' | '>') && after_first.starts_with(|c: char| c.is_whitespace()));
    if is_glyph {
        let rest = after_first.trim();
        if let Some(caps) = ENUMERATOR.captures(rest) {
            return (
                Kind::Item {
                    number: Some(caps[1].to_owned()),
                    sub: true,
                },
                caps[2].to_owned(),
            );
        }
        return (
            Kind::Item {
                number: None,
                sub: indent > 0,
            },
            rest.to_owned(),
        );
    }
    if let Some(caps) = NUMBERED_HEADING.captures(trimmed) {
        let number = caps[1].to_owned();
        let title = caps[2].trim();
        let word_count = title.split_whitespace().count();
        let starts_upper = title.chars().next().is_some_and(char::is_uppercase);
        if starts_upper && word_count <= 8 && !title.ends_with(['.', ',', ';', ':']) {
            let depth = number
                .trim_end_matches('.')
                .split('.')
                .filter(|p| *p != "0")
                .count()
                .max(1);
            return (
                Kind::Heading {
                    level: depth as u8,
                    number: Some(number),
                },
                title.to_owned(),
            );
        }
        return (
            Kind::Item {
                number: Some(number),
                sub: false,
            },
            title.to_owned(),
        );
    }
    if let Some(caps) = ENUMERATOR.captures(trimmed) {
        return (
            Kind::Item {
                number: Some(caps[1].to_owned()),
                sub: true,
            },
            caps[2].to_owned(),
        );
    }
    if DATE_LINE.is_match(trimmed) {
        return (Kind::Skip, trimmed.to_owned());
    }
    if is_caps_heading(trimmed) {
        return (Kind::Heading { level: 1, number: None }, trimmed.to_owned());
    }
    if is_title_line(trimmed) {
        return (
            Kind::Heading { level: 2, number: None },
            trimmed.trim_end_matches('.').to_owned(),
        );
    }
    (Kind::Text, trimmed.to_owned())
}

/// Signature and date blocks, dotted or underscored fill-in lines, empty form fields.
fn is_fill_in(line: &str) -> bool {
    let filler = |c: char| matches!(c, '_' | '.' | '…' | ':' | '-' | '=' | '\t') || c.is_whitespace();
    let stripped: String = line.chars().filter(|c| !filler(*c)).collect();
    if stripped.is_empty() {
        return true;
    }
    let has_blanks = line.contains("___") || line.contains(". . .") || line.contains("...") || line.contains('…');
    let label = line.trim_end_matches(|c: char| filler(c) || c.is_whitespace());
    let words = line
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    (FORM_LABEL.is_match(line) && (has_blanks || words <= 3 || label.len() < 25)) || (has_blanks && words <= 6)
}

fn is_caps_heading(line: &str) -> bool {
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    let lower = line.chars().filter(|c| c.is_lowercase()).count();
    letters >= 3 && lower == 0 && line.split_whitespace().count() <= 14
}

fn is_title_line(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() || words.len() > 10 || line.len() > 90 {
        return false;
    }
    if !line.chars().next().is_some_and(char::is_uppercase) {
        return false;
    }
    if line.ends_with(['?', '!', ',', ';', ':']) || line.contains(": ") || line.contains('"') {
        return false;
    }
    if line.ends_with('.') {
        // "Personal Computer Security Policy." — a heading with a stray stop.
        let capitalised = words
            .iter()
            .filter(|w| w.chars().next().is_some_and(char::is_alphabetic))
            .all(|w| w.chars().next().is_some_and(char::is_uppercase) || w.len() <= 3);
        return words.len() <= 5 && capitalised;
    }
    true
}

// ---------------------------------------------------------------- pass 2

#[derive(Debug, Clone)]
enum BlockKind {
    Heading { level: u8, number: Option<String> },
    ListMode(Modality),
    Item { number: Option<String>, sub: bool },
    Table,
    Paragraph,
}

#[derive(Debug, Clone)]
struct Block {
    kind: BlockKind,
    text: String,
    lines: (usize, usize),
    /// A blank line (or more) came before this block.
    after_blank: bool,
}

fn ends_open(text: &str) -> bool {
    !text.trim_end().ends_with(['.', '!', '?', ':', ';', ')', '"', '”', '’'])
}

fn blocks(lines: &[Line]) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut blank_before = true;
    // Whether the last block may still take continuation lines.
    let mut open = false;
    for line in lines {
        match &line.kind {
            Kind::Blank => {
                blank_before = true;
                continue;
            }
            Kind::Skip => {
                open = false;
                blank_before = true;
                continue;
            }
            Kind::Text => {
                let lowercase_start = line
                    .text
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_lowercase() || c.is_ascii_digit());
                if let Some(last) = out.last_mut() {
                    let joins = open
                        && match last.kind {
                            // A wrapped line: no blank before, or a blank inside a sentence
                            // that the next line finishes ("(for" ⏎⏎ "further clarification…").
                            BlockKind::Item { .. } | BlockKind::Paragraph => {
                                !blank_before || (lowercase_start && ends_open(&last.text))
                            }
                            _ => false,
                        };
                    if joins {
                        last.text.push(' ');
                        last.text.push_str(&line.text);
                        last.lines.1 = line.no;
                        blank_before = false;
                        continue;
                    }
                }
                out.push(Block {
                    kind: BlockKind::Paragraph,
                    text: line.text.clone(),
                    lines: (line.no, line.no),
                    after_blank: blank_before,
                });
                open = true;
            }
            Kind::Item { number, sub } => {
                out.push(Block {
                    kind: BlockKind::Item {
                        number: number.clone(),
                        sub: *sub,
                    },
                    text: line.text.clone(),
                    lines: (line.no, line.no),
                    after_blank: blank_before,
                });
                open = true;
            }
            Kind::Heading { level, number } => {
                out.push(Block {
                    kind: BlockKind::Heading {
                        level: *level,
                        number: number.clone(),
                    },
                    text: line.text.clone(),
                    lines: (line.no, line.no),
                    after_blank: blank_before,
                });
                open = false;
            }
            Kind::ListMode(m) => {
                out.push(Block {
                    kind: BlockKind::ListMode(*m),
                    text: line.text.clone(),
                    lines: (line.no, line.no),
                    after_blank: blank_before,
                });
                open = false;
            }
            Kind::Table => {
                out.push(Block {
                    kind: BlockKind::Table,
                    text: line.text.clone(),
                    lines: (line.no, line.no),
                    after_blank: blank_before,
                });
                open = false;
            }
        }
        blank_before = false;
    }
    out
}

// ---------------------------------------------------------------- pass 3

struct Draft {
    id: String,
    heading_path: Vec<String>,
    number: Option<String>,
    ordinal: usize,
    text: String,
    context: String,
    lines: (usize, usize),
    modality: Modality,
    list_head: Option<String>,
}

#[derive(Debug, Clone)]
struct HeadingEntry {
    level: u8,
    text: String,
    /// Set when this heading was nested under an empty heading of the same style;
    /// holds the style's own level so its siblings nest the same way.
    nested_from: Option<u8>,
}

struct Builder<'a> {
    school: &'a str,
    policy: &'a str,
    headings: Vec<HeadingEntry>,
    list_mode: Option<(String, Modality)>,
    /// A line ending in ':' that introduces the list items after it.
    lead_in: Option<String>,
    /// The last top-level item, for sub-items ("a.", indented bullets).
    parent_item: Option<String>,
    last_was_heading: bool,
    clauses: Vec<Draft>,
    ordinals: HashMap<Vec<String>, usize>,
    seen: HashMap<String, usize>,
    contacts: Vec<(String, String)>,
    warnings: Vec<(usize, String)>,
}

impl<'a> Builder<'a> {
    fn new(school: &'a str, policy: &'a str) -> Self {
        Builder {
            school,
            policy,
            headings: Vec::new(),
            list_mode: None,
            lead_in: None,
            parent_item: None,
            last_was_heading: false,
            clauses: Vec::new(),
            ordinals: HashMap::new(),
            seen: HashMap::new(),
            contacts: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn push(&mut self, block: &Block) {
        match &block.kind {
            BlockKind::Heading { level, number } => {
                let text = match number {
                    Some(n) => format!("{n} {}", block.text),
                    None => block.text.clone(),
                };
                self.push_heading(*level, text);
                self.last_was_heading = true;
                return;
            }
            BlockKind::ListMode(m) => {
                self.list_mode = Some((block.text.clone(), *m));
                self.lead_in = None;
                self.parent_item = None;
            }
            BlockKind::Table => self.push_table(block),
            BlockKind::Item { number, sub, .. } => self.push_item(block, number.clone(), *sub),
            BlockKind::Paragraph => self.push_paragraph(block),
        }
        self.last_was_heading = false;
    }

    fn push_heading(&mut self, level: u8, text: String) {
        self.list_mode = None;
        self.lead_in = None;
        self.parent_item = None;
        if self.last_was_heading
            && self
                .headings
                .last()
                .is_some_and(|h| h.level == level && h.nested_from.is_none())
        {
            // An empty heading followed by one of the same style: the second is a
            // sub-section ("Responsibilities of Staff" ⏎ "Safeguarding Children").
            self.headings.push(HeadingEntry {
                level: level + 1,
                text,
                nested_from: Some(level),
            });
            return;
        }
        if let Some(pos) = self.headings.iter().rposition(|h| h.nested_from == Some(level)) {
            let nested_level = self.headings[pos].level;
            self.headings.truncate(pos);
            self.headings.push(HeadingEntry {
                level: nested_level,
                text,
                nested_from: Some(level),
            });
            return;
        }
        while self.headings.last().is_some_and(|h| h.level >= level) {
            self.headings.pop();
        }
        self.headings.push(HeadingEntry {
            level,
            text,
            nested_from: None,
        });
    }

    fn heading_path(&self) -> Vec<String> {
        let mut path: Vec<String> = self.headings.iter().map(|h| h.text.clone()).collect();
        if let Some((text, _)) = &self.list_mode {
            path.push(text.clone());
        }
        path
    }

    fn push_table(&mut self, block: &Block) {
        let cells: Vec<&str> = block
            .text
            .split('\t')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        for pair in cells.chunks(2) {
            if let [key, value] = pair {
                let key = key.trim_end_matches(':').trim();
                if modality::names_a_role(key) && value.chars().any(char::is_alphabetic) {
                    self.contacts.push((key.to_owned(), (*value).to_owned()));
                }
            }
        }
        self.emit(
            block.text.clone(),
            String::new(),
            block.lines,
            None,
            Modality::Info,
            self.heading_path(),
        );
    }

    fn push_item(&mut self, block: &Block, number: Option<String>, sub: bool) {
        let mut path = self.heading_path();
        let mut context = String::new();
        if sub {
            if let Some(parent) = &self.parent_item {
                path.push(parent.clone());
                context = parent.clone();
            } else if let Some(lead) = &self.lead_in {
                path.push(lead.clone());
                context = lead.clone();
            }
        } else {
            if let Some(lead) = &self.lead_in {
                path.push(lead.clone());
                context = lead.clone();
            }
            self.parent_item = block.text.ends_with(':').then(|| block.text.clone());
        }
        let implied = self.list_mode.as_ref().map(|(_, m)| *m);
        let m = modality::of_item(&block.text, implied);
        let head = self.prohibition_head(sub);
        if let Some(draft) = self.emit(block.text.clone(), context, block.lines, number, m, path) {
            draft.list_head = head;
        }
    }

    /// The head that makes the current list a list of prohibitions, innermost
    /// first: the item a sub-item hangs from, the lead-in, the Do/Don't
    /// heading ("Staff must not:" ⏎ "- Use personal email…"). Of a lead-in
    /// paragraph, only its last sentence introduces the list.
    fn prohibition_head(&self, sub: bool) -> Option<String> {
        fn last_sentence(t: &str) -> &str {
            text::sentences(t).last().copied().unwrap_or(t)
        }
        let parent = self.parent_item.as_deref().filter(|_| sub).map(last_sentence);
        let lead = self.lead_in.as_deref().map(last_sentence);
        let negative = |t: &&str| modality::of_text(t) == Some(Modality::MustNot);
        parent
            .filter(negative)
            .or_else(|| lead.filter(negative))
            .or_else(|| {
                self.list_mode
                    .as_ref()
                    .filter(|(_, m)| *m == Modality::MustNot)
                    .map(|(t, _)| t.as_str())
            })
            .map(|t| t.trim_end_matches(':').trim().to_owned())
    }

    fn push_paragraph(&mut self, block: &Block) {
        // A prose paragraph after a list ends the list's scope.
        if block.after_blank {
            self.list_mode = None;
            self.parent_item = None;
            self.lead_in = None;
        }
        let text = block.text.trim();
        if let Some((key, value)) = text.split_once(':')
            && modality::names_a_role(key)
            && !value.trim().is_empty()
            && key.split_whitespace().count() <= 6
        {
            self.contacts.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        if text.ends_with(':') {
            self.lead_in = Some(text.to_owned());
            if text.split_whitespace().count() < 8 {
                return;
            }
        }
        let path = self.heading_path();
        let sentences = text::sentences(text);
        for group in group_sentences(&sentences) {
            let m = modality::of_text(&group).unwrap_or(Modality::Info);
            let context = if sentences.len() > 1 {
                text.to_owned()
            } else {
                String::new()
            };
            self.emit(group, context, block.lines, None, m, path.clone());
        }
    }

    fn emit(
        &mut self,
        text: String,
        context: String,
        lines: (usize, usize),
        number: Option<String>,
        modality: Modality,
        heading_path: Vec<String>,
    ) -> Option<&mut Draft> {
        let normalized = text::normalize(&text);
        if normalized.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
            return None;
        }
        let place = heading_path.join(" / ");
        let key = format!("{place}\u{1}{normalized}");
        let occurrence = self.seen.entry(key.clone()).or_insert(0);
        *occurrence += 1;
        let id_input = format!("{}\u{1}{}\u{1}{key}\u{1}{occurrence}", self.school, self.policy);
        let id = format!("{}/{}/{}", self.school, self.policy, hex_hash(id_input.as_bytes(), 10));
        // Clauses are numbered within their section, across its Do/Don't lists,
        // so "'Email', clause 4" names one clause.
        let section: Vec<String> = self.headings.iter().map(|h| h.text.clone()).collect();
        let ordinal = self.ordinals.entry(section).or_insert(0);
        *ordinal += 1;
        self.clauses.push(Draft {
            id,
            heading_path,
            number,
            ordinal: *ordinal,
            text,
            context,
            lines,
            modality,
            list_head: None,
        });
        self.clauses.last_mut()
    }
}

/// Groups sentences so that one that leans on the previous ("However, if they
/// are left…", "For this reason, you should…") stays with it.
fn group_sentences(sentences: &[&str]) -> Vec<String> {
    static LEANS_BACK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(?:however|therefore|thus|hence|otherwise|furthermore|in addition|as such|for this reason|in this case|this includes|this means|this should|this will|this account|these|those|they|if they|if it|it will|it should|it must|such)\b")
            .expect("valid regex")
    });
    const MAX_GROUP: usize = 3;
    let mut groups: Vec<(String, usize)> = Vec::new();
    for s in sentences {
        match groups.last_mut() {
            Some((text, n)) if *n < MAX_GROUP && LEANS_BACK.is_match(s) => {
                text.push(' ');
                text.push_str(s);
                *n += 1;
            }
            _ => groups.push(((*s).to_owned(), 1)),
        }
    }
    groups.into_iter().map(|(t, _)| t).collect()
}

/// The policy's title: a Markdown `# Title`, else the first heading-like line
/// that names a policy, else the longest capitals heading near the top.
fn find_title(lines: &[Line]) -> Option<String> {
    // Up to the last "Policy" if there is one ("… Acceptable Use Policy
    // Reviewed Spring 2024" → "… Acceptable Use Policy"), else the first
    // "agreement", "code of conduct" or "acceptable use".
    static POLICY_WORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^(.*\bpolicy|.*?\b(?:agreement|code of conduct|acceptable use))\b").expect("valid regex")
    });
    let top: Vec<&Line> = lines.iter().filter(|l| l.kind != Kind::Blank).take(30).collect();
    if let Some(l) = top
        .iter()
        .find(|l| matches!(l.kind, Kind::Heading { level: 1, .. }) && l.text.contains("policy"))
    {
        return Some(l.text.clone());
    }
    for l in &top {
        let headingish = matches!(l.kind, Kind::Heading { .. } | Kind::Text);
        if !headingish || l.text.split_whitespace().count() > 20 {
            continue;
        }
        if let Some(caps) = POLICY_WORD.captures(&l.text) {
            let title = caps[1].trim();
            if title.split_whitespace().count() >= 2 && title.split_whitespace().count() <= 14 {
                return Some(text::soften_caps(title));
            }
        }
    }
    top.iter()
        .filter(|l| matches!(l.kind, Kind::Heading { level: 1, .. }))
        .max_by_key(|l| l.text.len())
        .map(|l| text::soften_caps(&l.text))
}

fn title_from_source(source: &str) -> String {
    let stem = source.rsplit(['/', '\\']).next().unwrap_or(source);
    let stem = stem.split('.').next().unwrap_or(stem);
    stem.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An explicit version or review line: "Version: 3.1", "Last reviewed: Autumn
/// term 2019", "Reviewed Spring 2024", "Governor approved May 2024".
fn find_version(source: &str) -> Option<String> {
    static VERSION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?im)^\s*(?:policy\s+)?version(?:\s+number)?\s*[:\t ]\s*([^\t\n]{1,40}?)\s*$")
            .expect("valid regex")
    });
    static REVIEWED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:last\s+reviewed|reviewed(?:\s+on)?|approved(?:\s+on)?|date of (?:issue|approval))\s*[:\t ]\s*((?:\d{1,2}\s+)?(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|spring|summer|autumn|winter)(?:\s+term)?\s+\d{4}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4})")
            .expect("valid regex")
    });
    let head: String = source.lines().take(40).collect::<Vec<_>>().join("\n");
    if let Some(c) = VERSION.captures(&head) {
        return Some(c[1].trim().to_owned());
    }
    REVIEWED.captures(&head).map(|c| c[1].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Policy {
        parse_policy(&PolicySource {
            school: "test",
            source: "test.txt",
            text,
            modified: Some("2026-09-01"),
        })
    }

    #[test]
    fn dont_list_items_are_prohibitions() {
        let p = parse(
            "Staff Policy\n\nDo\n\n- Lock your screen.\n\nDon't\n\n- Use personal email addresses to contact parents.\n\nAny breach may lead to action.\n",
        );
        let by_text = |t: &str| p.clauses.iter().find(|c| c.text.starts_with(t)).unwrap();
        assert_eq!(by_text("Lock").modality, Modality::Must);
        assert_eq!(by_text("Use personal").modality, Modality::MustNot);
        assert_eq!(by_text("Use personal").heading_path.last().unwrap(), "Don't");
        // A paragraph after the list is not part of it.
        assert_ne!(by_text("Any breach").heading_path.last().unwrap(), "Don't");
    }

    #[test]
    fn prohibition_items_carry_their_lists_head() {
        let p = parse(
            "Staff Policy\n\nEmail\n\nDon't:\n\n- Use personal email addresses to contact parents.\n\nWhen on a trip, staff must not:\n\n- Post photos of pupils.\n\nStaff should:\n\n- Lock your screen.\n\nI will not\n\n- Share my password, in particular:\n  a) with pupils.\n",
        );
        let head = |t: &str| {
            let c = p.clauses.iter().find(|c| c.text.starts_with(t)).unwrap();
            c.list_head.clone()
        };
        assert_eq!(head("Use personal").as_deref(), Some("Don't"));
        assert_eq!(head("Post photos").as_deref(), Some("When on a trip, staff must not"));
        assert_eq!(head("Lock your"), None, "a list of obligations reads right alone");
        assert_eq!(head("Share my").as_deref(), Some("I will not"));
        assert_eq!(head("with pupils").as_deref(), Some("I will not"));
        let p = parse(
            "Scope\n\nThis policy cannot cover every case. It should be read with other policies, particularly:\n\n- Data Protection\n\nWe cannot list every site. On school trips, staff must not:\n\n- Post photos of pupils.\n",
        );
        let head = |t: &str| {
            p.clauses
                .iter()
                .find(|c| c.text.starts_with(t))
                .unwrap()
                .list_head
                .clone()
        };
        assert_eq!(
            head("Data Protection"),
            None,
            "the sentence before the list is not a ban"
        );
        assert_eq!(head("Post photos").as_deref(), Some("On school trips, staff must not"));
    }

    #[test]
    fn wrapped_lines_join_even_across_a_blank() {
        let p = parse(
            "Protection\n\nStaff should keep social networking sites (for\n\nfurther clarification see the policy) private.\n",
        );
        assert_eq!(p.clauses.len(), 1);
        assert!(p.clauses[0].text.contains("(for further clarification"));
    }

    #[test]
    fn bullets_of_every_kind() {
        let p = parse(
            "Rules\n\n· one things.\n• two things.\n\u{f0b7} three things.\n- four things.\no five things.\n1. six things.\na) seven things.\n(ii) eight things.\n",
        );
        let texts: Vec<&str> = p.clauses.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts.len(), 8, "{texts:?}");
        assert!(texts.iter().all(|t| t.ends_with("things.")), "{texts:?}");
    }

    #[test]
    fn signature_blocks_are_skipped() {
        let p = parse(
            "Agreement\n\nI have read this policy.\n\nSigned _______ \nPrint _____\nDate: ______\nSignature . . . . . . Date . . . .\nStaff Name\t\n",
        );
        assert_eq!(p.clauses.len(), 1);
    }

    #[test]
    fn ids_are_stable_under_edits_elsewhere() {
        let a = parse("Email\n\n- Use school email.\n- Never use hotmail.\n");
        let b = parse("Email\n\n- Use school email for everything.\n- Never use hotmail.\n");
        assert_ne!(a.clauses[0].id, b.clauses[0].id);
        assert_eq!(a.clauses[1].id, b.clauses[1].id);
    }

    #[test]
    fn version_line_wins_over_hash() {
        assert_eq!(parse("Policy\nVersion: 2.1\n\nText here.\n").version, "2.1");
        assert!(parse("Some Policy\n\nText here.\n").version.starts_with("2026-09-01 #"));
    }

    #[test]
    fn paragraphs_split_into_sentence_groups() {
        let p = parse(
            "Portables\n\nLaptops are insured at home. However, if they are left in a car they are not covered. Staff must lock them away.\n",
        );
        assert_eq!(p.clauses.len(), 2);
        assert!(p.clauses[0].text.ends_with("not covered."));
    }
}
