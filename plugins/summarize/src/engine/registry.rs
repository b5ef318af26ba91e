//! Process-wide registry: one llama.cpp backend, one loaded model per
//! (file, LoRA adapter) and one model thread per (model, decode setting),
//! shared by every pipeline that names them and released when the last user
//! goes away.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::{LogOptions, send_logs_to_tracing};

use super::worker::{self, WorkerConfig};
use super::{Engine, EngineError, ModelInfo, check_gguf_magic};

/// Which model to run, as configured.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec<'a> {
    /// GGUF model file.
    pub path: &'a Path,
    /// A LoRA adapter (GGUF) applied on top of the model.
    pub lora: Option<LoraSpec<'a>>,
    /// Chat template replacing the GGUF's own (a llama.cpp built-in name).
    pub chat_template: Option<&'a str>,
}

/// A LoRA adapter and how strongly it is applied.
#[derive(Debug, Clone, Copy)]
pub struct LoraSpec<'a> {
    /// GGUF adapter file (`general.type = adapter`).
    pub path: &'a Path,
    /// Multiplier of the adapter's update; 1 applies it as trained.
    pub scale: f32,
}

/// Where a model comes from: the file and the adapter loaded onto it.
type ModelKey = (PathBuf, Option<PathBuf>);

/// What makes two engines interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EngineKey {
    /// Model file.
    pub path: PathBuf,
    /// Adapter file and the bits of its scale.
    pub lora: Option<(PathBuf, u32)>,
    /// Decode threads.
    pub threads: usize,
    /// Context size in tokens.
    pub n_ctx: u32,
    /// Jobs that may wait for the model thread.
    pub queue: usize,
    /// Chat template replacing the GGUF's own (a llama.cpp built-in name).
    pub chat_template: Option<String>,
}

/// A loaded model, its adapter and the backend it needs.
pub(crate) struct Loaded {
    /// Applied to each context made from `model`; freed with the model.
    pub(crate) adapter: Option<Mutex<LlamaLoraAdapter>>,
    pub(crate) model: LlamaModel,
    pub(crate) backend: &'static LlamaBackend,
}

#[derive(Default)]
struct Registry {
    models: HashMap<ModelKey, Weak<Loaded>>,
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

fn canonical_adapter(path: &Path) -> Result<PathBuf, EngineError> {
    let err = |reason: String| EngineError::Adapter {
        path: path.to_path_buf(),
        reason,
    };
    match check_gguf_magic(path) {
        Ok(()) => {}
        Err(EngineError::Missing { .. }) => return Err(err("not found".into())),
        Err(EngineError::Load { reason, .. }) => return Err(err(reason)),
        Err(e) => return Err(e),
    }
    path.canonicalize().map_err(|e| err(e.to_string()))
}

/// Proves that `spec` can run without starting it: the model is a GGUF
/// llama.cpp can read (its vocabulary and metadata only, a fraction of a
/// full load), `chat_template` (when set) is one llama.cpp can apply, and
/// the adapter (when set) loads onto the model, which takes a full load.
pub fn probe_model(spec: &ModelSpec<'_>) -> Result<(), EngineError> {
    let path = canonical(spec.path)?;
    let backend = backend()?;
    let load_err = |reason: String| EngineError::Load {
        path: path.clone(),
        reason,
    };
    let model = match spec.lora {
        None => {
            let params = LlamaModelParams::default().with_vocab_only(true);
            LlamaModel::load_from_file(backend, &path, &params)
                .map_err(|e| load_err(e.to_string()))?
        }
        Some(lora) => {
            let lora = canonical_adapter(lora.path)?;
            // A model already running with this adapter proved it loads.
            if let Some(m) = registry()
                .models
                .get(&(path.clone(), Some(lora.clone())))
                .and_then(Weak::upgrade)
            {
                return match spec.chat_template {
                    Some(name) => worker::named_template(&m.model, name).map(drop),
                    None => Ok(()),
                };
            }
            let mut model =
                LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default())
                    .map_err(|e| load_err(e.to_string()))?;
            init_adapter(&mut model, &lora)?;
            model
        }
    };
    if let Some(name) = spec.chat_template {
        worker::named_template(&model, name)?;
    }
    Ok(())
}

fn init_adapter(model: &mut LlamaModel, path: &Path) -> Result<LlamaLoraAdapter, EngineError> {
    model
        .lora_adapter_init(path)
        .map_err(|e| EngineError::Adapter {
            path: path.to_path_buf(),
            reason: format!(
                "llama.cpp cannot load it onto the model ({e}): it must be a LoRA adapter GGUF \
             made for this base model (llama.cpp's debug log names the mismatch)"
            ),
        })
}

/// The model with its adapter, loaded once per (file, adapter).
fn model(key: &ModelKey) -> Result<(Arc<Loaded>, f64), EngineError> {
    if let Some(m) = registry().models.get(key).and_then(Weak::upgrade) {
        return Ok((m, 0.0));
    }
    let (path, lora) = key;
    let backend = backend()?;
    let started = Instant::now();
    // Loading happens outside the registry lock: other models stay reachable
    // while a large file is read. Two first users racing load it twice and the
    // second copy is dropped.
    let mut model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| EngineError::Load {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let adapter = match lora {
        Some(lora) => Some(Mutex::new(init_adapter(&mut model, lora)?)),
        None => None,
    };
    let load_seconds = started.elapsed().as_secs_f64();
    let mut reg = registry();
    if let Some(m) = reg.models.get(key).and_then(Weak::upgrade) {
        return Ok((m, 0.0));
    }
    let loaded = Arc::new(Loaded {
        adapter,
        model,
        backend,
    });
    reg.models.retain(|_, w| w.strong_count() > 0);
    reg.models.insert(key.clone(), Arc::downgrade(&loaded));
    Ok((loaded, load_seconds))
}

/// The shared engine for `spec` with these settings, starting its thread
/// (and loading the model) on first use.
pub fn engine(
    spec: &ModelSpec<'_>,
    threads: usize,
    n_ctx: u32,
    queue: usize,
) -> Result<Arc<Engine>, EngineError> {
    let lora = match spec.lora {
        Some(l) => Some((canonical_adapter(l.path)?, l.scale.to_bits())),
        None => None,
    };
    let key = EngineKey {
        path: canonical(spec.path)?,
        lora,
        threads,
        n_ctx,
        queue,
        chat_template: spec.chat_template.map(str::to_owned),
    };
    if let Some(e) = registry().engines.get(&key).and_then(Weak::upgrade) {
        return Ok(e);
    }
    let model_key = (key.path.clone(), key.lora.as_ref().map(|l| l.0.clone()));
    let (loaded, load_seconds) = model(&model_key)?;
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut name = file_name(&key.path);
    if let Some((lora, _)) = &key.lora {
        name = format!("{name}+{}", file_name(lora));
    }
    let cfg = WorkerConfig {
        threads,
        n_ctx,
        queue,
        lora_scale: spec.lora.map(|l| l.scale),
    };
    let template = match spec.chat_template {
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
