//! Word documents (`.docx`) as the plain text the policy parser reads.
//!
//! A .docx is a zip of XML parts: `word/document.xml` holds the paragraphs
//! and tables, `word/numbering.xml` how each list is numbered, and
//! `word/styles.xml` which paragraph styles are headings. Rather than a second
//! parser, the document is written out as the text a careful export would
//! give — headings on their own lines, list items with their bullet or their
//! number ("1.", "a)"), table rows as tab-separated lines — and that text goes
//! through the same [`crate::parse`] as `.txt` policies, so a policy means the
//! same whatever format it came in.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Why a .docx could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocxError {
    #[error("password-protected (or an old binary .doc): save it as an unprotected .docx")]
    Protected,
    #[error("not a .docx: {0}")]
    NotDocx(String),
    #[error("damaged .docx: {0}")]
    Damaged(String),
}

/// Parts larger than this are refused (a policy's XML is a few hundred kB).
const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;

/// The document's text, one paragraph or list item or table row per line.
pub fn docx_to_text(bytes: &[u8]) -> Result<String, DocxError> {
    // Encrypted Office files are OLE compound files, not zips.
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(DocxError::Protected);
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| DocxError::NotDocx(e.to_string()))?;
    let mut part = |name: &str| -> Result<Option<String>, DocxError> {
        let file = match zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(DocxError::Damaged(format!("{name}: {e}"))),
        };
        let mut text = String::new();
        file.take(MAX_PART_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| DocxError::Damaged(format!("{name}: {e}")))?;
        Ok(Some(text))
    };
    let document = part("word/document.xml")?.ok_or_else(|| DocxError::NotDocx("no word/document.xml".into()))?;
    let numbering = part("word/numbering.xml")?.unwrap_or_default();
    let styles = part("word/styles.xml")?.unwrap_or_default();
    parts_to_text(&document, &numbering, &styles)
}

/// The text of a document from its XML parts (`word/document.xml`,
/// `word/numbering.xml`, `word/styles.xml`; empty when absent): what
/// [`docx_to_text`] does once the zip is open. Public for the fuzz target,
/// whose mutations would not get past the zip's checksums.
pub fn parts_to_text(document: &str, numbering: &str, styles: &str) -> Result<String, DocxError> {
    let numbering = Numbering::parse(numbering)?;
    let headings = heading_styles(styles)?;
    Writer::new(numbering, headings).document(document)
}

/// How one list level is numbered.
#[derive(Debug, Clone, Default)]
struct Level {
    /// `bullet`, `decimal`, `lowerLetter`, `upperLetter`, `lowerRoman`…
    format: String,
    /// "%1.", "%1.%2", "(%1)", or the bullet character.
    text: String,
    start: u32,
}

/// `numbering.xml`: list instances (numId) to their levels.
#[derive(Debug, Default)]
struct Numbering {
    levels: HashMap<String, Vec<Level>>,
}

impl Numbering {
    fn parse(xml: &str) -> Result<Numbering, DocxError> {
        let mut abstracts: HashMap<String, Vec<Level>> = HashMap::new();
        let mut instances: HashMap<String, String> = HashMap::new();
        let mut current_abstract: Option<String> = None;
        let mut current_num: Option<String> = None;
        let mut level: Option<(usize, Level)> = None;
        let mut reader = Reader::from_str(xml);
        loop {
            match reader.read_event().map_err(damaged)? {
                Event::Start(e) | Event::Empty(e) => match local(&e).as_str() {
                    "abstractNum" => current_abstract = attr(&e, "abstractNumId"),
                    "lvl" => {
                        let index = attr(&e, "ilvl").and_then(|v| v.parse().ok()).unwrap_or(0);
                        level = Some((
                            index,
                            Level {
                                start: 1,
                                ..Level::default()
                            },
                        ));
                    }
                    "start" => {
                        if let Some((_, l)) = level.as_mut() {
                            l.start = attr(&e, "val").and_then(|v| v.parse().ok()).unwrap_or(1);
                        }
                    }
                    "numFmt" => {
                        if let Some((_, l)) = level.as_mut() {
                            l.format = attr(&e, "val").unwrap_or_default();
                        }
                    }
                    "lvlText" => {
                        if let Some((_, l)) = level.as_mut() {
                            l.text = attr(&e, "val").unwrap_or_default();
                        }
                    }
                    "num" => current_num = attr(&e, "numId"),
                    "abstractNumId" => {
                        if let (Some(num), Some(abs)) = (&current_num, attr(&e, "val")) {
                            instances.insert(num.clone(), abs);
                        }
                    }
                    _ => {}
                },
                Event::End(e) if e.local_name().as_ref() == b"lvl" => {
                    if let (Some(abs), Some((index, l))) = (&current_abstract, level.take()) {
                        let levels = abstracts.entry(abs.clone()).or_default();
                        if levels.len() <= index {
                            levels.resize(index + 1, Level::default());
                        }
                        levels[index] = l;
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        let levels = instances
            .into_iter()
            .filter_map(|(num, abs)| Some((num, abstracts.get(&abs)?.clone())))
            .collect();
        Ok(Numbering { levels })
    }
}

/// Style ids of headings and titles, from `styles.xml` (their names are
/// "heading 1", "Title"…; ids vary with the document's language).
fn heading_styles(xml: &str) -> Result<Vec<String>, DocxError> {
    let mut headings = Vec::new();
    let mut style: Option<String> = None;
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event().map_err(damaged)? {
            Event::Start(e) | Event::Empty(e) => match local(&e).as_str() {
                "style" => style = attr(&e, "styleId"),
                "name" => {
                    let name = attr(&e, "val").unwrap_or_default().to_lowercase();
                    if let Some(id) = &style
                        && (name.starts_with("heading") || name == "title")
                    {
                        headings.push(id.clone());
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(headings)
}

/// Writes `document.xml` out as text.
struct Writer {
    numbering: Numbering,
    headings: Vec<String>,
    /// Counters per list instance and level.
    counters: HashMap<String, Vec<u32>>,
    out: String,
    /// The last line written was a list item (no blank line between items).
    in_list: bool,
}

/// One paragraph being read.
#[derive(Default)]
struct Paragraph {
    style: Option<String>,
    num: Option<String>,
    level: usize,
    text: String,
}

impl Writer {
    fn new(numbering: Numbering, headings: Vec<String>) -> Writer {
        Writer {
            numbering,
            headings,
            counters: HashMap::new(),
            out: String::new(),
            in_list: false,
        }
    }

    fn document(mut self, xml: &str) -> Result<String, DocxError> {
        let mut reader = Reader::from_str(xml);
        let mut paragraph: Option<Paragraph> = None;
        let mut in_text = false;
        // Table cells of the row being read, and the depth of tables.
        let mut row: Vec<String> = Vec::new();
        let mut tables = 0usize;
        loop {
            match reader.read_event().map_err(damaged)? {
                Event::Start(e) => match local(&e).as_str() {
                    "p" => paragraph = Some(Paragraph::default()),
                    "t" => in_text = true,
                    "tbl" => tables += 1,
                    "tr" => row.clear(),
                    "tc" => row.push(String::new()),
                    _ => {}
                },
                Event::Empty(e) => {
                    let Some(p) = paragraph.as_mut() else { continue };
                    match local(&e).as_str() {
                        "pStyle" => p.style = attr(&e, "val"),
                        "numId" => p.num = attr(&e, "val").filter(|v| v != "0"),
                        "ilvl" => p.level = attr(&e, "val").and_then(|v| v.parse().ok()).unwrap_or(0),
                        "tab" => p.text.push('\t'),
                        // A line break inside a paragraph stays one: the
                        // parser joins wrapped lines itself.
                        "br" | "cr" => p.text.push('\n'),
                        _ => {}
                    }
                }
                Event::Text(t) if in_text => {
                    if let Some(p) = paragraph.as_mut() {
                        p.text.push_str(&t.unescape().map_err(damaged)?);
                    }
                }
                Event::End(e) => match e.local_name().as_ref() {
                    b"t" => in_text = false,
                    b"p" => {
                        let Some(p) = paragraph.take() else { continue };
                        if tables > 0 {
                            if let Some(cell) = row.last_mut() {
                                if !cell.is_empty() && !p.text.trim().is_empty() {
                                    cell.push(' ');
                                }
                                cell.push_str(p.text.trim());
                            }
                        } else {
                            self.paragraph(p);
                        }
                    }
                    b"tr" if tables > 0 => {
                        let cells: Vec<&str> = row.iter().map(|c| c.trim()).collect();
                        if cells.iter().any(|c| !c.is_empty()) {
                            self.line(&cells.join("\t"), false);
                        }
                    }
                    b"tbl" => {
                        tables = tables.saturating_sub(1);
                        if tables == 0 {
                            self.out.push('\n');
                        }
                    }
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(self.out)
    }

    fn paragraph(&mut self, p: Paragraph) {
        let text = p.text.trim();
        if text.is_empty() {
            return;
        }
        let heading = p.style.as_ref().is_some_and(|s| self.headings.contains(s));
        match &p.num {
            // A numbered heading ("1. Purpose") keeps its number and stays a
            // paragraph of its own, as in a text export.
            Some(num) if heading => {
                let marker = self.marker(num, p.level);
                self.line(&format!("{marker} {text}"), false);
            }
            Some(num) => {
                let marker = self.marker(num, p.level);
                let indent = "  ".repeat(p.level);
                self.line(&format!("{indent}{marker} {text}"), true);
            }
            None => self.line(text, false),
        }
    }

    /// Writes a line: list items follow one another, everything else is a
    /// paragraph of its own.
    fn line(&mut self, text: &str, list_item: bool) {
        let continues_list = list_item && self.in_list;
        if !continues_list && !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out.push_str(text);
        self.out.push('\n');
        self.in_list = list_item;
    }

    /// The bullet or number of the next item of list `num` at `level`.
    fn marker(&mut self, num: &str, level: usize) -> String {
        let levels = self.numbering.levels.get(num).cloned().unwrap_or_default();
        let counters = self.counters.entry(num.to_owned()).or_default();
        if counters.len() <= level {
            counters.resize(level + 1, 0);
        }
        let start = |i: usize| levels.get(i).map(|l| l.start).unwrap_or(1);
        counters[level] = if counters[level] == 0 {
            start(level)
        } else {
            counters[level] + 1
        };
        // A new item restarts the levels below it.
        for deeper in counters.iter_mut().skip(level + 1) {
            *deeper = 0;
        }
        let Some(this) = levels.get(level) else {
            return "-".into();
        };
        if this.format == "bullet" || this.format.is_empty() {
            return "-".into();
        }
        let mut marker = this.text.clone();
        for (i, count) in counters.iter().enumerate().take(level + 1) {
            let format = levels.get(i).map(|l| l.format.as_str()).unwrap_or("decimal");
            marker = marker.replace(&format!("%{}", i + 1), &number(*count, format));
        }
        marker
    }
}

/// `n` in a list numbering format.
fn number(n: u32, format: &str) -> String {
    let letter = |n: u32| char::from(b'a' + ((n.max(1) - 1) % 26) as u8);
    match format {
        "lowerLetter" => letter(n).to_string(),
        "upperLetter" => letter(n).to_ascii_uppercase().to_string(),
        "lowerRoman" => roman(n),
        "upperRoman" => roman(n).to_uppercase(),
        _ => n.to_string(),
    }
}

fn roman(mut n: u32) -> String {
    let table = [
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ];
    let mut out = String::new();
    for (value, digits) in table {
        while n >= value {
            out.push_str(digits);
            n -= value;
        }
    }
    out
}

fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

/// An attribute by its local name (`w:val` → "val").
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == name.as_bytes())
            .then(|| a.unescape_value().ok().map(|v| v.into_owned()))
            .flatten()
    })
}

fn damaged(e: impl std::fmt::Display) -> DocxError {
    DocxError::Damaged(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    /// A .docx with these parts, zipped as Word does.
    fn docx(document_body: &str, numbering: &str, styles: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, xml) in [
            (
                "word/document.xml",
                format!("<w:document {W}><w:body>{document_body}</w:body></w:document>"),
            ),
            (
                "word/numbering.xml",
                format!("<w:numbering {W}>{numbering}</w:numbering>"),
            ),
            ("word/styles.xml", format!("<w:styles {W}>{styles}</w:styles>")),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(xml.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn p(text: &str) -> String {
        format!("<w:p><w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
    }

    fn item(num: u32, level: u32, text: &str) -> String {
        format!(
            "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"{level}\"/><w:numId w:val=\"{num}\"/></w:numPr></w:pPr>\
             <w:r><w:t>{text}</w:t></w:r></w:p>"
        )
    }

    const NUMBERING: &str = r#"<w:abstractNum w:abstractNumId="0">
        <w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="decimal"/><w:lvlText w:val="%1."/></w:lvl>
        <w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="lowerLetter"/><w:lvlText w:val="%2)"/></w:lvl>
      </w:abstractNum>
      <w:abstractNum w:abstractNumId="1"><w:lvl w:ilvl="0"><w:numFmt w:val="bullet"/><w:lvlText w:val="•"/></w:lvl></w:abstractNum>
      <w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num>
      <w:num w:numId="2"><w:abstractNumId w:val="1"/></w:num>"#;

    #[test]
    fn lists_keep_their_numbers_and_bullets_and_tables_their_rows() {
        let body = [
            p("Staff ICT Policy"),
            "<w:p><w:pPr><w:pStyle w:val=\"Kop1\"/><w:numPr><w:ilvl w:val=\"0\"/><w:numId w:val=\"1\"/></w:numPr></w:pPr>\
             <w:r><w:t>Email</w:t></w:r></w:p>"
                .to_owned(),
            p("Staff must use school email &amp; ParentLink."),
            item(1, 1, "Check recipients."),
            item(1, 1, "Copy in your line manager."),
            item(2, 0, "Never share passwords."),
            "<w:tbl><w:tr><w:tc>".to_owned() + &p("Version:") + "</w:tc><w:tc>" + &p("2026-09-01") + "</w:tc></w:tr></w:tbl>",
            p("Line one<w:br/>line two<w:tab/>tabbed"),
        ]
        .concat();
        let styles = r#"<w:style w:styleId="Kop1"><w:name w:val="heading 1"/></w:style>"#;
        let text = docx_to_text(&docx(&body, NUMBERING, styles)).unwrap();
        assert_eq!(
            text,
            "Staff ICT Policy\n\n1. Email\n\nStaff must use school email & ParentLink.\n\n  a) Check recipients.\n  \
             b) Copy in your line manager.\n- Never share passwords.\n\nVersion:\t2026-09-01\n\n\nLine one\nline two\ttabbed\n"
        );
    }

    #[test]
    fn broken_and_protected_files_say_so() {
        assert_eq!(
            docx_to_text(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest"),
            Err(DocxError::Protected)
        );
        assert!(matches!(
            docx_to_text(b"PK\x03\x04 truncated"),
            Err(DocxError::NotDocx(_))
        ));
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("hello.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        let no_document = zip.finish().unwrap().into_inner();
        assert_eq!(
            docx_to_text(&no_document),
            Err(DocxError::NotDocx("no word/document.xml".into()))
        );
        let bad_xml = docx("<w:p><w:r><w:t>unclosed", "", "");
        assert!(matches!(docx_to_text(&bad_xml), Err(DocxError::Damaged(_)) | Ok(_)));
    }

    #[test]
    fn numbers_in_every_format() {
        assert_eq!(number(3, "lowerLetter"), "c");
        assert_eq!(number(28, "upperLetter"), "B");
        assert_eq!(number(14, "lowerRoman"), "xiv");
        assert_eq!(number(4, "upperRoman"), "IV");
        assert_eq!(number(12, "decimal"), "12");
    }
}
