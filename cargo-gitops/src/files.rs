//! Files this crate writes for the user (workflows, Flux manifests, image layouts) are replaced
//! whole or not at all: written beside, then renamed over. Which files to write is the
//! callers' business.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Replaces `path` with `bytes`; on failure the old file is untouched and no partial file is
/// left behind. Parent folders are created.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let error = |source| Error::Write {
        what: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    let temporary: PathBuf = path.with_file_name(name);
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|source| {
            let _ = std::fs::remove_file(&temporary);
            error(source)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_nothing_beside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.yml");
        write_whole(&path, b"one").unwrap();
        write_whole(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.yml"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file.yml");
        write_whole(&path, b"old").unwrap();
        // A folder where the temporary file would go makes the write fail.
        std::fs::create_dir(dir.path().join("file.yml.partial")).unwrap();
        assert!(write_whole(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
