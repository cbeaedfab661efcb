//! Files that hold secrets (the generated pepper, the bootstrapped admin key): where they may
//! live. A directory another user can write to, or that another user owns, lets that user
//! plant or swap the file, and so choose the pepper or read the key (review finding 5).

use std::path::Path;

use crate::error::AppError;

/// Creates `path` as a new file that only its owner can read and write (0600): an existing
/// file is an `AlreadyExists` error, never opened or truncated.
///
/// # Errors
/// What creating the file gives.
pub(crate) fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Refuses `file` (named `what` in the error) when its directory is writable by group or
/// others, or owned by a user other than this process's or root.
///
/// # Errors
/// `Config` naming the directory and what to do; `Io` when it cannot be read.
pub(crate) fn refuse_open_directory(file: &Path, what: &str) -> Result<(), AppError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let meta = std::fs::metadata(dir)
            .map_err(|e| AppError::Io(format!("cannot read directory {}: {e}", dir.display())))?;
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(AppError::config(format!(
                "{what} {} is in a directory other users can write to (mode {:o}): keep it in a \
                 directory only you can write to",
                file.display(),
                mode & 0o777
            )));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(AppError::config(format!(
                "{what} {} is in a directory owned by another user (uid {}): keep it in a \
                 directory you or root own",
                file.display(),
                meta.uid()
            )));
        }
    }
    Ok(())
}
