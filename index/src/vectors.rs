//! Clause embeddings, kept beside the tantivy index in `vectors.bin`.
//!
//! Each clause has two unit vectors: its text alone, and its text under its
//! headings (a bullet like "Use a strong password" reads as an answer only
//! with "Passwords and accounts" above it). They are keyed by clause id plus
//! a hash of exactly what was embedded, so re-indexing embeds only clauses
//! whose words or headings changed, and a model with another output is never
//! mixed in (the file records the model's config hash).
//!
//! The file is rewritten whole (temp file, then rename), so a crash leaves the
//! old file or the new one; a file that cannot be read is ignored and rebuilt.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::clause::{Clause, Policy};
use crate::embed::{DIM, EmbedError, Embedder};

pub const FILE: &str = "vectors.bin";
const MAGIC: &[u8; 8] = b"PBVEC\x00\x00\x01";

/// What is embedded for a clause: its text, and its text under its headings
/// and the head of the list it is an item of ("Don't"), which turn a bare
/// item into the rule it is.
pub fn texts_of(clause: &Clause) -> [String; 2] {
    let mut above: Vec<&str> = clause.heading_path.iter().map(String::as_str).collect();
    above.extend(clause.list_head.as_deref());
    let headed = if above.is_empty() {
        clause.text.clone()
    } else {
        format!("{}: {}", above.join(" — "), clause.text)
    };
    [clause.text.clone(), headed]
}

fn key_of(texts: &[String; 2]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(texts[0].as_bytes());
    h.update([0u8]);
    h.update(texts[1].as_bytes());
    h.finalize()[..16].try_into().expect("16 bytes")
}

/// A clause's two vectors, `2 * DIM` floats: text, then text under headings.
#[derive(Clone)]
struct Entry {
    key: [u8; 16],
    vectors: Vec<f32>,
}

/// Clause id → the clause's vectors.
#[derive(Default)]
pub struct ClauseVectors {
    entries: HashMap<String, Entry>,
}

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VectorReport {
    pub reused: usize,
    pub embedded: usize,
    /// Why the vectors could not be saved (they are only a cache: the next
    /// start embeds again).
    pub save_error: Option<String>,
}

impl ClauseVectors {
    /// Vectors for every clause of `policies`: those in `dir`'s file whose
    /// text is unchanged are reused, the rest embedded, and the file rewritten
    /// when anything changed. `dir` None keeps them in memory only.
    pub fn sync(
        dir: Option<&Path>,
        policies: &[Policy],
        embedder: &Embedder,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Self, VectorReport), EmbedError> {
        let model = model_tag(embedder);
        let mut old = dir.map(|d| read(&d.join(FILE), &model)).unwrap_or_default();
        let mut entries = HashMap::new();
        let mut todo: Vec<(String, [u8; 16], [String; 2])> = Vec::new();
        for clause in policies.iter().flat_map(|p| &p.clauses) {
            let texts = texts_of(clause);
            let key = key_of(&texts);
            match old.remove(&clause.id) {
                Some(e) if e.key == key => {
                    entries.insert(clause.id.clone(), e);
                }
                _ => todo.push((clause.id.clone(), key, texts)),
            }
        }
        let mut report = VectorReport {
            reused: entries.len(),
            embedded: todo.len(),
            save_error: None,
        };
        if !todo.is_empty() {
            let flat: Vec<&str> = todo
                .iter()
                .flat_map(|(_, _, t)| [t[0].as_str(), t[1].as_str()])
                .collect();
            let vectors = embedder.embed_all(&flat, &mut |done, total| progress(done / 2, total / 2))?;
            for ((id, key, _), pair) in todo.into_iter().zip(vectors.chunks(2)) {
                let mut v = Vec::with_capacity(2 * DIM);
                v.extend_from_slice(&pair[0]);
                v.extend_from_slice(&pair[1]);
                entries.insert(id, Entry { key, vectors: v });
            }
        }
        let vectors = ClauseVectors { entries };
        if let Some(dir) = dir
            && (report.embedded > 0 || !old.is_empty() || !dir.join(FILE).exists())
            && let Err(e) = vectors.write(&dir.join(FILE), &model)
        {
            report.save_error = Some(format!("cannot save clause vectors in {}: {e}", dir.display()));
        }
        Ok((vectors, report))
    }

    /// The clause's text vector and its text-under-headings vector.
    pub fn get(&self, id: &str) -> Option<(&[f32], &[f32])> {
        self.entries.get(id).map(|e| e.vectors.split_at(DIM))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn write(&self, path: &Path, model: &[u8; 16]) -> std::io::Result<()> {
        let tmp: PathBuf = path.with_extension("bin.tmp");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(MAGIC)?;
        out.write_all(model)?;
        out.write_all(&(DIM as u32).to_le_bytes())?;
        out.write_all(&(self.entries.len() as u64).to_le_bytes())?;
        let mut ids: Vec<&String> = self.entries.keys().collect();
        ids.sort();
        for id in ids {
            let e = &self.entries[id];
            out.write_all(&(id.len() as u32).to_le_bytes())?;
            out.write_all(id.as_bytes())?;
            out.write_all(&e.key)?;
            for x in &e.vectors {
                out.write_all(&x.to_le_bytes())?;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// Identifies the model's output: vectors from another model are not reused.
fn model_tag(embedder: &Embedder) -> [u8; 16] {
    let config = std::fs::read(embedder.dir().join(crate::embed::CONFIG)).unwrap_or_default();
    Sha256::digest(&config)[..16].try_into().expect("16 bytes")
}

/// The entries of a vectors file, or none when it is missing, from another
/// model or damaged (it is only a cache).
fn read(path: &Path, model: &[u8; 16]) -> HashMap<String, Entry> {
    fn parse(bytes: &[u8], model: &[u8; 16]) -> Option<HashMap<String, Entry>> {
        let mut r = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, rest) = r.split_at_checked(n)?;
            r = rest;
            Some(head)
        };
        if take(8)? != MAGIC || take(16)? != model {
            return None;
        }
        if u32::from_le_bytes(take(4)?.try_into().ok()?) as usize != DIM {
            return None;
        }
        let count = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
        let mut out = HashMap::with_capacity(count.min(1 << 20));
        for _ in 0..count {
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let id = std::str::from_utf8(take(len)?).ok()?.to_owned();
            let key: [u8; 16] = take(16)?.try_into().ok()?;
            let vectors = take(2 * DIM * 4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            out.insert(id, Entry { key, vectors });
        }
        Some(out)
    }
    let mut bytes = Vec::new();
    match std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)) {
        Ok(_) => parse(&bytes, model).unwrap_or_default(),
        Err(_) => HashMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::policy_from_bytes;

    fn policy(text: &str) -> Policy {
        policy_from_bytes("north", "north.txt", text.as_bytes(), Some("1")).unwrap()
    }

    #[test]
    fn only_changed_clauses_are_embedded_again_and_a_damaged_file_is_rebuilt() {
        let Some(embedder) = crate::embed::test_model() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let before = policy("North ICT Policy\n\nDevices\n\n- Lock your screen.\n- Never share a password.\n");
        let (_, report) = ClauseVectors::sync(
            Some(dir.path()),
            std::slice::from_ref(&before),
            &embedder,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!((report.reused, report.embedded), (0, 2));
        let (vectors, report) = ClauseVectors::sync(
            Some(dir.path()),
            std::slice::from_ref(&before),
            &embedder,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!((report.reused, report.embedded), (2, 0));
        let (text, headed) = vectors.get(&before.clauses[0].id).unwrap();
        assert_eq!((text.len(), headed.len()), (DIM, DIM));
        let fresh = embedder.embed(&before.clauses[0].text).unwrap();
        assert!(crate::embed::cosine(text, &fresh) > 0.9999);

        let after =
            policy("North ICT Policy\n\nDevices\n\n- Lock your screen.\n- Never share a password with anyone.\n");
        let (_, report) = ClauseVectors::sync(
            Some(dir.path()),
            std::slice::from_ref(&after),
            &embedder,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!((report.reused, report.embedded), (1, 1));

        std::fs::write(dir.path().join(FILE), b"PBVEC\0\0\x01 truncated").unwrap();
        let (vectors, report) = ClauseVectors::sync(Some(dir.path()), &[after], &embedder, &mut |_, _| {}).unwrap();
        assert_eq!((report.reused, report.embedded), (0, 2));
        assert_eq!(vectors.len(), 2);
    }
}
