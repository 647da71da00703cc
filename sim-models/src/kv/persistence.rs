//! Persistence: what a node's disk holds, and so what survives a crash.
//!
//! The AOF is modelled by its meaning rather than its bytes: the disk keeps an *image*, a
//! dataset to which fsynced batches of effects have been applied (replaying an AOF from
//! the start gives exactly that image), the fsynced batches not yet applied to it, and
//! the batches written but not yet fsynced. A crash drops the unsynced batches; a restart
//! loads the image with every fsynced batch applied.
//!
//! A crash here is the host going away (power loss, VM killed), where only fsynced data
//! survives. That is the case in which the modes differ: after a mere process kill the OS
//! would still flush its page cache, and `everysec` would lose nothing.

use serde::{Deserialize, Serialize};
use sim_runtime::time::Instant;

use super::command::Command;
use super::state::{Dataset, Engine, EngineConfig};

/// Redis' persistence choices that matter for crashes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persistence {
    /// No AOF, no snapshots: a crash loses everything.
    None,
    /// `appendfsync always`: each write is fsynced before its reply is sent, so nothing
    /// acknowledged is lost.
    AofAlways,
    /// `appendfsync everysec`, Redis' recommended AOF setting: fsync once a second, so a
    /// crash loses the writes since the last fsync (up to one second of them). The
    /// default here because it is what production Redis with AOF runs.
    #[default]
    AofEverySec,
}

/// The effects of one top-level step (a command, a transaction, a script, a served
/// BLPOP): the unit the AOF writes and a replica applies, always whole.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Position in the primary's replication stream, from 1.
    pub offset: u64,
    /// True (global) time the primary committed it.
    pub at: Instant,
    pub commands: Vec<Command>,
}

/// How many durable batches the disk keeps unfolded before it folds them into its image.
const FOLD_AT: usize = 4096;

/// One node's disk. Lives outside the node, so it survives the node's death.
#[derive(Debug)]
pub struct Disk {
    mode: Persistence,
    /// The dataset replaying the durable batches gives, up to those still in `log`.
    image: Engine,
    /// Durable batches not yet applied to `image`, oldest first. Applying waits until the
    /// image is read (a restart loads it) or the log reaches `FOLD_AT` batches, as a real
    /// AOF is rewritten only now and then: a node that never restarts would otherwise run
    /// each of its writes twice. Applied later, the batches give the same image, since
    /// applying effects depends on nothing but the image and the effects.
    log: Vec<Batch>,
    unsynced: Vec<Batch>,
    /// Offset of the last durable batch (for traces).
    synced_offset: u64,
}

impl Disk {
    pub fn new(mode: Persistence) -> Self {
        Disk {
            mode,
            image: Engine::new(EngineConfig::default()),
            log: Vec::new(),
            unsynced: Vec::new(),
            synced_offset: 0,
        }
    }

    pub fn mode(&self) -> Persistence {
        self.mode
    }

    /// Writes a batch as the mode prescribes. Returns true when it awaits an fsync.
    pub fn write(&mut self, batch: Batch) -> bool {
        match self.mode {
            Persistence::None => false,
            Persistence::AofAlways => {
                self.make_durable(batch);
                false
            }
            Persistence::AofEverySec => {
                self.unsynced.push(batch);
                true
            }
        }
    }

    fn make_durable(&mut self, batch: Batch) {
        self.synced_offset = batch.offset;
        self.log.push(batch);
        if self.log.len() >= FOLD_AT {
            self.fold();
        }
    }

    /// Applies the logged batches to the image.
    fn fold(&mut self) {
        for b in std::mem::take(&mut self.log) {
            for c in &b.commands {
                self.image.apply(c);
            }
        }
    }

    /// Makes every written batch durable; returns how many there were.
    pub fn fsync(&mut self) -> usize {
        let pending = std::mem::take(&mut self.unsynced);
        let n = pending.len();
        for b in pending {
            self.make_durable(b);
        }
        n
    }

    /// The host died: what was not fsynced is gone. Returns how many batches were lost.
    pub fn crash(&mut self) -> usize {
        std::mem::take(&mut self.unsynced).len()
    }

    /// Replaces the contents (a replica's full sync writes a fresh file).
    pub fn replace(&mut self, data: Dataset, offset: u64) {
        self.unsynced.clear();
        if self.mode != Persistence::None {
            self.log.clear();
            self.image = Engine::with_dataset(EngineConfig::default(), data);
            self.synced_offset = offset;
        }
    }

    /// What a restarting node loads.
    pub fn load(&mut self) -> Dataset {
        self.fold();
        self.image.dataset().clone()
    }

    pub fn synced_offset(&self) -> u64 {
        self.synced_offset
    }

    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(offset: u64) -> Batch {
        Batch {
            offset,
            at: Instant::START,
            commands: vec![Command::Incr { key: "n".into() }],
        }
    }

    /// Deferring the replay changes nothing a load can see: past the fold threshold and
    /// between folds, the image holds every durable batch and nothing else.
    #[test]
    fn a_load_sees_every_durable_batch_however_the_log_was_folded() {
        let total = FOLD_AT as u64 * 2 + 3;
        for mode in [Persistence::AofAlways, Persistence::AofEverySec] {
            let mut disk = Disk::new(mode);
            for i in 1..=total {
                disk.write(incr(i));
                if i % 100 == 0 {
                    disk.fsync();
                }
            }
            assert!(disk.log.len() < FOLD_AT, "{mode:?}: the log was folded");
            let durable = if mode == Persistence::AofAlways {
                total
            } else {
                total / 100 * 100
            };
            let n = |d: &Dataset| d.strings(Instant::START).get("n").cloned();
            assert_eq!(n(&disk.load()), Some(durable.to_string()), "{mode:?}");
            assert_eq!(disk.synced_offset(), durable, "{mode:?}");
            disk.crash();
            assert_eq!(n(&disk.load()), Some(durable.to_string()), "{mode:?}");
        }
    }
}
