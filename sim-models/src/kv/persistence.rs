//! Persistence: what a node's disk holds, and so what survives a crash.
//!
//! The AOF is modelled by its meaning rather than its bytes: the disk keeps an *image*, a
//! dataset to which every fsynced batch of effects has been applied (replaying an AOF
//! from the start gives exactly that image), plus the batches written but not yet
//! fsynced. A crash drops the unsynced batches; a restart loads the image.
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

/// One node's disk. Lives outside the node, so it survives the node's death.
#[derive(Debug)]
pub struct Disk {
    mode: Persistence,
    image: Engine,
    unsynced: Vec<Batch>,
    /// Offset of the last batch in the image (for traces).
    synced_offset: u64,
}

impl Disk {
    pub fn new(mode: Persistence) -> Self {
        Disk {
            mode,
            image: Engine::new(EngineConfig::default()),
            unsynced: Vec::new(),
            synced_offset: 0,
        }
    }

    pub fn mode(&self) -> Persistence {
        self.mode
    }

    /// Writes a batch as the mode prescribes. Returns true when it awaits an fsync.
    pub fn write(&mut self, batch: &Batch) -> bool {
        match self.mode {
            Persistence::None => false,
            Persistence::AofAlways => {
                self.apply(batch);
                false
            }
            Persistence::AofEverySec => {
                self.unsynced.push(batch.clone());
                true
            }
        }
    }

    fn apply(&mut self, batch: &Batch) {
        for c in &batch.commands {
            self.image.apply(c);
        }
        self.synced_offset = batch.offset;
    }

    /// Makes every written batch durable; returns how many there were.
    pub fn fsync(&mut self) -> usize {
        let pending = std::mem::take(&mut self.unsynced);
        for b in &pending {
            self.apply(b);
        }
        pending.len()
    }

    /// The host died: what was not fsynced is gone. Returns how many batches were lost.
    pub fn crash(&mut self) -> usize {
        std::mem::take(&mut self.unsynced).len()
    }

    /// Replaces the contents (a replica's full sync writes a fresh file).
    pub fn replace(&mut self, data: Dataset, offset: u64) {
        self.unsynced.clear();
        if self.mode != Persistence::None {
            self.image = Engine::with_dataset(EngineConfig::default(), data);
            self.synced_offset = offset;
        }
    }

    /// What a restarting node loads.
    pub fn load(&self) -> Dataset {
        self.image.dataset().clone()
    }

    pub fn synced_offset(&self) -> u64 {
        self.synced_offset
    }

    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }
}
