//! Process-wide registry: one llama.cpp backend, one loaded model per file
//! and one model thread per (file, decode setting), shared by every pipeline
//! that names them and released when the last user goes away.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::{LogOptions, send_logs_to_tracing};

use super::worker::{self, WorkerConfig};
use super::{Engine, EngineError, ModelInfo, check_gguf_magic};

/// What makes two engines interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineKey {
    /// Model file.
    pub path: PathBuf,
    /// Decode threads.
    pub threads: usize,
    /// Context size in tokens.
    pub n_ctx: u32,
    /// Jobs that may wait for the model thread.
    pub queue: usize,
    /// Chat template replacing the GGUF's own (a llama.cpp built-in name).
    pub chat_template: Option<String>,
}

/// A loaded model and the backend it needs.
pub(crate) struct Loaded {
    pub(crate) model: LlamaModel,
    pub(crate) backend: &'static LlamaBackend,
}

#[derive(Default)]
struct Registry {
    models: HashMap<PathBuf, Weak<Loaded>>,
    engines: HashMap<EngineKey, Weak<Engine>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REG: OnceLock<Mutex<Registry>> = OnceLock::new();
    // A panic while holding the lock leaves only maps of weak handles behind,
    // which stay valid.
    REG.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor at load; route it to `tracing`
            // (debug level) instead of stderr.
            send_logs_to_tracing(LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Runtime(e.clone()))
}

fn canonical(path: &Path) -> Result<PathBuf, EngineError> {
    check_gguf_magic(path)?;
    path.canonicalize().map_err(|e| EngineError::Load {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Loads only the vocabulary and metadata of `path`: proves the file is a
/// GGUF llama.cpp can read, in a fraction of a full load, and that
/// `chat_template` (when set) is one llama.cpp can apply.
pub fn probe_model(path: &Path, chat_template: Option<&str>) -> Result<(), EngineError> {
    let path = canonical(path)?;
    let backend = backend()?;
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model =
        LlamaModel::load_from_file(backend, &path, &params).map_err(|e| EngineError::Load {
            path,
            reason: e.to_string(),
        })?;
    if let Some(name) = chat_template {
        worker::named_template(&model, name)?;
    }
    Ok(())
}

/// The model, loaded once per file.
fn model(path: &Path) -> Result<(Arc<Loaded>, f64), EngineError> {
    if let Some(m) = registry().models.get(path).and_then(Weak::upgrade) {
        return Ok((m, 0.0));
    }
    let backend = backend()?;
    let started = Instant::now();
    // Loading happens outside the registry lock: other models stay reachable
    // while a large file is read. Two first users racing load it twice and the
    // second copy is dropped.
    let model =
        LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).map_err(|e| {
            EngineError::Load {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
    let load_seconds = started.elapsed().as_secs_f64();
    let mut reg = registry();
    if let Some(m) = reg.models.get(path).and_then(Weak::upgrade) {
        return Ok((m, 0.0));
    }
    let loaded = Arc::new(Loaded { model, backend });
    reg.models.retain(|_, w| w.strong_count() > 0);
    reg.models
        .insert(path.to_path_buf(), Arc::downgrade(&loaded));
    Ok((loaded, load_seconds))
}

/// The shared engine for `path` with these settings, starting its thread
/// (and loading the model) on first use. `chat_template` names a llama.cpp
/// built-in template to use instead of the GGUF's own.
pub fn engine(
    path: &Path,
    threads: usize,
    n_ctx: u32,
    queue: usize,
    chat_template: Option<&str>,
) -> Result<Arc<Engine>, EngineError> {
    let key = EngineKey {
        path: canonical(path)?,
        threads,
        n_ctx,
        queue,
        chat_template: chat_template.map(str::to_owned),
    };
    if let Some(e) = registry().engines.get(&key).and_then(Weak::upgrade) {
        return Ok(e);
    }
    let (loaded, load_seconds) = model(&key.path)?;
    let name = key
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cfg = WorkerConfig {
        threads,
        n_ctx,
        queue,
    };
    let template = match chat_template {
        Some(name) => Some(worker::named_template(&loaded.model, name)?),
        None => loaded.model.chat_template(None).ok(),
    };
    let (tx, chat) = worker::spawn(loaded, cfg, template)?;
    let info = ModelInfo {
        path: key.path.clone(),
        name,
        load_seconds,
        has_chat_template: chat.uses_model_template(),
    };
    let engine = Arc::new(Engine { tx, info, chat });
    let mut reg = registry();
    if let Some(e) = reg.engines.get(&key).and_then(Weak::upgrade) {
        return Ok(e);
    }
    reg.engines.retain(|_, w| w.strong_count() > 0);
    reg.engines.insert(key, Arc::downgrade(&engine));
    Ok(engine)
}
