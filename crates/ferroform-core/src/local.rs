//! State in a local file: written atomically (temp file, fsync, rename, fsync of the directory) with the
//! previous copy kept as `<file>.backup`; locked with an OS file lock, which the kernel releases when the
//! holder dies, so a crashed run never leaves a lock that needs a manual unlock.

use crate::error::{Error, Result};
use crate::state::{Backend, LockInfo};
use async_trait::async_trait;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct LocalBackend {
    path: PathBuf,
    held: Mutex<Option<File>>,
}

impl LocalBackend {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), held: Mutex::new(None) }
    }

    /// `.ferroform/<stack>.state.json` in the working directory.
    pub fn default_for(stack: &str) -> Self {
        Self::new(Path::new(".ferroform").join(format!("{stack}.state.json")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        with_suffix(&self.path, ".lock")
    }

    fn ensure_dir(&self) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(())
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{context} {}", path.display());
    move |e| Error::io(context, e)
}

/// Open options for files only their owner may read (0600 whatever the umask): state, its backup, the lock
/// and saved plans hold secrets.
fn private() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}

/// Atomic replace: a reader (or a crash) sees the old file or the new one, never a partial one. The file
/// is created 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A temp name of its own per call: two threads writing the same file must not rename each other's away.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = with_suffix(path, &format!(".tmp.{}.{n}", std::process::id()));
    {
        let mut f = private().write(true).create_new(true).open(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(bytes).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
    }
    if path.exists() {
        // Keep the previous copy; a hard link is atomic and leaves `path` in place until the rename.
        let backup = with_suffix(path, ".backup");
        let _ = fs::remove_file(&backup);
        fs::hard_link(path, &backup).or_else(|_| fs::copy(path, &backup).map(|_| ())).map_err(io("backing up", path))?;
        // A backup of a file written before files were made private: it holds the same secrets. (Gone
        // already: another writer of the same file replaced it, and restricted its own.)
        match restrict(&backup) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(format!("restricting {}", backup.display()), e)),
            _ => {}
        }
    }
    fs::rename(&tmp, path).map_err(io("renaming into", path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[async_trait]
impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn read(&self) -> Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", self.path.display()), e)),
        }
    }

    async fn write(&self, bytes: &[u8]) -> Result<()> {
        self.ensure_dir()?;
        write_atomic(&self.path, bytes)
    }

    async fn lock(&self, info: &LockInfo) -> Result<()> {
        self.ensure_dir()?;
        let lock_path = self.lock_path();
        let mut file = private().read(true).write(true).create(true).truncate(false).open(&lock_path).map_err(io("opening", &lock_path))?;
        restrict(&lock_path).map_err(io("restricting", &lock_path))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder =
                    serde_json::from_str::<LockInfo>(&previous).map(|h| h.describe()).unwrap_or_else(|_| "another process".to_string());
                let lock_id = serde_json::from_str::<LockInfo>(&previous).map(|h| h.id).unwrap_or_default();
                return Err(Error::Locked { location: self.location(), holder, lock_id });
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", lock_path.display()), e)),
        }
        // We hold the OS lock. Content left behind means its writer died holding it (the kernel let go).
        if let Ok(stale) = serde_json::from_str::<LockInfo>(&previous) {
            eprintln!("note: taking over the state lock left by a run that is gone: {}", stale.describe());
        }
        let body = serde_json::to_vec(info).map_err(|e| Error::state(self.location(), e.to_string()))?;
        file.set_len(0).map_err(io("truncating", &lock_path))?;
        file.seek(SeekFrom::Start(0)).map_err(io("seeking", &lock_path))?;
        file.write_all(&body).map_err(io("writing", &lock_path))?;
        file.sync_all().map_err(io("syncing", &lock_path))?;
        if let Ok(mut held) = self.held.lock() {
            *held = Some(file);
        }
        Ok(())
    }

    async fn unlock(&self, _id: &str) -> Result<()> {
        let file = self.held.lock().ok().and_then(|mut h| h.take());
        if let Some(file) = file {
            // Empty content marks a clean release; the OS lock goes with the handle.
            let _ = file.set_len(0);
            let _ = file.sync_all();
            let _ = file.unlock();
        }
        Ok(())
    }

    async fn force_unlock(&self, id: &str) -> Result<()> {
        let lock_path = self.lock_path();
        let content = fs::read_to_string(&lock_path).unwrap_or_default();
        match serde_json::from_str::<LockInfo>(&content) {
            Ok(info) if info.id == id => {
                // A new inode: the old holder (if alive) keeps a lock on a file nobody else opens.
                fs::remove_file(&lock_path).map_err(io("removing", &lock_path))?;
                Ok(())
            }
            Ok(info) => Err(Error::Usage(format!("the lock is held by {}, not lock id {id}", info.describe()))),
            Err(_) => Err(Error::Usage(format!("{} is not locked", self.location()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn state_its_backup_the_lock_and_plans_are_private() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("s.json");
        // A state written before files were private, world-readable.
        fs::write(&path, b"{}")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        fs::write(dir.path().join("s.json.lock"), b"")?;
        fs::set_permissions(dir.path().join("s.json.lock"), fs::Permissions::from_mode(0o644))?;
        let b = LocalBackend::new(&path);
        let info = LockInfo::new("apply");
        b.lock(&info).await?;
        b.write(b"{\"a\": 1}").await?;
        b.unlock(&info.id).await?;
        write_atomic(&dir.path().join("plan.json"), b"{}")?;
        for name in ["s.json", "s.json.backup", "s.json.lock", "plan.json"] {
            let mode = fs::metadata(dir.path().join(name))?.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn second_locker_is_refused_with_the_holder_named() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = LocalBackend::new(dir.path().join("s.json"));
        let b = LocalBackend::new(dir.path().join("s.json"));
        let info = LockInfo::new("apply");
        a.lock(&info).await?;
        let err = b.lock(&LockInfo::new("apply")).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("locked by") && err.contains(&info.id), "{err}");
        a.unlock(&info.id).await?;
        b.lock(&LockInfo::new("apply")).await?;
        Ok(())
    }

    #[tokio::test]
    async fn write_keeps_a_backup() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let be = LocalBackend::new(dir.path().join("s.json"));
        be.write(b"one").await?;
        be.write(b"two").await?;
        assert_eq!(fs::read(dir.path().join("s.json"))?, b"two");
        assert_eq!(fs::read(dir.path().join("s.json.backup"))?, b"one");
        Ok(())
    }

    #[test]
    fn threads_writing_the_same_file_at_once_all_succeed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("same.zip");
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || (0..20).all(|_| write_atomic(&path, &[i; 4096]).is_ok()))
            })
            .collect();
        assert!(writers.into_iter().all(|w| w.join().unwrap_or(false)));
        let bytes = fs::read(&path)?;
        assert!(bytes.len() == 4096 && bytes.iter().all(|b| *b == bytes[0]), "a whole write, never a mix");
        Ok(())
    }
}
