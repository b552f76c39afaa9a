//! Files this crate writes for the user (workflows, Flux manifests, image layouts) are replaced
//! whole or not at all: written beside, then renamed over. Which files to write is the
//! callers' business. A new file gets the mode the umask leaves of 0666, like any file an
//! editor or `git checkout` creates; a rewritten file keeps the mode it had.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::error::Error;

/// Held (shared) by every `write_whole`, so that a run stopped at its deadline stops between
/// writes, never leaving a temporary file behind.
static WRITES: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Waits for the files being written to be in place and holds off any other write for as long
/// as the guard lives: for a run about to exit (`deadline`).
pub fn hold_writes() -> std::sync::RwLockWriteGuard<'static, ()> {
    WRITES.write().unwrap_or_else(|e| e.into_inner())
}

/// Replaces `path` with `bytes`; on failure the old file is untouched and no partial file is
/// left behind. Parent folders are created. The temporary file has a unique name and is
/// created exclusively in the target folder, so a planted file or symlink is never written
/// through. The file ends up with the mode of the regular file it replaces, or else
/// `0666` less the umask.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let _writing = WRITES.read().unwrap_or_else(|e| e.into_inner());
    let error = |source| Error::Write {
        what: path.display().to_string(),
        source,
    };
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(error)?;
            dir
        }
        None => Path::new("."),
    };
    let mut prefix = path.file_name().unwrap_or_default().to_os_string();
    prefix.push(".");
    // `open(2)` takes the umask off the requested mode, which is how a created file honours it.
    let mut temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(error)?;
    let existing = std::fs::symlink_metadata(path)
        .ok()
        .filter(|metadata| metadata.is_file());
    if let Some(existing) = existing {
        let mode = existing.permissions().mode() & 0o7777;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(error)?;
    }
    temporary.write_all(bytes).map_err(error)?;
    // On failure the temporary file is removed when dropped.
    temporary.persist(path).map_err(|e| error(e.error))?;
    Ok(())
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
    fn a_failed_write_keeps_what_was_there_and_leaves_nothing_beside() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should go: the rename over it fails.
        let path = dir.path().join("file.yml");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"old").unwrap();
        assert!(write_whole(&path, b"new").is_err());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.yml"]);
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_file_gets_0666_less_the_umask_and_a_rewrite_keeps_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        // The umask as the standard library's own file creation (mode 0666) sees it.
        let umask = {
            let probe = dir.path().join("probe");
            std::fs::File::create(&probe).unwrap();
            0o666 & !mode_of(&probe)
        };
        let path = dir.path().join("new.yml");
        write_whole(&path, b"one").unwrap();
        assert_eq!(mode_of(&path), 0o666 & !umask);

        let kept = dir.path().join("kept.yml");
        std::fs::write(&kept, b"old").unwrap();
        for mode in [0o644, 0o600, 0o755, 0o640] {
            std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(mode)).unwrap();
            write_whole(&kept, b"new").unwrap();
            assert_eq!(mode_of(&kept), mode, "rewrite of a {mode:o} file");
            assert_eq!(std::fs::read(&kept).unwrap(), b"new");
        }
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = dir.path().join("file.yml");
        // The name an older version used for its temporary file, planted as a symlink.
        std::os::unix::fs::symlink(&victim, dir.path().join("file.yml.partial")).unwrap();
        write_whole(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
