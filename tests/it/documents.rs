//! Policies as Word documents and PDFs: the example policy converted to .docx
//! by a real converter (pandoc, from Debian) and from there to PDF (LibreOffice)
//! reads as the same clauses as the .txt; so does a 200-page PDF with running
//! headers and footers; broken PDFs are named and explained; and the eval
//! scores the same on Word and PDF copies of its corpus. Without pandoc or
//! LibreOffice a test is skipped with a note, except under CI, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{
    Sandbox, clause_list, clauses_json, copy, eval_report, example_policy, in_ci, read, shared_dir, str_field, write,
};

/// The example policy as markdown pandoc renders line for line: hard line
/// breaks, no smart quotes, and the tab-separated contact block as a table.
fn as_markdown(text: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.contains('\t') {
            let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
            if !in_table {
                out.push_str(&format!(
                    "\n| {} |\n|{}\n",
                    cells.join(" | "),
                    "---|".repeat(cells.len())
                ));
                in_table = true;
                continue;
            }
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
            continue;
        }
        if in_table {
            out.push('\n');
            in_table = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The example policy as markdown pandoc reads line for line.
const MARKDOWN: &str = "markdown-smart+hard_line_breaks";

/// Converts with pandoc from `format` ("markdown-smart+hard_line_breaks",
/// "html") to .docx.
fn pandoc(format: &str, from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("pandoc")
        .args(["-f", format, "-t", "docx", "-o"])
        .arg(to)
        .arg(from)
        .output()
        .map_err(|e| format!("running pandoc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What a reader of the policy holds to: each clause's text, where it sits
/// and its number and modality.
fn clauses(policy: &Value) -> Vec<(String, String, String, String)> {
    clause_list(policy)
        .iter()
        .map(|c| {
            (
                c["text"].as_str().unwrap_or_default().to_owned(),
                c["heading_path"].to_string(),
                c["number"].to_string(),
                c["modality"].to_string(),
            )
        })
        .collect()
}

#[test]
fn a_word_document_reads_as_the_same_clauses_as_the_text() {
    let s = Sandbox::empty();
    let dir = s.policy_dir("policies");
    let text = read(&example_policy());
    write(&dir.join("ict.txt"), &text);
    let markdown = dir.join("ict.md.src");
    write(&markdown, as_markdown(&text));
    let docx = dir.join("ict.docx");
    if let Err(e) = pandoc(MARKDOWN, &markdown, &docx) {
        assert!(!in_ci(), "pandoc must convert the policy in CI: {e}");
        eprintln!("note: skipping the .docx test, pandoc did not run: {e}");
        return;
    }
    let from_text = clauses_json(&dir.join("ict.txt"));
    let from_word = clauses_json(&docx);
    let (a, b) = (clauses(&from_text), clauses(&from_word));
    for (i, (t, w)) in a.iter().zip(&b).enumerate() {
        assert_eq!(t, w, "clause {i} differs");
    }
    assert_eq!(a.len(), b.len(), "as many clauses");
    assert_eq!(from_text["version"], from_word["version"]);
    assert_eq!(from_text["title"], from_word["title"]);
    assert_eq!(from_text["contacts"], from_word["contacts"]);
}

#[test]
fn broken_word_files_are_named_and_explained() {
    let (s, dir) = Sandbox::with_copied_example();
    write(&dir.join("corrupt.docx"), b"PK\x03\x04 this is not really a zip");
    write(
        &dir.join("protected.docx"),
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 an encrypted OLE file",
    );
    let run = s.run(["index"]);
    run.assert_success();
    run.assert_stderr_contains(&["corrupt.docx: not a .docx", "protected.docx: password-protected"]);
}

// ------------------------------------------------------------------ PDF

/// LibreOffice (`soffice`, Debian's libreoffice-writer-nogui), headless, with
/// a profile of its own inside `sandbox` so parallel tests do not share one:
/// converts every file of `files` in one run (it is slow to start) into
/// `out_dir` with the `to` filter ("pdf", "pdf:writer_pdf_Export:{…}"). The
/// converted files must exist afterwards: soffice exits 0 on some failures.
fn soffice(sandbox: &Sandbox, to: &str, files: &[PathBuf], out_dir: &Path) -> Result<(), String> {
    let profile = format!(
        "-env:UserInstallation=file://{}",
        sandbox.path().join("lo-profile").display()
    );
    let mut last = String::from("no soffice or libreoffice on PATH");
    for program in ["soffice", "libreoffice"] {
        let out = match Command::new(program)
            .arg(&profile)
            .args(["--headless", "--norestore", "--convert-to", to, "--outdir"])
            .arg(out_dir)
            .args(files)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                last = format!("running {program}: {e}");
                continue;
            }
        };
        let ext = to.split(':').next().unwrap_or(to);
        let missing: Vec<String> = files
            .iter()
            .map(|f| out_dir.join(f.with_extension(ext).file_name().expect("a file name")))
            .filter(|f| !f.is_file())
            .map(|f| f.display().to_string())
            .collect();
        if out.status.success() && missing.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "{program} did not convert {missing:?} ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Err(last)
}

/// The result of a conversion a test needs, or `None` (after a note) when the
/// converter is missing outside CI; in CI it must work.
fn converted<T>(result: Result<T, String>, what: &str) -> Option<T> {
    match result {
        Ok(t) => Some(t),
        Err(e) => {
            assert!(!in_ci(), "{what} must work in CI: {e}");
            eprintln!("note: skipping, {what} did not run: {e}");
            None
        }
    }
}

/// Policy text as HTML pandoc turns into a Word document line for line:
/// lines of a paragraph kept apart by line breaks, blank lines between
/// paragraphs, runs of tab-separated lines as tables, and nothing read as
/// markup (bullets, numbers, `*`, `#` stay text).
fn as_html(text: &str) -> String {
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }
    let mut out = String::from("<html><head><meta charset=\"utf-8\"></head><body>\n");
    let mut paragraph: Vec<&str> = Vec::new();
    let mut table: Vec<&str> = Vec::new();
    let flush = |out: &mut String, paragraph: &mut Vec<&str>, table: &mut Vec<&str>| {
        if !paragraph.is_empty() {
            let lines: Vec<String> = paragraph.iter().map(|l| escape(l.trim())).collect();
            out.push_str(&format!("<p>{}</p>\n", lines.join("<br>")));
            paragraph.clear();
        }
        if !table.is_empty() {
            out.push_str("<table>");
            for row in table.iter() {
                out.push_str("<tr>");
                for cell in row.split('\t') {
                    out.push_str(&format!("<td>{}</td>", escape(cell.trim())));
                }
                out.push_str("</tr>");
            }
            out.push_str("</table>\n");
            table.clear();
        }
    };
    for line in text.lines() {
        if line.contains('\t') {
            if !paragraph.is_empty() {
                flush(&mut out, &mut paragraph, &mut table);
            }
            table.push(line);
        } else if line.trim().is_empty() {
            flush(&mut out, &mut paragraph, &mut table);
        } else {
            if !table.is_empty() {
                flush(&mut out, &mut paragraph, &mut table);
            }
            paragraph.push(line);
        }
    }
    flush(&mut out, &mut paragraph, &mut table);
    out.push_str("</body></html>\n");
    out
}

#[track_caller]
fn assert_same_policy(from_text: &Value, other: &Value, what: &str) {
    let (a, b) = (clauses(from_text), clauses(other));
    for (i, (t, o)) in a.iter().zip(&b).enumerate() {
        assert_eq!(t, o, "clause {i} differs in the {what}");
    }
    assert_eq!(a.len(), b.len(), "as many clauses in the {what}");
    // Without a version line the version is the file's date and hash.
    if from_text["version_declared"] == true {
        assert_eq!(from_text["version"], other["version"], "{what}");
    }
    assert_eq!(from_text["title"], other["title"], "{what}");
    assert_eq!(from_text["contacts"], other["contacts"], "{what}");
}

#[test]
fn a_pdf_reads_as_the_same_clauses_as_the_text() {
    let s = Sandbox::empty();
    let dir = s.policy_dir("policies");
    let text = read(&example_policy());
    write(&dir.join("ict.txt"), &text);
    let markdown = dir.join("ict.md.src");
    write(&markdown, as_markdown(&text));
    let work = s.policy_dir("work");
    let docx = work.join("ict.docx");
    let Some(()) = converted(pandoc(MARKDOWN, &markdown, &docx), "pandoc") else {
        return;
    };
    let Some(()) = converted(soffice(&s, "pdf", &[docx], &dir), "LibreOffice (soffice)") else {
        return;
    };
    let from_text = clauses_json(&dir.join("ict.txt"));
    let from_pdf = clauses_json(&dir.join("ict.pdf"));
    assert_same_policy(&from_text, &from_pdf, "PDF");
}

/// Sentences that read like policy and do not repeat, from a fixed seed.
struct Sentences(u64);

impl Sentences {
    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        words[(self.0 >> 33) as usize % words.len()]
    }

    /// One sentence (a single clause); with `hyphen`, one long word is broken
    /// across a line end with a hyphen, as a hyphenating layout does. The text
    /// version and the ODF version of the same sentence.
    fn next(&mut self, hyphen: bool) -> (String, String) {
        const WHO: &[&str] = &[
            "Staff",
            "Teachers",
            "Governors",
            "Volunteers",
            "Supply staff",
            "Support staff",
        ];
        const DO: &[&str] = &[
            "must protect",
            "should record",
            "must not share",
            "may discuss",
            "should review",
        ];
        const WHAT: &[&str] = &[
            "the passwords",
            "the photographs",
            "the laptops",
            "the email accounts",
            "the tablets",
            "the records",
            "the cloud storage",
            "the memory sticks",
            "the class blogs",
            "the visitor logs",
        ];
        const WHERE: &[&str] = &[
            "in the classroom",
            "on school trips",
            "at home",
            "in the staff room",
            "during parents' evenings",
            "in the library",
            "on the playground",
            "in assemblies",
        ];
        const HOW: &[&str] = &[
            "with the Online Safety Lead's written agreement",
            "as the Headteacher directs",
            "following the data protection rules",
            "in line with the behaviour policy",
            "after checking the consent list",
            "whenever a pupil's welfare is at stake",
        ];
        let who = self.pick(WHO);
        let act = self.pick(DO);
        let (what, place, how) = (self.pick(WHAT), self.pick(WHERE), self.pick(HOW));
        let n = self.0 % 97;
        let text = format!("{who} {act} {what} {place} {how}, and tell the safeguarding lead about item {n}.");
        let odf = text.replace('\'', "&apos;");
        let odf = if hyphen {
            odf.replace("safeguarding", "safe-<text:line-break/>guarding")
        } else {
            odf
        };
        (text, odf)
    }
}

/// A 200-page policy as flat ODF text (LibreOffice's `.fodt`) and the same
/// policy as `.txt`: a running header, a "Page N of 200" footer from page
/// fields, a heading every fifth page, ten one-sentence paragraphs a page,
/// one word per page hyphenated across a line end. Returns (fodt, txt,
/// number of paragraphs).
fn long_policy() -> (String, String, usize) {
    const TOPICS: &[&str] = &[
        "Email",
        "Passwords",
        "Photographs",
        "Social media",
        "Mobile phones",
        "Laptops",
        "Cloud storage",
        "Visitors",
        "Trips",
        "Printing",
        "Video calls",
        "Data protection",
        "Filtering",
        "Reporting concerns",
        "Removable media",
        "Classroom displays",
        "Websites",
        "Parents' evenings",
        "Staff room",
        "Games",
    ];
    let mut sentences = Sentences(7);
    let mut txt = String::from("Long Staff ICT Acceptable Use Policy\n\n");
    let mut body = String::from("<text:p text:style-name=\"T\">Long Staff ICT Acceptable Use Policy</text:p>");
    let mut paragraphs = 0;
    for page in 0..200 {
        let style = if page == 0 { "P" } else { "B" };
        let mut first = true;
        if page % 5 == 0 {
            let topic = TOPICS[(page / 5) % TOPICS.len()];
            let heading = format!("{}. {topic}", page / 5 + 1);
            txt.push_str(&format!("{heading}\n\n"));
            let style = if page == 0 { "H" } else { "HB" };
            body.push_str(&format!(
                "<text:h text:style-name=\"{style}\" text:outline-level=\"1\">{}</text:h>",
                heading.replace('\'', "&apos;")
            ));
            first = false;
        }
        for k in 0..10 {
            let (text, odf) = sentences.next(k == 3);
            txt.push_str(&format!("{text}\n\n"));
            let style = if first { style } else { "P" };
            body.push_str(&format!("<text:p text:style-name=\"{style}\">{odf}</text:p>"));
            first = false;
            paragraphs += 1;
        }
    }
    let fodt = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.text">
<office:styles>
 <style:style style:name="P" style:family="paragraph"><style:paragraph-properties fo:margin-bottom="0.25cm"/><style:text-properties fo:font-size="11pt"/></style:style>
 <style:style style:name="B" style:family="paragraph" style:parent-style-name="P"><style:paragraph-properties fo:break-before="page"/></style:style>
 <style:style style:name="T" style:family="paragraph"><style:paragraph-properties fo:margin-bottom="0.4cm"/><style:text-properties fo:font-size="16pt" fo:font-weight="bold"/></style:style>
 <style:style style:name="H" style:family="paragraph"><style:paragraph-properties fo:margin-top="0.3cm" fo:margin-bottom="0.3cm"/><style:text-properties fo:font-size="13pt" fo:font-weight="bold"/></style:style>
 <style:style style:name="HB" style:family="paragraph" style:parent-style-name="H"><style:paragraph-properties fo:break-before="page"/></style:style>
 <style:style style:name="HF" style:family="paragraph"><style:text-properties fo:font-size="9pt"/></style:style>
</office:styles>
<office:automatic-styles><style:page-layout style:name="PL"><style:page-layout-properties fo:page-width="21cm" fo:page-height="29.7cm" fo:margin-top="1.5cm" fo:margin-bottom="1.5cm" fo:margin-left="2.5cm" fo:margin-right="2.5cm"/><style:header-style/><style:footer-style/></style:page-layout></office:automatic-styles>
<office:master-styles><style:master-page style:name="Standard" style:page-layout-name="PL">
 <style:header><text:p text:style-name="HF">Oakfield Primary – ICT Policy – version 2026-09-01</text:p></style:header>
 <style:footer><text:p text:style-name="HF">Page <text:page-number text:select-page="current">1</text:page-number> of <text:page-count>1</text:page-count></text:p></style:footer>
</style:master-page></office:master-styles>
<office:body><office:text>{body}</office:text></office:body></office:document>
"#
    );
    (fodt, txt, paragraphs)
}

#[test]
fn a_200_page_pdf_with_running_headers_reads_cleanly() {
    let s = Sandbox::empty();
    let dir = s.policy_dir("policies");
    let work = s.policy_dir("work");
    let (fodt, txt, paragraphs) = long_policy();
    write(&work.join("long.fodt"), fodt);
    write(&dir.join("long.txt"), &txt);
    let Some(()) = converted(
        soffice(&s, "pdf", &[work.join("long.fodt")], &dir),
        "LibreOffice (soffice)",
    ) else {
        return;
    };
    let pdf = dir.join("long.pdf");
    let bytes = std::fs::read(&pdf).unwrap();
    let pages = bytes
        .windows(11)
        .filter(|w| w.starts_with(b"/Type/Page") && w[10] != b's')
        .count();
    assert_eq!(pages, 200, "the PDF has 200 pages");

    let from_pdf = clauses_json(&pdf);
    let list = clause_list(&from_pdf);
    for c in list {
        let text = str_field(c, "text");
        for running in ["Oakfield Primary", "Page ", "of 200", "2026-09-01"] {
            assert!(
                !text.contains(running),
                "header or footer text {running:?} in a clause: {c}"
            );
        }
        assert!(
            !text.contains("safe-") && !text.contains("safe guarding"),
            "hyphenation left in: {c}"
        );
    }
    let joined = list
        .iter()
        .filter(|c| str_field(c, "text").contains("tell the safeguarding lead"))
        .count();
    assert_eq!(
        joined, paragraphs,
        "every paragraph names the safeguarding lead in one word"
    );
    assert_eq!(list.len(), paragraphs, "one clause per paragraph");
    assert_same_policy(&clauses_json(&dir.join("long.txt")), &from_pdf, "200-page PDF");
}

#[test]
fn broken_pdfs_are_named_and_explained() {
    let (s, dir) = Sandbox::with_copied_example();
    let work = s.policy_dir("work");
    // A real PDF of the example policy, then damaged copies of it.
    let source = work.join("source.html");
    write(&source, as_html(&read(&example_policy())));
    let docx = work.join("source.docx");
    let Some(()) = converted(pandoc("html", &source, &docx), "pandoc") else {
        return;
    };
    let Some(()) = converted(
        soffice(&s, "pdf", std::slice::from_ref(&docx), &work),
        "LibreOffice (soffice)",
    ) else {
        return;
    };
    let good = std::fs::read(work.join("source.pdf")).unwrap();
    write(&dir.join("truncated.pdf"), &good[..good.len() / 3]);
    write(
        &dir.join("not-really.pdf"),
        b"<html>Sorry, the file you asked for was not found</html>",
    );

    // Encrypted with a password to open it, and one only restricted by an
    // owner password (which opens without one, as in any PDF viewer).
    let locked = s.policy_dir("work/locked");
    let export = |options: &str| format!("pdf:writer_pdf_Export:{{{options}}}");
    let open_password = export(
        r#""EncryptFile":{"type":"boolean","value":"true"},"DocumentOpenPassword":{"type":"string","value":"secret"}"#,
    );
    let Some(()) = converted(soffice(&s, &open_password, &[docx], &locked), "soffice PDF encryption") else {
        return;
    };
    copy(&locked.join("source.pdf"), &dir.join("password.pdf"));
    let restricted = s.policy_dir("work/restricted");
    let owner_only = export(
        r#""RestrictPermissions":{"type":"boolean","value":"true"},"PermissionPassword":{"type":"string","value":"owner"},"Changes":{"type":"long","value":"0"}"#,
    );
    // Another school's copy, so that it is not the same policy as good.txt.
    let other = work.join("other.html");
    write(&other, as_html(&read(&example_policy()).replace("Oakfield", "Ashdown")));
    let other_docx = work.join("other.docx");
    let Some(()) = converted(pandoc("html", &other, &other_docx), "pandoc") else {
        return;
    };
    let Some(()) = converted(
        soffice(&s, &owner_only, &[other_docx], &restricted),
        "soffice PDF permissions",
    ) else {
        return;
    };
    let restricted_bytes = std::fs::read(restricted.join("other.pdf")).unwrap();
    assert!(
        restricted_bytes.windows(8).any(|w| w == b"/Encrypt"),
        "LibreOffice encrypted the restricted PDF"
    );
    write(&dir.join("restricted.pdf"), &restricted_bytes);

    // A scan: a page with only an image on it, no text.
    write(&dir.join("scan.pdf"), image_only_pdf());

    let run = s.run(["index"]);
    run.assert_success().assert_no_panic();
    assert!(
        run.stdout.lines().any(|l| l.starts_with("2 policies")),
        "the example and the restricted PDF are indexed: {run}"
    );
    run.assert_reports(&dir.join("truncated.pdf"), &["damaged PDF"]);
    run.assert_reports(&dir.join("not-really.pdf"), &["not a PDF"]);
    run.assert_reports(&dir.join("password.pdf"), &["password-protected"]);
    run.assert_reports(&dir.join("scan.pdf"), &["no text layer"]);
    assert!(
        !run.stderr.contains("restricted.pdf"),
        "nothing to report about it: {run}"
    );
    let answer = s.ask_json("can I share my password with a colleague?");
    assert_eq!(answer["answered"], true, "{answer}");
}

/// A one-page PDF as a scanner writes it: the page is one image (a grey
/// 4×4 inline image scaled to the page), with no text at all.
fn image_only_pdf() -> Vec<u8> {
    let content = "q 595 0 0 842 0 0 cm BI /W 4 /H 4 /CS /G /BPC 8 ID \
                   \u{80}\u{90}\u{a0}\u{b0}\u{80}\u{90}\u{a0}\u{b0}\u{80}\u{90}\u{a0}\u{b0}\u{80}\u{90}\u{a0}\u{b0} EI Q";
    let content: Vec<u8> = content.chars().map(|c| c as u32 as u8).collect();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> /Contents 4 0 R >>".to_vec(),
    ];
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend(&content);
    stream.extend(b"\nendstream");
    objects.push(stream);
    let mut pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend(object);
        pdf.extend(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        pdf.extend(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// The eval's figures for one corpus directory, as `eval --json` reports them.
fn eval_summary(shared: &Path, corpus: &Path) -> Value {
    eval_report(shared, corpus)["summary"].clone()
}

#[test]
fn the_eval_scores_the_same_on_word_and_pdf_copies_of_the_corpus() {
    let Some(shared) = shared_dir() else { return };
    let s = Sandbox::empty();
    let (txt, docx, pdf, work) = (
        s.policy_dir("txt"),
        s.policy_dir("docx"),
        s.policy_dir("pdf"),
        s.policy_dir("work"),
    );
    let mut docs = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = read(file);
        write(&txt.join(format!("{name}.txt")), &text);
        let html = work.join(format!("{name}.html"));
        write(&html, as_html(&text));
        let out = docx.join(format!("{name}.docx"));
        let Some(()) = converted(pandoc("html", &html, &out), "pandoc") else {
            return;
        };
        docs.push(out);
    }
    let Some(()) = converted(soffice(&s, "pdf", &docs, &pdf), "LibreOffice (soffice)") else {
        return;
    };

    let keys = [
        "questions",
        "answerable",
        "recall_at_1",
        "recall_at_3",
        "mrr",
        "out_of_scope_declined",
        "answerable_declined",
        "verdict_accuracy",
        "confident_wrong",
        "suggested",
        "out_of_scope_confident",
    ];
    let figures = |summary: &Value| keys.map(|k| summary[k].to_string()).join(" ");
    let (a, b, c) = (
        eval_summary(&shared, &txt),
        eval_summary(&shared, &docx),
        eval_summary(&shared, &pdf),
    );
    eprintln!("eval figures ({}):", keys.join(" "));
    eprintln!("  .txt  {}", figures(&a));
    eprintln!("  .docx {}", figures(&b));
    eprintln!("  .pdf  {}", figures(&c));
    for k in keys {
        assert_eq!(a[k], b[k], "{k}: .txt {a} vs .docx {b}");
        assert_eq!(a[k], c[k], "{k}: .txt {a} vs .pdf {c}");
    }
}
