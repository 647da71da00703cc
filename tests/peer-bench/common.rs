//! What both bench binaries share: the workload sizes, the sleep-length sequence, a
//! counting global allocator, `/proc/self/status` readers and the result format that
//! `run.sh` parses. Each binary includes this file with `#[path]`, so the two packages
//! (one built with `--cfg madsim`, one without) run exactly the same work.

// Each binary uses a different subset.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::AtomicU64;

/// Workload 1: this many tasks ...
pub const TIMER_TASKS: u64 = 10_000;
/// ... each sleeping this many times (1M timer events in all).
pub const SLEEPS_PER_TASK: u64 = 100;
/// Workload 2: tasks spawned, then joined.
pub const SPAWN_TASKS: u64 = 1_000_000;
/// Workload 2b: tasks kept alive (blocked) while memory is measured.
pub const LIVE_TASKS: u64 = 1_000_000;
/// Workload 3: sequential request/response round trips between two nodes.
pub const PING_PONG_ROUND_TRIPS: u64 = 100_000;
/// Workload 4: client nodes ...
pub const FAN_IN_CLIENTS: u64 = 100;
/// ... each doing this many sequential round trips to one server.
pub const FAN_IN_ROUND_TRIPS: u64 = 1_000;
/// Workload 5: idle nodes added to ping-pong, each blocked forever on a listener accept.
pub const IDLE_NODES: u64 = 1_000;
/// Link latency in every framework: uniform 1 to 10 ms (madsim's default).
pub const LATENCY_MIN_MS: u64 = 1;
pub const LATENCY_MAX_MS: u64 = 10;
/// Port of the ping-pong / fan-in server and of the idle listeners.
pub const SERVER_PORT: u16 = 7000;
pub const IDLE_PORT: u16 = 7001;

/// The length of sleep `i` of timer task `task`: 1 to 7 ms from a SplitMix64 sequence,
/// the same numbers in every framework so that each does identical work.
pub fn sleep_ms(task: u64, i: u64) -> u64 {
    let mut z = task
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i.wrapping_mul(0xbf58_476d_1ce4_e5b9))
        .wrapping_add(0x1234_5678);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    1 + z % 7
}

thread_local! {
    // A plain thread-local cell (const-initialised, no destructor): cheaper than an atomic
    // in the allocator's hot path, and every framework here simulates on one thread.
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
}

/// A global allocator that counts the bytes currently allocated by this thread.
pub struct CountingAlloc;

// SAFETY: every call forwards to `System` unchanged; the counter is a side effect only.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + layout.size() as i64));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + layout.size() as i64));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        let _ = LIVE_BYTES.try_with(|c| c.set(c.get() - layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let delta = new_size as i64 - layout.size() as i64;
            let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + delta));
        }
        p
    }
}

/// How many live-task workload tasks have been polled (so all of them are counted).
pub static POLLED: AtomicU64 = AtomicU64::new(0);

/// Bytes allocated by this thread and not yet freed.
pub fn live_bytes() -> i64 {
    LIVE_BYTES.with(|c| c.get())
}

/// A `kB` field of `/proc/self/status` (VmHWM, VmRSS), in bytes.
pub fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Prints one figure for `run.sh`: `RESULT <key> <value>`.
pub fn report(key: &str, value: f64) {
    println!("RESULT {key} {value:.3}");
}

/// Prints a remark that `run.sh` shows under the table.
pub fn note(text: &str) {
    println!("NOTE {text}");
}

/// Which clock rates are measured with: the benchmark thread's CPU time by default,
/// because this 2-core machine is shared and other processes' load stretches wall-clock
/// time but not CPU time (every framework here simulates on this one thread);
/// `PEER_BENCH_CLOCK=wall` measures wall-clock time instead.
fn use_wall_clock() -> bool {
    std::env::var("PEER_BENCH_CLOCK").is_ok_and(|v| v == "wall")
}

/// CPU time consumed by the calling thread, in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only fills it in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Seconds that `f` takes (CPU or wall-clock, see [`use_wall_clock`]).
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    if use_wall_clock() {
        let start = std::time::Instant::now();
        let r = f();
        (r, start.elapsed().as_secs_f64())
    } else {
        let start = thread_cpu_secs();
        let r = f();
        (r, thread_cpu_secs() - start)
    }
}

/// Runs `f` `reps` times and returns the best (highest) rate. Best-of-N, because this
/// 2-core machine is shared and interference only ever makes a run slower.
pub fn best_rate(reps: u32, mut f: impl FnMut() -> f64) -> f64 {
    (0..reps.max(1)).map(|_| f()).fold(0.0, f64::max)
}

/// Command-line arguments: `<workload> [reps]`, after the framework for the first binary.
pub fn reps_arg(arg: Option<String>) -> u32 {
    arg.and_then(|s| s.parse().ok()).unwrap_or(3)
}
