//! Image files as frames: a directory or a `*`/`?` pattern in the file name,
//! in name order, with event times from that order or from the names.

use std::path::{Path, PathBuf};

use sluice_core::FrameEncoding;

/// The encoding of an image file, from its extension.
pub fn encoding_of(path: &Path) -> Option<FrameEncoding> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => Some(FrameEncoding::Jpeg),
        "png" => Some(FrameEncoding::Png),
        _ => None,
    }
}

/// Whether `name` matches `pattern` (`*` any run, `?` one character).
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The JPEG and PNG files `spec` names, sorted by file name: every image in
/// a directory, or those whose name matches the pattern in the last
/// component (`frames/cam1-*.jpg`).
pub fn list(spec: &str) -> Result<Vec<PathBuf>, String> {
    let path = Path::new(spec);
    let (dir, pattern) = if path.is_dir() {
        (path.to_path_buf(), "*".to_owned())
    } else {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.contains(['*', '?']) {
            return if path.is_file() {
                Ok(vec![path.to_path_buf()])
            } else {
                Err(format!("`{spec}` is neither a directory nor an image file"))
            };
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (dir.to_path_buf(), name.to_owned())
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && encoding_of(p).is_some())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wildcard(&pattern, n))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .jpg, .jpeg or .png file matches `{spec}`"));
    }
    Ok(files)
}

/// The event time a file name carries: its last run of digits, read as
/// milliseconds since the Unix epoch when it has 13 digits or more, else as
/// seconds (`cam1-1700000000123.jpg`, `1700000000.png`).
pub fn time_from_name(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    let digits: String = stem
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .to_owned();
    let value: i64 = digits.parse().ok()?;
    if digits.len() >= 13 {
        Some(value)
    } else {
        value.checked_mul(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard("cam1-*.jpg", "cam1-0001.jpg"));
        assert!(wildcard("*", "x.png"));
        assert!(wildcard("f??.png", "f01.png"));
        assert!(!wildcard("cam1-*.jpg", "cam2-0001.jpg"));
        assert!(!wildcard("*.jpg", "a.jpeg"));
    }

    #[test]
    fn reads_times_from_names_in_ms_or_s() {
        assert_eq!(
            time_from_name(Path::new("cam-1700000000123.jpg")),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            time_from_name(Path::new("d/1700000000.png")),
            Some(1_700_000_000_000)
        );
        assert_eq!(time_from_name(Path::new("still.jpg")), None);
    }

    #[test]
    fn lists_images_of_a_directory_or_pattern_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b-2.jpg", "a-1.png", "b-1.jpg", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let all = list(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(names(all), ["a-1.png", "b-1.jpg", "b-2.jpg"]);
        let b = list(dir.path().join("b-*.jpg").to_str().unwrap()).unwrap();
        assert_eq!(names(b), ["b-1.jpg", "b-2.jpg"]);
        assert!(
            list(dir.path().join("c-*.jpg").to_str().unwrap())
                .unwrap_err()
                .contains("no .jpg")
        );
    }
}
