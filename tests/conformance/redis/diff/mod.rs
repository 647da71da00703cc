//! Differential conformance of the kv model against a real Redis 7: generate a command
//! sequence from a seed, run it on both, compare every reply, shrink what diverges.
//!
//! Shared by the `conformance_redis` test (1,000 sequences per run) and the
//! `redis_conformance` example (as many as asked), which includes this directory by path.
//!
//! - [`gen`]: the seeded generator of sequences.
//! - [`model`]: runs a sequence on the model, in a simulation, through `KvClient`.
//! - [`real`]: runs it on the real server over one connection.
//! - [`compare`]: which replies count as the same (TTL tolerance, set order).
//! - [`shrink`]: the smallest sub-sequence that still diverges.

#![allow(dead_code)]

pub mod compare;
pub mod gen;
pub mod model;
pub mod real;
pub mod shrink;

use sim_models::kv::Reply;

use gen::Step;

/// Figures of a campaign.
#[derive(Debug, Default)]
pub struct Figures {
    pub sequences: usize,
    pub commands: usize,
    /// Commands whose two replies were the same.
    pub identical: usize,
    /// Commands whose replies differ as the kv module's docs say they do (counted apart,
    /// not as divergences).
    pub documented: usize,
    /// Sequences with at least one differing reply.
    pub diverging_sequences: usize,
}

impl Figures {
    pub fn identical_percent(&self) -> f64 {
        if self.commands == 0 {
            return 100.0;
        }
        100.0 * self.identical as f64 / self.commands as f64
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sequences, {} commands, {:.2} % identical, {} documented differences, {} diverging sequences",
            self.sequences,
            self.commands,
            self.identical_percent(),
            self.documented,
            self.diverging_sequences
        )
    }
}

/// One sequence's outcome on both sides.
pub struct Outcome {
    pub argvs: Vec<Vec<String>>,
    pub model: Vec<Reply>,
    pub real: Vec<Reply>,
    /// Index of each command whose replies differ.
    pub differing: Vec<usize>,
    /// Index of each command whose replies differ as documented.
    pub documented: Vec<usize>,
}

/// Runs `steps` on both sides, with the real clock read once for both.
pub fn run_both(conn: &mut real::RealRedis, steps: &[Step], model_seed: u64) -> Outcome {
    let unix_ms = real::unix_time_ms();
    let argvs = gen::render(steps, unix_ms);
    let real = conn.run(&argvs);
    let model = model::run(&argvs, unix_ms, model_seed).replies;
    let (differing, documented) = compare::differing(&argvs, &model, &real);
    Outcome {
        argvs,
        model,
        real,
        differing,
        documented,
    }
}

/// A diverging sequence, shrunk, as a redis-cli session with both sides' replies.
pub struct Divergence {
    pub seed: u64,
    pub outcome: Outcome,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sequence seed {:#x}, shrunk to {} commands (paste the commands into redis-cli after FLUSHALL):",
            self.seed,
            self.outcome.argvs.len()
        )?;
        for (i, argv) in self.outcome.argvs.iter().enumerate() {
            let mark = if self.outcome.differing.contains(&i) {
                "!="
            } else {
                "  "
            };
            writeln!(f, "  {mark} {}", gen::cli_line(argv))?;
            if self.outcome.differing.contains(&i) {
                writeln!(f, "       model: {}", self.outcome.model[i])?;
                writeln!(f, "       redis: {}", self.outcome.real[i])?;
            }
        }
        Ok(())
    }
}

/// Where SCAN and its kin take their cursor, `None` for other commands.
pub fn scan_cursor_at(argv: &[String]) -> Option<usize> {
    match argv.first()?.to_ascii_uppercase().as_str() {
        "SCAN" => Some(1),
        "HSCAN" | "SSCAN" | "ZSCAN" => Some(2),
        _ => None,
    }
}

/// A whole iteration of SCAN (or HSCAN...) from the first reply: `call` runs the next
/// calls. The result is `[cursor, every element returned]`, with cursor `0` once the
/// server said so; the suite compares what a full iteration returns, since the order and
/// the batches are the server's business (see `compare.rs`).
pub fn scan_to_end(
    argv: &[String],
    first: Reply,
    mut call: impl FnMut(&[String]) -> Reply,
) -> Reply {
    let Some(at) = scan_cursor_at(argv) else {
        return first;
    };
    let mut reply = first;
    let mut items = Vec::new();
    for _ in 0..10_000 {
        let Reply::Array(parts) = &reply else {
            return reply;
        };
        let [Reply::Bulk(cursor), Reply::Array(batch)] = parts.as_slice() else {
            return reply;
        };
        items.extend(batch.iter().cloned());
        if cursor == "0" {
            return Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]);
        }
        let mut next = argv.to_vec();
        next[at] = cursor.clone();
        reply = call(&next);
    }
    Reply::Error("SCAN did not end within 10,000 calls".into())
}

/// The seed of sequence `index` of a campaign: derived (SplitMix64), so neighbouring
/// sequences are unrelated.
pub fn sequence_seed(campaign_seed: u64, index: u64) -> u64 {
    let mut z = campaign_seed ^ index.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs `sequences` generated sequences; returns the figures and the shrunk divergences
/// (at most `keep` of them are shrunk and kept).
pub fn campaign(
    conn: &mut real::RealRedis,
    campaign_seed: u64,
    sequences: usize,
    keep: usize,
    mut progress: impl FnMut(&Figures),
) -> (Figures, Vec<Divergence>) {
    let mut figures = Figures::default();
    let mut divergences = Vec::new();
    for i in 0..sequences {
        let seed = sequence_seed(campaign_seed, i as u64);
        let steps = gen::sequence(seed);
        let outcome = run_both(conn, &steps, seed);
        figures.sequences += 1;
        figures.commands += outcome.argvs.len();
        figures.identical +=
            outcome.argvs.len() - outcome.differing.len() - outcome.documented.len();
        figures.documented += outcome.documented.len();
        if !outcome.differing.is_empty() {
            figures.diverging_sequences += 1;
            if divergences.len() < keep {
                let outcome = shrink::shrink(conn, steps, seed);
                divergences.push(Divergence { seed, outcome });
            }
        }
        if (i + 1) % 100 == 0 {
            progress(&figures);
        }
    }
    (figures, divergences)
}
