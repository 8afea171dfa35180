//! PDF policies as the plain text the policy parser reads.
//!
//! A PDF holds no paragraphs, only glyphs placed on pages. `pdf-extract`
//! decodes the fonts (encodings, ToUnicode maps) and reports every glyph with
//! its position, size and advance; this module rebuilds the text a careful
//! export would give from those positions: glyphs on one baseline make a line,
//! gaps make spaces, a wide gap lined up with the rows above or below makes a
//! table cell (tab-separated, wrapped cells put back together), a larger than
//! usual line pitch makes a blank line, and a line that only ended because the
//! next word did not fit is joined to the next (so a wrapped paragraph is one
//! line, as Word's text export writes it). Running headers and footers (lines
//! at the top or bottom of most pages, digits aside) and page numbers are
//! dropped, and words hyphenated across a line end are joined. The result
//! goes through the same [`crate::parse`] as `.txt` policies.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{LazyLock, Once};

use pdf_extract::{MediaBox, OutputDev, OutputError, Transform};
use regex::Regex;

/// Why a PDF could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PdfError {
    #[error("is password-protected: save or export it again without a password to open it, and add it again")]
    Protected,
    #[error(
        "has no text layer (a scanned document?): export it from the original document, or run OCR, and add it again"
    )]
    NoText,
    #[error("not a PDF: {0}")]
    NotPdf(String),
    #[error("damaged PDF: {0}")]
    Damaged(String),
}

/// The document's text: one line per line of the page (wrapped lines
/// joined), blank lines between paragraphs, table rows as tab-separated cells.
pub fn pdf_to_text(bytes: &[u8]) -> Result<String, PdfError> {
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(PdfError::NotPdf("no %PDF header".into()));
    }
    let pages = quietly(|| read_pages(bytes))
        .map_err(|panic| PdfError::Damaged(format!("the PDF reader gave up on it ({panic})")))??;
    if pages.iter().all(|p| p.glyphs.is_empty()) {
        return Err(PdfError::NoText);
    }
    Ok(pages_to_text(&pages))
}

fn read_pages(bytes: &[u8]) -> Result<Vec<Page>, PdfError> {
    // lopdf tries the empty user password itself: a PDF "encrypted" only to
    // restrict printing or copying opens without one.
    let doc = pdf_extract::Document::load_mem(bytes).map_err(|e| PdfError::Damaged(e.to_string()))?;
    if doc.is_encrypted() && doc.encryption_state.is_none() {
        return Err(PdfError::Protected);
    }
    if doc.get_pages().is_empty() {
        return Err(PdfError::Damaged("no pages".into()));
    }
    let mut collector = Collector::default();
    pdf_extract::output_doc(&doc, &mut collector).map_err(|e| match e {
        OutputError::PdfError(pdf_extract::Error::InvalidPassword) => PdfError::Protected,
        e => PdfError::Damaged(e.to_string()),
    })?;
    Ok(collector.pages)
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static PANIC_MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f`, turning a panic into its message. pdf-extract panics on some
/// malformed files; the default hook would print a backtrace note on stderr,
/// so panics on this thread are kept quiet while `f` runs (other threads'
/// panics still reach the previous hook).
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown error".into());
                PANIC_MESSAGE.with(|m| *m.borrow_mut() = message);
            } else {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was_quiet));
    result.map_err(|_| PANIC_MESSAGE.with(|m| std::mem::take(&mut *m.borrow_mut())))
}

/// One glyph as placed on the page: `x` from the left edge and `y` (its
/// baseline) from the top, in points.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    pub x: f64,
    pub y: f64,
    /// The font size as drawn (after the text and page transforms).
    pub size: f64,
    /// How far the pen moves after it.
    pub width: f64,
    pub text: String,
}

/// The glyphs of one page, in drawing order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub width: f64,
    pub height: f64,
    pub glyphs: Vec<Glyph>,
}

/// Collects positioned glyphs, page by page.
#[derive(Default)]
struct Collector {
    pages: Vec<Page>,
    media_box: Option<MediaBox>,
}

impl OutputDev for Collector {
    fn begin_page(&mut self, _: u32, media_box: &MediaBox, _: Option<(f64, f64, f64, f64)>) -> Result<(), OutputError> {
        self.media_box = Some(*media_box);
        self.pages.push(Page {
            width: media_box.urx - media_box.llx,
            height: media_box.ury - media_box.lly,
            glyphs: Vec::new(),
        });
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        let (Some(page), Some(media_box)) = (self.pages.last_mut(), self.media_box) else {
            return Ok(());
        };
        // Spaces are found from the gaps between glyphs; many PDFs draw none.
        let text: String = text
            .chars()
            .filter(|c| !c.is_control())
            .flat_map(expand_ligature)
            .collect();
        if text.trim().is_empty() {
            return Ok(());
        }
        let scale = (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
        let size = font_size * scale;
        if !size.is_finite() || size <= 0.0 {
            return Ok(());
        }
        page.glyphs.push(Glyph {
            // Flipped with the media box as pdf-extract's own text output does.
            x: trm.m31 - media_box.llx,
            y: media_box.ury - trm.m32,
            size,
            width: width * size,
            text,
        });
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

/// Typographic ligatures as their letters.
fn expand_ligature(c: char) -> Vec<char> {
    match c {
        'ﬀ' => vec!['f', 'f'],
        'ﬁ' => vec!['f', 'i'],
        'ﬂ' => vec!['f', 'l'],
        'ﬃ' => vec!['f', 'f', 'i'],
        'ﬄ' => vec!['f', 'f', 'l'],
        'ﬅ' | 'ﬆ' => vec!['s', 't'],
        c => vec![c],
    }
}

// ------------------------------------------------------------ lines

/// A run of glyphs with no space-sized gap inside.
#[derive(Debug, Clone)]
struct Word {
    x0: f64,
    x1: f64,
    text: String,
}

/// Glyphs sharing a baseline, left to right.
#[derive(Debug, Clone)]
struct Line {
    y: f64,
    size: f64,
    words: Vec<Word>,
}

impl Line {
    fn x0(&self) -> f64 {
        self.words.first().map_or(0.0, |w| w.x0)
    }

    fn x1(&self) -> f64 {
        self.words.last().map_or(0.0, |w| w.x1)
    }

    fn text(&self) -> String {
        self.words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")
    }
}

/// A gap wider than this share of the font size is a space.
const SPACE_GAP: f64 = 0.15;
/// A gap wider than this share of the font size may separate table cells.
const CELL_GAP: f64 = 1.2;

/// Groups a page's glyphs into lines, top to bottom.
fn page_lines(page: &Page) -> Vec<Line> {
    let mut glyphs: Vec<&Glyph> = page.glyphs.iter().collect();
    glyphs.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x.total_cmp(&b.x)));
    let mut rows: Vec<Vec<&Glyph>> = Vec::new();
    for g in glyphs {
        match rows.last_mut() {
            Some(row) if (g.y - row[0].y).abs() <= 0.3 * g.size.max(row[0].size) => row.push(g),
            _ => rows.push(vec![g]),
        }
    }
    rows.into_iter()
        .map(|mut row| {
            row.sort_by(|a, b| a.x.total_cmp(&b.x));
            // Text drawn twice over itself (fake bold) once.
            row.dedup_by(|b, a| a.text == b.text && (a.x - b.x).abs() < 0.1 * a.size);
            let size = row.iter().map(|g| g.size).fold(0.0, f64::max);
            let mut words: Vec<Word> = Vec::new();
            for g in &row {
                match words.last_mut() {
                    Some(w) if g.x - w.x1 <= SPACE_GAP * size => {
                        w.text.push_str(&g.text);
                        w.x1 = w.x1.max(g.x + g.width);
                    }
                    _ => words.push(Word {
                        x0: g.x,
                        x1: g.x + g.width,
                        text: g.text.clone(),
                    }),
                }
            }
            let y = row.iter().map(|g| g.y).sum::<f64>() / row.len() as f64;
            Line { y, size, words }
        })
        .collect()
}

// ------------------------------------------------ headers and footers

static PAGE_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:page\s*)?[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$").expect("valid regex")
});

/// A line with its digits made alike, for spotting running headers.
fn running_key(text: &str) -> String {
    let digitless: String = text.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    digitless
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// How many lines at the top and the bottom of a page may be header or footer.
const BAND_LINES: usize = 3;

/// Drops running headers and footers and page numbers: lines among the
/// first or last few of a page that are page numbers, or that repeat (digits
/// aside) at the same height on at least half the pages.
fn drop_running_lines(pages: &mut [Vec<Line>]) {
    let mut seen: HashMap<String, Vec<f64>> = HashMap::new();
    for lines in pages.iter() {
        for i in band(lines.len()) {
            seen.entry(running_key(&lines[i].text())).or_default().push(lines[i].y);
        }
    }
    let count = pages.len();
    let running = |line: &Line| {
        let text = line.text();
        let pages_with_it = seen
            .get(&running_key(&text))
            .map_or(0, |ys| ys.iter().filter(|y| (*y - line.y).abs() < 2.0).count());
        PAGE_NUMBER.is_match(text.trim()) || (pages_with_it >= 2 && 2 * pages_with_it >= count)
    };
    for lines in pages.iter_mut() {
        let mut top = 0;
        while top < lines.len().min(BAND_LINES) && running(&lines[top]) {
            top += 1;
        }
        let mut bottom = lines.len();
        while bottom > top && lines.len() - bottom < BAND_LINES && running(&lines[bottom - 1]) {
            bottom -= 1;
        }
        lines.truncate(bottom);
        lines.drain(..top);
    }
}

/// Indices of the lines at the top and bottom of a page of `n` lines.
fn band(n: usize) -> impl Iterator<Item = usize> {
    let top = 0..n.min(BAND_LINES);
    let bottom = n.saturating_sub(BAND_LINES).max(n.min(BAND_LINES))..n;
    top.chain(bottom)
}

// ------------------------------------------------------------ text

static LEADING_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\(?(?:\d{1,2}(?:\.\d{1,2})*|[a-zA-Z]|[ivxlIVXL]{1,5})[.)]|[-–*o>])$").expect("valid regex")
});

/// A bullet glyph or list number standing alone ("•", "1.", "a)").
fn is_marker(word: &str) -> bool {
    word.chars().count() == 1 && crate::text::BULLET_GLYPHS.contains(&word.chars().next().unwrap_or(' '))
        || LEADING_MARKER.is_match(word)
}

/// Measures of the whole document that decide what a gap means.
struct Layout {
    left: f64,
    right: f64,
    /// Usual baseline distance per point of font size within a paragraph.
    pitch: f64,
}

impl Layout {
    fn of(pages: &[Vec<Line>], page_width: f64) -> Layout {
        let lines = pages.iter().flatten();
        let left = lines.clone().map(Line::x0).fold(f64::INFINITY, f64::min);
        let widest = lines.clone().map(Line::x1).fold(0.0, f64::max);
        // The right margin is where lines end when they wrap; with fewer than
        // three lines ending near the widest, or none past 60% of the page's
        // width, nothing wrapped.
        let near = lines
            .clone()
            .filter(|l| l.x1() >= widest - 0.1 * (widest - left))
            .count();
        let right = if near >= 3 && widest > 0.6 * page_width {
            widest
        } else {
            f64::INFINITY
        };
        let mut ratios: Vec<f64> = pages
            .iter()
            .flat_map(|p| p.windows(2))
            .map(|w| (w[1].y - w[0].y) / w[0].size.max(w[1].size))
            .filter(|r| *r > 0.5)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let pitch = ratios.get(ratios.len() / 4).copied().unwrap_or(1.2);
        Layout {
            left: if left.is_finite() { left } else { 0.0 },
            right,
            pitch,
        }
    }

    /// Whether more space than usual lies between two lines.
    fn paragraph_gap(&self, a: &Line, b: &Line) -> bool {
        b.y - a.y > 1.35 * self.pitch * a.size.max(b.size)
    }

    /// Whether `a` ended only because `b`'s first word did not fit after it.
    fn wraps(&self, a: &Line, b: &Line) -> bool {
        let Some(first) = b.words.first() else { return false };
        if is_marker(&first.text) || (a.size - b.size).abs() > 0.5 {
            return false;
        }
        a.x1() + 0.25 * a.size + (first.x1 - first.x0) > self.right - 0.5
    }

    fn indent(&self, line: &Line) -> String {
        let spaces = ((line.x0() - self.left) / (0.25 * line.size)).round();
        " ".repeat(spaces.clamp(0.0, 16.0) as usize)
    }
}

/// One line of output, with what decides how it joins the next.
struct Out {
    text: String,
    line: Line,
    table: bool,
}

/// Writes lines of pages as text.
pub fn pages_to_text(pages: &[Page]) -> String {
    let mut lines: Vec<Vec<Line>> = pages.iter().map(page_lines).collect();
    drop_running_lines(&mut lines);
    let page_width = pages.iter().map(|p| p.width).fold(0.0, f64::max);
    let layout = Layout::of(&lines, page_width);
    let words = Words::of(&lines);
    // Paragraphs (runs of lines with no extra space between) of every page.
    let mut blocks: Vec<(Vec<Out>, bool)> = Vec::new();
    for page in &lines {
        let mut start = 0;
        for i in 1..=page.len() {
            if i == page.len() || layout.paragraph_gap(&page[i - 1], &page[i]) {
                blocks.push((block_lines(&page[start..i], &layout, &words), start == 0));
                start = i;
            }
        }
    }
    let mut out = String::new();
    let mut previous: Option<Out> = None;
    for (block, page_start) in blocks {
        for (i, line) in block.into_iter().enumerate() {
            let Some(prev) = previous.as_mut() else {
                previous = Some(line);
                continue;
            };
            // Lines of a paragraph, or the first line of a page after the
            // last line of the one before: joined if the line wrapped or a
            // word was hyphenated there.
            let same_paragraph = i > 0 || page_start;
            let ends_sentence = prev.text.trim_end().ends_with(['.', ':', '!', '?', ';']);
            // Across a page break no gap tells a new paragraph: one that
            // starts a sentence after a finished one is taken as new.
            let new_sentence = ends_sentence && line.text.trim_start().starts_with(char::is_uppercase);
            let wraps = layout.wraps(&prev.line, &line.line) && !(i == 0 && new_sentence);
            if same_paragraph
                && !prev.table
                && !line.table
                && let Some(joined) = join(&prev.text, &line.text, wraps, &words)
            {
                prev.text = joined;
                prev.line = Line {
                    words: line.line.words.clone(),
                    ..line.line
                };
                continue;
            }
            out.push_str(prev.text.trim_end());
            out.push('\n');
            let blank = i == 0 && (!page_start || ends_sentence);
            if blank {
                out.push('\n');
            }
            *prev = line;
        }
    }
    if let Some(prev) = previous {
        out.push_str(prev.text.trim_end());
        out.push('\n');
    }
    out
}

/// The words of a document, lowercased, for telling a hyphenated word from a
/// compound broken at its hyphen.
#[derive(Default)]
struct Words(HashSet<String>);

impl Words {
    fn of(pages: &[Vec<Line>]) -> Words {
        let words = pages
            .iter()
            .flatten()
            .flat_map(|l| l.words.iter())
            .map(|w| bare(&w.text))
            .filter(|w| !w.is_empty())
            .collect();
        Words(words)
    }
}

/// A word lowercased without the punctuation around it.
fn bare(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()
}

/// First parts of compounds that keep their hyphen ("non-school", "e-safety").
const COMPOUND_PREFIXES: &[&str] = &[
    "all", "anti", "co", "cross", "cyber", "e", "ex", "full", "half", "high", "long", "low", "multi", "non", "off",
    "on", "one", "part", "post", "pre", "self", "semi", "short", "sub", "two", "up", "well",
];

/// `a` and `b` as one line, if `b` continues `a`. A soft hyphen at the end
/// of `a` joins without it; so does a letter and hyphen before a lowercase
/// word, unless the pieces make a compound: the document writes them
/// hyphenated elsewhere and never as one word, the first piece is a usual
/// compound prefix ("non-", "co-"), or it is already a compound ("up-to-").
/// A wrapped line joins with a space.
fn join(a: &str, b: &str, wraps: bool, words: &Words) -> Option<String> {
    let b = b.trim_start();
    let starts_lower = b.chars().next().is_some_and(char::is_lowercase);
    if let Some(stem) = a.strip_suffix('\u{ad}') {
        return Some(format!("{stem}{b}"));
    }
    if let Some(stem) = a.strip_suffix(['-', '\u{2010}'])
        && stem.chars().last().is_some_and(char::is_alphabetic)
        && starts_lower
    {
        let last = stem.split_whitespace().last().unwrap_or_default();
        let first = b.split_whitespace().next().unwrap_or_default();
        let (piece, rest) = (bare(last), bare(first));
        let solid = format!("{piece}{rest}");
        let compound = !words.0.contains(&solid)
            && (words.0.contains(&format!("{piece}-{rest}"))
                || COMPOUND_PREFIXES.contains(&piece.as_str())
                || last.contains('-'));
        let hyphen = if compound { "-" } else { "" };
        return Some(format!("{stem}{hyphen}{b}"));
    }
    wraps.then(|| format!("{} {b}", a.trim_end()))
}

/// The lines of one paragraph: table rows found and put together, other
/// lines with their indentation.
fn block_lines(lines: &[Line], layout: &Layout, words: &Words) -> Vec<Out> {
    let columns = columns(lines);
    let cells: Vec<Option<Vec<String>>> = lines.iter().map(|l| cells(l, &columns)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // A table: consecutive lines that fit the columns, one with two cells or more.
        let run = cells[i..].iter().take_while(|c| c.is_some()).count();
        let multi = cells[i..i + run]
            .iter()
            .flatten()
            .any(|c| c.iter().filter(|t| !t.is_empty()).count() >= 2);
        if run > 0 && multi {
            out.extend(table_rows(&lines[i..i + run], &cells[i..i + run], layout, words));
            i += run;
            continue;
        }
        let line = &lines[i];
        out.push(Out {
            text: format!("{}{}", layout.indent(line), line.text()),
            line: line.clone(),
            table: false,
        });
        i += 1;
    }
    out
}

/// Where table columns start in a paragraph: after wide gaps (not the one
/// after a bullet or list number), and the left edge of the lines that have one.
fn columns(lines: &[Line]) -> Vec<f64> {
    let mut starts: Vec<f64> = Vec::new();
    for line in lines {
        let mut wide = false;
        for (i, pair) in line.words.windows(2).enumerate() {
            if pair[1].x0 - pair[0].x1 >= CELL_GAP * line.size && !(i == 0 && is_marker(&pair[0].text)) {
                starts.push(pair[1].x0);
                wide = true;
            }
        }
        if wide {
            starts.push(line.x0());
        }
    }
    starts.sort_by(f64::total_cmp);
    starts.dedup_by(|b, a| (*b - *a).abs() < 2.0);
    starts
}

/// A line split at the columns, if it fits them: every cell starts at a
/// column and ends before the next one.
fn cells(line: &Line, columns: &[f64]) -> Option<Vec<String>> {
    if columns.len() < 2 {
        return None;
    }
    let column_of = |x: f64| columns.iter().position(|c| (x - c).abs() < 2.0);
    let mut cells = vec![String::new(); columns.len()];
    let mut current = column_of(line.x0())?;
    let mut end = f64::NEG_INFINITY;
    for word in &line.words {
        if let Some(c) = column_of(word.x0).filter(|c| *c > current && word.x0 - end >= 0.2 * line.size) {
            current = c;
        }
        if let Some(next) = columns.get(current + 1)
            && word.x1 > next - 1.0
        {
            return None;
        }
        let cell = &mut cells[current];
        if !cell.is_empty() {
            cell.push(' ');
        }
        cell.push_str(&word.text);
        end = word.x1;
    }
    Some(cells)
}

/// Table lines as rows: a line further below the one before than lines of a
/// paragraph are starts a new row; lines of one row are wrapped cells.
fn table_rows(lines: &[Line], cells: &[Option<Vec<String>>], layout: &Layout, words: &Words) -> Vec<Out> {
    // Lines of one cell are as close as lines of a paragraph; rows are
    // further apart by the cells' padding.
    let min_pitch = lines.windows(2).map(|w| w[1].y - w[0].y).fold(f64::INFINITY, f64::min);
    let mut rows: Vec<(Vec<String>, Line)> = Vec::new();
    for (i, (line, cells)) in lines.iter().zip(cells).enumerate() {
        let Some(cells) = cells else { continue };
        let line_pitch = min_pitch.min(layout.pitch * line.size.max(lines[i.max(1) - 1].size));
        let new_row = i == 0 || line.y - lines[i - 1].y > 1.1 * line_pitch;
        match rows.last_mut() {
            Some((row, _)) if !new_row => {
                for (into, more) in row.iter_mut().zip(cells) {
                    if more.is_empty() {
                        continue;
                    }
                    *into = if into.is_empty() {
                        more.clone()
                    } else {
                        join(into, more, true, words).unwrap_or_default()
                    };
                }
            }
            _ => rows.push((cells.clone(), line.clone())),
        }
    }
    rows.into_iter()
        .map(|(cells, line)| Out {
            text: cells.join("\t").trim_end().to_owned(),
            line,
            table: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Glyphs of `text` on baseline `y` from `x`: each character half the
    /// font size wide, a space a gap of the same width.
    fn glyphs(x: f64, y: f64, size: f64, text: &str) -> Vec<Glyph> {
        let mut out = Vec::new();
        let mut pen = x;
        for c in text.chars() {
            if c == '\t' {
                pen += 4.0 * size;
                continue;
            }
            if c != ' ' {
                out.push(Glyph {
                    x: pen,
                    y,
                    size,
                    width: 0.5 * size,
                    text: c.to_string(),
                });
            }
            pen += 0.5 * size;
        }
        out
    }

    /// A page of lines at a 12-point pitch from y = 100; "" leaves a line's
    /// height empty (a paragraph gap).
    fn page(lines: &[&str]) -> Page {
        let mut page = Page {
            width: 320.0,
            height: 800.0,
            glyphs: Vec::new(),
        };
        for (i, line) in lines.iter().enumerate() {
            let indent = line.chars().take_while(|c| *c == ' ').count() as f64 * 5.0;
            page.glyphs
                .extend(glyphs(50.0 + indent, 100.0 + 12.0 * i as f64, 10.0, line.trim_start()));
        }
        page
    }

    #[test]
    fn lines_words_and_paragraphs() {
        // Drawn out of order: lines are found by baseline, words by gaps.
        let mut p = page(&["Email", "", "Staff must use school email.", "Never share passwords."]);
        p.glyphs.reverse();
        assert_eq!(
            pages_to_text(&[p]),
            "Email\n\nStaff must use school email.\nNever share passwords.\n"
        );
    }

    #[test]
    fn wrapped_lines_join_and_short_lines_stay() {
        // Lines that end near the right margin (the widest lines) ended
        // there because the next word did not fit: they join.
        let text = pages_to_text(&[page(&[
            "Staff must lock their laptop when they leave",
            "it unattended, even for a moment, and they",
            "must not leave it in a car.",
            "Short line.",
            "Another line that is not wrapped at all.",
            "- A bullet item that runs right up to the",
            "- and a second item.",
        ])]);
        assert_eq!(
            text,
            "Staff must lock their laptop when they leave it unattended, even for a moment, and they must not \
             leave it in a car.\nShort line.\nAnother line that is not wrapped at all.\n\
             - A bullet item that runs right up to the\n- and a second item.\n"
        );
        // With no line near a margin nothing is taken as wrapped.
        assert_eq!(
            pages_to_text(&[page(&["Staff must use school email.", "Never share passwords."])]),
            "Staff must use school email.\nNever share passwords.\n"
        );
    }

    #[test]
    fn hyphenated_words_join() {
        let text = pages_to_text(&[page(&[
            "Report it to the safe-",
            "guarding lead, a well-",
            "Known person, or the desig\u{ad}",
            "nated lead on non-",
            "school devices; use up-to-",
            "date e-mail, not e-",
            "mail apps. Tell the safeguarding lead.",
        ])]);
        assert_eq!(
            text,
            "Report it to the safeguarding lead, a well-\nKnown person, or the designated lead on non-school \
             devices; use up-to-date e-mail, not e-mail apps. Tell the safeguarding lead.\n"
        );
    }

    #[test]
    fn tables_keep_cells_apart_and_wrapped_cells_together() {
        let mut p = Page {
            width: 320.0,
            height: 800.0,
            glyphs: Vec::new(),
        };
        // Two columns at x = 50 and 250; the second row's cells wrap.
        for (x, y, text) in [
            (50.0, 100.0, "Version:"),
            (250.0, 100.0, "2026-09-01"),
            (50.0, 114.0, "Designated Safeguarding"),
            (250.0, 114.0, "Mr Tom"),
            (50.0, 126.0, "Lead:"),
            (250.0, 126.0, "Okafor"),
            (50.0, 140.0, "Model policy"),
            (50.0, 170.0, "After the table."),
        ] {
            p.glyphs.extend(glyphs(x, y, 10.0, text));
        }
        p.glyphs
            .extend(glyphs(50.0, 184.0, 10.0, "•\tA bullet with a wide gap after it."));
        assert_eq!(
            pages_to_text(&[p]),
            "Version:\t2026-09-01\nDesignated Safeguarding Lead:\tMr Tom Okafor\nModel policy\n\n\
             After the table.\n• A bullet with a wide gap after it.\n"
        );
    }

    #[test]
    fn running_headers_footers_and_page_numbers_go() {
        let pages: Vec<Page> = (1..=4)
            .map(|n| {
                let rule = ["", "First", "Second", "Third", "Fourth"][n];
                let mut p = page(&[
                    "Oakfield Primary – ICT Policy",
                    "",
                    &format!("{rule} rule of the policy."),
                    "",
                    &format!("Page {n} of 4"),
                ]);
                if n == 2 {
                    p.glyphs.extend(glyphs(300.0, 200.0, 10.0, "- 2 -"));
                }
                p
            })
            .collect();
        assert_eq!(
            pages_to_text(&pages),
            "First rule of the policy.\n\nSecond rule of the policy.\n\nThird rule of the policy.\n\n\
             Fourth rule of the policy.\n"
        );
    }

    #[test]
    fn a_paragraph_across_a_page_break_joins() {
        let pages = [
            page(&[
                "Staff must lock their laptop when they leave",
                "it unattended, even for a moment, and they",
                "must not leave it in a car or at home where",
            ]),
            page(&["it is not secure.", "Next paragraph."]),
            page(&["A new paragraph on a new page."]),
        ];
        assert_eq!(
            pages_to_text(&pages),
            "Staff must lock their laptop when they leave it unattended, even for a moment, and they must not \
             leave it in a car or at home where it is not secure.\nNext paragraph.\n\nA new paragraph on a new page.\n"
        );
    }

    #[test]
    fn broken_files_say_so() {
        assert_eq!(pdf_to_text(b"hello"), Err(PdfError::NotPdf("no %PDF header".into())));
        assert!(matches!(
            pdf_to_text(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"),
            Err(PdfError::Damaged(_))
        ));
    }

    /// A one-page PDF whose page draws `content`, written with lopdf.
    fn pdf_with(content: &str) -> Vec<u8> {
        use lopdf::{Document, Object, Stream, dictionary};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let content = doc.add_object(Stream::new(dictionary! {}, content.as_bytes().to_vec()));
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_real_pdf_reads_and_a_scan_has_no_text() {
        let text = pdf_to_text(&pdf_with(
            "BT /F1 12 Tf 72 770 Td (Staff ICT Policy) Tj 0 -14 Td (Never share passwords.) Tj ET",
        ))
        .unwrap();
        assert_eq!(text, "Staff ICT Policy\nNever share passwords.\n");
        assert_eq!(
            pdf_to_text(&pdf_with("0.5 g 72 72 400 600 re f")),
            Err(PdfError::NoText)
        );
    }
}
