//! [`ModelSource`]: a model file and the id the API names it by.

use std::path::{Path, PathBuf};

use crate::models::catalog::{self, ModelSpec, Quant};

/// The OpenAI model name that always means "the loaded model".
pub const OPENAI_ALIAS: &str = "whisper-1";

/// A model file to load, with its API id (`tiny.en-q5_1`, or the file stem for
/// files outside the catalog's naming).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSource {
    /// The id clients use.
    pub id: String,
    /// The file.
    pub path: PathBuf,
}

impl ModelSource {
    /// A catalog model in the artifact layout.
    pub fn from_catalog(spec: ModelSpec, artifacts_dir: &Path) -> Self {
        Self {
            id: spec.to_string(),
            path: spec.path(artifacts_dir),
        }
    }

    /// An explicit file: its id is the catalog id when the file name follows
    /// upstream's naming (`ggml-base.en-q5_1.bin` → `base.en-q5_1`), else the file stem.
    pub fn from_path(path: PathBuf) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = spec_of_file_name(&name).map_or_else(
            || {
                path.file_stem()
                    .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned())
            },
            |spec| spec.to_string(),
        );
        Self { id, path }
    }
}

/// The catalog entry whose upstream file name is `name`.
pub fn spec_of_file_name(name: &str) -> Option<ModelSpec> {
    catalog::models().iter().find_map(|model| {
        Quant::ALL
            .into_iter()
            .find(|&quant| model.file_name(quant) == name)
            .map(|quant| ModelSpec { model, quant })
    })
}

/// Every catalog model whose file exists in the artifact layout under `artifacts_dir`.
pub fn models_on_disk(artifacts_dir: &Path) -> Vec<ModelSource> {
    catalog::models()
        .iter()
        .flat_map(|model| {
            Quant::ALL
                .into_iter()
                .map(move |quant| ModelSpec { model, quant })
        })
        .map(|spec| ModelSource::from_catalog(spec, artifacts_dir))
        .filter(|source| source.path.is_file())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_catalog() {
        let source = ModelSource::from_path("/m/ggml-tiny.en-q5_1.bin".into());
        assert_eq!(source.id, "tiny.en-q5_1");
        assert_eq!(
            ModelSource::from_path("/m/ggml-base.bin".into()).id,
            "base-f16"
        );
        assert_eq!(ModelSource::from_path("/m/custom.bin".into()).id, "custom");
        let spec: ModelSpec = "small".parse().unwrap();
        let source = ModelSource::from_catalog(spec, Path::new("/a"));
        assert_eq!(source.id, "small-q8_0");
        assert_eq!(
            source.path,
            Path::new("/a/whisper_small_xeon/ggml-small-q8_0.bin")
        );
    }

    #[test]
    fn lists_present_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let wanted: Vec<ModelSpec> = vec!["tiny.en".parse().unwrap(), "base-f16".parse().unwrap()];
        for spec in &wanted {
            let path = spec.path(dir.path());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"x").unwrap();
        }
        let ids: Vec<String> = models_on_disk(dir.path())
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["tiny.en-q8_0", "base-f16"]);
    }
}
