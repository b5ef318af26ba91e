//! The model thread: owns one llama.cpp context for its whole life and runs
//! queued jobs one at a time.

use std::fmt;
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;
use tracing::{debug, error};

use super::pick::Picker;
use super::registry::Loaded;
use super::{EngineError, GenOutput, Job, Stop};

/// Prompt tokens handed to llama.cpp per call.
const N_BATCH: u32 = 512;
/// Prompt tokens computed at once inside a call: the compute buffer
/// llama.cpp reserves grows with it.
const N_UBATCH: u32 = 256;

pub(crate) struct WorkerConfig {
    pub(crate) threads: usize,
    pub(crate) n_ctx: u32,
    pub(crate) queue: usize,
    /// Scale of the model's adapter, when it has one.
    pub(crate) lora_scale: Option<f32>,
}

/// Renders chat messages with the model's own template (ChatML when the GGUF
/// carries none or llama.cpp does not know it).
pub(crate) struct ChatFormat {
    loaded: Arc<Loaded>,
    template: Option<LlamaChatTemplate>,
}

impl fmt::Debug for ChatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatFormat")
            .field("from_model", &self.template.is_some())
            .finish()
    }
}

impl ChatFormat {
    pub(crate) fn uses_model_template(&self) -> bool {
        self.template.is_some()
    }

    pub(crate) fn render(&self, system: &str, user: &str) -> String {
        let clean = |s: &str| s.replace('\0', "");
        if let Some(t) = &self.template {
            let msgs = [("system", system), ("user", user)]
                .into_iter()
                .map(|(r, c)| LlamaChatMessage::new(r.into(), clean(c)))
                .collect::<Result<Vec<_>, _>>();
            if let Ok(msgs) = msgs
                && let Ok(s) = self.loaded.model.apply_chat_template(t, &msgs, true)
            {
                return s;
            }
        }
        format!(
            "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
            clean(system),
            clean(user)
        )
    }
}

/// The llama.cpp built-in chat template `name` (`chatml`, `gemma`,
/// `llama3`, ...), checked by rendering a short conversation with it.
pub(crate) fn named_template(
    model: &LlamaModel,
    name: &str,
) -> Result<LlamaChatTemplate, EngineError> {
    let err = |reason: String| EngineError::ChatTemplate {
        name: name.to_owned(),
        reason,
    };
    let t = LlamaChatTemplate::new(name).map_err(|e| err(e.to_string()))?;
    let msgs = [("system", "s"), ("user", "u")]
        .into_iter()
        .map(|(r, c)| LlamaChatMessage::new(r.into(), c.into()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    model
        .apply_chat_template(&t, &msgs, true)
        .map_err(|e| err(format!("llama.cpp cannot apply it ({e})")))?;
    Ok(t)
}

/// Starts the thread; returns once its context exists (or failed to).
/// `template` renders prompts; ChatML when `None`.
pub(crate) fn spawn(
    loaded: Arc<Loaded>,
    cfg: WorkerConfig,
    template: Option<LlamaChatTemplate>,
) -> Result<(mpsc::Sender<Job>, ChatFormat), EngineError> {
    let (tx, rx) = mpsc::channel(cfg.queue.max(1));
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let chat = ChatFormat {
        template,
        loaded: loaded.clone(),
    };
    std::thread::Builder::new()
        .name("sluice-slm".into())
        .spawn(move || run(&loaded, &cfg, rx, &ready_tx))
        .map_err(|e| EngineError::Runtime(format!("starting the model thread: {e}")))?;
    ready_rx.recv().map_err(|_| EngineError::Stopped)??;
    Ok((tx, chat))
}

fn run(
    loaded: &Loaded,
    cfg: &WorkerConfig,
    mut rx: mpsc::Receiver<Job>,
    ready: &std::sync::mpsc::SyncSender<Result<(), EngineError>>,
) {
    let threads = i32::try_from(cfg.threads.max(1)).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(cfg.n_ctx))
        .with_n_batch(N_BATCH)
        .with_n_ubatch(N_UBATCH)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = match loaded.model.new_context(loaded.backend, params) {
        Ok(c) => c,
        Err(e) => {
            // The receiver waits in `spawn`; if it is gone there is no one to tell.
            drop(ready.send(Err(EngineError::Runtime(format!(
                "creating a context: {e}"
            )))));
            return;
        }
    };
    if let (Some(adapter), Some(scale)) = (&loaded.adapter, cfg.lora_scale) {
        let mut adapter = adapter.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = ctx.lora_adapter_set(&mut adapter, scale) {
            drop(ready.send(Err(EngineError::Runtime(format!(
                "applying the LoRA adapter: {e}"
            )))));
            return;
        }
    }
    if ready.send(Ok(())).is_err() {
        return;
    }
    // Tokens of the prompt prefix whose KV entries are valid at positions
    // 0..len; emptied whenever that is not known to hold.
    let mut cached = Vec::new();
    while let Some(job) = rx.blocking_recv() {
        let result = if job.queued.elapsed() >= job.req.timeout {
            Err(EngineError::Timeout(job.req.timeout))
        } else {
            // A panic inside the bindings must not take the shared model
            // thread down with it; the KV cache is cleared before every job.
            catch_unwind(AssertUnwindSafe(|| {
                generate(&loaded.model, &mut ctx, &job, &mut cached)
            }))
            .unwrap_or_else(|_| {
                error!("The language model panicked during generation.");
                cached.clear();
                Err(EngineError::Runtime("generation panicked".into()))
            })
        };
        if job.reply.send(result).is_err() {
            debug!("Generation result dropped: the requester went away.");
        }
    }
}

/// Decodes `tokens` at positions `start..`, in chunks of the context's batch
/// size, asking for logits of the last token only when `logits` is set.
fn decode_all(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    tokens: &[LlamaToken],
    start: i32,
    logits: bool,
    deadline: Instant,
) -> Result<(), String> {
    let n_batch = (ctx.n_batch() as usize).max(1);
    let mut pos = start;
    for (c, chunk) in tokens.chunks(n_batch).enumerate() {
        if Instant::now() >= deadline {
            return Err(String::new());
        }
        batch.clear();
        for (i, t) in chunk.iter().enumerate() {
            let last = logits && c * n_batch + i == tokens.len() - 1;
            batch.add(*t, pos, &[0], last).map_err(|e| e.to_string())?;
            pos += 1;
        }
        ctx.decode(batch).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn generate(
    model: &LlamaModel,
    ctx: &mut LlamaContext<'_>,
    job: &Job,
    cached: &mut Vec<LlamaToken>,
) -> Result<GenOutput, EngineError> {
    let req = &job.req;
    let deadline = job.queued + req.timeout;
    let timeout = || EngineError::Timeout(req.timeout);
    let decode_err = |e: &dyn fmt::Display| EngineError::Decode(e.to_string());

    let vocab = model.vocab();
    let split = if req.prompt.is_char_boundary(req.prefix) {
        req.prefix
    } else {
        0
    };
    let (head, tail) = req.prompt.split_at(split);
    let mut tokens = if head.is_empty() {
        Vec::new()
    } else {
        vocab.tokenize(head.as_bytes(), true, true)
    };
    let head_len = tokens.len();
    tokens.extend(vocab.tokenize(tail.as_bytes(), head.is_empty(), true));
    let n_ctx = ctx.n_ctx() as usize;
    if tokens.is_empty() {
        return Err(EngineError::Decode("the prompt is empty".into()));
    }
    if tokens.len() + req.max_tokens > n_ctx {
        return Err(EngineError::PromptTooLong {
            prompt: tokens.len(),
            max_tokens: req.max_tokens,
            n_ctx,
        });
    }
    let grammar = match &req.grammar {
        Some(g) => Some(
            LlamaSampler::grammar(model, g, "root")
                .map_err(|e| EngineError::Grammar(e.to_string()))?,
        ),
        None => None,
    };

    let started = Instant::now();
    let head_len = if head_len < tokens.len() { head_len } else { 0 };
    let warm = head_len > 0
        && cached.as_slice() == &tokens[..head_len]
        && ctx
            .clear_kv_cache_seq(Some(0), u32::try_from(head_len).ok(), None)
            .unwrap_or(false);
    if !warm {
        ctx.clear_kv_cache();
        cached.clear();
    }
    let n_batch = (ctx.n_batch() as usize).max(1);
    let mut batch = LlamaBatch::new(n_batch, 1);
    let fail = |e: String| {
        if e.is_empty() {
            timeout()
        } else {
            EngineError::Decode(e)
        }
    };
    if !warm && head_len > 0 {
        decode_all(ctx, &mut batch, &tokens[..head_len], 0, false, deadline).map_err(fail)?;
        cached.extend_from_slice(&tokens[..head_len]);
    }
    let head = i32::try_from(head_len).unwrap_or(0);
    decode_all(ctx, &mut batch, &tokens[head_len..], head, true, deadline).map_err(fail)?;
    let mut pos = i32::try_from(tokens.len()).unwrap_or(i32::MAX);
    let prompt_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut picker = Picker::new(req.sampling, grammar);
    let mut text = Vec::new();
    let mut generated = 0;
    let mut stop = Stop::MaxTokens;
    while generated < req.max_tokens {
        if Instant::now() >= deadline {
            return Err(timeout());
        }
        let Some(token) = picker.pick(ctx, batch.n_tokens() - 1) else {
            stop = Stop::DeadEnd;
            break;
        };
        if req.stop_at_end && vocab.is_eog(token) {
            stop = Stop::EndOfAnswer;
            break;
        }
        picker.accept(token);
        text.extend(vocab.token_to_piece(token, false, None));
        generated += 1;
        if generated == req.max_tokens {
            break;
        }
        batch.clear();
        batch
            .add(token, pos, &[0], true)
            .map_err(|e| decode_err(&e))?;
        pos += 1;
        ctx.decode(&mut batch).map_err(|e| decode_err(&e))?;
    }
    Ok(GenOutput {
        text: String::from_utf8_lossy(&text).trim().to_owned(),
        prompt_tokens: tokens.len(),
        generated_tokens: generated,
        prompt_seconds,
        generation_seconds: started.elapsed().as_secs_f64(),
        stop,
    })
}
