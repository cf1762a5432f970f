//! How much a directory holds on disk, for the benches that watch the store grow.

use std::path::Path;

/// The apparent size of every file under `path`, in bytes (0 for what cannot be read).
pub fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
