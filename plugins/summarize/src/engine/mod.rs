//! The language-model runtime: one OS thread per loaded model and decode
//! setting, fed from a bounded queue, shared process-wide through a registry.
//!
//! llama.cpp contexts borrow their model, so a context cannot move between
//! threads freely; keeping both on one thread for their whole life avoids any
//! unsafe lifetime juggling and serialises generation, which is what a 2-core
//! box wants anyway.

mod pick;
mod registry;
mod worker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub use registry::{EngineKey, LoraSpec, ModelSpec, engine, probe_model};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Always the most likely allowed token.
    Greedy,
    /// Seeded random sampling at `temperature`: reproducible for one seed on
    /// one build and thread count.
    Seeded {
        /// Random seed.
        seed: u32,
        /// Softmax temperature; higher is more varied.
        temperature: f32,
    },
}

/// One generation job.
#[derive(Debug, Clone)]
pub struct GenRequest {
    /// The full prompt, chat template already applied.
    pub prompt: String,
    /// Length in bytes of a leading part of `prompt` that repeats across
    /// requests (system message, instructions). Its KV cache is kept between
    /// jobs and only the rest is decoded. The prompt is always split there,
    /// whether the cache is warm or cold, so results do not depend on what
    /// ran before. 0 disables the reuse.
    pub prefix: usize,
    /// A GBNF grammar (root rule `root`) every generated token must fit.
    pub grammar: Option<String>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Token choice.
    pub sampling: Sampling,
    /// End at the model's end-of-answer token. Benchmarks turn this off to
    /// generate exactly `max_tokens`, as llama.cpp's own benchmark does.
    pub stop_at_end: bool,
    /// Give up (with [`EngineError::Timeout`]) once this much time has passed
    /// since the request was queued.
    pub timeout: Duration,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The model ended the answer (with the grammar complete, if any).
    EndOfAnswer,
    /// The grammar allowed no token of the vocabulary: the model cannot
    /// write what the grammar demands, and the answer is cut short.
    DeadEnd,
    /// `max_tokens` were generated.
    MaxTokens,
}

/// The result of one generation.
#[derive(Debug, Clone)]
pub struct GenOutput {
    /// Generated text, without the end-of-answer token.
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time spent on the prompt.
    pub prompt_seconds: f64,
    /// Time spent generating.
    pub generation_seconds: f64,
    /// Why it stopped.
    pub stop: Stop,
}

/// Failures of the runtime.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file does not exist.
    #[error("model file {} not found", path.display())]
    Missing {
        /// Path given.
        path: PathBuf,
    },
    /// The file exists but is not a loadable GGUF model.
    #[error("{} is not a loadable GGUF model: {reason}", path.display())]
    Load {
        /// Path given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The LoRA adapter is missing, not a GGUF, or not made for the model.
    #[error("LoRA adapter {}: {reason}", path.display())]
    Adapter {
        /// Path given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The configured chat template is not one llama.cpp can apply.
    #[error("chat template `{name}`: {reason}")]
    ChatTemplate {
        /// Name given.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// llama.cpp could not be initialised or a context could not be created.
    #[error("llama.cpp runtime: {0}")]
    Runtime(String),
    /// The prompt and `max_tokens` do not fit the context.
    #[error(
        "prompt of {prompt} tokens plus {max_tokens} to generate exceeds the context of {n_ctx}"
    )]
    PromptTooLong {
        /// Prompt tokens.
        prompt: usize,
        /// Requested new tokens.
        max_tokens: usize,
        /// Context size.
        n_ctx: usize,
    },
    /// The grammar was rejected by llama.cpp.
    #[error("grammar rejected: {0}")]
    Grammar(String),
    /// Decoding failed.
    #[error("decode failed: {0}")]
    Decode(String),
    /// The per-digest timeout passed.
    #[error("generation timed out after {0:?}")]
    Timeout(Duration),
    /// The model thread is gone.
    #[error("the model thread stopped")]
    Stopped,
}

impl EngineError {
    /// Bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            EngineError::Missing { .. }
            | EngineError::Load { .. }
            | EngineError::Adapter { .. }
            | EngineError::ChatTemplate { .. } => "model_unavailable",
            EngineError::Runtime(_) | EngineError::Decode(_) | EngineError::Stopped => {
                "model_error"
            }
            EngineError::PromptTooLong { .. } => "prompt_too_long",
            EngineError::Grammar(_) => "grammar_error",
            EngineError::Timeout(_) => "timeout",
        }
    }
}

/// Facts about the loaded model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Canonical path of the file.
    pub path: PathBuf,
    /// File name, for the `model` output column; `model.gguf+adapter.gguf`
    /// with an adapter.
    pub name: String,
    /// Seconds spent loading the weights (0 when the model was already loaded).
    pub load_seconds: f64,
    /// The chat template from the GGUF metadata, if any.
    pub has_chat_template: bool,
}

pub(crate) struct Job {
    pub(crate) req: GenRequest,
    pub(crate) queued: Instant,
    pub(crate) reply: oneshot::Sender<Result<GenOutput, EngineError>>,
}

/// A handle on a running model thread; cheap to share. The thread stops when
/// the last handle is dropped.
#[derive(Debug)]
pub struct Engine {
    tx: mpsc::Sender<Job>,
    info: ModelInfo,
    chat: worker::ChatFormat,
}

impl Engine {
    /// The model behind this engine.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Formats `system` and `user` with the model's chat template and opens
    /// the assistant turn.
    pub fn chat_prompt(&self, system: &str, user: &str) -> String {
        self.chat.render(system, user)
    }

    /// Like [`Engine::chat_prompt`], for a `user` message built from a
    /// template: returns the prompt and the length of its part that does not
    /// depend on `fill` (everything before `placeholder` in `user`), for
    /// [`GenRequest::prefix`].
    pub fn chat_prompt_with(
        &self,
        system: &str,
        user: &str,
        placeholder: &str,
        fill: &str,
    ) -> (String, usize) {
        const MARK: &str = "\u{E000}";
        let prompt = self.chat.render(system, &user.replace(placeholder, fill));
        let marked = self.chat.render(system, &user.replace(placeholder, MARK));
        let prefix = marked
            .find(MARK)
            .filter(|&i| prompt.as_bytes().get(..i) == Some(&marked.as_bytes()[..i]))
            .unwrap_or(0);
        (prompt, prefix)
    }

    /// Queues a job and waits for it; waits for queue space when the model
    /// thread is busy (backpressure, no unbounded growth).
    pub async fn generate(&self, req: GenRequest) -> Result<GenOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            req,
            queued: Instant::now(),
            reply,
        };
        self.tx.send(job).await.map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Blocking variant of [`Engine::generate`] for non-async callers
    /// (benchmarks, tools). Must not be called from inside an async runtime.
    pub fn generate_blocking(&self, req: GenRequest) -> Result<GenOutput, EngineError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            req,
            queued: Instant::now(),
            reply,
        };
        self.tx
            .blocking_send(job)
            .map_err(|_| EngineError::Stopped)?;
        rx.blocking_recv().map_err(|_| EngineError::Stopped)?
    }
}

/// Checks the first bytes of `path` for the GGUF magic, so an obviously wrong
/// file is reported without handing it to llama.cpp.
pub fn check_gguf_magic(path: &Path) -> Result<(), EngineError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::Missing {
            path: path.to_path_buf(),
        },
        _ => EngineError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|e| EngineError::Load {
        path: path.to_path_buf(),
        reason: format!("reading the header: {e}"),
    })?;
    if &magic != b"GGUF" {
        return Err(EngineError::Load {
            path: path.to_path_buf(),
            reason: "missing the GGUF magic bytes".into(),
        });
    }
    Ok(())
}
