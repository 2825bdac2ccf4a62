//! SIGINT and SIGTERM (a Ctrl-C, a cancelled CI job, a stopped container).
//!
//! During an apply or destroy, the first signal starts nothing new and gives running steps a bounded
//! time; the second abandons them at once. Either way state is saved and the lock released before the
//! process exits with 128 + the signal's number (130, 143). Commands that change nothing exit at once.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub(crate) struct Signals {
    pub stop: watch::Receiver<bool>,
    pub abort: watch::Receiver<bool>,
    received: Arc<AtomicI32>,
}

impl Signals {
    /// Listens from now on. `saves_state`: the command must get a chance to save before exiting. `serving`:
    /// `serve` runs until a signal, then stops what it started.
    pub fn install(saves_state: bool, serving: bool) -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let (stop_tx, stop) = watch::channel(false);
        let (abort_tx, abort) = watch::channel(false);
        let received = Arc::new(AtomicI32::new(0));
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let seen = received.clone();
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let (name, number) = tokio::select! {
                    Some(()) = int.recv() => ("interrupt", 2),
                    Some(()) = term.recv() => ("terminate", 15),
                    else => return,
                };
                count += 1;
                seen.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst).ok();
                if !saves_state {
                    std::process::exit(128 + number);
                }
                if serving {
                    eprintln!("\n{name} signal: stopping every process serve started...");
                    let _ = stop_tx.send(true);
                } else if count == 1 {
                    eprintln!("\n{name} signal: starting nothing new; running steps get a moment to finish, then state is saved. Signal again to stop them now.");
                    let _ = stop_tx.send(true);
                } else {
                    eprintln!("\n{name} signal again: abandoning running steps, saving state...");
                    let _ = abort_tx.send(true);
                }
            }
        });
        Ok(Signals { stop, abort, received })
    }

    /// 128 + the first signal's number, once one was received.
    pub fn exit_code(&self) -> Option<u8> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            n => u8::try_from(128 + n).ok(),
        }
    }
}
