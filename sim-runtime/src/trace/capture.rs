//! What checkers and tools collect from a run's trace: typed events by type
//! ([`Capture`], from [`super::capture`]) and whole events by name prefix ([`EventLog`],
//! from [`super::capture_prefix`]).

use std::any::Any;
use std::cell::{Ref, RefCell};
use std::fmt;
use std::rc::Rc;

use super::{Event, TaskId};
use crate::node::NodeId;
use crate::time::Instant;

/// A typed event with where and when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Captured<T> {
    /// The event's position in the run's event stream.
    pub seq: u64,
    pub time: Instant,
    pub node: NodeId,
    pub task: Option<TaskId>,
    pub event: T,
}

/// The events of one type collected since [`super::capture`] was called. Cheap to
/// clone; all clones see the same list.
pub struct Capture<T> {
    pub(crate) events: Rc<RefCell<Vec<Captured<T>>>>,
}

impl<T> Clone for Capture<T> {
    fn clone(&self) -> Self {
        Capture {
            events: Rc::clone(&self.events),
        }
    }
}

impl<T> Default for Capture<T> {
    fn default() -> Self {
        Capture {
            events: Rc::new(RefCell::new(Vec::new())),
        }
    }
}

impl<T> Capture<T> {
    /// The events so far, borrowed (do not hold the borrow across an `.await`: an event
    /// emitted meanwhile would find the list borrowed).
    pub fn events(&self) -> Ref<'_, [Captured<T>]> {
        Ref::map(self.events.borrow(), |v| v.as_slice())
    }

    /// Takes the events so far, leaving the list empty.
    pub fn take(&self) -> Vec<Captured<T>> {
        std::mem::take(&mut *self.events.borrow_mut())
    }

    pub fn len(&self) -> usize {
        self.events.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.borrow().is_empty()
    }
}

impl<T: Clone> Capture<T> {
    /// A copy of the events so far.
    pub fn to_vec(&self) -> Vec<Captured<T>> {
        self.events.borrow().clone()
    }

    /// A copy of the events so far, without their time and place.
    pub fn values(&self) -> Vec<T> {
        self.events
            .borrow()
            .iter()
            .map(|c| c.event.clone())
            .collect()
    }
}

impl<T> fmt::Debug for Capture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Capture({} events)", self.len())
    }
}

/// A typed capture as the recorder holds it: the event's name, and the list behind an
/// `Any` that the emitting code downcasts to its own owned type.
pub(crate) struct TypedSink {
    pub(crate) name: &'static str,
    pub(crate) list: Rc<dyn Any>,
}

/// Whole events collected for a tool: every event whose name starts with the prefix
/// given to [`super::capture_prefix`]. Cheap to clone; all clones see the same list.
#[derive(Clone, Default)]
pub struct EventLog {
    pub(crate) events: Rc<RefCell<Vec<Event>>>,
}

impl EventLog {
    pub fn snapshot(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }

    pub fn len(&self) -> usize {
        self.events.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.borrow().is_empty()
    }

    /// Calls `f` on each collected event, in order.
    pub fn for_each(&self, mut f: impl FnMut(&Event)) {
        for e in self.events.borrow().iter() {
            f(e);
        }
    }
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventLog({} events)", self.len())
    }
}
