//! State in a local file: written atomically (temp file, fsync, rename, fsync of the directory) with the
//! previous copy kept as `<file>.backup`; locked with an OS file lock, which the kernel releases when the
//! holder dies, so a crashed run never leaves a lock that needs a manual unlock.
//!
//! During a run each step appends one fsynced line to `<file>.journal` instead of rewriting the whole
//! document (which made an apply O(n^2) in bytes). The document is written at the end of the run and when the
//! journal grows long; a run killed in between leaves document + journal, which readers see together and the
//! next run that takes the lock folds into the document.

use crate::error::{Error, Result};
use crate::state::{Backend, LockInfo, State};
use async_trait::async_trait;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct LocalBackend {
    path: PathBuf,
    held: Mutex<Option<File>>,
    /// The journal, open for appending once this run has appended to it.
    journal: Mutex<Option<File>>,
}

impl LocalBackend {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), held: Mutex::new(None), journal: Mutex::new(None) }
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

    /// The journal of the run in progress (or of a run that was killed): one record per line.
    pub fn journal_path(&self) -> PathBuf {
        with_suffix(&self.path, ".journal")
    }

    /// The document with the journal applied, and how many records that took (`None`: no document).
    fn recovered(&self) -> Result<Option<(Vec<u8>, usize)>> {
        let journal_path = self.journal_path();
        // A reader without the lock can race a compaction (new document, new journal): it sees a gap in
        // serials and reads both again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let doc = match fs::read(&self.path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if fs::metadata(&journal_path).map(|m| m.len() > 0).unwrap_or(false) {
                        return Err(Error::state(
                            journal_path.display().to_string(),
                            format!(
                                "exists but the state file {} does not; remove the journal if the state was removed on purpose",
                                self.path.display()
                            ),
                        ));
                    }
                    return Ok(None);
                }
                Err(e) => return Err(Error::io(format!("reading {}", self.path.display()), e)),
            };
            let journal = match fs::read(&journal_path) {
                Ok(j) if !j.iter().all(u8::is_ascii_whitespace) => j,
                Ok(_) => return Ok(Some((doc, 0))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some((doc, 0))),
                Err(e) => return Err(Error::io(format!("reading {}", journal_path.display()), e)),
            };
            let mut state = State::parse(&doc, &self.location())?;
            match state.replay(&journal, &journal_path.display().to_string()) {
                Ok(n) => return Ok(Some((state.to_bytes()?, n))),
                Err(_) if attempts < 5 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Folds a journal left by a killed run into the document. Called with the lock held.
    fn recover(&self) -> Result<()> {
        let journal_path = self.journal_path();
        if !journal_path.exists() {
            return Ok(());
        }
        if let Some((bytes, n)) = self.recovered()? {
            if n > 0 {
                eprintln!("note: recovered {n} step(s) of an interrupted run from {}", journal_path.display());
                write_atomic(&self.path, &bytes)?;
            }
        }
        self.drop_journal()
    }

    /// Closes and removes the journal: the document now holds everything in it.
    fn drop_journal(&self) -> Result<()> {
        if let Ok(mut j) = self.journal.lock() {
            *j = None;
        }
        let journal_path = self.journal_path();
        match fs::remove_file(&journal_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!("removing {}", journal_path.display()), e)),
            _ => Ok(()),
        }
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

    /// The document with any journal applied: what a run killed mid-way had recorded.
    async fn read(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.recovered()?.map(|(bytes, _)| bytes))
    }

    /// The whole document; the journal (all of it in the document now) goes.
    async fn write(&self, bytes: &[u8]) -> Result<()> {
        self.ensure_dir()?;
        write_atomic(&self.path, bytes)?;
        self.drop_journal()
    }

    fn has_journal(&self) -> bool {
        true
    }

    async fn append(&self, lines: &[u8]) -> Result<()> {
        let path = self.journal_path();
        let mut j = self.journal.lock().map_err(|_| Error::state(path.display().to_string(), "journal handle poisoned"))?;
        if j.is_none() {
            let f = private().create(true).append(true).open(&path).map_err(io("opening", &path))?;
            restrict(&path).map_err(io("restricting", &path))?;
            *j = Some(f);
        }
        // Into the page cache, in order; durable at the next fsync.
        match j.as_mut() {
            Some(f) => f.write_all(lines).map_err(io("appending to", &path)),
            None => Ok(()),
        }
    }

    async fn sync_journal(&self) -> Result<()> {
        let path = self.journal_path();
        let file = {
            let j = self.journal.lock().map_err(|_| Error::state(path.display().to_string(), "journal handle poisoned"))?;
            // No journal open: nothing appended, or a document write took it all since.
            match j.as_ref() {
                Some(f) => f.try_clone().map_err(io("opening", &path))?,
                None => return Ok(()),
            }
        };
        // fsync blocks for milliseconds: off the runtime's few worker threads, and without the handle's lock,
        // so appends go on meanwhile.
        let synced = tokio::task::spawn_blocking(move || file.sync_data()).await;
        match synced {
            Ok(r) => r.map_err(io("syncing", &path)),
            Err(e) => Err(Error::state(path.display().to_string(), format!("fsync did not finish: {e}"))),
        }
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
        // Whatever a killed run journaled becomes part of the document before this run reads it. On error the
        // handle drops here and the OS lock with it.
        self.recover()?;
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
        b.append(b"{}\n").await?;
        b.unlock(&info.id).await?;
        write_atomic(&dir.path().join("plan.json"), b"{}")?;
        for name in ["s.json", "s.json.backup", "s.json.lock", "s.json.journal", "plan.json"] {
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

    use crate::state::{Op, Record, ResourceState, Status};

    fn entry(id: &str) -> ResourceState {
        ResourceState {
            type_name: "mem_thing".into(),
            id: Some(id.into()),
            inputs: serde_json::json!({"name": id}),
            outputs: serde_json::Value::Null,
            dependencies: Default::default(),
            status: Status::Ready,
            protect: false,
            token: None,
            sensitive: Default::default(),
            provider: None,
        }
    }

    /// A state document at serial 1 and three journal lines (serials 2-4: put a, put b, remove a).
    async fn journaled(dir: &Path) -> anyhow::Result<(LocalBackend, State, Vec<Vec<u8>>)> {
        let b = LocalBackend::new(dir.join("s.json"));
        let mut doc = State::new("t");
        doc.serial = 1;
        b.write(&doc.to_bytes()?).await?;
        let ops = [
            Op::Put { address: "a".into(), resource: entry("a-1") },
            Op::Put { address: "b".into(), resource: entry("b-1") },
            Op::Remove { address: "a".into() },
        ];
        let lines = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Record { lineage: doc.lineage.clone(), serial: 2 + i as u64, ops: vec![op] }.to_line())
            .collect::<Result<Vec<_>>>()?;
        Ok((b, doc, lines))
    }

    async fn read_state(b: &LocalBackend) -> anyhow::Result<State> {
        let bytes = b.read().await?.ok_or_else(|| anyhow::anyhow!("no state"))?;
        Ok(State::parse(&bytes, "s.json")?)
    }

    #[tokio::test]
    async fn readers_see_the_journal_the_lock_folds_it_in_and_a_write_supersedes_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (b, _, lines) = journaled(dir.path()).await?;
        b.append(&lines[..2].concat()).await?;
        let seen = read_state(&b).await?;
        assert_eq!((seen.serial, seen.resources.keys().cloned().collect::<Vec<_>>()), (3, vec!["a".to_string(), "b".to_string()]));
        // The file users know is untouched until the journal is folded in.
        assert_eq!(State::parse(&fs::read(dir.path().join("s.json"))?, "s.json")?.serial, 1);
        b.append(&lines[2]).await?;
        // A run killed here: the next one takes the lock and the document holds it all.
        let next = LocalBackend::new(dir.path().join("s.json"));
        next.lock(&LockInfo::new("apply")).await?;
        assert!(!b.journal_path().exists());
        let folded = State::parse(&fs::read(dir.path().join("s.json"))?, "s.json")?;
        assert_eq!((folded.serial, folded.resources.keys().cloned().collect::<Vec<_>>()), (4, vec!["b".to_string()]));
        // Records the document already holds (a crash between writing it and removing the journal) are skipped.
        fs::write(b.journal_path(), lines.concat())?;
        assert_eq!(read_state(&next).await?, folded);
        next.write(&folded.to_bytes()?).await?;
        assert!(!b.journal_path().exists());
        Ok(())
    }

    #[tokio::test]
    async fn a_torn_last_line_is_ignored_and_a_damaged_middle_line_is_an_error_naming_file_and_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (b, _, lines) = journaled(dir.path()).await?;
        // Torn: the last write cut short, with or without what followed it on disk.
        for torn in [&lines[1][..lines[1].len() / 2], &[b'{', 0, 0, 0, b'\n'][..]] {
            fs::write(b.journal_path(), [&lines[0][..], torn].concat())?;
            let seen = read_state(&b).await?;
            assert_eq!((seen.serial, seen.resources.len()), (2, 1), "the whole line applies, the torn one is ignored");
        }
        b.lock(&LockInfo::new("apply")).await?;
        assert!(!b.journal_path().exists(), "the torn line is gone with the journal");
        b.unlock("").await?;

        // Damaged with a whole line after it: not a torn write.
        let (b, _, lines) = journaled(dir.path()).await?;
        let journal = [&lines[0][..], b"{\"lineage\": 12, garbage\n", &lines[2][..]].concat();
        fs::write(b.journal_path(), &journal)?;
        let err = b.read().await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("s.json.journal") && err.contains("line 2 is damaged"), "{err}");
        let err = b.lock(&LockInfo::new("apply")).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 2 is damaged"), "{err}");
        assert_eq!(fs::read(b.journal_path())?, journal, "left untouched");
        // A journal that does not continue the document (another lineage, or a gap) is refused too.
        fs::write(b.journal_path(), &lines[1])?;
        let err = b.read().await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("line 1 takes the state to serial 3 but the state is at 1"), "{err}");
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
