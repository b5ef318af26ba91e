//! The anomaly transform's fitted-model file (`sluice-pca` and
//! `sluice-pca-keyed`): arbitrary bytes as the file, loaded with
//! `ModelFile::load`.
//!
//! Invariants: a file that loads scores a row without panicking, and what
//! it saves loads again with the same shape.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_plugin_anomaly::anomaly::pca::{KeyedModels, ModelFile, PcaModel};
use tempfile::TempDir;

fn dir() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fn score(model: &PcaModel) {
    let d = model.features().len();
    for row in [model.mean().to_vec(), vec![0.0; d], vec![1e300; d]] {
        let s = model.score(&row);
        let mut smoother = model.smoother();
        std::hint::black_box(smoother.push(s.ratio));
    }
    std::hint::black_box((model.explained_variance(), model.constant_features()));
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let path = dir.join("model.json");
    std::fs::write(&path, data).expect("writing the input file");
    let again = dir.join("saved.json");
    match ModelFile::load(&path) {
        Ok(ModelFile::Single(model)) => {
            score(&model);
            model.save(&again).expect("saving a loaded model");
            let reloaded = PcaModel::load(&again).expect("a saved model loads");
            assert_eq!(reloaded.features(), model.features());
            assert_eq!(reloaded.components(), model.components());
        }
        Ok(ModelFile::Keyed(keyed)) => {
            keyed.models.values().for_each(score);
            keyed.save(&again).expect("saving loaded models");
            let reloaded = KeyedModels::load(&again).expect("saved models load");
            assert_eq!(reloaded.key, keyed.key);
            assert!(reloaded.models.keys().eq(keyed.models.keys()));
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});
