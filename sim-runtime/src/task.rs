//! Tasks: `spawn`, `JoinHandle` (await, `abort`, `detach`) and `yield_now`.
//!
//! Each task is an async-task allocation whose future is a `TaskFuture` wrapping the
//! user's future. The wrapper is what makes `kill` exact: once its task is marked killed it
//! drops the user's future in place (destructors run) and completes, so the user's future
//! is never polled again whatever wakers or timers it left behind.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::node::NodeId;
use crate::trace::TaskId;
use crate::world::{self, TaskMeta};

pin_project_lite::pin_project! {
    #[project = TaskProj]
    #[project_replace = TaskReplace]
    enum TaskState<F> {
        Running { #[pin] fut: F },
        Done,
    }
}

pin_project_lite::pin_project! {
    /// The future async-task runs: the user's future, until it completes or is killed.
    /// Its metadata lives in the task header and the world's `current`, not here, to keep
    /// every task small.
    struct TaskFuture<F> {
        #[pin]
        state: TaskState<F>,
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let flags = world::poll_flags();
        // The executor decided before this poll whether the task is dead.
        if flags.is_reap() {
            // Drop the user's future here, inside the simulation, then report completion.
            this.state.as_mut().project_replace(TaskState::Done);
            world::task_done(true);
            return Poll::Ready(None);
        }
        let out = match this.state.as_mut().project() {
            TaskProj::Running { fut } => fut.poll(cx),
            TaskProj::Done => return Poll::Ready(None),
        };
        match out {
            Poll::Ready(v) => {
                this.state.project_replace(TaskState::Done);
                world::task_done(false);
                Poll::Ready(Some(v))
            }
            Poll::Pending => {
                flags.park(cx.waker());
                Poll::Pending
            }
        }
    }
}

/// Why a joined task produced no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("task was aborted")]
    Aborted,
    #[error("task's node was killed")]
    Killed,
}

/// An owned permission to await a task's output. Dropping it detaches the task (it keeps
/// running), as `detach` does explicitly.
pub struct JoinHandle<T> {
    task: Option<async_task::Task<Option<T>, TaskMeta>>,
    /// The task's id shifted left once, with the low bit set once `abort` was called
    /// (one word instead of two: programs keep millions of handles in vectors).
    tag: u64,
}

impl<T> JoinHandle<T> {
    /// The task's id in the trace.
    pub fn id(&self) -> TaskId {
        TaskId(self.tag >> 1)
    }

    /// Stops the task: its future is dropped and never polled again. Awaiting the handle
    /// afterwards gives `JoinError::Aborted`.
    pub fn abort(&mut self) {
        self.tag |= 1;
        let Some(task) = &self.task else { return };
        let meta = task.metadata();
        meta.abort();
        let (key, node, id) = (meta.key.get(), meta.node, meta.id());
        // Woken, the task is polled once more by the reaper, which drops its future.
        let waker = world::try_with(|w| w.kill_task(key, node, id)).flatten();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Lets the task run on with nobody awaiting it.
    pub fn detach(mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }

    /// True once the task has finished, been aborted or killed.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let aborted = self.tag & 1 == 1;
        let task = self
            .task
            .as_mut()
            .expect("JoinHandle polled after completion");
        match Pin::new(task).poll(cx) {
            Poll::Ready(Some(v)) => {
                self.task = None;
                Poll::Ready(Ok(v))
            }
            Poll::Ready(None) => {
                self.task = None;
                Poll::Ready(Err(if aborted {
                    JoinError::Aborted
                } else {
                    JoinError::Killed
                }))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinHandle(t{})", self.tag >> 1)
    }
}

/// Spawns a task on the current node.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_at(None, "", Location::caller(), future)
}

/// Spawns a named task on the current node; the name shows in traces and deadlock
/// reports.
#[track_caller]
pub fn spawn_named<F>(name: &'static str, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_at(None, name, Location::caller(), future)
}

/// Spawns a task on `node` (killed with it).
#[track_caller]
pub fn spawn_on<F>(node: NodeId, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_at(Some(node), "", Location::caller(), future)
}

pub(crate) fn spawn_on_named<F>(
    node: NodeId,
    name: &'static str,
    location: &'static Location<'static>,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_at(Some(node), name, location, future)
}

/// Spawns on `node`, or on the current node for `None`, in one short world borrow:
/// building the task allocates and moves the future but runs none of its code.
fn spawn_at<F>(
    node: Option<NodeId>,
    name: &'static str,
    location: &'static Location<'static>,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let wrapped = TaskFuture {
        state: TaskState::Running { fut: future },
    };
    world::with(move |w| {
        let node = node.unwrap_or_else(|| w.current_node());
        let meta = w.register_task(node, name, location);
        let id = meta.id();
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn_local(move |_| wrapped, schedule);
        w.schedule(runnable);
        JoinHandle {
            task: Some(task),
            tag: id << 1,
        }
    })
}

fn schedule(runnable: async_task::Runnable<TaskMeta>) {
    world::schedule_runnable(runnable);
}

/// Gives every other runnable task a chance to run before this one continues.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The current task's id, if called from a task.
pub fn current_task() -> Option<TaskId> {
    world::with(|w| w.current_task())
}
