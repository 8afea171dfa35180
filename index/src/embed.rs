//! Sentence embeddings in-process: all-MiniLM-L6-v2 run by candle's BERT.
//!
//! The vectors are sentence-transformers' own: WordPiece tokens (the model's
//! `tokenizer.json`, truncated at 256 tokens as its `sentence_bert_config.json`
//! says), the six-layer encoder, the mean of the token states weighted by the
//! attention mask, then L2 normalisation, so a dot product is a cosine. A test
//! compares them with vectors the Python library made
//! (`tests/fixtures/embed/`, with the script that made them).
//!
//! The shipped tokenizer pads every input to 128 tokens; padding is turned off
//! here (a question is ~15 tokens: 13 ms instead of 45), and a batch is padded
//! only to its longest member, the padding masked out of attention and pooling.
//!
//! Reading the model files is the only I/O: fetching them is the binary's job
//! (`policybot model install`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

/// Length of a vector.
pub const DIM: usize = 384;
/// The files a model directory holds.
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
pub const CONFIG: &str = "config.json";
pub const MODEL_FILES: [&str; 3] = [WEIGHTS, TOKENIZER, CONFIG];
/// sha256 of all-MiniLM-L6-v2's `model.safetensors` (the upstream model's own file).
pub const WEIGHTS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;
/// Texts embedded together: long enough to keep the matrix products busy,
/// short enough that sorting by length leaves little padding.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("the answer model is not installed: {path} is missing (run `policybot model install`)")]
    Missing { path: String },
    #[error("the answer model in {dir} cannot be read: {message} (run `policybot model install` again)")]
    Load { dir: String, message: String },
    #[error("embedding failed: {0}")]
    Run(String),
}

fn run_error(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Run(e.to_string())
}

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dir", &self.dir).finish()
    }
}

impl Embedder {
    /// Loads the model from `dir` (the three [`MODEL_FILES`]). The weights are
    /// memory-mapped, not hashed: `policybot model install` verified them.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        for name in MODEL_FILES {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(EmbedError::Missing {
                    path: path.display().to_string(),
                });
            }
        }
        let load_error = |message: String| EmbedError::Load {
            dir: dir.display().to_string(),
            message,
        };
        let config: Config = std::fs::read_to_string(dir.join(CONFIG))
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
            .map_err(|e| load_error(format!("{CONFIG}: {e}")))?;
        let mut tokenizer =
            Tokenizer::from_file(dir.join(TOKENIZER)).map_err(|e| load_error(format!("{TOKENIZER}: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load_error(format!("{TOKENIZER}: {e}")))?;
        let device = Device::Cpu;
        // Safety: the file is mapped read-only; `model install` replaces it by
        // renaming a new file over it, which leaves this mapping intact.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join(WEIGHTS)], DType::F32, &device) }
            .map_err(|e| load_error(format!("{WEIGHTS}: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| load_error(format!("{WEIGHTS}: {e}")))?;
        Ok(Embedder {
            model,
            tokenizer,
            device,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One text's unit vector.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed_batch(&[text])?.pop().expect("one vector per text"))
    }

    /// Unit vectors for many texts, in order, calling `progress(done, total)`
    /// as batches finish.
    pub fn embed_all(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(run_error)?;
        // Similar lengths together, so a batch is padded little.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&tokenizers::Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, v) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
            done += chunk.len();
            progress(done, texts.len());
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_all(texts, &mut |_, _| {})
    }

    /// The encoder over one batch, mean-pooled under the attention mask and normalised.
    fn forward(&self, batch: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let len = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * len);
        let mut types = Vec::with_capacity(batch.len() * len);
        let mut mask = Vec::with_capacity(batch.len() * len);
        for e in batch {
            let pad = len - e.get_ids().len();
            ids.extend(e.get_ids().iter().copied().chain(std::iter::repeat_n(0, pad)));
            types.extend(e.get_type_ids().iter().copied().chain(std::iter::repeat_n(0, pad)));
            mask.extend(
                e.get_attention_mask()
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, pad)),
            );
        }
        let shape = (batch.len(), len);
        let ids = Tensor::from_vec(ids, shape, &self.device).map_err(run_error)?;
        let types = Tensor::from_vec(types, shape, &self.device).map_err(run_error)?;
        let mask = Tensor::from_vec(mask, shape, &self.device).map_err(run_error)?;
        let states = self.model.forward(&ids, &types, Some(&mask)).map_err(run_error)?;
        let pooled = (|| {
            let weights = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = states.broadcast_mul(&weights)?.sum(1)?;
            let counts = weights.sum(1)?.clamp(1e-9, f64::MAX)?;
            summed.broadcast_div(&counts)?.to_vec2::<f32>()
        })()
        .map_err(run_error)?;
        Ok(pooled.into_iter().map(normalise).collect())
    }
}

/// Scales a vector to unit length (sentence-transformers' `Normalize`: divides by max(‖v‖, 1e-12)).
fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The installed model for tests: `POLICYBOT_MODEL_DIR`. Without it a test
/// that needs the model is skipped, or fails when CI is set (CI installs it).
#[doc(hidden)]
pub fn test_model() -> Option<std::sync::Arc<Embedder>> {
    static MODEL: std::sync::OnceLock<Option<std::sync::Arc<Embedder>>> = std::sync::OnceLock::new();
    MODEL
        .get_or_init(|| match std::env::var_os("POLICYBOT_MODEL_DIR") {
            Some(dir) => Some(std::sync::Arc::new(
                Embedder::load(Path::new(&dir)).expect("the model in POLICYBOT_MODEL_DIR loads"),
            )),
            None if std::env::var_os("CI").is_some() => {
                panic!("CI is set but POLICYBOT_MODEL_DIR is not: the answer model must be installed")
            }
            None => {
                eprintln!("skipped: POLICYBOT_MODEL_DIR is not set (run `policybot model install`)");
                None
            }
        })
        .clone()
}
